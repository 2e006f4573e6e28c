"""The notifier: Alerts from an informer, reports from the controller, messages to Apprise.

``on_report`` (a ``Reports`` listener) only updates policy state and hands decided messages to
a queue, so it returns at once; a small pool of workers reads the Alert's URL Secret and sends.
A timer task wakes for failures reaching ``failingFor`` and group windows closing.

The policy state of each Alert read from the cluster is kept in its ``status.told``
(``tether.notify.state``): loaded with the Alert when the informer lists it, before any report
is judged; written by a task of its own, coalescing every change since its last write, so a
write never holds up a report or a delivery. Times are wall-clock seconds, since they outlive
the process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from tether.controller.informer import DELETED, Informer
from tether.controller.reports import AppReport
from tether.errors import TetherError
from tether.kube import Kube
from tether.notify import template
from tether.notify.alerts import ALERT_INFO, AlertSpec, install_alert_crd, parse_alert
from tether.notify.delivery import Deliverer, NotifyMetrics
from tether.notify.policy import AlertPolicy, Grouper, Message
from tether.notify.state import StatusWriter, load

#: apps whose state an Alert keeps at most (about half a kilobyte each in its status)
MAX_TOLD = 500
#: seconds an app at rest (healthy, nothing ongoing) stays in the state before it is forgotten
REST_FOR = 86400.0

log = logging.getLogger("tether.notify")


class _Alert:
    def __init__(self, spec: AlertSpec, writer: StatusWriter | None = None) -> None:
        self.spec, self.policy, self.grouper = spec, AlertPolicy(spec), Grouper(spec)
        self.writer = writer  # None: an Alert not read from the cluster keeps its state in memory


class Notifier:
    def __init__(
        self,
        kube: Kube,
        metrics: NotifyMetrics | CollectorRegistry,
        *,
        namespaces: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        deliverer: Deliverer | None = None,
        install_crd: bool = True,
        workers: int = 4,
        lookup: Callable[[str, str], object | None] | None = None,
        max_told: int = MAX_TOLD,
        rest_for: float = REST_FOR,
        state_interval: float = 1.0,
    ) -> None:
        """``lookup(namespace, name)``: the Application, None when it is gone (its state is then
        forgotten); ``state_interval``: seconds at least between two rounds of status writes."""
        self.kube = kube
        self.metrics = metrics if isinstance(metrics, NotifyMetrics) else NotifyMetrics(metrics)
        self.clock = clock
        self.deliverer = deliverer or Deliverer(self.metrics)
        self.install_crd = install_crd
        self.alerts: dict[tuple[str, str], _Alert] = {}
        self.informers = [Informer(kube, ALERT_INFO, namespace) for namespace in (namespaces or (None,))]
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._workers = workers
        self._busy = 0
        self.lookup, self.max_told, self.rest_for, self.state_interval = lookup, max_told, rest_for, state_interval
        self._state_changed = asyncio.Event()
        self._state_lock = asyncio.Lock()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.install_crd:
            await install_alert_crd(self.kube)
        for informer in self.informers:
            informer.on_event(self._on_alert)
            informer.start()
        for informer in self.informers:
            await informer.wait_synced()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._timer()))
        self._tasks.extend(loop.create_task(self._worker()) for _ in range(self._workers))
        self._tasks.append(loop.create_task(self._state_writer()))

    async def stop(self, *, drain: float = 10.0) -> None:
        """Send what is held in group windows and queued (for up to ``drain`` seconds), then stop."""
        for alert in self.alerts.values():
            for message in alert.grouper.flush():
                self._queue.put_nowait(message)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle(), drain)
        try:
            await self.save_state()
        except Exception:  # a stop must end; what was not written is told again by the next notifier
            log.exception("writing the notification policy state on stop failed")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for informer in self.informers:
            await informer.stop()

    async def idle(self) -> None:
        """Until nothing is queued or being sent (timers still pending do not count)."""
        while not self._queue.empty() or self._busy:
            await asyncio.sleep(0.01)

    def wake(self) -> None:
        """Re-check timers now (after a clock given to the constructor moved)."""
        self._wake.set()

    # ------------------------------------------------------------ inputs

    def _on_alert(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if kind == DELETED:
            self.alerts.pop(key, None)
            return
        if old is not None and key in self.alerts and (old.get("spec") == obj.get("spec")):
            return  # a status write (ours, mostly): the state in memory is the newer
        try:
            spec = parse_alert(obj)
            template.check_template(spec.template, f"Alert {key[0]}/{key[1]}")
        except TetherError as error:
            log.error("%s; the Alert is ignored until fixed", error)
            self.alerts.pop(key, None)
            return
        current = self.alerts.get(key)
        if current is not None:
            # a changed spec keeps what was told: editing a template must not tell every open failure again
            self._enqueue(current.grouper.flush())
            current.spec, current.grouper = spec, Grouper(spec)
            current.policy.spec = spec
            return
        writer = StatusWriter(self.kube, key[0], key[1], str(meta.get("resourceVersion") or ""))
        alert = self.alerts[key] = _Alert(spec, writer)
        alert.policy.restore(load(obj))

    def on_report(self, report: AppReport) -> None:
        """A ``Reports`` listener: decide, queue, return."""
        now = self.clock()
        for alert in list(self.alerts.values()):
            if not alert.spec.selects(report.namespace, report.name, report.labels):
                continue
            self._enqueue(alert.grouper.add(alert.policy.observe(report, now), now))
            self._count_suppressed(alert)
            if alert.policy.changed:
                self._state_changed.set()
        self._wake.set()

    def add_alert(self, spec: AlertSpec) -> None:
        """Use an Alert not read from the cluster (tests, static configuration)."""
        self.alerts[spec.key] = _Alert(spec)

    # ------------------------------------------------------------ timers and workers

    def _enqueue(self, messages: list[Message]) -> None:
        for message in messages:
            self._queue.put_nowait(message)

    def tick(self) -> None:
        """Confirm failures that lasted ``failingFor`` and close due group windows."""
        now = self.clock()
        for alert in list(self.alerts.values()):
            self._enqueue(alert.grouper.add(alert.policy.due(now), now))
            self._enqueue(alert.grouper.ready(now))
            self._count_suppressed(alert)
            if alert.policy.changed:
                self._state_changed.set()

    def _count_suppressed(self, alert: _Alert) -> None:
        for event in alert.policy.suppressed:
            self.metrics.messages.labels(event, "suppressed").inc()
        alert.policy.suppressed.clear()

    def _next_due(self) -> float | None:
        times = [
            t
            for alert in self.alerts.values()
            for t in (alert.policy.next_due(), alert.grouper.next_due())
            if t is not None
        ]
        return min(times) if times else None

    async def _timer(self) -> None:
        while True:
            self.tick()
            due = self._next_due()
            self._wake.clear()
            timeout = None if due is None else max(due - self.clock(), 0.0) + 0.001
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: 3.11's wait_for can drop a cancel
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def save_state(self) -> bool:
        """Prune each Alert's state and write what changed to its status; False when a write failed."""
        async with self._state_lock:
            now, saved = self.clock(), True
            for alert in list(self.alerts.values()):
                lost = alert.policy.prune(now, limit=self.max_told, rest_for=self.rest_for, exists=self._exists)
                if lost:
                    log.warning(
                        "Alert %s/%s: more than %d apps to keep state for; forgot the oldest ongoing: %s",
                        *alert.spec.key,
                        self.max_told,
                        ", ".join(name for _, name in lost),
                    )
                if alert.writer is not None and alert.policy.changed:
                    saved = await alert.writer.write(alert.policy) and saved
                elif alert.writer is None:
                    alert.policy.changed.clear()
            return saved

    def _exists(self, namespace: str, name: str) -> bool:
        return self.lookup is None or self.lookup(namespace, name) is not None

    async def _state_writer(self) -> None:
        while True:
            await self._state_changed.wait()
            self._state_changed.clear()
            try:
                saved = await self.save_state()
            except Exception:
                log.exception("writing the notification policy state failed")
                saved = False
            if not saved:
                self._state_changed.set()  # try again, after a pause
            await asyncio.sleep(self.state_interval if saved else max(self.state_interval, 5.0))

    async def _worker(self) -> None:
        while True:
            message = await self._queue.get()
            self._busy += 1
            try:
                await self.send(message)
            except Exception:
                log.exception("sending a %s message of Alert %s/%s failed", message.event, *message.alert.key)
            finally:
                self._busy -= 1

    async def send(self, message: Message) -> bool:
        alert = message.alert
        where = f"Alert {alert.namespace}/{alert.name}"
        try:
            urls = await self._urls(alert)
        except TetherError as error:
            log.error("%s: %s", where, error)
            self.metrics.messages.labels(message.event, "failed").inc()
            return False
        sent = await self.deliverer.deliver(
            urls, template.title(message), template.render(message), message.event, where
        )
        self.metrics.messages.labels(message.event, "sent" if sent else "failed").inc()
        return sent

    async def _urls(self, alert: AlertSpec) -> list[str]:
        info = await self.kube.info("v1", "Secret")
        secret = await self.kube.get(info, alert.urls_secret, alert.namespace)
        if secret is None:
            raise TetherError(
                f"spec.urlsSecretRef names Secret {alert.namespace}/{alert.urls_secret}, which does "
                "not exist; create it with a key 'urls' (Apprise URLs, one a line)"
            )
        raw = (secret.get("data") or {}).get("urls")
        text = (
            base64.b64decode(raw).decode("utf-8", "replace")
            if raw
            else (secret.get("stringData") or {}).get("urls", "")
        )
        urls = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        if not urls:
            raise TetherError(f"Secret {alert.namespace}/{alert.urls_secret} has no Apprise URLs under key 'urls'")
        return urls


__all__ = ["Notifier"]
