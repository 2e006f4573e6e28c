"""Load balancer and ingress controllers: the addresses health checks wait for."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from tether.sandbox.simulation import NODE_IP

if TYPE_CHECKING:
    from tether.sandbox.simulation import Simulation

SERVICE_CONTROLLER = "kube-controller-manager"


def load_balancer_ip(uid: str) -> str:
    """A stable external address per Service from 172.18.255.0/24 (like a local LB pool)."""
    return f"172.18.255.{hashlib.sha256(uid.encode()).digest()[0] % 250 + 2}"


def reconcile_service(sim: Simulation, namespace: str, name: str) -> None:
    """A LoadBalancer Service gets an ingress address; other types lose a stale one."""
    service = sim.get("", "services", namespace, name)
    if service is None or service["metadata"].get("deletionTimestamp"):
        return
    spec, status = service.get("spec") or {}, dict(service.get("status") or {})
    balancer = dict(status.get("loadBalancer") or {})
    if spec.get("type") == "LoadBalancer":
        address = spec.get("loadBalancerIP") or load_balancer_ip(service["metadata"]["uid"])
        balancer["ingress"] = [{"ip": address, "ipMode": "VIP"}]
    else:
        balancer.pop("ingress", None)
    status["loadBalancer"] = balancer
    sim.write_status("", "services", service, status, SERVICE_CONTROLLER)


def reconcile_ingress(sim: Simulation, namespace: str, name: str) -> None:
    """An ingress controller on the node publishes the node's address."""
    ingress = sim.get("networking.k8s.io", "ingresses", namespace, name)
    if ingress is None or ingress["metadata"].get("deletionTimestamp"):
        return
    status = {"loadBalancer": {"ingress": [{"ip": NODE_IP}]}}
    sim.write_status("networking.k8s.io", "ingresses", ingress, status, "ingress-controller")


def reconcile_pdb(sim: Simulation, namespace: str, name: str) -> None:
    """The disruption controller: how many matching pods are healthy and may be disrupted."""
    from tether.sandbox.simulation import selector_matches
    from tether.sandbox.simulation.status import pod_ready, resolve_int_or_percent, set_condition, timestamp

    pdb = sim.get("policy", "poddisruptionbudgets", namespace, name)
    if pdb is None or pdb["metadata"].get("deletionTimestamp"):
        return
    spec, old = pdb.get("spec") or {}, pdb.get("status") or {}
    pods = [
        p
        for (ns, _), p in sim.store.objects.get(("", "pods"), {}).items()
        if ns == namespace
        and not p["metadata"].get("deletionTimestamp")
        and selector_matches(spec.get("selector"), p["metadata"].get("labels"))
    ]
    expected = len(pods)
    healthy = sum(1 for p in pods if pod_ready(p))
    if spec.get("maxUnavailable") is not None:
        desired = max(expected - resolve_int_or_percent(spec["maxUnavailable"], expected, True), 0)
    else:
        desired = resolve_int_or_percent(spec.get("minAvailable", 1), expected, True)
    allowed = max(healthy - desired, 0)
    generation = pdb["metadata"].get("generation", 1)
    conditions = set_condition(
        old.get("conditions") or [],
        "DisruptionAllowed",
        "True" if allowed else "False",
        "SufficientPods" if allowed else "InsufficientPods",
        "",
        timestamp(),
    )
    for cond in conditions:
        cond["observedGeneration"] = generation
    status = {
        "observedGeneration": generation,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": conditions,
    }
    if old.get("disruptedPods"):
        status["disruptedPods"] = old["disruptedPods"]
    sim.write_status("policy", "poddisruptionbudgets", pdb, status)
