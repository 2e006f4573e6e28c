"""kill -9 of the controller in the middle of a reconcile, then a restart: it converges, loses nothing,
prunes nothing it should not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster import Cluster, eventually, ready_at
from controllers import ControllerProcess

from tether.cli.demo_env import LocalEnvironment

OBJECTS = 400


def configmap(name: str, value: str) -> str:
    return f'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: "{value}"\n'


def values(cluster: Cluster, namespace: str) -> dict[str, str]:
    async def action(kube: object) -> list[dict]:
        return await kube.list(await kube.info("v1", "ConfigMap"), namespace)  # type: ignore[attr-defined]

    items = cluster._do(action)
    return {
        i["metadata"]["name"]: (i.get("data") or {}).get("v", "")
        for i in items
        if i["metadata"]["name"].startswith(("cm-", "bystander"))
    }


@pytest.fixture
def process(env: LocalEnvironment) -> Iterator[list[ControllerProcess]]:
    started: list[ControllerProcess] = []
    yield started
    for controller in started:
        controller.stop()


def test_kill_9_mid_reconcile_then_restart_converges(env: LocalEnvironment, process: list[ControllerProcess]) -> None:
    cluster = Cluster(env.kubeconfig)
    first = env.commit(
        "Many objects",
        {
            **{f"many/cm-{i:03}.yaml": configmap(f"cm-{i:03}", "1") for i in range(OBJECTS)},
            "bystander/cm.yaml": configmap("bystander", "1"),
        },
    )
    process.append(ControllerProcess(env, port=env.controller_port, name="first").start())
    eventually(process[0].ready, "the controller ready (it installs the CRD)")
    for name in ("many", "bystander"):
        app = env.application(name, path=name)
        app["spec"]["destination"] = {"namespace": "restart", "createNamespace": True}
        cluster.apply(app)
    eventually(
        lambda: ready_at(cluster.app("many"), first) and ready_at(cluster.app("bystander"), first),
        "both apps Ready at the first commit",
        timeout=60,
    )

    # every object changes, one leaves Git, fifty are new
    second = env.commit(
        "Change them all",
        {
            **{f"many/cm-{i:03}.yaml": configmap(f"cm-{i:03}", "2") for i in range(OBJECTS - 1)},
            f"many/cm-{OBJECTS - 1:03}.yaml": None,
            **{f"many/cm-{i:03}.yaml": configmap(f"cm-{i:03}", "2") for i in range(OBJECTS, OBJECTS + 50)},
        },
    )
    eventually(lambda: "2" in values(cluster, "restart").values(), "the second commit to start applying")
    process[0].kill()
    at_kill = values(cluster, "restart")
    assert sum(v == "2" for v in at_kill.values()) < OBJECTS - 1 + 50, "killed before the apply finished"

    process.append(ControllerProcess(env, port=env.controller_port, name="second").start())
    eventually(
        lambda: ready_at(cluster.app("many"), second), "Ready at the second commit after the restart", timeout=60
    )
    final = values(cluster, "restart")
    wanted = {f"cm-{i:03}": "2" for i in [*range(OBJECTS - 1), *range(OBJECTS, OBJECTS + 50)]}
    assert final == {**wanted, "bystander": "1"}, "nothing lost, the removed object pruned, nothing else pruned"
    assert cluster.app("many")["status"]["inventory"]["count"] == len(wanted)
    assert ready_at(cluster.app("bystander"), first) or ready_at(cluster.app("bystander"), second)
