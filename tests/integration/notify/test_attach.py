"""``attach(controller)``: the Alert CRD installed on start, reports reaching the notifier, counters
on the controller's /metrics registry, and a clean close."""

from __future__ import annotations

import asyncio
import base64

from notify_hooks import HookServer

from tether.controller.reports import AppReport
from tether.controller.run import Controller, ControllerOptions
from tether.kube import Kube
from tether.notify import attach
from tether.notify.alerts import ALERT_INFO


def test_attach_wires_the_notifier_into_a_running_controller(sandbox, sandbox_namespace) -> None:
    hooks = HookServer()
    ns = sandbox_namespace

    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            controller = Controller(kube, ControllerOptions(namespaces=(ns,)))
            feedback = attach(controller)
            running = asyncio.create_task(controller.run())
            try:
                await kube.wait_for("the notifier to start", _started(feedback), 60)
                await kube.create(
                    await kube.info("v1", "Secret"),
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": "urls", "namespace": ns},
                        "data": {"urls": base64.b64encode(hooks.url("attached").encode()).decode()},
                    },
                )
                await kube.create(
                    ALERT_INFO,
                    {
                        "apiVersion": "tether.dev/v1alpha1",
                        "kind": "Alert",
                        "metadata": {"name": "all", "namespace": ns},
                        "spec": {"urlsSecretRef": {"name": "urls"}},
                    },
                )
                await kube.wait_for("the Alert", _has_alert(feedback, ns), 30)
                controller.reports.send(
                    AppReport(
                        ns,
                        "web",
                        "finished",
                        revision="c" * 40,
                        kinds=("SyncFailed",),
                        ready=False,
                        reason="RenderFailed",
                        message="bad YAML",
                    )
                )
                await controller.reports.drain()
                await feedback.notifier.idle()
                [body] = hooks.bodies("attached")
                assert body["title"] == f"[tether] SyncFailed: {ns}/web at cccccccccccc"
                assert (
                    b'tether_notifications_total{event="SyncFailed",result="sent"} 1.0' in controller.metrics.render()
                )
            finally:
                controller.stop()
                await running
                await feedback.close()

    try:
        asyncio.run(scenario())
    finally:
        hooks.shutdown()


def _started(feedback):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool(feedback.notifier._tasks)

    return check


def _has_alert(feedback, namespace: str):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return (namespace, "all") in feedback.notifier.alerts

    return check
