"""CustomResourceDefinitions: checking them, serving their kinds, and cleaning up after them.

Names are accepted and the CRD established synchronously with its write, so a client can use
the new kind as soon as the create returns (upstream does this within moments)."""

from __future__ import annotations

from typing import Any

from tether.sandbox import errors
from tether.sandbox.resources import ResourceType
from tether.sandbox.store import Store, WatchEvent, now

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def check(crd: dict[str, Any]) -> list[dict[str, str]]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes = []
    group, plural = spec.get("group") or "", names.get("plural") or ""
    if not group:
        causes.append(_cause("spec.group", "Required value", "FieldValueRequired"))
    elif "." not in group:
        causes.append(_cause("spec.group", f'Invalid value: "{group}": should be a domain with at least one dot'))
    if not plural:
        causes.append(_cause("spec.names.plural", "Required value", "FieldValueRequired"))
    if not names.get("kind"):
        causes.append(_cause("spec.names.kind", "Required value", "FieldValueRequired"))
    name = (crd.get("metadata") or {}).get("name")
    if plural and group and name != f"{plural}.{group}":
        causes.append(_cause("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            _cause(
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
                "FieldValueNotSupported",
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            _cause("spec.versions", "Invalid value: null: must have exactly one version marked as storage version")
        )
    elif sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        causes.append(_cause("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
    return causes


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        subs = {s for s in ("status", "scale") if s in subresources}
        scale = subresources.get("scale")
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(subs),
                crd=crd["metadata"]["name"],
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                printer_columns=list(version.get("additionalPrinterColumns") or []),
                scale=dict(scale) if isinstance(scale, dict) else None,
                storage=bool(version.get("storage")),
                singular=names.get("singular") or names["kind"].lower(),
                tracks_generation=True,
            )
        )
    return types


def _condition(kind: str, status: str, reason: str, message: str, previous: list[dict[str, Any]]) -> dict[str, Any]:
    for old in previous:
        if old.get("type") == kind and old.get("status") == status:
            return {**old, "reason": reason, "message": message}
    return {"type": kind, "status": status, "lastTransitionTime": now(), "reason": reason, "message": message}


class CrdController:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.admission.append(self.admit)
        store.listeners.append(self.on_event)
        for crd in list((store.objects.get(CRD_KEY) or {}).values()):
            self._serve(crd)

    def _conflict(self, crd: dict[str, Any]) -> str | None:
        spec, registry = crd["spec"], self.store.registry
        name = crd["metadata"]["name"]
        for rt in registry:
            if (
                rt.group == spec["group"]
                and rt.crd != name
                and (rt.plural == spec["names"]["plural"] or rt.kind == spec["names"]["kind"])
            ):
                return f'"{rt.plural}" is already in use'
        return None

    def admit(self, op: str, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if rt.storage_key != CRD_KEY:
            return
        causes = check(obj)
        if causes:
            raise errors.invalid(rt.kind, rt.group, (obj.get("metadata") or {}).get("name", ""), causes)
        if old is not None and old["spec"].get("scope") != obj["spec"].get("scope"):
            raise errors.invalid(
                rt.kind,
                rt.group,
                obj["metadata"]["name"],
                [_cause("spec.scope", f'Invalid value: "{obj["spec"].get("scope")}": field is immutable')],
            )
        names = dict(obj["spec"]["names"])
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
        obj["spec"]["names"] = names
        status = dict(obj.get("status") or {})
        previous = list(status.get("conditions") or [])
        conflict = self._conflict(obj)
        if conflict:
            conditions = [
                _condition("NamesAccepted", "False", "AlreadyInUse", conflict, previous),
                _condition("Established", "False", "NotAccepted", "not all names are accepted", previous),
            ]
        else:
            conditions = [
                _condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", previous),
                _condition(
                    "Established", "True", "InitialNamesAccepted", "the initial names have been accepted", previous
                ),
            ]
            status["acceptedNames"] = names
        status["conditions"] = conditions
        storage = next(v["name"] for v in obj["spec"]["versions"] if v.get("storage"))
        stored = list(status.get("storedVersions") or [])
        if storage not in stored:
            stored.append(storage)
        status["storedVersions"] = stored
        obj["status"] = status

    def _serve(self, crd: dict[str, Any]) -> None:
        registry = self.store.registry
        registry.remove_crd(crd["metadata"]["name"])
        established = any(
            c.get("type") == "Established" and c.get("status") == "True"
            for c in (crd.get("status") or {}).get("conditions") or []
        )
        if established and not crd["metadata"].get("deletionTimestamp"):
            for rt in resource_types(crd):
                registry.add(rt)

    def on_event(self, event: WatchEvent) -> None:
        if event.key != CRD_KEY:
            return
        crd = event.object
        if event.type == "DELETED":
            spec = crd.get("spec") or {}
            self.store.registry.remove_crd(crd["metadata"]["name"])
            self.store.delete_all((spec.get("group", ""), (spec.get("names") or {}).get("plural", "")))
        else:
            self._serve(crd)
