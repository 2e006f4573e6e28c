"""Workload simulation: the controllers a real cluster runs (deployment, replicaset, statefulset,
daemonset, job, cronjob, scheduler, kubelet, volume binder), reduced to what makes workload
status progress the way health checks observe it.

Every controller is a reconcile function ``(sim, namespace, name) -> None`` reading the current
object from the store and writing what should change. A store listener maps each write to the
reconciles it affects (the object itself and its controlling owner) and schedules them on the
event loop; pods move from creating to running after ``delay`` seconds. Writes go through the
store with upstream's field manager names, so managedFields look like a real cluster's, and
status goes through the status subresource.

LoadBalancer Services and Ingresses get an address in ``status.loadBalancer.ingress``;
PodDisruptionBudgets get the disruption controller's counts; HorizontalPodAutoscalers keep their
target within ``[minReplicas, maxReplicas]`` (metrics always read on target).

The failure switch: a container image whose name contains ``fail`` never pulls (the pod stays
Pending in ImagePullBackOff, so a Deployment ends in ProgressDeadlineExceeded); a Job's pod with
such an image exits with an error, so the Job fails once its backoffLimit is used up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tether.sandbox import defaults, errors, managed
from tether.sandbox.resources import ResourceType
from tether.sandbox.store import Store, WatchEvent, clone

log = logging.getLogger(__name__)

NODE = "sandbox-node"
NODE_IP = "172.18.0.2"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KUBELET = "kubelet"

Reconciler = Callable[["Simulation", str, str], None]

#: storage key -> controller name of the kinds the simulation reconciles
KINDS: dict[tuple[str, str], str] = {
    ("apps", "deployments"): "deployment",
    ("apps", "replicasets"): "replicaset",
    ("apps", "statefulsets"): "statefulset",
    ("apps", "daemonsets"): "daemonset",
    ("batch", "jobs"): "job",
    ("batch", "cronjobs"): "cronjob",
    ("", "pods"): "pod",
    ("", "persistentvolumeclaims"): "pvc",
    ("", "services"): "service",
    ("networking.k8s.io", "ingresses"): "ingress",
    ("policy", "poddisruptionbudgets"): "pdb",
    ("autoscaling", "horizontalpodautoscalers"): "hpa",
}
_OWNER_KINDS = {
    ("apps/v1", "ReplicaSet"): "replicaset",
    ("apps/v1", "Deployment"): "deployment",
    ("apps/v1", "StatefulSet"): "statefulset",
    ("apps/v1", "DaemonSet"): "daemonset",
    ("batch/v1", "Job"): "job",
    ("batch/v1", "CronJob"): "cronjob",
}


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels; empty selects nothing."""
    if not selector:
        return False
    labels = labels or {}
    match = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expr in expressions:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


