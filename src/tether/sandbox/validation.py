"""Schema validation of written objects, compiled once per kind.

A schema (a built-in OpenAPI definition or a CRD version's ``openAPIV3Schema``) compiles into
a tree of small node objects; checking an object walks the tree once, collecting upstream-style
field errors (``spec.replicas``, ``spec.template.spec.containers[0].image``), pruning fields
the schema does not declare (reported as unknown so ``fieldValidation`` can warn or refuse) and,
for CRDs, filling ``default`` values. Compiling is the slow part, so validators are cached.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from tether import schemas

_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


@dataclass
class Report:
    """What one validation found: field errors (422 causes) and undeclared fields (dropped)."""

    errors: list[dict[str, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    defaulting: bool = False

    def error(self, reason: str, path: str, message: str) -> None:
        self.errors.append({"reason": reason, "message": message, "field": path})


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str | int | float | bool) or value is None else _type_name(value)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


class Node:
    """Accepts any value (untyped JSON, ``x-kubernetes-preserve-unknown-fields`` without structure)."""

    nullable = True

    def check(self, value: Any, path: str, report: Report) -> None:
        return None


class ScalarNode(Node):
    def __init__(self, types: tuple[str, ...], nullable: bool, schema: dict[str, Any]) -> None:
        self.types = types
        self.py_types = tuple(t for name in types for t in _JSON_TYPES.get(name, ()))
        self.nullable = nullable
        self.enum = schema.get("enum")
        self.extra = {k: schema[k] for k in _CONSTRAINTS if k in schema}
        if "pattern" in self.extra:
            self.extra["pattern"] = re.compile(self.extra["pattern"])

    def check(self, value: Any, path: str, report: Report) -> None:
        if value is None:
            if not self.nullable:
                report.error(
                    "FieldValueTypeInvalid",
                    path,
                    f'Invalid value: "null": {path} in body must be of type {self.types[0]}: "null"',
                )
            return
        if not isinstance(value, self.py_types) or (isinstance(value, bool) and "boolean" not in self.types):
            report.error(
                "FieldValueTypeInvalid",
                path,
                f'Invalid value: "{_type_name(value)}": {path} in body must be of type '
                f'{" or ".join(self.types)}: "{_type_name(value)}"',
            )
            return
        if self.enum is not None and value not in self.enum:
            allowed = ", ".join(json.dumps(v) for v in self.enum if v is not None)
            report.error(
                "FieldValueNotSupported", path, f"Unsupported value: {_show(value)}: supported values: {allowed}"
            )
        if self.extra:
            _check_constraints(self.extra, value, path, report)


_CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
)


def _check_constraints(extra: dict[str, Any], value: Any, path: str, report: Report) -> None:
    def bad(why: str) -> None:
        report.error("FieldValueInvalid", path, f"Invalid value: {_show(value)}: {path} in body {why}")

    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in extra and (
            value <= extra["minimum"] if extra.get("exclusiveMinimum") else value < extra["minimum"]
        ):
            bad(f"should be greater than or equal to {extra['minimum']}")
        if "maximum" in extra and (
            value >= extra["maximum"] if extra.get("exclusiveMaximum") else value > extra["maximum"]
        ):
            bad(f"should be less than or equal to {extra['maximum']}")
        if extra.get("multipleOf") and value % extra["multipleOf"]:
            bad(f"should be a multiple of {extra['multipleOf']}")
    elif isinstance(value, str):
        if "minLength" in extra and len(value) < extra["minLength"]:
            bad(f"should be at least {extra['minLength']} chars long")
        if "maxLength" in extra and len(value) > extra["maxLength"]:
            report.error("TooLong", path, f"Too long: may not be more than {extra['maxLength']} bytes")
        if "pattern" in extra and not extra["pattern"].search(value):
            bad(f"should match '{extra['pattern'].pattern}'")
    elif isinstance(value, list):
        if "minItems" in extra and len(value) < extra["minItems"]:
            bad(f"should have at least {extra['minItems']} items")
        if "maxItems" in extra and len(value) > extra["maxItems"]:
            report.error("TooMany", path, f"Too many: {len(value)}: must have at most {extra['maxItems']} items")
    elif isinstance(value, dict):
        if "minProperties" in extra and len(value) < extra["minProperties"]:
            bad(f"should have at least {extra['minProperties']} properties")
        if "maxProperties" in extra and len(value) > extra["maxProperties"]:
            bad(f"should have at most {extra['maxProperties']} properties")


class IntOrStringNode(Node):
    def check(self, value: Any, path: str, report: Report) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | str | float)):
            report.error(
                "FieldValueTypeInvalid",
                path,
                f'Invalid value: "{_type_name(value)}": {path} in body must be of type integer or string: '
                f'"{_type_name(value)}"',
            )


class ObjectNode(Node):
    def __init__(self) -> None:
        self.properties: dict[str, Node] = {}
        self.required: tuple[str, ...] = ()
        self.additional: Node | None = None
        self.preserve_unknown = False
        self.nullable = True
        self.defaults: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.enum: list[Any] | None = None

    def check(self, value: Any, path: str, report: Report) -> None:
        if not isinstance(value, dict):
            if value is None and self.nullable:
                return
            report.error(
                "FieldValueTypeInvalid",
                path,
                f'Invalid value: "{_type_name(value)}": {path} in body must be of type object: "{_type_name(value)}"',
            )
            return
        prefix = path + "." if path else ""
        if self.defaults and report.defaulting:
            for key, default in self.defaults.items():
                if key not in value:
                    value[key] = copy.deepcopy(default)
        properties = self.properties
        unknown: list[str] | None = None
        for key, child in value.items():
            node = properties.get(key)
            if node is not None:
                node.check(child, prefix + key, report)
            elif self.additional is not None:
                self.additional.check(child, f"{prefix}{key}" if not path else f"{path}[{key}]", report)
            elif not self.preserve_unknown:
                (unknown := unknown or []).append(key)
        if unknown:
            for key in unknown:
                report.unknown.append(prefix + key)
                del value[key]
        for key in self.required:
            if value.get(key) is None:
                report.error("FieldValueRequired", prefix + key, "Required value")
        if self.extra:
            _check_constraints(self.extra, value, path, report)


class ArrayNode(Node):
    def __init__(self, items: Node, nullable: bool, schema: dict[str, Any]) -> None:
        self.items = items
        self.nullable = nullable
        self.extra = {k: schema[k] for k in _CONSTRAINTS if k in schema}
        self.set_like = schema.get("x-kubernetes-list-type") == "set"

    def check(self, value: Any, path: str, report: Report) -> None:
        if not isinstance(value, list):
            if value is None and self.nullable:
                return
            report.error(
                "FieldValueTypeInvalid",
                path,
                f'Invalid value: "{_type_name(value)}": {path} in body must be of type array: "{_type_name(value)}"',
            )
            return
        items = self.items
        for index, item in enumerate(value):
            items.check(item, f"{path}[{index}]", report)
        if self.extra:
            _check_constraints(self.extra, value, path, report)
        if self.set_like and len(value) > 1:
            seen: list[Any] = []
            for index, item in enumerate(value):
                if item in seen:
                    report.error("FieldValueDuplicate", f"{path}[{index}]", f"Duplicate value: {_show(item)}")
                seen.append(item)


class _Compiler:
    """Compiles JSON-schema-ish dicts; ``defs`` resolves ``$ref`` lazily so recursive
    definitions (JSONSchemaProps) compile to cyclic node graphs."""

    def __init__(self, defs: dict[str, dict[str, Any]], *, crd: bool) -> None:
        self.defs = defs
        self.crd = crd
        self.by_name: dict[str, Node] = {}

    def ref(self, name: str) -> Node:
        node = self.by_name.get(name)
        if node is None:
            schema = self.defs.get(name, {})
            if _is_object(schema):
                # register before compiling the children: recursion ends at this placeholder
                node = self.by_name[name] = ObjectNode()
                self._fill_object(node, schema)
            else:
                node = self.by_name[name] = self.compile(schema)
        return node

    def compile(self, schema: dict[str, Any]) -> Node:
        if "$ref" in schema:
            return self.ref(schemas.ref_name(schema["$ref"]))
        if schema.get("x-kubernetes-int-or-string") or ("oneOf" in schema and not self.crd):
            return IntOrStringNode()
        types = schema.get("type")
        nullable = bool(schema.get("nullable"))
        if isinstance(types, list):
            nullable = nullable or "null" in types
            types = [t for t in types if t != "null"]
            types = types[0] if len(types) == 1 else None
        if types == "object" or (types is None and ("properties" in schema or "additionalProperties" in schema)):
            node = ObjectNode()
            self._fill_object(node, schema)
            node.nullable = nullable or not self.crd
            return node
        if types == "array":
            return ArrayNode(self.compile(schema.get("items") or {}), nullable or not self.crd, schema)
        if types in _JSON_TYPES:
            return ScalarNode((types,), nullable or not self.crd, schema)
        return Node()

    def _fill_object(self, node: ObjectNode, schema: dict[str, Any]) -> None:
        node.properties = {key: self.compile(sub) for key, sub in (schema.get("properties") or {}).items()}
        node.required = tuple(schema.get("required") or ())
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            node.additional = self.compile(additional)
        elif additional is True:
            node.additional = Node()
        node.preserve_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or (
            not self.crd and not node.properties and additional is None
        )
        if schema.get("x-kubernetes-embedded-resource"):
            meta = _builtin_compiler().ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            node.properties.setdefault("apiVersion", ScalarNode(("string",), True, {}))
            node.properties.setdefault("kind", ScalarNode(("string",), True, {}))
            node.properties.setdefault("metadata", meta)
        if self.crd:
            node.defaults = {
                k: sub["default"] for k, sub in (schema.get("properties") or {}).items() if "default" in sub
            }
            node.extra = {k: schema[k] for k in ("minProperties", "maxProperties") if k in schema}


def _is_object(schema: dict[str, Any]) -> bool:
    types = schema.get("type")
    return types == "object" or (isinstance(types, list) and "object" in types) or "properties" in schema


@functools.cache
def _builtin_compiler(kube_version: str = schemas.DEFAULT_KUBE_VERSION) -> _Compiler:
    return _Compiler(schemas.definitions(kube_version), crd=False)


def builtin_validator(definition: str) -> Node:
    """The compiled validator of a built-in kind (cached)."""
    return _builtin_compiler().ref(definition)


def crd_validator(schema: dict[str, Any] | None) -> Node:
    """The compiled validator of a CRD version's openAPIV3Schema. The object's ``metadata`` is
    always checked as ObjectMeta and ``apiVersion`` / ``kind`` are implicit, as upstream."""
    compiler = _Compiler({}, crd=True)
    root = compiler.compile(schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    if not isinstance(root, ObjectNode):
        root = ObjectNode()
        root.preserve_unknown = True
    meta = _builtin_compiler().ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    root.properties = dict(root.properties)
    root.properties["metadata"] = meta
    root.properties["apiVersion"] = ScalarNode(("string",), True, {})
    root.properties["kind"] = ScalarNode(("string",), True, {})
    return root


def validate(node: Node, obj: dict[str, Any], *, defaulting: bool = False) -> Report:
    """Check ``obj`` in place: unknown fields are removed, defaults filled when ``defaulting``."""
    report = Report(defaulting=defaulting)
    node.check(obj, "", report)
    return report
