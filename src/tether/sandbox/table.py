"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks every server for."""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Callable
from typing import Any

from tether.sandbox.resources import ResourceType

Column = tuple[str, str, int, Callable[[dict[str, Any]], Any]]  # name, type, priority, cell


def age(timestamp: str | None) -> str:
    """kubectl's short human duration (``5s``, ``3m20s``, ``4h``, ``2d3h``)."""
    if not timestamp:
        return "<unknown>"
    try:
        then = calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return "<invalid>"
    seconds = max(0, int(time.time() - then))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d" if days < 365 * 2 else f"{days // 365}y"


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _spec(*path: str, default: Any = "<none>") -> Callable[[dict[str, Any]], Any]:
    def cell(obj: dict[str, Any]) -> Any:
        value = _get(obj, *path)
        return default if value is None else value

    return cell


def _count(*path: str) -> Callable[[dict[str, Any]], int]:
    return lambda obj: len(_get(obj, *path) or [])


def _ready(obj: dict[str, Any]) -> str:
    return f"{_get(obj, 'status', 'readyReplicas') or 0}/{_get(obj, 'spec', 'replicas') or 0}"


def _pod_ready(obj: dict[str, Any]) -> str:
    statuses = _get(obj, "status", "containerStatuses") or []
    total = len(_get(obj, "spec", "containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(obj: dict[str, Any]) -> str:
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    for status in _get(obj, "status", "containerStatuses") or []:
        waiting = _get(status, "state", "waiting", "reason")
        if waiting:
            return waiting
    return _get(obj, "status", "reason") or _get(obj, "status", "phase") or "Pending"


def _ports(obj: dict[str, Any]) -> str:
    ports = _get(obj, "spec", "ports") or []
    shown = [
        f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
        for p in ports
    ]
    return ",".join(shown) or "<none>"


def _selector(obj: dict[str, Any]) -> str:
    selector = _get(obj, "spec", "selector") or {}
    labels = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if isinstance(v, str)) or "<none>"


def _containers(field: str) -> Callable[[dict[str, Any]], str]:
    return lambda obj: (
        ",".join(str(c.get(field, "")) for c in _get(obj, "spec", "template", "spec", "containers") or []) or "<none>"
    )


def _external_ip(obj: dict[str, Any]) -> str:
    ingress = _get(obj, "status", "loadBalancer", "ingress") or []
    ips = [i.get("ip") or i.get("hostname") for i in ingress] + list(_get(obj, "spec", "externalIPs") or [])
    if ips:
        return ",".join(str(i) for i in ips)
    return "<pending>" if _get(obj, "spec", "type") == "LoadBalancer" else "<none>"


def _job_status(obj: dict[str, Any]) -> str:
    for condition in _get(obj, "status", "conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed", "Suspended"):
            return condition["type"]
    return "Running"


def _age(obj: dict[str, Any]) -> str:
    return age(_get(obj, "metadata", "creationTimestamp"))


_NAME: Column = ("Name", "string", 0, lambda o: o["metadata"]["name"])
_AGE: Column = ("Age", "string", 0, _age)
_DATA: Column = ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))

