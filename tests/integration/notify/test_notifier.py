"""The notifier end to end: Alerts read from the sandbox, real Apprise delivering to a json://
webhook on loopback; the policy cases (failingFor, minInterval, Recovered, groupWindow)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable

import pytest
from notify_hooks import HookServer
from prometheus_client import CollectorRegistry

from tether.controller.backoff import Backoff
from tether.controller.reports import AppReport
from tether.kube import Kube
from tether.notify.alerts import ALERT_INFO
from tether.notify.delivery import Deliverer, NotifyMetrics
from tether.notify.notifier import Notifier

COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
FIX = "0f1e2d3c4b5a69788796a5b4c3d2e1f001234567"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def hooks():  # type: ignore[no-untyped-def]
    server = HookServer()
    yield server
    server.shutdown()


def failed(name: str, namespace: str, revision: str = COMMIT, **labels: str) -> AppReport:
    return AppReport(
        namespace,
        name,
        "finished",
        revision=revision,
        kinds=("SyncFailed",),
        ready=False,
        reason="ApplyFailed",
        message=f"Deployment {namespace}/{name}: spec.replicas: must be >= 0",
        author="Ada",
        subject="scale down",
        source_url="https://github.com/acme/shop.git",
        labels=dict(labels),
    )


def ready(name: str, namespace: str, revision: str = FIX, **labels: str) -> AppReport:
    return AppReport(
        namespace,
        name,
        "finished",
        revision=revision,
        kinds=("Deployed", "Recovered"),
        ready=True,
        reason="Ready",
        message="applied and healthy",
        author="Ada",
        subject="fix replicas",
        labels=dict(labels),
    )


async def with_notifier(
    sandbox,
    namespace: str,
    alerts: dict[str, dict],
    hooks: HookServer,
    scenario: Callable[[Notifier, Clock, NotifyMetrics], Awaitable[None]],
) -> None:
    async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
        clock, metrics = Clock(), NotifyMetrics(CollectorRegistry())
        deliverer = Deliverer(metrics, attempts=4, backoff=Backoff(base=0.0, cap=0.0, jitter=0.0))
        notifier = Notifier(kube, metrics, namespaces=(namespace,), clock=clock, deliverer=deliverer)
        await notifier.start()
        secrets = await kube.info("v1", "Secret")
        for name, spec in alerts.items():
            urls = base64.b64encode(hooks.url(f"{namespace}/{name}").encode()).decode()
            await kube.create(
                secrets,
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": f"{name}-urls", "namespace": namespace},
                    "data": {"urls": urls},
                },
            )
            await kube.create(
                ALERT_INFO,
                {
                    "apiVersion": "tether.dev/v1alpha1",
                    "kind": "Alert",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"urlsSecretRef": {"name": f"{name}-urls"}, **spec},
                },
            )
        await kube.wait_for("the Alerts in the notifier", lambda: _loaded(notifier, namespace, alerts), 30)
        try:
            await scenario(notifier, clock, metrics)
        finally:
            await notifier.stop()


async def _loaded(notifier: Notifier, namespace: str, alerts: dict[str, dict]) -> bool:
    return all((namespace, name) in notifier.alerts for name in alerts)


async def settle(notifier: Notifier) -> None:
    notifier.tick()
    await notifier.idle()


def test_one_failure_after_failing_for_nothing_more_then_one_recovered(sandbox, sandbox_namespace, hooks) -> None:
    ns = sandbox_namespace
    alerts = {"oncall": {"apps": ["web", "api"], "failingFor": "5m", "minInterval": "1h"}}

    async def scenario(notifier: Notifier, clock: Clock, metrics: NotifyMetrics) -> None:
        notifier.on_report(failed("web", ns))
        await settle(notifier)
        clock.now += 60
        notifier.on_report(failed("web", ns))  # a retry, still failing: not a transition
        await settle(notifier)
        assert hooks.bodies(f"{ns}/oncall") == []  # failingFor has not passed

        clock.now += 241  # 301s since the failure began
        await settle(notifier)
        clock.now += 100
        notifier.on_report(failed("web", ns))
        await settle(notifier)
        [failure] = hooks.bodies(f"{ns}/oncall")
        assert failure["type"] == "failure"
        assert failure["title"] == f"[tether] SyncFailed: {ns}/web at {COMMIT[:12]}"
        assert "spec.replicas: must be >= 0" in failure["message"]
        assert '("scale down" by Ada)' in failure["message"]
        assert f"https://github.com/acme/shop/commit/{COMMIT}" in failure["message"]

        clock.now += 100
        notifier.on_report(ready("web", ns))
        await settle(notifier)
        recovered = hooks.bodies(f"{ns}/oncall")[1]
        assert recovered["type"] == "success"
        assert recovered["title"].startswith(f"[tether] Recovered: {ns}/web")
        assert "recovered from SyncFailed (ApplyFailed) after 8m21s" in recovered["message"]

        # it fails again within minInterval of the first message: confirmed, but not sent
        clock.now += 100
        notifier.on_report(failed("web", ns))
        clock.now += 301
        await settle(notifier)
        assert len(hooks.bodies(f"{ns}/oncall")) == 2
        assert metrics.messages.labels("SyncFailed", "suppressed")._value.get() == 1

        # an app that heals within failingFor sends nothing at all
        notifier.on_report(failed("api", ns))
        clock.now += 120
        notifier.on_report(ready("api", ns))
        clock.now += 3600
        await settle(notifier)
        assert len(hooks.bodies(f"{ns}/oncall")) == 2
        assert metrics.messages.labels("SyncFailed", "sent")._value.get() == 1
        assert metrics.messages.labels("Recovered", "sent")._value.get() == 1

    asyncio.run(with_notifier(sandbox, ns, alerts, hooks, scenario))


def test_a_burst_on_one_commit_is_one_grouped_message(sandbox, sandbox_namespace, hooks) -> None:
    ns = sandbox_namespace
    alerts = {
        "shop": {
            "selector": {"matchLabels": {"team": "shop"}},
            "groupWindow": "30s",
            "template": "{{ count }} apps failed on {{ short_revision }}: {% for a in apps %}{{ a.name }} {% endfor %}",
        }
    }

    async def scenario(notifier: Notifier, clock: Clock, _metrics: NotifyMetrics) -> None:
        for index in range(40):
            notifier.on_report(failed(f"svc-{index:02d}", ns, team="shop"))
            clock.now += 0.5
        notifier.on_report(failed("billing", ns, team="finance"))  # not selected
        await settle(notifier)
        assert hooks.bodies(f"{ns}/shop") == []  # the window is still open
        clock.now += 30
        await settle(notifier)
        [message] = hooks.bodies(f"{ns}/shop")
        assert message["title"] == f"[tether] SyncFailed: 40 apps at {COMMIT[:12]}"
        assert message["message"].startswith(f"40 apps failed on {COMMIT[:12]}: svc-00 svc-01 ")
        assert "svc-39" in message["message"] and "billing" not in message["message"]

    asyncio.run(with_notifier(sandbox, ns, alerts, hooks, scenario))


def test_delivery_is_retried_and_counted_and_an_alert_change_applies(sandbox, sandbox_namespace, hooks) -> None:
    ns = sandbox_namespace
    alerts = {"deploys": {"events": ["Deployed"]}}

    async def scenario(notifier: Notifier, clock: Clock, metrics: NotifyMetrics) -> None:
        hooks.fail_next[f"/{ns}/deploys"] = 2
        notifier.on_report(ready("web", ns))
        notifier.on_report(ready("web", ns))  # a resync of the same revision: not another deployment
        await settle(notifier)
        [deployed] = hooks.bodies(f"{ns}/deploys")
        assert deployed["title"] == f"[tether] Deployed: {ns}/web at {FIX[:12]}"
        assert hooks.refused[f"/{ns}/deploys"] == 2
        assert metrics.attempts.labels("failure")._value.get() == 2
        assert metrics.attempts.labels("success")._value.get() == 1

        hooks.fail_next[f"/{ns}/deploys"] = 10  # the provider stays down: given up after 4 attempts
        notifier.on_report(ready("web", ns, revision=COMMIT))
        await settle(notifier)
        assert metrics.messages.labels("Deployed", "failed")._value.get() == 1
        assert len(hooks.bodies(f"{ns}/deploys")) == 1

    asyncio.run(with_notifier(sandbox, ns, alerts, hooks, scenario))
