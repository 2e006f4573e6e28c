"""The OpenAPI v2 document in protobuf form: the gnostic ``openapi.v2.Document`` message.

kube-apiserver serves ``/openapi/v2`` as this message when asked with
``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``; kubectl up to 1.28
asks for nothing else (apply, diff, explain and the "no matches for kind" lookup read it). The
encoder walks the Swagger JSON the sandbox already builds and writes the message's fields by
their numbers in the gnostic schema. Free-form values (``default``, ``enum``, ``example`` and
vendor extensions such as ``x-kubernetes-group-version-kind``) are ``Any`` messages carrying
YAML text, which is how gnostic stores them; JSON text is valid YAML, so it is written as is.
"""

from __future__ import annotations

import json
import struct
from typing import Any

MEDIA_TYPES = (
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
)
# the answer always names the second form: Go's media-type parser rejects the "@" of the first
MEDIA_TYPE = MEDIA_TYPES[1]


def wants_protobuf(accept: str) -> bool:
    """Whether an Accept header asks for the protobuf form (before any JSON alternative)."""
    for part in accept.split(","):
        media = part.split(";")[0].strip()
        if media in MEDIA_TYPES:
            return True
        if media in ("application/json", "*/*", "application/*"):
            return False
    return False


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


def _string(number: int, value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        return b""
    return _bytes(number, value.encode())


def _bool(number: int, value: Any) -> bytes:
    return _key(number, 0) + b"\x01" if value is True else b""


def _int(number: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        return b""
    return _key(number, 0) + _varint(value)


def _double(number: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return b""
    return _key(number, 1) + struct.pack("<d", float(value))


def _any(number: int, value: Any) -> bytes:
    """An ``Any`` message holding the value as YAML (field 2)."""
    return _bytes(number, _bytes(2, json.dumps(value, separators=(",", ":")).encode()))


def _named(number: int, name: str, value: bytes) -> bytes:
    return _bytes(number, _bytes(1, name.encode()) + _bytes(2, value))


# Schema fields by gnostic field number: (JSON key, encoder)
_SCALARS: tuple[tuple[int, str, Any], ...] = (
    (1, "$ref", _string),
    (2, "format", _string),
    (3, "title", _string),
    (4, "description", _string),
    (6, "multipleOf", _double),
    (7, "maximum", _double),
    (8, "exclusiveMaximum", _bool),
    (9, "minimum", _double),
    (10, "exclusiveMinimum", _bool),
    (11, "maxLength", _int),
    (12, "minLength", _int),
    (13, "pattern", _string),
    (14, "maxItems", _int),
    (15, "minItems", _int),
    (16, "uniqueItems", _bool),
    (17, "maxProperties", _int),
    (18, "minProperties", _int),
    (26, "discriminator", _string),
    (27, "readOnly", _bool),
)


def schema_message(schema: dict) -> bytes:
    """One JSON schema as a gnostic ``Schema`` message."""
    out = bytearray()
    for number, name, encode in _SCALARS:
        if name in schema:
            out += encode(number, schema[name])
    if "default" in schema:
        out += _any(5, schema["default"])
    for value in schema.get("required") or ():
        out += _string(19, value)
    for value in schema.get("enum") or ():
        out += _any(20, value)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        out += _bytes(21, _bytes(1, schema_message(extra)))
    elif isinstance(extra, bool):
        out += _bytes(21, _key(2, 0) + (b"\x01" if extra else b"\x00"))
    kind = schema.get("type")
    if kind:
        kinds = [kind] if isinstance(kind, str) else [k for k in kind if isinstance(k, str)]
        out += _bytes(22, b"".join(_string(1, k) for k in kinds))
    items = schema.get("items")
    if isinstance(items, dict):
        out += _bytes(23, _bytes(1, schema_message(items)))
    elif isinstance(items, list):
        out += _bytes(23, b"".join(_bytes(1, schema_message(item)) for item in items if isinstance(item, dict)))
    for sub in schema.get("allOf") or ():
        if isinstance(sub, dict):
            out += _bytes(24, schema_message(sub))
    properties = schema.get("properties")
    if isinstance(properties, dict):
        out += _bytes(25, b"".join(_named(1, name, schema_message(sub)) for name, sub in properties.items()))
    if "example" in schema:
        out += _any(30, schema["example"])
    for name, value in schema.items():
        if name.startswith("x-"):
            out += _bytes(31, _bytes(1, name.encode()) + _any(2, value))
    return bytes(out)


def document_message(doc: dict) -> bytes:
    """A Swagger 2.0 document (the sandbox's ``/openapi/v2`` JSON) as ``openapi.v2.Document``.
    Paths are not carried: the sandbox's v2 document declares none."""
    info = doc.get("info") or {}
    out = bytearray(_string(1, doc.get("swagger", "2.0")))
    out += _bytes(2, _string(1, info.get("title")) + _string(2, info.get("version")))
    out += _bytes(8, b"")
    definitions = doc.get("definitions") or {}
    out += _bytes(9, b"".join(_named(1, name, schema_message(schema)) for name, schema in definitions.items()))
    return bytes(out)
