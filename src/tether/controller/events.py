"""Kubernetes Events about Applications (core/v1, what ``kubectl describe`` and ``kubectl get events`` show).

A repeat of the same type, reason and message for the same Application bumps ``count`` and
``lastTimestamp`` of the existing Event instead of creating another, as client-go's event
correlator does. Event names are derived from that identity, so aggregation also survives a
controller restart: a create that finds the Event already there bumps it.

Messages pass through ``sanitize``: passwords in URLs are masked and every value registered
with ``add_secret_values`` (Git credentials, decryption keys) is replaced by ``***``.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from tether.controller.api import API_VERSION, KIND, Application
from tether.controller.conditions import rfc3339
from tether.kube import AlreadyExists, Kube, NotFound, ResourceInfo

COMPONENT = "tether-controller"
REPORTING_CONTROLLER = "tether.dev/controller"

# reasons
RECONCILIATION_SUCCEEDED = "ReconciliationSucceeded"
RECONCILIATION_FAILED = "ReconciliationFailed"
DRIFT_CORRECTED = "DriftCorrected"
DRIFT_DETECTED = "DriftDetected"
HEALTH_DEGRADED = "HealthDegraded"
DEPENDENCY_NOT_READY = "DependencyNotReady"
PRUNED = "Pruned"
PROGRESSING = "Progressing"

EventType = Literal["Normal", "Warning"]
EVENT_INFO = ResourceInfo(
    "", "v1", "Event", "events", True, frozenset({"create", "get", "list", "patch", "watch", "delete"})
)
MAX_MESSAGE = 1024  # events.k8s.io caps the note at 1 kB; keep core/v1 messages as short
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")
_URL_TOKEN = re.compile(r"(?P<scheme>https?://)(?P<token>[^:/@\s]+)@")


def sanitize(message: str, secret_values: Iterable[str] = ()) -> str:
    """``message`` without credentials: URL passwords and tokens masked, known secret values replaced."""
    message = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", message)
    message = _URL_TOKEN.sub(lambda m: f"{m['scheme']}***@", message)
    # longest first, so a secret that contains another is replaced whole
    for value in sorted({v for v in secret_values if len(v) >= 4}, key=len, reverse=True):
        message = message.replace(value, "***")
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return message


@dataclass
class _Seen:
    name: str
    count: int


def event_name(app_name: str, uid: str, type_: str, reason: str, message: str) -> str:
    digest = hashlib.sha256(f"{uid}\0{type_}\0{reason}\0{message}".encode()).hexdigest()[:16]
    return f"{app_name[:200]}.{digest}"


class EventRecorder:
    """Records Events on Applications. ``requests`` counts API calls (creates and bumps)."""

    def __init__(
        self,
        kube: Kube,
        *,
        component: str = COMPONENT,
        reporting_controller: str = REPORTING_CONTROLLER,
        instance: str | None = None,
        clock: Callable[[], str] = rfc3339,
        cache_size: int = 4096,
    ) -> None:
        self.kube = kube
        self.component = component
        self.reporting_controller = reporting_controller
        self.instance = instance or socket.gethostname()
        self.clock = clock
        self._cache_size = cache_size
        self._seen: OrderedDict[tuple[str, str, str, str, str], _Seen] = OrderedDict()
        self._secret_values: set[str] = set()
        self.requests = 0

    def add_secret_values(self, values: Iterable[str | bytes]) -> None:
        """Values that must never appear in a message (decoded Secret data, tokens, keys)."""
        for value in values:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            for candidate in (text, text.strip()):
                if len(candidate) >= 4:
                    self._secret_values.add(candidate)

    async def normal(self, app: Application | dict[str, Any], reason: str, message: str) -> dict[str, Any]:
        return await self.event(app, "Normal", reason, message)

    async def warning(self, app: Application | dict[str, Any], reason: str, message: str) -> dict[str, Any]:
        return await self.event(app, "Warning", reason, message)

    async def event(
        self,
        app: Application | dict[str, Any],
        type_: EventType,
        reason: str,
        message: str,
    ) -> dict[str, Any]:
        """Create the Event, or bump the one already recorded with the same type, reason and message."""
        involved = _involved(app)
        message = sanitize(message, self._secret_values)
        namespace, uid = involved["namespace"], involved.get("uid", "")
        key = (namespace, involved["name"], uid, f"{type_}\0{reason}", message)
        seen = self._seen.get(key)
        now = self.clock()
        if seen is not None:
            bumped = await self._bump(namespace, seen, now)
            if bumped is not None:
                self._seen.move_to_end(key)
                return bumped
        name = event_name(involved["name"], uid, type_, reason, message)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.component, "host": self.instance},
            "reportingComponent": self.reporting_controller,
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self.requests += 1
        try:
            created = await self.kube.create(EVENT_INFO, body)
            self._remember(key, _Seen(name, 1))
            return created
        except AlreadyExists:
            live = await self.kube.get(EVENT_INFO, name, namespace)
            seen = _Seen(name, int((live or {}).get("count") or 1))
            bumped = await self._bump(namespace, seen, now)
            self._remember(key, seen)
            return bumped or live or body

    async def _bump(self, namespace: str, seen: _Seen, now: str) -> dict[str, Any] | None:
        self.requests += 1
        try:
            updated = await self.kube.patch(
                EVENT_INFO, seen.name, namespace, {"count": seen.count + 1, "lastTimestamp": now}
            )
        except NotFound:
            return None  # expired (events live about an hour): record it afresh
        seen.count = int(updated.get("count") or seen.count + 1)
        return updated

    def _remember(self, key: tuple[str, str, str, str, str], seen: _Seen) -> None:
        self._seen[key] = seen
        self._seen.move_to_end(key)
        while len(self._seen) > self._cache_size:
            self._seen.popitem(last=False)


def _involved(app: Application | dict[str, Any]) -> dict[str, str]:
    if isinstance(app, Application):
        meta = app.metadata
        ref = {
            "apiVersion": app.api_version or API_VERSION,
            "kind": app.kind or KIND,
            "name": meta.name,
            "namespace": meta.namespace,
            "uid": meta.uid,
            "resourceVersion": meta.resource_version,
        }
    else:
        metadata = app.get("metadata") or {}
        ref = {
            "apiVersion": app.get("apiVersion") or API_VERSION,
            "kind": app.get("kind") or KIND,
            "name": metadata.get("name", ""),
            "namespace": metadata.get("namespace", ""),
            "uid": metadata.get("uid", ""),
            "resourceVersion": metadata.get("resourceVersion", ""),
        }
    return {k: v for k, v in ref.items() if v}


__all__ = [
    "COMPONENT",
    "DEPENDENCY_NOT_READY",
    "DRIFT_CORRECTED",
    "DRIFT_DETECTED",
    "EVENT_INFO",
    "HEALTH_DEGRADED",
    "PROGRESSING",
    "PRUNED",
    "RECONCILIATION_FAILED",
    "RECONCILIATION_SUCCEEDED",
    "REPORTING_CONTROLLER",
    "EventRecorder",
    "EventType",
    "event_name",
    "sanitize",
]
