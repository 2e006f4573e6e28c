"""Pure status computations of the workload simulation, table-driven."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tether.sandbox.simulation import batch, status


def _deployment(
    replicas: int = 2,
    generation: int = 1,
    conditions: list[dict[str, Any]] | None = None,
    deadline: int = 600,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": deadline,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            **spec,
        },
        "status": {"conditions": conditions or []},
    }


def _rs(name: str, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready},
    }


def _reasons(st: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}


NOW = "2026-01-01T00:10:00Z"


@pytest.mark.parametrize(
    ("replicas", "ready", "created", "available", "progressing"),
    [
        (2, 2, False, ("True", "MinimumReplicasAvailable"), ("True", "NewReplicaSetAvailable")),
        (2, 0, True, ("False", "MinimumReplicasUnavailable"), ("True", "NewReplicaSetCreated")),
        (4, 3, False, ("True", "MinimumReplicasAvailable"), ("True", "ReplicaSetUpdated")),  # 1 of 4 may be unavailable
        (4, 2, False, ("False", "MinimumReplicasUnavailable"), ("True", "ReplicaSetUpdated")),
    ],
)
def test_deployment_conditions(replicas, ready, created, available, progressing) -> None:
    st = status.deployment_status(
        _deployment(replicas), _rs("web-1", replicas, ready), [_rs("web-1", replicas, ready)], NOW, created_new=created
    )
    assert _reasons(st) == {"Available": available, "Progressing": progressing}
    assert st["observedGeneration"] == 1 and st["replicas"] == replicas
    assert st.get("readyReplicas", 0) == ready and st.get("unavailableReplicas", 0) == replicas - ready
    assert [c["type"] for c in st["conditions"]] == ["Available", "Progressing"]


def test_deployment_times_out_after_progress_deadline() -> None:
    stalled = [
        {
            "type": "Progressing",
            "status": "True",
            "reason": "NewReplicaSetCreated",
            "message": 'Created new replica set "web-1"',
            "lastUpdateTime": "2026-01-01T00:00:00Z",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]
    deployment = _deployment(1, conditions=stalled, deadline=60)
    deployment["status"].update({"replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1})
    rs = {"metadata": {"name": "web-1"}, "status": {"replicas": 1}}
    st = status.deployment_status(deployment, rs, [rs], NOW)
    progressing = status.condition(st["conditions"], "Progressing")
    assert progressing["status"] == "False" and progressing["reason"] == "ProgressDeadlineExceeded"
    assert progressing["message"] == 'ReplicaSet "web-1" has timed out progressing.'
    assert status.progress_deadline_at({**deployment, "status": st}) is None
    # before the deadline it is still progressing, and the deadline is known
    early = status.deployment_status(deployment, rs, [rs], "2026-01-01T00:00:30Z")
    assert status.condition(early["conditions"], "Progressing")["reason"] == "NewReplicaSetCreated"
    assert (
        status.progress_deadline_at({**deployment, "status": early}) == status.parse_time("2026-01-01T00:00:00Z") + 60
    )


def test_condition_timestamps_move_only_on_change() -> None:
    first = status.set_condition([], "Available", "False", "A", "m", "t1", update_time=True)
    same = status.set_condition(first, "Available", "False", "A", "m", "t2", update_time=True)
    assert same == first
    flipped = status.set_condition(same, "Available", "True", "B", "n", "t3", update_time=True)
    assert flipped[0]["lastTransitionTime"] == "t3" and flipped[0]["lastUpdateTime"] == "t3"


def test_replicaset_status_counts_ready_pods_and_omits_zeros() -> None:
    ready = {"metadata": {}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    pending = {"metadata": {}, "status": {"phase": "Pending"}}
    rs = {"metadata": {"generation": 3}}
    assert status.replicaset_status(rs, [ready, pending]) == {
        "replicas": 2,
        "fullyLabeledReplicas": 2,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "observedGeneration": 3,
    }
    assert status.replicaset_status(rs, []) == {"replicas": 0, "observedGeneration": 3}


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [
        ("25%", 4, True, 1),
        ("25%", 1, True, 1),
        ("25%", 1, False, 0),
        ("50%", 3, False, 1),
        (2, 10, True, 2),
        ("3", 10, False, 3),
    ],
)
def test_int_or_percent(value, total, up, expected) -> None:
    assert status.resolve_int_or_percent(value, total, up) == expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.27", "docker.io/library/nginx:1.27"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
        ("ghcr.io/a/b:1", "ghcr.io/a/b:1"),
        ("localhost/x", "localhost/x:latest"),
    ],
)
def test_normalized_image(image: str, expected: str) -> None:
    assert status.normalized_image(image) == expected


def test_template_hash_is_stable_and_uses_the_safe_alphabet() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
    first = status.template_hash(template)
    assert first == status.template_hash({"spec": template["spec"], "metadata": template["metadata"]})
    assert set(first) <= set("456789bcdf")  # the characters upstream's hashes are made of
    assert first != status.template_hash({**template, "spec": {"containers": [{"name": "a", "image": "y"}]}})
    assert first != status.template_hash(template, collision_count=1)


@pytest.mark.parametrize(
    ("stage", "phase", "ready", "state"),
    [
        ("creating", "Pending", False, "waiting"),
        ("running", "Running", True, "running"),
        ("failing", "Pending", False, "waiting"),
        ("succeeded", "Succeeded", False, "terminated"),
        ("failed", "Failed", False, "terminated"),
    ],
)
def test_pod_status_stages(stage: str, phase: str, ready: bool, state: str) -> None:
    pod = {"metadata": {"uid": "u"}, "spec": {"containers": [{"name": "c", "image": "fail-image"}]}}
    st = status.pod_status(pod, stage, NOW, "10.244.0.5", "172.18.0.2")
    assert st["phase"] == phase and st["podIP"] == "10.244.0.5" and st["qosClass"] == "BestEffort"
    container = st["containerStatuses"][0]
    assert container["ready"] is ready and state in container["state"]
    if stage == "failing":
        assert container["state"]["waiting"]["reason"] == "ImagePullBackOff"
    assert status.pod_ready({"metadata": {}, "status": st}) is ready


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"containers": [{}]}, "BestEffort"),
        ({"containers": [{"resources": {"requests": {"cpu": "1"}}}]}, "Burstable"),
        ({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}, "Guaranteed"),
    ],
)
def test_qos_class(spec, expected) -> None:
    assert status.qos_class(spec) == expected


UTC = dt.UTC


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/5 * * * *", dt.datetime(2026, 1, 1, 10, 2, tzinfo=UTC), dt.datetime(2026, 1, 1, 10, 5, tzinfo=UTC)),
        ("0 3 * * *", dt.datetime(2026, 1, 1, 10, 2, tzinfo=UTC), dt.datetime(2026, 1, 2, 3, 0, tzinfo=UTC)),
        ("@hourly", dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC), dt.datetime(2026, 1, 1, 11, 0, tzinfo=UTC)),
        ("30 9 * * mon-fri", dt.datetime(2026, 1, 2, 10, 0, tzinfo=UTC), dt.datetime(2026, 1, 5, 9, 30, tzinfo=UTC)),
        ("0 0 1 jan *", dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC)),
        ("0 12 13 * 5", dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 2, 12, 0, tzinfo=UTC)),  # dom OR dow
    ],
)
def test_cron_next_time(schedule: str, after: dt.datetime, expected: dt.datetime) -> None:
    assert batch.next_time(schedule, after) == expected


@pytest.mark.parametrize("schedule", ["* * * *", "61 * * * *", "*/0 * * * *", "a b c d e"])
def test_cron_rejects_bad_schedules(schedule: str) -> None:
    with pytest.raises(ValueError):
        batch.parse_schedule(schedule)


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({}, {"a": "1"}, False),
        (None, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
    ],
)
def test_selector_matches(selector, labels, expected) -> None:
    from tether.sandbox.simulation import selector_matches

    assert selector_matches(selector, labels) is expected
