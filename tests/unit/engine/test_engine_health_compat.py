"""Health cases where kstatus and Argo CD agree and tether used to differ; each carries a reason."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tether.engine.health import Status, compute, wait_healthy
from tether.model import ObjectRef


def obj(api: str, kind: str, spec: dict | None = None, status: dict | None = None, **meta: Any) -> dict:
    out: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "ns", **meta}}
    if spec is not None:
        out["spec"] = spec
    if status is not None:
        out["status"] = status
    return out


def cond(kind: str, status: str, reason: str = "", message: str = "", **extra: str) -> dict:
    return {"type": kind, "status": status, "reason": reason, "message": message, **extra}


def ago(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))


DEP = {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}
HPA_V1_FAILED = json.dumps(
    [
        cond("AbleToScale", "True", "SucceededGetScale"),
        cond("ScalingActive", "True", "FailedGetResourceMetric", "no metrics"),
    ]
)
RUNNING_POD = {"phase": "Pending"}

CASES = [
    # (id, object, status, reason)
    (
        "deployment-paused",
        obj("apps/v1", "Deployment", {"replicas": 2, "paused": True}, {"replicas": 0}),
        Status.SUSPENDED,
        "DeploymentPaused",
    ),
    ("job-suspended", obj("batch/v1", "Job", {"suspend": True}, {}), Status.SUSPENDED, "JobSuspended"),
    (
        "cronjob-suspended",
        obj("batch/v1", "CronJob", {"suspend": True, "schedule": "* * * * *"}, {}),
        Status.SUSPENDED,
        "CronJobSuspended",
    ),
    (
        "daemonset-ondelete-old-pods",
        obj(
            "apps/v1",
            "DaemonSet",
            {"updateStrategy": {"type": "OnDelete"}},
            {
                "desiredNumberScheduled": 2,
                "currentNumberScheduled": 2,
                "updatedNumberScheduled": 0,
                "numberAvailable": 2,
                "numberReady": 2,
            },
        ),
        Status.CURRENT,
        "Ready",
    ),
    (
        "daemonset-rolling-old-pods",
        obj(
            "apps/v1",
            "DaemonSet",
            {},
            {
                "desiredNumberScheduled": 2,
                "currentNumberScheduled": 2,
                "updatedNumberScheduled": 0,
                "numberAvailable": 2,
                "numberReady": 2,
            },
        ),
        Status.IN_PROGRESS,
        "PodsUpdatedShort",
    ),
    (
        "deployment-available-false",
        obj(
            "apps/v1",
            "Deployment",
            {"replicas": 2},
            {**DEP, "conditions": [cond("Available", "False", "MinimumReplicasUnavailable")]},
        ),
        Status.IN_PROGRESS,
        "DeploymentNotAvailable",
    ),
    (
        "deployment-progressing-updated",
        obj(
            "apps/v1",
            "Deployment",
            {"replicas": 2},
            {**DEP, "conditions": [cond("Progressing", "True", "ReplicaSetUpdated")]},
        ),
        Status.IN_PROGRESS,
        "RolloutInProgress",
    ),
    (
        "deployment-progressing-done",
        obj(
            "apps/v1",
            "Deployment",
            {"replicas": 2},
            {**DEP, "conditions": [cond("Progressing", "True", "NewReplicaSetAvailable")]},
        ),
        Status.CURRENT,
        "Ready",
    ),
    (
        "statefulset-extra-replicas",
        obj(
            "apps/v1",
            "StatefulSet",
            {"replicas": 1},
            {"replicas": 2, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "a"},
        ),
        Status.IN_PROGRESS,
        "ExtraReplicasPending",
    ),
    (
        "statefulset-current-replicas",
        obj(
            "apps/v1",
            "StatefulSet",
            {"replicas": 2},
            {"replicas": 2, "readyReplicas": 2, "currentReplicas": 1, "currentRevision": "a", "updateRevision": "a"},
        ),
        Status.IN_PROGRESS,
        "ReplicasNotCurrent",
    ),
    (
        "hpa-v1-annotation",
        obj(
            "autoscaling/v1",
            "HorizontalPodAutoscaler",
            {},
            {},
            annotations={"autoscaling.alpha.kubernetes.io/conditions": HPA_V1_FAILED},
        ),
        Status.FAILED,
        "FailedGetResourceMetric",
    ),
    (
        "hpa-failed-reason-status-true",
        obj(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            {},
            {"conditions": [cond("ScalingActive", "True", "FailedGetScale")]},
        ),
        Status.FAILED,
        "FailedGetScale",
    ),
    (
        "pod-err-image-never-pull",
        obj(
            "v1",
            "Pod",
            {},
            {
                "phase": "Pending",
                "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ErrImageNeverPull"}}}],
            },
        ),
        Status.FAILED,
        "ErrImageNeverPull",
    ),
    (
        "pod-unknown-error-reason",
        obj(
            "v1",
            "Pod",
            {},
            {
                "phase": "Pending",
                "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "SomeNewRuntimeError"}}}],
            },
        ),
        Status.FAILED,
        "SomeNewRuntimeError",
    ),
    (
        "pod-creating",
        obj(
            "v1",
            "Pod",
            {},
            {
                "phase": "Pending",
                "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}],
            },
        ),
        Status.IN_PROGRESS,
        "InProgress",
    ),
    (
        "crd-not-established",
        obj(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            {},
            {
                "conditions": [
                    cond("NamesAccepted", "True", "NoConflicts"),
                    cond("Established", "False", "NotAccepted", "bad"),
                ]
            },
        ),
        Status.FAILED,
        "NotEstablished",
    ),
    (
        "crd-installing",
        obj(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            {},
            {"conditions": [cond("Established", "False", "Installing")]},
        ),
        Status.IN_PROGRESS,
        "Installing",
    ),
    (
        "apiservice-available",
        obj("apiregistration.k8s.io/v1", "APIService", {}, {"conditions": [cond("Available", "True", "Passed")]}),
        Status.CURRENT,
        "Ready",
    ),
    (
        "apiservice-unavailable",
        obj(
            "apiregistration.k8s.io/v1",
            "APIService",
            {},
            {"conditions": [cond("Available", "False", "MissingEndpoints")]},
        ),
        Status.IN_PROGRESS,
        "MissingEndpoints",
    ),
    (
        "ready-unknown",
        obj("example.com/v1", "Widget", {}, {"conditions": [cond("Ready", "Unknown", "Checking")]}),
        Status.IN_PROGRESS,
        "ReadyUnknown",
    ),
    (
        "reconciling-overrides-kind",
        obj("apps/v1", "Deployment", {"replicas": 2}, {**DEP, "conditions": [cond("Reconciling", "True", "Updating")]}),
        Status.IN_PROGRESS,
        "Reconciling",
    ),
    (
        "stalled-overrides-kind",
        obj(
            "v1",
            "Pod",
            {},
            {"phase": "Running", "conditions": [cond("Ready", "True"), cond("Stalled", "True", "Wedged")]},
        ),
        Status.FAILED,
        "Wedged",
    ),
    (
        "observed-generation-ahead",
        obj("apps/v1", "Deployment", {"replicas": 2}, {**DEP, "observedGeneration": 4}, generation=3),
        Status.IN_PROGRESS,
        "GenerationNotObserved",
    ),
    (
        "deadline-reason",
        obj(
            "apps/v1",
            "Deployment",
            {"replicas": 2},
            {"conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded")]},
        ),
        Status.FAILED,
        "ProgressDeadlineExceeded",
    ),
]


@pytest.mark.parametrize(("case", "live", "expected", "reason"), CASES, ids=[c[0] for c in CASES])
def test_health_rules(case: str, live: dict, expected: Status, reason: str) -> None:
    result = compute(live)
    assert (result.status, result.reason) == (expected, reason), result
    assert result.message


@pytest.mark.parametrize(
    ("seconds", "expected", "reason"),
    [(600, Status.FAILED, "Unschedulable"), (5, Status.IN_PROGRESS, "PodNotScheduled")],
)
def test_an_unschedulable_pod_fails_after_a_grace_period(seconds: float, expected: Status, reason: str) -> None:
    pending = obj(
        "v1",
        "Pod",
        {},
        {
            "phase": "Pending",
            "conditions": [
                cond("PodScheduled", "False", "Unschedulable", "0/1 nodes", lastTransitionTime=ago(seconds))
            ],
        },
    )
    result = compute(pending)
    assert (result.status, result.reason) == (expected, reason), result


def test_a_suspended_object_ends_the_wait() -> None:
    ref = ObjectRef("apps/v1", "Deployment", "ns", "x")
    paused = obj("apps/v1", "Deployment", {"replicas": 2, "paused": True}, {"replicas": 0})

    async def fetch(refs: list[ObjectRef]) -> dict[ObjectRef, dict | None]:
        return {ref: paused}

    import asyncio

    states = asyncio.run(wait_healthy([ref], fetch, timeout=0.0))
    assert states[0].result.status is Status.SUSPENDED
