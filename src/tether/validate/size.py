"""Objects too large for the API server to store.

etcd refuses a write over its request limit (``--max-request-bytes``, 1.5 MiB by default, the
value every managed cluster keeps), so an object whose JSON is larger can never be applied; the
API server's own request body limit (3 MiB) is higher and never the one that bites. ConfigMaps and
Secrets have a stricter limit of their own: their data may not exceed 1 MiB in total.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from tether.model import Manifest
from tether.validate.findings import Finding

RULE = "object-too-large"

#: etcd's default --max-request-bytes; the stored object must fit in one request
MAX_OBJECT_BYTES = 1536 * 1024
#: ConfigMap and Secret data (kube-apiserver's validation of both kinds)
MAX_DATA_BYTES = 1024 * 1024


def object_size(obj: dict[str, Any]) -> int:
    """Bytes of the object as compact JSON, the form it is sent in."""
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _decoded_length(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value)  # not base64: the schema check reports it; count it as it stands


def _items(obj: dict[str, Any], field: str) -> list[tuple[Any, Any]]:
    value = obj.get(field)
    return list(value.items()) if isinstance(value, dict) else []


def data_size(obj: dict[str, Any]) -> int | None:
    """Total data bytes of a ConfigMap or Secret as the API server counts them, else None."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if api_version != "v1" or kind not in ("ConfigMap", "Secret"):
        return None
    total = 0
    if kind == "ConfigMap":
        for key, value in _items(obj, "data"):
            total += len(str(key)) + len(str(value).encode("utf-8"))
        for key, value in _items(obj, "binaryData"):
            total += len(str(key)) + _decoded_length(value)
        return total
    for key, value in _items(obj, "data"):
        total += len(str(key)) + _decoded_length(value)
    for key, value in _items(obj, "stringData"):
        total += len(str(key)) + len(str(value).encode("utf-8"))
    return total


def check_sizes(manifests: list[Manifest]) -> list[Finding]:
    findings = []
    for manifest in manifests:
        obj = manifest.obj
        if not isinstance(obj, dict):
            continue
        size = object_size(obj)
        if size > MAX_OBJECT_BYTES:
            findings.append(
                Finding.at(
                    manifest,
                    RULE,
                    f"the object is {size} bytes of JSON, over the {MAX_OBJECT_BYTES} bytes (1.5 MiB) the API server "
                    "can store; split it (e.g. several ConfigMaps) or move the content elsewhere",
                )
            )
            continue
        data = data_size(obj)
        if data is not None and data > MAX_DATA_BYTES:
            findings.append(
                Finding.at(
                    manifest,
                    RULE,
                    f"{obj['kind']} data is {data} bytes, over the {MAX_DATA_BYTES} bytes (1 MiB) the "
                    "API server allows",
                    field=".data",
                )
            )
    return findings
