"""Safe reading and parsing of manifest files.

Every file a renderer touches goes through here so the same limits apply everywhere:
symlinks must stay inside the source tree, files above a size limit are refused before a
byte is read, content must be UTF-8, and YAML aliases may not expand beyond a node budget
(the "billion laughs" bomb builds a tiny file whose expansion does not fit in memory).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tether.errors import RenderError

try:  # the C loader is ~10x faster; fall back when libyaml is missing
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader


class _ManifestLoader(_Loader):  # type: ignore[misc, valid-type]
    """Safe loader that reads YAML as Kubernetes does (YAML -> JSON): timestamps stay strings, and a
    key repeated in one mapping is an error (kubectl refuses it; PyYAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        own = list(node.value)  # before merge keys (<<) are flattened into it
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) != len(own):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _value in own:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                if key_node.value in seen:
                    first = seen[key_node.value].start_mark.line + 1
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r} (first at line {first})", key_node.start_mark
                    )
                seen[key_node.value] = key_node
        return mapping


_ManifestLoader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))

#: maximum number of nodes one YAML document may expand to through aliases
MAX_EXPANDED_NODES = 1_000_000


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def resolve(path: Path, root: Path) -> Path:
    """``path.resolve()``, with a symlink loop reported as a RenderError naming the path (not a traceback)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as error:  # RuntimeError on Python < 3.13, OSError (ELOOP) after
        raise RenderError(f"{relative(path, root)}: symlink loop ({error}); refusing to read it") from None


def is_inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_inside(path: Path, root: Path) -> Path:
    """Resolve ``path`` and refuse it when a symlink leads outside ``root``."""
    resolved = resolve(path, root)
    root_resolved = resolve(root, root)
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise RenderError(
            f"{relative(path, root)}: symlink points outside the source tree (to {resolved}); refusing to read it"
        )
    return resolved


def check_tree_symlinks(directory: Path, root: Path | None = None) -> None:
    """Refuse any symlink under ``directory`` whose target lies outside ``root`` (renderers follow them).

    Hidden directories (``.git``, virtual environments, ...) are not rendered and not walked.
    """
    root = root or directory
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in dirnames + filenames:
            entry = Path(dirpath, name)
            if entry.is_symlink():
                check_inside(entry, root)


def read_bytes(path: Path, root: Path, max_bytes: int) -> bytes:
    """Read a file after the symlink and size checks (size is taken from stat, not by reading)."""
    rel = relative(path, root)
    resolved = check_inside(path, root)
    try:
        size = resolved.stat().st_size
    except OSError as error:
        raise RenderError(f"{rel}: cannot read: {error.strerror}") from error
    if size > max_bytes:
        raise RenderError(f"{rel}: file is {size} bytes, over the limit of {max_bytes} bytes; refusing to read it")
    with open(resolved, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while we looked
        raise RenderError(f"{rel}: file is over the limit of {max_bytes} bytes; refusing to read it")
    return data


def decode(data: bytes, rel: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise RenderError(
            f"{rel}:{line}:{column}: not valid UTF-8 (byte 0x{data[error.start]:02x}); manifests must be UTF-8"
        ) from error


def _expanded_size(node: yaml.Node, budget: int, rel: str) -> int:
    """Count nodes as if every alias were expanded, memoised by identity (aliases share nodes)."""
    sizes: dict[int, int] = {}

    def size(current: yaml.Node) -> int:
        known = sizes.get(id(current))
        if known is not None:
            return known
        total = 1
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                total += size(key) + size(value)
        elif isinstance(current, yaml.SequenceNode):
            for item in current.value:
                total += size(item)
        if total > budget:
            raise RenderError(
                f"{rel}:{node.start_mark.line + 1}: YAML aliases expand to more than {budget} nodes "
                "(a 'billion laughs' bomb?); refusing to load it"
            )
        sizes[id(current)] = total
        return total

    return size(node)


def _unshare(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unshare(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshare(v) for v in value]
    return value


def _yaml_error(error: yaml.YAMLError, rel: str) -> RenderError:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"{rel}:{mark.line + 1}:{mark.column + 1}" if mark is not None else rel
    return RenderError(f"{where}: invalid YAML: {problem}")


def load_yaml_documents(text: str, rel: str) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(document index, first line, data)`` for each non-empty document of a YAML stream."""
    loader = _ManifestLoader(text)
    may_alias = "*" in text  # no alias indicator anywhere: nothing can expand, skip the walk
    index = 0
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
                if node is None:
                    continue
                if may_alias:
                    _expanded_size(node, MAX_EXPANDED_NODES, rel)
                data = loader.construct_document(node)
            except yaml.YAMLError as error:
                raise _yaml_error(error, rel) from error
            except RecursionError as error:
                raise RenderError(f"{rel}: YAML nested too deeply") from error
            if data is not None:
                # aliases share one Python object; later in-place edits must not leak between them
                yield index, node.start_mark.line + 1, _unshare(data) if may_alias else data
            index += 1
    finally:
        loader.dispose()


def load_json_document(text: str, rel: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RenderError(f"{rel}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}") from error


def locate_path(text: str, document: int, path: list[str | int]) -> tuple[int, int] | None:
    """Line and column (1-based) of the node at ``path`` in document ``document``; for error messages."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError:
        return None
    if document >= len(nodes) or nodes[document] is None:
        return None
    node = nodes[document]
    best = node
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            match = node.value[part]
        else:
            match = None
        if match is None:
            break
        node = best = match
    return best.start_mark.line + 1, best.start_mark.column + 1
