"""Write chosen images into YAML files, changing only the values and keeping everything else.

Three kinds of places are updated:

- **setter markers**, compatible with Flux: a value followed on its line by
  ``# {"$imagepolicy": "NAMESPACE:POLICY"}`` gets the policy's full image (``name:tag``, with
  ``@digest`` when the policy reflects digests); ``NAMESPACE:POLICY:tag``, ``:name`` and ``:digest``
  set just that part;
- **Kustomize** ``images:`` entries (in ``kustomization.yaml``) whose ``newName`` or ``name`` is a
  policy's repository: ``newTag`` (and ``digest`` when known);
- **Helm values files** (``values*.yaml``): a mapping with ``repository`` (and optional
  ``registry``) naming a policy's repository gets its ``tag`` set.

Files are parsed with ruamel.yaml's round-trip loader, which knows where every value and comment
is; the edit itself replaces the value's characters in the text, so indentation, quoting, comments
and key order stay byte-for-byte as they were. A value that would change type when written plain
(``1.10`` reads as a number) is written double-quoted.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from tether.images.errors import WriteBackError
from tether.images.reference import same_repository

MARKER = re.compile(r'\{\s*"\$imagepolicy"\s*:\s*"(?P<ref>[^"]+)"\s*\}')
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SKIP_DIRS = {".git"}


@dataclass(frozen=True)
class ChosenImage:
    """What a policy chose: ``image`` is the repository as the ImageRepository names it."""

    namespace: str
    policy: str
    image: str
    tag: str
    digest: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}:{self.policy}"

    @property
    def full(self) -> str:
        return f"{self.image}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class Change:
    file: str  # relative to the updated directory's repository root
    line: int  # 1-based
    policy: str  # "namespace:name"
    image: str
    old: str
    new: str
    setter: str  # "marker", "marker:tag", ..., "kustomize", "helm"


@dataclass
class _Edit:
    line: int  # 0-based
    column: int
    new: str
    change: Change


def update_directory(root: Path, directory: Path, chosen: Mapping[str, ChosenImage]) -> list[Change]:
    """Update every YAML file under ``directory`` (a path inside the checkout ``root``); returns the changes."""
    changes: list[Change] = []
    for path in _yaml_files(directory):
        relative = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        updated, found = update_text(text, chosen, relative, path.name)
        if found and updated != text:
            path.write_text(updated, encoding="utf-8")
            changes.extend(found)
    return changes


def _yaml_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if any(part in SKIP_DIRS for part in path.relative_to(directory).parts):
            continue
        if (
            path.is_file()
            and not path.is_symlink()
            and (path.suffix in (".yaml", ".yml") or path.name == "Kustomization")
        ):
            yield path


def update_text(
    text: str, chosen: Mapping[str, ChosenImage], relative: str = "<text>", filename: str = ""
) -> tuple[str, list[Change]]:
    """The text with every setter applied and the changes made (none: the text unchanged)."""
    if "$imagepolicy" not in text and not _may_auto_update(filename):
        return text, []
    try:
        documents = list(_loader().load_all(text))
    except YAMLError as error:
        if "$imagepolicy" in text:
            raise WriteBackError(f"{relative}: has image policy markers but is not valid YAML: {error}") from None
        return text, []
    lines = text.splitlines(keepends=True)
    edits: list[_Edit] = []
    for document in documents:
        edits.extend(_markers(document, lines, chosen, relative))
        if filename in KUSTOMIZATION_FILES and isinstance(document, CommentedMap):
            edits.extend(_kustomize(document, lines, chosen, relative))
        if _is_values_file(filename):
            edits.extend(_helm_values(document, lines, chosen, relative))
    edits = [edit for edit in edits if edit.change.old != edit.change.new]
    if not edits:
        return text, []
    for edit in sorted(edits, key=lambda e: (e.line, e.column), reverse=True):
        lines[edit.line] = _replace_scalar(lines[edit.line], edit.column, edit.new, relative, edit.line)
    return "".join(lines), sorted((e.change for e in edits), key=lambda c: (c.file, c.line))


def _loader() -> YAML:
    loader = YAML(typ="rt")
    loader.preserve_quotes = True
    return loader


def _may_auto_update(filename: str) -> bool:
    return filename in KUSTOMIZATION_FILES or _is_values_file(filename)


def _is_values_file(filename: str) -> bool:
    return filename.startswith("values") and filename.endswith((".yaml", ".yml"))


# ------------------------------------------------------------------ markers


def _walk(node: Any) -> Iterator[tuple[Any, Any, Any]]:
    """(container, key or index, value) for every entry, depth first."""
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            yield node, key, value
            yield from _walk(value)
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            yield node, index, value
            yield from _walk(value)


def _eol_comment(container: Any, key: Any) -> str:
    entry = container.ca.items.get(key)
    if not entry:
        return ""
    token = entry[2] if isinstance(container, CommentedMap) else entry[0]
    if isinstance(token, list):
        token = token[0] if token else None
    value = getattr(token, "value", "") or ""
    return value.split("\n", 1)[0]


def _position(container: Any, key: Any) -> tuple[int, int]:
    return container.lc.value(key) if isinstance(container, CommentedMap) else container.lc.item(key)


def _markers(document: Any, lines: list[str], chosen: Mapping[str, ChosenImage], relative: str) -> list[_Edit]:
    edits = []
    for container, key, value in _walk(document):
        if isinstance(value, CommentedMap | CommentedSeq):
            continue
        match = MARKER.search(_eol_comment(container, key))
        if not match:
            continue
        line, column = _position(container, key)
        if not lines[line].rstrip("\r\n")[column:].split("#", 1)[0].strip():
            continue  # the comment belongs to a line without this value (a block value below)
        ref = match["ref"]
        parts = ref.split(":")
        field = parts[2] if len(parts) == 3 else ""
        policy_key = ":".join(parts[:2])
        image = chosen.get(policy_key)
        if image is None or field not in ("", "tag", "name", "digest"):
            continue
        if field == "digest" and not image.digest:
            continue
        new = {"": image.full, "tag": image.tag, "name": image.image, "digest": image.digest}[field]
        setter = "marker" + (f":{field}" if field else "")
        edits.append(
            _Edit(line, column, new, Change(relative, line + 1, policy_key, image.image, str(value), new, setter))
        )
    return edits


# ------------------------------------------------------------------ Kustomize and Helm


def _unique_for(repository: str, chosen: Mapping[str, ChosenImage]) -> ChosenImage | None:
    matching = [image for image in chosen.values() if same_repository(image.image, repository)]
    return matching[0] if len(matching) == 1 else None


def _has_marker(container: CommentedMap) -> bool:
    return any(MARKER.search(_eol_comment(container, key)) for key in container)


def _kustomize(
    document: CommentedMap, lines: list[str], chosen: Mapping[str, ChosenImage], relative: str
) -> list[_Edit]:
    entries = document.get("images")
    if not isinstance(entries, CommentedSeq):
        return []
    edits = []
    for entry in entries:
        if not isinstance(entry, CommentedMap) or _has_marker(entry):
            continue
        repository = str(entry.get("newName") or entry.get("name") or "")
        image = _unique_for(repository, chosen) if repository else None
        if image is None:
            continue
        for field, new in (("newTag", image.tag), ("digest", image.digest)):
            if new and field in entry:
                line, column = entry.lc.value(field)
                edits.append(
                    _Edit(
                        line,
                        column,
                        new,
                        Change(relative, line + 1, image.key, image.image, str(entry[field]), new, "kustomize"),
                    )
                )
        if "newTag" not in entry:
            raise WriteBackError(
                f"{relative}:{entry.lc.line + 1}: the Kustomize images entry for {repository} has "
                f"no newTag to update; add 'newTag: <current tag>' to it"
            )
    return edits


def _helm_values(document: Any, lines: list[str], chosen: Mapping[str, ChosenImage], relative: str) -> list[_Edit]:
    edits = []
    for mapping in _mappings(document):
        repository, tag = mapping.get("repository"), mapping.get("tag")
        if not isinstance(repository, str) or tag is None or isinstance(tag, CommentedMap | CommentedSeq):
            continue
        if _has_marker(mapping):
            continue
        registry = mapping.get("registry")
        full = f"{registry}/{repository}" if isinstance(registry, str) and registry else repository
        image = _unique_for(full, chosen)
        if image is None:
            continue
        line, column = mapping.lc.value("tag")
        edits.append(
            _Edit(
                line, column, image.tag, Change(relative, line + 1, image.key, image.image, str(tag), image.tag, "helm")
            )
        )
    return edits


def _mappings(node: Any) -> Iterator[CommentedMap]:
    if isinstance(node, CommentedMap):
        yield node
    for _, _, value in _walk(node):
        if isinstance(value, CommentedMap):
            yield value


# ------------------------------------------------------------------ the textual edit


def _replace_scalar(line: str, column: int, new: str, relative: str, number: int) -> str:
    body, ending = (line[:-2], "\r\n") if line.endswith("\r\n") else (line.rstrip("\n"), line[len(line.rstrip("\n")) :])
    rest = body[column:]
    if rest[:1] in ("'", '"'):
        end = _closing_quote(rest)
        if end < 0:
            raise WriteBackError(f"{relative}:{number + 1}: a quoted value spans lines; setters need it on one line")
        written = _quoted(new, rest[0])
    else:
        comment = re.search(r"\s+#", rest)
        end = (comment.start() if comment else len(rest.rstrip())) - 1
        written = new if _plain_is_string(new) else json.dumps(new)
    return body[:column] + written + rest[end + 1 :] + ending


def _closing_quote(text: str) -> int:
    quote, index = text[0], 1
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and text[index + 1 : index + 2] == "'":
                index += 2
                continue
            return index
        index += 1
    return -1


def _quoted(value: str, quote: str) -> str:
    return "'" + value.replace("'", "''") + "'" if quote == "'" else json.dumps(value)


def _plain_is_string(value: str) -> bool:
    try:
        return yaml.safe_load(io.StringIO(f"v: {value}\n")) == {"v": value}
    except yaml.YAMLError:
        return False


__all__ = ["MARKER", "Change", "ChosenImage", "update_directory", "update_text"]
