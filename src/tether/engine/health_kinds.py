"""Which custom kinds promise a status, read from their CustomResourceDefinitions.

A custom resource with no status is Current for kstatus and Argo CD alike: a kind nobody
reconciles must not block a wait forever. A CRD can say more, though: one that declares the
status subresource *and* ``status.conditions`` in its schema has a controller that will write
them, so until an object of that kind has a (non-empty) status it is InProgress, "waiting for
the controller to report status". A status subresource alone (or a schema that leaves status
open) is not taken as that promise; a kind whose CRD cannot be found keeps the plain rule.

Push mode reads the CRDs of the render first and GETs the others from the cluster (one request
per custom kind waited for); the controller reads them from the render and its watch cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tether.engine.changes import Change
from tether.engine.health import KIND_RULES
from tether.errors import KubeError
from tether.kube import Kube, ResourceInfo

GroupKind = tuple[str, str]
CRD_GROUP = "apiextensions.k8s.io"
CRD_KIND = "CustomResourceDefinition"
CRD_INFO = ResourceInfo(CRD_GROUP, "v1", CRD_KIND, "customresourcedefinitions", False)


def is_crd(obj: dict[str, Any] | None) -> bool:
    return (
        obj is not None and obj.get("kind") == CRD_KIND and str(obj.get("apiVersion", "")).startswith(f"{CRD_GROUP}/")
    )


def group_kind_of(crd: dict[str, Any]) -> GroupKind:
    spec = crd.get("spec") or {}
    return str(spec.get("group") or ""), str((spec.get("names") or {}).get("kind") or "")


def promises_status(crd: dict[str, Any]) -> bool:
    """Does a served version have the status subresource and ``status.conditions`` in its schema?"""
    for version in (crd.get("spec") or {}).get("versions") or []:
        if not isinstance(version, dict) or version.get("served", True) is False:
            continue
        if "status" not in (version.get("subresources") or {}):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
        status = (schema.get("properties") or {}).get("status") or {}
        if "conditions" in (status.get("properties") or {}):
            return True
    return False


def might_be_custom(group: str, kind: str) -> bool:
    """A CRD's group always has a dot; kinds with a built-in rule never need their CRD."""
    return "." in group and (group, kind) not in KIND_RULES


def status_kinds_from(
    wanted: Iterable[GroupKind], crds: Iterable[dict[str, Any] | None]
) -> tuple[frozenset[GroupKind], set[GroupKind]]:
    """The ``wanted`` kinds whose CRD among ``crds`` promises a status, and those whose CRD is not there."""
    by_kind = {group_kind_of(crd): crd for crd in crds if crd is not None and is_crd(crd)}
    found: set[GroupKind] = set()
    missing: set[GroupKind] = set()
    for group_kind in wanted:
        crd = by_kind.get(group_kind)
        if crd is None:
            missing.add(group_kind)
        elif promises_status(crd):
            found.add(group_kind)
    return frozenset(found), missing


async def status_kinds(kube: Kube, changes: Iterable[Change], render: Iterable[Change]) -> frozenset[GroupKind]:
    """Push mode: the kinds among ``changes`` whose CRD (in ``render``, else in the cluster) promises a status."""
    infos: dict[GroupKind, ResourceInfo] = {
        (c.ref.group, c.ref.kind): c.info for c in changes if might_be_custom(c.ref.group, c.ref.kind)
    }
    if not infos:
        return frozenset()
    found, missing = status_kinds_from(infos, [c.desired for c in render])
    extra = set()
    for group, kind in sorted(missing):
        try:
            live = await kube.get(CRD_INFO, f"{infos[(group, kind)].plural}.{group}")
        except KubeError:
            continue  # no CRD to read (or no right to read it): the plain rule stays
        if live is not None and is_crd(live) and group_kind_of(live) == (group, kind) and promises_status(live):
            extra.add((group, kind))
    return found | extra


def status_kinds_cached(
    changes: Iterable[Change], get: Callable[[str, str, str, str], dict[str, Any] | None]
) -> frozenset[GroupKind]:
    """Controller: as ``status_kinds``, with CRDs from the plan and then the watch cache (``get(group,
    kind, namespace, name)``); a CRD the cache does not hold keeps the plain rule."""
    listed = list(changes)
    wanted = {(c.ref.group, c.ref.kind): c.info for c in listed if might_be_custom(c.ref.group, c.ref.kind)}
    if not wanted:
        return frozenset()
    found, missing = status_kinds_from(wanted, [c.desired for c in listed])
    extra = set()
    for group, kind in missing:
        live = get(CRD_GROUP, CRD_KIND, "", f"{wanted[(group, kind)].plural}.{group}")
        if live is not None and is_crd(live) and promises_status(live):
            extra.add((group, kind))
    return found | extra
