"""Plain directories of YAML / JSON manifests, read recursively in a deterministic order."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tether.errors import RenderError
from tether.model import Manifest, SourceLocation
from tether.render import Decryptor
from tether.render.confine import KUSTOMIZATION_FILES
from tether.render.files import decode, load_json_document, load_yaml_documents, read_bytes, relative

SUFFIXES = (".yaml", ".yml", ".json")


def manifest_files(directory: Path) -> list[Path]:
    """Every manifest file under ``directory``, sorted by relative path; hidden entries are skipped,
    and so are kustomization files and the sub-directories that hold one (``kustomize_bases``)."""
    return [p for p in _walk(directory)[0]]


def kustomize_bases(directory: Path) -> list[Path]:
    """Sub-directories of a plain directory that hold a kustomization: built as Kustomize bases
    (as Flux does) instead of being read as YAML objects."""
    return _walk(directory)[1]


def _walk(directory: Path) -> tuple[list[Path], list[Path]]:
    found: list[Path] = []
    bases: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        here = Path(dirpath)
        if here != directory and any(n in filenames for n in KUSTOMIZATION_FILES):
            bases.append(here)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(
            here / f
            for f in filenames
            if f.endswith(SUFFIXES) and not f.startswith(".") and f not in KUSTOMIZATION_FILES
        )
    key = lambda p: p.relative_to(directory).as_posix()  # noqa: E731
    return sorted(found, key=key), sorted(bases, key=key)


def parse_text(text: str, rel: str, json_file: bool) -> list[Manifest]:
    if json_file:
        data = load_json_document(text, rel)
        return [Manifest(data, SourceLocation(rel, 1, 0))] if data is not None else []
    return [Manifest(data, SourceLocation(rel, line, index)) for index, line, data in load_yaml_documents(text, rel)]


def load_file(path: Path, root: Path, max_bytes: int, decryptor: Decryptor | None = None) -> list[Manifest]:
    rel = relative(path, root)
    data = read_bytes(path, root, max_bytes)
    if decryptor is not None and decryptor.is_encrypted(data, path):
        data = decryptor.decrypt(data, path)
    return parse_text(decode(data, rel), rel, path.suffix == ".json")


def render_plain(
    directory: Path,
    root: Path,
    max_bytes: int,
    decryptor: Decryptor | None = None,
    on_error: Callable[[RenderError], None] | None = None,
) -> list[Manifest]:
    """Every manifest file under ``directory``. ``on_error``: called with the error of a bad file, whose
    objects are then left out, instead of stopping at the first one."""
    manifests: list[Manifest] = []
    for path in manifest_files(directory):
        try:
            manifests.extend(load_file(path, root, max_bytes, decryptor))
        except RenderError as error:
            if on_error is None:
                raise
            on_error(error)
    return manifests
