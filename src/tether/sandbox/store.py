"""The sandbox's object store: the one place objects live, with Kubernetes lifecycle semantics.

In-process API (stable; the REST layer, controllers and simulations all use it). Everything runs
on the server's asyncio loop thread; methods are synchronous and atomic (no awaits inside), so a
caller never sees a half-applied write. Objects returned are the stored dicts: treat them as
read-only and ``clone()`` before changing anything.

    store.registry.get(group, version, plural) / .by_kind(api_version, kind) -> ResourceType
    store.get(rt, namespace, name) -> dict | None            # namespace "" for cluster-scoped
    store.list(rt, namespace=None, predicate=None) -> (items, resourceVersion)
    store.create(rt, obj, dry_run=False) -> dict             # uid, creationTimestamp, generation, RV
    store.update(rt, obj, subresource="", dry_run=False) -> dict
        # obj.metadata.resourceVersion, when set, must equal the live one (409 Conflict);
        # subresource "" keeps the live .status of kinds with a status subresource,
        # "status" keeps everything but .status; generation bumps when anything outside
        # metadata/status changes; a no-op update writes nothing and keeps the RV.
    store.delete(rt, namespace, name, preconditions=None, propagation=None, dry_run=False)
        -> (obj, removed)   # finalizers -> deletionTimestamp set, removed=False
        # a Namespace only goes Terminating: the namespace controller (tether.sandbox.namespaces)
        # empties it and removes spec.finalizers through the "finalize" subresource
    store.subscribe(key=None, namespace=None, since=None) -> Subscription
        # async iterator of WatchEvent (ADDED/MODIFIED/DELETED, same as watch) replaying history
        # after ``since``; raises ApiError 410 Expired when ``since`` is older than the history.
    store.listeners.append(fn)    # fn(WatchEvent) called synchronously after every write
    store.admission.append(fn)    # fn(op, rt, new, old) before every write; may change new or raise ApiError
    store.compact(rv=None)        # forget history up to rv (default: all), later watches from older RVs get 410
    store.gc_enabled              # set by a garbage collector: Foreground/Orphan then add their finalizers

Writes raise ``ApiError`` (NotFound, AlreadyExists, Conflict, Forbidden) carrying the upstream
Status. All errors a caller can get are ApiError.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.sandbox import errors
from tether.sandbox.events import Subscription, WatchEvent, clone, encode, now
from tether.sandbox.persist import Persistence
from tether.sandbox.resources import Registry, ResourceType

log = logging.getLogger(__name__)
__all__ = ["Store", "Subscription", "WatchEvent", "clone", "encode", "now"]

NAMESPACES = ("", "namespaces")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})  # upstream's immortal namespaces
NAMESPACE_FINALIZER = "kubernetes"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _strip_volatile(obj: dict[str, Any]) -> dict[str, Any]:
    """obj without resourceVersion and managedFields times: what a no-op update compares."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    if "managedFields" in meta:
        meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} for e in meta["managedFields"]]
    return {**obj, "metadata": meta}


def _spec_part(obj: dict[str, Any], include_status: bool) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "metadata" and (include_status or k != "status")}


def _refuse_new_finalizers(rt: ResourceType, name: str, before: list[str], after: list[str]) -> None:
    """A terminating object may only lose finalizers (upstream metadata validation)."""
    added = [finalizer for finalizer in after if finalizer not in before]
    if added:
        shown = "[]string{" + ", ".join(f'"{f}"' for f in added) + "}"
        message = (
            f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {shown}"
        )
        raise errors.invalid(
            rt.kind,
            rt.group,
            name,
            [{"reason": "FieldValueForbidden", "field": "metadata.finalizers", "message": message}],
        )