BUILTIN_COLUMNS: dict[str, list[Column]] = {
    "Namespace": [_NAME, ("Status", "string", 0, _spec("status", "phase", default="Active")), _AGE],
    "ConfigMap": [_NAME, _DATA, _AGE],
    "Secret": [_NAME, ("Type", "string", 0, _spec("type", default="Opaque")), _DATA, _AGE],
    "Service": [
        _NAME,
        ("Type", "string", 0, _spec("spec", "type")),
        ("Cluster-IP", "string", 0, _spec("spec", "clusterIP")),
        ("External-IP", "string", 0, _external_ip),
        ("Port(s)", "string", 0, _ports),
        _AGE,
        ("Selector", "string", 1, _selector),
    ],
    "ServiceAccount": [_NAME, ("Secrets", "string", 0, _count("secrets")), _AGE],
    "Pod": [
        _NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        (
            "Restarts",
            "string",
            0,
            lambda o: str(sum(s.get("restartCount", 0) for s in _get(o, "status", "containerStatuses") or [])),
        ),
        _AGE,
        ("IP", "string", 1, _spec("status", "podIP")),
        ("Node", "string", 1, _spec("spec", "nodeName")),
    ],
    "PersistentVolumeClaim": [
        _NAME,
        ("Status", "string", 0, _spec("status", "phase", default="Pending")),
        ("Volume", "string", 0, _spec("spec", "volumeName", default="")),
        ("Capacity", "string", 0, _spec("status", "capacity", "storage", default="")),
        ("Access Modes", "string", 0, lambda o: ",".join(_get(o, "spec", "accessModes") or [])),
        ("StorageClass", "string", 0, _spec("spec", "storageClassName", default="<unset>")),
        _AGE,
    ],
    "Endpoints": [
        _NAME,
        (
            "Endpoints",
            "string",
            0,
            lambda o: (
                ",".join(
                    f"{a.get('ip')}:{p.get('port')}"
                    for s in o.get("subsets") or []
                    for a in s.get("addresses") or []
                    for p in s.get("ports") or [{}]
                )
                or "<none>"
            ),
        ),
        _AGE,
    ],
    "Deployment": [
        _NAME,
        ("Ready", "string", 0, _ready),
        ("Up-to-date", "integer", 0, _spec("status", "updatedReplicas", default=0)),
        ("Available", "integer", 0, _spec("status", "availableReplicas", default=0)),
        _AGE,
        ("Containers", "string", 1, _containers("name")),
        ("Images", "string", 1, _containers("image")),
        ("Selector", "string", 1, _selector),
    ],
    "StatefulSet": [
        _NAME,
        ("Ready", "string", 0, _ready),
        _AGE,
        ("Containers", "string", 1, _containers("name")),
        ("Images", "string", 1, _containers("image")),
    ],
    "ReplicaSet": [
        _NAME,
        ("Desired", "integer", 0, _spec("spec", "replicas", default=0)),
        ("Current", "integer", 0, _spec("status", "replicas", default=0)),
        ("Ready", "integer", 0, _spec("status", "readyReplicas", default=0)),
        _AGE,
    ],
    "DaemonSet": [
        _NAME,
        ("Desired", "integer", 0, _spec("status", "desiredNumberScheduled", default=0)),
        ("Current", "integer", 0, _spec("status", "currentNumberScheduled", default=0)),
        ("Ready", "integer", 0, _spec("status", "numberReady", default=0)),
        ("Up-to-date", "integer", 0, _spec("status", "updatedNumberScheduled", default=0)),
        ("Available", "integer", 0, _spec("status", "numberAvailable", default=0)),
        (
            "Node Selector",
            "string",
            0,
            lambda o: (
                ",".join(f"{k}={v}" for k, v in (_get(o, "spec", "template", "spec", "nodeSelector") or {}).items())
                or "<none>"
            ),
        ),
        _AGE,
    ],
    "Job": [
        _NAME,
        ("Status", "string", 0, _job_status),
        (
            "Completions",
            "string",
            0,
            lambda o: f"{_get(o, 'status', 'succeeded') or 0}/{_get(o, 'spec', 'completions') or 1}",
        ),
        _AGE,
    ],
    "CronJob": [
        _NAME,
        ("Schedule", "string", 0, _spec("spec", "schedule")),
        ("Timezone", "string", 0, _spec("spec", "timeZone")),
        ("Suspend", "boolean", 0, _spec("spec", "suspend", default=False)),
        ("Active", "integer", 0, _count("status", "active")),
        (
            "Last Schedule",
            "string",
            0,
            lambda o: age(_get(o, "status", "lastScheduleTime")) if _get(o, "status", "lastScheduleTime") else "<none>",
        ),
        _AGE,
    ],
    "Ingress": [
        _NAME,
        ("Class", "string", 0, _spec("spec", "ingressClassName")),
        ("Hosts", "string", 0, lambda o: ",".join(r.get("host", "*") for r in _get(o, "spec", "rules") or []) or "*"),
        (
            "Address",
            "string",
            0,
            lambda o: ",".join(
                i.get("ip") or i.get("hostname", "") for i in _get(o, "status", "loadBalancer", "ingress") or []
            ),
        ),
        ("Ports", "string", 0, lambda o: "80, 443" if _get(o, "spec", "tls") else "80"),
        _AGE,
    ],
    "RoleBinding": [
        _NAME,
        ("Role", "string", 0, lambda o: f"{_get(o, 'roleRef', 'kind')}/{_get(o, 'roleRef', 'name')}"),
        _AGE,
    ],
    "ClusterRoleBinding": [
        _NAME,
        ("Role", "string", 0, lambda o: f"{_get(o, 'roleRef', 'kind')}/{_get(o, 'roleRef', 'name')}"),
        _AGE,
    ],
    "Lease": [_NAME, ("Holder", "string", 0, _spec("spec", "holderIdentity", default="")), _AGE],
    "HorizontalPodAutoscaler": [
        _NAME,
        (
            "Reference",
            "string",
            0,
            lambda o: f"{_get(o, 'spec', 'scaleTargetRef', 'kind')}/{_get(o, 'spec', 'scaleTargetRef', 'name')}",
        ),
        ("MinPods", "string", 0, _spec("spec", "minReplicas", default=1)),
        ("MaxPods", "string", 0, _spec("spec", "maxReplicas")),
        ("Replicas", "string", 0, _spec("status", "currentReplicas", default=0)),
        _AGE,
    ],
    "PodDisruptionBudget": [
        _NAME,
        ("Min Available", "string", 0, _spec("spec", "minAvailable", default="N/A")),
        ("Max Unavailable", "string", 0, _spec("spec", "maxUnavailable", default="N/A")),
        ("Allowed Disruptions", "integer", 0, _spec("status", "disruptionsAllowed", default=0)),
        _AGE,
    ],
    "Event": [
        (
            "Last Seen",
            "string",
            0,
            lambda o: age(o.get("lastTimestamp") or o.get("eventTime") or _get(o, "metadata", "creationTimestamp")),
        ),
        ("Type", "string", 0, _spec("type", default="")),
        ("Reason", "string", 0, _spec("reason", default="")),
        (
            "Object",
            "string",
            0,
            lambda o: (
                f"{str(_get(o, 'involvedObject', 'kind') or _get(o, 'regarding', 'kind') or '').lower()}/"
                f"{_get(o, 'involvedObject', 'name') or _get(o, 'regarding', 'name') or ''}"
            ),
        ),
        ("Message", "string", 0, lambda o: o.get("message") or o.get("note") or ""),
    ],
    "CustomResourceDefinition": [_NAME, ("Created At", "date", 0, _spec("metadata", "creationTimestamp"))],
}
for _kind in ("Role", "ClusterRole"):
    BUILTIN_COLUMNS[_kind] = [_NAME, ("Created At", "date", 0, _spec("metadata", "creationTimestamp"))]


