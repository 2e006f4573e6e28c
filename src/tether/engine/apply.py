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

from tether.engine.changes import WRITES, Action, Change, Plan
from tether.engine.fields import has_legacy_manager, legacy_removal_patch
from tether.engine.health import HealthFailed, HealthTimedOut, ObjectHealth, wait_healthy
from tether.engine.inventory import update_inventory
from tether.engine.order import batches, prune_batches
from tether.engine.prune import verify
from tether.engine.reader import ListingReader, LiveReader
from tether.errors import ApplyError, KubeError
from tether.kube import Conflict, Kube, NotFound
from tether.model import ObjectRef


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


@dataclass
class Outcome:
    ref: ObjectRef
    action: Action
    ok: bool = True
    error: str = ""


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
    return (f"owned by app {change.owner}; not applied (adopt it with --adopt or the annotation "
            "tether.dev/adopt: \"true\" in the source)")


async def apply_plan(
    kube: Kube, plan: Plan, options: ApplyOptions = ApplyOptions(), progress: Progress | None = None,
    on_health: Callable[[list[ObjectHealth]], None] | None = None, *, reader: LiveReader | None = None,
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
            "(an empty render is usually a mistake; pass --allow-empty-prune if it is not)", result)

    # Inventory first: whatever this run creates must be reachable by a later prune.
    writes = [c for c in plan.changes if c.action in WRITES]
    recorded = plan.inventory.entries
    added = {c.ref for c in writes if c.ref.name and c.ref not in recorded}
    added |= {c.ref for c in plan.changes if c.action is Action.UNCHANGED and c.ref not in recorded}
    inventory = plan.inventory
    if not options.dry_run and added:
        inventory = await update_inventory(kube, identity, add=added, known=inventory,
                                           create_namespace=not inventory.resource_version)

    new_namespaces = {c.ref.name for c in plan.of(Action.CREATE) if c.ref.kind == "Namespace" and not c.ref.group}

    async def write(change: Change) -> None:
        if change.action is Action.DELETE:
            await _delete_verified(kube, change, plan, options.dry_run)
        elif change.create_only:
            if not options.dry_run:
                await kube.create(change.info, change.desired or {})
        else:
            live = await kube.apply(change.info, change.desired or {}, force=options.force,
                                    dry_run=options.dry_run, field_manager=manager)
            if not options.dry_run and has_legacy_manager(live):
                await kube.patch(change.info, change.ref.name, change.ref.namespace or None,
                                 legacy_removal_patch(live), patch_type="application/json-patch+json",  # type: ignore
                                 field_manager=manager)

    async def run(change: Change) -> Outcome:
        outcome = Outcome(change.ref, change.action)
        if change.action is Action.CONFLICT:
            outcome.ok, outcome.error = False, _conflict_text(change)
        else:
            try:
                async with semaphore:
                    await write(change)
            except NotFound as error:
                # A dry run cannot place an object in a namespace, or of a CRD, that the same (dry) run would create.
                if not (options.dry_run and (change.ref.namespace in new_namespaces
                                             or not kube.discovery.served(change.info))):
                    outcome.ok, outcome.error = False, str(error)
            except KubeError as error:
                outcome.ok, outcome.error = False, str(error)
        if progress is not None:
            progress(outcome)
        return outcome

    to_apply = [c for c in plan.changes if c.action in WRITES or c.action is Action.CONFLICT]
    for key, batch in batches(to_apply, ref=lambda c: c.ref, namespaced=lambda c: c.info.namespaced,
                              wave=lambda c: c.wave):
        outcomes = await asyncio.gather(*(run(c) for c in batch))
        result.outcomes.extend(outcomes)
        if any(not o.ok and o.action is not Action.CONFLICT for o in outcomes):
            break
        if key.phase == 0 and not options.dry_run:
            try:
                await _wait_established(kube, batch, options.crd_timeout)
            except KubeError as error:
                result.outcomes.append(Outcome(batch[0].ref, Action.CREATE, False, str(error)))
                break
    if result.failed:
        rejected = {o.ref for o in result.failed if o.ref in added}
        # never attempted (a batch failed before them): nothing of theirs exists unless it did before
        attempted = {o.ref for o in result.outcomes}
        rejected |= {c.ref for c in writes if c.ref in added and c.ref not in attempted and c.action is Action.CREATE}
        if rejected and not options.dry_run:
            await update_inventory(kube, identity, remove=rejected, known=inventory)
        raise ApplyFailed(_failure_text(plan, result, "nothing was pruned"), result)

    if options.prune:
        for _key, batch in prune_batches(plan.of(Action.DELETE), ref=lambda c: c.ref,
                                         namespaced=lambda c: c.info.namespaced):
            outcomes = await asyncio.gather(*(run(c) for c in batch))
            result.outcomes.extend(outcomes)
            if any(not o.ok for o in outcomes):
                raise ApplyFailed(_failure_text(plan, result, "prune stopped"), result)
        gone = set(plan.inventory.removed(set(desired))) | {s.ref for s in plan.skipped if s.ref is not None}
        if not options.dry_run and (gone or plan.inventory.invalid):
            await update_inventory(kube, identity, remove=gone, known=inventory)

    if options.wait and not options.dry_run:
        wanted = [c for c in plan.changes if c.action not in (Action.DELETE, Action.CONFLICT) and c.ref.name]
        try:
            result.health = await wait_healthy([c.ref for c in wanted], _fetcher(kube, plan, wanted, reader),
                                               timeout=options.timeout, on_update=on_health)
        except (HealthFailed, HealthTimedOut) as error:
            result.health = error.states
            error.result = result
            raise
    return result


async def _delete_verified(kube: Kube, change: Change, plan: Plan, dry_run: bool) -> None:
    """DELETE with the verified object's uid and resourceVersion; on a precondition conflict read
    it again, verify again and retry once (a controller may have touched its status)."""
    live = change.live or {}
    for attempt in range(2):
        meta = live.get("metadata") or {}
        try:
            await kube.delete(change.info, change.ref.name, change.ref.namespace or None, dry_run=dry_run,
                              uid=meta.get("uid"), resource_version=meta.get("resourceVersion"))
            return
        except Conflict:
            if attempt:
                raise
            fresh = await kube.get(change.info, change.ref.name, change.ref.namespace or None)
            if fresh is None:
                return
            problem = verify(change.ref, fresh, plan.identity)
            if problem or (fresh.get("metadata") or {}).get("uid") != meta.get("uid"):
                raise KubeError(f"delete {change.ref}: not deleted, the object changed since it was verified "
                                f"({problem or 'another object of that name'})") from None
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
    done = ", ".join(f"{action}: {result.count(action)}"
                     for action in (Action.CREATE, Action.ADOPT, Action.UPDATE, Action.DELETE))
    failures = "; ".join(f"{o.ref}: {o.error}" for o in result.failed[:10])
    more = f" (and {len(result.failed) - 10} more)" if len(result.failed) > 10 else ""
    return (f"app {plan.app}: {len(result.failed)} object(s) failed ({failures}{more}); "
            f"done so far {done}; {consequence}")


__all__ = ["ApplyFailed", "ApplyOptions", "ApplyResult", "Outcome", "apply_plan"]
