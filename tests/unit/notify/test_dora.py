"""Delivery metrics from reports sent through a real Controller's fan-out (no cluster: nothing is run)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether.controller.reports import AppReport
from tether.controller.run import Controller, ControllerOptions
from tether.notify.dora import DeliveryMetrics, watch_deliveries

NS, APP = "shop", "web"
R1, R2, R3 = "1" * 40, "2" * 40, "3" * 40


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def controller(tmp_path: Path) -> Controller:
    return Controller(None, ControllerOptions(cache_dir=str(tmp_path)))  # type: ignore[arg-type]


def started(revision: str, name: str = APP) -> AppReport:
    return AppReport(NS, name, "started", revision=revision)


def finished(
    revision: str, *kinds: str, ready: bool | None, reason: str = "", name: str = APP, committed_at: str = ""
) -> AppReport:
    return AppReport(
        NS, name, "finished", revision=revision, kinds=kinds, ready=ready, reason=reason, committed_at=committed_at
    )


def feed(controller: Controller, clock: Clock, *steps: tuple[float, AppReport]) -> None:
    async def run() -> None:
        for at, report in steps:
            clock.now = at
            controller.reports.send(report)
            await controller.reports.drain()  # one at a time: the clock is read when a report arrives

    asyncio.run(run())


def sample(controller: Controller, name: str, **labels: str) -> float | None:
    return controller.metrics.registry.get_sample_value(name, {"namespace": NS, "name": APP, **labels})


def attached(controller: Controller, clock: Clock) -> DeliveryMetrics:
    metrics = watch_deliveries(controller)
    metrics.clock = clock
    return metrics


T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
COMMITTED = "2023-11-14T22:03:20Z"  # T0 - 600


def test_each_revision_is_counted_once_at_its_first_outcome(controller: Controller) -> None:
    clock = Clock(T0)
    attached(controller, clock)
    feed(
        controller,
        clock,
        (T0, started(R1)),
        (T0 + 5, finished(R1, "Progressing", ready=False)),
        (T0 + 30, finished(R1, "Deployed", ready=True, committed_at=COMMITTED)),
        (T0 + 90, finished(R1, ready=True)),  # a resync: no deployment
        (T0 + 100, started(R2)),
        (T0 + 101, finished(R2, "SyncFailed", ready=False, reason="RenderFailed")),
        (T0 + 160, finished(R2, "SyncFailed", ready=False, reason="RenderFailed")),  # a retry: not again
        (T0 + 200, started(R3)),
        (T0 + 230, finished(R3, "Deployed", "Recovered", ready=True)),
    )
    assert sample(controller, "tether_deployments_total", result="succeeded") == 2
    assert sample(controller, "tether_deployments_total", result="failed") == 1
    # lead time: R1 committed 600 s before T0, Ready at T0 + 30; R3 carries no commit time
    assert sample(controller, "tether_deployment_lead_time_seconds_count") == 1
    assert sample(controller, "tether_deployment_lead_time_seconds_sum") == 630
    # restore: first failure at T0 + 101, Ready again at T0 + 230
    assert sample(controller, "tether_time_to_restore_seconds_count") == 1
    assert sample(controller, "tether_time_to_restore_seconds_sum") == 129


def test_failures_that_are_not_a_change_are_not_counted_as_failed_deployments(controller: Controller) -> None:
    clock = Clock(T0)
    attached(controller, clock)
    feed(
        controller,
        clock,
        (T0, started(R1)),
        (T0 + 10, finished(R1, "Deployed", ready=True)),
        # the deployed revision degrades later (a node went away), and Git is unreachable for a while
        (T0 + 100, finished(R1, "HealthDegraded", ready=False, reason="HealthDegraded")),
        (T0 + 150, finished(R1, "SyncFailed", ready=False, reason="FetchFailed")),
        (T0 + 400, finished(R1, "Recovered", ready=True)),
        # a new revision that cannot be fetched is not a failed change; the same one Ready later is a success
        (T0 + 500, started(R2)),
        (T0 + 501, finished(R2, "SyncFailed", ready=False, reason="FetchFailed")),
        (T0 + 600, finished(R2, "Deployed", "Recovered", ready=True)),
    )
    assert sample(controller, "tether_deployments_total", result="succeeded") == 2
    assert sample(controller, "tether_deployments_total", result="failed") is None
    assert sample(controller, "tether_time_to_restore_seconds_count") == 2
    assert sample(controller, "tether_time_to_restore_seconds_sum") == 300 + 99


def test_health_degraded_before_ready_is_a_failed_deployment(controller: Controller) -> None:
    clock = Clock(T0)
    attached(controller, clock)
    feed(
        controller,
        clock,
        (T0, started(R1)),
        (T0 + 5, finished(R1, "Progressing", ready=False)),
        (T0 + 60, finished(R1, "HealthDegraded", ready=False, reason="HealthDegraded")),
        (T0 + 120, finished(R1, "Deployed", "Recovered", ready=True, committed_at=COMMITTED)),
    )
    assert sample(controller, "tether_deployments_total", result="failed") == 1
    assert sample(controller, "tether_deployments_total", result="succeeded") is None
    assert sample(controller, "tether_deployment_lead_time_seconds_sum") == 720  # it did get deployed
    assert sample(controller, "tether_time_to_restore_seconds_sum") == 60


def test_an_episode_older_than_the_controller_starts_at_the_ready_condition(controller: Controller) -> None:
    """After a restart the first failure report is not the failure's start: the Ready condition says it."""
    clock = Clock(T0)
    lookup = {
        (NS, APP): {
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2023-11-14T21:13:20Z"}]
            }
        }
    }  # T0 - 3600
    metrics = DeliveryMetrics(controller.metrics.registry, lookup=lambda ns, name: lookup.get((ns, name)), clock=clock)
    controller.reports.subscribe(metrics.on_report)
    feed(
        controller,
        clock,
        (T0, finished(R1, "SyncFailed", ready=False, reason="ApplyFailed")),
        (T0 + 60, finished(R1, ready=True)),
    )
    assert sample(controller, "tether_time_to_restore_seconds_sum") == 3660
    assert sample(controller, "tether_deployments_total", result="failed") is None  # no start seen: not ours


def test_apps_are_kept_apart(controller: Controller) -> None:
    clock = Clock(T0)
    attached(controller, clock)
    feed(
        controller,
        clock,
        (T0, started(R1, "api")),
        (T0 + 1, finished(R1, "SyncFailed", ready=False, reason="ApplyFailed", name="api")),
        (T0 + 2, started(R1)),
        (T0 + 3, finished(R1, "Deployed", ready=True)),
    )
    registry = controller.metrics.registry
    assert (
        registry.get_sample_value("tether_deployments_total", {"namespace": NS, "name": "api", "result": "failed"}) == 1
    )
    assert sample(controller, "tether_deployments_total", result="succeeded") == 1
    assert sample(controller, "tether_deployments_total", result="failed") is None
    assert b"tether_deployments_total" in controller.metrics.render()
