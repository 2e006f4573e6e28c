"""Garbage collection of simulated workloads in the three propagation modes, via the kubernetes client."""

from __future__ import annotations

import pytest
from extras_helpers import Http, deployment, eventually
from kubernetes import client, config


@pytest.fixture(scope="module")
def k8s(fast) -> client.ApiClient:  # type: ignore[no-untyped-def]
    return config.new_client_from_config(str(fast.kubeconfig))


def _running(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    eventually(lambda: len([p for p in core.list_namespaced_pod(ns).items if p.status.phase == "Running"]) == 2)


def test_background_deletion_collects_replicasets_and_pods(http_fast: Http, k8s) -> None:
    ns = http_fast.namespace("gc-background")
    apps, core = client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    _running(apps, core, ns)
    apps.delete_namespaced_deployment("web", ns, propagation_policy="Background")
    eventually(lambda: not apps.list_namespaced_replica_set(ns).items and not core.list_namespaced_pod(ns).items)


def test_foreground_deletion_keeps_the_owner_until_dependents_are_gone(http_fast: Http, k8s) -> None:
    ns = http_fast.namespace("gc-foreground")
    apps, core = client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    _running(apps, core, ns)
    (rs,) = apps.list_namespaced_replica_set(ns).items
    # a finalizer on the ReplicaSet holds the chain: the Deployment must wait for it
    apps.patch_namespaced_replica_set(rs.metadata.name, ns, {"metadata": {"finalizers": ["example.com/hold"]}})
    answer = apps.delete_namespaced_deployment("web", ns, propagation_policy="Foreground")
    # the answer is the Deployment, still present (the client leaves a non-Status body as a dict)
    assert answer["metadata"]["finalizers"] == ["foregroundDeletion"] and answer["metadata"]["deletionTimestamp"]
    eventually(lambda: not core.list_namespaced_pod(ns).items)  # pods go first (RS deleted in the foreground)
    held = apps.read_namespaced_deployment("web", ns)
    assert held.metadata.deletion_timestamp and "foregroundDeletion" in held.metadata.finalizers
    apps.patch_namespaced_replica_set(rs.metadata.name, ns, {"metadata": {"finalizers": None}})
    eventually(lambda: not apps.list_namespaced_deployment(ns).items and not apps.list_namespaced_replica_set(ns).items)


def test_orphan_deletion_leaves_dependents_without_owner(http_fast: Http, k8s) -> None:
    ns = http_fast.namespace("gc-orphan")
    apps, core = client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    _running(apps, core, ns)
    apps.delete_namespaced_deployment("web", ns, propagation_policy="Orphan")
    eventually(lambda: not apps.list_namespaced_deployment(ns).items)
    rs = eventually(lambda: [r for r in apps.list_namespaced_replica_set(ns).items if not r.metadata.owner_references])
    assert rs[0].spec.replicas == 2
    pods = core.list_namespaced_pod(ns).items
    assert len(pods) == 2 and all(p.metadata.owner_references[0].name == rs[0].metadata.name for p in pods)


def test_recreated_deployment_adopts_what_an_orphan_delete_left(http_fast: Http, k8s) -> None:
    ns = http_fast.namespace("gc-adopt")
    apps, core = client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    _running(apps, core, ns)
    pod_uids = {p.metadata.uid for p in core.list_namespaced_pod(ns).items}
    apps.delete_namespaced_deployment("web", ns, propagation_policy="Orphan")
    eventually(lambda: not apps.list_namespaced_deployment(ns).items)
    eventually(lambda: all(not r.metadata.owner_references for r in apps.list_namespaced_replica_set(ns).items))
    created = apps.create_namespaced_deployment(ns, deployment("web", replicas=2))

    def adopted():
        sets = apps.list_namespaced_replica_set(ns).items
        return (
            sets
            if len(sets) == 1
            and sets[0].metadata.owner_references
            and sets[0].metadata.owner_references[0].uid == created.metadata.uid
            else None
        )

    eventually(adopted)
    eventually(lambda: (apps.read_namespaced_deployment("web", ns).status.available_replicas or 0) == 2)
    assert {p.metadata.uid for p in core.list_namespaced_pod(ns).items} == pod_uids  # the same pods, kept
