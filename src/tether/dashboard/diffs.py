"""Diffs the app page shows: what a sync would change now, and what changed between two revisions.

Both render the app from Git as ``tether app diff`` does (the same renderer, options, substitution
variables and decryption keys, the last two read from the cluster as the signed-in user). The
pending diff is then planned against the live objects with ``make_plan(exact=True)``, so it is
what the API server would store. When the API server refuses the plan a request (a user without
``patch`` may not dry-run), the rendered objects are compared with the live objects the user can
read instead (``tether.dashboard.readonly``) and the page says so and why. Secret values are
masked in all of them. Rendering runs in a worker thread: it shells out to Git and renderers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.apps.revisions import (
    RenderedRevision,
    render_both,
    render_inputs,
    render_options_for,
    unified_diff,
)
from tether.dashboard.readonly import compare_readable
from tether.engine import Action, AppIdentity, make_plan
from tether.kube import Forbidden, Kube
from tether.model import Manifest
from tether.source import Credentials, GitCache


@dataclass(frozen=True)
class ObjectDiff:
    label: str
    action: str
    lines: list[str]


@dataclass(frozen=True)
class PendingDiff:
    revision: str
    changes: list[ObjectDiff]  # objects a sync would create, update or delete
    unchanged: int
    #: why this is a read-only comparison rather than the server's dry run ('' for the exact diff)
    read_only_reason: str = ""
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (object, the API server's answer)


async def _inputs(kube: Kube, obj: dict[str, Any]) -> tuple[dict[str, str], dict[str, str], Any]:
    return await render_inputs(kube, obj)


def _render(
    obj: dict[str, Any],
    revision: str,
    variables: dict[str, str],
    keys: dict[str, str],
    cache_dir: str,
    credentials: Any = (),
) -> RenderedRevision:
    from tether.apps.revisions import render_revision

    url = obj["spec"]["source"]["url"]
    cache = GitCache(Path(cache_dir) if cache_dir else None)
    mirror = cache.fetch(url, Credentials.for_url(url))
    return render_revision(cache, mirror, obj, revision, render_options_for(obj, variables, credentials), keys)


def target_revision(obj: dict[str, Any]) -> str:
    """What a sync would deploy: the pin, else the revision the source last resolved to, else the ref."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    pin = (spec.get("pin") or {}).get("revision")
    if pin:
        return str(pin)
    if status.get("sourceRevision"):
        return str(status["sourceRevision"])
    ref = (spec.get("source") or {}).get("ref") or {}
    return str(next((ref[k] for k in ("commit", "tag", "branch") if ref.get(k)), "HEAD"))


async def pending_diff(kube: Kube, obj: dict[str, Any], cache_dir: str = "") -> PendingDiff:
    variables, keys, credentials = await _inputs(kube, obj)
    revision = target_revision(obj)
    rendered = await asyncio.to_thread(_render, obj, revision, variables, keys, cache_dir, credentials)
    meta, spec = obj["metadata"], obj.get("spec") or {}
    default_namespace = (spec.get("destination") or {}).get("namespace") or meta["namespace"]
    manifests = [Manifest(o) for o in rendered.objects.values()]
    identity = AppIdentity(meta["namespace"], meta["name"])
    try:
        plan = await make_plan(kube, manifests, identity, exact=True, default_namespace=default_namespace)
    except Forbidden as refused:
        return await _read_only(kube, rendered.commit, manifests, identity, default_namespace, str(refused))
    changes = [
        ObjectDiff(c.label(), str(c.action), c.diff_lines())
        for c in plan.changes
        if c.action not in (Action.UNCHANGED,)
    ]
    unchanged = sum(1 for c in plan.changes if c.action is Action.UNCHANGED)
    return PendingDiff(rendered.commit, changes, unchanged)


async def _read_only(
    kube: Kube, commit: str, manifests: list[Manifest], identity: AppIdentity, default_namespace: str, refused: str
) -> PendingDiff:
    """A user who may not dry-run (no ``patch``) still sees what they can read, and why it is only that."""
    compared = await compare_readable(kube, manifests, identity, default_namespace)
    return PendingDiff(
        commit,
        [ObjectDiff(c.label, c.action, c.lines) for c in compared if c.action in ("create", "update")],
        sum(1 for c in compared if c.action == "unchanged"),
        read_only_reason=refused,
        unreadable=[(c.label, c.reason) for c in compared if c.action == "unreadable"],
    )


async def revision_diff(kube: Kube, obj: dict[str, Any], from_rev: str, to_rev: str, cache_dir: str = "") -> str:
    """The unified diff of the app's objects rendered at two revisions ('' when they render the same)."""
    variables, keys, credentials = await _inputs(kube, obj)
    old, new = await asyncio.to_thread(render_both, obj, from_rev, to_rev, variables, keys, cache_dir, credentials)
    return unified_diff(old, new)
