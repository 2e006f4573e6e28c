"""Kustomize through the ``kubectl kustomize`` (or ``kustomize build``) binary.

Why a binary and not an in-process library: ``kubectl`` (with kustomize v5.5 built in) is on
every machine that talks to a cluster, a child process can be killed at the time limit,
and it keeps kustomize's own load restrictor (files outside the kustomization root are
refused). The in-process binding (``pykustomize``) does not install on Python 3.11 without
ignoring its declared Python requirement and cannot be interrupted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tether.errors import RenderError
from tether.model import Manifest, SourceLocation
from tether.render.files import check_tree_symlinks, load_yaml_documents, relative

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)


def _command(directory: Path) -> list[str]:
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize", str(directory)]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build", str(directory)]
    raise RenderError("rendering a kustomization needs `kubectl` or `kustomize` on PATH; neither was found")


def render_kustomize(directory: Path, root: Path, timeout: float) -> list[Manifest]:
    """Build ``directory``; file names in messages are relative to ``root``."""
    kfile = kustomization_file(directory)
    rel = relative(kfile or directory, root)
    if kfile is None:
        raise RenderError(f"{rel}: no kustomization.yaml in this directory")
    check_tree_symlinks(directory, root)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}
    try:
        done = subprocess.run(
            _command(directory), capture_output=True, timeout=timeout, env=env, cwd=directory, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise RenderError(f"{rel}: kustomize took longer than {timeout:g}s; stopped") from error
    if done.returncode != 0:
        message = _clean(done.stderr.decode("utf-8", "replace"), root)
        raise RenderError(f"{rel}: kustomize build failed: {message}")
    text = done.stdout.decode("utf-8", "replace")
    return [Manifest(data, SourceLocation(rel, None, index)) for index, _line, data in load_yaml_documents(text, rel)]


def _clean(stderr: str, root: Path) -> str:
    """One line from kubectl's klog-formatted failure (``E1127 ... "command failed" err=<...>``)."""
    text = stderr.replace(str(root.resolve()) + "/", "").replace(str(root) + "/", "")
    if "err=<" in text:
        text = text.split("err=<", 1)[1].rsplit(">", 1)[0]
    text = re.sub(r"^(Error|E\d{4} [^\]]*\]):?\s*", "", text.strip())
    return " ".join(text.split())
