"""The destination namespace: created for the app when asked (``--create-namespace``, Argo CD's
CreateNamespace=true, an Application's ``spec.destination.createNamespace``), never pruned.

A namespace created this way carries the app's labels (so it is visibly the app's) but is not
recorded in the inventory: deleting a namespace deletes everything in it, including objects no
app owns, so prune never removes it. A namespace that exists already is left untouched.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tether.engine.changes import Action, Change, Plan
from tether.engine.diff import MANAGED_BY_LABEL
from tether.engine.identity import AppIdentity
from tether.errors import ApplyError
from tether.kube import AlreadyExists, Kube
from tether.model import ObjectRef

CREATE_NAMESPACE_SOURCE = "--create-namespace"


def namespace_object(name: str, identity: AppIdentity) -> dict[str, Any]:
    """The Namespace as tether creates it for ``identity``: the same ownership labels as its objects."""
    labels = {MANAGED_BY_LABEL: "tether", **identity.labels}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


async def ensure_namespace(kube: Kube, name: str, identity: AppIdentity, *, dry_run: bool = False) -> bool:
    """Create namespace ``name`` for ``identity`` when it does not exist; True when this call created it
    (or, with ``dry_run``, would). An existing namespace, whoever made it, is not changed."""
    info = await kube.info("v1", "Namespace")
    if await kube.get(info, name) is not None:
        return False
    if dry_run:
        return True
    with contextlib.suppress(AlreadyExists):  # created meanwhile (another app with the same destination)
        await kube.create(info, namespace_object(name, identity))
        return True
    return False


async def plan_namespaces(kube: Kube, plan: Plan, destination: str, *, create: bool) -> None:
    """Check that the namespaces ``plan`` creates objects in exist or come with the plan.

    With ``create`` and a ``destination`` the render does not contain and the cluster lacks, the
    plan gets an (untracked) create of it, ordered before the objects; without, such a namespace
    is an ApplyError naming it and ``--create-namespace``.
    """
    planned = {c.ref.name for c in plan.changes if c.ref.kind == "Namespace" and not c.ref.group}
    wanted = {c.ref.namespace for c in plan.changes if c.action is Action.CREATE and c.info.namespaced}
    if create and destination and destination not in planned:
        wanted.add(destination)
    missing = []
    info = None
    for name in sorted(wanted - planned - {""}):
        info = info or await kube.info("v1", "Namespace")
        if await kube.get(info, name) is None:
            missing.append(name)
    if create and destination in missing:
        assert info is not None
        obj = namespace_object(destination, plan.identity)
        ref = ObjectRef.of(obj)
        change = Change(ref, Action.CREATE, info, obj, None, obj, CREATE_NAMESPACE_SOURCE, untracked=True)
        plan.changes.insert(0, change)
        missing.remove(destination)
    if missing:
        problems = []
        for name in missing:
            users = sorted(str(c.ref) for c in plan.changes if c.ref.namespace == name and c.action is Action.CREATE)
            more = " ..." if len(users) > 3 else ""
            fix = "pass --create-namespace, " if name == destination else ""
            problems.append(
                f"namespace {name} does not exist (needed by {', '.join(users[:3])}{more}): "
                f"{fix}add the Namespace to the source, or create it first"
            )
        raise ApplyError(f"app {plan.app}: " + "; ".join(problems))


__all__ = ["CREATE_NAMESPACE_SOURCE", "ensure_namespace", "namespace_object", "plan_namespaces"]
