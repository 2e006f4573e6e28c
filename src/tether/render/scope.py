"""Is a kind namespaced? Built-ins from a table, custom kinds from CRDs in the same set.

The upstream OpenAPI definitions do not carry the scope of a kind, so the (short, stable)
list of cluster-scoped built-in kinds is kept here. A kind that is neither built-in nor
defined by a CRD in the set is assumed namespaced, the common case for custom resources.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: (group, kind) of every cluster-scoped built-in kind
CLUSTER_SCOPED_BUILTINS: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("authentication.k8s.io", "TokenReview"),
        ("authentication.k8s.io", "SelfSubjectReview"),
        ("authorization.k8s.io", "SubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectRulesReview"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "ResourceSlice"),
        ("storagemigration.k8s.io", "StorageVersionMigration"),
        ("internal.apiserver.k8s.io", "StorageVersion"),
        ("policy", "PodSecurityPolicy"),
    }
)


def group_of(obj: dict[str, Any]) -> str:
    api_version = obj.get("apiVersion") or ""
    return api_version.rpartition("/")[0]


def crd_scopes(objects: Iterable[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    """``(group, kind) -> namespaced`` for every CRD among ``objects``."""
    scopes: dict[tuple[str, str], bool] = {}
    for obj in objects:
        if obj.get("kind") != "CustomResourceDefinition" or group_of(obj) != "apiextensions.k8s.io":
            continue
        spec = obj.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        if isinstance(kind, str) and isinstance(spec.get("group"), str):
            scopes[(spec["group"], kind)] = spec.get("scope", "Namespaced") != "Cluster"
    return scopes


class ScopeResolver:
    """Answers "is this object namespaced?" for one set of objects."""

    def __init__(self, objects: Iterable[dict[str, Any]], extra: dict[tuple[str, str], bool] | None = None):
        self._crds = crd_scopes(objects)
        if extra:
            self._crds.update(extra)

    def namespaced(self, obj: dict[str, Any]) -> bool:
        key = (group_of(obj), obj.get("kind") or "")
        if key in self._crds:
            return self._crds[key]
        return key not in CLUSTER_SCOPED_BUILTINS
