"""Server-side defaults of the built-in kinds, as kube-apiserver fills them in.

Two parts, both idempotent (running them twice changes nothing):

* ``apply_defaults(kind, obj)``: the pure defaulting functions of the upstream API types
  (``SetDefaults_*`` of core, apps, batch, autoscaling, networking) plus the object-level
  additions upstream admission makes to bare Pods (service account, default tolerations).
* ``install(store)``: an admission hook on the store that runs those defaults on every write and
  adds what needs the store: the Job controller-uid selector and labels (need the uid), Service
  cluster IPs and node ports (unique among stored Services, so they survive a restart), and
  preservation of allocated values when an update or apply omits them.

A GitOps diff compares what it applied with what the server returns: every default a real API
server adds must be here, or the diff shows drift that a real cluster would not.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from tether.sandbox import errors
from tether.sandbox.resources import ResourceType
from tether.sandbox.store import Store

#: the service CIDR of a kubeadm cluster; .1 (kubernetes) and .10 (kube-dns) stay reserved
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
_RESERVED_IPS = {"10.96.0.1", "10.96.0.10"}
NODE_PORT_RANGE = (30000, 32767)

JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def _set(obj: dict[str, Any], key: str, value: Any) -> Any:
    if obj.get(key) is None:
        obj[key] = value
    return obj[key]


def _dict(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def _items(value: Any) -> list[dict[str, Any]]:
    """The objects of a list field (defaults run before validation: tolerate any shape)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# -- pods and templates -------------------------------------------------------------------------


def image_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or an untagged image (no digest either), else ``IfNotPresent``."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _default_container(container: dict[str, Any]) -> None:
    _set(container, "terminationMessagePath", "/dev/termination-log")
    _set(container, "terminationMessagePolicy", "File")
    _set(container, "resources", {})
    image = container.get("image")
    if isinstance(image, str) and image:
        _set(container, "imagePullPolicy", image_pull_policy(image))
    for port in _items(container.get("ports")):
        _set(port, "protocol", "TCP")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = _dict(container, probe_key)
        if probe is not None:
            _set(probe, "timeoutSeconds", 1)
            _set(probe, "periodSeconds", 10)
            _set(probe, "successThreshold", 1)
            _set(probe, "failureThreshold", 3)
            http = _dict(probe, "httpGet")
            if http is not None:
                _set(http, "path", "/")
                _set(http, "scheme", "HTTP")
    for env in _items(container.get("env")):
        source = _dict(env, "valueFrom")
        field_ref = _dict(source, "fieldRef") if source else None
        if field_ref is not None:
            _set(field_ref, "apiVersion", "v1")


def _default_volume(volume: dict[str, Any]) -> None:
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = _dict(volume, key)
        if source is not None:
            _set(source, "defaultMode", 420)
    if _dict(volume, "hostPath") is not None:
        _set(volume["hostPath"], "type", "")
    if "emptyDir" in volume and volume["emptyDir"] is None:
        volume["emptyDir"] = {}


def default_pod_spec(spec: Any) -> None:
    """``SetDefaults_PodSpec`` and the per-container / per-volume defaults."""
    if not isinstance(spec, dict):
        return
    _set(spec, "restartPolicy", "Always")
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "schedulerName", "default-scheduler")
    _set(spec, "securityContext", {})
    _set(spec, "terminationGracePeriodSeconds", 30)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _items(spec.get(key)):
            _default_container(container)
    for volume in _items(spec.get("volumes")):
        _default_volume(volume)


def default_template(holder: dict[str, Any]) -> None:
    template = _dict(holder, "template")
    if template is not None:
        default_pod_spec(template.get("spec"))


def _default_pod(obj: dict[str, Any], spec: dict[str, Any]) -> None:
    """Pods also get what upstream's Pod defaulting and admission plugins add to the object."""
    default_pod_spec(spec)
    _set(spec, "enableServiceLinks", True)
    _set(spec, "preemptionPolicy", "PreemptLowerPriority")
    _set(spec, "priority", 0)
    account = _set(spec, "serviceAccountName", spec.get("serviceAccount") or "default")
    _set(spec, "serviceAccount", account)
    tolerations = spec.get("tolerations")
    if tolerations is None or isinstance(tolerations, list):
        tolerations = spec["tolerations"] = list(tolerations or [])
        present = {t.get("key") for t in _items(tolerations)}
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if key not in present:
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})


