"""Source stage: turn a PATH argument (directory or Git source) into a local directory to render.

spec = parse_source("https://host/repo.git//apps/web?ref=v1.2.0")
checkout = fetch_source(spec)      # Checkout(root, directory, revision)
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tether.errors import SourceError
from tether.model import SourceRevision
from tether.source.credentials import Credentials
from tether.source.git import GitCache, Resolved, default_cache_dir
from tether.source.reach import DEFAULT_CONNECT_TIMEOUT
from tether.source.url import SourceSpec, mask_url, parse_source


class PathNotFound(SourceError):
    """A local PATH that does not exist: a usage error (exit 2) even where other source errors are findings."""


@dataclass(frozen=True)
class Checkout:
    root: Path  # the exported tree (or the local directory)
    directory: Path  # the directory (or the one file) to render: root / sub path
    revision: SourceRevision | None = None
    signature: str = ""


def fetch_source(
    spec: SourceSpec,
    *,
    cache_dir: str | Path | None = None,
    verify: str = "",
    allowed_signers: str = "",
    timeout: float = 300.0,
    source_root: str | Path | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> Checkout:
    if not spec.is_git:
        target = Path(spec.path).absolute()
        if os.path.lexists(target) and not target.exists():
            raise SourceError(f"{spec.path}: a symlink loop or a symlink to nothing; cannot render it")
        if not target.exists():
            raise PathNotFound(f"{spec.path}: no such file or directory (and not a Git source URL)")
        base = target if target.is_dir() else target.parent
        root = Path(source_root).absolute() if source_root else _work_tree(base) or base
        if root != target and root not in target.parents:
            raise SourceError(f"{spec.path}: not inside the source root {root}")
        return Checkout(root, target)
    cache = GitCache(Path(cache_dir) if cache_dir else None, timeout=timeout, connect_timeout=connect_timeout)
    creds = Credentials.for_url(spec.url)
    ref = spec.ref.removeprefix("commit:")
    # a commit already in the mirror is immutable: no network needed
    pinned = bool(re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", ref)) and cache.has_commit(spec.url, ref)
    mirror = cache.mirror_path(spec.url) if pinned else cache.fetch(spec.url, creds)
    resolved = cache.resolve(mirror, spec.url, spec.ref)
    signature = ""
    if verify:
        from tether.source.verify import verify_revision

        signature = verify_revision(cache, mirror, spec.url, resolved, verify, allowed_signers)
    root = cache.export(mirror, spec.url, resolved.commit)
    directory = root / spec.path if spec.path else root
    if not (directory.is_dir() or directory.is_file()):
        raise SourceError(
            f"{spec.masked_url}@{resolved.commit[:12]}: no directory or file {spec.path!r} in the repository"
        )
    revision = SourceRevision(url=spec.masked_url, ref=spec.ref, commit=resolved.commit, path=spec.path)
    return Checkout(root, directory, revision, signature)


def _work_tree(directory: Path) -> Path | None:
    """Top of the Git work tree holding ``directory``, so overlays may reach ``../base``."""
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--show-toplevel"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    top = Path(done.stdout.decode().strip())
    # compare resolved paths but keep the caller's spelling of the directory
    try:
        return (
            directory.parents[len(directory.resolve().relative_to(top.resolve()).parts) - 1]
            if directory.resolve() != top.resolve()
            else directory
        )
    except (ValueError, IndexError):
        return None


__all__ = [
    "Checkout",
    "Credentials",
    "GitCache",
    "PathNotFound",
    "Resolved",
    "SourceSpec",
    "default_cache_dir",
    "fetch_source",
    "mask_url",
    "parse_source",
]
