"""The simulated controllers against an in-memory store, run step by step without an event loop."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tether.sandbox import defaults, gc, simulation
from tether.sandbox.resources import Registry
from tether.sandbox.simulation import status
from tether.sandbox.store import Store, clone


@pytest.fixture
def sim() -> simulation.Simulation:
    store = Store(Registry())
    defaults.install(store)
    gc.install(store)
    return simulation.install(store, delay=0)


def _create(sim: simulation.Simulation, group: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"].setdefault("namespace", "default")
    return sim.store.create(sim.rt(group, plural), defaults.apply_defaults(sim.rt(group, plural).kind, body))


def _settle(sim: simulation.Simulation, rounds: int = 8) -> None:
    for _ in range(rounds):  # each round runs what the previous round's writes scheduled
        sim.run_pending()


def _pod_spec(image: str = "nginx:1.27", restart: str = "Always") -> dict[str, Any]:
    return {"restartPolicy": restart, "containers": [{"name": "c", "image": image}]}


def test_deployment_progresses_to_available(sim) -> None:
    _create(
        sim,
        "apps",
        "deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": _pod_spec()},
            },
        },
    )
    _settle(sim)
    deployment = sim.get("apps", "deployments", "default", "web")
    assert deployment["status"]["availableReplicas"] == 2
    assert status.condition(deployment["status"]["conditions"], "Progressing")["reason"] == "NewReplicaSetAvailable"
    pods = [p for p in sim.store.objects[("", "pods")].values()]
    assert len(pods) == 2 and all(p["spec"]["nodeName"] == "sandbox-node" for p in pods)
    assert all(p["metadata"]["labels"]["pod-template-hash"] for p in pods)
    assert sim.errors == 0


def test_scaling_down_removes_pods_and_updates_status(sim) -> None:
    rs = _create(
        sim,
        "apps",
        "replicasets",
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "r"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"a": "r"}},
                "template": {"metadata": {"labels": {"a": "r"}}, "spec": _pod_spec()},
            },
        },
    )
    _settle(sim)
    assert sim.get("apps", "replicasets", "default", "r")["status"]["readyReplicas"] == 3
    live = clone(sim.get("apps", "replicasets", "default", "r"))
    live["spec"]["replicas"] = 1
    sim.store.update(sim.rt("apps", "replicasets"), live)
    _settle(sim)
    assert len(sim.owned("", "pods", "default", rs)) == 1
    assert sim.get("apps", "replicasets", "default", "r")["status"] == {
        "replicas": 1,
        "fullyLabeledReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "observedGeneration": 2,
    }


@pytest.mark.parametrize(
    ("image", "condition", "counter"), [("busybox", "Complete", "succeeded"), ("fail", "Failed", "failed")]
)
def test_job_runs_to_completion_or_failure(sim, image: str, condition: str, counter: str) -> None:
    _create(
        sim,
        "batch",
        "jobs",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "spec": {"backoffLimit": 0, "template": {"spec": _pod_spec(image, "Never")}},
        },
    )
    _settle(sim, 12)
    job = sim.get("batch", "jobs", "default", "j")
    types = {c["type"] for c in job["status"]["conditions"] if c["status"] == "True"}
    assert condition in types and job["status"][counter] == 1 and job["status"].get("active", 0) == 0
    if condition == "Complete":
        assert job["status"]["completionTime"] and "SuccessCriteriaMet" in types
    else:
        assert "FailureTarget" in types


def test_cronjob_starts_the_most_recent_missed_job(sim) -> None:
    cronjob = _create(
        sim,
        "batch",
        "cronjobs",
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "tick"},
            "spec": {
                "schedule": "*/1 * * * *",
                "successfulJobsHistoryLimit": 3,
                "jobTemplate": {"spec": {"template": {"spec": _pod_spec("busybox", "OnFailure")}}},
            },
        },
    )
    # pretend the last run was three minutes ago: the next schedule time is due now
    due = clone(cronjob)
    due["status"] = {"lastScheduleTime": status.timestamp(time.time() - 180)}
    sim.store.update(sim.rt("batch", "cronjobs"), due, subresource="status")
    _settle(sim, 12)
    jobs = list(sim.store.objects.get(("batch", "jobs"), {}).values())
    assert len(jobs) == 1 and jobs[0]["metadata"]["ownerReferences"][0]["name"] == "tick"
    live = sim.get("batch", "cronjobs", "default", "tick")
    # only the most recent missed time ran (one Job, not one per missed minute)
    assert status.parse_time(live["status"]["lastScheduleTime"]) > time.time() - 61
    assert live["status"].get("lastSuccessfulTime")  # the job ran and completed
    assert "active" not in live["status"]


def test_load_balancer_services_and_ingresses_get_addresses(sim) -> None:
    ports = {"ports": [{"port": 80}]}
    _create(
        sim,
        "",
        "services",
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", **ports}},
    )
    _create(sim, "", "services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "plain"}, "spec": ports})
    _create(
        sim,
        "networking.k8s.io",
        "ingresses",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web"},
            "spec": {
                "rules": [
                    {
                        "host": "web.example",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "plain", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        },
    )
    _settle(sim)
    (address,) = sim.get("", "services", "default", "lb")["status"]["loadBalancer"]["ingress"]
    assert address["ip"].startswith("172.18.255.") and address["ipMode"] == "VIP"
    assert sim.get("", "services", "default", "plain")["status"] == {"loadBalancer": {}}
    ingress = sim.get("networking.k8s.io", "ingresses", "default", "web")
    assert ingress["status"]["loadBalancer"]["ingress"] == [{"ip": simulation.NODE_IP}]


@pytest.mark.parametrize(
    ("budget", "allowed", "desired"),
    [
        ({"minAvailable": 2}, 1, 2),
        ({"maxUnavailable": 1}, 1, 2),
        ({"minAvailable": "100%"}, 0, 3),
        ({"maxUnavailable": "50%"}, 2, 1),
    ],
)
def test_disruption_budget_status(sim, budget: dict[str, Any], allowed: int, desired: int) -> None:
    _create(
        sim,
        "apps",
        "replicasets",
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "r"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"a": "r"}},
                "template": {"metadata": {"labels": {"a": "r"}}, "spec": _pod_spec()},
            },
        },
    )
    _create(
        sim,
        "policy",
        "poddisruptionbudgets",
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "b"},
            "spec": {"selector": {"matchLabels": {"a": "r"}}, **budget},
        },
    )
    _settle(sim)
    st = sim.get("policy", "poddisruptionbudgets", "default", "b")["status"]
    assert (st["expectedPods"], st["currentHealthy"]) == (3, 3)
    assert (st["disruptionsAllowed"], st["desiredHealthy"]) == (allowed, desired)
    cond = st["conditions"][0]
    assert cond["type"] == "DisruptionAllowed" and cond["status"] == ("True" if allowed else "False")
    assert cond["reason"] == ("SufficientPods" if allowed else "InsufficientPods")


def test_autoscaler_keeps_its_target_within_bounds(sim) -> None:
    _create(
        sim,
        "apps",
        "deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": _pod_spec()},
            },
        },
    )
    _create(
        sim,
        "autoscaling",
        "horizontalpodautoscalers",
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 3,
                "maxReplicas": 5,
            },
        },
    )
    _settle(sim, 12)
    deployment = sim.get("apps", "deployments", "default", "web")
    assert deployment["spec"]["replicas"] == 3 and deployment["status"]["availableReplicas"] == 3
    scale_entries = [m for m in deployment["metadata"]["managedFields"] if m.get("subresource") == "scale"]
    assert scale_entries and scale_entries[0]["manager"] == "kube-controller-manager"
    hpa = sim.get("autoscaling", "horizontalpodautoscalers", "default", "web")["status"]
    assert (hpa["currentReplicas"], hpa["desiredReplicas"]) == (3, 3) and hpa["lastScaleTime"]
    reasons = {c["type"]: (c["status"], c["reason"]) for c in hpa["conditions"]}
    assert reasons == {
        "AbleToScale": ("True", "ReadyForNewScale"),
        "ScalingActive": ("True", "ValidMetricFound"),
        "ScalingLimited": ("False", "DesiredWithinRange"),
    }
    assert hpa["currentMetrics"][0]["resource"] == {"name": "cpu", "current": {"averageUtilization": 80}}
