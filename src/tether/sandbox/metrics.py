"""Prometheus metrics of one sandbox server (its own registry, so several servers can coexist)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request",
            "API requests by verb, group, resource, subresource and HTTP code",
            ["verb", "group", "resource", "subresource", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "apiserver_request_duration_seconds",
            "Request latency by verb and resource",
            ["verb", "resource"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.watchers = Gauge("apiserver_registered_watchers", "Open watch streams", registry=self.registry)
        self.objects = Gauge("apiserver_storage_objects", "Stored objects", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
