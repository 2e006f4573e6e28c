"""The resource tree of one app: its objects, and below them what they own, down to Pods.

The app's objects are the entries of its inventory (the ConfigMap the engine keeps); each kind
in each namespace is read with one list by the app's labels rather than one get per object, so
an app of a thousand objects costs a handful of requests. ReplicaSets, Pods and Jobs carry no app
label: they are found by ownerReferences (uid) among those of the namespaces the app's workloads
live in. Everything is read as the signed-in user; a kind the user may not list is reported, not
hidden.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tether.engine import APP_LABEL, APP_NAMESPACE_LABEL, AppIdentity, read_inventory
from tether.engine import health as object_health
from tether.engine.health_rules import HealthRules
from tether.errors import KubeError
from tether.kube import Forbidden, Kube, ResourceInfo
from tether.model import ObjectRef

#: kinds whose children are looked for, and the kinds those children are
_CHILD_KINDS = {
    ("apps", "Deployment"): (("apps/v1", "ReplicaSet"),),
    ("apps", "ReplicaSet"): (("v1", "Pod"),),
    ("apps", "StatefulSet"): (("v1", "Pod"),),
    ("apps", "DaemonSet"): (("v1", "Pod"),),
    ("batch", "CronJob"): (("batch/v1", "Job"),),
    ("batch", "Job"): (("v1", "Pod"),),
}
_CONCURRENCY = 8


@dataclass
class Node:
    kind: str
    api_version: str
    namespace: str
    name: str
    health: str  # Healthy / Progressing / Degraded / Terminating / Missing / Unknown
    reason: str
    uid: str = ""
    children: list[Node] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "-".join(p for p in ("obj", self.kind.lower(), self.namespace, self.name) if p)


@dataclass
class Tree:
    roots: list[Node]
    problems: list[str]  # what could not be read, and why
    count: int  # objects in the tree, children included

    def degraded(self) -> list[Node]:
        out: list[Node] = []

        def walk(nodes: list[Node]) -> None:
            for node in nodes:
                if node.health == "Degraded":
                    out.append(node)
                walk(node.children)

        walk(self.roots)
        return out


def _node(obj: dict[str, Any], rules: HealthRules | None = None) -> Node:
    meta = obj.get("metadata") or {}
    result = object_health.compute(obj, rules)
    return Node(
        obj.get("kind", ""),
        obj.get("apiVersion", ""),
        meta.get("namespace", ""),
        meta.get("name", ""),
        result.health.value,
        result.message,
        meta.get("uid", ""),
    )


def _missing(ref: ObjectRef) -> Node:
    return Node(ref.kind, ref.api_version, ref.namespace, ref.name, "Missing", "in the inventory, not in the cluster")


async def build_tree(kube: Kube, namespace: str, name: str, rules: HealthRules | None = None) -> Tree:
    """``rules``: the app's own CEL health checks (``spec.healthCheckExprs``), so the tree judges its
    objects as the controller does (a rules file given to the controller is not known here)."""
    identity = AppIdentity(namespace, name)
    problems: list[str] = []
    try:
        inventory = await read_inventory(kube, identity)
    except Forbidden as error:
        return Tree([], [f"cannot read the app's inventory: {error}"], 0)
    groups: dict[tuple[str, str, str], list[ObjectRef]] = defaultdict(list)
    for ref in inventory.entries:
        groups[(ref.api_version, ref.kind, ref.namespace)].append(ref)
    selector = f"{APP_LABEL}={name},{APP_NAMESPACE_LABEL}={namespace}"
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def listed(api_version: str, kind: str, ns: str, label_selector: str | None) -> list[dict[str, Any]]:
        async with gate:
            try:
                info: ResourceInfo = await kube.info(api_version, kind)
                return await kube.list(info, ns if info.namespaced else None, label_selector=label_selector)
            except KubeError as error:
                where = f" in {ns}" if ns else ""
                problems.append(f"cannot list {kind}{where}: {error}")
                return []

    keys = sorted(groups)
    found = await asyncio.gather(*(listed(av, kind, ns, selector) for av, kind, ns in keys))
    roots: list[Node] = []
    parents: dict[tuple[str, str, str], list[Node]] = defaultdict(list)  # (child apiVersion, kind, ns) -> parents
    for (av, kind, ns), objects in zip(keys, found, strict=True):
        by_name = {(o.get("metadata") or {}).get("name"): o for o in objects}
        for ref in sorted(groups[(av, kind, ns)], key=lambda r: r.name):
            obj = by_name.get(ref.name)
            node = _node(obj, rules) if obj is not None else _missing(ref)
            roots.append(node)
            _register(node, parents)
    await _attach_children(parents, listed, rules)
    roots.sort(key=lambda n: (_KIND_ORDER.get(n.kind, 50), n.kind, n.namespace, n.name))
    return Tree(roots, sorted(problems), _count(roots))


_KIND_ORDER = {
    "Namespace": 0,
    "CustomResourceDefinition": 1,
    "ServiceAccount": 2,
    "Secret": 3,
    "ConfigMap": 4,
    "Service": 5,
    "Deployment": 6,
    "StatefulSet": 7,
    "DaemonSet": 8,
    "CronJob": 9,
    "Job": 10,
}


def _register(node: Node, parents: dict[tuple[str, str, str], list[Node]]) -> None:
    group = node.api_version.rpartition("/")[0] if "/" in node.api_version else ""
    for child in _CHILD_KINDS.get((group, node.kind), ()):
        if node.uid:
            parents[(child[0], child[1], node.namespace)].append(node)


async def _attach_children(
    parents: dict[tuple[str, str, str], list[Node]], listed: Any, rules: HealthRules | None
) -> None:
    """Level by level (Deployment -> ReplicaSet -> Pod): each level is one list per kind and namespace."""
    while parents:
        keys = sorted(parents)
        found = await asyncio.gather(*(listed(av, kind, ns, None) for av, kind, ns in keys))
        deeper: dict[tuple[str, str, str], list[Node]] = defaultdict(list)
        for key, objects in zip(keys, found, strict=True):
            by_uid = {p.uid: p for p in parents[key]}
            for obj in sorted(objects, key=lambda o: (o.get("metadata") or {}).get("name", "")):
                owners = (obj.get("metadata") or {}).get("ownerReferences") or []
                parent = next((by_uid[o["uid"]] for o in owners if o.get("uid") in by_uid), None)
                if parent is not None:
                    child = _node(obj, rules)
                    parent.children.append(child)
                    _register(child, deeper)
        parents = deeper


def _count(nodes: list[Node]) -> int:
    return sum(1 + _count(n.children) for n in nodes)
