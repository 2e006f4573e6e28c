"""Live objects kept by informers, indexed for the reconciler, and the engine's reader over them.

- ``ObjectCache``: every object by (group, kind, namespace, name) and by the Application that
  manages it (labels ``tether.dev/app`` and, when present, ``tether.dev/app-namespace``).
  ``managedFields`` stay (drift detection reads them); kubectl's last-applied annotation, often
  the largest field of an object and of no use here, is dropped.
- ``InformerSet``: one informer per kind, started on demand, all feeding one cache.
- ``CacheReader``: the engine's live-object reader answered from the cache, so planning in the
  controller makes no LIST requests.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from tether.controller.informer import DELETED, Handler, Informer, InformerStats, Obj
from tether.errors import KubeError
from tether.kube import Kube, ResourceInfo, UnknownKind

log = logging.getLogger("tether.controller.cache")

Key = tuple[str, str, str, str]  # (group, kind, namespace, name); namespace "" when cluster-scoped
_STAT_FIELDS = ("lists", "relists", "watches", "events", "errors")
APP_LABEL = "tether.dev/app"
APP_NAMESPACE_LABEL = "tether.dev/app-namespace"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    group = (obj.get("apiVersion") or "").rpartition("/")[0]
    return group, obj.get("kind") or "", meta.get("namespace") or "", meta.get("name") or ""


def slim(obj: Obj) -> Obj:
    """Drop what the controller never reads (in place: the object is fresh from the wire)."""
    annotations = (obj.get("metadata") or {}).get("annotations")
    if annotations:
        annotations.pop(LAST_APPLIED, None)
    return obj


def _app_of(obj: Obj) -> tuple[str | None, str] | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    name = labels.get(APP_LABEL)
    return (labels.get(APP_NAMESPACE_LABEL), name) if name else None


class ObjectCache:
    def __init__(self) -> None:
        self._objects: dict[Key, Obj] = {}
        # app name -> app namespace label (None when absent) -> keys
        self._apps: dict[str, dict[str | None, set[Key]]] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def apply(self, kind: str, obj: Obj, old: Obj | None = None) -> None:
        """Take one informer event (``Informer.on_event`` signature)."""
        key = key_of(obj)
        previous = self._objects.pop(key, None) if kind == DELETED else self._objects.get(key)
        if kind != DELETED:
            self._objects[key] = obj
        was = _app_of(previous) if previous is not None else None
        now = _app_of(obj) if kind != DELETED else None
        if was != now:
            if was is not None:
                self._unindex(was, key)
            if now is not None:
                self._apps.setdefault(now[1], {}).setdefault(now[0], set()).add(key)

    def _unindex(self, app: tuple[str | None, str], key: Key) -> None:
        by_namespace = self._apps.get(app[1])
        if by_namespace is None:
            return
        keys = by_namespace.get(app[0])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del by_namespace[app[0]]
        if not by_namespace:
            del self._apps[app[1]]

    def get(self, group: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        return self._objects.get((group, kind, namespace or "", name))

    def by_app(
        self,
        app_namespace: str | None,
        app_name: str,
        group: str | None = None,
        kind: str | None = None,
    ) -> dict[Key, Obj]:
        """Objects labelled ``tether.dev/app=app_name``; with ``app_namespace`` only those also
        labelled ``tether.dev/app-namespace=app_namespace`` (None: whatever that label says, as
        the label selector ``tether.dev/app=<name>`` would). Optionally of one group / kind."""
        by_namespace = self._apps.get(app_name) or {}
        sets = [by_namespace.get(app_namespace) or set()] if app_namespace is not None else by_namespace.values()
        return {
            key: self._objects[key]
            for keys in sets
            for key in keys
            if (group is None or key[0] == group) and (kind is None or key[1] == kind)
        }

    def drop_kind(self, group: str, kind: str) -> int:
        """Forget every object of one kind (its informer is gone); returns how many."""
        doomed = [key for key in self._objects if key[0] == group and key[1] == kind]
        for key in doomed:
            self.apply(DELETED, self._objects[key])
        return len(doomed)

    def objects(self) -> Iterator[Obj]:
        return iter(list(self._objects.values()))


class InformerSet:
    """One informer per (group, kind) over ``namespace`` (None: all) and ``label_selector``,
    all feeding ``cache``; handlers registered with ``on_event`` see every kind's events after
    the cache took them."""

    def __init__(
        self,
        kube: Kube,
        cache: ObjectCache | None = None,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        watch_timeout: int = 300,
        sync_timeout: float = 60.0,
    ) -> None:
        self.kube = kube
        self.cache = cache if cache is not None else ObjectCache()
        self.namespace = namespace
        self.label_selector = label_selector
        self.sync_timeout = sync_timeout
        self._watch_timeout = watch_timeout
        self._informers: dict[tuple[str, str], Informer] = {}
        self._handlers: list[Handler] = []
        self._lock = asyncio.Lock()
        self._retired = InformerStats()

    def on_event(self, handler: Handler) -> None:
        self._handlers.append(handler)

    @property
    def informers(self) -> dict[tuple[str, str], Informer]:
        return dict(self._informers)

    def stats(self) -> InformerStats:
        """Totals over every informer this set ran, stopped ones included (counters only grow)."""
        total = InformerStats()
        for stats in [self._retired, *(informer.stats for informer in self._informers.values())]:
            for name in _STAT_FIELDS:
                setattr(total, name, getattr(total, name) + getattr(stats, name))
        return total

    def _retire(self, informer: Informer) -> None:
        for name in _STAT_FIELDS:
            setattr(self._retired, name, getattr(self._retired, name) + getattr(informer.stats, name))

    def watching(self, info: ResourceInfo) -> bool:
        return (info.group, info.kind) in self._informers

    async def ensure(self, info: ResourceInfo, *, wait: bool = True) -> Informer:
        """The informer of ``info``'s kind, started if there is none yet; with ``wait`` once it
        has synced (a ``KubeError`` after ``sync_timeout``)."""
        async with self._lock:
            informer = self._informers.get((info.group, info.kind))
            if informer is None:
                informer = self._start(info)
            elif informer.info.version != info.version:
                log.debug("%r already serves %s; not adding %s", informer, informer.info.api_version, info.api_version)
        if wait:
            await informer.wait_synced(self.sync_timeout)
        return informer

    def _start(self, info: ResourceInfo, known: list[Obj] | None = None) -> Informer:
        informer = Informer(
            self.kube,
            info,
            self.namespace,
            self.label_selector,
            transform=slim,
            watch_timeout=self._watch_timeout,
            known=known or (),
        )
        informer.on_event(self._dispatch)
        self._informers[(info.group, info.kind)] = informer
        informer.start()
        return informer

    async def _dispatch(self, kind: str, obj: Obj, old: Obj | None) -> None:
        self.cache.apply(kind, obj, old)
        for handler in list(self._handlers):
            try:
                result = handler(kind, obj, old)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("informer event handler %r failed on %s %s", handler, kind, key_of(obj))

    async def restart(self, info: ResourceInfo | None = None) -> None:
        """Restart one kind's informer (``info`` may name a new version or plural for it) or,
        with None, all of them, e.g. after CRDs changed. What they knew carries over, so the
        new LIST produces only the differences as events."""
        async with self._lock:
            if info is None:
                targets = [(old.info, old) for old in self._informers.values()]
            else:
                targets = [(info, self._informers.get((info.group, info.kind)))]
            for new_info, old in targets:
                known: list[Obj] = []
                if old is not None:
                    await old.stop()
                    self._retire(old)
                    known = list(old.items())
                self._start(new_info, known)

    async def remove(self, info: ResourceInfo) -> None:
        """Stop watching a kind (its CRD is gone) and forget its objects, without events."""
        async with self._lock:
            informer = self._informers.pop((info.group, info.kind), None)
            if informer is not None:
                await informer.stop()
                self._retire(informer)
            self.cache.drop_kind(info.group, info.kind)

    async def stop(self) -> None:
        async with self._lock:
            informers, self._informers = list(self._informers.values()), {}
        await asyncio.gather(*(informer.stop() for informer in informers))
        for informer in informers:
            self._retire(informer)


class CacheReader:
    """The engine's live-object reader over an ``InformerSet``. ``app_namespace`` narrows
    ``list_app_objects`` to one Application's namespace label (see ``ObjectCache.by_app``)."""

    def __init__(self, informers: InformerSet, app_namespace: str | None = None) -> None:
        self.informers = informers
        self.app_namespace = app_namespace

    async def list_app_objects(
        self, infos: list[ResourceInfo], identity: Any, *, namespaces: Iterable[str] = ()
    ) -> dict[Key, dict[str, Any]]:
        """Live objects labelled with the app's name, of these kinds, keyed by (group, kind, namespace,
        name); ``identity`` is an ``AppIdentity`` (or a plain app name). The watches are cluster-wide,
        so ``namespaces`` (where the engine would list when it cannot list everywhere) is not needed."""
        app = identity if isinstance(identity, str) else identity.name
        watchable = [info for info in {(i.group, i.kind): i for i in infos}.values() if await self._watchable(info)]
        await asyncio.gather(*(self.informers.ensure(info) for info in watchable))
        found: dict[Key, dict[str, Any]] = {}
        for info in watchable:
            found.update(self.informers.cache.by_app(self.app_namespace, app, info.group, info.kind))
        return found

    async def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """One object; from the cache when its kind is watched without a label selector (else
        the cache may not hold it, and this is one GET)."""
        if self.informers.label_selector is None and await self._watchable(info):
            await self.informers.ensure(info)
            return self.informers.cache.get(info.group, info.kind, namespace if info.namespaced else None, name)
        return await self.informers.kube.get(info, name, namespace)

    async def _watchable(self, info: ResourceInfo) -> bool:
        kube = self.informers.kube
        if self.informers.watching(info):
            return True
        if not kube.discovery.served(info):
            # announced by a CRD being applied: watch it once the server serves it
            try:
                served = await kube.info(info.api_version, info.kind)
            except UnknownKind:
                return False
            if not kube.discovery.served(served):
                return False
            info = served
        missing = {"list", "watch"} - info.verbs
        if missing:
            raise KubeError(
                f"{info.kind}.{info.group or 'core'}: the API server does not allow "
                f"{' or '.join(sorted(missing))} on {info.plural}; the controller cannot watch it"
            )
        return True
