"""The image automation's view of its three kinds: ImageRepositories, ImagePolicies, ImageUpdates.

``ImageObjects`` holds every object of the three kinds by (namespace, name), either from one LIST
(``list_once``, for stepping the loop by hand) or kept current by informers (``start``): one LIST
per kind and namespace, then watches, so the running loop makes no LIST requests in steady state
(a relist happens only when the server answers 410 Gone).

``spec_changed`` tells the events that must wake the loop (a new or deleted object, a new
generation, a new scan request) from the echoes of the loop's own status writes, which must not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from tether.controller.informer import ADDED, DELETED, Informer, InformerStats
from tether.errors import KubeError
from tether.images.api import POLICY_INFO, REPOSITORY_INFO, SCAN_ANNOTATION, UPDATE_INFO, key_of
from tether.kube import Kube, ResourceInfo

Key = tuple[str, str]
Obj = dict[str, Any]
#: the loop's name for each kind, and its resource
KINDS: tuple[tuple[str, ResourceInfo], ...] = (
    ("repositories", REPOSITORY_INFO),
    ("policies", POLICY_INFO),
    ("updates", UPDATE_INFO),
)
#: (kind as in KINDS, event type, object, previous object or None)
ChangeHandler = Callable[[str, str, Obj, Obj | None], None]


def spec_changed(event: str, obj: Obj, old: Obj | None) -> bool:
    """Does this event change what the loop should do? Status-only changes (the loop's own
    writes, seen again through the watch) do not."""
    if event in (ADDED, DELETED) or old is None:
        return True
    meta, old_meta = obj.get("metadata") or {}, old.get("metadata") or {}
    if meta.get("generation") != old_meta.get("generation"):
        return True
    if meta.get("generation") is None and obj.get("spec") != old.get("spec"):  # a server without generations
        return True
    return (meta.get("annotations") or {}).get(SCAN_ANNOTATION) != (old_meta.get("annotations") or {}).get(
        SCAN_ANNOTATION
    )


class ImageObjects:
    def __init__(self, kube: Kube, namespaces: Iterable[str | None], *, watch_timeout: int = 300) -> None:
        """``namespaces``: the namespaces to read; ``None`` among them reads every namespace."""
        self.kube = kube
        self.namespaces = tuple(namespaces)
        self.watch_timeout = watch_timeout
        self._by_kind: dict[str, dict[Key, Obj]] = {kind: {} for kind, _ in KINDS}
        self._informers: list[Informer] = []

    def items(self, kind: str) -> list[Obj]:
        return list(self._by_kind[kind].values())

    def keys(self, kind: str) -> set[Key]:
        return set(self._by_kind[kind])

    # ------------------------------------------------------------ one LIST

    async def list_once(self) -> None:
        """LIST the three kinds now and replace what is held (the informers, when running, go on
        from their own versions)."""
        for kind, info in KINDS:
            fresh: dict[Key, Obj] = {}
            for namespace in self.namespaces:
                for item in await self.kube.list(info, namespace):
                    item.setdefault("apiVersion", info.api_version)
                    item.setdefault("kind", info.kind)
                    fresh[key_of(item)] = item
            self._by_kind[kind] = fresh

    # ------------------------------------------------------------ informers

    def start(self, on_change: ChangeHandler) -> None:
        """Start one informer per kind and namespace; ``on_change`` hears every event after the
        object held was updated."""
        if self._informers:
            return
        for kind, info in KINDS:
            for namespace in self.namespaces:
                informer = Informer(self.kube, info, namespace, watch_timeout=self.watch_timeout)
                informer.on_event(self._handler(kind, on_change))
                informer.start()
                self._informers.append(informer)

    def _handler(self, kind: str, on_change: ChangeHandler) -> Callable[[str, Obj, Obj | None], None]:
        held = self._by_kind[kind]

        def handle(event: str, obj: Obj, old: Obj | None) -> None:
            if event == DELETED:
                held.pop(key_of(obj), None)
            else:
                held[key_of(obj)] = obj
            on_change(kind, event, obj, old)

        return handle

    @property
    def synced(self) -> bool:
        return bool(self._informers) and all(informer.synced for informer in self._informers)

    async def wait_synced(self, timeout: float) -> None:
        """Wait until every informer delivered its first LIST; a ``KubeError`` naming the first one
        that did not (and its last failure) when ``timeout`` passes first."""
        if not self._informers:
            raise KubeError("the image automation's informers were not started: call start() first")
        deadline = asyncio.get_running_loop().time() + timeout
        for informer in self._informers:
            await informer.wait_synced(max(0.0, deadline - asyncio.get_running_loop().time()))

    async def stop(self) -> None:
        informers, self._informers = self._informers, []
        for informer in informers:
            await informer.stop()

    def stats(self) -> InformerStats:
        """Requests and events of all the informers together."""
        total = InformerStats()
        for informer in self._informers:
            for name in ("lists", "relists", "watches", "events", "errors"):
                setattr(total, name, getattr(total, name) + getattr(informer.stats, name))
        return total


__all__ = ["KINDS", "ImageObjects", "spec_changed"]
