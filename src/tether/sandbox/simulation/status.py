"""Pure parts of the workload simulation: hashes, names, pod states and workload status
computations, each a function of its inputs (table-tested without a server)."""

from __future__ import annotations

import calendar
import hashlib
import json
import math
import re
import time
from typing import Any

from tether.sandbox.defaults import qos_class

SAFE_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # upstream's alphabet for generated name suffixes
FAIL_MARKER = "fail"


def timestamp(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def template_hash(template: Any, collision_count: int = 0) -> str:
    """A pod-template-hash like upstream's: FNV-1a over the template, the characters of its decimal
    form mapped (by code point) onto the safe alphabet, so it reads like ``5d59d67564``."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    value = 0x811C9DC5
    for byte in data + (str(collision_count).encode() if collision_count else b""):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE_CHARS[ord(d) % len(SAFE_CHARS)] for d in str(value))


def suffix(seed: str) -> str:
    """Five safe characters derived from ``seed`` (unique seeds give distinct-looking names)."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(SAFE_CHARS[b % len(SAFE_CHARS)] for b in digest[:5])


def image_fails(image: str | None) -> bool:
    """The documented failure switch: an image whose name contains ``fail`` never pulls."""
    return FAIL_MARKER in (image or "").lower()


_EXIT = re.compile(r"(?:^|[;&|\s])exit\s+([0-9]+)\s*$")


def command_fails(container: dict[str, Any]) -> bool:
    """The documented switch for a failing run: a container whose command is ``false`` (or
    ``/bin/false``), or whose last shell line is ``exit N`` with N other than 0, exits with 1."""
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    if not words:
        return False
    if words[0].rsplit("/", 1)[-1] == "false":
        return True
    last = words[-1].strip().splitlines()[-1].strip() if words[-1].strip() else ""
    match = _EXIT.search(last)
    return bool(match and int(match.group(1)) != 0)


def normalized_image(image: str) -> str:
    """What the container runtime reports: ``nginx:1.27`` -> ``docker.io/library/nginx:1.27``."""
    name = image
    if "@" not in name.rsplit("/", 1)[-1] and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        return "docker.io/library/" + name
    if "." not in first and ":" not in first and first != "localhost":
        return "docker.io/" + name
    return name


def resolve_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """``maxSurge`` / ``maxUnavailable``: an int, or a percentage of ``total``."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            fraction = int(value[:-1]) * total / 100
        except ValueError:
            return 0
        return math.ceil(fraction) if round_up else math.floor(fraction)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def max_unavailable(deployment: dict[str, Any]) -> int:
    spec = deployment.get("spec") or {}
    replicas = spec.get("replicas", 1)
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate" or replicas == 0:
        return 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # upstream: both zero is invalid, it treats maxUnavailable as 1
    return min(unavailable, replicas)


def max_surge(deployment: dict[str, Any]) -> int:
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    return resolve_int_or_percent(
        (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"), spec.get("replicas", 1), True
    )


# -- conditions ----------------------------------------------------------------------------------


def condition(conditions: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def set_condition(
    conditions: list[dict[str, Any]],
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: str,
    *,
    update_time: bool = False,
    touch: bool = False,
) -> list[dict[str, Any]]:
    """Set one condition keeping upstream's timestamps: lastTransitionTime moves only when the
    status changes; lastUpdateTime (workload conditions) whenever reason or message change, or
    when ``touch`` says progress was made."""
    result = [dict(c) for c in conditions]
    current = condition(result, kind)
    new: dict[str, Any] = {"type": kind, "status": status}
    if update_time:
        changed = current is None or current.get("reason") != reason or current.get("message") != message
        new["lastUpdateTime"] = now if changed or touch else current.get("lastUpdateTime", now)
    new["lastTransitionTime"] = (
        (current or {}).get("lastTransitionTime", now)
        if (current is not None and current.get("status") == status)
        else now
    )
    new["reason"] = reason
    new["message"] = message
    if current is None:
        result.append(new)
    else:
        result[result.index(current)] = new
    return result


# -- pods ----------------------------------------------------------------------------------------


def pod_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("status") or {}).get("phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
        return False
    ready = condition((pod.get("status") or {}).get("conditions") or [], "Ready")
    return bool(ready and ready.get("status") == "True")


def _pod_conditions(
    now: str,
    scheduled_at: str,
    ready: bool,
    initialized: bool = True,
    reason: str = "ContainersNotReady",
    names: list[str] | None = None,
) -> list[dict[str, Any]]:
    waiting = f"containers with unready status: [{' '.join(names or [])}]"
    conditions = [
        {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
        {
            "type": "Initialized",
            "status": "True" if initialized else "False",
            "lastProbeTime": None,
            "lastTransitionTime": scheduled_at,
        },
    ]
    for kind in ("Ready", "ContainersReady"):
        item: dict[str, Any] = {
            "type": kind,
            "status": "True" if ready else "False",
            "lastProbeTime": None,
            "lastTransitionTime": now,
        }
        if not ready:
            item["reason"] = reason
            if reason == "ContainersNotReady":
                item["message"] = waiting
        conditions.append(item)
    conditions.append(
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": scheduled_at}
    )
    return conditions


def container_status(container: dict[str, Any], state: dict[str, Any], ready: bool, started: bool) -> dict[str, Any]:
    image = container.get("image", "")
    status: dict[str, Any] = {
        "name": container.get("name", ""),
        "state": state,
        "lastState": {},
        "ready": ready,
        "restartCount": 0,
        "image": normalized_image(image) if image else "",
        "imageID": "",
        "started": started,
    }
    if "running" in state or "terminated" in state:
        digest = hashlib.sha256(image.encode()).hexdigest()
        status["imageID"] = normalized_image(image).rsplit(":", 1)[0] + "@sha256:" + digest
        status["containerID"] = "containerd://" + hashlib.sha256((image + str(state)).encode()).hexdigest()
    return status


def pod_status(pod: dict[str, Any], stage: str, now: str, pod_ip: str, host_ip: str) -> dict[str, Any]:
    """The kubelet's view of a pod at ``stage``: creating, running, failing (image pull back-off),
    succeeded or failed (containers exited)."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    started_at = old.get("startTime") or now
    scheduled = condition(old.get("conditions") or [], "PodScheduled")
    scheduled_at = (scheduled or {}).get("lastTransitionTime") or now
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    names = [c.get("name", "") for c in containers]
    status: dict[str, Any] = {
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started_at,
        "qosClass": old.get("qosClass") or qos_class(spec),
    }
    if stage == "creating":
        status["phase"] = "Pending"
        status["conditions"] = _pod_conditions(now, scheduled_at, False, names=names)
        status["conditions"][0]["status"] = "False"
        status["containerStatuses"] = [
            container_status(c, {"waiting": {"reason": "ContainerCreating"}}, False, False) for c in containers
        ]
    elif stage == "failing":
        status["phase"] = "Pending"
        status["conditions"] = _pod_conditions(now, scheduled_at, False, names=names)
        back_off = {"reason": "ImagePullBackOff"}
        status["containerStatuses"] = [
            container_status(
                c, {"waiting": {**back_off, "message": f'Back-off pulling image "{c.get("image", "")}"'}}, False, False
            )
            if image_fails(c.get("image"))
            else container_status(c, {"running": {"startedAt": now}}, False, True)
            for c in containers
        ]
    elif stage == "running":
        status["phase"] = "Running"
        status["conditions"] = _pod_conditions(now, scheduled_at, True)
        status["containerStatuses"] = [
            container_status(c, {"running": {"startedAt": now}}, True, True) for c in containers
        ]
    else:  # succeeded / failed
        ok = stage == "succeeded"
        status["phase"] = "Succeeded" if ok else "Failed"
        status["conditions"] = _pod_conditions(now, scheduled_at, False, reason="PodCompleted" if ok else "PodFailed")
        status["conditions"][0]["status"] = "False"
        began = next(
            (
                s["state"]["running"]["startedAt"]
                for s in old.get("containerStatuses") or []
                if "running" in s.get("state", {})
            ),
            now,
        )
        status["containerStatuses"] = [
            container_status(
                c,
                {
                    "terminated": {
                        "exitCode": 0 if ok else 1,
                        "reason": "Completed" if ok else "Error",
                        "startedAt": began,
                        "finishedAt": now,
                    }
                },
                False,
                False,
            )
            for c in containers
        ]
    return status


def pod_ip(seed: str) -> str:
    """A stable pod IP in 10.244.0.0/16 derived from the pod uid."""
    digest = hashlib.sha256(seed.encode()).digest()
    return f"10.244.{digest[0]}.{max(digest[1], 2) if digest[1] < 255 else 254}"


# -- workload status -----------------------------------------------------------------------------


def compact(status: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Drop zero counts as upstream's ``omitempty`` does (except fields in ``keep``)."""
    return {k: v for k, v in status.items() if k in keep or v not in (0, None, [], {})}


def deployment_status(
    deployment: dict[str, Any],
    new_rs: dict[str, Any] | None,
    all_rs: list[dict[str, Any]],
    now: str,
    *,
    created_new: bool = False,
) -> dict[str, Any]:
    """The status the deployment controller reports from its ReplicaSets."""
    spec = deployment.get("spec") or {}
    meta = deployment["metadata"]
    old_status = deployment.get("status") or {}
    desired = spec.get("replicas", 1)

    def count(rs: dict[str, Any] | None, key: str) -> int:
        return int(((rs or {}).get("status") or {}).get(key) or 0)

    replicas = sum(count(rs, "replicas") for rs in all_rs)
    updated = count(new_rs, "replicas")
    ready = sum(count(rs, "readyReplicas") for rs in all_rs)
    available = sum(count(rs, "availableReplicas") for rs in all_rs)
    status: dict[str, Any] = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": max(desired - available, 0),
    }
    conditions = list(old_status.get("conditions") or [])
    if available >= desired - max_unavailable(deployment):
        conditions = set_condition(
            conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
            update_time=True,
        )
    else:
        conditions = set_condition(
            conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
            update_time=True,
        )
    rs_name = (new_rs or {}).get("metadata", {}).get("name", "")
    progressing = condition(conditions, "Progressing")
    counts_changed = any(
        old_status.get(k, 0) != status[k] for k in ("updatedReplicas", "readyReplicas", "availableReplicas", "replicas")
    )
    complete = updated == desired and replicas == desired and available == desired
    if spec.get("paused"):
        conditions = set_condition(
            conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now, update_time=True
        )
    elif complete and new_rs is not None:
        conditions = set_condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
            now,
            update_time=True,
        )
    elif created_new:
        conditions = set_condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            f'Created new replica set "{rs_name}"',
            now,
            update_time=True,
        )
    elif (
        progressing is None
        or counts_changed
        or progressing.get("reason") in ("NewReplicaSetAvailable", "DeploymentPaused")
        or (progressing.get("reason") == "ProgressDeadlineExceeded" and counts_changed)
    ):
        conditions = set_condition(
            conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{rs_name}" is progressing.',
            now,
            update_time=True,
            touch=True,
        )
    progressing = condition(conditions, "Progressing")
    deadline = spec.get("progressDeadlineSeconds")
    if (
        progressing is not None
        and progressing.get("status") == "True"
        and not complete
        and deadline is not None
        and progressing.get("reason") != "NewReplicaSetAvailable"
    ):
        since = parse_time(progressing.get("lastUpdateTime"))
        if since is not None and parse_time(now) is not None and parse_time(now) - since >= deadline:  # type: ignore
            conditions = set_condition(
                conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                now,
                update_time=True,
            )
    # upstream lists Available before Progressing once both exist
    conditions.sort(key=lambda c: {"Available": 0, "Progressing": 1}.get(c.get("type", ""), 2))
    status["conditions"] = conditions
    if old_status.get("collisionCount"):
        status["collisionCount"] = old_status["collisionCount"]
    return compact(status, keep=("conditions",))


def progress_deadline_at(deployment: dict[str, Any]) -> float | None:
    """When a progressing deployment would time out (None when complete, failed or unbounded)."""
    spec = deployment.get("spec") or {}
    progressing = condition((deployment.get("status") or {}).get("conditions") or [], "Progressing")
    deadline = spec.get("progressDeadlineSeconds")
    if progressing is None or deadline is None or progressing.get("status") != "True":
        return None
    if progressing.get("reason") == "NewReplicaSetAvailable":
        return None
    since = parse_time(progressing.get("lastUpdateTime"))
    return None if since is None else since + deadline


def replicaset_status(rs: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    ready = sum(1 for p in pods if pod_ready(p))
    status = {
        "replicas": len(pods),
        "fullyLabeledReplicas": len(pods),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": rs["metadata"].get("generation", 1),
    }
    return compact(status, keep=("replicas",))