# -- CRD printer columns: the JSONPath subset additionalPrinterColumns use ---------------------

_TOKEN = re.compile(r"\.([A-Za-z0-9_\-$]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*[\"']([^\"']*)[\"']\)\]")


def json_path(obj: Any, path: str) -> list[Any]:
    current = [obj]
    expression = path.strip().removeprefix("{").removesuffix("}")
    for match in _TOKEN.finditer(expression):
        field, index, filter_key, filter_value = match.groups()
        nxt: list[Any] = []
        for value in current:
            if field is not None and isinstance(value, dict) and field in value:
                nxt.append(value[field])
            elif index is not None and isinstance(value, list):
                if index == "*":
                    nxt.extend(value)
                elif int(index) < len(value):
                    nxt.append(value[int(index)])
            elif filter_key is not None and isinstance(value, list):
                nxt.extend(v for v in value if str(_get(v, *filter_key.split("."))) == filter_value)
        current = nxt
    return current


def _crd_column(spec: dict[str, Any]) -> Column:
    column_type, path = spec.get("type", "string"), spec.get("jsonPath", "")

    def cell(obj: dict[str, Any]) -> Any:
        found = json_path(obj, path)
        if not found:
            return None
        value = found[0]
        if column_type == "date":
            return age(value) if isinstance(value, str) else value
        if isinstance(value, dict | list):
            return json.dumps(value)
        return value

    return (spec.get("name", ""), column_type, spec.get("priority", 0), cell)


def columns(rt: ResourceType) -> list[Column]:
    cached = rt.cache.get("columns")
    if cached is None:
        if rt.crd:
            custom = [_crd_column(c) for c in rt.printer_columns]
            has_age = any(c.get("jsonPath") == ".metadata.creationTimestamp" for c in rt.printer_columns)
            cached = [_NAME, *custom] + ([] if has_age else [_AGE])
        else:
            cached = BUILTIN_COLUMNS.get(rt.kind, [_NAME, _AGE])
        rt.cache["columns"] = cached
    return cached


def render(
    rt: ResourceType, items: list[dict[str, Any]], rv: int, include_object: str = "Metadata", *, headers: bool = True
) -> dict[str, Any]:
    cols = columns(rt)
    rows = []
    for obj in items:
        cells = []
        for _, _, _, cell in cols:
            try:
                cells.append(cell(obj))
            except (TypeError, AttributeError, KeyError, ValueError):
                cells.append(None)
        row: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {}),
            }
        rows.append(row)
    table: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(rv)}}
    if headers:
        table["columnDefinitions"] = [
            {
                "name": name,
                "type": "string" if kind == "date" else kind,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": priority,
            }
            for name, kind, priority, _ in cols
        ]
    table["rows"] = rows
    return table
