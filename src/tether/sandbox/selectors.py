"""Label and field selectors in the syntax of ``labelSelector`` / ``fieldSelector`` parameters."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tether.sandbox.errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_TERM = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9][-A-Za-z0-9_./]*)\s*"
    r"(?:(?P<op>==|=|!=|\bnotin\b|\bin\b|>|<)\s*(?:\((?P<set>[^)]*)\)|(?P<value>[-A-Za-z0-9_.]*)))?\s*(?:,|$)"
)


def parse_label_selector(text: str) -> Predicate | None:
    """Predicate over an object's labels; None when the selector selects everything."""
    text = text.strip()
    if not text:
        return None
    checks: list[Callable[[dict[str, str]], bool]] = []
    pos = 0
    while pos < len(text):
        match = _TERM.match(text, pos)
        if not match or match.end() == pos:
            raise bad_request(f"unable to parse requirement: found '{text[pos:]}', expected: valid label selector")
        pos = match.end()
        checks.append(_label_check(match, text))
    return lambda obj: all(check((obj.get("metadata") or {}).get("labels") or {}) for check in checks)


def _label_check(match: re.Match[str], text: str) -> Callable[[dict[str, str]], bool]:
    key, op, neg = match["key"], match["op"], match["neg"]
    if neg:
        if op:
            raise bad_request(f"unable to parse requirement: '!' cannot be combined with an operator in {text!r}")
        return lambda labels: key not in labels
    if op is None:
        return lambda labels: key in labels
    if op in ("in", "notin"):
        if match["set"] is None:
            raise bad_request(f"unable to parse requirement: expected '(' after {op!r} in {text!r}")
        values = {v.strip() for v in match["set"].split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    value = match["value"] or ""
    if op in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if op == "!=":
        return lambda labels: labels.get(key) != value
    try:
        number = int(value)
    except ValueError:
        raise bad_request(
            f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {value!r}"
        ) from None
    if op == ">":
        return lambda labels: key in labels and labels[key].isdigit() and int(labels[key]) > number
    return lambda labels: key in labels and labels[key].lstrip("-").isdigit() and int(labels[key]) < number


#: field selector labels each kind supports beyond metadata.name / metadata.namespace
SUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Secret": ("type",),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "regarding.kind",
        "regarding.name",
        "regarding.namespace",
        "reportingController",
    ),
    "Namespace": ("status.phase",),
    "ReplicaSet": ("status.replicas",),
    "Job": ("status.successful",),
}


def _field_value(obj: dict[str, Any], path: str) -> str:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def parse_field_selector(text: str, kind: str, extra_fields: tuple[str, ...] = ()) -> Predicate | None:
    """Predicate for ``fieldSelector``; unsupported field labels are a 400 as upstream."""
    text = text.strip()
    if not text:
        return None
    allowed = {"metadata.name", "metadata.namespace", *SUPPORTED_FIELDS.get(kind, ()), *extra_fields}
    checks: list[tuple[str, str, bool]] = []
    for term in text.split(","):
        term = term.strip()
        if not term:
            continue
        for op in ("!=", "==", "="):
            if op in term:
                key, _, value = term.partition(op)
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        key = key.strip()
        if key not in allowed:
            raise bad_request(f"field label not supported: {key}")
        checks.append((key, value.strip(), op == "!="))
    return lambda obj: all((_field_value(obj, key) == value) != negate for key, value, negate in checks)
