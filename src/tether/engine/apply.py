"""Apply a plan: ordered server-side apply, inventory bookkeeping, prune and optional wait.

Only objects the plan marks create/update are sent; unchanged objects get no request at
all. Within one batch (see ``order``) applies run concurrently, bounded by a semaphore; a
batch with a failure stops the run, and a run with any failure prunes nothing.

The inventory is written *before* applying (previous entries plus everything desired), so an
object created by a run that dies half-way is still known to the next run; after a
successful prune it is narrowed to the desired set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from tether.engine.health import FetchMany, ObjectHealth, wait_healthy
from tether.engine.inventory import Inventory
from tether.engine.order import batches, prune_batches
from tether.engine.plan import Action, Change, Plan, list_app_objects
from tether.errors import ApplyError, KubeError
from tether.kube import FIELD_MANAGER, Kube, NotFound, ResourceInfo
from tether.model import ObjectRef


@dataclass(frozen=True)
class ApplyOptions:
    force: bool = False
    dry_run: bool = False
    prune: bool = False
    wait: bool = False
    timeout: float = 300.0
    concurrency: int = 16
    crd_timeout: float = 60.0
    #: refuse to prune when nothing at all is desired (an empty render is more often a mistake)
    allow_empty_prune: bool = False
    field_manager: str = FIELD_MANAGER


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


Progress = Callable[[Outcome], None]


async def _write_inventory(kube: Kube, inventory: Inventory, namespace: str, *, create_namespace: bool) -> None:
    if create_namespace:
        ns_info = await kube.info("v1", "Namespace")
        if await kube.get(ns_info, namespace) is None:
            await kube.apply(ns_info, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                             force=True)
    info = await kube.info("v1", "ConfigMap")
    await kube.apply(info, inventory.to_configmap(namespace), force=True)


def _versions(entries: frozenset[ObjectRef]) -> set[tuple[ObjectRef, str]]:
    return {(ref, ref.version) for ref in entries}


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


async def apply_plan(
    kube: Kube, plan: Plan, options: ApplyOptions = ApplyOptions(), progress: Progress | None = None
) -> ApplyResult:
    """Carry out ``plan``. Raises ApplyError (listing what was done) when anything failed."""
    result = ApplyResult(unchanged=len(plan.of(Action.UNCHANGED)))
    semaphore = asyncio.Semaphore(options.concurrency)
    desired = frozenset(plan.desired_refs)
    if options.prune and not desired and plan.of(Action.DELETE) and not options.allow_empty_prune:
        raise ApplyError(
            f"app {plan.app}: nothing is desired; refusing to prune all {len(plan.of(Action.DELETE))} objects "
            "(an empty render is usually a mistake; pass --allow-empty-prune if it is not)"
        )

    # Inventory first: whatever this run creates must be reachable by a later prune.
    grown = plan.inventory.union({c.ref for c in plan.changes if c.action is not Action.DELETE})
    if not options.dry_run and _versions(grown.entries) != _versions(plan.inventory.entries):
        await _write_inventory(kube, grown, plan.inventory_namespace, create_namespace=not plan.inventory.entries)

    new_namespaces = {c.ref.name for c in plan.of(Action.CREATE) if c.ref.kind == "Namespace" and not c.ref.group}

    async def run(change: Change) -> Outcome:
        outcome = Outcome(change.ref, change.action)
        try:
            async with semaphore:
                if change.action is Action.DELETE:
                    await kube.delete(change.info, change.ref.name, change.ref.namespace, dry_run=options.dry_run)
                else:
                    await kube.apply(change.info, change.desired or {}, force=options.force,
                                     dry_run=options.dry_run, field_manager=options.field_manager)
        except NotFound as error:
            # A dry run cannot place an object in a namespace the same (dry) run would create.
            if not (options.dry_run and change.ref.namespace in new_namespaces):
                outcome.ok, outcome.error = False, str(error)
        except KubeError as error:
            outcome.ok, outcome.error = False, str(error)
        if progress is not None:
            progress(outcome)
        return outcome

    to_apply = [c for c in plan.changes if c.action in (Action.CREATE, Action.UPDATE)]
    for key, batch in batches(to_apply, ref=lambda c: c.ref, namespaced=lambda c: c.info.namespaced,
                              wave=lambda c: c.wave):
        outcomes = await asyncio.gather(*(run(c) for c in batch))
        result.outcomes.extend(outcomes)
        if any(not o.ok for o in outcomes):
            break
        if key.phase == 0 and not options.dry_run:
            try:
                await _wait_established(kube, batch, options.crd_timeout)
            except KubeError as error:
                result.outcomes.append(Outcome(batch[0].ref, Action.CREATE, False, str(error)))
                break
    if result.failed:
        raise ApplyError(_failure_text(plan, result, "nothing was pruned"))

    if options.prune:
        for _key, batch in prune_batches(plan.of(Action.DELETE), ref=lambda c: c.ref,
                                         namespaced=lambda c: c.info.namespaced):
            outcomes = await asyncio.gather(*(run(c) for c in batch))
            result.outcomes.extend(outcomes)
            if any(not o.ok for o in outcomes):
                raise ApplyError(_failure_text(plan, result, "prune stopped"))
        narrowed = plan.inventory.replaced(desired)
        if not options.dry_run and _versions(narrowed.entries) != _versions(grown.entries):
            await _write_inventory(kube, narrowed, plan.inventory_namespace, create_namespace=False)

    if options.wait and not options.dry_run:
        wanted = [c for c in plan.changes if c.action is not Action.DELETE]
        result.health = await wait_healthy([c.ref for c in wanted], _fetcher(kube, plan.app, wanted),
                                           timeout=options.timeout)
    return result


def _fetcher(kube: Kube, app: str, changes: list[Change]) -> FetchMany:
    infos: dict[ObjectRef, ResourceInfo] = {c.ref: c.info for c in changes}

    async def fetch_many(refs: list[ObjectRef]) -> dict[ObjectRef, dict | None]:
        by_info = {infos[ref] for ref in refs}
        index = await list_app_objects(kube, list(by_info), app)
        return {ref: index.get((ref.group, ref.kind, ref.namespace, ref.name)) for ref in refs}

    return fetch_many


def _failure_text(plan: Plan, result: ApplyResult, consequence: str) -> str:
    done = ", ".join(f"{action}: {result.count(action)}" for action in (Action.CREATE, Action.UPDATE, Action.DELETE))
    failures = "; ".join(f"{o.ref}: {o.error}" for o in result.failed[:10])
    more = f" (and {len(result.failed) - 10} more)" if len(result.failed) > 10 else ""
    return (f"app {plan.app}: {len(result.failed)} object(s) failed ({failures}{more}); "
            f"done so far {done}; {consequence}")
