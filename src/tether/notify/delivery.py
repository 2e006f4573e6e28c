"""Sending a message to Apprise URLs: each URL on its own, retried with backoff, counted.

Apprise is synchronous, so every send runs in a worker thread; a provider that hangs or fails
costs a worker of the notifier, never the controller's event loop or a reconcile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import apprise
from prometheus_client import CollectorRegistry, Counter

from tether.controller.backoff import Backoff

log = logging.getLogger("tether.notify")

#: apprise's notification types by event (colour and icon in chat tools)
_TYPES = {
    "SyncFailed": apprise.NotifyType.FAILURE,
    "HealthDegraded": apprise.NotifyType.FAILURE,
    "Recovered": apprise.NotifyType.SUCCESS,
    "Deployed": apprise.NotifyType.SUCCESS,
    "DriftDetected": apprise.NotifyType.WARNING,
    "PruneBlocked": apprise.NotifyType.WARNING,
    "DependencyNotReady": apprise.NotifyType.WARNING,
}


class NotifyMetrics:
    """Counters of the notifier and the commit status reporter on the controller's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "tether_notifications",
            "Notification messages by event and result (sent, failed, suppressed by minInterval)",
            ["event", "result"],
            registry=registry,
        )
        self.attempts = Counter(
            "tether_notification_delivery_attempts",
            "Deliveries to one Apprise URL, retries included, by result",
            ["result"],
            registry=registry,
        )
        self.statuses = Counter(
            "tether_commit_status_updates",
            "Commit statuses set on forges",
            ["provider", "state", "result"],
            registry=registry,
        )


@dataclass
class Deliverer:
    metrics: NotifyMetrics
    attempts: int = 5
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, factor=2.0, cap=60.0, jitter=0.2))
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def deliver(self, urls: list[str], title: str, body: str, event: str, where: str) -> bool:
        """Send to every URL; True when each one took the message (within ``attempts`` tries)."""
        results = await asyncio.gather(
            *(self._one(index, url, title, body, event, where) for index, url in enumerate(urls, 1))
        )
        return bool(results) and all(results)

    async def _one(self, line: int, url: str, title: str, body: str, event: str, where: str) -> bool:
        notifier = apprise.Apprise()
        if not notifier.add(url):
            # never log the URL itself: it usually carries a token
            log.error("%s: line %d of its urls is not an Apprise URL Apprise can use; skipped", where, line)
            self.metrics.attempts.labels("invalid").inc()
            return False
        kind = _TYPES.get(event, apprise.NotifyType.INFO)
        for attempt in range(self.attempts):
            try:
                sent = await asyncio.to_thread(notifier.notify, body=body, title=title, notify_type=kind)
            except Exception:  # a plugin's bug must not end the notifier
                log.exception("%s: delivering to URL on line %d raised", where, line)
                sent = False
            self.metrics.attempts.labels("success" if sent else "failure").inc()
            if sent:
                return True
            if attempt + 1 < self.attempts:
                await self.sleep(self.backoff.delay(attempt))
        log.error("%s: delivery to the URL on line %d failed %d times; message dropped", where, line, self.attempts)
        return False


__all__ = ["Deliverer", "NotifyMetrics"]
