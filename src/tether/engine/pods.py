"""Why a workload is not healthy, read from its Pods: what a person looks for first.

A Deployment stuck on a bad image only says "available replicas: 0/1"; its Pods say
``ImagePullBackOff``. When a wait ends unhealthy, the engine looks at the Pods a workload
selects and names the first container that is waiting or failed, with its reason.
"""

from __future__ import annotations

from typing import Any

#: waiting reasons that are part of a normal start, not a problem
_STARTING = frozenset({"ContainerCreating", "PodInitializing"})
WORKLOAD_KINDS = frozenset(
    {("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("apps", "ReplicaSet"), ("batch", "Job")}
)


def pod_problem(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(reason, text) of the first container in ``pods`` that is waiting or failed; None if none is."""
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name") or ""):
        name = (pod.get("metadata") or {}).get("name") or "?"
        status = pod.get("status") or {}
        statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        for container in statuses:
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
            reason = waiting.get("reason") or ""
            if reason and reason not in _STARTING:
                detail = f": {waiting['message']}" if waiting.get("message") else ""
                return reason, f"pod {name}: container {container.get('name')} waiting: {reason}{detail}"
            if terminated and terminated.get("exitCode", 0) != 0:
                reason = terminated.get("reason") or "Error"
                return reason, (
                    f"pod {name}: container {container.get('name')} exited {terminated.get('exitCode')} ({reason})"
                )
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                reason = condition.get("reason") or "Unschedulable"
                return reason, f"pod {name}: not scheduled: {condition.get('message') or reason}"
    return None


def selector_text(obj: dict[str, Any]) -> str:
    """The workload's ``spec.selector.matchLabels`` as a label selector ("" when it has none)."""
    labels = (((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


async def workload_pod_problem(kube: Any, obj: dict[str, Any]) -> tuple[str, str] | None:
    """Look at the Pods ``obj`` selects (one LIST) and name what keeps them from running."""
    selector = selector_text(obj)
    namespace = (obj.get("metadata") or {}).get("namespace")
    if not selector or not namespace:
        return None
    pods = await kube.list(await kube.info("v1", "Pod"), namespace, label_selector=selector)
    return pod_problem(pods)
