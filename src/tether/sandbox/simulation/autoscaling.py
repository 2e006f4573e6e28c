"""The horizontal pod autoscaler, with metrics that always agree with the current size.

There is no metrics pipeline in the sandbox, so every metric reads exactly its target: the
autoscaler keeps the workload's size, except that it scales it into ``[minReplicas,
maxReplicas]`` through the scale subresource, as upstream does (which is where GitOps tools meet
the HPA's field ownership of ``spec.replicas``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.sandbox.simulation import events, status
from tether.sandbox.store import clone

if TYPE_CHECKING:
    from tether.sandbox.simulation import Simulation

_TARGETS = {
    ("apps/v1", "Deployment"): ("apps", "deployments"),
    ("apps/v1", "StatefulSet"): ("apps", "statefulsets"),
    ("apps/v1", "ReplicaSet"): ("apps", "replicasets"),
}


def target_key(hpa: dict[str, Any]) -> tuple[str, str] | None:
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    return _TARGETS.get((ref.get("apiVersion", "apps/v1"), ref.get("kind", "")))


def _metric_status(metric: dict[str, Any]) -> dict[str, Any] | None:
    """The current value of a metric spec: exactly on target."""
    kind = metric.get("type")
    source = (
        metric.get(
            {
                "Resource": "resource",
                "ContainerResource": "containerResource",
                "Pods": "pods",
                "Object": "object",
                "External": "external",
            }.get(kind or "", "")
        )
        or {}
    )
    target = source.get("target") or {}
    current = {k: target[k] for k in ("averageUtilization", "averageValue", "value") if k in target}
    if kind in ("Resource", "ContainerResource"):
        body = {"name": source.get("name"), "current": current}
        if kind == "ContainerResource":
            body["container"] = source.get("container")
        return {"type": kind, ("resource" if kind == "Resource" else "containerResource"): body}
    if kind in ("Pods", "Object", "External"):
        body = {"metric": source.get("metric"), "current": current}
        if kind == "Object":
            body["describedObject"] = source.get("describedObject")
        return {"type": kind, kind.lower(): body}
    return None


def reconcile_hpa(sim: Simulation, namespace: str, name: str) -> None:
    hpa = sim.get("autoscaling", "horizontalpodautoscalers", namespace, name)
    if hpa is None or hpa["metadata"].get("deletionTimestamp"):
        return
    spec, old = hpa.get("spec") or {}, hpa.get("status") or {}
    key = target_key(hpa)
    target_name = (spec.get("scaleTargetRef") or {}).get("name", "")
    target = sim.get(*key, namespace, target_name) if key else None
    now = status.timestamp()
    conditions = old.get("conditions") or []
    if target is None:
        kind = (spec.get("scaleTargetRef") or {}).get("kind", "")
        conditions = status.set_condition(
            conditions,
            "AbleToScale",
            "False",
            "FailedGetScale",
            f"the HPA controller was unable to get the target's current scale: "
            f'{kind.lower()}s "{target_name}" not found',
            now,
        )
        sim.write_status(
            "autoscaling",
            "horizontalpodautoscalers",
            hpa,
            {
                **{k: v for k, v in old.items() if k != "conditions"},
                "currentReplicas": old.get("currentReplicas", 0),
                "desiredReplicas": old.get("desiredReplicas", 0),
                "conditions": conditions,
            },
        )
        return
    current = (target.get("spec") or {}).get("replicas", 1)
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", current)
    desired = min(max(current, low), high)
    new_status: dict[str, Any] = {
        "currentReplicas": (target.get("status") or {}).get("replicas", 0),
        "desiredReplicas": desired,
    }
    if desired != current and current != 0:  # upstream leaves a target scaled to zero alone
        scaled = clone(target)
        scaled["spec"]["replicas"] = desired
        sim.update(*key, target, scaled, subresource="scale")
        events.record(
            sim,
            hpa,
            "horizontal-pod-autoscaler",
            "SuccessfulRescale",
            f"New size: {desired}; reason: Current number of replicas "
            f"{'below Spec.MinReplicas' if desired > current else 'above Spec.MaxReplicas'}",
        )
        new_status["lastScaleTime"] = now
    elif old.get("lastScaleTime"):
        new_status["lastScaleTime"] = old["lastScaleTime"]
    metrics = [m for m in (_metric_status(m) for m in spec.get("metrics") or []) if m]
    if metrics:
        new_status["currentMetrics"] = metrics
    conditions = status.set_condition(
        conditions, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size", now
    )
    conditions = status.set_condition(
        conditions,
        "ScalingActive",
        "True",
        "ValidMetricFound",
        "the HPA was able to successfully calculate a replica count from cpu resource "
        "utilization (percentage of request)",
        now,
    )
    if current < low or current > high:
        conditions = status.set_condition(
            conditions,
            "ScalingLimited",
            "True",
            "TooFewReplicas" if current < low else "TooManyReplicas",
            f"the desired replica count is {'less' if current < low else 'more'} than "
            f"the {'minimum' if current < low else 'maximum'} replica count",
            now,
        )
    else:
        conditions = status.set_condition(
            conditions,
            "ScalingLimited",
            "False",
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
            now,
        )
    new_status["conditions"] = conditions
    sim.write_status("autoscaling", "horizontalpodautoscalers", hpa, new_status)
