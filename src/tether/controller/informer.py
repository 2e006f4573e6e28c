"""An informer: one kind's objects kept current by one LIST and then watches.

The loop, after client-go's reflector:

1. LIST (all pages) and remember the list's resourceVersion;
2. WATCH from that version, moving the version forward with every event and BOOKMARK;
3. when the server ends the watch (its timeout) watch again from the last version at once;
   when the stream breaks or a request fails, wait with backoff and watch again (still no LIST);
4. when the server answers 410 Gone (the version fell out of its watch history), LIST again
   and hand the handlers synthetic ADDED / MODIFIED / DELETED events for the differences to
   what was known, so a deletion that happened while disconnected is still seen.

So steady state costs watch requests only. Handlers run one at a time, in the informer's task,
in event order; a handler that raises is logged and the informer carries on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from tether.controller.backoff import Backoff
from tether.errors import KubeError
from tether.kube import Gone, Kube, ResourceInfo

log = logging.getLogger("tether.controller.informer")

Obj = dict[str, Any]
#: (event type, object, previous object or None); may be sync or async
Handler = Callable[[str, Obj, Obj | None], Awaitable[None] | None]
Transform = Callable[[Obj], Obj]

ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"


@dataclass
class InformerStats:
    """Requests made and events seen, for tests and metrics."""

    lists: int = 0  # LIST requests that succeeded (the first one and every relist)
    relists: int = 0  # LISTs after a 410 Gone
    watches: int = 0  # watch requests started
    events: int = 0  # ADDED/MODIFIED/DELETED handed to handlers, synthetic ones included
    errors: int = 0  # failed requests and broken streams


class Informer:
    def __init__(
        self,
        kube: Kube,
        info: ResourceInfo,
        namespace: str | None = None,
        label_selector: str | None = None,
        *,
        transform: Transform | None = None,
        backoff: Backoff | None = None,
        watch_timeout: int = 300,
        known: Iterable[Obj] = (),
    ) -> None:
        """``known``: objects a previous informer of the same set had seen; the first LIST then
        hands on only the differences (so a restart neither repeats ADDED nor misses a deletion)."""
        self.kube = kube
        self.info = info
        self.namespace = namespace if info.namespaced else None
        self.label_selector = label_selector
        self.stats = InformerStats()
        self.resource_version = ""
        self.last_error: KubeError | None = None
        self._transform = transform
        self._backoff = backoff or Backoff(base=0.5, factor=2, cap=30)
        self._watch_timeout = watch_timeout
        self._handlers: list[Handler] = []
        self._objects: dict[tuple[str, str], Obj] = {_key(obj): obj for obj in known}
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        selector = f" selecting {self.label_selector}" if self.label_selector else ""
        return f"<Informer {self.info.plural}.{self.info.group or 'core'}{where}{selector}>"

    # ------------------------------------------------------------ public

    def on_event(self, handler: Handler) -> None:
        """Call ``handler(type, obj, old)`` for every change; register before ``start``."""
        self._handlers.append(handler)

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=repr(self))
        return self._task

    async def stop(self) -> None:
        """Cancel the list/watch loop and wait until it has ended (the open watch is closed)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        if task is not asyncio.current_task():  # stopped from one of its own handlers: it ends on return
            # wait() rather than await: the task's own CancelledError must not read as ours
            await asyncio.wait([task])

    async def __aenter__(self) -> Informer:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def synced(self) -> bool:
        """Has the first LIST been delivered to the handlers?"""
        return self._synced.is_set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Wait for the first LIST to be delivered; a ``KubeError`` naming the last failure when
        ``timeout`` passes first."""
        if self._synced.is_set():
            return
        if self._task is None:
            raise KubeError(f"{self!r}: wait_synced before start()")
        synced = asyncio.ensure_future(self._synced.wait())
        try:
            await asyncio.wait({synced, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            synced.cancel()
        if not self._synced.is_set():
            cause = f": {self.last_error}" if self.last_error else ""
            state = "stopped" if self._task is None or self._task.done() else f"not synced after {timeout:g}s"
            raise KubeError(f"{self!r} {state}{cause}")

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._objects.get(((namespace or "") if self.info.namespaced else "", name))

    def items(self) -> Iterator[Obj]:
        return iter(list(self._objects.values()))

    def __len__(self) -> int:
        return len(self._objects)

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        must_list, failures = True, 0
        while True:
            try:
                if must_list:
                    await self._list()
                    must_list = False
                if await self._watch():
                    failures = 0
                    continue
                # closed at once without a single event: treat like a failure so it cannot spin
                raise _QuickClose("the server closed the watch at once")
            except Gone as error:
                log.info("%r: %s; listing again", self, error)
                self.stats.errors += 1
                self.last_error = error
                # the first Gone after a healthy watch relists at once; Gone again before a watch
                # succeeded (history shorter than the write rate, or a LIST's stale page) backs off
                if must_list or failures:
                    failures = await self._sleep(failures)
                else:
                    failures = 1
                must_list = True
            except KubeError as error:
                self.stats.errors += 1
                self.last_error = error
                log.warning("%r: %s", self, error)
                failures = await self._sleep(failures)
            except Exception as error:  # an undecodable event or a bug: start over rather than die
                self.stats.errors += 1
                self.last_error = KubeError(f"{self!r}: {type(error).__name__}: {error}")
                log.exception("%r: unexpected failure; listing again", self)
                must_list = True
                failures = await self._sleep(failures)

    async def _sleep(self, failures: int) -> int:
        await asyncio.sleep(self._backoff.delay(failures))
        return failures + 1

    async def _list(self) -> None:
        items, version = await self.kube.list_with_version(
            self.info, self.namespace, label_selector=self.label_selector
        )
        self.stats.lists += 1
        if self._synced.is_set():
            self.stats.relists += 1
        fresh: dict[tuple[str, str], Obj] = {}
        for item in items:
            obj = self._prepare(item)
            fresh[_key(obj)] = obj
        known, self._objects = self._objects, dict(fresh)
        self.resource_version = version
        self.last_error = None
        for key, old in known.items():
            if key not in fresh:
                await self._emit(DELETED, old, old)
        for key, obj in fresh.items():
            old = known.get(key)
            if old is None:
                await self._emit(ADDED, obj, None)
            elif _version(old) != _version(obj):
                await self._emit(MODIFIED, obj, old)
            else:  # unchanged: keep the instance handlers (and the cache) already hold
                self._objects[key] = old
        self._synced.set()

    async def _watch(self) -> bool:
        """One watch request; True when it delivered something or ran its course."""
        self.stats.watches += 1
        loop = asyncio.get_running_loop()
        started, seen = loop.time(), False
        stream = self.kube.watch(
            self.info,
            self.namespace,
            label_selector=self.label_selector,
            resource_version=self.resource_version,
            timeout_seconds=self._watch_timeout,
        )
        async with aclosing(stream) as events:
            async for kind, raw in events:
                seen = True
                version = _version(raw)
                if kind == BOOKMARK:
                    self.resource_version = version or self.resource_version
                    continue
                obj = self._prepare(raw)
                key = _key(obj)
                if kind == DELETED:
                    old = self._objects.pop(key, None)
                else:
                    old = self._objects.get(key)
                    self._objects[key] = obj
                if version:
                    self.resource_version = version
                await self._emit(kind, obj, old)
        self.last_error = None
        return seen or loop.time() - started >= min(1.0, self._watch_timeout / 2)

    def _prepare(self, obj: Obj) -> Obj:
        obj.setdefault("apiVersion", self.info.api_version)
        obj.setdefault("kind", self.info.kind)
        return self._transform(obj) if self._transform else obj

    async def _emit(self, kind: str, obj: Obj, old: Obj | None) -> None:
        self.stats.events += 1
        for handler in self._handlers:
            try:
                result = handler(kind, obj, old)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # one faulty handler must not stop the informer or the others
                log.exception("%r: event handler %r failed on %s %s", self, handler, kind, _key(obj))


class _QuickClose(KubeError):
    """The server ended a watch immediately, repeatedly possible when it is unhealthy."""


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _version(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion") or ""
