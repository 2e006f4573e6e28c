"""What validation reports: findings with a rule id, a severity and a location."""

from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from tether.model import Manifest

ERROR = "error"
WARNING = "warning"

#: rule ids (also the SARIF rule ids)
RULES: dict[str, str] = {
    "render": "The source could not be read or rendered",
    "yaml-syntax": "YAML or JSON syntax error",
    "invalid-name": "metadata.name, generateName or namespace breaks the API server's naming rules",
    "object-too-large": "The object is larger than the API server stores (about 1.5 MiB of JSON)",
    "no-objects": "The source rendered no objects",
    "render-warning": "A renderer warned (kustomize deprecations, ...); the render still succeeded",
    "duplicate-object": "Two objects with the same group, kind, namespace and name",
    "schema": "The object does not match the schema of its kind",
    "unknown-field": "A field the schema of the kind does not define (dropped or rejected by the API server)",
    "cluster-scoped-namespace": "A cluster-scoped object names a namespace (the API server ignores it)",
    "unknown-kind": "No schema for this apiVersion/kind (not built in, no CRD in the set or in the cluster)",
    "policy": "A policy expression did not hold",
    "policy-error": "A policy expression could not be evaluated for this object",
}


@dataclass
class Finding:
    rule: str
    message: str
    severity: str = ERROR
    file: str = ""
    line: int | None = None
    column: int | None = None
    object: str = ""  # "Deployment.apps ns/name"
    field: str = ""  # JSON path inside the object, e.g. ".spec.replicas"
    policy: str = ""  # policy name for rule "policy"

    def location(self) -> str:
        where = self.file
        if where and self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        parts = [p for p in (self.location(), self.object) if p]
        prefix = " ".join(parts)
        field_text = f" at {self.field}" if self.field else ""
        return (
            f"{prefix}: {self.severity}: {self.message}{field_text} [{self.rule}]"
            if prefix
            else f"{self.severity}: {self.message}{field_text} [{self.rule}]"
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}

    @classmethod
    def at(cls, manifest: Manifest | None, rule: str, message: str, **extra: Any) -> Finding:
        if manifest is None:
            return cls(rule, message, **extra)
        source = manifest.source
        return cls(
            rule,
            message,
            file=source.file if source else "",
            line=source.line if source else None,
            object=str(manifest.ref),
            **extra,
        )


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    objects: int = 0
    kube_version: str = ""
    source: str = ""  # what was validated (path or masked URL)
    revision: str = ""  # commit SHA for Git sources

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def valid(self) -> bool:
        return not self.errors


_LOCATED = re.compile(
    r"^(?P<file>[^\s:()]+):(?P<line>\d+)(?::(?P<col>\d+))?[-:\d]*\s*(?:\([^)]*\))?:\s*(?P<msg>.*)$", re.S
)
_OUTER = re.compile(r"^(?P<file>[^\s:()]+)(?: \((?P<what>[^)]*)\))?:\s*(?P<msg>.*)$", re.S)
_HELM_AT = re.compile(r"\((?P<file>[^\s():]+):(?P<line>\d+):(?P<col>\d+)\)")


def finding_from_error(message: str) -> Finding:
    """Turn a RenderError / SourceError message into a located finding.

    Handles ``file:line:col: text``, ``file: text``, ``file: inner/file:line:col: text`` (Jsonnet,
    inner path relative to the outer file's directory) and ``Chart.yaml (helm chart): ... at
    (chart/templates/x.yaml:line:col): ...`` (Helm, inner path prefixed with the chart name).
    """
    rule = "yaml-syntax" if re.search(r"invalid (YAML|JSON)", message) else "render"
    match = _LOCATED.match(message)
    if match:
        column = int(match["col"]) if match["col"] else None
        return Finding(rule, match["msg"], file=match["file"], line=int(match["line"]), column=column)
    outer = _OUTER.match(message)
    if not outer or not ("/" in outer["file"] or "." in outer["file"]):
        return Finding(rule, message)
    base = posixpath.dirname(outer["file"])
    inner = _LOCATED.match(outer["msg"])
    if inner:
        column = int(inner["col"]) if inner["col"] else None
        return Finding(
            rule,
            inner["msg"],
            file=posixpath.normpath(posixpath.join(base, inner["file"])),
            line=int(inner["line"]),
            column=column,
        )
    helm = _HELM_AT.search(outer["msg"]) if outer["what"] == "helm chart" else None
    if helm:
        in_chart = helm["file"].split("/", 1)[-1]  # drop the chart name
        return Finding(
            rule,
            outer["msg"],
            file=posixpath.normpath(posixpath.join(base, in_chart)),
            line=int(helm["line"]),
            column=int(helm["col"]),
        )
    return Finding(rule, outer["msg"], file=outer["file"])
