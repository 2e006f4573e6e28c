"""The controller process: informers, work queue, reconcilers, webhooks, metrics, leadership.

Wiring, one way: informers fill the cache and wake the queue; the queue runs one reconcile at
a time per Application, at most ``concurrency`` at once; a reconcile reads the cache, writes
objects and status through the API. Wake-ups come from:

- the Application itself (its spec, a refresh/sync request, its deletion), not its status;
- a watch event on an object an Application manages (drift, deletion, rollout progress);
- a dependency becoming Ready (dependents wait for it);
- a webhook push for the app's repository and ref;
- the app's own interval (Git polling), and retries with backoff after failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tether.controller.api import APPLICATION_INFO, install_crd
from tether.controller.cache import APP_LABEL, APP_NAMESPACE_LABEL, CacheReader, InformerSet, ObjectCache
from tether.controller.informer import DELETED, Informer
from tether.controller.queue import WorkQueue
from tether.controller.reconciler import REFRESH_ANNOTATION, SYNC_ANNOTATION, Reconciler
from tether.controller.reports import Reports
from tether.delivery.source import SourceFetcher
from tether.kube import Kube

log = logging.getLogger("tether.controller")
Key = tuple[str, str]


@dataclass
class ControllerOptions:
    namespaces: tuple[str, ...] = ()  # () = all namespaces
    concurrency: int = 4
    listen: str = ""  # "127.0.0.1:8080"; "" = no HTTP server
    leader_elect: bool = False
    lease_namespace: str = "tether-system"
    lease_name: str = "tether-controller"
    identity: str = ""
    install_crd: bool = True
    cache_dir: str = ""
    webhook_secret: str = ""  # "NAMESPACE/NAME" of a Secret with per-provider webhook secrets
    fetch_min_interval: float = 2.0
    extra: dict[str, Any] = field(default_factory=dict)
    #: loops run beside the Application loop (image automation): ``make(kube)`` gives an object with
    #: ``async run()``, ``stop()`` and optionally ``routes()`` (aiohttp routes added to the HTTP server)
    companions: tuple[Callable[[Kube], Any], ...] = ()
    #: CEL health checks for every app (``tether.engine.health_rules.HealthRules``); an app's own win
    health_rules: Any = None


class _Apps:
    """All Application informers (one per watched namespace, or one for all) as one lookup."""

    def __init__(self, informers: list[Informer]) -> None:
        self.informers = informers

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        for informer in self.informers:
            if informer.namespace in (None, namespace):
                found = informer.get(namespace, name)
                if found is not None:
                    return found
        return None

    def items(self) -> Iterable[dict[str, Any]]:
        for informer in self.informers:
            yield from informer.items()


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def _wants_work(obj: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """A change of spec, of a request annotation, or a deletion: not our own status writes."""
    if old is None:
        return True
    meta, old_meta = obj.get("metadata") or {}, old.get("metadata") or {}
    if meta.get("generation") != old_meta.get("generation") or meta.get("deletionTimestamp"):
        return True
    annotations, old_annotations = meta.get("annotations") or {}, old_meta.get("annotations") or {}
    return any(annotations.get(k) != old_annotations.get(k) for k in (REFRESH_ANNOTATION, SYNC_ANNOTATION))


def _ready_changed(obj: dict[str, Any], old: dict[str, Any] | None) -> bool:
    def view(o: dict[str, Any] | None) -> tuple[Any, ...]:
        status = (o or {}).get("status") or {}
        ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        return ready, status.get("lastAppliedRevision"), status.get("sourceRevision")

    return view(obj) != view(old)


class Controller:
    def __init__(self, kube: Kube, options: ControllerOptions) -> None:
        from tether.controller.events import EventRecorder
        from tether.controller.metrics import ControllerMetrics
        from tether.controller.status import StatusWriter

        self.kube, self.options = kube, options
        self.metrics = ControllerMetrics(api_requests=lambda: kube.responses)
        self.cache = ObjectCache()
        #: subscribe here for a report of every reconcile (notifications, commit statuses)
        self.reports = Reports()
        self.informers = InformerSet(kube, self.cache, label_selector=APP_LABEL)
        namespaces = options.namespaces or (None,)
        self.apps = _Apps([Informer(kube, APPLICATION_INFO, namespace) for namespace in namespaces])
        self.queue: WorkQueue[Key] = WorkQueue(on_latency=lambda _key, seconds: self._observe_queue(seconds))
        #: object events of apps being reconciled, judged when the pass ends (see _own_echo)
        self._held: dict[Key, list[tuple[str, dict[str, Any]]]] = {}
        self.fetcher = SourceFetcher(_path(options.cache_dir), min_interval=options.fetch_min_interval)
        self.reconciler = Reconciler(
            kube=kube,
            apps=self.apps,
            cache=_CacheView(self.cache, self.informers),
            informers=self.informers,
            fetcher=self.fetcher,
            status=StatusWriter(kube),
            events=EventRecorder(kube),
            metrics=self.metrics,
            reports=self.reports,
            health_rules=options.health_rules,
        )
        self.ready = False
        self.companions: list[Any] = []
        #: set once this process may write (it holds the Lease, or runs without leader election)
        self.leading = asyncio.Event()
        self._stopping = asyncio.Event()

    def _observe_queue(self, seconds: float) -> None:
        self.metrics.observe_queue_latency(seconds)
        self.metrics.set_queue_depth(self.queue.depth())

    # ------------------------------------------------------------ wake-ups

    def _on_app(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        key = _key(obj)
        if kind == DELETED:
            self.reconciler.memory.pop(key, None)
        elif _wants_work(obj, old):
            self.queue.add(key)
        if kind == DELETED or _ready_changed(obj, old):
            for other in self.apps.items():
                for dep in (other.get("spec") or {}).get("dependsOn") or []:
                    if (dep.get("namespace") or _key(other)[0], dep.get("name")) == key:
                        self.queue.add(_key(other))

    def _on_object(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        name = labels.get(APP_LABEL)
        if not name:
            return
        namespace = labels.get(APP_NAMESPACE_LABEL)
        if namespace:
            key = (namespace, name)
            if self.apps.get(namespace, name) is None:
                return
            if key in self.queue.in_flight():  # decided when the pass has written what it writes
                self._held.setdefault(key, []).append((kind, obj))
            elif not self._own_echo(key, kind, obj):
                self.queue.add(key)
            return
        for app in self.apps.items():  # written by an older version: only the name is known
            if _key(app)[1] == name:
                self.queue.add(_key(app))

    def on_push(self, event: Any) -> int:
        """A webhook push: refresh exactly the apps whose repository and ref match."""
        from tether.controller.webhooks import matches

        woken = 0
        for app in self.apps.items():
            source = (app.get("spec") or {}).get("source") or {}
            url = str(source.get("url") or "")
            ref = source.get("ref") or {}
            kind = next((k for k in ("branch", "tag", "semver", "commit") if ref.get(k)), "")
            if not matches(event, url, kind, str(ref.get(kind) or "")) or kind == "commit":
                continue
            key = _key(app)
            self.fetcher.invalidate(url)
            if event.commit:
                self.reconciler.memory_of(key).announced.setdefault(event.commit, event.received_at)
            self.reconciler.fetch_now.add(key)
            self.queue.add(key)
            woken += 1
        self.metrics.set_queue_depth(self.queue.depth())
        return woken

    # ------------------------------------------------------------ running

    def _own_echo(self, key: Key, kind: str, obj: dict[str, Any]) -> bool:
        """The watch event of an object the app's last apply wrote, at the version it wrote: the
        pass that wrote it has planned with it already, so it is no reason to reconcile again."""
        memory = self.reconciler.memory.get(key)
        return memory is not None and memory.caused_by_own_write(kind, obj)

    async def _work(self, key: Key) -> None:
        try:
            again = await self.reconciler.reconcile(key)
        except Exception:
            self.queue.add_rate_limited(key)
            raise
        finally:
            # events that came while the pass ran: any not caused by its own writes runs it again
            held = self._held.pop(key, [])
            if any(not self._own_echo(key, kind, obj) for kind, obj in held):
                self.queue.add(key)
        self.queue.forget(key)
        if again is not None:
            self.queue.add_after(key, again)

    async def run(self) -> None:
        """Run until ``stop()`` (or SIGTERM/SIGINT when installed by the CLI)."""
        self.companions = [make(self.kube) for make in self.options.companions]
        server = await self._serve() if self.options.listen else None
        elector = None
        companion_tasks: list[asyncio.Task[Any]] = []
        try:
            if self.options.leader_elect:
                from tether.controller.leader import LeaderElector

                elector = LeaderElector(
                    self.kube,
                    self.options.lease_namespace,
                    self.options.lease_name,
                    self.options.identity or _identity(),
                )
                await elector.acquire()
                elector.on_lost(lambda: self._stopping.set())
            self.leading.set()
            if self.options.install_crd:  # a standby writes nothing, not even the CRD
                await install_crd(self.kube)
            # companions (image automation) write too: they run only where the Application loop runs
            companion_tasks = [asyncio.create_task(companion.run()) for companion in self.companions]
            self.informers.on_event(self._on_object)
            for informer in self.apps.informers:
                informer.on_event(self._on_app)
                informer.start()
            for informer in self.apps.informers:
                await informer.wait_synced()
            self.ready = True
            worker = asyncio.create_task(self.queue.run(self._work, self.options.concurrency))
            await self._stopping.wait()
            await self.queue.shutdown(drain=True, timeout=30)
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await self.reports.drain()
        finally:
            self.ready = False
            for companion in self.companions:
                companion.stop()
            for outcome in await asyncio.gather(*companion_tasks, return_exceptions=True):
                if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                    log.error("a companion loop failed: %s", outcome)
            for informer in self.apps.informers:
                await informer.stop()
            await self.informers.stop()
            if elector is not None:
                with contextlib.suppress(Exception):
                    await elector.release()
            if server is not None:
                await server.cleanup()

    def stop(self) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def _serve(self) -> Any:
        from tether.controller.server import WebhookSecrets, build_app, load_webhook_secrets, start_server
        from tether.controller.webhooks import WebhookVerifier

        secrets = WebhookSecrets()
        if self.options.webhook_secret:
            namespace, _, name = self.options.webhook_secret.rpartition("/")
            secrets = await load_webhook_secrets(self.kube, name, namespace or self.options.lease_namespace)
        extra = [route for companion in self.companions for route in getattr(companion, "routes", list)()]
        app = build_app(
            metrics=self.metrics,
            verifier=WebhookVerifier(secrets),
            on_push=self.on_push,
            ready=lambda: self.ready,
            extra_routes=extra,
        )
        host, _, port = self.options.listen.rpartition(":")
        runner, _port = await start_server(app, host or "127.0.0.1", int(port))
        return runner


class _CacheView:
    """The reconciler's view of the cache: lookups plus a reader for the engine."""

    def __init__(self, cache: ObjectCache, informers: InformerSet) -> None:
        self._cache, self._informers = cache, informers

    def get(self, group: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._cache.get(group, kind, namespace or None, name)

    def reader(self) -> CacheReader:
        return CacheReader(self._informers)


def _identity() -> str:
    import os
    import socket

    return f"{socket.gethostname()}-{os.getpid()}"


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text) if text else None
