"""Git through a local mirror cache: fetch, resolve a ref to a commit, export a commit's tree.

Layout under the cache directory (default ``$XDG_CACHE_HOME/tether``)::

    git/<hash of URL>-<name>.git     bare mirror per repository URL (credentials never stored)
    trees/<commit sha>/              exported tree, content-addressed, reused while the SHA is the same

Credentials are never put on a command line or into git's config on disk: for HTTP(S) they
travel as an ``http.extraHeader`` through ``GIT_CONFIG_*`` environment variables, for SSH as
``GIT_SSH_COMMAND`` options. Every message passes through ``mask_url`` / ``_scrub``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tether.errors import SourceError
from tether.source.credentials import Credentials
from tether.source.reach import DEFAULT_CONNECT_TIMEOUT, check_reachable, low_speed_env, ssh_options
from tether.source.semver_range import best_match, looks_like_range
from tether.source.url import mask_url

_SHA = re.compile(r"^[0-9a-f]{7,64}$")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tether"


@dataclass(frozen=True)
class Resolved:
    commit: str
    kind: str  # "branch" | "tag" | "semver" | "commit" | "head"
    name: str  # branch or tag name ("" for a commit / HEAD)
    annotated_tag: str = ""  # object id of an annotated tag, when the ref was one


def strip_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class GitCache:
    """Mirror cache for any number of repositories. Safe for concurrent processes (file locks)."""

    def __init__(
        self, cache_dir: Path | None = None, timeout: float = 300.0, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    ):
        self.root = Path(cache_dir) if cache_dir else default_cache_dir()
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    # -- running git -------------------------------------------------------------------------
    def _git(
        self,
        args: list[str],
        *,
        url: str,
        creds: Credentials | None = None,
        cwd: Path | None = None,
        git_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> bytes:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SSH_AUTH_SOCK")}
        env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_ASKPASS": "/bin/false"})
        env.update(low_speed_env(self.connect_timeout))
        if creds is not None:
            env.update(creds.git_env(url))
        if "GIT_SSH_COMMAND" in env:
            env["GIT_SSH_COMMAND"] += " " + shlex.join(ssh_options(self.connect_timeout))
        if extra_env:
            env.update(extra_env)
        command = ["git"] + (["--git-dir", str(git_dir)] if git_dir else []) + args
        try:
            done = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, timeout=self.timeout, input=stdin, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise SourceError(f"{mask_url(url)}: git {args[0]} took longer than {self.timeout:g}s") from error
        if done.returncode != 0:
            message = " ".join(self._scrub(done.stderr.decode("utf-8", "replace"), creds).split())
            raise SourceError(f"{mask_url(url)}: git {args[0]} failed: {message}")
        return done.stdout

    @staticmethod
    def _scrub(text: str, creds: Credentials | None) -> str:
        text = re.sub(r"(https?://)[^/@\s]+@", r"\1***@", text)
        for secret in creds.secrets() if creds else ():
            text = text.replace(secret, "***")
        return text

    @contextlib.contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(path) + ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- mirror ------------------------------------------------------------------------------
    def mirror_path(self, url: str) -> Path:
        clean = strip_credentials(url)
        digest = hashlib.sha256(clean.encode()).hexdigest()[:16]
        name = re.sub(r"[^A-Za-z0-9._-]", "_", clean.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))[:40]
        return self.root / "git" / f"{digest}-{name or 'repo'}.git"

    def fetch(self, url: str, creds: Credentials | None = None) -> Path:
        """Create or update the bare mirror of ``url``; returns its path."""
        mirror = self.mirror_path(url)
        clean = strip_credentials(url)
        check_reachable(url, self.connect_timeout)
        with self._lock(mirror):
            if not (mirror / "HEAD").exists():
                tmp = Path(tempfile.mkdtemp(prefix=".clone-", dir=mirror.parent))
                try:
                    self._git(["clone", "--mirror", "--quiet", "--", clean, str(tmp / "m.git")], url=url, creds=creds)
                    os.replace(tmp / "m.git", mirror)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            else:
                self._git(
                    ["fetch", "--prune", "--prune-tags", "--force", "--quiet", "origin"],
                    url=url,
                    creds=creds,
                    git_dir=mirror,
                )
        return mirror

    def has_commit(self, url: str, sha: str) -> bool:
        mirror = self.mirror_path(url)
        if not (mirror / "HEAD").exists():
            return False
        try:
            self._git(["cat-file", "-e", f"{sha}^{{commit}}"], url=url, git_dir=mirror)
            return True
        except SourceError:
            return False

    # -- resolution --------------------------------------------------------------------------
    def refs(self, mirror: Path, url: str) -> dict[str, tuple[str, str]]:
        """``refname -> (object id, peeled commit id)`` for heads and tags."""
        out = self._git(
            ["for-each-ref", "--format=%(refname) %(objectname) %(*objectname)", "refs/heads", "refs/tags"],
            url=url,
            git_dir=mirror,
        ).decode()
        refs: dict[str, tuple[str, str]] = {}
        for line in out.splitlines():
            name, obj, peeled = [*line.split(" "), "", ""][:3]
            refs[name] = (obj, peeled or obj)
        return refs

    def resolve(self, mirror: Path, url: str, ref: str) -> Resolved:
        kind, _, value = (
            ref.partition(":") if ref.split(":", 1)[0] in ("branch", "tag", "semver", "commit") else ("", "", ref)
        )
        if not ref or ref == "HEAD":
            try:
                head = self._git(["rev-parse", "--verify", "HEAD^{commit}"], url=url, git_dir=mirror).decode().strip()
            except SourceError:
                raise SourceError(
                    f"{mask_url(url)}: the repository has no default branch (HEAD); name one with ?ref="
                ) from None
            return Resolved(head, "head", "")
        refs = self.refs(mirror, url)
        if kind in ("", "branch") and f"refs/heads/{value}" in refs:
            return Resolved(refs[f"refs/heads/{value}"][1], "branch", value)
        if kind in ("", "tag") and f"refs/tags/{value}" in refs:
            obj, commit = refs[f"refs/tags/{value}"]
            return Resolved(commit, "tag", value, obj if obj != commit else "")
        if kind in ("", "commit") and _SHA.match(value):
            try:
                sha = (
                    self._git(
                        ["rev-parse", "--verify", "--end-of-options", f"{value}^{{commit}}"], url=url, git_dir=mirror
                    )
                    .decode()
                    .strip()
                )
                return Resolved(sha, "commit", "")
            except SourceError:
                if kind == "commit":
                    raise SourceError(f"{mask_url(url)}: commit {value} not found") from None
        if kind == "semver" or (kind == "" and looks_like_range(value)):
            tags = [name.removeprefix("refs/tags/") for name in refs if name.startswith("refs/tags/")]
            tag = best_match(value, tags)
            if tag is None:
                neither = "no such branch, tag or commit, and " if kind == "" else ""
                raise SourceError(
                    f"{mask_url(url)}: ref {value!r} not found: {neither}no tag matches semver range "
                    f"{value!r} (tags: {', '.join(sorted(tags)[:20]) or 'none'})"
                )
            obj, commit = refs[f"refs/tags/{tag}"]
            return Resolved(commit, "semver", tag, obj if obj != commit else "")
        what = f"{kind} {value!r} not found" if kind else f"ref {value!r} not found: no such branch, tag or commit"
        raise SourceError(f"{mask_url(url)}: {what}")

    # -- export ------------------------------------------------------------------------------
    def _check_symlinks(self, mirror: Path, url: str, commit: str) -> None:
        listing = self._git(["ls-tree", "-r", "-z", "--full-tree", commit], url=url, git_dir=mirror)
        links = []
        for entry in listing.split(b"\0"):
            if entry.startswith(b"120000 "):
                meta, _, path = entry.partition(b"\t")
                links.append((meta.split(b" ")[2].decode(), path.decode("utf-8", "replace")))
        if not links:
            return
        blobs = self._git(
            ["cat-file", "--batch"], url=url, git_dir=mirror, stdin=b"".join(oid.encode() + b"\n" for oid, _ in links)
        )
        stream = io.BytesIO(blobs)
        for _oid, path in links:
            size = int(stream.readline().split()[2])
            target = stream.read(size).decode("utf-8", "replace")
            stream.read(1)
            joined = PurePosixPath(path).parent / target
            depth = 0
            escaped = target.startswith("/")
            for part in joined.parts:
                depth = depth - 1 if part == ".." else depth + (part != ".")
                escaped = escaped or depth < 0
            if escaped:
                raise SourceError(
                    f"{mask_url(url)}@{commit[:12]}: {path}: symlink points outside the "
                    f"repository (to {target}); refusing to export it"
                )

    def _extract(self, mirror: Path, url: str, commit: str, into: Path) -> None:
        """Stream ``git archive`` into ``into`` (no whole-archive copy in memory)."""
        process = subprocess.Popen(
            ["git", "--git-dir", str(mirror), "archive", "--format=tar", commit],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", ""), "GIT_CONFIG_NOSYSTEM": "1"},
        )
        assert process.stdout is not None
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
                tar.extractall(into, filter="data")
        except (tarfile.TarError, OSError) as error:
            process.kill()
            raise SourceError(f"{mask_url(url)}@{commit[:12]}: export failed: {error}") from error
        finally:
            _out, err = process.communicate(timeout=self.timeout)
        if process.returncode != 0:
            raise SourceError(f"{mask_url(url)}@{commit[:12]}: git archive failed: {err.decode(errors='replace')}")

    def export(self, mirror: Path, url: str, commit: str) -> Path:
        """Tree of ``commit`` in ``trees/<commit>``, created atomically once and reused after."""
        target = self.root / "trees" / commit
        if target.is_dir():
            os.utime(target)  # mark as recently used for gc_trees
            return target
        self._check_symlinks(mirror, url, commit)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{commit[:12]}-", dir=target.parent))
        try:
            self._extract(mirror, url, commit, tmp)
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():  # someone else won the race; theirs is identical
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def gc_trees(self, keep: int = 20) -> list[str]:
        """Remove all but the ``keep`` most recently used exported trees; returns the removed SHAs."""
        trees = self.root / "trees"
        if not trees.is_dir():
            return []
        entries = sorted(
            (p for p in trees.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        removed = []
        for old in entries[keep:]:
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old.name)
        return removed
