"""OpenAPI documents generated from the same schemas the server validates with: ``/openapi/v2``
(Swagger 2.0) and ``/openapi/v3`` (an index plus one document per group-version). kubectl reads
v3 for ``explain``, for strategic merge patches and to see that the server checks
``fieldValidation`` itself (the PATCH operations carry that parameter and the GVK extension)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tether import schemas
from tether.sandbox import openapi_proto
from tether.sandbox.resources import Registry, ResourceType

_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_COMMON = [
    _META + "Status",
    _META + "DeleteOptions",
    _META + "Patch",
    _META + "APIResourceList",
    "io.k8s.api.autoscaling.v1.Scale",
]


def _convert(schema: Any, prefix: str, v3: bool) -> Any:
    if isinstance(schema, list):
        return [_convert(s, prefix, v3) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref":
            out[key] = prefix + schemas.ref_name(value)
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if types:
                out[key] = types[0]
        elif key == "enum" and isinstance(value, list):
            out[key] = [v for v in value if v is not None]
        elif key == "oneOf" and not v3:
            out["type"], out["format"] = "string", "int-or-string"
        elif key in ("properties",):
            out[key] = {name: _convert(sub, prefix, v3) for name, sub in value.items()}
        else:
            out[key] = _convert(value, prefix, v3)
    if v3 and "$ref" in out and len(out) > 1:
        # OpenAPI 3.0 ignores siblings of $ref; upstream wraps references in allOf
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _closure(names: list[str], defs: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen or name not in defs:
            continue
        seen[name] = None
        text = json.dumps(defs[name])
        start = 0
        while (start := text.find('"#/$defs/', start)) != -1:
            end = text.find('"', start + 1)
            stack.append(text[start + 9 : end])
            start = end
    return sorted(seen)


def _crd_definition_name(rt: ResourceType, kind: str) -> str:
    return ".".join(reversed(rt.group.split("."))) + f".{rt.version}.{kind}"


def _crd_schema(rt: ResourceType, prefix: str, v3: bool) -> dict[str, Any]:
    schema = json.loads(json.dumps(rt.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}))
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object.",
    }
    props["kind"] = {
        "type": "string",
        "description": "Kind is a string value representing the REST resource this object represents.",
    }
    meta_ref = {"$ref": prefix + _META + "ObjectMeta"}
    props["metadata"] = {"allOf": [meta_ref], "description": "Standard object's metadata."} if v3 else meta_ref
    schema["type"] = "object"
    schema["x-kubernetes-group-version-kind"] = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
    return schema


def _definitions_for(types: list[ResourceType], prefix: str, v3: bool, *, everything: bool) -> dict[str, Any]:
    defs = schemas.definitions()
    wanted = list(defs) if everything else [rt.definition for rt in types if rt.definition] + _COMMON
    if any(rt.crd for rt in types):
        wanted.append(_META + "ObjectMeta")
        wanted.append(_META + "ListMeta")
    out = {name: _convert(defs[name], prefix, v3) for name in _closure(wanted, defs)}
    for rt in types:
        if rt.crd:
            out[_crd_definition_name(rt, rt.kind)] = _crd_schema(rt, prefix, v3)
            out[_crd_definition_name(rt, rt.list_kind)] = {
                "type": "object",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "items": {"type": "array", "items": {"$ref": prefix + _crd_definition_name(rt, rt.kind)}},
                    "metadata": {"$ref": prefix + _META + "ListMeta"},
                },
                "x-kubernetes-group-version-kind": [{"group": rt.group, "version": rt.version, "kind": rt.list_kind}],
            }
    return out


def _param(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": kind, "uniqueItems": True}}


_WRITE_PARAMS = [
    _param("dryRun", "When present, indicates that modifications should not be persisted."),
    _param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
    _param(
        "fieldValidation",
        "fieldValidation instructs the server on how to handle objects in the request "
        "containing unknown or duplicate fields. Valid values are: Ignore, Warn (default) and Strict.",
    ),
]


def _ref(rt: ResourceType, kind: str) -> dict[str, Any]:
    name = (
        _crd_definition_name(rt, kind)
        if rt.crd
        else rt.definition
        if kind == rt.kind
        else (rt.definition or "") + "List"
    )
    return {"$ref": "#/components/schemas/" + str(name)}


def _operation(rt: ResourceType, action: str, verb: str, scope: str, body: str | None, response_kind: str) -> dict:
    op_id = (
        verb
        + ("".join(p.capitalize() for p in rt.group.split(".")[:1]) if rt.group else "Core")
        + rt.version.capitalize()
        + scope
        + (rt.kind if action != "list" else rt.kind + "List")
    )
    op: dict[str, Any] = {
        "description": f"{action} {rt.kind}",
        "operationId": op_id,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": _ref(rt, response_kind)}}}
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
    }
    if body is not None:
        op["parameters"] = list(_WRITE_PARAMS) + (
            [_param("force", 'Force is going to "force" Apply requests.', "boolean")] if action == "patch" else []
        )
        types = (
            [
                "application/apply-patch+yaml",
                "application/json-patch+json",
                "application/merge-patch+json",
                *([] if rt.crd else ["application/strategic-merge-patch+json"]),
            ]
            if action == "patch"
            else ["*/*"]
        )
        schema = {"$ref": "#/components/schemas/" + _META + "Patch"} if action == "patch" else _ref(rt, rt.kind)
        op["requestBody"] = {"content": {t: {"schema": schema} for t in types}, "required": True}
    return op


def _paths(rt: ResourceType) -> dict[str, Any]:
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
    collection = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    scope = "Namespaced" if rt.namespaced else ""
    params = (
        [{"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}] if rt.namespaced else []
    )
    name_param = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths = {
        collection: {
            "get": _operation(rt, "list", "list", scope, None, rt.list_kind),
            "post": _operation(rt, "post", "create", scope, "body", rt.kind),
            "parameters": params,
        },
        f"{collection}/{{name}}": {
            "get": _operation(rt, "get", "read", scope, None, rt.kind),
            "put": _operation(rt, "put", "replace", scope, "body", rt.kind),
            "patch": _operation(rt, "patch", "patch", scope, "patch", rt.kind),
            "delete": _operation(rt, "delete", "delete", scope, None, rt.kind),
            "parameters": params + name_param,
        },
    }
    for sub in sorted(rt.subresources):
        suffix = sub.capitalize()
        paths[f"{collection}/{{name}}/{sub}"] = {
            "get": _operation(rt, "get", "read", scope + suffix, None, rt.kind),
            "put": _operation(rt, "put", "replace", scope + suffix, "body", rt.kind),
            "patch": _operation(rt, "patch", "patch", scope + suffix, "patch", rt.kind),
            "parameters": params + name_param,
        }
    return paths


class OpenAPI:
    """Documents cached per registry generation (CRD changes rebuild them)."""

    def __init__(self, registry: Registry, version: str) -> None:
        self.registry = registry
        self.version = version
        self._generation = -1
        self._docs: dict[str, bytes] = {}

    def _fresh(self) -> None:
        if self._generation != self.registry.generation:
            self._docs = {}
            self._generation = self.registry.generation

    def v3_document(self, gv_path: str) -> bytes | None:
        """``gv_path`` like ``api/v1`` or ``apis/apps/v1``."""
        self._fresh()
        if gv_path not in self._docs:
            parts = gv_path.split("/")
            if parts[0] == "api" and len(parts) == 2:
                group, version = "", parts[1]
            elif parts[0] == "apis" and len(parts) == 3:
                group, version = parts[1], parts[2]
            else:
                return None
            types = self.registry.in_group_version(group, version)
            if not types:
                return None
            paths: dict[str, Any] = {}
            for rt in types:
                paths.update(_paths(rt))
            doc = {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": self.version},
                "paths": paths,
                "components": {"schemas": _definitions_for(types, "#/components/schemas/", True, everything=False)},
            }
            self._docs[gv_path] = json.dumps(doc, separators=(",", ":")).encode()
        return self._docs[gv_path]

    def v3_index(self) -> bytes:
        self._fresh()
        if "index" not in self._docs:
            paths = {}
            for group, versions in self.registry.groups():
                for version in versions:
                    key = f"apis/{group}/{version}" if group else "api/v1"
                    digest = hashlib.sha512(self.v3_document(key) or b"").hexdigest().upper()[:128]
                    paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
            self._docs["index"] = json.dumps({"paths": paths}).encode()
        return self._docs["index"]

    def v2_protobuf(self) -> bytes:
        """``/openapi/v2`` as the gnostic protobuf message (kubectl 1.28 and older ask for it)."""
        self._fresh()
        if "v2.pb" not in self._docs:
            self._docs["v2.pb"] = openapi_proto.document_message(json.loads(self.v2()))
        return self._docs["v2.pb"]

    def v2(self) -> bytes:
        self._fresh()
        if "v2" not in self._docs:
            types = list(self.registry)
            definitions = _definitions_for([rt for rt in types if rt.crd], "#/definitions/", False, everything=True)
            doc = {
                "swagger": "2.0",
                "info": {"title": "Kubernetes", "version": self.version},
                "paths": {},
                "definitions": definitions,
            }
            self._docs["v2"] = json.dumps(doc, separators=(",", ":")).encode()
        return self._docs["v2"]
