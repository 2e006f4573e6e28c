"""The Alert API (tether.dev/v1alpha1): which Application outcomes are told, to whom, how often.

Field names are the API: ``spec.apps``, ``spec.selector``, ``spec.events``,
``spec.urlsSecretRef.name``, ``spec.template``, ``spec.failingFor``, ``spec.minInterval``,
``spec.groupWindow`` (and ``spec.suspend``). An Alert matches an Application of its own
namespace that is in ``apps`` (default ``*``) and matches ``selector`` (default: every app).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from tether.controller import reports as rp
from tether.controller.api import CRD_INFO, parse_duration
from tether.errors import KubeError, UsageError
from tether.kube import Kube, ResourceInfo

ALERT_CRD_NAME = "alerts.tether.dev"
ALERT_INFO = ResourceInfo("tether.dev", "v1alpha1", "Alert", "alerts", True)
#: the events an Alert may name (Progressing never alerts: its outcome is not known yet)
EVENTS = (
    rp.SYNC_FAILED,
    rp.HEALTH_DEGRADED,
    rp.RECOVERED,
    rp.DEPLOYED,
    rp.DRIFT_DETECTED,
    rp.DRIFT_CORRECTED,
    rp.PRUNE_BLOCKED,
    rp.DEPENDENCY_NOT_READY,
    rp.SUSPENDED,
)
DEFAULT_EVENTS = (rp.SYNC_FAILED, rp.HEALTH_DEGRADED, rp.RECOVERED)


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # NotIn


@dataclass(frozen=True)
class AlertSpec:
    namespace: str
    name: str
    apps: tuple[str, ...] = ("*",)
    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()
    events: tuple[str, ...] = DEFAULT_EVENTS
    urls_secret: str = ""
    template: str = ""
    failing_for: float = 0.0
    min_interval: float = 0.0
    group_window: float = 0.0
    suspend: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def selects(self, namespace: str, name: str, labels: dict[str, str]) -> bool:
        if namespace != self.namespace or not ("*" in self.apps or name in self.apps):
            return False
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.match_expressions
        )


def parse_alert(obj: dict[str, Any]) -> AlertSpec:
    """The typed spec of an Alert object; ``UsageError`` naming the field that is wrong."""
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    where = f"Alert {namespace}/{name}"
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        raise UsageError(f"{where}: spec must be an object")
    events = tuple(spec.get("events") or DEFAULT_EVENTS)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise UsageError(
            f"{where}: spec.events has unknown event(s) {', '.join(map(str, unknown))}; known: {', '.join(EVENTS)}"
        )
    secret = str(((spec.get("urlsSecretRef") or {}).get("name")) or "")
    if not secret:
        raise UsageError(f"{where}: spec.urlsSecretRef.name is required (a Secret whose key 'urls' holds Apprise URLs)")
    selector = spec.get("selector") or {}
    expressions = []
    for index, item in enumerate(selector.get("matchExpressions") or []):
        operator = item.get("operator")
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise UsageError(
                f"{where}: spec.selector.matchExpressions[{index}].operator {operator!r} must be "
                "In, NotIn, Exists or DoesNotExist"
            )
        expressions.append(
            Requirement(str(item.get("key") or ""), operator, tuple(str(v) for v in item.get("values") or ()))
        )

    def duration(field: str) -> float:
        text = spec.get(field)
        if text in (None, ""):
            return 0.0
        try:
            return parse_duration(str(text)).total_seconds()
        except ValueError as error:
            raise UsageError(f"{where}: spec.{field}: {error}") from None

    return AlertSpec(
        namespace=namespace,
        name=name,
        apps=tuple(str(a) for a in spec.get("apps") or ("*",)),
        match_labels=tuple(sorted((str(k), str(v)) for k, v in (selector.get("matchLabels") or {}).items())),
        match_expressions=tuple(expressions),
        events=events,
        urls_secret=secret,
        template=str(spec.get("template") or ""),
        failing_for=duration("failingFor"),
        min_interval=duration("minInterval"),
        group_window=duration("groupWindow"),
        suspend=bool(spec.get("suspend")),
    )


@functools.cache
def _parsed_crd() -> dict[str, Any]:
    text = resources.files("tether.notify").joinpath("crds/alerts.yaml").read_text()
    return yaml.safe_load(text)


def load_alert_crd() -> dict[str, Any]:
    return copy.deepcopy(_parsed_crd())


async def install_alert_crd(kube: Kube, *, timeout: float = 60.0, field_manager: str = "tether-notifier") -> None:
    """Server-side apply the Alert CRD and wait until Alerts are served."""
    await kube.apply(CRD_INFO, load_alert_crd(), force=True, field_manager=field_manager)

    async def served() -> ResourceInfo | None:
        try:
            return await kube.info(f"{ALERT_INFO.group}/{ALERT_INFO.version}", ALERT_INFO.kind, refresh=True)
        except KubeError:
            return None

    await kube.wait_for("tether.dev/v1alpha1 Alert to be served", served, timeout)


__all__ = [
    "ALERT_CRD_NAME",
    "ALERT_INFO",
    "DEFAULT_EVENTS",
    "EVENTS",
    "AlertSpec",
    "Requirement",
    "install_alert_crd",
    "load_alert_crd",
    "parse_alert",
]
