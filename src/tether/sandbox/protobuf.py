"""Decoding of the Kubernetes protobuf request bodies kubectl's generator commands send
(``kubectl create namespace|configmap|secret|serviceaccount|deployment|service|job|role``).

kubectl's typed clients post ``application/vnd.kubernetes.protobuf``: the bytes ``k8s\\0`` and a
``runtime.Unknown`` message (type meta + the object's own protobuf). The sandbox knows the field
numbers of the messages those commands produce; zero values are dropped as Go's JSON encoding
omits them. A body holding any non-empty field outside these tables is refused with 415, so
nothing is ever silently lost.
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"

# kind codes: s string, i int (zero dropped), I int pointer (zero kept), b bool, B bool pointer,
# m message, rm repeated message, rs repeated string, ms map<string,string>, mb map<string,bytes>,
# ios IntOrString
Field = tuple[str, str, str | None]
_META: dict[int, Field] = {
    1: ("name", "s", None),
    2: ("generateName", "s", None),
    3: ("namespace", "s", None),
    11: ("labels", "ms", None),
    12: ("annotations", "ms", None),
    14: ("finalizers", "rs", None),
}
MESSAGES: dict[str, dict[int, Field]] = {
    "ObjectMeta": _META,
    "LabelSelector": {1: ("matchLabels", "ms", None), 2: ("matchExpressions", "rm", "LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "s", None), 2: ("operator", "s", None), 3: ("values", "rs", None)},
    "Namespace": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "NamespaceSpec"), 3: ("status", "m", "Empty")},
    "NamespaceSpec": {1: ("finalizers", "rs", None)},
    "ConfigMap": {
        1: ("metadata", "m", "ObjectMeta"),
        2: ("data", "ms", None),
        3: ("binaryData", "mb", None),
        4: ("immutable", "B", None),
    },
    "Secret": {
        1: ("metadata", "m", "ObjectMeta"),
        2: ("data", "mb", None),
        3: ("type", "s", None),
        4: ("stringData", "ms", None),
        5: ("immutable", "B", None),
    },
    "ServiceAccount": {1: ("metadata", "m", "ObjectMeta"), 4: ("automountServiceAccountToken", "B", None)},
    "Deployment": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "DeploymentSpec"), 3: ("status", "m", "Empty")},
    "DeploymentSpec": {
        1: ("replicas", "I", None),
        2: ("selector", "m", "LabelSelector"),
        3: ("template", "m", "PodTemplateSpec"),
        4: ("strategy", "m", "DeploymentStrategy"),
        5: ("minReadySeconds", "i", None),
        6: ("revisionHistoryLimit", "I", None),
        7: ("paused", "b", None),
        9: ("progressDeadlineSeconds", "I", None),
    },
    "DeploymentStrategy": {1: ("type", "s", None)},
    "PodTemplateSpec": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "PodSpec")},
    "PodSpec": {2: ("containers", "rm", "Container"), 3: ("restartPolicy", "s", None)},
    "Container": {
        1: ("name", "s", None),
        2: ("image", "s", None),
        3: ("command", "rs", None),
        4: ("args", "rs", None),
        6: ("ports", "rm", "ContainerPort"),
        8: ("resources", "m", "Empty"),
    },
    "ContainerPort": {
        1: ("name", "s", None),
        2: ("hostPort", "i", None),
        3: ("containerPort", "i", None),
        4: ("protocol", "s", None),
        5: ("hostIP", "s", None),
    },
    "Service": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "ServiceSpec"), 3: ("status", "m", "Empty")},
    "ServiceSpec": {
        1: ("ports", "rm", "ServicePort"),
        2: ("selector", "ms", None),
        3: ("clusterIP", "s", None),
        4: ("type", "s", None),
        10: ("externalName", "s", None),
    },
    "ServicePort": {
        1: ("name", "s", None),
        2: ("protocol", "s", None),
        3: ("port", "i", None),
        4: ("targetPort", "ios", None),
        5: ("nodePort", "i", None),
    },
    "Job": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "JobSpec"), 3: ("status", "m", "Empty")},
    "JobSpec": {6: ("template", "m", "PodTemplateSpec")},
    "RoleBinding": {
        1: ("metadata", "m", "ObjectMeta"),
        2: ("subjects", "rm", "Subject"),
        3: ("roleRef", "m", "RoleRef"),
    },
    "ClusterRoleBinding": {
        1: ("metadata", "m", "ObjectMeta"),
        2: ("subjects", "rm", "Subject"),
        3: ("roleRef", "m", "RoleRef"),
    },
    "Subject": {
        1: ("kind", "s", None),
        2: ("apiGroup", "s", None),
        3: ("name", "s", None),
        4: ("namespace", "s", None),
    },
    "RoleRef": {1: ("apiGroup", "s", None), 2: ("kind", "s", None), 3: ("name", "s", None)},
    "CronJob": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "CronJobSpec"), 3: ("status", "m", "Empty")},
    "CronJobSpec": {1: ("schedule", "s", None), 5: ("jobTemplate", "m", "JobTemplateSpec")},
    "JobTemplateSpec": {1: ("metadata", "m", "ObjectMeta"), 2: ("spec", "m", "JobSpec")},
    "Role": {1: ("metadata", "m", "ObjectMeta"), 2: ("rules", "rm", "PolicyRule")},
    "ClusterRole": {1: ("metadata", "m", "ObjectMeta"), 2: ("rules", "rm", "PolicyRule")},
    "PolicyRule": {
        1: ("verbs", "rs", None),
        2: ("apiGroups", "rs", None),
        3: ("resources", "rs", None),
        4: ("resourceNames", "rs", None),
        5: ("nonResourceURLs", "rs", None),
    },
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "I", None),
        2: ("preconditions", "m", "Preconditions"),
        4: ("propagationPolicy", "s", None),
        5: ("dryRun", "rs", None),
    },
    "Preconditions": {1: ("uid", "s", None), 2: ("resourceVersion", "s", None)},
    "Empty": {},
}


class Unsupported(ValueError):
    """The body holds something these tables do not describe."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(data):
            raise Unsupported("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos
        if shift > 70:
            raise Unsupported("varint too long")


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    pos, out = 0, []
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise Unsupported("truncated field")
            out.append((number, data[pos : pos + length]))
            pos += length
        else:
            raise Unsupported(f"wire type {wire}")
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise Unsupported("expected a string")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise Unsupported("invalid UTF-8") from None


def _entry(value: int | bytes) -> tuple[str, bytes]:
    key, raw = "", b""
    for number, item in _fields(value if isinstance(value, bytes) else b""):
        if number == 1:
            key = _text(item)
        elif number == 2 and isinstance(item, bytes):
            raw = item
    return key, raw


def decode_message(data: bytes, message: str) -> dict[str, Any]:
    table = MESSAGES[message]
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        spec = table.get(number)
        if spec is None:
            if value in (0, b""):
                continue  # a zero value Go always writes: absent in JSON
            raise Unsupported(f"field {number} of {message}")
        name, kind, sub = spec
        if kind == "s":
            if text := _text(value):
                out[name] = text
        elif kind in ("i", "I"):
            if not isinstance(value, int):
                raise Unsupported(f"{message}.{name} is not an integer")
            if value or kind == "I":
                out[name] = _signed(value)
        elif kind in ("b", "B"):
            if value or kind == "B":
                out[name] = bool(value)
        elif kind == "m":
            decoded = decode_message(value if isinstance(value, bytes) else b"", sub or "Empty")
            if decoded:
                out[name] = decoded
        elif kind == "rm":
            out.setdefault(name, []).append(decode_message(value if isinstance(value, bytes) else b"", sub or "Empty"))
        elif kind == "rs":
            out.setdefault(name, []).append(_text(value))
        elif kind == "ms":
            key, raw = _entry(value)
            out.setdefault(name, {})[key] = _text(raw)
        elif kind == "mb":
            key, raw = _entry(value)
            out.setdefault(name, {})[key] = base64.b64encode(raw).decode()
        elif kind == "ios":
            parts = dict(_fields(value if isinstance(value, bytes) else b""))
            out[name] = _text(parts.get(3, b"")) if parts.get(1) == 1 else _signed(int(parts.get(2, 0) or 0))
    return out


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object of a kind in MESSAGES."""
    if not body.startswith(MAGIC):
        raise Unsupported("missing the k8s protobuf prefix")
    fields = dict(_fields(body[len(MAGIC) :]))
    type_meta = dict(_fields(fields.get(1, b"") if isinstance(fields.get(1), bytes) else b""))
    api_version, kind = _text(type_meta.get(1, b"")), _text(type_meta.get(2, b""))
    if kind not in MESSAGES or kind in ("Empty", "ObjectMeta", "Preconditions") or kind[0].islower():
        raise Unsupported(f"kind {kind!r}")
    raw = fields.get(2, b"")
    obj = decode_message(raw if isinstance(raw, bytes) else b"", kind)
    return {"apiVersion": api_version, "kind": kind, **obj}
