"""Policies: CEL expressions (the language of Kubernetes admission policies) evaluated per object.

A policy file::

    policies:
      - name: no-latest-images
        message: images must be pinned to a tag other than latest
        severity: error            # or warning
        match:                     # optional: restrict by kind / apiVersion
          kinds: [Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod]
        expression: >
          containers.all(c, c.image.contains(':') && !c.image.endsWith(':latest'))

Variables: ``object`` (the whole object) and ``containers`` (every container and init
container of the object's pod template, for any workload kind; an empty list otherwise), so
one expression covers Pods, Deployments, CronJobs and the rest. An expression must evaluate
to ``true`` for the object to pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import celpy
import yaml

from tether.errors import UsageError
from tether.model import Manifest
from tether.validate.findings import ERROR, WARNING, Finding


@dataclass
class Policy:
    name: str
    expression: str
    message: str = ""
    severity: str = ERROR
    kinds: list[str] = field(default_factory=list)
    api_versions: list[str] = field(default_factory=list)
    program: Any = None

    def matches(self, obj: dict[str, Any]) -> bool:
        return (not self.kinds or obj.get("kind") in self.kinds) and (
            not self.api_versions or obj.get("apiVersion") in self.api_versions
        )


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template") if isinstance(spec, dict) else None
    return (template or {}).get("spec") if isinstance(template, dict) else None


def containers_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj) or {}
    return [c for key in ("initContainers", "containers") for c in (spec.get(key) or []) if isinstance(c, dict)]


def read_yaml_file(file: Path, what: str) -> Any:
    """The YAML document of an operator's file named on the command line (``what``: "policy file");
    an unreadable file or bad YAML is a usage error naming the file, line and column."""
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"{file}: cannot read {what}: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
        raise UsageError(f"{where}: invalid YAML in {what}") from None


def load_policies(path: str | Path) -> list[Policy]:
    file = Path(path)
    data = read_yaml_file(file, "policy file")
    entries = data.get("policies") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise UsageError(f"{file}: a policy file needs a 'policies:' list")
    env = celpy.Environment()
    policies = []
    for index, entry in enumerate(entries):
        where = f"{file}: policies[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("expression"), str):
            raise UsageError(f"{where}: needs an 'expression' (CEL)")
        name = str(entry.get("name") or f"policy-{index}")
        severity = str(entry.get("severity") or ERROR)
        if severity not in (ERROR, WARNING):
            raise UsageError(f"{where} ({name}): severity must be 'error' or 'warning'")
        try:
            program = env.program(env.compile(entry["expression"]))
        except celpy.CELParseError as error:
            raise UsageError(f"{where} ({name}): invalid CEL expression: {error}") from error
        match = entry.get("match") or {}
        policies.append(
            Policy(
                name,
                entry["expression"],
                str(entry.get("message") or ""),
                severity,
                list(match.get("kinds") or []),
                list(match.get("apiVersions") or []),
                program,
            )
        )
    return policies


def evaluate(policies: list[Policy], manifest: Manifest) -> list[Finding]:
    found: list[Finding] = []
    applicable = [p for p in policies if p.matches(manifest.obj)]
    if not applicable:
        return found
    activation = {
        "object": celpy.json_to_cel(manifest.obj),
        "containers": celpy.json_to_cel(containers_of(manifest.obj)),
    }
    for policy in applicable:
        try:
            result = policy.program.evaluate(activation)
        except celpy.CELEvalError as error:
            found.append(
                Finding.at(
                    manifest,
                    "policy-error",
                    f"policy {policy.name}: {error.args[0]}",
                    severity=policy.severity,
                    policy=policy.name,
                )
            )
            continue
        if isinstance(result, celpy.CELEvalError):
            found.append(
                Finding.at(
                    manifest,
                    "policy-error",
                    f"policy {policy.name}: {result.args[0]}",
                    severity=policy.severity,
                    policy=policy.name,
                )
            )
        elif result is not True and not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            message = policy.message or f"expression is false: {policy.expression.strip()}"
            found.append(
                Finding.at(
                    manifest, "policy", f"policy {policy.name}: {message}", severity=policy.severity, policy=policy.name
                )
            )
    return found
