"""The namespace controller: empties a Terminating namespace, then finalizes it, as upstream's does.

A DELETE of a Namespace only marks it (``deletionTimestamp``, ``status.phase: Terminating``; see
``Store._delete_namespace``). This controller, a store listener like the garbage collector, then:

1. waits until the namespace has been quiet for ``settle`` seconds (at most ``max_settle`` after
   it went Terminating). Upstream's controller needs discovery and one request per resource type
   before it deletes anything, so a client deleting a file's objects right after their Namespace
   (``kubectl delete -f``) finds them still there; deleting at once would answer it 404;
2. deletes every namespaced object in it (all kinds, custom resources too; Background propagation);
3. records the upstream conditions (``NamespaceContentRemaining``, ``NamespaceFinalizersRemaining``,
   ...) on the namespace's status; objects held by their own finalizers keep it waiting, and every
   change in the namespace checks again;
4. once nothing is left, removes ``kubernetes`` from ``spec.finalizers`` through the ``finalize``
   subresource; the store removes the namespace when both finalizer lists are empty.

Without a running event loop (unit tests), ``drain()`` does the pending work at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tether.sandbox import errors
from tether.sandbox.store import NAMESPACE_FINALIZER, NAMESPACES, Store, WatchEvent, clone, now

log = logging.getLogger(__name__)

SETTLE = 0.1  # seconds of quiet in a Terminating namespace before its content is deleted
MAX_SETTLE = 2.0  # ... but never later than this after it went Terminating


@dataclass
class _Terminating:
    since: float  # monotonic time it was first seen Terminating
    last_activity: float
    emptying: bool = False  # the content deletion has started: re-check on every change, no settling
    handle: asyncio.Handle | asyncio.TimerHandle | None = None


def _condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def _conditions(remaining: dict[str, int], finalizers: dict[str, int]) -> list[dict[str, str]]:
    """The conditions upstream's namespace controller reports while (and after) emptying a namespace."""
    if remaining:
        counts = ", ".join(f"{resource} has {n} resource instances" for resource, n in sorted(remaining.items()))
        content = _condition(
            "NamespaceContentRemaining", "True", "SomeResourcesRemain", f"Some resources are remaining: {counts}"
        )
    else:
        content = _condition("NamespaceContentRemaining", "False", "ContentRemoved", "All content successfully removed")
    if finalizers:
        held = ", ".join(f"{name} in {n} resource instances" for name, n in sorted(finalizers.items()))
        finalizing = _condition(
            "NamespaceFinalizersRemaining",
            "True",
            "SomeFinalizersRemain",
            f"Some content in the namespace has finalizers remaining: {held}",
        )
    else:
        finalizing = _condition(
            "NamespaceFinalizersRemaining",
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished",
        )
    return [
        _condition(
            "NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered", "All resources successfully discovered"
        ),
        _condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        _condition(
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        content,
        finalizing,
    ]


class NamespaceController:
    def __init__(
        self,
        store: Store,
        *,
        settle: float = SETTLE,
        max_settle: float = MAX_SETTLE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settle, self.max_settle, self.clock = settle, max_settle, clock
        self.terminating: dict[str, _Terminating] = {}
        self._busy = False  # our own writes are no activity
        self._loop: asyncio.AbstractEventLoop | None = None
        for (_, name), obj in (store.objects.get(NAMESPACES) or {}).items():
            self._track(name, obj)  # Terminating when the sandbox stopped: carry on
        store.listeners.append(self._on_event)

    def start(self) -> None:
        """Schedule the work found before the event loop ran (a restart with Terminating namespaces)."""
        self._loop = asyncio.get_running_loop()
        for name in list(self.terminating):
            self._schedule(name, 0.0)

    # -- events ----------------------------------------------------------------------------------

    def _on_event(self, event: WatchEvent) -> None:
        if event.key == NAMESPACES:
            name = event.object["metadata"]["name"]
            if event.type == "DELETED":
                self._forget(name)
            else:
                self._track(name, event.object)
            return
        state = self.terminating.get(event.namespace)
        if state is None or self._busy:
            return
        state.last_activity = self.clock()
        if state.emptying and state.handle is None:
            self._schedule(event.namespace, 0.0)  # a held object changed or went: check again

    def _track(self, name: str, obj: dict[str, Any]) -> None:
        finalizers = (obj.get("spec") or {}).get("finalizers") or []
        if not obj["metadata"].get("deletionTimestamp") or NAMESPACE_FINALIZER not in finalizers:
            self._forget(name)
            return
        if name not in self.terminating:
            started = self.clock()
            self.terminating[name] = _Terminating(started, started)
            self._schedule(name, self.settle)

    def _forget(self, name: str) -> None:
        state = self.terminating.pop(name, None)
        if state is not None and state.handle is not None:
            state.handle.cancel()

    def _schedule(self, name: str, delay: float) -> None:
        state = self.terminating.get(name)
        if state is None:
            return
        if state.handle is not None:
            state.handle.cancel()
            state.handle = None
        loop = self._loop
        if loop is None:
            try:
                loop = self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet: start() or drain() picks it up
        if delay <= 0:
            state.handle = loop.call_soon(self._run, name)
        else:
            state.handle = loop.call_later(delay, self._run, name)

    def _run(self, name: str) -> None:
        state = self.terminating.get(name)
        if state is None:
            return
        state.handle = None
        if not state.emptying:
            current = self.clock()
            quiet_at = state.last_activity + self.settle
            if current < quiet_at and current < state.since + self.max_settle:
                self._schedule(name, min(quiet_at, state.since + self.max_settle) - current)
                return
        try:
            self.process(name)
        except errors.ApiError as error:
            log.warning("namespace controller: %s: %s", name, error.message)

    def drain(self) -> None:
        """Process every Terminating namespace now, without settling (no event loop needed)."""
        for name in list(self.terminating):
            self.process(name)

    # -- work ------------------------------------------------------------------------------------

    def process(self, name: str) -> None:
        """Delete what is left in namespace ``name``; finalize it once nothing is."""
        state = self.terminating.get(name)
        if state is None:
            return
        state.emptying = True
        self._busy = True
        try:
            remaining, finalizers = self._delete_content(name)
            self._set_conditions(name, remaining, finalizers)
            if not remaining:
                self._finalize(name)
        finally:
            self._busy = False

    def _delete_content(self, namespace: str) -> tuple[dict[str, int], dict[str, int]]:
        """Delete every object in ``namespace``; what is still there afterwards, per resource and finalizer."""
        store = self.store
        for key, bucket in list(store.objects.items()):
            if key == NAMESPACES:
                continue
            rt = store.registry.storage_type(*key)
            if rt is None or not rt.namespaced:
                continue
            for ns, obj_name in [k for k in bucket if k[0] == namespace]:
                obj = bucket.get((ns, obj_name))
                if obj is None or obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    store.delete(rt, ns, obj_name, propagation="Background")
                except errors.ApiError as error:
                    if error.code not in (404, 409):
                        raise
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for key, bucket in store.objects.items():
            if key == NAMESPACES:
                continue
            for (ns, _), obj in bucket.items():
                if ns != namespace:
                    continue
                resource = f"{key[1]}.{key[0]}" if key[0] else key[1]
                remaining[resource] = remaining.get(resource, 0) + 1
                for finalizer in obj["metadata"].get("finalizers") or []:
                    finalizers[finalizer] = finalizers.get(finalizer, 0) + 1
        return remaining, finalizers

    def _namespace(self, name: str) -> tuple[Any, dict[str, Any]] | None:
        rt = self.store.registry.storage_type(*NAMESPACES)
        obj = self.store.objects.get(NAMESPACES, {}).get(("", name))
        if rt is None or obj is None:
            return None
        return rt, obj

    def _set_conditions(self, name: str, remaining: dict[str, int], finalizers: dict[str, int]) -> None:
        found = self._namespace(name)
        if found is None:
            return
        rt, live = found
        before = {c.get("type"): c for c in (live.get("status") or {}).get("conditions") or []}
        stamp = now()
        conditions = []
        for condition in _conditions(remaining, finalizers):
            old = before.get(condition["type"])
            same = old is not None and old.get("status") == condition["status"]
            conditions.append({**condition, "lastTransitionTime": old["lastTransitionTime"] if same else stamp})
        if [before.get(c["type"]) for c in conditions] == conditions:
            return
        new = clone(live)
        new.setdefault("status", {})["conditions"] = conditions
        self.store.update(rt, new, subresource="status")

    def _finalize(self, name: str) -> None:
        found = self._namespace(name)
        if found is None:
            return
        rt, live = found
        new = clone(live)
        spec = new.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != NAMESPACE_FINALIZER]
        self.store.update(rt, new, subresource="finalize")


def install(store: Store, *, settle: float = SETTLE, max_settle: float = MAX_SETTLE) -> NamespaceController:
    """Empty and finalize Terminating namespaces of ``store``."""
    return NamespaceController(store, settle=settle, max_settle=max_settle)
