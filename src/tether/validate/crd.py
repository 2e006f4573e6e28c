"""Schemas of custom resources: from CRDs in the same set, or from a cluster through a callback."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: ``lookup(group, version, kind)`` returns a CRD object (as a dict) from a cluster, or None
CRDLookup = Callable[[str, str, str], dict[str, Any] | None]

_KEEP = (
    "properties",
    "items",
    "additionalProperties",
    "required",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "type",
)


def to_json_schema(schema: Any) -> Any:
    """OpenAPI v3 (structural, as in CRDs) to JSON Schema: ``nullable`` and ``int-or-string`` made explicit."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key in _KEEP:
        if key not in schema:
            continue
        value = schema[key]
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        else:
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-embedded-resource"):
        out.pop("additionalProperties", None)
    return out


def crd_versions(crd: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``(group, version, kind) -> JSON schema`` for each served version of one CRD."""
    spec = crd.get("spec") or {}
    group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    if not isinstance(group, str) or not isinstance(kind, str):
        return found
    shared = (spec.get("validation") or {}).get("openAPIV3Schema")  # v1beta1 CRDs
    for version in spec.get("versions") or []:
        if not isinstance(version, dict) or not version.get("served", True):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or shared or {"type": "object"}
        converted = to_json_schema(schema)
        # the API server validates metadata itself; keep name / namespace shapes honest here too
        converted.setdefault("properties", {}).setdefault("metadata", {"type": "object"})
        found[(group, str(version.get("name")), kind)] = converted
    return found


def crd_schemas(objects: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition" and str(obj.get("apiVersion", "")).startswith(
            "apiextensions.k8s.io/"
        ):
            schemas.update(crd_versions(obj))
    return schemas


def index_crds(objects: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``(group, version, kind) -> CRD object`` for every served version of every CRD among ``objects``."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition" and str(obj.get("apiVersion", "")).startswith(
            "apiextensions.k8s.io/"
        ):
            for gvk in crd_versions(obj):
                out[gvk] = obj
    return out


def crds_in_directory(directory: str | Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The CRDs in the YAML / JSON files under ``directory`` (``--schema-location``), indexed as
    ``index_crds``; files without a CRD are skipped, a file that does not parse is an error naming it."""
    import yaml

    from tether.errors import UsageError

    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"--schema-location {directory}: not a directory")
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise UsageError(f"--schema-location {path}: not YAML or JSON ({error})") from None
        found.update(index_crds(d for d in documents if isinstance(d, dict)))
    return found


def lookup_in(*tables: dict[tuple[str, str, str], dict[str, Any]]) -> CRDLookup:
    """A CRDLookup over tables from ``index_crds``; earlier tables win."""

    def find(group: str, version: str, kind: str) -> dict[str, Any] | None:
        return next((t[(group, version, kind)] for t in tables if (group, version, kind) in t), None)

    return find