class Simulation:
    def __init__(self, store: Store, *, delay: float = 1.0, node: str = NODE, events: bool = True) -> None:
        from tether.sandbox.simulation import autoscaling, batch, network, pods, workloads

        self.store = store
        self.delay = delay
        self.node = node
        self.events = events  # record Events as the upstream controllers do
        self.reconcilers: dict[str, Reconciler] = {
            "deployment": workloads.reconcile_deployment,
            "replicaset": workloads.reconcile_replicaset,
            "statefulset": workloads.reconcile_statefulset,
            "daemonset": workloads.reconcile_daemonset,
            "job": batch.reconcile_job,
            "cronjob": batch.reconcile_cronjob,
            "pod": pods.reconcile_pod,
            "pvc": pods.reconcile_pvc,
            "service": network.reconcile_service,
            "ingress": network.reconcile_ingress,
            "pdb": network.reconcile_pdb,
            "hpa": autoscaling.reconcile_hpa,
        }
        self._timers: dict[tuple[str, str, str], tuple[float, asyncio.TimerHandle | None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.errors = 0
        #: (kind, uid) -> loop time an object entered its current stage (pods, claims)
        self.since: dict[tuple[str, str], float] = {}
        #: controller uid -> (storage key, namespace, name) of the objects it controls
        self.children: dict[str, set[tuple[tuple[str, str], str, str]]] = {}
        for key, bucket in store.objects.items():
            for (namespace, name), obj in bucket.items():
                self._index(key, namespace, name, obj, add=True)
        store.listeners.append(self._on_event)

    def _index(self, key: tuple[str, str], namespace: str, name: str, obj: dict[str, Any] | None, add: bool) -> None:
        ref = controller_ref(obj) if obj is not None else None
        uid = (ref or {}).get("uid")
        if not uid:
            return
        if add:
            self.children.setdefault(uid, set()).add((key, namespace, name))
        else:
            children = self.children.get(uid)
            if children is not None:
                children.discard((key, namespace, name))
                if not children:
                    del self.children[uid]

    # -- scheduling ------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Attach to the running loop and reconcile everything already stored (after a restart)."""
        self._loop = loop or asyncio.get_running_loop()
        for key, controller in KINDS.items():
            for namespace, name in list(self.store.objects.get(key, {})):
                self.schedule(controller, namespace, name)

    def _on_event(self, event: WatchEvent) -> None:
        name = event.object["metadata"]["name"]
        if event.old is not None:
            self._index(event.key, event.namespace, name, event.old, add=False)
        self._index(event.key, event.namespace, name, event.object, add=event.type != "DELETED")
        controller = KINDS.get(event.key)
        if controller is None:
            return
        meta = event.object["metadata"]
        if event.type != "DELETED":
            self.schedule(controller, event.namespace, meta["name"])
        else:
            self.since.pop((controller, meta.get("uid", "")), None)
        if event.key == ("", "pods"):  # disruption budgets count the pods of their namespace
            for ns, budget in self.store.objects.get(("policy", "poddisruptionbudgets"), {}):
                if ns == event.namespace:
                    self.schedule("pdb", ns, budget)
        if event.key in (("apps", "deployments"), ("apps", "statefulsets"), ("apps", "replicasets")):
            for (ns, hpa_name), hpa in self.store.objects.get(("autoscaling", "horizontalpodautoscalers"), {}).items():
                target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
                if ns == event.namespace and target.get("name") == name:
                    self.schedule("hpa", ns, hpa_name)
        ref = controller_ref(event.object)
        if ref is not None:
            owner = _OWNER_KINDS.get((ref.get("apiVersion"), ref.get("kind")))
            if owner is not None:
                self.schedule(owner, event.namespace, ref.get("name", ""))

    def schedule(self, controller: str, namespace: str, name: str, after: float = 0.0) -> None:
        """Reconcile ``controller`` for an object ``after`` seconds from now (coalesced: an
        earlier pending reconcile of the same object covers a later one)."""
        loop = self._loop
        if loop is None:
            try:
                loop = self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._timers.setdefault((controller, namespace, name), (0.0, None))
                return
        key = (controller, namespace, name)
        when = loop.time() + max(after, 0.0)
        pending = self._timers.get(key)
        if pending is not None and pending[1] is not None and pending[0] <= when:
            return
        if pending is not None and pending[1] is not None:
            pending[1].cancel()
        handle = loop.call_later(max(after, 0.0), self._fire, key) if after > 0 else loop.call_soon(self._fire, key)
        self._timers[key] = (when, handle)  # type: ignore[assignment]

    def _fire(self, key: tuple[str, str, str]) -> None:
        self._timers.pop(key, None)
        self.run(*key)

    def run(self, controller: str, namespace: str, name: str) -> None:
        try:
            self.reconcilers[controller](self, namespace, name)
        except errors.ApiError as error:
            if error.code == 409 and error.reason == "AlreadyExists":  # a name taken by a foreign object
                log.warning("%s controller on %s/%s: %s", controller, namespace, name, error.message)
                self.schedule(controller, namespace, name, max(self.delay, 1.0))
            elif error.code == 409:  # someone wrote in between: try again on the next round
                self.schedule(controller, namespace, name, 0.05)
            elif error.code == 403 and "being terminated" in error.message:
                pass  # the namespace is going away: nothing to create there any more
            elif error.code != 404:
                self.errors += 1
                log.warning("%s controller failed on %s/%s: %s", controller, namespace, name, error.message)
        except Exception:  # a controller bug must not stop the others
            self.errors += 1
            log.exception("%s controller failed on %s/%s", controller, namespace, name)

    def run_pending(self, rounds: int = 50) -> None:
        """Without a loop (unit tests): run queued reconciles until nothing is left."""
        for _ in range(rounds):
            if not self._timers:
                return
            keys = list(self._timers)
            self._timers.clear()
            for key in keys:
                self.run(*key)

    # -- store access ----------------------------------------------------------------------------

    def rt(self, group: str, plural: str) -> ResourceType:
        rt = self.store.registry.storage_type(group, plural)
        assert rt is not None, (group, plural)
        return rt

    def get(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.objects.get((group, plural), {}).get((namespace, name))

    def owned(self, group: str, plural: str, namespace: str, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """Objects in ``namespace`` controlled by ``owner`` (by uid), oldest first."""
        uid = owner["metadata"]["uid"]
        bucket = self.store.objects.get((group, plural), {})
        items = [
            bucket[(ns, name)]
            for key, ns, name in self.children.get(uid, ())
            if key == (group, plural) and ns == namespace and (ns, name) in bucket
        ]
        return sorted(items, key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))

    def adopt(
        self, group: str, plural: str, namespace: str, owner: dict[str, Any], selector: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """Take over objects without a controller that ``owner``'s selector matches (as upstream
        controllers adopt orphans, e.g. after a delete with propagationPolicy=Orphan)."""
        adopted = []
        for (ns, _), obj in list(self.store.objects.get((group, plural), {}).items()):
            meta = obj["metadata"]
            if ns != namespace or controller_ref(obj) is not None or meta.get("deletionTimestamp"):
                continue
            if not selector_matches(selector, meta.get("labels")):
                continue
            new = clone(obj)
            new["metadata"]["ownerReferences"] = [*(meta.get("ownerReferences") or []), owner_reference(owner)]
            adopted.append(self.update(group, plural, obj, new))
        return adopted

    def create(self, group: str, plural: str, obj: dict[str, Any], manager: str = CONTROLLER_MANAGER) -> dict[str, Any]:
        rt = self.rt(group, plural)
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
        defaults.apply_defaults(rt.kind, obj)
        status = obj.pop("status", None)
        obj = managed.record_update(rt, None, obj, manager)
        if status is not None:
            obj["status"] = status
        return self.store.create(rt, obj)

    def update(
        self,
        group: str,
        plural: str,
        live: dict[str, Any],
        new: dict[str, Any],
        manager: str = CONTROLLER_MANAGER,
        subresource: str = "",
    ) -> dict[str, Any]:
        rt = self.rt(group, plural)
        if subresource == "status" and new.get("status") == live.get("status"):
            return live
        if subresource == "" and {k: v for k, v in new.items() if k != "status"} == {
            k: v for k, v in live.items() if k != "status"
        }:
            return live
        new = managed.record_update(rt, live, new, manager, subresource)
        return self.store.update(rt, new, subresource=subresource)

    def write_status(
        self, group: str, plural: str, live: dict[str, Any], status: dict[str, Any], manager: str = CONTROLLER_MANAGER
    ) -> dict[str, Any]:
        if live.get("status") == status:
            return live
        new = clone(live)
        new["status"] = status
        return self.update(group, plural, live, new, manager, "status")

    def delete(self, group: str, plural: str, obj: dict[str, Any], propagation: str = "Background") -> None:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return
        self.store.delete(
            self.rt(group, plural),
            meta.get("namespace", ""),
            meta["name"],
            propagation=propagation,
            preconditions={"uid": meta["uid"]},
        )


def install(store: Store, *, delay: float = 1.0, node: str = NODE, events: bool = True) -> Simulation:
    """Run the simulated controllers on ``store``; call ``start()`` once the event loop runs."""
    return Simulation(store, delay=delay, node=node, events=events)
