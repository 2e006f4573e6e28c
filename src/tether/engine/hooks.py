"""Hooks: objects run around a sync (Argo CD's ``argocd.argoproj.io/hook``, Helm's ``helm.sh/hook``).

A hook is not part of the app's desired state: it is not in the inventory (so never pruned), it
runs only when a sync changes something, and apply waits for it (a Job until it completed, a Pod
until it succeeded, anything else until it is healthy). Hooks of one phase run in groups of
equal weight (``helm.sh/hook-weight``, else the sync wave), lowest first; a failing hook fails
the sync, and the sync's SyncFail hooks run then.

Helm hooks map onto Argo CD's phases: ``pre-install`` / ``pre-upgrade`` are PreSync and
``post-install`` / ``post-upgrade`` PostSync, chosen by whether the app exists already (an
inventory was written before); ``test`` hooks and the delete hooks are never run by apply (the
deletion of an app and ``tether test`` run them, see ``tether.engine.lifecycle_hooks``).
Delete policies: ``BeforeHookCreation`` (the default, as in both tools) deletes a hook of the
same name before creating it again; ``HookSucceeded`` / ``HookFailed`` delete it after it
finished that way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tether.engine.annotations import annotations_of, wave_of
from tether.engine.health import HealthResult, Status, compute, current, failed, in_progress
from tether.engine.identity import AppIdentity, Ownership, owner_of
from tether.errors import ApplyError, KubeError, ValidationError
from tether.kube import Kube, ResourceInfo
from tether.model import Manifest, ObjectRef

ARGO_HOOK = "argocd.argoproj.io/hook"
ARGO_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
HELM_HOOK = "helm.sh/hook"
HELM_WEIGHT = "helm.sh/hook-weight"
HELM_DELETE_POLICY = "helm.sh/hook-delete-policy"

BEFORE_HOOK_CREATION = "BeforeHookCreation"
HOOK_SUCCEEDED = "HookSucceeded"
HOOK_FAILED = "HookFailed"
_HELM_POLICIES = {
    "before-hook-creation": BEFORE_HOOK_CREATION,
    "hook-succeeded": HOOK_SUCCEEDED,
    "hook-failed": HOOK_FAILED,
}
_ARGO_POLICIES = {p.lower(): p for p in (BEFORE_HOOK_CREATION, HOOK_SUCCEEDED, HOOK_FAILED)}


class HookPhase(StrEnum):
    PRE_SYNC = "PreSync"
    SYNC = "Sync"
    POST_SYNC = "PostSync"
    SYNC_FAIL = "SyncFail"
    # never run by a sync: the deletion of an app runs these, ``tether test`` the tests
    PRE_DELETE = "PreDelete"
    POST_DELETE = "PostDelete"
    TEST = "Test"


SYNC_PHASES = (HookPhase.PRE_SYNC, HookPhase.SYNC, HookPhase.POST_SYNC, HookPhase.SYNC_FAIL)
_ARGO_PHASES = {p.value.lower(): p for p in SYNC_PHASES}
_ARGO_NEVER = {
    "skip": "Skip: never applied",
    "predelete": "PreDelete: runs only when the app is deleted",
    "postdelete": "PostDelete: runs only when the app is deleted",
}
_HELM_NEVER = {
    "test": "a Helm test hook: never deployed by apply",
    "test-success": "a Helm test hook: never deployed by apply",
    "pre-delete": "runs only when the app is deleted",
    "post-delete": "runs only when the app is deleted",
    "pre-rollback": "Helm rollback hooks do not run",
    "post-rollback": "Helm rollback hooks do not run",
}


@dataclass
class Hook:
    phase: HookPhase
    weight: int
    policies: frozenset[str]
    info: ResourceInfo
    obj: dict[str, Any]  # as tether applies it (labels, namespace, digest)
    manifest: Manifest
    origin: str  # the annotation that made it a hook, for messages
    #: the name the server gave it (generateName hooks), set when it ran
    created: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.created or self.obj)

    def label(self) -> str:
        meta = self.obj.get("metadata") or {}
        name = meta.get("name") or f"{meta.get('generateName', '')}*"
        namespace = f"{meta['namespace']}/" if meta.get("namespace") else ""
        return f"{self.obj.get('kind')}/{namespace}{name}"

    def describe(self) -> str:
        policies = ", ".join(sorted(self.policies))
        return f"{self.phase} {self.label()} (weight {self.weight}; {self.origin}; delete policy {policies})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": str(self.phase),
            "object": self.label(),
            "weight": self.weight,
            "deletePolicies": sorted(self.policies),
            "origin": self.origin,
        }


def _split(value: Any) -> list[str]:
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def classify(obj: dict[str, Any], *, install: bool, where: str = "") -> tuple[HookPhase | None, str, str]:
    """(phase, origin, why-not) of an object: (None, '', '') for an ordinary object, (None, origin,
    reason) for a hook apply never runs, (phase, origin, '') for a hook of that phase."""
    annotations = annotations_of(obj)
    if ARGO_HOOK in annotations:  # Argo CD's annotation wins over Helm's, as Argo CD itself does
        origin = f"{ARGO_HOOK}: {annotations[ARGO_HOOK]}"
        phases: list[HookPhase] = []
        for part in _split(annotations[ARGO_HOOK]):
            if part.lower() in _ARGO_NEVER:
                return None, origin, _ARGO_NEVER[part.lower()]
            if part.lower() not in _ARGO_PHASES:
                raise ValidationError(
                    f"{where}: annotation {origin!r}: unknown hook {part!r} (use PreSync, Sync, "
                    "PostSync, SyncFail, PreDelete, PostDelete or Skip)"
                )
            phases.append(_ARGO_PHASES[part.lower()])
        if not phases:
            raise ValidationError(f"{where}: annotation {ARGO_HOOK} is empty")
        return phases[0], origin, ""
    if HELM_HOOK in annotations:
        origin = f"{HELM_HOOK}: {annotations[HELM_HOOK]}"
        parts = [p.lower() for p in _split(annotations[HELM_HOOK])]
        wanted = {
            "pre-install": HookPhase.PRE_SYNC if install else None,
            "pre-upgrade": None if install else HookPhase.PRE_SYNC,
            "post-install": HookPhase.POST_SYNC if install else None,
            "post-upgrade": None if install else HookPhase.POST_SYNC,
        }
        for part in parts:
            if wanted.get(part) is not None:
                return wanted[part], origin, ""
        reasons = [_HELM_NEVER[p] for p in parts if p in _HELM_NEVER]
        unknown = [p for p in parts if p not in _HELM_NEVER and p not in wanted]
        if unknown:
            raise ValidationError(f"{where}: annotation {origin!r}: unknown Helm hook {unknown[0]!r}")
        return (
            None,
            origin,
            reasons[0]
            if reasons
            else (
                "an install hook; the app exists already"
                if not install
                else "an upgrade hook; the app is being installed"
            ),
        )
    return None, "", ""


def delete_policies(obj: dict[str, Any], where: str = "") -> frozenset[str]:
    annotations = annotations_of(obj)
    if ARGO_DELETE_POLICY in annotations:
        key, table = ARGO_DELETE_POLICY, _ARGO_POLICIES
    elif HELM_DELETE_POLICY in annotations:
        key, table = HELM_DELETE_POLICY, _HELM_POLICIES
    else:
        return frozenset({BEFORE_HOOK_CREATION})
    out = set()
    for part in _split(annotations[key]):
        if part.lower() not in table:
            raise ValidationError(
                f"{where}: annotation {key}: unknown delete policy {part!r} (use {', '.join(sorted(table))})"
            )
        out.add(table[part.lower()])
    return frozenset(out or {BEFORE_HOOK_CREATION})


def weight_of(obj: dict[str, Any], where: str = "") -> int:
    raw = annotations_of(obj).get(HELM_WEIGHT)
    if raw is not None and str(raw).strip():
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ValidationError(f"{where}: annotation {HELM_WEIGHT}={raw!r} is not an integer") from None
    return wave_of(obj, where)


def hook_health(obj: dict[str, Any] | None) -> HealthResult:
    """A hook is done when it finished: a Pod must have succeeded, not merely be running."""
    if obj is not None and obj.get("kind") == "Pod" and (obj.get("apiVersion") == "v1"):
        phase = (obj.get("status") or {}).get("phase")
        if phase == "Succeeded":
            return current("pod succeeded")
        if phase == "Failed":
            return failed("pod failed")
        return in_progress(f"pod is {phase or 'pending'}")
    return compute(obj)


class HookFailed(ApplyError):
    """A hook failed or did not finish in time; ``failures`` are (hook label, reason)."""

    exit_code = 2

    def __init__(self, message: str, failures: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.failures = failures
        self.result: Any = None


Event = Callable[[str], None]


async def _delete(kube: Kube, hook: Hook, ref: ObjectRef, identity: AppIdentity, *, wait: float) -> None:
    live = await kube.get(hook.info, ref.name, ref.namespace or None)
    if live is None:
        return
    ownership, owner = owner_of(live, identity)
    if ownership is Ownership.OTHER:
        raise HookFailed(
            f"hook {hook.label()}: an object of that name belongs to app {owner}; not replaced",
            [(hook.label(), f"owned by app {owner}")],
        )
    uid = (live.get("metadata") or {}).get("uid")
    await kube.delete(hook.info, ref.name, ref.namespace or None, propagation="Background", uid=uid)
    if wait:

        async def gone() -> bool:
            again = await kube.get(hook.info, ref.name, ref.namespace or None)
            return again is None or (again.get("metadata") or {}).get("uid") != uid

        await kube.wait_for(f"{ref} to be deleted before the hook runs again", gone, wait)


async def run_hook(
    kube: Kube, hook: Hook, identity: AppIdentity, manager: str, deadline: float, interval: float
) -> str:
    """Create the hook, wait for it to finish; '' when it succeeded, else why not."""
    meta = hook.obj.get("metadata") or {}
    if meta.get("name") and BEFORE_HOOK_CREATION in hook.policies:
        await _delete(kube, hook, ObjectRef.of(hook.obj), identity, wait=max(1.0, deadline - time.monotonic()))
    if meta.get("name"):
        hook.created = await kube.apply(hook.info, hook.obj, force=True, field_manager=manager)
    else:
        hook.created = await kube.create(hook.info, hook.obj)
    ref = hook.ref
    while True:
        live = await kube.get(hook.info, ref.name, ref.namespace or None)
        result = hook_health(live)
        if result.status is Status.CURRENT:
            return ""
        if result.status in (Status.FAILED, Status.NOT_FOUND):
            return result.message or str(result.status)
        if time.monotonic() >= deadline:
            return f"did not finish in time ({result.status}: {result.message})"
        await asyncio.sleep(interval)


async def clean_up(kube: Kube, hook: Hook, problem: str, identity: AppIdentity) -> str:
    """Apply the HookSucceeded / HookFailed policy to a hook that finished (``problem`` '' = it
    succeeded); returns the problem, or for a hook that succeeded, why it could not be deleted."""
    policy = HOOK_FAILED if problem else HOOK_SUCCEEDED
    if policy in hook.policies and hook.created is not None:
        try:
            await _delete(kube, hook, hook.ref, identity, wait=0)
        except KubeError as error:
            return problem or f"could not be deleted ({policy}): {error}"
    return problem


async def run_phase(
    kube: Kube,
    hooks: list[Hook],
    phase: HookPhase,
    identity: AppIdentity,
    *,
    manager: str,
    timeout: float,
    interval: float = 0.5,
    on_event: Event | None = None,
) -> None:
    """Run the hooks of ``phase`` in weight order; raise HookFailed at the first group with a failure
    (after applying the delete policies of that group)."""
    mine = sorted((h for h in hooks if h.phase is phase), key=lambda h: (h.weight, h.label()))
    deadline = time.monotonic() + timeout
    for weight in sorted({h.weight for h in mine}):
        group = [h for h in mine if h.weight == weight]
        if on_event:
            on_event(f"hook {phase} (weight {weight}): running {', '.join(h.label() for h in group)}")

        async def one(hook: Hook) -> str:
            try:
                return await run_hook(kube, hook, identity, manager, deadline, interval)
            except HookFailed as error:
                return str(error)
            except KubeError as error:
                return str(error)

        outcomes = await asyncio.gather(*(one(h) for h in group))
        outcomes = [
            await clean_up(kube, hook, problem, identity) for hook, problem in zip(group, outcomes, strict=True)
        ]
        failures = [(hook.label(), problem) for hook, problem in zip(group, outcomes, strict=True) if problem]
        if failures:
            text = "; ".join(f"{label}: {problem}" for label, problem in failures)
            raise HookFailed(f"{phase} hook(s) failed: {text}", failures)


__all__ = [
    "ARGO_DELETE_POLICY",
    "ARGO_HOOK",
    "BEFORE_HOOK_CREATION",
    "HELM_DELETE_POLICY",
    "HELM_HOOK",
    "HELM_WEIGHT",
    "HOOK_FAILED",
    "HOOK_SUCCEEDED",
    "SYNC_PHASES",
    "Hook",
    "HookFailed",
    "HookPhase",
    "classify",
    "clean_up",
    "delete_policies",
    "hook_health",
    "run_hook",
    "run_phase",
    "weight_of",
]
