"""Immutable fields: updates that kube-apiserver refuses with 422 Invalid and the field path.

Checked on every update of a built-in kind (after defaulting, so a field the update leaves out
and the server fills in again is not a change):

- Job: ``spec.selector``, ``spec.template``, ``spec.completionMode``;
- Deployment, ReplicaSet, DaemonSet: ``spec.selector``;
- StatefulSet: every spec field but replicas, ordinals, template, updateStrategy,
  persistentVolumeClaimRetentionPolicy and minReadySeconds (one ``spec: Forbidden`` cause, as upstream);
- PersistentVolumeClaim: the spec except ``resources.requests``, ``volumeAttributesClassName`` and the
  binder setting ``volumeName`` (``spec: Forbidden``);
- ConfigMap and Secret with ``immutable: true``: ``data``, ``binaryData`` and ``immutable`` itself.

Service ``spec.clusterIP`` is checked where it is allocated (``defaults``).
"""

from __future__ import annotations

import json
from typing import Any

from tether.sandbox import errors

_STATEFULSET_MUTABLE = frozenset(
    {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}
)


def _clean(value: Any) -> Any:
    """Nulls and empty maps mean "not set" on the wire; compare without them."""
    if isinstance(value, dict):
        out = {k: _clean(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":")) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:197] + "..."


def _immutable(path: str, value: Any) -> dict[str, str]:
    return {
        "reason": "FieldValueInvalid",
        "field": path,
        "message": f"Invalid value: {_show(value)}: field is immutable",
    }


def _changed(old: dict[str, Any], new: dict[str, Any], paths: tuple[str, ...]) -> list[dict[str, str]]:
    causes = []
    for path in paths:
        before, after = old, new
        for part in path.split("."):
            before = (before or {}).get(part) if isinstance(before, dict) else None
            after = (after or {}).get(part) if isinstance(after, dict) else None
        if _clean(before) != _clean(after):
            causes.append(_immutable(path, after))
    return causes


def _statefulset(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    keys = (set(old_spec) | set(new_spec)) - _STATEFULSET_MUTABLE
    if any(_clean(old_spec.get(k)) != _clean(new_spec.get(k)) for k in keys):
        return [
            {
                "reason": "FieldValueForbidden",
                "field": "spec",
                "message": "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                "'minReadySeconds' are forbidden",
            }
        ]
    return []


def _pvc(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    def comparable(spec: dict[str, Any], keep_name: bool) -> dict[str, Any]:
        out = {k: v for k, v in spec.items() if k not in ("volumeAttributesClassName",)}
        resources = dict(out.get("resources") or {})
        resources.pop("requests", None)
        out["resources"] = resources
        if not keep_name:
            out.pop("volumeName", None)
        return _clean(out)

    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    bound_before = bool(old_spec.get("volumeName"))  # binding sets volumeName once; changing it later is refused
    if comparable(old_spec, bound_before) != comparable(new_spec, bound_before):
        return [
            {
                "reason": "FieldValueForbidden",
                "field": "spec",
                "message": "Forbidden: spec is immutable after creation except resources.requests and "
                "volumeAttributesClassName for bound claims",
            }
        ]
    return []


def _immutable_data(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    if old.get("immutable") is not True:
        return []
    causes = []
    if new.get("immutable") is not True:
        causes.append(_immutable("immutable", new.get("immutable")))
    for key in ("data", "binaryData"):
        if _clean(old.get(key) or {}) != _clean(new.get(key) or {}):
            causes.append(
                {
                    "reason": "FieldValueForbidden",
                    "field": key,
                    "message": "Forbidden: field is immutable when `immutable` is set",
                }
            )
    return causes


_RULES = {
    ("batch", "jobs"): lambda old, new: _changed(old, new, ("spec.selector", "spec.template", "spec.completionMode")),
    ("apps", "deployments"): lambda old, new: _changed(old, new, ("spec.selector",)),
    ("apps", "replicasets"): lambda old, new: _changed(old, new, ("spec.selector",)),
    ("apps", "daemonsets"): lambda old, new: _changed(old, new, ("spec.selector",)),
    ("apps", "statefulsets"): _statefulset,
    ("", "persistentvolumeclaims"): _pvc,
    ("", "configmaps"): _immutable_data,
    ("", "secrets"): _immutable_data,
}


def check(group: str, resource: str, kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Raise 422 Invalid naming every immutable field the update changes."""
    rule = _RULES.get((group, resource))
    if rule is None:
        return
    causes = rule(old, new)
    if causes:
        raise errors.invalid(kind, group, (new.get("metadata") or {}).get("name", ""), causes)


def install(store: Any) -> None:
    """Register the check as an admission hook (after defaulting, which ``defaults.install`` registers)."""

    def admit(op: str, rt: Any, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        if op != "UPDATE" or old is None or rt.crd:
            return
        if (new.get("metadata") or {}).get("deletionTimestamp"):
            return  # finalizing: only metadata changes from here on
        check(rt.group, rt.plural, rt.kind, old, new)

    store.admission.append(admit)


__all__ = ["check", "install"]