# -- workloads -----------------------------------------------------------------------------------


def _default_rolling_update(spec: dict[str, Any], key: str, **rolling_defaults: Any) -> None:
    """``spec[key]`` defaults to a RollingUpdate strategy whose ``rollingUpdate`` gets ``rolling_defaults``."""
    strategy = _set(spec, key, {})
    if isinstance(strategy, dict):
        _set(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = _set(strategy, "rollingUpdate", {})
            if isinstance(rolling, dict):
                for name, value in rolling_defaults.items():
                    _set(rolling, name, value)


def _default_deployment(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    _default_rolling_update(spec, "strategy", maxUnavailable="25%", maxSurge="25%")
    default_template(spec)


def _default_statefulset(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _set(spec, "podManagementPolicy", "OrderedReady")
    _set(spec, "revisionHistoryLimit", 10)
    _default_rolling_update(spec, "updateStrategy", partition=0)
    policy = _set(spec, "persistentVolumeClaimRetentionPolicy", {})
    if isinstance(policy, dict):
        _set(policy, "whenDeleted", "Retain")
        _set(policy, "whenScaled", "Retain")
    for claim in _items(spec.get("volumeClaimTemplates")):
        _set(claim, "apiVersion", "v1")
        _set(claim, "kind", "PersistentVolumeClaim")
        claim_spec = _dict(claim, "spec")
        if claim_spec is not None:
            _set(claim_spec, "volumeMode", "Filesystem")
        _set(claim, "status", {"phase": "Pending"})
    default_template(spec)


def _default_daemonset(spec: dict[str, Any]) -> None:
    _set(spec, "revisionHistoryLimit", 10)
    _default_rolling_update(spec, "updateStrategy", maxUnavailable=1, maxSurge=0)
    default_template(spec)


def _default_job(spec: dict[str, Any]) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    _set(spec, "parallelism", 1)
    _set(spec, "backoffLimit", 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    if spec.get("podFailurePolicy") is None:
        _set(spec, "podReplacementPolicy", "TerminatingOrFailed")
    else:
        _set(spec, "podReplacementPolicy", "Failed")
    default_template(spec)


def _default_cronjob(spec: dict[str, Any]) -> None:
    _set(spec, "concurrencyPolicy", "Allow")
    _set(spec, "suspend", False)
    _set(spec, "successfulJobsHistoryLimit", 3)
    _set(spec, "failedJobsHistoryLimit", 1)
    job = _dict(spec, "jobTemplate")
    job_spec = _dict(job, "spec") if job else None
    if job_spec is not None:
        default_template(job_spec)  # the Job-level defaults apply when the Job is created


# -- services, claims and the rest ---------------------------------------------------------------


def _default_service(spec: dict[str, Any]) -> None:
    kind = _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        config = _set(spec, "sessionAffinityConfig", {})
        if isinstance(config, dict):
            client = _set(config, "clientIP", {})
            if isinstance(client, dict):
                _set(client, "timeoutSeconds", 10800)
    if kind != "ExternalName":
        _set(spec, "internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)
    for port in _items(spec.get("ports")):
        _set(port, "protocol", "TCP")
        if port.get("targetPort") is None and port.get("port") is not None:
            port["targetPort"] = port["port"]


def _default_pvc(spec: dict[str, Any]) -> None:
    _set(spec, "volumeMode", "Filesystem")


def _default_hpa(spec: dict[str, Any]) -> None:
    _set(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]
    behavior = _dict(spec, "behavior")
    if behavior is None:
        return  # upstream fills the scaling rules only when a behavior is given
    up = _set(behavior, "scaleUp", {})
    if isinstance(up, dict):
        _set(up, "stabilizationWindowSeconds", 0)
        _set(up, "selectPolicy", "Max")
        _set(
            up,
            "policies",
            [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}],
        )
    down = _set(behavior, "scaleDown", {})
    if isinstance(down, dict):
        _set(down, "stabilizationWindowSeconds", 300)
        _set(down, "selectPolicy", "Max")
        _set(down, "policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])


def _default_rbac(obj: dict[str, Any], kind: str) -> None:
    subjects = obj.get("subjects") if kind in ("RoleBinding", "ClusterRoleBinding") else None
    for subject in _items(subjects):
        if subject.get("kind") in ("User", "Group"):
            _set(subject, "apiGroup", "rbac.authorization.k8s.io")


_SPEC_DEFAULTERS = {
    "Deployment": _default_deployment,
    "ReplicaSet": lambda spec: (_set(spec, "replicas", 1), default_template(spec)),
    "StatefulSet": _default_statefulset,
    "DaemonSet": _default_daemonset,
    "Job": _default_job,
    "CronJob": _default_cronjob,
    "Service": _default_service,
    "PersistentVolumeClaim": _default_pvc,
    "HorizontalPodAutoscaler": _default_hpa,
}


def apply_defaults(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Fill the upstream defaults of a built-in ``kind`` into ``obj`` in place (and return it)."""
    if kind == "Secret":
        _set(obj, "type", "Opaque")
    elif kind == "Namespace":
        spec = _set(obj, "spec", {})
        if isinstance(spec, dict):
            _set(spec, "finalizers", ["kubernetes"])
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        _default_rbac(obj, kind)
    spec = _dict(obj, "spec")
    if spec is None:
        return obj
    if kind == "Pod":
        _default_pod(obj, spec)
    elif kind in _SPEC_DEFAULTERS:
        _SPEC_DEFAULTERS[kind](spec)
    return obj


# -- store-time allocation -----------------------------------------------------------------------


def _field_immutable(kind: str, name: str, field: str, value: Any) -> errors.ApiError:
    return errors.invalid(
        kind,
        "",
        name,
        [{"reason": "FieldValueInvalid", "field": field, "message": f'Invalid value: "{value}": field is immutable'}],
    )


class Allocator:
    """Cluster IPs and node ports, unique among the Services in the store. Derived from the stored
    objects on every allocation, so a restart (or a dry run, which never stores) cannot hand out
    a value twice."""

    def __init__(self, store: Store, seed: int | None = None) -> None:
        self.store = store
        self._random = random.Random(seed)

    def _services(self) -> list[dict[str, Any]]:
        return [
            obj
            for (group, plural), bucket in self.store.objects.items()
            if (group, plural) == ("", "services")
            for obj in bucket.values()
        ]

    def used_ips(self) -> set[str]:
        used = set(_RESERVED_IPS)
        for svc in self._services():
            spec = svc.get("spec") or {}
            used.update(ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip)
        return used

    def cluster_ip(self) -> str:
        used = self.used_ips()
        base, size = int(SERVICE_CIDR.network_address), SERVICE_CIDR.num_addresses
        for _ in range(64):  # random like upstream, so addresses do not look sequential
            candidate = str(ipaddress.ip_address(base + self._random.randrange(1, size - 1)))
            if candidate not in used:
                return candidate
        for offset in range(1, size - 1):
            candidate = str(ipaddress.ip_address(base + offset))
            if candidate not in used:
                return candidate
        raise errors.ApiError(500, "InternalError", "range is full: no cluster IP left in " + str(SERVICE_CIDR))

    def node_port(self, taken: set[int]) -> int:
        used = set(taken)
        for svc in self._services():
            used.update(p.get("nodePort") for p in (svc.get("spec") or {}).get("ports") or [] if isinstance(p, dict))
        free = [p for p in range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1) if p not in used]
        if not free:
            raise errors.ApiError(500, "InternalError", "range is full: no node port left")
        return self._random.choice(free)


def _invalid_ip(name: str, field: str, message: str) -> errors.ApiError:
    return errors.invalid("Service", "", name, [{"reason": "FieldValueInvalid", "field": field, "message": message}])


def _service_hook(allocator: Allocator, op: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    name = (obj.get("metadata") or {}).get("name", "")
    old_spec = (old or {}).get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    if kind == "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            spec.pop(key, None)
        return
    if op == "UPDATE" and old_spec.get("clusterIP") and old_spec.get("type") != "ExternalName":
        # upstream keeps allocated values when an update or apply leaves them out
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        elif spec["clusterIP"] != old_spec["clusterIP"]:
            raise _field_immutable("Service", name, "spec.clusterIP", spec["clusterIP"])
        if not spec.get("clusterIPs"):
            spec["clusterIPs"] = old_spec.get("clusterIPs") or [spec["clusterIP"]]
    ip = spec.get("clusterIP")
    if not ip:
        ip = spec["clusterIP"] = allocator.cluster_ip()
    elif ip != "None" and op == "CREATE":
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise _invalid_ip(
                name,
                "spec.clusterIPs[0]",
                f'Invalid value: "{ip}": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
            ) from None
        if ip in allocator.used_ips() - _RESERVED_IPS:
            raise _invalid_ip(
                name,
                "spec.clusterIPs",
                f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: provided IP is already allocated',
            )
    _set(spec, "clusterIPs", [ip])
    _set(spec, "ipFamilies", ["IPv4"])
    headless_without_selector = ip == "None" and not spec.get("selector")
    _set(spec, "ipFamilyPolicy", "RequireDualStack" if headless_without_selector else "SingleStack")
    if kind in ("NodePort", "LoadBalancer"):
        old_ports = {
            (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
            for p in old_spec.get("ports") or []
            if isinstance(p, dict)
        }
        taken = {p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("nodePort")}
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and not port.get("nodePort"):
                kept = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                port["nodePort"] = kept or allocator.node_port(taken)
                taken.add(port["nodePort"])
    status = _set(obj, "status", {})
    if isinstance(status, dict):
        _set(status, "loadBalancer", {})


def _job_hook(op: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """The Job strategy's selector generation: a label naming the Job's uid, on pods and selector."""
    spec = _dict(obj, "spec")
    meta = obj.get("metadata") or {}
    if spec is None or spec.get("manualSelector") is True:
        return
    if op == "UPDATE" and old is not None:
        old_spec = old.get("spec") or {}
        if spec.get("selector") is None and old_spec.get("selector") is not None:
            spec["selector"] = old_spec["selector"]
    uid = meta.get("uid", "")
    if spec.get("selector") is None:
        spec["selector"] = {"matchLabels": {JOB_UID_LABEL: uid}}
    template = _set(spec, "template", {})
    if isinstance(template, dict):
        tmeta = _set(template, "metadata", {})
        labels = _set(tmeta, "labels", {}) if isinstance(tmeta, dict) else None
        if isinstance(labels, dict):
            for key, value in (
                (JOB_UID_LABEL, uid),
                (JOB_NAME_LABEL, meta.get("name", "")),
                ("controller-uid", uid),
                ("job-name", meta.get("name", "")),
            ):
                labels.setdefault(key, value)


def _pvc_hook(obj: dict[str, Any]) -> None:
    status = _set(obj, "status", {})
    if isinstance(status, dict):
        _set(status, "phase", "Pending")


def qos_class(spec: dict[str, Any]) -> str:
    """The pod QoS class the API server records at creation."""
    resources = [_dict(c, "resources") or {} for c in _items(spec.get("containers"))]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    if all(
        isinstance(r.get("limits"), dict)
        and r["limits"].get(k)
        and (r.get("requests") or {}).get(k, r["limits"][k]) == r["limits"][k]
        for r in resources
        for k in ("cpu", "memory")
    ):
        return "Guaranteed"
    return "Burstable"


def _pod_status_hook(obj: dict[str, Any]) -> None:
    _set(obj["status"], "phase", "Pending")
    _set(obj["status"], "qosClass", qos_class(_dict(obj, "spec") or {}))


def install(store: Store, *, seed: int | None = None) -> Allocator:
    """Register the defaulting and allocation admission hook on ``store``."""
    allocator = Allocator(store, seed)

    def admit(op: str, rt: ResourceType, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        if rt.crd:
            return
        apply_defaults(rt.kind, new)
        if op == "CREATE" and "status" in rt.subresources and not isinstance(new.get("status"), dict):
            new["status"] = {}  # upstream always returns the (empty) status struct of such kinds
        if rt.storage_key == ("", "pods") and op == "CREATE":
            _pod_status_hook(new)
        if rt.storage_key == ("", "services"):
            _service_hook(allocator, op, new, old)
        elif rt.storage_key == ("batch", "jobs"):
            _job_hook(op, new, old)
        elif rt.storage_key == ("", "persistentvolumeclaims") and op == "CREATE":
            _pvc_hook(new)

    store.admission.append(admit)
    return allocator
