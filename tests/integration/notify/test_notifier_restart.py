"""The policy state kept in each Alert's status: a new notifier (a restart, another leader) on the
same cluster goes on where the last one stopped. Real sandbox, real Apprise to a json:// hook."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from notify_hooks import HookServer
from prometheus_client import CollectorRegistry

from tether.controller.backoff import Backoff
from tether.controller.reports import AppReport
from tether.kube import Kube
from tether.notify.alerts import ALERT_INFO, install_alert_crd
from tether.notify.delivery import Deliverer, NotifyMetrics
from tether.notify.notifier import Notifier

COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
FIX = "0f1e2d3c4b5a69788796a5b4c3d2e1f001234567"


class Clock:
    """The wall clock both notifiers read (a restart does not stop time)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def hooks():  # type: ignore[no-untyped-def]
    server = HookServer()
    yield server
    server.shutdown()


def failed(name: str, namespace: str) -> AppReport:
    return AppReport(
        namespace,
        name,
        "finished",
        revision=COMMIT,
        kinds=("SyncFailed",),
        ready=False,
        reason="ApplyFailed",
        message=f"Deployment {namespace}/{name}: spec.replicas: must be >= 0",
    )


def ready(name: str, namespace: str, revision: str = FIX) -> AppReport:
    return AppReport(
        namespace, name, "finished", revision=revision, kinds=("Deployed", "Recovered"), ready=True, reason="Ready"
    )


Scenario = Callable[[Kube, Callable[..., contextlib.AbstractAsyncContextManager[Notifier]]], Awaitable[None]]


def run(sandbox, namespace: str, hooks: HookServer, spec: dict[str, Any], clock: Clock, scenario: Scenario) -> None:
    """An Alert ``oncall`` in ``namespace``; ``scenario(kube, notifier)`` where ``notifier(**options)``
    runs one notifier instance (its own connection) for the length of an ``async with``."""

    async def main() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            await install_alert_crd(kube)
            urls = base64.b64encode(hooks.url(f"{namespace}/oncall").encode()).decode()
            secret = {"metadata": {"name": "oncall-urls", "namespace": namespace}, "data": {"urls": urls}}
            await kube.create(await kube.info("v1", "Secret"), {"apiVersion": "v1", "kind": "Secret", **secret})
            alert = {"metadata": {"name": "oncall", "namespace": namespace}}
            alert["spec"] = {"urlsSecretRef": {"name": "oncall-urls"}, **spec}
            await kube.create(ALERT_INFO, {"apiVersion": "tether.dev/v1alpha1", "kind": "Alert", **alert})

            @contextlib.asynccontextmanager
            async def notifier(**options: Any) -> AsyncIterator[Notifier]:
                async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as own:
                    metrics = NotifyMetrics(CollectorRegistry())
                    deliverer = Deliverer(metrics, attempts=2, backoff=Backoff(base=0.0, cap=0.0, jitter=0.0))
                    running = Notifier(
                        own,
                        metrics,
                        namespaces=(namespace,),
                        clock=clock,
                        deliverer=deliverer,
                        install_crd=False,
                        state_interval=0.0,
                        **options,
                    )
                    await running.start()
                    assert (namespace, "oncall") in running.alerts  # loaded before any report is judged
                    try:
                        yield running
                    finally:
                        await running.stop()

            await scenario(kube, notifier)

    asyncio.run(main())


async def told(kube: Kube, namespace: str) -> dict[str, Any]:
    alert = await kube.get(ALERT_INFO, "oncall", namespace)
    return ((alert or {}).get("status") or {}).get("told") or {}


async def written(kube: Kube, namespace: str, check: Callable[[dict[str, Any]], bool]) -> None:
    async def done() -> bool:
        return check(await told(kube, namespace))

    await kube.wait_for("the policy state in the Alert's status.told", done, 30)


async def settle(notifier: Notifier) -> None:
    notifier.tick()
    await notifier.idle()


def test_an_ongoing_failure_is_not_told_again_after_a_restart(sandbox, sandbox_namespace, hooks) -> None:
    ns, clock = sandbox_namespace, Clock()

    async def scenario(kube: Kube, notifier: Any) -> None:
        async with notifier() as first:
            first.on_report(failed("web", ns))
            await settle(first)
            # written by the notifier's own task, without waiting for a stop
            await written(kube, ns, lambda t: (t.get("web") or {}).get("failure", {}).get("confirmed") is True)
        assert [m["title"] for m in hooks.bodies(f"{ns}/oncall")] == [f"[tether] SyncFailed: {ns}/web at {COMMIT[:12]}"]

        clock.now += 600
        async with notifier() as second:
            second.on_report(failed("web", ns))  # the controller's first pass after its restart
            clock.now += 60
            second.on_report(failed("web", ns))
            await settle(second)

            # an edited spec keeps what was told (and the next status write meets a new resourceVersion)
            text = "{{ event }} {{ app.name }}"
            await kube.patch(ALERT_INFO, "oncall", ns, {"spec": {"template": text}})

            async def edited() -> bool:
                return second.alerts[(ns, "oncall")].spec.template == text

            await kube.wait_for("the edited Alert in the notifier", edited, 30)
            clock.now += 60
            second.on_report(failed("web", ns))
            second.on_report(failed("api", ns))
            await settle(second)
            await written(kube, ns, lambda t: "api" in t and "web" in t)
        assert [m["message"] for m in hooks.bodies(f"{ns}/oncall")][1:] == ["SyncFailed api"]

    run(sandbox, ns, hooks, {}, clock, scenario)


