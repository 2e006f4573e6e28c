"""What happens to an object between the request and the store: defaults, schema validation,
the semantic checks upstream makes for common kinds, and ``fieldValidation`` handling."""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from typing import Any

from tether.sandbox import defaults, errors, validation
from tether.sandbox.resources import ResourceType

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
#: kinds whose names must be DNS labels rather than subdomains
_LABEL_NAMED = {"Namespace", "Service"}
_WORKLOADS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"}


def validator(rt: ResourceType) -> validation.Node:
    node = rt.cache.get("validator")
    if node is None:
        if rt.crd:
            node = validation.crd_validator(rt.schema)
        elif rt.definition:
            node = validation.builtin_validator(rt.definition)
        else:
            node = validation.Node()
        rt.cache["validator"] = node
    return node


def admit(rt: ResourceType, obj: dict[str, Any], field_validation: str, *, check_name: bool = True) -> list[str]:
    """Default and validate ``obj`` in place. Returns warnings (unknown fields under Warn);
    raises 400 for unknown fields under Strict and 422 Invalid for field errors."""
    if not rt.crd:
        # a malformed object skips defaulting: schema validation below reports why
        with contextlib.suppress(TypeError, AttributeError, ValueError):
            _default_builtin(rt.kind, obj)
            defaults.apply_defaults(rt.kind, obj)  # the rest of upstream's defaults, before managedFields
    report = validation.validate(validator(rt), obj, defaulting=bool(rt.crd))
    name = (obj.get("metadata") or {}).get("name") or ""
    if report.unknown and field_validation == "Strict":
        fields = ", ".join(f'unknown field "{path}"' for path in report.unknown)
        raise errors.bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict decoding error: {fields}'
        )
    causes = report.errors
    if not causes:  # semantic checks assume a well-typed object
        causes.extend(_semantic(rt, obj, check_name))
    if causes:
        raise errors.invalid(rt.kind, rt.group, name, causes)
    if report.unknown and field_validation == "Warn":
        return [f'unknown field "{path}"' for path in report.unknown]
    return []


def _cause(reason: str, path: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message, "field": path}


def _semantic(rt: ResourceType, obj: dict[str, Any], check_name: bool) -> list[dict[str, str]]:
    causes: list[dict[str, str]] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if check_name and isinstance(name, str) and name:
        if rt.kind in _LABEL_NAMED and not rt.crd:
            if len(name) > 63 or not _LABEL.fullmatch(name):
                causes.append(_cause("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {_LABEL_MSG}'))
        elif len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
            causes.append(_cause("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {_SUBDOMAIN_MSG}'))
    for key, value in (meta.get("labels") or {}).items():
        causes.extend(_label_causes(key, value))
    if rt.crd:
        return causes
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if rt.kind in _WORKLOADS and rt.group == "apps":
        causes.extend(_workload_causes(spec))
    elif rt.kind == "Secret":
        for key, value in (obj.get("data") or {}).items() if isinstance(obj.get("data"), dict) else ():
            if isinstance(value, str) and not _is_base64(value):
                causes.append(
                    _cause("FieldValueInvalid", f"data[{key}]", f'Invalid value: "{value}": illegal base64 data')
                )
    elif rt.kind == "Pod":
        causes.extend(_pod_causes(spec, "spec"))
    elif rt.kind == "Job" and isinstance(spec.get("template"), dict):
        causes.extend(_pod_causes(spec["template"].get("spec") or {}, "spec.template.spec"))
    return causes


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return False
    return True


def _label_causes(key: Any, value: Any) -> list[dict[str, str]]:
    causes = []
    prefix, _, short = str(key).rpartition("/")
    if not short or len(short) > 63 or not _QUALIFIED.fullmatch(short) or (prefix and not _SUBDOMAIN.fullmatch(prefix)):
        causes.append(
            _cause(
                "FieldValueInvalid",
                "metadata.labels",
                f"Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', "
                "'_' or '.', and must start and end with an alphanumeric character",
            )
        )
    if isinstance(value, str) and value and (len(value) > 63 or not _QUALIFIED.fullmatch(value)):
        causes.append(
            _cause(
                "FieldValueInvalid",
                "metadata.labels",
                f'Invalid value: "{value}": a valid label must be an empty string or consist of '
                "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                "character",
            )
        )
    return causes


#: integer fields of workload specs upstream requires to be non-negative
_NON_NEGATIVE = ("replicas", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds")
_NEGATIVE_MESSAGE = "Invalid value: {}: must be greater than or equal to 0"


def _workload_causes(spec: dict[str, Any]) -> list[dict[str, str]]:
    causes = [
        _cause("FieldValueInvalid", f"spec.{field}", _NEGATIVE_MESSAGE.format(spec[field]))
        for field in _NON_NEGATIVE
        if isinstance(spec.get(field), int) and spec[field] < 0
    ]
    selector = spec.get("selector") or {}
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    match_labels = selector.get("matchLabels") or {} if isinstance(selector, dict) else {}
    expressions = selector.get("matchExpressions") if isinstance(selector, dict) else None
    if isinstance(selector, dict) and not match_labels and not expressions:
        causes.append(
            _cause("FieldValueInvalid", "spec.selector", "Invalid value: {}: empty selector is invalid for deployment")
        )
    elif isinstance(match_labels, dict) and any(labels.get(k) != v for k, v in match_labels.items()):
        shown = "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"
        causes.append(
            _cause(
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                f"Invalid value: {shown}: `selector` does not match template `labels`",
            )
        )
    if isinstance(template.get("spec"), dict):
        causes.extend(_pod_causes(template["spec"], "spec.template.spec"))
    return causes


def _pod_causes(spec: dict[str, Any], path: str) -> list[dict[str, str]]:
    causes = []
    containers = spec.get("containers")
    if not containers:
        causes.append(_cause("FieldValueRequired", f"{path}.containers", "Required value"))
        return causes
    seen: set[str] = set()
    for index, container in enumerate(containers if isinstance(containers, list) else []):
        if not isinstance(container, dict):
            continue
        if not container.get("image"):
            causes.append(_cause("FieldValueRequired", f"{path}.containers[{index}].image", "Required value"))
        name = container.get("name")
        if name in seen:
            causes.append(
                _cause("FieldValueDuplicate", f"{path}.containers[{index}].name", f'Duplicate value: "{name}"')
            )
        seen.add(name)
    return causes


# -- defaults (the upstream defaulting functions of the common kinds) -----------------------------


def _set(obj: dict[str, Any], key: str, value: Any) -> None:
    if obj.get(key) is None:
        obj[key] = value


def _default_builtin(kind: str, obj: dict[str, Any]) -> None:
    """What the core decides itself: Namespace phase and finalizer, Secret type and stringData folding.
    Every other default comes from ``defaults.apply_defaults``."""
    spec = obj.get("spec")
    if kind == "Namespace":
        status = obj.setdefault("status", {}) if isinstance(obj.get("status", {}), dict) else {}
        status.setdefault("phase", "Active")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        _set(spec, "finalizers", ["kubernetes"])
    if kind == "Secret":
        _set(obj, "type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj["data"] if isinstance(obj.get("data"), dict) else {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
