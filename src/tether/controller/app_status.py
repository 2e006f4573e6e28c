"""An Application's status after a pass: conditions, sync, health, drift, history (pure functions).

Conditions follow kstatus: ``Reconciling`` while work is under way, ``Stalled`` when only a
change of spec or Git can help, ``Ready`` summarising; ``lastTransitionTime`` moves only when
a condition's status changes (see ``tether.controller.conditions``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tether.controller.stages import AppMemory, PassResult, StageError


def _short(sha: str) -> str:
    return sha[:12]


def status_after(app: Any, memory: AppMemory, result: PassResult, now: datetime) -> Any:
    """The Application's new status after a successful pass (typed ``ApplicationStatus``)."""
    from tether.controller import conditions as c
    from tether.controller.api import DriftEntry, HealthStatus, HistoryEntry, Inventory, ObjectCounts, SyncStatus
    from tether.controller.status import record_drift, record_history

    status = app.status.model_copy(deep=True)
    generation = app.generation
    status.source_revision = memory.commit or status.source_revision
    status.last_attempted_revision = memory.commit or status.last_attempted_revision
    conds = status.conditions
    synced = result.synced
    sync_text = "Synced" if synced else ("OutOfSync" if synced is False else "Unknown")
    status.sync = SyncStatus(status=sync_text, revision=memory.commit or None)
    status.health = HealthStatus(status=result.health, message=result.health_message or None)
    if result.inventory is not None:
        status.inventory = Inventory(count=result.inventory)
    found = [
        DriftEntry(object=d.object, fields=list(d.fields), manager=d.manager or None, time=d.time or None)
        for d in result.drift
    ]
    status.drift = record_drift([], found) if found else []
    conds = c.set_condition(
        conds,
        c.SYNCED,
        "True" if synced else "False" if synced is False else "Unknown",
        "Synced" if synced else "OutOfSync",
        f"at {_short(memory.commit)}" if synced else "the cluster differs from Git",
        generation,
        now,
    )
    healthy = {"Healthy": "True", "Suspended": "True", "Progressing": "Unknown", "Unknown": "Unknown"}.get(
        result.health, "False"
    )
    conds = c.set_condition(conds, c.HEALTHY, healthy, result.health, result.health_message, generation, now)
    conds = c.set_condition(
        conds,
        c.DRIFTED,
        "True" if found else "False",
        "DriftDetected" if found else "NoDrift",
        "; ".join(d.describe() for d in result.drift[:3]),
        generation,
        now,
    )
    pin = app.spec.pin
    if pin is not None:
        conds = c.set_condition(
            conds,
            c.PINNED,
            "True",
            "Pinned",
            f"pinned to {pin.revision}" + (f": {pin.reason}" if pin.reason else ""),
            generation,
            now,
        )
    else:
        conds = c.delete(conds, c.PINNED)
    if result.applied or (synced and status.last_applied_revision != memory.commit and result.synced):
        if result.applied:
            counts = ObjectCounts(
                total=result.inventory or 0,
                created=result.counts.get("create", 0),
                updated=result.counts.get("update", 0),
                unchanged=result.counts.get("unchanged", 0),
                pruned=result.pruned,
            )
            info = memory.commit_info
            entry = HistoryEntry(
                revision=memory.commit,
                author=info.author if info else None,
                subject=info.subject if info else None,
                committed_at=info.committed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if info else None,
                deployed_at=c.rfc3339(now),
                result="Succeeded",
                objects=counts,
            )
            status.history = record_history(status.history, entry, app.spec.revision_history_limit)
        status.last_applied_revision = memory.commit
    if not synced:
        conds = c.mark_ready(
            conds, "OutOfSync", "the cluster differs from Git (automated sync is off)", generation, now
        )
        conds = c.set_condition(
            conds,
            c.READY,
            "False",
            "OutOfSync",
            "; ".join(d.describe() for d in result.drift[:3]) or "the cluster differs from Git",
            generation,
            now,
        )
    elif result.health == "Degraded":
        conds = c.set_condition(
            c.delete(c.delete(conds, c.RECONCILING), c.STALLED),
            c.READY,
            "False",
            "HealthDegraded",
            result.health_message,
            generation,
            now,
        )
    elif result.health in ("Progressing", "Unknown", "Missing"):
        conds = c.mark_reconciling(conds, "Progressing", result.health_message or "waiting for health", generation, now)
        conds = c.set_condition(conds, c.READY, "Unknown", "Progressing", result.health_message, generation, now)
    else:
        conds = c.mark_ready(
            conds, "ReconciliationSucceeded", f"applied revision {_short(memory.commit)}", generation, now
        )
    status.conditions = list(conds)
    status.observed_generation = generation
    return status


def status_failed(app: Any, memory: AppMemory, error: StageError, now: datetime, *, terminal: bool) -> Any:
    from tether.controller import conditions as c

    status = app.status.model_copy(deep=True)
    status.last_attempted_revision = memory.commit or status.last_attempted_revision
    if memory.commit:
        status.source_revision = memory.commit
    mark = c.mark_stalled if terminal else c.mark_failed
    status.conditions = list(mark(status.conditions, error.stage, str(error), app.generation, now))
    status.observed_generation = app.generation
    return status


def dependency_ready(dep: dict[str, Any] | None) -> tuple[bool, str]:
    """Ready at its current revision: Ready=True for its generation and Git's revision applied."""
    if dep is None:
        return False, "not found"
    status = dep.get("status") or {}
    meta = dep.get("metadata") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        return False, f"not Ready ({(ready or {}).get('reason', 'no status yet')})"
    if status.get("observedGeneration") != meta.get("generation"):
        return False, "its latest spec is not reconciled yet"
    if status.get("lastAppliedRevision") != status.get("sourceRevision"):
        return False, "its latest revision is not applied yet"
    return True, ""