def test_failing_for_keeps_counting_across_a_restart(sandbox, sandbox_namespace, hooks) -> None:
    ns, clock = sandbox_namespace, Clock()
    began = clock.now

    async def scenario(kube: Kube, notifier: Any) -> None:
        async with notifier() as first:
            first.on_report(failed("web", ns))
            clock.now += 120
            await settle(first)
        assert hooks.bodies(f"{ns}/oncall") == []  # failingFor has not passed; written on stop
        assert (await told(kube, ns))["web"]["failure"]["confirmed"] is False

        clock.now += 60
        async with notifier() as second:
            second.on_report(failed("web", ns))  # 180s into the failure
            await settle(second)
            assert hooks.bodies(f"{ns}/oncall") == []
            assert second.alerts[(ns, "oncall")].policy.next_due() == began + 300
            clock.now = began + 300
            await settle(second)
            [message] = hooks.bodies(f"{ns}/oncall")
            assert message["title"] == f"[tether] SyncFailed: {ns}/web at {COMMIT[:12]}"

    run(sandbox, ns, hooks, {"failingFor": "5m"}, clock, scenario)


def test_a_recovered_after_a_restart_is_sent_once_and_refers_to_the_failure(sandbox, sandbox_namespace, hooks) -> None:
    ns, clock = sandbox_namespace, Clock()

    async def scenario(kube: Kube, notifier: Any) -> None:
        async with notifier() as first:
            first.on_report(failed("web", ns))
            await settle(first)
        clock.now += 600
        async with notifier() as second:
            second.on_report(ready("web", ns))
            clock.now += 30
            second.on_report(ready("web", ns))
            await settle(second)
        failure, recovered = hooks.bodies(f"{ns}/oncall")
        assert failure["type"] == "failure"
        assert recovered["title"].startswith(f"[tether] Recovered: {ns}/web")
        assert "recovered from SyncFailed (ApplyFailed) after 10m00s" in recovered["message"]
        assert "failure" not in (await told(kube, ns))["web"]  # nothing owed any more

        async with notifier() as third:  # and a third instance owes nothing either
            third.on_report(ready("web", ns))
            await settle(third)
        assert len(hooks.bodies(f"{ns}/oncall")) == 2

    run(sandbox, ns, hooks, {}, clock, scenario)


def test_state_entries_are_bounded_and_pruned(sandbox, sandbox_namespace, hooks) -> None:
    ns, clock = sandbox_namespace, Clock()
    events = {"events": ["SyncFailed", "Recovered", "Deployed"]}

    async def scenario(kube: Kube, notifier: Any) -> None:
        apps = {"a", "b", "c", "d", "gone"}
        async with notifier(max_told=3, rest_for=3600, lookup=lambda _ns, name: {} if name in apps else None) as first:
            first.on_report(ready("old", ns))  # at rest for longer than rest_for: forgotten
            clock.now += 4000
            for name in ("a", "b", "c", "d"):
                first.on_report(ready(name, ns))
                clock.now += 1
            first.on_report(failed("gone", ns))
            await settle(first)
            await written(kube, ns, lambda t: "gone" in t)
            assert set(await told(kube, ns)) == {"c", "d", "gone"}  # at most 3, the oldest at rest went first

            apps.discard("gone")  # the Application was deleted: its state goes once it is quiet for a while
            clock.now += 301
            first.on_report(ready("d", ns, revision=COMMIT))
            await settle(first)
            await written(kube, ns, lambda t: "gone" not in t)
        assert set(await told(kube, ns)) == {"c", "d"}

    run(sandbox, ns, hooks, events, clock, scenario)


def test_a_garbled_status_starts_empty_and_is_repaired(sandbox, sandbox_namespace, hooks, caplog) -> None:
    ns, clock = sandbox_namespace, Clock()

    async def scenario(kube: Kube, notifier: Any) -> None:
        garbled = {"web": {"kinds": ["SyncFailed"], "updated": "yesterday"}, "api": {"kinds": []}}
        await kube.patch(ALERT_INFO, "oncall", ns, {"status": {"told": garbled}}, subresource="status")
        with caplog.at_level(logging.WARNING, "tether.notify"):
            async with notifier() as running:
                running.on_report(failed("web", ns))
                await settle(running)
        assert f"Alert {ns}/oncall: status.told.api.updated must be an RFC 3339 time, not None" in caplog.text
        assert len(hooks.bodies(f"{ns}/oncall")) == 1
        assert (await told(kube, ns))["web"]["kinds"] == ["SyncFailed"]

    run(sandbox, ns, hooks, {}, clock, scenario)


def test_two_writers_merge_on_conflict(sandbox, sandbox_namespace, hooks) -> None:
    """A leader handover where the old leader still writes: neither loses what the other told."""
    ns, clock = sandbox_namespace, Clock()

    async def scenario(kube: Kube, notifier: Any) -> None:
        async with notifier() as old, notifier() as new:
            old.on_report(failed("web", ns))
            await settle(old)
            await written(kube, ns, lambda t: "web" in t)
            new.on_report(failed("api", ns))  # its resourceVersion is stale: a conflict, then a merge
            await settle(new)
            await written(kube, ns, lambda t: "api" in t)
            assert set(await told(kube, ns)) == {"web", "api"}
            new.on_report(failed("web", ns))  # the new leader took web's entry in the merge: not told again
            await settle(new)
        assert sorted(m["title"] for m in hooks.bodies(f"{ns}/oncall")) == [
            f"[tether] SyncFailed: {ns}/api at {COMMIT[:12]}",
            f"[tether] SyncFailed: {ns}/web at {COMMIT[:12]}",
        ]

    run(sandbox, ns, hooks, {}, clock, scenario)
