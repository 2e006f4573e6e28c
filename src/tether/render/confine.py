"""Keep what a kustomization reads inside the source tree.

kustomize's own load restrictor keeps *files* inside each kustomization's directory, but a
base, component or resource that is a *directory* with a kustomization of its own becomes a new
root, anywhere on the disk: ``resources: [../../../../home/user/.kube]`` or ``/etc/app`` would be
built. Before kustomize runs, every kustomization reachable from the one rendered is read, and
every local path it names (resources, bases, components, patches, generator files, ...) must
stay inside the source root, by ``..``, by an absolute path and after symlinks. Remote
references (URLs, ``github.com/org/repo//dir``) are not local paths and are left to kustomize.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tether.errors import RenderError
from tether.render.files import decode, is_inside, load_yaml_documents, read_bytes, relative, resolve

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# list fields whose entries are paths (strings), and list fields of mappings with a path-like key
_PATH_LISTS = (
    "resources",
    "bases",
    "components",
    "patchesStrategicMerge",
    "crds",
    "configurations",
    "generators",
    "transformers",
    "validators",
)
_ENTRY_PATHS = {"patches": ("path",), "patchesJson6902": ("path",), "replacements": ("path",)}
_GENERATORS = ("configMapGenerator", "secretGenerator")
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git::|git@|[\w.-]+\.[a-z]{2,}/[^/]+/)", re.I)


def _kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)


def _references(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(field, path)`` of every local path a kustomization names."""
    for field in _PATH_LISTS:
        for entry in data.get(field) or []:
            if isinstance(entry, str):
                yield field, entry
    for field, keys in _ENTRY_PATHS.items():
        for entry in data.get(field) or []:
            if isinstance(entry, dict):
                for key in keys:
                    if isinstance(entry.get(key), str):
                        yield f"{field}[].{key}", entry[key]
            elif isinstance(entry, str):  # patches given as plain file names
                yield field, entry
    for field in _GENERATORS:
        for generator in data.get(field) or []:
            if not isinstance(generator, dict):
                continue
            for item in generator.get("files") or []:
                if isinstance(item, str):  # "key=path" or "path"
                    yield f"{field}[].files", item.split("=", 1)[-1]
            for item in [*(generator.get("envs") or []), generator.get("env")]:
                if isinstance(item, str):
                    yield f"{field}[].envs", item
    openapi = data.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield "openapi.path", openapi["path"]
    helm = data.get("helmGlobals")
    if isinstance(helm, dict) and isinstance(helm.get("chartHome"), str):
        yield "helmGlobals.chartHome", helm["chartHome"]


def check_kustomization(directory: Path, root: Path, max_bytes: int) -> None:
    """Refuse a kustomization (or any it reaches) that names a path outside ``root``."""
    root_resolved = resolve(root, root)
    seen: set[Path] = set()
    pending = [directory]
    while pending:
        current = pending.pop()
        key = resolve(current, root)
        if key in seen:
            continue
        seen.add(key)
        kfile = _kustomization_file(current)
        if kfile is None:
            continue
        rel = relative(kfile, root)
        text = decode(read_bytes(kfile, root, max_bytes), rel)
        for _index, _line, data in load_yaml_documents(text, rel):
            if not isinstance(data, dict):
                continue
            for field, reference in _references(data):
                target = _confined(current, reference, root, root_resolved, rel, field)
                if target is not None and target.is_dir():
                    pending.append(target)


def _confined(base: Path, reference: str, root: Path, root_resolved: Path, rel: str, field: str) -> Path | None:
    """The path ``reference`` names (from ``base``), after refusing one that leaves the source tree."""
    if not reference or (_REMOTE.match(reference) and not (base / reference).exists()):
        return None  # a remote base: kustomize fetches it, nothing on our disk is read
    reference_path = Path(reference)
    lexical = Path(os.path.normpath(base / reference_path))  # what ".." and absolute paths name
    if not is_inside(lexical, Path(os.path.normpath(root.absolute()))) and not is_inside(lexical, root_resolved):
        raise RenderError(
            f"{rel}: {field} entry {reference!r} points outside the source tree (to {lexical}); refusing to build it"
        )
    if not os.path.lexists(lexical):
        return None  # kustomize reports the missing path itself
    resolved = resolve(base / reference_path, root)
    if not is_inside(resolved, root_resolved):
        raise RenderError(
            f"{rel}: {field} entry {reference!r} leads outside the source tree through a symlink "
            f"(to {resolved}); refusing to build it"
        )
    return resolved
