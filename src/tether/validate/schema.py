"""Schema validation of rendered objects against the upstream Kubernetes schemas and CRD schemas.

Two engines, measured (docs/render.md): ``jsonschema`` needs no compilation but costs ~1 ms
per Deployment; ``fastjsonschema`` costs ~0.5 s to compile a big kind once and then ~0.05 ms
per object. A kind with many objects in the set (``FAST_THRESHOLD``), or one compiled by an
earlier run in the same process (the controller), is checked with a compiled validator; any
object the fast check rejects is re-checked with ``jsonschema`` to list every error with its path.

The "strict" variant of the upstream schemas is used so unknown fields (a typo such as
``replica:``) are found; they are reported as warnings because the API server drops them
rather than failing (unless asked for strict field validation).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import fastjsonschema
import jsonschema

from tether import schemas
from tether.model import Manifest
from tether.validate.crd import CRDLookup, crd_schemas, crd_versions
from tether.validate.findings import WARNING, Finding

FAST_THRESHOLD = 300  # break-even for a Deployment: ~0.5 s compile / ~1.1 ms per object
MAX_MESSAGE = 240


@functools.cache
def strict_definitions(kube_version: str) -> dict[str, Any]:
    path = schemas._schema_dir(kube_version)
    strict = path.with_name(path.name + "-strict") / "_definitions.json"
    with open(strict if strict.exists() else path / "_definitions.json", "rb") as handle:
        return json.load(handle)["$defs"]


def _root_schema(kube_version: str, name: str) -> dict[str, Any]:
    return {"$defs": strict_definitions(kube_version), "$ref": f"#/$defs/{name}"}


@functools.cache
def _detailed_validator(kube_version: str, name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_root_schema(kube_version, name))


_compiled: dict[tuple[str, str], Callable[[Any], Any]] = {}  # process-wide cache of compiled validators


def _fast_validator(kube_version: str, name: str) -> Callable[[Any], Any]:
    key = (kube_version, name)
    if key not in _compiled:
        _compiled[key] = fastjsonschema.compile(_root_schema(kube_version, name))
    return _compiled[key]


def _path(parts: Iterable[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _findings(manifest: Manifest, validator: jsonschema.protocols.Validator) -> list[Finding]:
    found = []
    for error in sorted(validator.iter_errors(manifest.obj), key=lambda e: list(map(str, e.absolute_path))):
        parts = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties") or {})
            for extra in sorted(k for k in error.instance if k not in allowed):
                found.append(
                    Finding.at(
                        manifest,
                        "unknown-field",
                        f"unknown field {extra!r}",
                        severity=WARNING,
                        field=_path([*parts, extra]),
                    )
                )
            continue
        message = error.message
        if error.validator in ("oneOf", "anyOf") and error.context:
            message = "; ".join(sorted({c.message for c in error.context}))
        found.append(Finding.at(manifest, "schema", _short(message), field=_path(parts)))
    return found


class SchemaValidator:
    """Validates objects of one set; construct once per set (it indexes the CRDs found in it)."""

    def __init__(self, kube_version: str, manifests: list[Manifest], crd_lookup: CRDLookup | None = None):
        self.kube_version = kube_version
        self.index = schemas.gvk_index(kube_version)
        self.crds = crd_schemas(m.obj for m in manifests)
        self.crd_lookup = crd_lookup
        self._crd_validators: dict[tuple[str, str, str], jsonschema.Draft202012Validator] = {}
        self._counts = Counter(self._key(m.obj) for m in manifests)
        self._groups = {group for group, _version, _kind in self.index}
        self._kinds_by_name: dict[str, list[str]] = {}
        for group, version, kind in self.index:
            self._kinds_by_name.setdefault(kind, []).append(f"{group}/{version}" if group else version)

    @staticmethod
    def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
        group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
        return group, version, str(obj.get("kind") or "")

    def _crd_validator(self, key: tuple[str, str, str]) -> jsonschema.Draft202012Validator | None:
        if key in self._crd_validators:
            return self._crd_validators[key]
        schema = self.crds.get(key)
        if schema is None and self.crd_lookup is not None:
            crd = self.crd_lookup(*key)
            schema = crd_versions(crd).get(key) if crd else None
        validator = jsonschema.Draft202012Validator(schema) if schema is not None else None
        self._crd_validators[key] = validator  # type: ignore[assignment]
        return validator

    def validate(self, manifest: Manifest) -> list[Finding]:
        key = self._key(manifest.obj)
        name = self.index.get(key)
        if name is not None:
            # compiling pays off for many objects of a kind, or at once when a previous run compiled it
            if self._counts[key] >= FAST_THRESHOLD or (self.kube_version, name) in _compiled:
                try:
                    _fast_validator(self.kube_version, name)(manifest.obj)
                    return []
                except fastjsonschema.JsonSchemaException:
                    pass  # fall through for the full list of errors
            return _findings(manifest, _detailed_validator(self.kube_version, name))
        validator = self._crd_validator(key)
        if validator is not None:
            return _findings(manifest, validator)
        group, version, kind = key
        served = self._kinds_by_name.get(kind)
        api_version = f"{group}/{version}" if group else version
        builtin_group = group in self._groups or "." not in group
        if served and builtin_group:
            hint = f"; Kubernetes {self.kube_version} serves {kind} as {', '.join(sorted(served))}"
        else:
            hint = "; no CRD for it in this set" + (" or in the cluster" if self.crd_lookup else "")
        return [Finding.at(manifest, "unknown-kind", f"unknown kind {api_version} {kind}{hint}")]
