"""Table-driven cases for the health rules and the wait loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tether.engine.health import Health, Status, compute, wait_healthy
from tether.errors import ApplyError, HealthTimeout
from tether.model import ObjectRef


def obj(api: str, kind: str, spec: dict | None = None, status: dict | None = None, **meta: Any) -> dict:
    o: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "ns", **meta}}
    if spec is not None:
        o["spec"] = spec
    if status is not None:
        o["status"] = status
    return o


def cond(kind: str, status: str, reason: str = "", message: str = "") -> dict:
    return {"type": kind, "status": status, "reason": reason, "message": message}


DEP_OK = {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}

CASES = [
    # (id, object, expected status, message fragment)
    ("missing", None, Status.NOT_FOUND, "not found"),
    ("terminating", obj("v1", "ConfigMap", deletionTimestamp="2024-01-01T00:00:00Z"), Status.TERMINATING, "deleted"),
    ("configmap", obj("v1", "ConfigMap"), Status.CURRENT, ""),
    # Deployment
    ("dep-ok", obj("apps/v1", "Deployment", {"replicas": 2}, DEP_OK), Status.CURRENT, "2 replicas"),
    (
        "dep-default-replicas",
        obj(
            "apps/v1",
            "Deployment",
            {},
            {**DEP_OK, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
        ),
        Status.CURRENT,
        "1 replicas",
    ),
    ("dep-no-status", obj("apps/v1", "Deployment", {"replicas": 2}), Status.IN_PROGRESS, "updated replicas: 0/2"),
    (
        "dep-old-generation",
        obj("apps/v1", "Deployment", {"replicas": 2}, {**DEP_OK, "observedGeneration": 1}, generation=2),
        Status.IN_PROGRESS,
        "generation 2",
    ),
    (
        "dep-same-generation",
        obj("apps/v1", "Deployment", {"replicas": 2}, {**DEP_OK, "observedGeneration": 3}, generation=3),
        Status.CURRENT,
        "",
    ),
    (
        "dep-old-replicas",
        obj("apps/v1", "Deployment", {"replicas": 2}, {**DEP_OK, "replicas": 3}),
        Status.IN_PROGRESS,
        "pending termination",
    ),
    (
        "dep-unavailable",
        obj("apps/v1", "Deployment", {"replicas": 2}, {**DEP_OK, "availableReplicas": 1}),
        Status.IN_PROGRESS,
        "available replicas: 1/2",
    ),
    (
        "dep-unready",
        obj("apps/v1", "Deployment", {"replicas": 2}, {**DEP_OK, "readyReplicas": 0}),
        Status.IN_PROGRESS,
        "ready replicas: 0/2",
    ),
    (
        "dep-deadline",
        obj(
            "apps/v1",
            "Deployment",
            {"replicas": 2},
            {"conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded", "too slow")]},
        ),
        Status.FAILED,
        "deadline",
    ),
    ("dep-zero", obj("apps/v1", "Deployment", {"replicas": 0}, {}), Status.CURRENT, "0 replicas"),
    (
        "dep-stalled",
        obj("apps/v1", "Deployment", {"replicas": 2}, {**DEP_OK, "conditions": [cond("Stalled", "True", "Broken")]}),
        Status.FAILED,
        "Broken",
    ),
    # StatefulSet
    (
        "sts-ok",
        obj(
            "apps/v1",
            "StatefulSet",
            {"replicas": 2},
            {"readyReplicas": 2, "updatedReplicas": 2, "currentRevision": "a", "updateRevision": "a"},
        ),
        Status.CURRENT,
        "2 replicas",
    ),
    (
        "sts-unready",
        obj("apps/v1", "StatefulSet", {"replicas": 2}, {"readyReplicas": 1}),
        Status.IN_PROGRESS,
        "ready replicas: 1/2",
    ),
    (
        "sts-rolling",
        obj(
            "apps/v1",
            "StatefulSet",
            {"replicas": 2},
            {"readyReplicas": 2, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "b"},
        ),
        Status.IN_PROGRESS,
        "rolling update",
    ),
    (
        "sts-ondelete",
        obj(
            "apps/v1",
            "StatefulSet",
            {"replicas": 1, "updateStrategy": {"type": "OnDelete"}},
            {"readyReplicas": 1, "currentRevision": "a", "updateRevision": "b"},
        ),
        Status.CURRENT,
        "OnDelete",
    ),
    (
        "sts-partition-waiting",
        obj(
            "apps/v1",
            "StatefulSet",
            {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}},
            {"readyReplicas": 3, "updatedReplicas": 1},
        ),
        Status.IN_PROGRESS,
        "partitioned",
    ),
    (
        "sts-partition-done",
        obj(
            "apps/v1",
            "StatefulSet",
            {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}},
            {"readyReplicas": 3, "updatedReplicas": 2},
        ),
        Status.CURRENT,
        "partitioned",
    ),
    # DaemonSet
    ("ds-no-status", obj("apps/v1", "DaemonSet", {}, {}), Status.IN_PROGRESS, "no status"),
    (
        "ds-ok",
        obj(
            "apps/v1",
            "DaemonSet",
            {},
            {
                "desiredNumberScheduled": 3,
                "currentNumberScheduled": 3,
                "updatedNumberScheduled": 3,
                "numberAvailable": 3,
                "numberReady": 3,
            },
        ),
        Status.CURRENT,
        "3 pods",
    ),
    (
        "ds-updating",
        obj(
            "apps/v1",
            "DaemonSet",
            {},
            {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 1},
        ),
        Status.IN_PROGRESS,
        "updated",
    ),
    # ReplicaSet
    (
        "rs-ok",
        obj(
            "apps/v1",
            "ReplicaSet",
            {"replicas": 1},
            {"fullyLabeledReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
        ),
        Status.CURRENT,
        "",
    ),
    (
        "rs-failure",
        obj(
            "apps/v1",
            "ReplicaSet",
            {"replicas": 1},
            {"conditions": [cond("ReplicaFailure", "True", "FailedCreate", "quota")]},
        ),
        Status.FAILED,
        "quota",
    ),
    (
        "rs-waiting",
        obj("apps/v1", "ReplicaSet", {"replicas": 2}, {"fullyLabeledReplicas": 2}),
        Status.IN_PROGRESS,
        "available",
    ),
    # Pod
    (
        "pod-ready",
        obj("v1", "Pod", {}, {"phase": "Running", "conditions": [cond("Ready", "True")]}),
        Status.CURRENT,
        "ready",
    ),
    (
        "pod-running-unready",
        obj("v1", "Pod", {}, {"phase": "Running", "conditions": [cond("Ready", "False")]}),
        Status.IN_PROGRESS,
        "not ready",
    ),
    ("pod-succeeded", obj("v1", "Pod", {}, {"phase": "Succeeded"}), Status.CURRENT, "succeeded"),
    ("pod-failed", obj("v1", "Pod", {}, {"phase": "Failed", "reason": "Evicted"}), Status.FAILED, "Evicted"),
    (
        "pod-crashloop",
        obj(
            "v1",
            "Pod",
            {},
            {
                "phase": "Running",
                "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
            },
        ),
        Status.FAILED,
        "CrashLoopBackOff",
    ),
    (
        "pod-image",
        obj(
            "v1",
            "Pod",
            {},
            {
                "phase": "Pending",
                "initContainerStatuses": [{"name": "init", "state": {"waiting": {"reason": "ErrImagePull"}}}],
            },
        ),
        Status.FAILED,
        "init: ErrImagePull",
    ),
    (
        "pod-unschedulable",
        obj(
            "v1",
            "Pod",
            {},
            {"phase": "Pending", "conditions": [cond("PodScheduled", "False", "Unschedulable", "no nodes")]},
        ),
        Status.IN_PROGRESS,
        "no nodes",
    ),
    ("pod-pending", obj("v1", "Pod", {}, {}), Status.IN_PROGRESS, "pending"),
    # Job / CronJob
    (
        "job-complete",
        obj("batch/v1", "Job", {}, {"succeeded": 1, "conditions": [cond("Complete", "True")]}),
        Status.CURRENT,
        "complete",
    ),
    (
        "job-failed",
        obj("batch/v1", "Job", {}, {"conditions": [cond("Failed", "True", "BackoffLimitExceeded")]}),
        Status.FAILED,
        "BackoffLimitExceeded",
    ),
    ("job-not-started", obj("batch/v1", "Job", {}, {}), Status.IN_PROGRESS, "not started"),
    ("job-running", obj("batch/v1", "Job", {}, {"startTime": "t", "active": 1}), Status.IN_PROGRESS, "1 active"),
    ("job-suspended", obj("batch/v1", "Job", {"suspend": True}, {}), Status.SUSPENDED, "suspended"),
    ("cronjob", obj("batch/v1", "CronJob", {"schedule": "* * * * *"}, {}), Status.CURRENT, "scheduled"),
    # PVC
    ("pvc-bound", obj("v1", "PersistentVolumeClaim", {}, {"phase": "Bound"}), Status.CURRENT, "bound"),
    ("pvc-pending", obj("v1", "PersistentVolumeClaim", {}, {"phase": "Pending"}), Status.IN_PROGRESS, "Pending"),
    ("pvc-no-status", obj("v1", "PersistentVolumeClaim", {}), Status.IN_PROGRESS, "Pending"),
    ("pvc-lost", obj("v1", "PersistentVolumeClaim", {}, {"phase": "Lost"}), Status.FAILED, "lost"),
    # Service / Ingress
    ("svc-clusterip", obj("v1", "Service", {"type": "ClusterIP"}, {}), Status.CURRENT, ""),
    ("svc-lb-waiting", obj("v1", "Service", {"type": "LoadBalancer"}, {}), Status.IN_PROGRESS, "load balancer"),
    (
        "svc-lb-ok",
        obj("v1", "Service", {"type": "LoadBalancer"}, {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}),
        Status.CURRENT,
        "",
    ),
    ("ing-waiting", obj("networking.k8s.io/v1", "Ingress", {}, {}), Status.IN_PROGRESS, "address"),
    (
        "ing-ok",
        obj("networking.k8s.io/v1", "Ingress", {}, {"loadBalancer": {"ingress": [{"hostname": "h"}]}}),
        Status.CURRENT,
        "",
    ),
    # HPA
    (
        "hpa-ok",
        obj("autoscaling/v2", "HorizontalPodAutoscaler", {}, {"conditions": [cond("AbleToScale", "True")]}),
        Status.CURRENT,
        "",
    ),
    (
        "hpa-failed",
        obj(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            {},
            {"conditions": [cond("ScalingActive", "False", "FailedGetResourceMetric", "no metrics")]},
        ),
        Status.FAILED,
        "no metrics",
    ),
    (
        "hpa-inactive-benign",
        obj(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            {},
            {"conditions": [cond("ScalingActive", "False", "ScalingDisabled")]},
        ),
        Status.CURRENT,
        "",
    ),
    # CRD
    (
        "crd-established",
        obj(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            {},
            {"conditions": [cond("NamesAccepted", "True"), cond("Established", "True")]},
        ),
        Status.CURRENT,
        "established",
    ),
    ("crd-waiting", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", {}, {}), Status.IN_PROGRESS, ""),
    (
        "crd-names",
        obj(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            {},
            {"conditions": [cond("NamesAccepted", "False", "ListKindConflict", "taken")]},
        ),
        Status.FAILED,
        "taken",
    ),
    # generic conditions
    ("cr-no-conditions", obj("example.com/v1", "Widget", {}, {}), Status.CURRENT, ""),
    (
        "cr-ready",
        obj("example.com/v1", "Widget", {}, {"conditions": [cond("Ready", "True", "Done", "all good")]}),
        Status.CURRENT,
        "all good",
    ),
    (
        "cr-not-ready",
        obj("example.com/v1", "Widget", {}, {"conditions": [cond("Ready", "False", "Waiting")]}),
        Status.IN_PROGRESS,
        "Waiting",
    ),
    (
        "cr-reconciling",
        obj(
            "example.com/v1",
            "Widget",
            {},
            {"conditions": [cond("Reconciling", "True", "Working"), cond("Ready", "True")]},
        ),
        Status.IN_PROGRESS,
        "Working",
    ),
    (
        "cr-stalled",
        obj(
            "example.com/v1",
            "Widget",
            {},
            {"conditions": [cond("Stalled", "True", "BadSpec", "field x"), cond("Reconciling", "True")]},
        ),
        Status.FAILED,
        "field x",
    ),
    (
        "cr-stale-generation",
        obj(
            "example.com/v1",
            "Widget",
            {},
            {"observedGeneration": 4, "conditions": [cond("Ready", "True")]},
            generation=5,
        ),
        Status.IN_PROGRESS,
        "generation 5",
    ),
    (
        "cr-stalled-false",
        obj("example.com/v1", "Widget", {}, {"conditions": [cond("Stalled", "False")]}),
        Status.CURRENT,
        "",
    ),
]


@pytest.mark.parametrize(("case", "live", "expected", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_rules(case: str, live: dict | None, expected: Status, fragment: str) -> None:
    result = compute(live)
    assert result.status is expected, result
    assert fragment in result.message


def test_status_maps_to_health() -> None:
    assert compute(None).health is Health.MISSING
    assert compute(obj("v1", "ConfigMap")).health is Health.HEALTHY
    assert compute(obj("batch/v1", "Job", {}, {})).health is Health.PROGRESSING
    assert compute(obj("v1", "Pod", {}, {"phase": "Failed"})).health is Health.DEGRADED


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


REF = ObjectRef("apps", "Deployment", "ns", "x")


def _run_wait(sequence: list[dict | None], timeout: float) -> list:
    clock = FakeClock()
    calls = []

    async def fetch(refs):
        calls.append(list(refs))
        clock.now += 1
        live = sequence[min(len(calls), len(sequence)) - 1]
        return {REF: live}

    return asyncio.run(wait_healthy([REF], fetch, timeout=timeout, interval=0, clock=clock)), calls


def test_wait_ends_when_healthy() -> None:
    unready = obj("apps/v1", "Deployment", {"replicas": 2}, {})
    ready = obj("apps/v1", "Deployment", {"replicas": 2}, DEP_OK)
    states, calls = _run_wait([unready, unready, ready], timeout=100)
    assert len(calls) == 3
    assert states[0].result.status is Status.CURRENT


def test_wait_fails_fast_on_failed() -> None:
    bad = obj(
        "apps/v1",
        "Deployment",
        {"replicas": 2},
        {"conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded")]},
    )
    with pytest.raises(ApplyError, match=r"Deployment\.apps ns/x: Failed"):
        _run_wait([bad], timeout=100)


def test_wait_times_out_naming_what_is_not_ready() -> None:
    unready = obj("apps/v1", "Deployment", {"replicas": 2}, {"updatedReplicas": 2})
    with pytest.raises(HealthTimeout, match=r"1 object\(s\): Deployment.apps ns/x: InProgress \(available"):
        _run_wait([unready], timeout=3)


def test_wait_missing_object_times_out() -> None:
    with pytest.raises(HealthTimeout, match="NotFound"):
        _run_wait([None], timeout=2)
