"""Delivery metrics (the four DORA figures) from the controller's reports, on its /metrics registry.

Series (labels ``namespace``, ``name`` of the Application):

- ``tether_deployments_total{result="succeeded"|"failed"}``: one per revision the controller
  started to deploy, counted once, at its first outcome: Ready on it (``Deployed``) or a failure
  on it (``SyncFailed`` except FetchFailed, or ``HealthDegraded``) before that. Deployment
  frequency is its rate; the **change failure rate** is ``failed / (succeeded + failed)`` over
  whatever window the query picks. Counters rather than a gauge: a gauge would fix the window
  inside the controller, start from nothing at every restart, and could not be summed over apps
  or teams; counters leave all of that to PromQL.
- ``tether_deployment_lead_time_seconds``: commit time to Ready on that commit (Deployed).
- ``tether_time_to_restore_seconds``: the first failure of an episode (SyncFailed or
  HealthDegraded) to the next Ready report.

State lives in memory, per app: the revision being deployed, the last one counted, and when the
open failure episode began. A controller restart forgets them; to keep a restart from shortening
an episode, its start is taken from the app's Ready condition (lastTransitionTime) when that is
earlier. Revisions are counted from ``started`` reports, which the controller sends from the
persisted status, so a restart does not count a deployed revision again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from tether.controller import reports as rp
from tether.controller.conditions import parse_time
from tether.controller.reports import AppReport

#: seconds: from minutes (a merge deployed by webhook) to a week (a commit waiting for review)
LEAD_TIME_BUCKETS = (30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)
#: seconds: from a flap healed by a retry to a day-long outage
RESTORE_BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
FAILURES = frozenset({rp.SYNC_FAILED, rp.HEALTH_DEGRADED})
#: failure reasons that say nothing about the change (Git was unreachable)
NOT_A_CHANGE_FAILURE = frozenset({"FetchFailed"})

SUCCEEDED, FAILED = "succeeded", "failed"
AppLookup = Callable[[str, str], "dict[str, Any] | None"]


@dataclass
class _AppState:
    deploying: str = ""  # revision a pass started on, not counted yet
    counted: str = ""  # last revision counted as a deployment
    deployed: str = ""  # last revision seen Ready for the first time (lead time observed)
    failing_since: float | None = None


class DeliveryMetrics:
    """Feed it every report (``on_report``); it keeps the series above on ``registry``."""

    def __init__(
        self, registry: CollectorRegistry, lookup: AppLookup | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.lookup, self.clock = lookup, clock
        labels = ["namespace", "name"]
        self.deployments = Counter(
            "tether_deployments",
            "Deployments of a revision by outcome (once per revision)",
            [*labels, "result"],
            registry=registry,
        )
        self.lead_time = Histogram(
            "tether_deployment_lead_time_seconds",
            "Seconds from a commit to the Application Ready on it",
            labels,
            buckets=LEAD_TIME_BUCKETS,
            registry=registry,
        )
        self.time_to_restore = Histogram(
            "tether_time_to_restore_seconds",
            "Seconds from an Application's first failure to Ready again",
            labels,
            buckets=RESTORE_BUCKETS,
            registry=registry,
        )
        self._apps: dict[tuple[str, str], _AppState] = {}

    def on_report(self, report: AppReport) -> None:
        state = self._apps.setdefault((report.namespace, report.name), _AppState())
        if report.phase == "started":
            if report.revision and report.revision != state.counted:
                state.deploying = report.revision
            return
        now = self.clock()
        kinds = set(report.kinds)
        failed = bool(kinds & FAILURES)
        self._count(state, report, failed, now)
        if failed:
            if state.failing_since is None:
                state.failing_since = self._episode_start(report, now)
        elif report.ready and state.failing_since is not None:
            self.time_to_restore.labels(report.namespace, report.name).observe(max(now - state.failing_since, 0.0))
            state.failing_since = None

    def _count(self, state: _AppState, report: AppReport, failed: bool, now: float) -> None:
        revision = report.revision
        if not revision:
            return
        if rp.DEPLOYED in report.kinds and revision != state.deployed:
            state.deployed = revision
            committed = parse_time(report.committed_at)
            if committed is not None:
                self.lead_time.labels(report.namespace, report.name).observe(max(now - committed, 0.0))
        if revision == state.counted:
            return
        if rp.DEPLOYED in report.kinds:
            result = SUCCEEDED
        elif failed and revision == state.deploying and report.reason not in NOT_A_CHANGE_FAILURE:
            result = FAILED
        else:
            return
        self.deployments.labels(report.namespace, report.name, result).inc()
        state.counted, state.deploying = revision, ""

    def _episode_start(self, report: AppReport, now: float) -> float:
        """Now, or when the app's Ready condition turned False if that is earlier (a failure older than us)."""
        obj = self.lookup(report.namespace, report.name) if self.lookup is not None else None
        conditions = ((obj or {}).get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), None)
        if ready is not None and ready.get("status") == "False":
            since = parse_time(str(ready.get("lastTransitionTime") or ""))
            if since is not None and since < now:
                return since
        return now

    def forget(self, namespace: str, name: str) -> None:
        self._apps.pop((namespace, name), None)


def watch_deliveries(controller: Any) -> DeliveryMetrics:
    """Subscribe delivery metrics to ``controller.reports``, on ``controller.metrics.registry``."""
    metrics = DeliveryMetrics(controller.metrics.registry, lookup=controller.apps.get)
    controller.reports.subscribe(metrics.on_report)
    return metrics


__all__ = ["DeliveryMetrics", "parse_time", "watch_deliveries"]
