"""The resource types the sandbox serves: built-in kinds plus those CRDs add at run time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

#: upstream order of the built-in API groups in discovery (core is served under /api)
GROUP_ORDER = (
    "apps",
    "events.k8s.io",
    "autoscaling",
    "batch",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "coordination.k8s.io",
    "apiextensions.k8s.io",
)


@dataclass(eq=False)
class ResourceType:
    """One served (group, version, resource). Objects are stored per (group, plural): all
    versions of a CRD share one storage, as upstream with the ``None`` conversion strategy."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    definition: str | None = None  # OpenAPI definition name of a built-in kind
    crd: str | None = None  # name of the CustomResourceDefinition serving it
    schema: dict[str, Any] | None = None  # a CRD version's openAPIV3Schema
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    scale: dict[str, str] | None = None  # CRD scale subresource paths
    storage: bool = True  # the storage version among several CRD versions
    singular: str = ""
    tracks_generation: bool = False
    #: per-type caches (compiled validator, merge type information); rebuilt with the type
    cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.singular:
            self.singular = self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


def _b(
    gv: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    *,
    cats: tuple[str, ...] = (),
    subs: tuple[str, ...] = (),
    definition: str,
    generation: bool = False,
) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        short_names=short,
        categories=cats,
        subresources=frozenset(subs),
        definition=definition,
        tracks_generation=generation,
    )


_CORE = "io.k8s.api.core.v1."
_ALL = ("all",)


def builtin_types() -> list[ResourceType]:
    """Fresh instances of every built-in resource type."""
    return [
        _b(
            "v1", "Namespace", "namespaces", False, ("ns",), subs=("status", "finalize"), definition=_CORE + "Namespace"
        ),
        _b("v1", "ConfigMap", "configmaps", True, ("cm",), definition=_CORE + "ConfigMap"),
        _b("v1", "Secret", "secrets", definition=_CORE + "Secret"),
        _b("v1", "Service", "services", True, ("svc",), cats=_ALL, subs=("status",), definition=_CORE + "Service"),
        _b("v1", "ServiceAccount", "serviceaccounts", True, ("sa",), definition=_CORE + "ServiceAccount"),
        _b("v1", "Pod", "pods", True, ("po",), cats=_ALL, subs=("status",), definition=_CORE + "Pod"),
        _b(
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            True,
            ("pvc",),
            subs=("status",),
            definition=_CORE + "PersistentVolumeClaim",
        ),
        _b("v1", "Endpoints", "endpoints", True, ("ep",), definition=_CORE + "Endpoints"),
        _b("v1", "Event", "events", True, ("ev",), definition=_CORE + "Event"),
        _b(
            "apps/v1",
            "Deployment",
            "deployments",
            True,
            ("deploy",),
            cats=_ALL,
            subs=("status", "scale"),
            definition="io.k8s.api.apps.v1.Deployment",
            generation=True,
        ),
        _b(
            "apps/v1",
            "StatefulSet",
            "statefulsets",
            True,
            ("sts",),
            cats=_ALL,
            subs=("status", "scale"),
            definition="io.k8s.api.apps.v1.StatefulSet",
            generation=True,
        ),
        _b(
            "apps/v1",
            "DaemonSet",
            "daemonsets",
            True,
            ("ds",),
            cats=_ALL,
            subs=("status",),
            definition="io.k8s.api.apps.v1.DaemonSet",
            generation=True,
        ),
        _b(
            "apps/v1",
            "ReplicaSet",
            "replicasets",
            True,
            ("rs",),
            cats=_ALL,
            subs=("status", "scale"),
            definition="io.k8s.api.apps.v1.ReplicaSet",
            generation=True,
        ),
        _b("events.k8s.io/v1", "Event", "events", True, ("ev",), definition="io.k8s.api.events.v1.Event"),
        _b(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            True,
            ("hpa",),
            cats=_ALL,
            subs=("status",),
            definition="io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
            generation=True,
        ),
        _b(
            "batch/v1",
            "Job",
            "jobs",
            cats=_ALL,
            subs=("status",),
            definition="io.k8s.api.batch.v1.Job",
            generation=True,
        ),
        _b(
            "batch/v1",
            "CronJob",
            "cronjobs",
            True,
            ("cj",),
            cats=_ALL,
            subs=("status",),
            definition="io.k8s.api.batch.v1.CronJob",
            generation=True,
        ),
        _b(
            "networking.k8s.io/v1",
            "Ingress",
            "ingresses",
            True,
            ("ing",),
            subs=("status",),
            definition="io.k8s.api.networking.v1.Ingress",
            generation=True,
        ),
        _b(
            "policy/v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            True,
            ("pdb",),
            subs=("status",),
            definition="io.k8s.api.policy.v1.PodDisruptionBudget",
            generation=True,
        ),
        _b(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            False,
            definition="io.k8s.api.rbac.v1.ClusterRoleBinding",
        ),
        _b(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "clusterroles",
            False,
            definition="io.k8s.api.rbac.v1.ClusterRole",
        ),
        _b("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", definition="io.k8s.api.rbac.v1.RoleBinding"),
        _b("rbac.authorization.k8s.io/v1", "Role", "roles", definition="io.k8s.api.rbac.v1.Role"),
        _b("coordination.k8s.io/v1", "Lease", "leases", definition="io.k8s.api.coordination.v1.Lease"),
        _b(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            False,
            ("crd", "crds"),
            subs=("status",),
            definition="io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
            generation=True,
        ),
    ]


class Registry:
    """Lookup of served resource types by (group, version, plural) and by kind."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self._by_gvk: dict[tuple[str, str, str], ResourceType] = {}
        #: bumped on every change so discovery / OpenAPI caches know when to rebuild
        self.generation = 0
        for rt in builtin_types():
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._by_gvr[(rt.group, rt.version, rt.plural)] = rt
        self._by_gvk[(rt.group, rt.version, rt.kind)] = rt
        self.generation += 1

    def remove_crd(self, crd_name: str) -> list[ResourceType]:
        gone = [rt for rt in self._by_gvr.values() if rt.crd == crd_name]
        for rt in gone:
            self._by_gvr.pop((rt.group, rt.version, rt.plural), None)
            self._by_gvk.pop((rt.group, rt.version, rt.kind), None)
        self.generation += 1
        return gone

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self._by_gvk.get((group, version, kind))

    def storage_type(self, group: str, plural: str) -> ResourceType | None:
        """The storage version's type of a (group, plural)."""
        fallback = None
        for rt in self._by_gvr.values():
            if rt.group == group and rt.plural == plural:
                if rt.storage:
                    return rt
                fallback = rt
        return fallback

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_gvr.values()))

    def groups(self) -> list[tuple[str, list[str]]]:
        """(group, versions) in discovery order: built-in groups first, then CRD groups by name;
        versions of a group sorted by upstream version priority."""
        versions: dict[str, set[str]] = {}
        for rt in self._by_gvr.values():
            versions.setdefault(rt.group, set()).add(rt.version)
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        names = sorted((g for g in versions if g), key=lambda g: (order.get(g, len(order)), g))
        return [(g, sorted(versions[g], key=version_priority)) for g in ([""] if "" in versions else []) + names]

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (rt for rt in self._by_gvr.values() if rt.group == group and rt.version == version),
            key=lambda rt: rt.plural,
        )


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key of Kubernetes versions: GA before beta before alpha, higher numbers first,
    then anything else alphabetically (upstream's ``CompareKubeAwareVersionStrings``)."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0, version)
    major = int(match.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor, "")
