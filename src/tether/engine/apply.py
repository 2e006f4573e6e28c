"""Apply a plan: ordered server-side apply, inventory bookkeeping, verified prune, optional wait.

Only objects the plan marks create/adopt/update are sent; unchanged objects get no request at
all. Within one batch (see ``order``) applies run concurrently, bounded by a semaphore; a
batch with a failure stops the run (an object owned by another app fails alone, the others
proceed), and a run with any failure prunes nothing.

The inventory records what the server accepted. Objects about to be created or adopted are
added *before* the request (a crash between the two cannot orphan them); an entry whose write
the server rejected is removed again in the same run. Every inventory write carries the
resourceVersion it read and merges on conflict (``inventory.update_inventory``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.engine.annotations import recreate_reason
from tether.engine.changes import WRITES, Action, Change, Plan
from tether.engine.fields import has_legacy_manager, legacy_removal_patch
from tether.engine.health import HealthFailed, HealthTimedOut, ObjectHealth, wait_healthy
from tether.engine.hooks import HookFailed, HookPhase, run_phase
from tether.engine.immutable import RECREATE_HINT, is_immutable_error
from tether.engine.inventory import update_inventory
from tether.engine.namespaces import ensure_namespace
from tether.engine.order import BatchKey, Phase, batches, prune_batches
from tether.engine.prune import verify
from tether.engine.reader import ListingReader, LiveReader
from tether.errors import ApplyError, KubeError
from tether.kube import Conflict, Invalid, Kube, NotFound
from tether.model import ObjectRef

if TYPE_CHECKING:
    from tether.engine.health_rules import HealthRules


@dataclass(frozen=True)
class ApplyOptions:
    #: take fields other managers hold (Git wins); ``--no-force`` refuses instead
    force: bool = True
    dry_run: bool = False
    prune: bool = False
    wait: bool = False
    timeout: float = 300.0
    concurrency: int = 16
    crd_timeout: float = 60.0
    #: refuse to prune when nothing at all is desired (an empty render is more often a mistake)
    allow_empty_prune: bool = False
    #: '' = the app's own manager (derived from its identity)
    field_manager: str = ""
    #: run hooks (PreSync / Sync / PostSync / SyncFail) when the sync changes something
    hooks: bool = True
    #: seconds between health polls (waves, --wait)
    health_interval: float = 1.0
    #: delete and create again any object whose update the server refuses for an immutable field
    #: (per object: tether.dev/recreate, Argo CD's Replace=true / Force=true, Flux's force: enabled)
    recreate: bool = False
    #: the user's CEL health checks (``--health-rules``, an Application's ``healthCheckExprs``)
    health_rules: HealthRules | None = None


@dataclass
class Outcome:
    ref: ObjectRef
    action: Action
    ok: bool = True
    error: str = ""
    #: the object's resourceVersion as written (apply, create); lets a watcher tell its own writes
    #: from others' (the controller does not reconcile again for the echo of its own apply)
    resource_version: str = ""


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)
    unchanged: int = 0
    health: list[ObjectHealth] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def count(self, action: Action) -> int:
        return sum(1 for o in self.outcomes if o.action is action and o.ok)


class ApplyFailed(ApplyError):
    """Some objects failed; ``result`` holds every outcome so far (what was done and what failed)."""

    def __init__(self, message: str, result: ApplyResult) -> None:
        super().__init__(message)
        self.result = result


Progress = Callable[[Outcome], None]


async def _wait_established(kube: Kube, changes: list[Change], timeout: float) -> None:
    """CRDs must be Established before custom resources of them can be written."""
    info = await kube.info("apiextensions.k8s.io/v1", "CustomResourceDefinition")

    async def one(change: Change) -> None:
        async def established() -> bool:
            live = await kube.get(info, change.ref.name)
            conditions = ((live or {}).get("status") or {}).get("conditions") or []
            return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

        await kube.wait_for(f"{change.ref} to be Established", established, timeout)

    await asyncio.gather(*(one(c) for c in changes))
    for change in changes:
        for version in ((change.desired or {}).get("spec") or {}).get("versions") or []:
            group = ((change.desired or {}).get("spec") or {}).get("group", "")
            kube.discovery.forget(f"{group}/{version.get('name')}")


def _conflict_text(change: Change) -> str:
    return (
        f"owned by app {change.owner}; not applied (adopt it with --adopt or the annotation "
        'tether.dev/adopt: "true" in the source)'
    )


async def apply_plan(
    kube: Kube,
    plan: Plan,
    options: ApplyOptions = ApplyOptions(),
    progress: Progress | None = None,
    on_health: Callable[[list[ObjectHealth]], None] | None = None,
    *,
    reader: LiveReader | None = None,
) -> ApplyResult:
    """Carry out ``plan``. Raises ApplyFailed (carrying ``.result``) when anything failed; health
    errors (HealthFailed, HealthTimedOut) carry ``.result`` too."""
    result = ApplyResult(unchanged=len(plan.of(Action.UNCHANGED)))
    semaphore = asyncio.Semaphore(options.concurrency)
    identity = plan.identity
    manager = options.field_manager or identity.field_manager
    desired = frozenset(plan.desired_refs)
    if options.prune and not desired and plan.of(Action.DELETE) and not options.allow_empty_prune:
        raise ApplyFailed(
            f"app {plan.app}: nothing is desired; refusing to prune all {len(plan.of(Action.DELETE))} objects "
            "(an empty render is usually a mistake; pass --allow-empty-prune if it is not)",
            result,
        )

    # Inventory first: whatever this run creates must be reachable by a later prune.
    writes = [c for c in plan.changes if c.action in WRITES]
    recorded = plan.inventory.entries
    added = {c.ref for c in writes if c.ref.name and c.ref not in recorded and not c.untracked}
    added |= {c.ref for c in plan.changes if c.action is Action.UNCHANGED and c.ref not in recorded}
    inventory = plan.inventory
    if not options.dry_run and added:
        inventory = await update_inventory(
            kube, identity, add=added, known=inventory, create_namespace=not inventory.resource_version
        )

    new_namespaces = {c.ref.name for c in plan.of(Action.CREATE) if c.ref.kind == "Namespace" and not c.ref.group}

    async def write(change: Change) -> str:
        """Write one change; returns the resourceVersion written, when the server gave one."""
        if change.action is Action.DELETE:
            await _delete_verified(kube, change, plan, options.dry_run)
        elif change.untracked:
            await ensure_namespace(kube, change.ref.name, identity, dry_run=options.dry_run)
        elif change.create_only:
            if not options.dry_run:
                return _version_of(await kube.create(change.info, change.desired or {}))
        else:
            try:
                live = await kube.apply(
                    change.info,
                    change.desired or {},
                    force=options.force,
                    dry_run=options.dry_run,
                    field_manager=manager,
                )
            except Invalid as error:
                if not is_immutable_error(error) or change.action is Action.CREATE:
                    raise
                allowed = "--recreate" if options.recreate else recreate_reason(change.desired)
                if not allowed:
                    raise KubeError(
                        f"{error} (an immutable field changed: annotate the object {RECREATE_HINT}, "
                        "or pass --recreate, to delete and create it again)"
                    ) from None
                if options.dry_run:
                    return ""
                await _recreate(kube, change, manager, options.crd_timeout)
                return ""
            if not options.dry_run and has_legacy_manager(live):
                live = await kube.patch(
                    change.info,
                    change.ref.name,
                    change.ref.namespace or None,
                    legacy_removal_patch(live),
                    patch_type="application/json-patch+json",  # type: ignore
                    field_manager=manager,
                )
            return "" if options.dry_run else _version_of(live)
        return ""

    async def run(change: Change) -> Outcome:
        outcome = Outcome(change.ref, change.action)
        if change.action is Action.CONFLICT:
            outcome.ok, outcome.error = False, _conflict_text(change)
        else:
            try:
                async with semaphore:
                    outcome.resource_version = await write(change)
            except NotFound as error:
                # A dry run cannot place an object in a namespace, or of a CRD, that the same (dry) run would create.
                if not (
                    options.dry_run
                    and (change.ref.namespace in new_namespaces or not kube.discovery.served(change.info))
                ):
                    outcome.ok, outcome.error = False, str(error)
            except KubeError as error:
                outcome.ok, outcome.error = False, str(error)
        if progress is not None:
            progress(outcome)
        return outcome

    syncing = bool(
        options.hooks and not options.dry_run and plan.hooks and (writes or (options.prune and plan.of(Action.DELETE)))
    )

    async def hooks(phase: HookPhase) -> None:
        await run_phase(
            kube,
            plan.hooks,
            phase,
            identity,
            manager=manager,
            timeout=options.timeout,
            interval=min(options.health_interval, 0.5),
        )

    try:
        if syncing:
            await hooks(HookPhase.PRE_SYNC)
        await _apply_waves(kube, plan, options, result, run, reader, on_health)
        await _finish(kube, plan, options, result, run, added, writes, inventory, desired)
        if syncing:
            await hooks(HookPhase.SYNC)
            if any(h.phase is HookPhase.POST_SYNC for h in plan.hooks):
                # PostSync hooks run once the synced objects are healthy (Argo CD's rule)
                await _wait(
                    kube,
                    plan,
                    _settled(plan),
                    options,
                    reader,
                    on_health,
                    result,
                    "the synced objects are not healthy, so no PostSync hook ran",
                )
                await hooks(HookPhase.POST_SYNC)
    except (ApplyFailed, HookFailed, HealthFailed, HealthTimedOut) as error:
        if syncing and any(h.phase is HookPhase.SYNC_FAIL for h in plan.hooks):
            try:
                await hooks(HookPhase.SYNC_FAIL)
            except HookFailed as fail_error:
                error.args = (f"{error}; SyncFail hooks failed too: {fail_error}",)
        error.result = result  # type: ignore[union-attr]
        raise

    if options.wait and not options.dry_run:
        await _wait(kube, plan, _settled(plan), options, reader, on_health, result, "")
    return result


def _settled(plan: Plan) -> list[Change]:
    """The objects a sync leaves in place: what health is waited for."""
    return [c for c in plan.changes if c.action not in (Action.DELETE, Action.CONFLICT) and c.ref.name]


async def _wait(
    kube: Kube,
    plan: Plan,
    changes: list[Change],
    options: ApplyOptions,
    reader: LiveReader | None,
    on_health: Callable[[list[ObjectHealth]], None] | None,
    result: ApplyResult,
    what: str,
) -> None:
    """Wait until ``changes`` are healthy; a failure or timeout names ``what`` was waited for."""
    from tether.engine.health_kinds import status_kinds
    from tether.engine.health_rules import HealthRules

    rules = (options.health_rules or HealthRules()).with_status_kinds(await status_kinds(kube, changes, plan.changes))
    try:
        result.health = await wait_healthy(
            [c.ref for c in changes],
            _fetcher(kube, plan, changes, reader),
            timeout=options.timeout,
            interval=options.health_interval,
            on_update=on_health,
            rules=rules,
        )
    except (HealthFailed, HealthTimedOut) as error:
        await _explain_with_pods(kube, plan, changes, error)
        if what:
            error.args = (f"{what}: {error}",)
        result.health = error.states
        error.result = result
        raise


async def _explain_with_pods(
    kube: Kube, plan: Plan, changes: list[Change], error: HealthFailed | HealthTimedOut
) -> None:
    """Add to each unhealthy workload what its Pods say (``ImagePullBackOff``, a crash, unschedulable)."""
    from tether.engine.health import HealthResult, Status
    from tether.engine.pods import WORKLOAD_KINDS, workload_pod_problem

    desired = {c.ref: c for c in changes}
    states = []
    notes = []
    for state in error.states:
        change = desired.get(state.ref)
        if (
            state.result.status is not Status.CURRENT
            and change is not None
            and change.desired is not None
            and (state.ref.group, state.ref.kind) in WORKLOAD_KINDS
        ):
            try:
                problem = await workload_pod_problem(kube, change.desired)
            except KubeError:
                problem = None  # the explanation is a help, never a new failure
            if problem is not None:
                reason, text = problem
                message = f"{state.result.message}; {text}" if state.result.message else text
                state = ObjectHealth(state.ref, HealthResult(state.result.status, message, reason))
                notes.append(f"{state.ref}: {text}")
        states.append(state)
    error.states = states
    if notes:
        error.args = (f"{error.args[0] if error.args else error}; " + "; ".join(notes),)


def _describe_batch(key: BatchKey) -> str:
    scope = {
        Phase.CRDS: "CustomResourceDefinitions",
        Phase.NAMESPACES: "Namespaces",
        Phase.CLUSTER: "cluster-scoped objects",
        Phase.NAMESPACED: "namespaced objects",
    }[key.phase]
    return f"wave {key.wave} ({scope})"


async def _apply_waves(
    kube: Kube,
    plan: Plan,
    options: ApplyOptions,
    result: ApplyResult,
    run: Callable[[Change], Any],
    reader: LiveReader | None,
    on_health: Callable[[list[ObjectHealth]], None] | None,
) -> None:
    """Apply batch by batch; before a batch of a later wave, every object of the earlier waves of its
    phase must be healthy (Argo CD's sync waves). Raises ApplyFailed / health errors."""
    to_apply = [c for c in plan.changes if c.action in WRITES or c.action is Action.CONFLICT]
    settled = _settled(plan)
    by_key = dict(batches(settled, ref=lambda c: c.ref, namespaced=lambda c: c.info.namespaced, wave=lambda c: c.wave))
    ordered = batches(to_apply, ref=lambda c: c.ref, namespaced=lambda c: c.info.namespaced, wave=lambda c: c.wave)
    waited: set[BatchKey] = set()
    for key, batch in ordered:
        earlier = sorted(k for k in by_key if k.phase == key.phase and k.wave < key.wave and k not in waited)
        waiting = [c for k in earlier for c in by_key[k]]
        if waiting and not options.dry_run:
            waves = ", ".join(_describe_batch(k) for k in earlier)
            await _wait(
                kube,
                plan,
                waiting,
                options,
                reader,
                on_health,
                result,
                f"{waves} not healthy, so {_describe_batch(key)} was not started",
            )
        waited.update(earlier)
        outcomes = await asyncio.gather(*(run(c) for c in batch))
        result.outcomes.extend(outcomes)
        if any(not o.ok and o.action is not Action.CONFLICT for o in outcomes):
            return
        if key.phase == 0 and not options.dry_run:
            try:
                await _wait_established(kube, batch, options.crd_timeout)
            except KubeError as error:
                result.outcomes.append(Outcome(batch[0].ref, Action.CREATE, False, str(error)))
                return


async def _finish(
    kube: Kube,
    plan: Plan,
    options: ApplyOptions,
    result: ApplyResult,
    run: Callable[[Change], Any],
    added: set[ObjectRef],
    writes: list[Change],
    inventory: Any,
    desired: frozenset[ObjectRef],
) -> None:
    """After the writes: undo inventory entries of rejected creates (and fail), or prune."""
    identity = plan.identity
    if result.failed:
        rejected = {o.ref for o in result.failed if o.ref in added}
        # never attempted (a batch failed before them): nothing of theirs exists unless it did before
        attempted = {o.ref for o in result.outcomes}
        rejected |= {c.ref for c in writes if c.ref in added and c.ref not in attempted and c.action is Action.CREATE}
        if rejected and not options.dry_run:
            await update_inventory(kube, identity, remove=rejected, known=inventory)
        raise ApplyFailed(_failure_text(plan, result, "nothing was pruned"), result)

    if options.prune:
        for _key, batch in prune_batches(
            plan.of(Action.DELETE), ref=lambda c: c.ref, namespaced=lambda c: c.info.namespaced
        ):
            outcomes = await asyncio.gather(*(run(c) for c in batch))
            result.outcomes.extend(outcomes)
            if any(not o.ok for o in outcomes):
                raise ApplyFailed(_failure_text(plan, result, "prune stopped"), result)
        gone = set(plan.inventory.removed(set(desired))) | {s.ref for s in plan.skipped if s.ref is not None}
        if not options.dry_run and (gone or plan.inventory.invalid):
            await update_inventory(kube, identity, remove=gone, known=inventory)


def _version_of(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


async def _recreate(kube: Kube, change: Change, manager: str, timeout: float) -> None:
    """Delete the verified object (uid precondition), wait until it is gone, apply it again."""
    live = change.live or {}
    uid = (live.get("metadata") or {}).get("uid")
    namespace = change.ref.namespace or None
    await kube.delete(change.info, change.ref.name, namespace, propagation="Foreground", uid=uid)

    async def gone() -> bool:
        again = await kube.get(change.info, change.ref.name, namespace)
        return again is None or (again.get("metadata") or {}).get("uid") != uid

    await kube.wait_for(f"{change.ref} to be deleted before it is created again", gone, max(timeout, 30.0))
    await kube.apply(change.info, change.desired or {}, force=True, field_manager=manager)


async def _delete_verified(kube: Kube, change: Change, plan: Plan, dry_run: bool) -> None:
    """DELETE with the verified object's uid and resourceVersion; on a precondition conflict read
    it again, verify again and retry once (a controller may have touched its status)."""
    live = change.live or {}
    for attempt in range(2):
        meta = live.get("metadata") or {}
        try:
            await kube.delete(
                change.info,
                change.ref.name,
                change.ref.namespace or None,
                dry_run=dry_run,
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            )
            return
        except Conflict:
            if attempt:
                raise
            fresh = await kube.get(change.info, change.ref.name, change.ref.namespace or None)
            if fresh is None:
                return
            problem = verify(change.ref, fresh, plan.identity)
            if problem or (fresh.get("metadata") or {}).get("uid") != meta.get("uid"):
                raise KubeError(
                    f"delete {change.ref}: not deleted, the object changed since it was verified "
                    f"({problem or 'another object of that name'})"
                ) from None
            live = fresh


def _fetcher(kube: Kube, plan: Plan, changes: list[Change], reader: LiveReader | None):  # type: ignore[no-untyped-def]
    infos = {c.ref: c.info for c in changes}
    source = reader if reader is not None else ListingReader(kube)
    namespaces = {c.ref.namespace for c in changes}

    async def fetch_many(refs: list[ObjectRef]) -> dict[ObjectRef, dict | None]:
        by_info = {infos[ref] for ref in refs}
        index = await source.list_app_objects(list(by_info), plan.identity, namespaces=namespaces)
        return {ref: index.get((ref.group, ref.kind, ref.namespace, ref.name)) for ref in refs}

    return fetch_many


def _failure_text(plan: Plan, result: ApplyResult, consequence: str) -> str:
    done = ", ".join(
        f"{action}: {result.count(action)}" for action in (Action.CREATE, Action.ADOPT, Action.UPDATE, Action.DELETE)
    )
    failures = "; ".join(f"{o.ref}: {o.error}" for o in result.failed[:10])
    more = f" (and {len(result.failed) - 10} more)" if len(result.failed) > 10 else ""
    return (
        f"app {plan.app}: {len(result.failed)} object(s) failed ({failures}{more}); done so far {done}; {consequence}"
    )


__all__ = ["ApplyFailed", "ApplyOptions", "ApplyResult", "Outcome", "apply_plan"]
