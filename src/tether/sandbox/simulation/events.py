"""Events the simulated controllers record, as ``kubectl describe`` shows them upstream."""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING, Any

from tether.sandbox import errors
from tether.sandbox.simulation import CONTROLLER_MANAGER, KUBELET, SCHEDULER, status

if TYPE_CHECKING:
    from tether.sandbox.simulation import Simulation

#: component -> (source component, reporting controller) as upstream's recorders name themselves
COMPONENTS = {
    "deployment": "deployment-controller",
    "replicaset": "replicaset-controller",
    "statefulset": "statefulset-controller",
    "daemonset": "daemonset-controller",
    "job": "job-controller",
    "cronjob": "cronjob-controller",
    "scheduler": "default-scheduler",
    "kubelet": "kubelet",
    "pvc": "persistentvolume-controller",
    "horizontal-pod-autoscaler": "horizontal-pod-autoscaler",
}


def record(
    sim: Simulation, obj: dict[str, Any], component: str, reason: str, message: str, kind: str = "Normal"
) -> None:
    """Create a core/v1 Event about ``obj`` (best effort: an event never fails a reconcile)."""
    if not sim.events:
        return
    meta = obj["metadata"]
    namespace = meta.get("namespace") or "default"
    now = status.timestamp()
    source = COMPONENTS.get(component, component)
    event: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta["name"],
            "namespace": namespace,
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": kind,
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": {"component": source, **({"host": sim.node} if component == "kubelet" else {})},
        "reportingComponent": source,
        "reportingInstance": sim.node if component == "kubelet" else "",
    }
    if component == "kubelet":
        event["involvedObject"]["fieldPath"] = "spec.containers{" + (
            ((obj.get("spec") or {}).get("containers") or [{}])[0].get("name", "") + "}"
        )
    manager = KUBELET if component == "kubelet" else SCHEDULER if component == "scheduler" else CONTROLLER_MANAGER
    with contextlib.suppress(errors.ApiError):  # e.g. the namespace is terminating: the event is lost
        sim.create("", "events", event, manager)
