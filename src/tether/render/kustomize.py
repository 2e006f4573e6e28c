"""Kustomize through the ``kubectl kustomize`` (or ``kustomize build``) binary.

Why a binary and not an in-process library: ``kubectl`` (with kustomize v5.5 built in) is on
every machine that talks to a cluster, a child process can be killed at the time limit,
and it keeps kustomize's own load restrictor (files outside the kustomization root are
refused). The in-process binding (``pykustomize``) does not install on Python 3.11 without
ignoring its declared Python requirement and cannot be interrupted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from tether.errors import RenderError
from tether.model import Manifest, SourceLocation
from tether.render.confine import KUSTOMIZATION_FILES, check_kustomization
from tether.render.files import check_tree_symlinks, load_yaml_documents, relative
from tether.render.limits import Completed, Limits, run_limited


def kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)


def _command(directory: Path) -> list[str]:
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize", str(directory)]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build", str(directory)]
    raise RenderError("rendering a kustomization needs `kubectl` or `kustomize` on PATH; neither was found")


ORIGIN = "config.kubernetes.io/origin"


def _build(directory: Path, limits: Limits, rel: str) -> Completed:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}
    return run_limited(_command(directory), what=f"{rel} (kustomize)", limits=limits, env=env, cwd=directory)


def _build_with_origins(directory: Path, limits: Limits, rel: str) -> tuple[bytes, Path, bytes] | None:
    """Build through a wrapper kustomization that asks for origin annotations (which file each object
    came from). ``None`` when that does not work (a Component, say): the caller builds plainly."""
    with tempfile.TemporaryDirectory(prefix="tether-kustomize-") as wrapper:
        target = os.path.relpath(directory.resolve(), wrapper)  # kustomize refuses absolute roots
        Path(wrapper, "kustomization.yaml").write_text(
            f"resources:\n  - {json.dumps(target)}\nbuildMetadata: [originAnnotations]\n"
        )
        done = _build(Path(wrapper), limits, rel)
        return (done.stdout, Path(wrapper), done.stderr) if done.returncode == 0 else None


def _origin_file(manifest: Manifest, wrapper: Path, root: Path, fallback: str) -> str:
    meta = manifest.obj.get("metadata") if isinstance(manifest.obj, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict) or ORIGIN not in annotations:
        return fallback
    origin = yaml.safe_load(str(annotations.pop(ORIGIN))) or {}
    if not annotations:
        del meta["annotations"]
    path = origin.get("path") or origin.get("configuredIn") if isinstance(origin, dict) else None
    if not isinstance(path, str) or "://" in path:
        return fallback
    absolute = Path(os.path.normpath(wrapper / path))
    return relative(absolute, root.resolve()) if absolute.is_relative_to(root.resolve()) else fallback


def render_kustomize(
    directory: Path,
    root: Path,
    limits: Limits | float,
    max_bytes: int = 32 * 1024 * 1024,
    warnings: list[str] | None = None,
) -> list[Manifest]:
    """Build ``directory``; each object's location is the file it came from (relative to ``root``).

    ``limits``: the child's time, memory and output budget (a number: seconds, other limits default).
    ``warnings``: gets what kustomize warned about on a successful build (deprecated fields, ...)."""
    if not isinstance(limits, Limits):
        limits = Limits(timeout=float(limits))
    kfile = kustomization_file(directory)
    rel = relative(kfile or directory, root)
    if kfile is None:
        raise RenderError(f"{rel}: no kustomization.yaml in this directory")
    check_tree_symlinks(directory, root)
    check_kustomization(directory, root, max_bytes)  # bases and components may not leave the source tree
    # a kustomization that asks for origin annotations itself keeps them; otherwise we add and strip them
    wants_origins = "originAnnotations" in kfile.read_text(encoding="utf-8", errors="replace")
    built = None if wants_origins else _build_with_origins(directory, limits, rel)
    if built is None:
        done = _build(directory, limits, rel)
        if done.returncode != 0:
            message = _clean(done.stderr.decode("utf-8", "replace"), root)
            raise RenderError(f"{rel}: kustomize build failed: {message}")
        output, wrapper, stderr = done.stdout, None, done.stderr
    else:
        output, wrapper, stderr = built
    if warnings is not None:
        warnings.extend(f"{rel}: kustomize: {line}" for line in _warning_lines(stderr.decode("utf-8", "replace"), root))
    text = output.decode("utf-8", "replace")
    manifests = [
        Manifest(data, SourceLocation(rel, None, index)) for index, _line, data in load_yaml_documents(text, rel)
    ]
    if wrapper is not None:
        for manifest in manifests:
            manifest.source = SourceLocation(
                _origin_file(manifest, wrapper, root, rel), None, manifest.source.document if manifest.source else 0
            )
    return manifests


def _warning_lines(stderr: str, root: Path) -> list[str]:
    """kustomize's warnings (``# Warning: 'commonLabels' is deprecated...``), one per line, paths relative."""
    text = stderr.replace(str(root.resolve()) + "/", "").replace(str(root) + "/", "")
    out = []
    for line in text.splitlines():
        line = re.sub(r"^#\s*", "", line.strip())
        if line:
            out.append(line)
    return out


def _clean(stderr: str, root: Path) -> str:
    """One line from kubectl's klog-formatted failure (``E1127 ... "command failed" err=<...>``)."""
    text = stderr.replace(str(root.resolve()) + "/", "").replace(str(root) + "/", "")
    if "err=<" in text:
        text = text.split("err=<", 1)[1].rsplit(">", 1)[0]
    text = re.sub(r"^(Error|E\d{4} [^\]]*\]):?\s*", "", text.strip())
    return " ".join(text.split())