def _spec_finalizers(rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    if rt.storage_key != NAMESPACES:
        return []
    spec = obj.get("spec")
    return list(spec.get("finalizers") or []) if isinstance(spec, dict) else []


def _prepare_namespace(obj: dict[str, Any]) -> None:
    """On create a Namespace is Active and always carries the ``kubernetes`` finalizer (upstream)."""
    obj["status"] = {"phase": "Active"}
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    finalizers = list(spec.get("finalizers") or [])
    if NAMESPACE_FINALIZER not in finalizers:
        finalizers.append(NAMESPACE_FINALIZER)
    spec["finalizers"] = finalizers


def _keep_spec_finalizers(obj: dict[str, Any], old: dict[str, Any]) -> None:
    """spec.finalizers of a Namespace change only through its ``finalize`` subresource."""
    before = (old.get("spec") or {}).get("finalizers")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    if before is None:
        spec.pop("finalizers", None)
    else:
        spec["finalizers"] = list(before)


class Store:
    def __init__(self, registry: Registry, data_dir: Path | None = None, *, history_size: int = 10_000) -> None:
        self.registry = registry
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self.rv = 0
        self._history: deque[WatchEvent] = deque()
        self._history_size = history_size
        self.floor = 0  # every event with rv > floor is in the history
        self._subscribers: set[Subscription] = set()
        self.listeners: list[Callable[[WatchEvent], None]] = []
        self.admission: list[Callable[[str, ResourceType, dict[str, Any], dict[str, Any] | None], None]] = []
        self.gc_enabled = False
        self._db = Persistence(data_dir / "sandbox.db") if data_dir else None
        self._flush_pending = False
        # the last stored object and its JSON (a reference, so identity checks stay valid)
        self._last_encoded: tuple[dict[str, Any] | None, str] = (None, "")
        if self._db:
            self.rv, rows = self._db.load()
            for group, plural, obj in rows:
                meta = obj["metadata"]
                self.objects.setdefault((group, plural), {})[(meta.get("namespace", ""), meta["name"])] = obj
        namespace_type = registry.get("", "v1", "namespaces")
        assert namespace_type is not None
        for name in DEFAULT_NAMESPACES:
            if self.get(namespace_type, "", name) is None:
                self.create(
                    namespace_type,
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": name},
                        "spec": {"finalizers": ["kubernetes"]},
                        "status": {"phase": "Active"},
                    },
                )
        # like a fresh watch cache: history starts now, older versions are "too old" (410)
        self.floor = self.rv

    # -- reads -----------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        bucket = self.objects.get(rt.storage_key)
        return bucket.get((namespace if rt.namespaced else "", name)) if bucket else None

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        bucket = self.objects.get(rt.storage_key) or {}
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        items = [bucket[k] for k in keys]
        if predicate is not None:
            items = [o for o in items if predicate(o)]
        return items, self.rv

    def list_at(self, rt: ResourceType, namespace: str | None, rv: int) -> list[dict[str, Any]]:
        """The objects as they were at resourceVersion ``rv`` (consistent pagination), rebuilt
        by undoing later events; 410 Expired when the history no longer reaches back that far."""
        if rv < self.floor:
            raise errors.expired(
                f"The provided continue parameter is too old to display a consistent list result. "
                f"You can start a new list without the continue parameter. (too old resource version: {rv})"
            )
        key = rt.storage_key
        state = {k: o for k, o in (self.objects.get(key) or {}).items() if namespace is None or k[0] == namespace}
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if event.key != key or (namespace is not None and event.namespace != namespace):
                continue
            meta = event.object["metadata"]
            item = (event.namespace, meta["name"])
            if event.type == "ADDED":
                state.pop(item, None)
            elif event.old is not None:
                state[item] = event.old
        return [state[k] for k in sorted(state)]

    # -- writes ----------------------------------------------------------------------------------

    def create(self, rt: ResourceType, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if rt.namespaced else ""
        if not rt.namespaced:
            meta.pop("namespace", None)
        elif not namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        else:
            self._check_namespace_open(rt, namespace, meta.get("name") or "")
        if rt.storage_key == NAMESPACES:
            _prepare_namespace(obj)
        bucket = self.objects.setdefault(rt.storage_key, {})
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "message": "name or generateName is required",
                            "field": "metadata.name",
                        }
                    ],
                )
            for _ in range(8):
                meta["name"] = prefix + "".join(random.choices(_NAME_CHARS, k=5))
                if (namespace, meta["name"]) not in bucket:
                    break
        name = meta["name"]
        if (namespace, name) in bucket:
            raise errors.already_exists(rt.plural, rt.group, name)
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "resourceVersion"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if rt.tracks_generation or rt.crd:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        for check in self.admission:
            check("CREATE", rt, obj, None)
        if dry_run:
            meta["resourceVersion"] = str(self.rv)
            return obj
        self._write(rt, namespace, name, obj, None, "ADDED")
        return obj

    def update(
        self, rt: ResourceType, obj: dict[str, Any], *, subresource: str = "", dry_run: bool = False
    ) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if rt.namespaced else ""
        name = meta.get("name", "")
        old = self.get(rt, namespace, name)
        if old is None:
            raise errors.not_found(rt.plural, rt.group, name)
        old_meta = old["metadata"]
        expected = meta.get("resourceVersion")
        if expected and expected != old_meta["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name, errors.STALE)
        if subresource == "status":
            new = {k: v for k, v in old.items() if k != "status"}
            if obj.get("status") is not None:
                new["status"] = obj["status"]
            new_meta = dict(old_meta)
            if "managedFields" in meta:
                new_meta["managedFields"] = meta["managedFields"]
            new["metadata"] = new_meta
            obj, meta = new, new_meta
        else:
            if "status" in rt.subresources or (rt.crd and "status" in rt.subresources):
                if "status" in old:
                    obj["status"] = old["status"]
                else:
                    obj.pop("status", None)
            for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            if rt.namespaced:
                meta["namespace"] = namespace
            if rt.storage_key == NAMESPACES and subresource != "finalize":
                _keep_spec_finalizers(obj, old)
            if "generation" in old_meta and _spec_part(obj, "status" not in rt.subresources) != _spec_part(
                old, "status" not in rt.subresources
            ):
                meta["generation"] = old_meta["generation"] + 1
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if old_meta.get("deletionTimestamp"):
            _refuse_new_finalizers(rt, name, old_meta.get("finalizers") or [], meta.get("finalizers") or [])
        for check in self.admission:
            check("UPDATE", rt, obj, old)
        if old_meta.get("deletionTimestamp") and not meta.get("finalizers") and not _spec_finalizers(rt, obj):
            if dry_run:
                return obj
            self._remove(rt, namespace, name, obj)
            return obj
        if _strip_volatile(obj) == _strip_volatile(old):
            return old  # upstream skips no-op writes: same resourceVersion, no watch event
        if dry_run:
            return obj
        self._write(rt, namespace, name, obj, old, "MODIFIED")
        return obj

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        preconditions: dict[str, Any] | None = None,
        propagation: str | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        namespace = namespace if rt.namespaced else ""
        old = self.get(rt, namespace, name)
        if old is None:
            raise errors.not_found(rt.plural, rt.group, name)
        old_meta = old["metadata"]
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = (preconditions or {}).get(field)
            if wanted and wanted != old_meta.get(field):
                raise errors.conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, "
                    f"{label} in object meta: {old_meta.get(field)}",
                )
        finalizers = list(old_meta.get("finalizers") or [])
        if self.gc_enabled and propagation in ("Foreground", "Orphan") and not old_meta.get("deletionTimestamp"):
            marker = "foregroundDeletion" if propagation == "Foreground" else "orphan"
            if marker not in finalizers:
                finalizers.append(marker)
        if rt.storage_key == NAMESPACES:
            return self._delete_namespace(rt, old, finalizers, dry_run)
        if not finalizers:
            if not dry_run:
                self._remove(rt, namespace, name, clone(old))
            return old, True
        if old_meta.get("deletionTimestamp"):
            return old, False
        new = clone(old)
        new["metadata"]["deletionTimestamp"] = now()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new["metadata"]["finalizers"] = finalizers
        if dry_run:
            return new, False
        self._write(rt, namespace, name, new, old, "MODIFIED")
        return new, False

    def _delete_namespace(
        self, rt: ResourceType, old: dict[str, Any], finalizers: list[str], dry_run: bool
    ) -> tuple[dict[str, Any], bool]:
        """Upstream's namespace deletion: the first DELETE only marks it Terminating (the namespace
        controller deletes its content, then finalizes it); it goes once both finalizer lists are empty."""
        name = old["metadata"]["name"]
        if name in PROTECTED_NAMESPACES:
            raise errors.forbidden(
                f'namespaces "{name}" is forbidden: this namespace may not be deleted', "namespaces", "", name
            )
        if not finalizers and not _spec_finalizers(rt, old):
            if not dry_run:
                self._remove(rt, "", name, clone(old))
            return old, True
        if old["metadata"].get("deletionTimestamp"):
            return old, False
        new = clone(old)
        new["metadata"]["deletionTimestamp"] = now()
        if finalizers:
            new["metadata"]["finalizers"] = finalizers
        new.setdefault("status", {})["phase"] = "Terminating"
        if not dry_run:
            self._write(rt, "", name, new, old, "MODIFIED")
        return new, False

    def delete_all(self, key: tuple[str, str]) -> None:
        """Remove every object stored under (group, plural), finalizers notwithstanding (a CRD's
        objects when the CRD goes away)."""
        for (namespace, name), obj in list((self.objects.get(key) or {}).items()):
            self._remove_raw(key, namespace, name, clone(obj))

    def compact(self, rv: int | None = None) -> None:
        """Forget watch history up to ``rv`` (all of it by default)."""
        target = self.rv if rv is None else rv
        while self._history and self._history[0].rv <= target:
            self._history.popleft()
        self.floor = max(self.floor, target)

    def subscribe(
        self,
        key: tuple[str, str] | None = None,
        namespace: str | None = None,
        since: int | None = None,
        *,
        maxsize: int = 100_000,
    ) -> Subscription:
        if since is not None and since < self.floor:
            raise errors.expired(f"too old resource version: {since} ({self.floor + 1})")
        sub = Subscription(self, key, namespace, maxsize)
        if since is not None:
            for event in self._history:
                if event.rv > since and sub.matches(event):
                    sub.offer(event)
        self._subscribers.add(sub)
        return sub

    def close_watches(self) -> None:
        """End every subscription (their watch streams finish normally)."""
        for sub in list(self._subscribers):
            sub.close()

    def close(self) -> None:
        self.close_watches()
        if self._db:
            self._db.close()
            self._db = None

    # -- internals -------------------------------------------------------------------------------

    def _check_namespace_open(self, rt: ResourceType, namespace: str, name: str) -> None:
        """Upstream's NamespaceLifecycle admission: no new content in a missing or terminating namespace."""
        ns = self.objects.get(NAMESPACES, {}).get(("", namespace))
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            what = (
                f'{errors.qualified(rt.plural, rt.group)} "{name}"' if name else errors.qualified(rt.plural, rt.group)
            )
            error = errors.forbidden(
                f"{what} is forbidden: unable to create new content in namespace {namespace} "
                "because it is being terminated",
                rt.plural,
                rt.group,
                name,
            )
            assert error.details is not None
            error.details["causes"] = [
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ]
            raise error

    def _write(
        self, rt: ResourceType, namespace: str, name: str, obj: dict[str, Any], old: dict[str, Any] | None, kind: str
    ) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects.setdefault(rt.storage_key, {})[(namespace, name)] = obj
        if self._db:
            text = encode(obj)
            self._last_encoded = (obj, text)
            self._db.put(rt.group, rt.plural, namespace, name, text, self.rv)
            self._schedule_flush()
        self._emit(WatchEvent(kind, rt.storage_key, namespace, obj, old, self.rv))

    def _remove(self, rt: ResourceType, namespace: str, name: str, last: dict[str, Any]) -> None:
        self._remove_raw(rt.storage_key, namespace, name, last)

    def _remove_raw(self, key: tuple[str, str], namespace: str, name: str, last: dict[str, Any]) -> None:
        bucket = self.objects.get(key, {})
        old = bucket.pop((namespace, name), None)
        self.rv += 1
        last["metadata"]["resourceVersion"] = str(self.rv)
        if self._db:
            self._db.delete(key[0], key[1], namespace, name, self.rv)
            self._schedule_flush()
        self._emit(WatchEvent("DELETED", key, namespace, last, old, self.rv))

    def encoded(self, obj: dict[str, Any]) -> str:
        """JSON of ``obj``, reusing the encoding of the write that just stored it."""
        if self._last_encoded[0] is obj:
            return self._last_encoded[1]
        return encode(obj)

    def _schedule_flush(self) -> None:
        if self._flush_pending or self._db is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # used outside an event loop: commit right away
            self._db.flush()
            return
        self._flush_pending = True
        loop.call_later(0.005, self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        if self._db is not None:
            self._db.flush()

    def _emit(self, event: WatchEvent) -> None:
        history = self._history
        history.append(event)
        if len(history) > self._history_size:
            self.floor = history.popleft().rv
        for sub in list(self._subscribers):
            if sub.matches(event):
                sub.offer(event)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a faulty listener must not break the write that triggered it
                log.exception("store listener failed on %s", event.type)
