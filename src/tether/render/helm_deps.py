"""Chart dependencies that are not vendored under ``charts/``: fetched, then rendered from a temporary copy.

``helm dependency build`` writes ``charts/`` and ``Chart.lock`` into the chart; tether never writes
into the source tree (a commit is untrusted input and the checkout may be shared). A chart whose
``Chart.yaml`` declares dependencies missing from ``charts/`` is copied into a temporary directory,
the dependencies go into the copy's ``charts/`` and Helm renders the copy.

- ``repository: https://...`` / ``http://...`` (a chart repository) and ``oci://...`` (a registry):
  fetched into the content-addressed cache (``tether.render.helm_fetch``); the version is a semver
  range as Helm allows, resolved against the index or the tags, unless ``Chart.lock`` pins it.
- ``repository: file://../x``: a chart directory in the source tree, refused when it leads outside it.
- ``@name`` / a bare repository name: needs ``helm repo add``, which tether does not read; an error says so.

Fetching runs in the calling process, before the render child starts (the child has a memory and
time budget meant for templates, not downloads).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tether.errors import RenderError
from tether.render.files import check_tree_symlinks, decode, is_inside, load_yaml_documents, read_bytes, relative
from tether.render.helm_fetch import ChartFetcher, FetchSettings


@dataclass(frozen=True)
class Dependency:
    name: str
    version: str
    repository: str
    alias: str = ""


def _chart_document(path: Path, root: Path, max_bytes: int) -> dict:
    rel = relative(path, root)
    for _index, _line, data in load_yaml_documents(decode(read_bytes(path, root, max_bytes), rel), rel):
        if isinstance(data, dict):
            return data
    return {}


def declared_dependencies(chart_dir: Path, root: Path, max_bytes: int) -> list[Dependency]:
    chart_file = chart_dir / "Chart.yaml"
    rel = relative(chart_file, root)
    out = []
    for number, entry in enumerate(_chart_document(chart_file, root, max_bytes).get("dependencies") or []):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise RenderError(f"{rel}: dependencies[{number}] has no name")
        out.append(
            Dependency(
                str(entry["name"]),
                str(entry.get("version") or ""),
                str(entry.get("repository") or ""),
                str(entry.get("alias") or ""),
            )
        )
    return out


def _vendored(charts_dir: Path, name: str) -> bool:
    """Is chart ``name`` under charts/, as a directory or an archive (Helm loads both)?"""
    if not charts_dir.is_dir():
        return False
    archive = re.compile(rf"^{re.escape(name)}-v?\d[^/]*\.tgz$")
    for entry in charts_dir.iterdir():
        if entry.is_file() and archive.match(entry.name):
            return True
        chart_file = entry / "Chart.yaml"
        if entry.is_dir() and chart_file.is_file():
            try:
                text = chart_file.read_text(errors="replace")
            except OSError:
                continue
            if re.search(rf"^name:\s*['\"]?{re.escape(name)}['\"]?\s*$", text, re.M):
                return True
    return False


def _locked_versions(chart_dir: Path, root: Path, max_bytes: int, wanted: list[Dependency]) -> dict[str, str]:
    """Chart.lock's versions by (name, repository); refuses a lock that no longer matches Chart.yaml."""
    lock_file = chart_dir / "Chart.lock"
    if not lock_file.is_file():
        return {}
    rel = relative(lock_file, root)
    locked = {}
    for entry in _chart_document(lock_file, root, max_bytes).get("dependencies") or []:
        if isinstance(entry, dict) and entry.get("name"):
            locked[(str(entry["name"]), str(entry.get("repository") or "").rstrip("/"))] = str(entry.get("version"))
    from tether.source.semver_range import best_match

    pins = {}
    for dependency in wanted:
        key = (dependency.name, dependency.repository.rstrip("/"))
        if key not in locked:
            raise RenderError(
                f"{rel}: out of sync with Chart.yaml: no entry for dependency {dependency.name} from "
                f"{dependency.repository} (run `helm dependency update` and commit Chart.lock)"
            )
        try:
            allowed = best_match(dependency.version or "*", [locked[key]]) is not None
        except Exception:  # a bad range is reported by the fetch with its own message
            allowed = True
        if not allowed:
            raise RenderError(
                f"{rel}: out of sync with Chart.yaml: {dependency.name} is locked at {locked[key]}, which does not "
                f"satisfy {dependency.version!r} (run `helm dependency update` and commit Chart.lock)"
            )
        pins[dependency.name] = locked[key]
    return pins


