"""Prometheus metrics of the controller, on a registry the ``ControllerMetrics`` object owns.

No metric lives in prometheus-client's global registry, so two controllers (or two tests) in one
process do not share counters. API request counts are read at scrape time from a callable that
returns the client's ``Counter[(method, code)]``, so the Kubernetes client needs no metrics code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

PREFIX = "tether"
#: seconds; reconciles range from a no-op resync (ms) to a wait for rollouts (minutes)
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
#: seconds from a commit (or its webhook) to Ready: dominated by interval, fetch and rollout
COMMIT_TO_READY_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300)
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

RequestCounts = Callable[[], "Counter[tuple[str, int]]"]


class _ApiRequests(Collector):
    def __init__(self, source: RequestCounts) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            f"{PREFIX}_kube_api_requests", "Kubernetes API requests by verb and HTTP code", labels=["verb", "code"]
        )
        try:
            counts = self.source()
        except Exception:  # a broken source must not break the whole scrape
            counts = Counter()
        for (method, code), count in sorted(counts.items(), key=lambda item: (str(item[0][0]), str(item[0][1]))):
            family.add_metric([str(method), str(code)], float(count))
        yield family


class ControllerMetrics:
    """Every controller metric; ``render()`` gives the text exposition for /metrics."""

    def __init__(self, api_requests: RequestCounts | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconcile_duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Time one reconcile of an Application took",
            ["result"],
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.reconciles = PromCounter(f"{PREFIX}_reconcile", "Reconciles by result", ["result"], registry=r)
        self.queue_depth = Gauge(f"{PREFIX}_workqueue_depth", "Applications waiting in the work queue", registry=r)
        self.queue_latency = Histogram(
            f"{PREFIX}_workqueue_latency_seconds",
            "Time an Application waited in the queue before its reconcile",
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.git_fetch_duration = Histogram(
            f"{PREFIX}_git_fetch_duration_seconds",
            "Time a Git fetch took",
            ["result"],
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self.app_info = Gauge(
            f"{PREFIX}_application_info",
            "One series per Application with its sync and health status (value 1)",
            ["namespace", "name", "sync", "health", "revision"],
            registry=r,
        )
        self.commit_to_ready = Histogram(
            f"{PREFIX}_commit_to_ready_seconds",
            "Seconds from a commit (its commit time, or the webhook that announced it) to the Application Ready on it",
            buckets=COMMIT_TO_READY_BUCKETS,
            registry=r,
        )
        self.webhook_requests = PromCounter(
            f"{PREFIX}_webhook_requests", "Webhook requests by provider and result", ["provider", "result"], registry=r
        )
        self.renders = PromCounter(
            f"{PREFIX}_renders",
            "Renders of an Application's manifests (a commit that does not touch it renders none)",
            registry=r,
        )
        self._app_labels: dict[tuple[str, str], tuple[str, str, str, str, str]] = {}
        if api_requests is not None:
            r.register(_ApiRequests(api_requests))

    def observe_reconcile(self, seconds: float, result: str) -> None:
        """``result``: success, failure, requeue, ... (a small fixed set: it is a label)."""
        self.reconcile_duration.labels(result).observe(seconds)
        self.reconciles.labels(result).inc()

    def set_queue_depth(self, depth: int) -> None:
        self.queue_depth.set(depth)

    def observe_queue_latency(self, seconds: float) -> None:
        self.queue_latency.observe(seconds)

    def observe_git_fetch(self, seconds: float, result: str = "success") -> None:
        self.git_fetch_duration.labels(result).observe(seconds)

    def set_app(self, namespace: str, name: str, sync: str, health: str, revision: str) -> None:
        """The info series of one Application; its previous series (other labels) is removed."""
        labels = (namespace, name, sync, health, revision)
        old = self._app_labels.get((namespace, name))
        if old is not None and old != labels:
            self.app_info.remove(*old)
        self._app_labels[(namespace, name)] = labels
        self.app_info.labels(*labels).set(1)

    def forget_app(self, namespace: str, name: str) -> None:
        old = self._app_labels.pop((namespace, name), None)
        if old is not None:
            self.app_info.remove(*old)

    def observe_commit_to_ready(self, seconds: float) -> None:
        self.commit_to_ready.observe(max(seconds, 0.0))

    def count_webhook(self, provider: str, result: str) -> None:
        self.webhook_requests.labels(provider, result).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    content_type = CONTENT_TYPE_LATEST


__all__ = ["ControllerMetrics", "RequestCounts"]
