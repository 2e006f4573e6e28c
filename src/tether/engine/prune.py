"""Which inventory entries prune may delete: only objects it verified as this app's.

For every entry that left the desired set the live object is read, and it is deleted only
when it is exactly the object the entry names (group, kind, namespace, name) and carries this
app's ownership labels. The delete then carries the object's uid and resourceVersion as
preconditions, so a different object that appears under the same name meanwhile is refused
by the server. Everything else is ``Skipped``: reported, dropped from the inventory, never
deleted. Entries that cannot be addressed safely (empty name, ``..``, a namespace with ``/``)
are never put into a request at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tether.engine.annotations import ignore_extraneous, ignore_reason, keep_reason
from tether.engine.changes import Action, Change, Skipped
from tether.engine.identity import AppIdentity, Ownership, owner_of
from tether.engine.inventory import Inventory, entry_problem
from tether.engine.reader import Key, LiveReader
from tether.errors import KubeError
from tether.kube import Kube, ResourceInfo, UnknownKind
from tether.model import ObjectRef


def verify(ref: ObjectRef, live: dict[str, Any], identity: AppIdentity) -> str:
    """'' when ``live`` is the object ``ref`` names and this app owns it, else why not."""
    meta = live.get("metadata") or {}
    group = (live.get("apiVersion") or "").rpartition("/")[0]
    if (group, live.get("kind") or "") != (ref.group, ref.kind):
        return f"the server returned a {live.get('kind')!r} of {live.get('apiVersion')!r}, not this object"
    if (meta.get("namespace") or "", meta.get("name") or "") != (ref.namespace, ref.name):
        return f"the server returned {meta.get('namespace')}/{meta.get('name')}, not this object"
    if not meta.get("uid"):
        return "the live object has no uid"
    ownership, owner = owner_of(live, identity)
    if ownership is Ownership.OTHER:
        return f"owned by app {owner}"
    if ownership is Ownership.NONE:
        return "no longer labelled as this app's"
    return ""


async def plan_deletes(
    kube: Kube,
    reader: LiveReader,
    identity: AppIdentity,
    inventory: Inventory,
    desired: set[ObjectRef],
    index: dict[Key, dict[str, Any]],
) -> tuple[list[Change], list[ObjectRef], list[Skipped], dict[ObjectRef, str]]:
    """Deletes, kept objects, skipped entries and why each kept object is kept."""
    skipped = [Skipped(raw, "unreadable inventory entry") for raw in inventory.invalid]

    async def look(ref: ObjectRef) -> tuple[ObjectRef, ResourceInfo | None, dict[str, Any] | None, str]:
        problem = entry_problem(ref)
        if problem:
            return ref, None, None, problem
        try:
            info = await kube.info(ref.api_version, ref.kind)
        except UnknownKind:
            return ref, None, None, ""  # its CRD is gone, and its objects with it
        if info.namespaced != bool(ref.namespace):
            scope = "namespaced" if info.namespaced else "cluster-scoped"
            return (
                ref,
                info,
                None,
                f"{ref.kind} is {scope} but the entry {'lacks' if info.namespaced else 'has'} a namespace",
            )
        live = index.get((ref.group, ref.kind, ref.namespace, ref.name))
        if live is None:
            try:
                live = await reader.get(info, ref.name, ref.namespace or None)
            except KubeError as error:
                raise KubeError(f"cannot read {ref} (listed in the inventory): {error}") from None
        return ref, info, live, ""

    deletes: list[Change] = []
    kept: list[ObjectRef] = []
    reasons: dict[ObjectRef, str] = {}
    for ref, info, live, problem in await asyncio.gather(*(look(ref) for ref in inventory.removed(desired))):
        if problem:
            skipped.append(Skipped(str(ref), problem, ref))
            continue
        if live is None or info is None:
            continue  # already gone: the entry is dropped by the next write
        problem = verify(ref, live, identity)
        if problem:
            skipped.append(Skipped(str(ref), problem, ref))
            continue
        reason = keep_reason(live) or ignore_reason(live)
        if reason:
            kept.append(ref)
            reasons[ref] = reason
            continue
        deletes.append(Change(ref, Action.DELETE, info, None, live, None, "", 0, quiet=ignore_extraneous(live)))
    return deletes, kept, skipped, reasons


__all__ = ["plan_deletes", "verify"]
