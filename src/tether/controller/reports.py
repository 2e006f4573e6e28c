"""What each reconcile tells the world beyond status: a typed report for listeners.

Notifications, commit statuses and metrics consume these instead of parsing Events. A report is
sent when a pass of a revision *starts* (``phase="started"``, for pending commit statuses) and
when its outcome is known (``phase="finished"``): applied and health settled, or failed.
Listeners run in their own tasks; a slow or failing listener never delays a reconcile.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger("tether.controller.reports")

#: outcome kinds (names used by Alert.spec.events)
DEPLOYED = "Deployed"  # a new revision applied and healthy
SYNC_FAILED = "SyncFailed"  # fetch, render, validate, plan or apply failed
HEALTH_DEGRADED = "HealthDegraded"
RECOVERED = "Recovered"  # Ready again after SyncFailed or HealthDegraded
DRIFT_DETECTED = "DriftDetected"
DRIFT_CORRECTED = "DriftCorrected"
PRUNE_BLOCKED = "PruneBlocked"  # inventory entries not verified: left in place
DEPENDENCY_NOT_READY = "DependencyNotReady"
SUSPENDED = "Suspended"
PROGRESSING = "Progressing"  # applied, health not settled yet (no alert fires on this)


@dataclass(frozen=True)
class AppReport:
    namespace: str
    name: str
    phase: Literal["started", "finished"]
    revision: str = ""
    source_url: str = ""
    author: str = ""
    subject: str = ""
    committed_at: str = ""
    kinds: tuple[str, ...] = ()  # outcome kinds above, for a finished pass
    ready: bool | None = None
    reason: str = ""
    message: str = ""
    sync: str = "Unknown"
    health: str = "Unknown"
    failing: tuple[tuple[str, str], ...] = ()  # (object, reason)
    drift: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)


Listener = Callable[[AppReport], Awaitable[None] | None]


class Reports:
    """Fan-out of reports to listeners, each call in its own task."""

    def __init__(self) -> None:
        self.listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def send(self, report: AppReport) -> None:
        for listener in self.listeners:
            task = asyncio.get_running_loop().create_task(self._call(listener, report))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _call(listener: Listener, report: AppReport) -> None:
        try:
            result = listener(report)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a listener's failure is its own; reconciles go on
            log.exception("report listener %r failed", listener)

    async def drain(self, timeout: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
