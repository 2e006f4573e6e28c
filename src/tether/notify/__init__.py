"""Feedback where people look: notifications (Alerts -> Apprise) and commit statuses.

``attach(controller)`` subscribes both to the controller's reports and starts the Alert
informer; ``tether controller`` calls it. The pieces:

- ``tether.notify.alerts``: the Alert API (CRD, parsing, matching);
- ``tether.notify.policy``: transitions, failingFor, minInterval, Recovered, groupWindow (pure);
- ``tether.notify.state``: that policy's state kept in each Alert's ``status.told``;
- ``tether.notify.template``: message text (sandboxed Jinja2);
- ``tether.notify.delivery``: Apprise delivery with retries, counters;
- ``tether.notify.notifier``: ``Notifier``, the running part;
- ``tether.notify.status``: ``CommitStatusReporter``;
- ``tether.notify.dora``: ``DeliveryMetrics``, the four delivery (DORA) figures on /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from tether.notify.delivery import NotifyMetrics
from tether.notify.dora import DeliveryMetrics, watch_deliveries
from tether.notify.notifier import Notifier
from tether.notify.status import CommitStatusReporter

log = logging.getLogger("tether.notify")


class Feedback:
    """The notifier and the commit status reporter of one controller."""

    def __init__(
        self, notifier: Notifier, statuses: CommitStatusReporter, deliveries: DeliveryMetrics | None = None
    ) -> None:
        self.notifier, self.statuses, self.deliveries = notifier, statuses, deliveries
        self._start: asyncio.Task[None] | None = None

    def start_soon(self, leading: asyncio.Event | None = None) -> None:
        self._start = asyncio.get_running_loop().create_task(self._started(leading))

    async def _started(self, leading: asyncio.Event | None) -> None:
        if leading is not None:
            await leading.wait()  # a standby controller writes nothing (the Alert CRD included)
        try:
            await self.notifier.start()
        except Exception:  # notifications are best effort: the controller runs on without them
            log.exception("the notifier could not start; no notifications will be sent")

    async def close(self) -> None:
        if self._start is not None and not self._start.done():
            self._start.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._start
        await self.notifier.stop()


def attach(controller: Any) -> Feedback:
    """Subscribe notifications, commit statuses and delivery metrics to ``controller``; start the notifier.

    Call inside the running event loop, before ``controller.run()``; ``await feedback.close()`` after."""
    metrics = NotifyMetrics(controller.metrics.registry)
    notifier = Notifier(
        controller.kube,
        metrics,
        namespaces=controller.options.namespaces,
        install_crd=controller.options.install_crd,
        lookup=controller.apps.get,
    )
    statuses = CommitStatusReporter(controller.kube, controller.apps.get, metrics)
    controller.reports.subscribe(notifier.on_report)
    controller.reports.subscribe(statuses.on_report)
    feedback = Feedback(notifier, statuses, watch_deliveries(controller))
    feedback.start_soon(getattr(controller, "leading", None))
    return feedback


__all__ = ["CommitStatusReporter", "DeliveryMetrics", "Feedback", "Notifier", "NotifyMetrics", "attach"]
