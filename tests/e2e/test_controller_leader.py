"""Two controllers with --leader-elect: only the Lease holder writes; the other takes over when it dies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster import Cluster, eventually, ready_at
from controllers import ControllerProcess, metric_sum

from tether.cli.demo_env import LocalEnvironment

LEASE_DURATION = 15.0  # the controller's default Lease duration, seconds


def holder(cluster: Cluster) -> str:
    lease = cluster.get("coordination.k8s.io/v1", "Lease", "tether-controller", "tether-system") or {}
    return (lease.get("spec") or {}).get("holderIdentity") or ""


def announce(env: LocalEnvironment, controllers: list[ControllerProcess]) -> None:
    """What a Git host does with two webhook URLs configured: tell every replica."""
    for controller in controllers:
        env.controller_port = controller.port
        env._announce("apps.git")


@pytest.fixture
def pair(env: LocalEnvironment) -> Iterator[list[ControllerProcess]]:
    started = [ControllerProcess(env, "--leader-elect", name=name) for name in ("left", "right")]
    yield started
    for controller in started:
        controller.stop()


def test_only_the_leader_writes_and_the_other_takes_over(env: LocalEnvironment, pair: list[ControllerProcess]) -> None:
    cluster = Cluster(env.kubeconfig)
    assert env.git_server is not None
    env.git_server.set_on_push(lambda _repository: announce(env, pair))
    first, second = pair
    first.start()
    eventually(first.ready, "the first controller leading and ready")
    second.start()
    eventually(lambda: second.get("/readyz")[0] == 503, "the second controller serving, standing by")
    leader_identity = holder(cluster)
    assert leader_identity.endswith(f"-{first.process.pid}")  # type: ignore[union-attr]

    commit = env.commit(
        "Leader app", {"leader/cm.yaml": ('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: led\ndata:\n  v: "1"\n')}
    )
    app = env.application("led", path="leader")
    app["spec"]["destination"] = {"namespace": "default"}
    cluster.apply(app)
    eventually(lambda: ready_at(cluster.app("led"), commit), "the app Ready")
    assert metric_sum(first.metrics(), "tether_reconcile_total") >= 1
    assert metric_sum(second.metrics(), "tether_reconcile_total") == 0, "a standby must not reconcile"
    assert metric_sum(second.metrics(), "tether_kube_api_requests_total", verb="PATCH") == 0

    first.kill()
    eventually(second.ready, "the standby to take over", timeout=LEASE_DURATION + 15)
    assert holder(cluster).endswith(f"-{second.process.pid}")  # type: ignore[union-attr]
    bumped = env.commit(
        "After the failover",
        {"leader/cm.yaml": ('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: led\ndata:\n  v: "2"\n')},
    )
    eventually(lambda: ready_at(cluster.app("led"), bumped), "the new leader applies the next push")
    assert (cluster.get("v1", "ConfigMap", "led", "default") or {}).get("data") == {"v": "2"}
    assert metric_sum(second.metrics(), "tether_reconcile_total") >= 1
    assert cluster.app("led")["status"]["history"][0]["revision"] == bumped
