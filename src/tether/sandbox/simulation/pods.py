"""The scheduler, the kubelet and the volume binder of the simulated single-node cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.sandbox.simulation import KUBELET, NODE_IP, controller_ref, events, status
from tether.sandbox.store import clone

if TYPE_CHECKING:
    from tether.sandbox.simulation import Simulation


def _since(sim: Simulation, kind: str, meta: dict[str, Any]) -> float | None:
    """When the object entered its current stage (monotonic loop time; None after a restart)."""
    return sim.since.get((kind, meta["uid"]))


def _mark(sim: Simulation, kind: str, meta: dict[str, Any]) -> None:
    sim.since[(kind, meta["uid"])] = _now(sim)


def _now(sim: Simulation) -> float:
    return sim._loop.time() if sim._loop is not None else 0.0


def _remaining(sim: Simulation, kind: str, meta: dict[str, Any]) -> float:
    since = _since(sim, kind, meta)
    if since is None or sim._loop is None:
        return 0.0
    return since + sim.delay - _now(sim)


def _is_job_pod(pod: dict[str, Any]) -> bool:
    """A pod that runs to completion: a Job's, or a bare pod (a hook) that is not restarted."""
    ref = controller_ref(pod) or {}
    restart = (pod.get("spec") or {}).get("restartPolicy")
    return (ref.get("kind") == "Job" or not ref) and restart not in (None, "Always")


def reconcile_pod(sim: Simulation, namespace: str, name: str) -> None:
    pod = sim.get("", "pods", namespace, name)
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return
    meta, spec = pod["metadata"], pod.get("spec") or {}
    if not spec.get("nodeName"):
        # the scheduler's binding sets spec.nodeName without a managedFields entry, as upstream
        bound = clone(pod)
        bound["spec"]["nodeName"] = sim.node
        pod = sim.store.update(sim.rt("", "pods"), bound)
        events.record(sim, pod, "scheduler", "Scheduled", f"Successfully assigned {namespace}/{name} to {sim.node}")
    elif spec.get("nodeName") != sim.node:
        return  # bound to a node that does not exist: nothing runs it
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return
    now = status.timestamp()
    ip = status.pod_ip(meta["uid"])
    stage = _stage(pod)
    if stage is None:
        sim.write_status("", "pods", pod, status.pod_status(pod, "creating", now, ip, NODE_IP), KUBELET)
        _mark(sim, "pod", meta)
        sim.schedule("pod", namespace, name, sim.delay)
        return
    wait = _remaining(sim, "pod", meta)
    if wait > 0:
        if stage in ("creating", "running"):
            sim.schedule("pod", namespace, name, wait)
        return
    images_fail = any(status.image_fails(c.get("image")) for c in spec.get("containers") or [])
    if stage == "creating":
        if images_fail:
            target = "failed" if _is_job_pod(pod) else "failing"
        else:
            target = "running"
        sim.write_status("", "pods", pod, status.pod_status(pod, target, now, ip, NODE_IP), KUBELET)
        _mark(sim, "pod", meta)
        _container_events(sim, pod, target)
        if target == "running" and _is_job_pod(pod):
            sim.schedule("pod", namespace, name, sim.delay)
    elif stage == "running" and _is_job_pod(pod):
        exits = any(status.command_fails(c) for c in spec.get("containers") or [])
        sim.write_status(
            "", "pods", pod, status.pod_status(pod, "failed" if exits else "succeeded", now, ip, NODE_IP), KUBELET
        )


def _container_events(sim: Simulation, pod: dict[str, Any], target: str) -> None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        image, name = container.get("image", ""), container.get("name", "")
        if status.image_fails(image):
            events.record(
                sim,
                pod,
                "kubelet",
                "Failed",
                f'Failed to pull image "{image}": rpc error: code = NotFound '
                f'desc = failed to pull and unpack image "{status.normalized_image(image)}": not found',
                "Warning",
            )
            events.record(sim, pod, "kubelet", "BackOff", f'Back-off pulling image "{image}"', "Warning")
        elif target != "failed":
            events.record(sim, pod, "kubelet", "Pulled", f'Container image "{image}" already present on machine')
            events.record(sim, pod, "kubelet", "Started", f"Started container {name}")


def _stage(pod: dict[str, Any]) -> str | None:
    st = pod.get("status") or {}
    containers = st.get("containerStatuses") or []
    if not containers:
        return None
    if st.get("phase") == "Running":
        return "running"
    if any((c.get("state") or {}).get("waiting", {}).get("reason") == "ImagePullBackOff" for c in containers):
        return "failing"
    return "creating"


def reconcile_pvc(sim: Simulation, namespace: str, name: str) -> None:
    """Bind a claim to a (virtual) volume of the requested size once ``delay`` has passed."""
    claim = sim.get("", "persistentvolumeclaims", namespace, name)
    if claim is None or claim["metadata"].get("deletionTimestamp"):
        return
    meta, spec = claim["metadata"], claim.get("spec") or {}
    if (claim.get("status") or {}).get("phase") == "Bound":
        return
    if _since(sim, "pvc", meta) is None and sim._loop is not None:
        _mark(sim, "pvc", meta)
    wait = _remaining(sim, "pvc", meta)
    if wait > 0:
        sim.schedule("pvc", namespace, name, wait)
        return
    if not spec.get("volumeName"):
        bound = clone(claim)
        bound["spec"]["volumeName"] = "pvc-" + meta["uid"]
        annotations = bound["metadata"].setdefault("annotations", {})
        annotations["pv.kubernetes.io/bind-completed"] = "yes"
        annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
        claim = sim.update("", "persistentvolumeclaims", claim, bound)
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    sim.write_status(
        "",
        "persistentvolumeclaims",
        claim,
        {
            "phase": "Bound",
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "capacity": {"storage": storage},
        },
    )