def _local_chart(chart_dir: Path, root: Path, dependency: Dependency, rel: str) -> Path:
    """The directory a ``file://`` repository names, kept inside the source tree."""
    target = dependency.repository.removeprefix("file://")
    lexical = Path(os.path.normpath(chart_dir.absolute() / target))
    inside = is_inside(lexical, Path(os.path.normpath(root.absolute()))) or is_inside(lexical, root.resolve())
    if not inside or not is_inside(lexical.resolve(), root.resolve()):
        raise RenderError(
            f"{rel}: dependency {dependency.name}: repository {dependency.repository!r} points outside the source "
            f"tree (to {lexical.resolve()}); refusing to read it"
        )
    if not (lexical / "Chart.yaml").is_file():
        raise RenderError(
            f"{rel}: dependency {dependency.name}: repository {dependency.repository!r} is not a chart directory "
            f"(no {relative(lexical / 'Chart.yaml', root)})"
        )
    check_tree_symlinks(lexical, root)
    return lexical


def _check_fetchable(dependency: Dependency, rel: str) -> None:
    repository = dependency.repository
    if not repository:
        raise RenderError(
            f"{rel}: dependency {dependency.name} is not under charts/ and names no repository "
            "(vendor it under charts/ or give its repository URL)"
        )
    if repository.startswith("@") or not re.match(r"^(https?|oci|file)://", repository):
        raise RenderError(
            f"{rel}: dependency {dependency.name}: repository {repository!r} names a repository added with "
            "`helm repo add`, which tether does not read; write its URL (https://... or oci://...) in Chart.yaml "
            "or vendor the chart under charts/"
        )


@contextlib.contextmanager
def chart_with_dependencies(chart_dir: Path, root: Path, settings: FetchSettings, max_bytes: int) -> Iterator[Path]:
    """The chart directory to render: ``chart_dir`` itself, or a temporary copy with the missing dependencies."""
    rel = relative(chart_dir / "Chart.yaml", root)
    declared = declared_dependencies(chart_dir, root, max_bytes)
    missing: dict[str, Dependency] = {}
    for dependency in declared:  # one chart under two aliases is fetched once
        if not _vendored(chart_dir / "charts", dependency.name):
            missing.setdefault(dependency.name, dependency)
    if not missing:
        yield chart_dir
        return
    for dependency in missing.values():
        _check_fetchable(dependency, rel)
    remote = [d for d in missing.values() if not d.repository.startswith("file://")]
    pins = _locked_versions(chart_dir, root, max_bytes, remote)
    archives: list[tuple[str, Path]] = []
    local: list[tuple[str, Path]] = []
    with ChartFetcher(settings) as fetcher:
        for dependency in missing.values():
            if dependency.repository.startswith("file://"):
                local.append((dependency.name, _local_chart(chart_dir, root, dependency, rel)))
                continue
            what = f"{rel}: dependency {dependency.name} from {dependency.repository}"
            version, archive = fetcher.fetch(
                dependency.repository, dependency.name, pins.get(dependency.name, dependency.version), what
            )
            archives.append((f"{dependency.name}-{version}.tgz", archive))
    with tempfile.TemporaryDirectory(prefix="tether-chart-") as scratch:
        copy = Path(scratch) / chart_dir.name
        # symlinks were checked to stay inside the tree: the copy holds their targets' contents
        shutil.copytree(chart_dir, copy, symlinks=False)
        (copy / "charts").mkdir(exist_ok=True)
        for file_name, archive in archives:
            shutil.copyfile(archive, copy / "charts" / file_name)
        for name, directory in local:
            shutil.copytree(directory, copy / "charts" / name, symlinks=False)
        yield copy
