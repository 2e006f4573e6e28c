"""Events on Applications against the sandbox, read back with kubectl; and the status writer's
patches of the status subresource (one write per change, none without one)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

from tether.controller import conditions as c
from tether.controller import events as ev
from tether.controller.api import APPLICATION_INFO, HistoryEntry, install_crd, parse_application
from tether.controller.events import EventRecorder
from tether.controller.status import StatusWriter, record_history
from tether.kube import Kube

KUBECTL = shutil.which("kubectl") or "kubectl"


def kubectl(sandbox, *args: str) -> str:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(sandbox.kubeconfig), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def _create_app(kube: Kube, namespace: str, name: str = "web") -> dict:
    await install_crd(kube)
    return await kube.create(
        APPLICATION_INFO,
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"source": {"url": "https://git.example.com/team/web.git"}, "revisionHistoryLimit": 2},
        },
    )


def test_events_are_recorded_and_repeats_aggregated(sandbox, sandbox_namespace) -> None:
    async def scenario() -> EventRecorder:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            app = parse_application(await _create_app(kube, sandbox_namespace))
            recorder = EventRecorder(kube, instance="test-host")
            recorder.add_secret_values([b"s3cr3t-token\n"])
            for _ in range(3):
                await recorder.warning(
                    app, ev.RECONCILIATION_FAILED, "fetch https://bot:s3cr3t-token@git.example.com/team/web.git: 403"
                )
            await recorder.normal(app, ev.RECONCILIATION_SUCCEEDED, "applied 0123abc: 3 objects")
            # a fresh recorder (a restarted controller) bumps the same Event instead of adding one
            await EventRecorder(kube, instance="test-host").normal(
                app, ev.RECONCILIATION_SUCCEEDED, "applied 0123abc: 3 objects"
            )
            return recorder

    recorder = asyncio.run(scenario())
    listed = json.loads(kubectl(sandbox, "get", "events", "-n", sandbox_namespace, "-o", "json"))["items"]
    by_reason = {e["reason"]: e for e in listed}
    assert set(by_reason) == {"ReconciliationFailed", "ReconciliationSucceeded"}
    failed = by_reason["ReconciliationFailed"]
    assert failed["count"] == 3 and failed["type"] == "Warning"
    assert "s3cr3t" not in failed["message"] and "bot:***@git.example.com" in failed["message"]
    assert failed["involvedObject"]["kind"] == "Application"
    assert failed["involvedObject"]["apiVersion"] == "tether.dev/v1alpha1"
    assert failed["involvedObject"]["name"] == "web" and failed["involvedObject"]["uid"]
    assert failed["source"] == {"component": "tether-controller", "host": "test-host"}
    assert failed["reportingComponent"] == "tether.dev/controller"
    assert failed["firstTimestamp"] <= failed["lastTimestamp"]
    assert by_reason["ReconciliationSucceeded"]["count"] == 2
    assert recorder.requests == 4  # 2 creates + 2 bumps; the restarted recorder made its own requests

    table = kubectl(sandbox, "get", "events", "-n", sandbox_namespace)
    assert "application/web" in table and "ReconciliationFailed" in table
    described = kubectl(sandbox, "describe", "application", "web", "-n", sandbox_namespace)
    assert "ReconciliationSucceeded" in described and "applied 0123abc" in described


def test_expired_event_is_recorded_afresh(sandbox, sandbox_namespace) -> None:
    async def scenario() -> list[int]:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            app = parse_application(await _create_app(kube, sandbox_namespace))
            recorder = EventRecorder(kube)
            first = await recorder.normal(app, ev.PRUNED, "pruned ConfigMap old")
            await kube.delete(ev.EVENT_INFO, first["metadata"]["name"], sandbox_namespace)
            second = await recorder.normal(app, ev.PRUNED, "pruned ConfigMap old")
            return [first["count"], second["count"]]

    assert asyncio.run(scenario()) == [1, 1]


def test_status_writer_patches_once_per_change(sandbox, sandbox_namespace) -> None:
    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            created = await _create_app(kube, sandbox_namespace, "shop")
            writer = StatusWriter(kube)
            app = parse_application(created)
            status = app.status.model_copy(deep=True)
            status.conditions = list(
                c.mark_ready(status.conditions, c.RECONCILIATION_SUCCEEDED, "applied r1", app.generation)
            )
            status.sync.status, status.health.status = "Synced", "Healthy"
            status.last_applied_revision = "r1"
            for revision in ("r1", "r2", "r3"):
                status.history = record_history(status.history, HistoryEntry(revision=revision), 10)
            written = await writer.write(app, status)
            assert written is not None and writer.writes == 1
            rv = written["metadata"]["resourceVersion"]
            # the server stored what was sent, history trimmed to revisionHistoryLimit (2)
            assert [h["revision"] for h in written["status"]["history"]] == ["r3", "r2"]
            assert written["status"]["observedGeneration"] == 1

            again = parse_application(written)
            assert await writer.write(again, again.status.model_copy(deep=True)) is None
            assert writer.writes == 1
            live = await kube.get(APPLICATION_INFO, "shop", sandbox_namespace)
            assert live is not None and live["metadata"]["resourceVersion"] == rv

            changed = again.status.model_copy(deep=True)
            changed.health.status, changed.health.message = "Degraded", "Deployment web: 0/2 ready"
            after = await writer.write(again, changed)
            assert after is not None and writer.writes == 2
            assert after["status"]["health"] == {"status": "Degraded", "message": "Deployment web: 0/2 ready"}
            assert after["status"]["sync"] == {"status": "Synced"}  # untouched fields kept
            assert after["metadata"]["generation"] == 1  # status writes do not bump the generation

            await kube.delete(APPLICATION_INFO, "shop", sandbox_namespace)
            gone = parse_application(after)
            changed.health.status = "Healthy"
            assert await writer.write(gone, changed) is None  # deleted meanwhile: nothing to report

    asyncio.run(scenario())
