"""The hooks a sync never runs: delete hooks around an app's deletion, and Helm tests.

Deleting an app (the controller's cascade finalizer) runs, in this order:

1. the pre-delete hooks (Helm ``pre-delete``, Argo CD ``PreDelete``) by weight, each waited for;
   a failing one stops the deletion there, before anything is pruned (Helm aborts an uninstall
   the same way);
2. the prune of every object in the app's inventory, waited for until the objects are gone;
3. the post-delete hooks (Helm ``post-delete``, Argo CD ``PostDelete``); a failure is reported,
   the app's objects are gone by then either way.

``tether test`` runs the Helm ``test`` hooks (and the older ``test-success``) one at a time in
weight order and, as ``helm test`` does, stops at the first test that fails.

Hooks come from a render of the app (the controller passes the last applied one); they are never
part of the inventory. Delete policies are those of every hook (``tether.engine.hooks``): the
default ``BeforeHookCreation`` (both tools document it as the default) leaves a finished hook in
the cluster until it runs again, so a delete hook without ``HookSucceeded`` / ``hook-succeeded``
outlives its app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tether.engine.annotations import annotations_of
from tether.engine.apply import ApplyOptions, apply_plan
from tether.engine.changes import Action, Change
from tether.engine.hooks import (
    ARGO_HOOK,
    HELM_HOOK,
    Hook,
    HookFailed,
    HookPhase,
    clean_up,
    delete_policies,
    run_hook,
    run_phase,
    weight_of,
)
from tether.engine.identity import AppIdentity
from tether.engine.plan import _resolve_infos, _type_of, make_plan, prepare
from tether.engine.reader import LiveReader
from tether.errors import KubeError, ValidationError
from tether.kube import Kube
from tether.model import Manifest

DELETE_PHASES = frozenset({HookPhase.PRE_DELETE, HookPhase.POST_DELETE})
_ARGO = {"predelete": HookPhase.PRE_DELETE, "postdelete": HookPhase.POST_DELETE}
_HELM = {
    "pre-delete": HookPhase.PRE_DELETE,
    "post-delete": HookPhase.POST_DELETE,
    "test": HookPhase.TEST,
    "test-success": HookPhase.TEST,
}

Event = Callable[[str], None]


def lifecycle_phases(manifest: Manifest) -> tuple[frozenset[HookPhase], str]:
    """The delete / test phases an object is a hook of, and the annotation that says so.

    Argo CD's annotation wins over Helm's, as for sync hooks; an object may name several phases
    (``helm.sh/hook: pre-delete,post-delete`` runs at both)."""
    annotations = annotations_of(manifest.obj)
    key, table = (ARGO_HOOK, _ARGO) if ARGO_HOOK in annotations else (HELM_HOOK, _HELM)
    value = annotations.get(key)
    if value is None:
        return frozenset(), ""
    parts = [part.strip().lower() for part in str(value).split(",")]
    return frozenset(table[p] for p in parts if p in table), f"{key}: {value}"


async def select_hooks(
    kube: Kube,
    manifests: list[Manifest],
    identity: AppIdentity,
    phases: frozenset[HookPhase],
    *,
    default_namespace: str,
) -> list[Hook]:
    """The hooks of ``phases`` among ``manifests``, prepared as tether applies them (labels, namespace)."""
    wanted: list[tuple[Manifest, HookPhase, str]] = []
    for manifest in manifests:
        found, origin = lifecycle_phases(manifest)
        wanted.extend((manifest, phase, origin) for phase in sorted(found & phases))
    if not wanted:
        return []
    infos = await _resolve_infos(kube, [manifest for manifest, _phase, _origin in wanted])
    hooks = []
    for manifest, phase, origin in wanted:
        info = infos[_type_of(manifest.obj)]
        obj = prepare(manifest, identity, default_namespace, info)
        where = manifest.where()
        hooks.append(Hook(phase, weight_of(obj, where), delete_policies(obj, where), info, obj, manifest, origin))
    return hooks


# ---------------------------------------------------------------- deleting an app


@dataclass
class DeletionResult:
    """What deleting an app did; hooks are named by their labels (``Job/shop/drain``)."""

    pre_delete: list[str] = field(default_factory=list)
    pruned: int = 0
    post_delete: list[str] = field(default_factory=list)
    #: why the post-delete hooks failed ('' = they did not)
    post_delete_failure: str = ""
    #: why the render's delete hooks could not be prepared, so none ran ('' = they could)
    hooks_skipped: str = ""
    #: pruned objects still there (finalizers) when the post-delete hooks started
    lingering: list[str] = field(default_factory=list)


async def delete_app(
    kube: Kube,
    identity: AppIdentity,
    manifests: list[Manifest] | None,
    *,
    default_namespace: str,
    reader: LiveReader | None = None,
    timeout: float = 300.0,
    interval: float = 0.5,
    on_event: Event | None = None,
) -> DeletionResult:
    """Pre-delete hooks, prune everything the inventory lists, post-delete hooks.

    ``manifests``: the app's last applied render (None: no render, so no hooks run). ``timeout``
    bounds each phase. Raises ``HookFailed`` when a pre-delete hook fails (nothing is pruned then)
    and ``ApplyFailed`` / ``KubeError`` when the prune fails; a post-delete failure is returned."""
    result = DeletionResult()
    hooks: list[Hook] = []
    if manifests:
        try:
            hooks = await select_hooks(kube, manifests, identity, DELETE_PHASES, default_namespace=default_namespace)
        except ValidationError as error:  # a kind the cluster no longer serves, a bad annotation
            result.hooks_skipped = str(error)
    manager = identity.field_manager

    async def phase(which: HookPhase) -> list[str]:
        mine = [h for h in hooks if h.phase is which]
        if mine:
            await run_phase(
                kube, hooks, which, identity, manager=manager, timeout=timeout, interval=interval, on_event=on_event
            )
        return [h.label() for h in sorted(mine, key=lambda h: (h.weight, h.label()))]

    result.pre_delete = await phase(HookPhase.PRE_DELETE)
    plan = await make_plan(kube, [], identity, reader=reader)
    options = ApplyOptions(prune=True, allow_empty_prune=True, field_manager=manager, hooks=False)
    applied = await apply_plan(kube, plan, options)
    result.pruned = applied.count(Action.DELETE)
    if any(h.phase is HookPhase.POST_DELETE for h in hooks):
        # "after the app's objects are deleted": an object with finalizers is not gone at once
        result.lingering = await _wait_gone(kube, plan.of(Action.DELETE), timeout, interval)
        try:
            result.post_delete = await phase(HookPhase.POST_DELETE)
        except HookFailed as error:
            result.post_delete = [h.label() for h in hooks if h.phase is HookPhase.POST_DELETE]
            result.post_delete_failure = str(error)
    return result


async def _wait_gone(kube: Kube, deleted: list[Change], timeout: float, interval: float) -> list[str]:
    """Wait until every pruned object is gone; returns those still there when ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    pending = list(deleted)
    while pending:
        still = []
        for change in pending:
            live = await kube.get(change.info, change.ref.name, change.ref.namespace or None)
            uid = ((change.live or {}).get("metadata") or {}).get("uid")
            if live is not None and (not uid or (live.get("metadata") or {}).get("uid") == uid):
                still.append(change)
        pending = still
        if not pending or time.monotonic() >= deadline:
            break
        await asyncio.sleep(interval)
    return [change.label() for change in pending]


