"""Reconcile one Application: the engine driven from the watch cache, status written once.

A reconcile is a pass through the pipeline, cheap where nothing changed:

- Git is fetched when the app's interval has passed, on a webhook, a refresh or a spec change;
  otherwise the revision of the last pass is kept and nothing touches the network.
- An app is re-rendered only when its spec changed or a new commit touched its inputs (its
  path, the Kustomize bases it reaches, its values files); otherwise the last render is reused.
- Planning reads live objects from the informers' cache (no LIST requests); unchanged objects
  cost no request at all, so a resync of a converged app makes zero API calls.
- Failure keeps the last good state: nothing is pruned after a failed fetch, render, validate
  or apply, the status says which stage failed and why, and the queue retries with backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tether.controller import reports as rp
from tether.controller.app_inputs import chart_credentials, decryption_keys, secret_data, substitution_variables
from tether.controller.app_status import dependency_ready, status_after, status_failed
from tether.controller.reports import AppReport, Reports
from tether.controller.stages import (
    CASCADE_FINALIZER,
    REFRESH_ANNOTATION,
    SYNC_ANNOTATION,
    AppMemory,
    PassResult,
    StageError,
    applied_digest,
    drift_of,
    fetch_revision,
    ignore_rule,
    render_options_for,
    render_revision,
)
from tether.delivery.capabilities import CapabilitiesCache
from tether.delivery.source import SourceFetcher
from tether.errors import TetherError, ValidationError

__all__ = ["CASCADE_FINALIZER", "REFRESH_ANNOTATION", "SYNC_ANNOTATION", "Reconciler"]


class Reconciler:
    """One pass over one Application; everything it needs is handed in (no global state)."""

    def __init__(
        self,
        *,
        kube: Any,
        apps: Any,
        cache: Any,
        informers: Any,
        fetcher: SourceFetcher,
        status: Any,
        events: Any,
        metrics: Any,
        reports: Reports | None = None,
        clock: Callable[[], float] = time.time,
        health_rules: Any = None,
    ) -> None:
        self.kube, self.apps, self.cache, self.informers = kube, apps, cache, informers
        #: CEL health checks for every app (``--health-rules``); an app's spec.healthCheckExprs win
        self.health_rules = health_rules
        self.reports = reports or Reports()
        self.fetcher, self.status, self.events, self.metrics, self.clock = fetcher, status, events, metrics, clock
        self.memory: dict[tuple[str, str], AppMemory] = {}
        #: apps whose next pass must fetch (webhook, refresh): cleared when the fetch ran
        self.fetch_now: set[tuple[str, str]] = set()
        #: the cluster's version and APIs for Helm's .Capabilities: one discovery per DEFAULT_TTL, not per pass
        self.capabilities = CapabilitiesCache()

    def memory_of(self, key: tuple[str, str]) -> AppMemory:
        return self.memory.setdefault(key, AppMemory())

    # ------------------------------------------------------------ inputs read from the cluster

    async def _render_options(self, kube: Any, app: Any) -> Any:
        options = render_options_for(app, await substitution_variables(kube, app), await chart_credentials(kube, app))
        return await self.capabilities.options_for(self.kube, options)

    async def _decryptor(self, kube: Any, app: Any) -> Any:
        if app.spec.decryption is None:
            return None
        from tether.secrets import Decryptor

        return Decryptor.from_key_material(await decryption_keys(kube, app))

    # ------------------------------------------------------------ one pass

    async def run_pass(self, app: Any, kube: Any, *, sync_requested: bool, force_fetch: bool) -> PassResult:
        """Fetch, render, plan, apply (when automated or asked), observe health. Raises StageError."""
        from tether.delivery.plan import plan_app
        from tether.engine import WRITES, Action, AppIdentity, ApplyOptions, apply_plan
        from tether.engine.namespaces import ensure_namespace

        result = PassResult()
        memory = self.memory_of(app.key)
        source = app.spec.source
        secret = (
            await secret_data(kube, app.namespace, source.secret_ref.name, field="spec.source.secretRef")
            if source.secret_ref
            else None
        )
        started = time.monotonic()
        fetched = await fetch_revision(
            self.fetcher,
            app,
            memory,
            force=force_fetch,
            secret_data=secret,
            interval=app.spec.interval.total_seconds(),
        )
        if fetched and self.metrics is not None:
            self.metrics.observe_git_fetch(time.monotonic() - started)
        if memory.commit != (app.status.last_applied_revision or "") and memory.started_reported != memory.commit:
            memory.started_reported = memory.commit
            self.reports.send(self._report(app, memory, "started"))
        options = await self._render_options(kube, app)
        if (
            await render_revision(self.fetcher, app, memory, options, await self._decryptor(kube, app))
            and self.metrics is not None
        ):
            self.metrics.renders.inc()
        manifests = memory.manifests or []
        identity = AppIdentity(app.namespace, app.name)
        rules = [ignore_rule(rule) for rule in app.spec.ignore_differences]
        try:
            plan = await plan_app(
                kube,
                manifests,
                identity,
                reader=self.cache.reader(),
                ignore_rules=rules,
                default_namespace=app.spec.destination.namespace or app.namespace,
            )
        except ValidationError as error:
            raise StageError("ValidationFailed", f"{memory.commit[:12]}: {error}") from None
        except TetherError as error:
            raise StageError("PlanFailed", f"{memory.commit[:12]}: {error}") from None
        changes = [c for c in plan.changes if c.action in WRITES or c.action is Action.CONFLICT]
        health_rules = self._health_rules(app, plan)
        result.counts = {str(a): len(plan.of(a)) for a in Action}
        result.prune_blocked = [str(skipped) for skipped in getattr(plan, "skipped", [])][:10]
        deletes = plan.of(Action.DELETE)
        at_applied = memory.commit == (app.status.last_applied_revision or "")
        ours = {identity.field_manager, "tether"}
        automated = app.spec.sync_policy.automated or sync_requested
        if changes and at_applied and not sync_requested:
            # Git did not move: what differs was changed in the cluster
            result.drift = drift_of(changes, ours)
            if not app.spec.sync_policy.self_heal:
                automated = False
        if not automated:
            result.synced = not changes and not (deletes and app.spec.sync_policy.prune)
            result.inventory = len(plan.inventory.entries)
            self._observe_health(plan, result, health_rules)
            return result
        prune = app.spec.sync_policy.prune
        options_ = ApplyOptions(
            prune=prune,
            allow_empty_prune=app.spec.sync_policy.allow_empty,
            field_manager=identity.field_manager,
            health_rules=health_rules,
        )
        # nothing to write (a commit elsewhere in the repository, a resync): no apply, no inventory write
        if changes or (prune and deletes):
            try:
                if app.spec.destination.create_namespace and app.spec.destination.namespace:
                    await ensure_namespace(kube, app.spec.destination.namespace, identity)
                applied = await apply_plan(kube, plan, options_)
            except TetherError as error:
                raise StageError("ApplyFailed", f"{memory.commit[:12]}: {error}") from None
            result.applied = True
            result.pruned = applied.count(Action.DELETE)
            memory.own_writes = {o.ref: o.resource_version for o in applied.outcomes if o.ok and o.resource_version}
            memory.own_deletes = frozenset(o.ref for o in applied.outcomes if o.ok and o.action is Action.DELETE)
            result.stale = await self._cache_caught_up(changes)
            if result.drift:
                result.drift_corrected, result.drift = result.drift, []
        result.synced = True
        result.inventory = len(plan.desired_refs)
        self._observe_health(plan, result, health_rules)
        return result

    async def _cache_caught_up(self, changes: list[Any], timeout: float = 5.0) -> set[Any]:
        """Wait (briefly) until the watch cache shows what was just applied; returns what it still does not.

        Without this, the next pass (woken by the first of the watch events our own writes cause)
        would plan against objects the cache has not updated yet and see them as drift; and health
        read from the cache would describe the objects as they were before the apply.
        """
        deadline = time.monotonic() + timeout
        pending = [c for c in changes if c.ref.name]  # a generateName object has no name to look up
        while pending and time.monotonic() < deadline:
            pending = [
                c
                for c in pending
                if applied_digest(self.cache.get(c.ref.group, c.ref.kind, c.ref.namespace, c.ref.name))
                != applied_digest(c.desired)
            ]
            if pending:
                await asyncio.sleep(0.02)
        return {c.ref for c in pending}

    def _health_rules(self, app: Any, plan: Any) -> Any:
        """The controller's health checks overridden by the app's own, and the custom kinds whose CRD
        (in the render or the cache) promises a status."""
        from tether.engine.health_kinds import status_kinds_cached
        from tether.engine.health_rules import HealthRules

        rules = (self.health_rules or HealthRules()).overridden_by(app.spec.health_rules())
        return rules.with_status_kinds(status_kinds_cached(plan.changes, self.cache.get))

    def _observe_health(self, plan: Any, result: PassResult, rules: Any = None) -> None:
        """Health from the watch cache: no request, no waiting (the next event re-runs the pass)."""
        from tether.engine import Action
        from tether.engine.health import Health, compute

        worst, message = Health.HEALTHY, ""
        order = [Health.HEALTHY, Health.SUSPENDED, Health.PROGRESSING, Health.UNKNOWN, Health.MISSING, Health.DEGRADED]
        for change in plan.changes:
            if change.action is Action.DELETE:
                continue
            ref = change.ref
            live = self.cache.get(ref.group, ref.kind, ref.namespace, ref.name)
            health = compute(live, rules)
            state = health.health
            if state is Health.TERMINATING:
                state = Health.PROGRESSING
            if ref in result.stale:
                state = max(state, Health.PROGRESSING, key=order.index)  # the cache has not seen the write yet
            if order.index(state) > order.index(worst):
                worst, message = state, f"{ref}: {health.message}" if health.message else str(ref)
        result.health, result.health_message = str(worst), message

    async def reconcile(self, key: tuple[str, str]) -> float | None:
        """The reconcile of one key, as the work queue calls it; returns seconds until the next pass."""
        from tether.controller import conditions as c
        from tether.controller.api import InvalidApplication, parse_application

        obj = self.apps.get(*key)
        if obj is None:
            self.memory.pop(key, None)
            return None
        now = datetime.fromtimestamp(self.clock(), UTC)
        started = time.monotonic()
        try:
            app = parse_application(obj)
        except InvalidApplication as error:
            await self._write_raw_stalled(obj, str(error), now)
            return None
        if app.metadata.deletion_timestamp:
            return await self._finalize(app)
        if app.spec.suspend:
            status = app.status.model_copy(deep=True)
            status.conditions = list(
                c.mark_suspended(status.conditions, "suspended (spec.suspend)", app.generation, now)
            )
            status.observed_generation = app.generation
            await self.status.write(app, status)
            self.reports.send(
                self._report(
                    app,
                    self.memory_of(key),
                    "finished",
                    kinds=(rp.SUSPENDED,),
                    reason="Suspended",
                    message="suspended (spec.suspend)",
                )
            )
            return None
        for dep in app.spec.depends_on:
            namespace = dep.namespace or app.namespace
            ready, why = dependency_ready(self.apps.get(namespace, dep.name))
            if not ready:
                error = StageError(c.DEPENDENCY_NOT_READY, f"dependency {namespace}/{dep.name} is {why}")
                await self._fail(app, error, now, terminal=False, event_type="Normal")
                return 5.0
        memory = self.memory_of(key)
        annotations = app.metadata.annotations
        sync_value = annotations.get(SYNC_ANNOTATION, "")
        refresh_value = annotations.get(REFRESH_ANNOTATION, "")
        sync_requested = bool(sync_value) and sync_value != memory.handled_sync
        # take the push flag now: a webhook arriving during this pass sets it again for the next one
        pushed = key in self.fetch_now
        self.fetch_now.discard(key)
        force = pushed or sync_requested or (bool(refresh_value) and refresh_value != memory.handled_refresh)
        kube = self._kube_for(app)
        try:
            try:
                result = await self.run_pass(app, kube, sync_requested=sync_requested, force_fetch=force)
            except StageError:
                raise
            except TetherError as error:  # reading Secrets/ConfigMaps, a denied request, ...
                raise StageError("ReconcileFailed", str(error)) from None
        except StageError as error:
            # a broken commit or spec waits for the next change; anything else retries per spec.retry
            terminal = error.stage in ("RenderFailed", "ValidationFailed", "PlanFailed", "InvalidSpec")
            memory.failures += 1
            retry = app.spec.retry
            exhausted = not terminal and memory.failures > retry.limit
            if exhausted:
                error = StageError(
                    error.stage,
                    f"{error} (gave up after {retry.limit} retries; the next change or spec.interval tries again)",
                )
            if pushed and not terminal:
                self.fetch_now.add(key)  # the retry must still fetch what the push announced
            await self._fail(app, error, now, terminal=terminal or exhausted)
            self._observe(app, "failure", started)
            if terminal or exhausted:
                memory.failures = 0 if exhausted else memory.failures
                return app.spec.interval.total_seconds()
            return retry.delay(memory.failures).total_seconds()
        memory.failures = 0
        memory.handled_sync, memory.handled_refresh = sync_value, refresh_value
        status = status_after(app, memory, result, now)
        status.last_handled_sync_at = sync_value or None
        status.last_handled_refresh_at = refresh_value or None
        deployed = await self._announce(app, memory, result, status)
        await self.status.write(app, status)
        self.reports.send(self._finished(app, memory, result, status, deployed))
        self._observe(app, "success", started, status)
        if result.health in ("Progressing", "Unknown", "Missing"):
            return min(2.0, app.spec.interval.total_seconds())
        return app.spec.interval.total_seconds()

    def _report(self, app: Any, memory: AppMemory, phase: str, **fields: Any) -> AppReport:
        info = memory.commit_info
        return AppReport(
            namespace=app.namespace,
            name=app.name,
            phase=phase,
            revision=memory.commit,  # type: ignore[arg-type]
            source_url=app.spec.source.url,
            author=info.author if info else "",
            subject=info.subject if info else "",
            committed_at=info.committed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if info else "",
            labels=dict(app.metadata.labels),
            **fields,
        )

    def _finished(self, app: Any, memory: AppMemory, result: PassResult, status: Any, deployed: bool) -> AppReport:
        """The facts of a successful pass; the notifier decides what is a transition worth telling.

        ``deployed``: Ready on this revision for the first time (from ``_announce``); lastAppliedRevision
        cannot say it, as the applying pass sets it while health is still Progressing."""
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        was = next((c for c in app.status.conditions if c.type == "Ready"), None)
        kinds: list[str] = []
        is_ready = ready is not None and ready.status == "True"
        if is_ready and deployed:
            kinds.append(rp.DEPLOYED)
        if is_ready and was is not None and was.status == "False":
            kinds.append(rp.RECOVERED)
        if result.health == "Degraded":
            kinds.append(rp.HEALTH_DEGRADED)
        elif result.health in ("Progressing", "Unknown", "Missing"):
            kinds.append(rp.PROGRESSING)
        if result.drift:
            kinds.append(rp.DRIFT_DETECTED)
        if result.drift_corrected:
            kinds.append(rp.DRIFT_CORRECTED)
        if result.prune_blocked:
            kinds.append(rp.PRUNE_BLOCKED)
        failing = (
            ((result.health_message.partition(":")[0], result.health_message),)
            if result.health == "Degraded" and result.health_message
            else ()
        )
        return self._report(
            app,
            memory,
            "finished",
            kinds=tuple(kinds),
            ready=is_ready if ready is not None else None,
            reason=ready.reason if ready else "",
            message=ready.message if ready else "",
            sync=status.sync.status,
            health=status.health.status,
            failing=failing,
            drift=tuple(d.describe() for d in (result.drift or result.drift_corrected)),
        )

    def _kube_for(self, app: Any) -> Any:
        if not app.spec.service_account_name:
            return self.kube
        from tether.kube import service_account_user

        user, groups = service_account_user(app.namespace, app.spec.service_account_name)
        return self.kube.impersonate(user, groups)

    async def _announce(self, app: Any, memory: AppMemory, result: PassResult, status: Any) -> bool:
        """Events for what this pass changed, and the commit-to-applied latency once Ready.

        Returns whether the app is Ready on this revision for the first time (a deployment)."""
        from tether.controller import conditions as c
        from tether.controller import events as ev

        before = {x.type: x for x in app.status.conditions}
        after = {x.type: x for x in status.conditions}
        for drift in result.drift_corrected:
            await self.events.normal(app, ev.DRIFT_CORRECTED, drift.describe() + "; corrected")
        if result.drift and (before.get(c.DRIFTED) is None or before[c.DRIFTED].status != "True"):
            await self.events.warning(app, ev.DRIFT_DETECTED, "; ".join(d.describe() for d in result.drift[:5]))
        if result.pruned:
            await self.events.normal(app, ev.PRUNED, f"pruned {result.pruned} object(s) no longer in Git")
        ready_now = after.get(c.READY)
        was = before.get(c.READY)
        deployed = False
        if (
            ready_now is not None
            and ready_now.status == "True"
            and (was is None or was.status != "True" or result.applied)
        ):
            await self.events.normal(
                app, ev.RECONCILIATION_SUCCEEDED, f"revision {memory.commit[:12]} applied and healthy"
            )
            deployed = memory.ready_revision != memory.commit
            if deployed and self.metrics is not None:
                since = memory.announced.pop(memory.commit, None)
                if since is None and memory.commit_info is not None:
                    since = memory.commit_info.committed_at.timestamp()
                if since is not None:
                    self.metrics.observe_commit_to_ready(max(self.clock() - since, 0.0))
            memory.ready_revision = memory.commit
        if result.health == "Degraded" and (before.get(c.HEALTHY) is None or before[c.HEALTHY].reason != "Degraded"):
            await self.events.warning(app, ev.HEALTH_DEGRADED, result.health_message)
        return deployed

    async def _fail(
        self, app: Any, error: StageError, now: datetime, *, terminal: bool, event_type: str = "Warning"
    ) -> None:
        from tether.controller import events as ev

        memory = self.memory_of(app.key)
        status = status_failed(app, memory, error, now, terminal=terminal)
        reason = ev.DEPENDENCY_NOT_READY if error.stage == ev.DEPENDENCY_NOT_READY else ev.RECONCILIATION_FAILED
        if event_type == "Warning":
            await self.events.warning(app, reason, f"{error.stage}: {error}")
        else:
            await self.events.normal(app, reason, str(error))
        await self.status.write(app, status)
        kind = rp.DEPENDENCY_NOT_READY if reason == ev.DEPENDENCY_NOT_READY else rp.SYNC_FAILED
        self.reports.send(
            self._report(app, memory, "finished", kinds=(kind,), ready=False, reason=error.stage, message=str(error))
        )

    async def _write_raw_stalled(self, obj: dict[str, Any], message: str, now: datetime) -> None:
        from tether.controller import conditions as c
        from tether.controller import events as ev

        meta = obj.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        conds = [
            c.Condition.model_validate(x)
            for x in (obj.get("status") or {}).get("conditions") or []
            if isinstance(x, dict) and x.get("type")
        ]
        conds = list(c.mark_stalled(conds, c.INVALID_SPEC, message, generation, now))
        body = {"status": {"observedGeneration": generation, "conditions": c.to_dicts(conds)}}
        await self.events.warning(obj, ev.RECONCILIATION_FAILED, message)
        await self.kube.patch(
            self.status.info,
            meta.get("name"),
            meta.get("namespace"),
            body,
            subresource="status",
            field_manager=self.status.field_manager,
        )

    async def _finalize(self, app: Any) -> float | None:
        """Deleted with the cascade finalizer: delete hooks and prune (controller/deletion.py), then let go.

        Returns the seconds until the next attempt while a pre-delete hook (or the prune) fails."""
        from tether.controller.deletion import finalize_cascade

        if CASCADE_FINALIZER not in app.metadata.finalizers:
            self.memory.pop(app.key, None)
            return None
        again = await finalize_cascade(self, app, self._kube_for(app))
        if again is not None:
            return again
        finalizers = [f for f in app.metadata.finalizers if f != CASCADE_FINALIZER]
        await self.kube.patch(
            self.status.info,
            app.name,
            app.namespace,
            {"metadata": {"finalizers": finalizers or None, "resourceVersion": app.metadata.resource_version}},
        )
        self.memory.pop(app.key, None)
        return None

    def _observe(self, app: Any, result: str, started: float, status: Any = None) -> None:
        if self.metrics is None:
            return
        self.metrics.observe_reconcile(time.monotonic() - started, result)
        if status is not None:
            self.metrics.set_app(
                app.namespace, app.name, status.sync.status, status.health.status, status.source_revision or ""
            )
