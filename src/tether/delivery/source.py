"""Git sources for long-running delivery: one mirror per repository URL, shared by every app on it.

Fetches of one URL are serialised and coalesced: when several apps on the same repository ask
within ``min_interval`` of a fetch, they share it; a forced fetch (a webhook, a refresh) is
satisfied by any fetch that *started* after it was asked for, so a push that wakes 1,000 apps
on one repository costs one or two fetches, not 1,000. What follows from the mirror's state is
computed once and shared too: a ref's resolution (until the next fetch), a commit's author and
subject, the paths two commits differ by. Git runs in worker threads so the event loop stays
responsive.
"""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

from tether.errors import SourceError
from tether.source import Credentials, GitCache, Resolved
from tether.source.url import mask_url


@dataclass(frozen=True)
class CommitInfo:
    """What history records about a deployed commit."""

    sha: str
    author: str
    subject: str
    committed_at: datetime


@dataclass(frozen=True)
class Fetched:
    url: str
    commit: str
    resolved: Resolved
    info: CommitInfo


K = TypeVar("K")
V = TypeVar("V")


class SourceFetcher:
    def __init__(self, cache_dir: Path | None = None, *, min_interval: float = 5.0, timeout: float = 120.0) -> None:
        self.cache = GitCache(cache_dir, timeout=timeout)
        self.min_interval = min_interval
        self._locks: dict[str, asyncio.Lock] = {}
        self._fetched_at: dict[str, float] = {}
        self._fetch_started: dict[str, float] = {}
        #: fetches actually run, by URL (tests and metrics read it)
        self.fetches: dict[str, int] = {}
        self._resolved: dict[tuple[str, str], tuple[int, Fetched]] = {}
        self._infos: LRU[tuple[str, str], CommitInfo] = LRU(8192)
        self._changes: LRU[tuple[str, str, str], list[str]] = LRU(4096)
        self._exporting: dict[tuple[str, str], asyncio.Future[Path]] = {}

    async def fetch(self, url: str, credentials: Credentials | None = None, *, force: bool = False) -> float:
        """Bring the mirror of ``url`` up to date; returns the seconds the fetch took (0 when shared)."""
        asked = time.monotonic()
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            last, began = self._fetched_at.get(url), self._fetch_started.get(url)
            if began is not None and began >= asked:
                return 0.0  # a fetch that started after this call has what it asks for
            if not force and last is not None and time.monotonic() - last < self.min_interval:
                return 0.0
            started = time.monotonic()
            await asyncio.to_thread(self.cache.fetch, url, credentials)
            self._fetch_started[url], self._fetched_at[url] = started, time.monotonic()
            self.fetches[url] = self.fetches.get(url, 0) + 1
            return self._fetched_at[url] - started

    def invalidate(self, url: str) -> None:
        """The next fetch of ``url`` really fetches (a push was announced)."""
        self._fetched_at.pop(url, None)

    async def resolve(self, url: str, ref: str) -> Fetched:
        """The commit ``ref`` names in the mirror; shared by every app asking until the next fetch."""
        generation = self.fetches.get(url, 0)
        known = self._resolved.get((url, ref))
        if known is not None and known[0] == generation:
            return known[1]
        mirror = self.cache.mirror_path(url)
        resolved = await asyncio.to_thread(self.cache.resolve, mirror, url, ref)
        info = self._infos.get((url, resolved.commit))
        if info is None:
            info = await asyncio.to_thread(self.commit_info, url, resolved.commit)
            self._infos.put((url, resolved.commit), info)
        fetched = Fetched(url, resolved.commit, resolved, info)
        self._resolved[(url, ref)] = (generation, fetched)
        return fetched

    async def export(self, url: str, commit: str) -> Path:
        """The tree of ``commit``. Apps asking for the same commit at once share one export: each
        would otherwise extract the whole repository in parallel, all but one for nothing."""
        key = (url, commit)
        running = self._exporting.get(key)
        if running is None:
            running = asyncio.ensure_future(
                asyncio.to_thread(self.cache.export, self.cache.mirror_path(url), url, commit)
            )
            self._exporting[key] = running
            running.add_done_callback(lambda _done: self._exporting.pop(key, None))
        return await asyncio.shield(running)  # one waiter cancelled does not cancel the others' export

    def has_commit(self, url: str, commit: str) -> bool:
        return self.cache.has_commit(url, commit)

    def commit_info(self, url: str, commit: str) -> CommitInfo:
        mirror = self.cache.mirror_path(url)
        out = self.cache._git(["log", "-1", "--format=%an <%ae>%x00%s%x00%ct", commit], url=url, git_dir=mirror)
        author, subject, stamp = ([*out.decode("utf-8", "replace").rstrip("\n").split("\x00"), "", "", "0"])[:3]
        return CommitInfo(commit, author, subject, datetime.fromtimestamp(int(stamp or 0), UTC))

    async def changed_paths(self, url: str, old: str, new: str) -> list[str] | None:
        """Paths changed between two commits; None when ``old`` is unknown (treat as "everything")."""
        known = self._changes.get((url, old, new))  # commits never change: neither does their difference
        if known is not None:
            return known
        if not old or not self.has_commit(url, old):
            return None
        mirror = self.cache.mirror_path(url)
        out = await asyncio.to_thread(self.cache._git, ["diff", "--name-only", "-z", old, new], url=url, git_dir=mirror)
        paths = [p for p in out.decode("utf-8", "replace").split("\0") if p]
        self._changes.put((url, old, new), paths)
        return paths

    async def log(self, url: str, old: str, new: str, limit: int = 50) -> list[CommitInfo]:
        mirror = self.cache.mirror_path(url)
        span = f"{old}..{new}" if old else new
        out = await asyncio.to_thread(
            self.cache._git,
            ["log", f"-{limit}", "--format=%H%x00%an <%ae>%x00%s%x00%ct", span],
            url=url,
            git_dir=mirror,
        )
        infos = []
        for line in out.decode("utf-8", "replace").splitlines():
            sha, author, subject, stamp = ([*line.split("\x00"), "", "", "", "0"])[:4]
            infos.append(CommitInfo(sha, author, subject, datetime.fromtimestamp(int(stamp or 0), UTC)))
        return infos


