"""Garbage collection by ownerReferences, following the upstream garbage collector's rules.

* Background (the default): the owner goes at once; afterwards every dependent with no owner left
  is deleted (a dependent that still has another live owner only loses the dangling reference).
* Foreground: the store gives the owner the ``foregroundDeletion`` finalizer and a
  deletionTimestamp; the collector deletes its dependents and removes the finalizer once no
  dependent with ``blockOwnerDeletion: true`` remains, which removes the owner.
* Orphan: the owner gets the ``orphan`` finalizer; the collector removes the owner's reference
  from every dependent, then the finalizer.
* A dependent whose owner uid does not exist (in its namespace, or cluster-scoped) is collected.

The collector is a store listener that keeps two indexes (uid -> object, owner uid -> dependents)
up to date on every write and queues work, which runs on the event loop right after the write
that caused it, as the upstream collector runs shortly after a watch event. ``drain()`` runs the
queue synchronously (used without a running loop, e.g. in tests).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from tether.sandbox import errors
from tether.sandbox.store import Store, WatchEvent, clone

log = logging.getLogger(__name__)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
MANAGER = "kube-controller-manager"

Ref = tuple[tuple[str, str], str, str]  # (storage key, namespace, name)


def _owner_uids(obj: dict[str, Any]) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r["uid"] for r in refs if isinstance(r, dict) and r.get("uid")]


class GarbageCollector:
    def __init__(self, store: Store, *, batch: int = 500) -> None:
        self.store = store
        self.batch = batch
        self.by_uid: dict[str, Ref] = {}
        self.dependents: dict[str, set[Ref]] = {}
        self._queue: deque[tuple[str, Any]] = deque()
        self._scheduled = False
        for key, bucket in store.objects.items():
            for (namespace, name), obj in bucket.items():
                self._index(key, namespace, name, obj)
                self._enqueue_if_relevant(key, namespace, name, obj)
        store.gc_enabled = True
        store.listeners.append(self._on_event)

    # -- indexes ---------------------------------------------------------------------------------

    def _index(self, key: tuple[str, str], namespace: str, name: str, obj: dict[str, Any]) -> None:
        ref = (key, namespace, name)
        uid = obj["metadata"].get("uid")
        if uid:
            self.by_uid[uid] = ref
        for owner in _owner_uids(obj):
            self.dependents.setdefault(owner, set()).add(ref)

    def _unindex(self, key: tuple[str, str], namespace: str, name: str, obj: dict[str, Any] | None) -> None:
        if obj is None:
            return
        ref = (key, namespace, name)
        for owner in _owner_uids(obj):
            deps = self.dependents.get(owner)
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self.dependents[owner]

    def _on_event(self, event: WatchEvent) -> None:
        obj, meta = event.object, event.object["metadata"]
        name = meta["name"]
        self._unindex(event.key, event.namespace, name, event.old)
        if event.type == "DELETED":
            self._unindex(event.key, event.namespace, name, obj)
            uid = meta.get("uid")
            if uid and self.by_uid.get(uid) == (event.key, event.namespace, name):
                del self.by_uid[uid]
            if uid in self.dependents:
                self._push("dependents", uid)
            self._push_waiting_owners(obj)
            return
        self._index(event.key, event.namespace, name, obj)
        self._enqueue_if_relevant(event.key, event.namespace, name, obj)

    def _enqueue_if_relevant(self, key: tuple[str, str], namespace: str, name: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            if {FOREGROUND, ORPHAN} & set(meta.get("finalizers") or []):
                self._push("owner", (key, namespace, name))
            self._push_waiting_owners(obj)
        if meta.get("ownerReferences"):
            self._push("check", (key, namespace, name))

    def _push_waiting_owners(self, obj: dict[str, Any]) -> None:
        """A dependent changed or went away: owners deleting in the foreground may be unblocked."""
        for uid in _owner_uids(obj):
            owner = self._lookup(uid)
            if owner is not None and owner[1]["metadata"].get("deletionTimestamp"):
                self._push("owner", owner[0])

    def _push(self, kind: str, item: Any) -> None:
        self._queue.append((kind, item))
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the caller drains
        self._scheduled = True
        loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        self.drain(self.batch)
        if self._queue:
            self._push("noop", None)

    # -- work ------------------------------------------------------------------------------------

    def drain(self, limit: int | None = None) -> int:
        """Process queued work (at most ``limit`` items); returns how many were processed."""
        done = 0
        while self._queue and (limit is None or done < limit):
            kind, item = self._queue.popleft()
            done += 1
            try:
                if kind == "check":
                    self._check_dependent(item)
                elif kind == "owner":
                    self._process_owner(item)
                elif kind == "dependents":
                    for ref in sorted(self.dependents.get(item, ())):
                        self._check_dependent(ref)
            except errors.ApiError as error:
                if error.code not in (404, 409):
                    log.warning("garbage collection of %s failed: %s", item, error.message)
        return done

    def _lookup(self, uid: str) -> tuple[Ref, dict[str, Any]] | None:
        ref = self.by_uid.get(uid)
        if ref is None:
            return None
        obj = self.store.objects.get(ref[0], {}).get((ref[1], ref[2]))
        if obj is None or obj["metadata"].get("uid") != uid:
            return None
        return ref, obj

    def _get(self, ref: Ref) -> dict[str, Any] | None:
        return self.store.objects.get(ref[0], {}).get((ref[1], ref[2]))

    def _check_dependent(self, ref: Ref) -> None:
        obj = self._get(ref)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        refs = [r for r in obj["metadata"].get("ownerReferences") or [] if isinstance(r, dict)]
        if not refs:
            return
        solid, dangling, waiting = [], [], []
        for owner_ref in refs:
            found = self._lookup(owner_ref.get("uid", ""))
            # an owner must be cluster-scoped or in the dependent's namespace
            if found is None or (found[0][1] and found[0][1] != ref[1]):
                dangling.append(owner_ref)
            elif FOREGROUND in (found[1]["metadata"].get("finalizers") or []) and found[1]["metadata"].get(
                "deletionTimestamp"
            ):
                waiting.append(owner_ref)
            elif found[1]["metadata"].get("deletionTimestamp") and ORPHAN in (
                found[1]["metadata"].get("finalizers") or []
            ):
                solid.append(owner_ref)  # being orphaned: the orphan step removes the reference
            else:
                solid.append(owner_ref)
        if not dangling and not waiting:
            return
        if solid:
            gone = {r.get("uid") for r in dangling + waiting}
            self._set_owner_refs(ref, [r for r in refs if r.get("uid") not in gone])
            return
        rt = self.store.registry.storage_type(*ref[0])
        if rt is None:
            return
        finalizers = obj["metadata"].get("finalizers") or []
        if waiting and self.dependents.get(obj["metadata"].get("uid", "")):
            policy = "Foreground"
        elif ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        self.store.delete(rt, ref[1], ref[2], propagation=policy, preconditions={"uid": obj["metadata"].get("uid")})

    def _process_owner(self, ref: Ref) -> None:
        owner = self._get(ref)
        if owner is None or not owner["metadata"].get("deletionTimestamp"):
            return
        uid = owner["metadata"].get("uid", "")
        finalizers = owner["metadata"].get("finalizers") or []
        deps = sorted(self.dependents.get(uid, ()))
        if ORPHAN in finalizers:
            for dep in deps:
                obj = self._get(dep)
                if obj is not None:
                    self._set_owner_refs(
                        dep, [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                    )
            self._remove_finalizer(ref, ORPHAN)
            return
        if FOREGROUND not in finalizers:
            return
        blocking = 0
        for dep in deps:
            obj = self._get(dep)
            if obj is None:
                continue
            if not obj["metadata"].get("deletionTimestamp"):
                self._check_dependent(dep)
                obj = self._get(dep)
                if obj is None:
                    continue
            if any(
                r.get("uid") == uid and r.get("blockOwnerDeletion")
                for r in obj["metadata"].get("ownerReferences") or []
            ):
                blocking += 1
        if not blocking:
            self._remove_finalizer(ref, FOREGROUND)

    # -- writes ----------------------------------------------------------------------------------

    def _set_owner_refs(self, ref: Ref, refs: list[dict[str, Any]]) -> None:
        rt = self.store.registry.storage_type(*ref[0])
        live = self._get(ref)
        if rt is None or live is None:
            return
        new = clone(live)
        if refs:
            new["metadata"]["ownerReferences"] = refs
        else:
            new["metadata"].pop("ownerReferences", None)
        self.store.update(rt, new)

    def _remove_finalizer(self, ref: Ref, finalizer: str) -> None:
        rt = self.store.registry.storage_type(*ref[0])
        live = self._get(ref)
        if rt is None or live is None:
            return
        new = clone(live)
        remaining = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
        if remaining:
            new["metadata"]["finalizers"] = remaining
        else:
            new["metadata"].pop("finalizers", None)
        self.store.update(rt, new)


def install(store: Store) -> GarbageCollector:
    """Start collecting garbage in ``store`` (enables Foreground/Orphan finalizers on delete)."""
    return GarbageCollector(store)