# ---------------------------------------------------------------- tests


@dataclass
class HelmTestResult:
    """One test hook's outcome: phase Succeeded, Failed or NotRun (an earlier test failed)."""

    name: str
    phase: str
    seconds: float = 0.0
    message: str = ""
    #: what ``collect`` returned while the test object still existed (its Pods' logs)
    logs: str = ""

    @property
    def passed(self) -> bool:
        return self.phase == "Succeeded"


Collect = Callable[[Hook], Awaitable[str]]


async def run_tests(
    kube: Kube,
    hooks: list[Hook],
    identity: AppIdentity,
    *,
    timeout: float = 300.0,
    interval: float = 0.5,
    collect: Collect | None = None,
    on_result: Callable[[HelmTestResult], None] | None = None,
) -> list[HelmTestResult]:
    """Run the test hooks one at a time (weight, then name); after a failure the rest are NotRun.

    ``timeout`` bounds each test; ``collect(hook)`` runs once a test finished and before its delete
    policy removes it (to read its logs)."""
    ordered = sorted((h for h in hooks if h.phase is HookPhase.TEST), key=lambda h: (h.weight, h.label()))
    results: list[HelmTestResult] = []
    failed = False
    for hook in ordered:
        if failed:
            result = HelmTestResult(hook.label(), "NotRun", message="an earlier test failed")
        else:
            started = time.monotonic()
            try:
                problem = await run_hook(
                    kube, hook, identity, identity.field_manager, time.monotonic() + timeout, interval
                )
            except (HookFailed, KubeError) as error:
                problem = str(error)
            seconds = time.monotonic() - started
            logs = await collect(hook) if collect is not None and hook.created is not None else ""
            problem = await clean_up(kube, hook, problem, identity)
            name = _name_of(hook)
            result = HelmTestResult(name, "Failed" if problem else "Succeeded", seconds, problem, logs)
            failed = bool(problem)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _name_of(hook: Hook) -> str:
    """The hook's label with the name the server gave a ``generateName`` hook."""
    meta = (hook.created or hook.obj).get("metadata") or {}
    namespace = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{hook.obj.get('kind')}/{namespace}{meta.get('name') or meta.get('generateName', '') + '*'}"


__all__ = [
    "DELETE_PHASES",
    "DeletionResult",
    "HelmTestResult",
    "delete_app",
    "lifecycle_phases",
    "run_tests",
    "select_hooks",
]
