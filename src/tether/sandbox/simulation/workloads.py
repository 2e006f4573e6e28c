"""Deployment, ReplicaSet, StatefulSet and DaemonSet controllers of the simulation."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tether.sandbox.simulation import events, owner_reference, status
from tether.sandbox.store import clone

if TYPE_CHECKING:
    from tether.sandbox.simulation import Simulation

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
REVISION_LABEL = "controller-revision-hash"


def _deleting(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def new_pod(
    owner: dict[str, Any],
    template: dict[str, Any],
    *,
    name: str = "",
    labels: dict[str, str] | None = None,
    spec_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A pod from ``owner``'s template, controlled by ``owner`` (named ``name`` or generated)."""
    tmeta = template.get("metadata") or {}
    meta: dict[str, Any] = {
        "namespace": owner["metadata"]["namespace"],
        "labels": {**(tmeta.get("labels") or {}), **(labels or {})},
        "ownerReferences": [owner_reference(owner)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = owner["metadata"]["name"] + "-"
    spec = {**clone(template.get("spec") or {}), **(spec_extra or {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": status.qos_class(spec)},
    }


# -- Deployment ----------------------------------------------------------------------------------


def _revision(obj: dict[str, Any]) -> int:
    value = (obj["metadata"].get("annotations") or {}).get(REVISION, "0")
    return int(value) if str(value).isdigit() else 0


def _set_rs(
    sim: Simulation, deployment: dict[str, Any], rs: dict[str, Any], replicas: int, annotations: dict[str, str]
) -> dict[str, Any]:
    new = clone(rs)
    before = rs["spec"].get("replicas", 0)
    new["spec"]["replicas"] = replicas
    new["metadata"].setdefault("annotations", {}).update(annotations)
    updated = sim.update("apps", "replicasets", rs, new)
    if before != replicas:
        direction = "up" if replicas > before else "down"
        events.record(
            sim,
            deployment,
            "deployment",
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {replicas}",
        )
    return updated


def reconcile_deployment(sim: Simulation, namespace: str, name: str) -> None:
    deployment = sim.get("apps", "deployments", namespace, name)
    if deployment is None or _deleting(deployment):
        return
    spec = deployment.get("spec") or {}
    desired = spec.get("replicas", 1)
    template = spec.get("template") or {}
    template_hash = status.template_hash(template, (deployment.get("status") or {}).get("collisionCount", 0))
    all_rs = [rs for rs in sim.owned("apps", "replicasets", namespace, deployment) if not _deleting(rs)]
    if not any((rs["metadata"].get("labels") or {}).get(HASH_LABEL) == template_hash for rs in all_rs):
        all_rs += sim.adopt("apps", "replicasets", namespace, deployment, spec.get("selector"))
    new_rs = next((rs for rs in all_rs if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == template_hash), None)
    old_rs = [rs for rs in all_rs if rs is not new_rs]
    recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
    old_pods = sum(int((rs.get("status") or {}).get("replicas") or 0) + rs["spec"].get("replicas", 0) for rs in old_rs)
    max_revision = max((_revision(rs) for rs in all_rs), default=0)
    annotations = {
        "deployment.kubernetes.io/desired-replicas": str(desired),
        "deployment.kubernetes.io/max-replicas": str(desired + status.max_surge(deployment)),
    }
    created = False
    if spec.get("paused"):
        pass  # a paused deployment rolls nothing out
    elif new_rs is None:
        rs_template = clone(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = template_hash
        selector = clone(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = template_hash
        rs_spec: dict[str, Any] = {
            "replicas": 0 if recreate and old_pods else desired,
            "selector": selector,
            "template": rs_template,
        }
        if spec.get("minReadySeconds"):
            rs_spec["minReadySeconds"] = spec["minReadySeconds"]
        new_rs = sim.create(
            "apps",
            "replicasets",
            {
                "metadata": {
                    "name": f"{name}-{template_hash}",
                    "namespace": namespace,
                    "labels": dict(rs_template["metadata"]["labels"]),
                    "annotations": {**annotations, REVISION: str(max_revision + 1)},
                    "ownerReferences": [owner_reference(deployment)],
                },
                "spec": rs_spec,
            },
        )
        created = True
        events.record(
            sim,
            deployment,
            "deployment",
            "ScalingReplicaSet",
            f"Scaled up replica set {new_rs['metadata']['name']} from 0 to {rs_spec['replicas']}",
        )
    else:
        revision = _revision(new_rs) if _revision(new_rs) == max_revision else max_revision + 1
        target = 0 if recreate and old_pods else desired
        new_rs = _set_rs(sim, deployment, new_rs, target, {**annotations, REVISION: str(revision)})
    if new_rs is not None:
        available = int((new_rs.get("status") or {}).get("availableReplicas") or 0)
        if recreate or available >= desired:
            old_rs = [_set_rs(sim, deployment, rs, 0, {}) if rs["spec"].get("replicas", 0) else rs for rs in old_rs]
        _prune_history(sim, deployment, old_rs)
        revision_value = (new_rs["metadata"].get("annotations") or {}).get(REVISION)
        if revision_value and (deployment["metadata"].get("annotations") or {}).get(REVISION) != revision_value:
            annotated = clone(deployment)
            annotated["metadata"].setdefault("annotations", {})[REVISION] = revision_value
            deployment = sim.update("apps", "deployments", deployment, annotated)
    current = [rs for rs in sim.owned("apps", "replicasets", namespace, deployment) if not _deleting(rs)]
    new_status = status.deployment_status(deployment, new_rs, current, status.timestamp(), created_new=created)
    deployment = sim.write_status("apps", "deployments", deployment, new_status)
    deadline = status.progress_deadline_at(deployment)
    if deadline is not None:
        sim.schedule("deployment", namespace, name, deadline - time.time() + 0.05)


def _prune_history(sim: Simulation, deployment: dict[str, Any], old_rs: list[dict[str, Any]]) -> None:
    limit = (deployment.get("spec") or {}).get("revisionHistoryLimit", 10)
    idle = [rs for rs in old_rs if not rs["spec"].get("replicas") and not (rs.get("status") or {}).get("replicas")]
    idle.sort(key=_revision)
    for rs in idle[: max(len(idle) - limit, 0)]:
        sim.delete("apps", "replicasets", rs)


# -- ReplicaSet ----------------------------------------------------------------------------------


def reconcile_replicaset(sim: Simulation, namespace: str, name: str) -> None:
    rs = sim.get("apps", "replicasets", namespace, name)
    if rs is None or _deleting(rs):
        return
    pods = [p for p in sim.owned("", "pods", namespace, rs) if not _deleting(p)]
    desired = (rs.get("spec") or {}).get("replicas", 1)
    template = (rs.get("spec") or {}).get("template") or {}
    if len(pods) < desired:
        pods += [
            p for p in sim.adopt("", "pods", namespace, rs, (rs.get("spec") or {}).get("selector")) if not _deleting(p)
        ]
    for _ in range(desired - len(pods)):
        pods.append(sim.create("", "pods", new_pod(rs, template)))
        events.record(sim, rs, "replicaset", "SuccessfulCreate", f"Created pod: {pods[-1]['metadata']['name']}")
    if len(pods) > desired:
        # upstream removes unready and newer pods first
        ranked = sorted(
            pods, key=lambda p: (status.pod_ready(p), p["metadata"].get("creationTimestamp", "")), reverse=False
        )
        doomed = sorted(ranked[: len(pods) - desired], key=lambda p: p["metadata"]["name"])
        for pod in doomed:
            sim.delete("", "pods", pod)
            events.record(sim, rs, "replicaset", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        pods = [p for p in pods if p not in doomed]
    sim.write_status("apps", "replicasets", rs, status.replicaset_status(rs, pods))


# -- StatefulSet ---------------------------------------------------------------------------------


def _ordinal(sts_name: str, pod: dict[str, Any]) -> int | None:
    rest = pod["metadata"]["name"].removeprefix(sts_name + "-")
    return int(rest) if rest.isdigit() and pod["metadata"]["name"] != rest else None


def _ensure_claims(sim: Simulation, sts: dict[str, Any], ordinal: int) -> list[dict[str, Any]]:
    spec, name, namespace = sts["spec"], sts["metadata"]["name"], sts["metadata"]["namespace"]
    volumes = []
    for template in spec.get("volumeClaimTemplates") or []:
        tname = (template.get("metadata") or {}).get("name", "data")
        claim = f"{tname}-{name}-{ordinal}"
        if sim.get("", "persistentvolumeclaims", namespace, claim) is None:
            labels = dict(((spec.get("selector") or {}).get("matchLabels")) or {})
            sim.create(
                "",
                "persistentvolumeclaims",
                {
                    "metadata": {"name": claim, "namespace": namespace, "labels": labels},
                    "spec": clone(template.get("spec") or {}),
                    "status": {"phase": "Pending"},
                },
            )
        volumes.append({"name": tname, "persistentVolumeClaim": {"claimName": claim}})
    return volumes


def reconcile_statefulset(sim: Simulation, namespace: str, name: str) -> None:
    sts = sim.get("apps", "statefulsets", namespace, name)
    if sts is None or _deleting(sts):
        return
    spec = sts.get("spec") or {}
    replicas = spec.get("replicas", 1)
    template = spec.get("template") or {}
    update_revision = f"{name}-{status.template_hash(template)}"
    old_status = sts.get("status") or {}
    current_revision = old_status.get("currentRevision") or update_revision
    ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
    pods: dict[int, dict[str, Any]] = {}
    owned = sim.owned("", "pods", namespace, sts)
    if len(owned) < replicas:
        owned += sim.adopt("", "pods", namespace, sts, spec.get("selector"))
    for pod in owned:
        ordinal = _ordinal(name, pod)
        if ordinal is not None:
            pods[ordinal] = pod
    busy = False
    for ordinal in range(replicas):
        pod = pods.get(ordinal)
        if pod is None:
            volumes = _ensure_claims(sim, sts, ordinal)
            pod_spec = clone(template.get("spec") or {})
            pod_spec["volumes"] = list(pod_spec.get("volumes") or []) + volumes
            if not pod_spec["volumes"]:
                del pod_spec["volumes"]
            labels = {
                REVISION_LABEL: update_revision,
                "statefulset.kubernetes.io/pod-name": f"{name}-{ordinal}",
                "apps.kubernetes.io/pod-index": str(ordinal),
            }
            extra: dict[str, Any] = {"hostname": f"{name}-{ordinal}"}
            if spec.get("serviceName"):
                extra["subdomain"] = spec["serviceName"]
            pod = new_pod(
                sts, {**template, "spec": pod_spec}, name=f"{name}-{ordinal}", labels=labels, spec_extra=extra
            )
            pods[ordinal] = sim.create("", "pods", pod)
            events.record(
                sim,
                sts,
                "statefulset",
                "SuccessfulCreate",
                f"create Pod {name}-{ordinal} in StatefulSet {name} successful",
            )
            busy = True
            if ordered:
                break
        elif ordered and not status.pod_ready(pod):
            busy = True
            break
    if not busy:
        extra_ordinals = sorted((i for i in pods if i >= replicas), reverse=True)
        strategy = spec.get("updateStrategy") or {}
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        stale = sorted(
            (
                i
                for i in range(partition, replicas)
                if i in pods and (pods[i]["metadata"].get("labels") or {}).get(REVISION_LABEL) != update_revision
            ),
            reverse=True,
        )
        if extra_ordinals:
            for ordinal in extra_ordinals[:1] if ordered else extra_ordinals:
                sim.delete("", "pods", pods.pop(ordinal))
        elif (
            stale
            and strategy.get("type", "RollingUpdate") == "RollingUpdate"
            and not any(_deleting(p) for p in pods.values())
        ):
            sim.delete("", "pods", pods.pop(stale[0]))
    live = [p for p in pods.values() if not _deleting(p)]
    ready = sum(1 for p in live if status.pod_ready(p))
    updated = sum(1 for p in live if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == update_revision)
    if updated == replicas == len(live) and ready == replicas:
        current_revision = update_revision
    current = sum(1 for p in live if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == current_revision)
    new_status = {
        "observedGeneration": sts["metadata"].get("generation", 1),
        "replicas": len(live),
        "readyReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "availableReplicas": ready,
        "currentRevision": current_revision,
        "updateRevision": update_revision,
        "collisionCount": old_status.get("collisionCount", 0),
    }
    sim.write_status(
        "apps",
        "statefulsets",
        sts,
        status.compact(new_status, keep=("replicas", "availableReplicas", "collisionCount")),
    )


# -- DaemonSet -----------------------------------------------------------------------------------


def reconcile_daemonset(sim: Simulation, namespace: str, name: str) -> None:
    ds = sim.get("apps", "daemonsets", namespace, name)
    if ds is None or _deleting(ds):
        return
    spec = ds.get("spec") or {}
    template = spec.get("template") or {}
    current_hash = status.template_hash(template)
    generation = ds["metadata"].get("generation", 1)
    pods = [p for p in sim.owned("", "pods", namespace, ds) if not _deleting(p)]
    if not pods:
        pods = [p for p in sim.adopt("", "pods", namespace, ds, spec.get("selector")) if not _deleting(p)]
    rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    for pod in pods[1:]:  # one node: one pod
        sim.delete("", "pods", pod)
    pods = pods[:1]
    if pods and rolling and (pods[0]["metadata"].get("labels") or {}).get(REVISION_LABEL) != current_hash:
        sim.delete("", "pods", pods.pop())
    if not pods:
        labels = {REVISION_LABEL: current_hash, "pod-template-generation": str(generation)}
        pods.append(sim.create("", "pods", new_pod(ds, template, labels=labels)))
        events.record(sim, ds, "daemonset", "SuccessfulCreate", f"Created pod: {pods[-1]['metadata']['name']}")
    ready = sum(1 for p in pods if status.pod_ready(p))
    updated = sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == current_hash)
    new_status = {
        "currentNumberScheduled": len(pods),
        "desiredNumberScheduled": 1,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "numberUnavailable": 1 - ready,
        "updatedNumberScheduled": updated,
        "observedGeneration": generation,
    }
    sim.write_status(
        "apps",
        "daemonsets",
        ds,
        status.compact(
            new_status, keep=("currentNumberScheduled", "desiredNumberScheduled", "numberMisscheduled", "numberReady")
        ),
    )