class LRU(Generic[K, V]):
    """A small least-recently-used map: caches of immutable Git facts stay bounded."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class SecretCredentials:
    """Git credentials from a Secret's data (``username``/``password`` or ``identity``/``known_hosts``).

    HTTP credentials stay in memory. An SSH key must be a file for ssh(1): it is written to a
    private (0700) directory, readable only by this process's user, and removed on ``close``.
    """

    def __init__(self, data: Mapping[str, str], url: str) -> None:
        self._dir: str | None = None
        key_file = known_hosts = ""
        if data.get("identity"):
            key_file = self._private_file("identity", data["identity"])
        if data.get("known_hosts"):
            known_hosts = self._private_file("known_hosts", data["known_hosts"])
        base = Credentials.for_url(url, environ={})
        self.credentials = Credentials(
            data.get("username", base.username), data.get("password", base.password), key_file, known_hosts
        )

    def _private_file(self, name: str, content: str) -> str:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="tether-git-")
        path = os.path.join(self._dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as handle:
            handle.write(content if content.endswith("\n") else content + "\n")
        return path

    def close(self) -> None:
        if self._dir is not None:
            for name in os.listdir(self._dir):
                os.unlink(os.path.join(self._dir, name))
            os.rmdir(self._dir)
            self._dir = None


def describe(url: str, ref: str) -> str:
    return f"{mask_url(url)}@{ref or 'HEAD'}"


__all__ = ["CommitInfo", "Fetched", "SecretCredentials", "SourceError", "SourceFetcher", "describe"]
