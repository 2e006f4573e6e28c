"""Every Application in the cluster, kept current by one list + watch, and a fan-out of changes.

The list page filters and pages thousands of apps per request; asking the API server for all
of them each time would cost a full list per page view. The cache is read with the dashboard's
own identity, so it is never shown as is: ``tether.dashboard.access`` narrows it to what the
signed-in user may list. Subscribers (the server-sent event streams) get the key of each app
that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from tether.apps.ops import APPLICATION
from tether.errors import KubeError
from tether.kube import Gone, Kube

log = logging.getLogger("tether.dashboard")

AppKey = tuple[str, str]  # (namespace, name)


class AppCache:
    """Start with ``await cache.start()`` (returns once the first list is in), stop with ``stop()``."""

    def __init__(self, kube: Kube, *, retry_delay: float = 2.0) -> None:
        self.kube = kube
        self.apps: dict[AppKey, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.error = ""  # why the last list or watch failed ('' while healthy)
        self._retry_delay = retry_delay
        self._subscribers: set[asyncio.Queue[AppKey]] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        self._task = asyncio.create_task(self._run(), name="dashboard-app-cache")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.synced.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def namespaces(self) -> list[str]:
        return sorted({namespace for namespace, _ in self.apps})

    def put(self, obj: dict[str, Any]) -> None:
        """Store one object as a watch event would (also used after an action, so the next page is current)."""
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        self.apps[key] = obj
        self._publish(key)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[AppKey]]:
        queue: asyncio.Queue[AppKey] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def _publish(self, key: AppKey) -> None:
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):  # a slow reader refreshes everything anyway
                queue.put_nowait(key)

    async def _run(self) -> None:
        while True:
            try:
                items, version = await self.kube.list_with_version(APPLICATION)
                fresh = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in items}
                gone = self.apps.keys() - fresh.keys()
                self.apps = fresh
                for key in gone:
                    self._publish(key)
                self.error = ""
                self.synced.set()
                await self._watch(version)
            except asyncio.CancelledError:
                raise
            except Gone:
                continue  # the resourceVersion is too old: list again at once
            except KubeError as error:
                self.error = str(error)
                log.warning(
                    "dashboard: cannot list or watch Applications (retrying in %gs): %s", self._retry_delay, error
                )
                await asyncio.sleep(self._retry_delay)

    async def _watch(self, version: str) -> None:
        while True:
            async for kind, obj in self.kube.watch(APPLICATION, resource_version=version):
                meta = obj.get("metadata") or {}
                version = meta.get("resourceVersion") or version
                if kind == "BOOKMARK":
                    continue
                key = (meta.get("namespace", ""), meta.get("name", ""))
                if kind == "DELETED":
                    self.apps.pop(key, None)
                    self._publish(key)
                else:
                    self.put(obj)
