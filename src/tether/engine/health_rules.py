"""Health rules beyond the built-in ones: CEL checks per kind, and the kinds that promise a status.

CEL checks follow Flux's Kustomization ``spec.healthCheckExprs``: an entry names ``apiVersion``
and ``kind`` and gives CEL expressions ``current`` (required), ``inProgress`` and ``failed``.
As in Flux:

- an entry matches by API group and kind; the version in ``apiVersion`` is not compared;
- the object's top-level fields are the variables (``status.conditions``, ``metadata.generation``,
  ``spec.replicas``), not one ``self`` variable;
- a status whose ``observedGeneration`` differs from ``metadata.generation`` is InProgress before
  any expression runs (``health.compute`` checks that for every kind);
- ``inProgress``, then ``failed``, then ``current`` are evaluated; the first that is true gives
  the status; when none is, the object is InProgress;
- of two entries for the same kind in one list, the first counts.

An expression that cannot be evaluated on an object (a field it reads is missing, the result is
not a bool) makes that object Unknown with a message naming the entry: a wait keeps waiting
(Flux waits until its timeout too) and nothing crashes. Expressions are compiled once, when the
entries are loaded; a syntax error is a ``UsageError`` naming the file, the entry and the text.

``HealthRules`` also carries the (group, kind) pairs whose CustomResourceDefinition promises a
status (see ``tether.engine.health_kinds``); ``health.compute`` takes one ``HealthRules``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celpy

from tether.engine.health import HealthResult, Status
from tether.errors import UsageError
from tether.validate.policy import read_yaml_file

#: the fields of an entry, as Flux spells them; ``current`` is the only required expression
FIELDS = ("apiVersion", "kind", "current", "inProgress", "failed")
#: evaluation order (Flux's): the first true expression decides
ORDER = (("inProgress", Status.IN_PROGRESS), ("failed", Status.FAILED), ("current", Status.CURRENT))

GroupKind = tuple[str, str]


@functools.lru_cache(maxsize=1)
def _environment() -> celpy.Environment:
    return celpy.Environment()


@functools.lru_cache(maxsize=1024)
def _compile(expression: str) -> Any:
    """One program per distinct expression text, shared by every rule set that uses it
    (the controller rebuilds an app's rules each pass; this keeps that free of recompiles)."""
    env = _environment()
    return env.program(env.compile(expression))


def syntax_error(expression: str) -> str:
    """Why ``expression`` does not compile ("" when it does)."""
    try:
        _compile(expression)
    except celpy.CELParseError as error:
        return " ".join(str(error).split())
    return ""


def _short(error: Exception) -> str:
    """celpy's evaluation errors end in a dump of the whole activation: keep the first sentence."""
    text = str(error.args[0]) if error.args else str(error)
    return text.split(" (in activation", 1)[0].strip()


@dataclass(frozen=True)
class HealthCheck:
    """One ``healthCheckExprs`` entry, compiled."""

    api_version: str
    kind: str
    current: str
    in_progress: str = ""
    failed: str = ""
    #: where the entry came from, for messages: ``rules.yaml: healthCheckExprs[0] (Widget)``
    where: str = ""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def expressions(self) -> list[tuple[str, str, Status]]:
        texts = {"inProgress": self.in_progress, "failed": self.failed, "current": self.current}
        return [(name, texts[name], status) for name, status in ORDER if texts[name]]

    def evaluate(self, obj: dict[str, Any]) -> HealthResult:
        activation = {str(key): celpy.json_to_cel(value) for key, value in obj.items()}
        for name, text, status in self.expressions():
            try:
                value = _compile(text).evaluate(activation)
            except celpy.CELEvalError as error:
                value = error
            except Exception as error:  # a user's expression must never stop the wait
                value = celpy.CELEvalError(f"{type(error).__name__}: {error}")
            if isinstance(value, celpy.CELEvalError):
                return HealthResult(
                    Status.UNKNOWN,
                    f"health check {self.where}: {name} could not be evaluated: {_short(value)} ({text.strip()})",
                    "HealthCheckError",
                )
            if not isinstance(value, celpy.celtypes.BoolType | bool):
                return HealthResult(
                    Status.UNKNOWN,
                    f"health check {self.where}: {name} gave {type(value).__name__}, not a bool ({text.strip()})",
                    "HealthCheckError",
                )
            if value:
                return HealthResult(status, f"{name}: {text.strip()}", f"HealthCheck{name[0].upper()}{name[1:]}")
        return HealthResult(
            Status.IN_PROGRESS, f"health check {self.where}: no expression is true yet", "HealthCheckPending"
        )


class HealthRules:
    """CEL checks by (group, kind), and the custom kinds whose CRD promises a status."""

    def __init__(self, checks: Iterable[HealthCheck] = (), status_kinds: Iterable[GroupKind] = ()) -> None:
        self.checks: dict[GroupKind, HealthCheck] = {}
        for check in checks:
            self.checks.setdefault((check.group, check.kind), check)  # the first entry of a kind counts
        self.status_kinds: frozenset[GroupKind] = frozenset(status_kinds)

    def __bool__(self) -> bool:
        return bool(self.checks or self.status_kinds)

    def __repr__(self) -> str:
        return f"HealthRules(checks={sorted(self.checks)}, status_kinds={sorted(self.status_kinds)})"

    def check_for(self, group: str, kind: str) -> HealthCheck | None:
        return self.checks.get((group, kind))

    def reports_status(self, group: str, kind: str) -> bool:
        return (group, kind) in self.status_kinds

    def overridden_by(self, other: HealthRules | None) -> HealthRules:
        """These rules with ``other``'s checks taking the place of ours for the kinds it names."""
        if not other:
            return self
        return HealthRules([*other.checks.values(), *self.checks.values()], self.status_kinds | other.status_kinds)

    def with_status_kinds(self, kinds: Iterable[GroupKind]) -> HealthRules:
        return HealthRules(self.checks.values(), self.status_kinds | frozenset(kinds))


def parse_health_checks(entries: Any, source: str) -> HealthRules:
    """``healthCheckExprs`` entries (a list, or a mapping holding one under ``healthCheckExprs``),
    validated and compiled; ``source`` names where they came from (a file, an Application field)."""
    if isinstance(entries, dict) and "healthCheckExprs" in entries:
        entries = entries["healthCheckExprs"]
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise UsageError(f"{source}: expected a list of health checks (or healthCheckExprs: [...])")
    checks = []
    for index, entry in enumerate(entries):
        where = f"{source}: healthCheckExprs[{index}]"
        if not isinstance(entry, dict):
            raise UsageError(f"{where}: expected a mapping with apiVersion, kind and current")
        unknown = sorted(set(entry) - set(FIELDS))
        if unknown:
            raise UsageError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(FIELDS)})")
        for name in FIELDS:
            value = entry.get(name)
            if value is not None and not isinstance(value, str):
                raise UsageError(f"{where}: {name} must be a string")
        for name in ("apiVersion", "kind", "current"):
            if not (entry.get(name) or "").strip():
                raise UsageError(f"{where}: {name} is required")
        where = f"{where} ({entry['kind']})"
        check = HealthCheck(
            entry["apiVersion"].strip(),
            entry["kind"].strip(),
            entry["current"],
            entry.get("inProgress") or "",
            entry.get("failed") or "",
            where,
        )
        for name, text, _status in check.expressions():
            detail = syntax_error(text)
            if detail:
                raise UsageError(f"{where}: {name} is not a valid CEL expression: {text.strip()!r}: {detail}")
        checks.append(check)
    return HealthRules(checks)


def load_health_rules(path: str | Path) -> HealthRules:
    """A rules file (``--health-rules``): YAML holding the entries (see ``parse_health_checks``)."""
    file = Path(path)
    return parse_health_checks(read_yaml_file(file, "health rules file"), str(file))
