"""/metrics after a sync exposes every series operators alert on."""

from __future__ import annotations

import urllib.request

import pytest
from cluster import Cluster, eventually, ready_at
from controllers import metric_sum, parse_metrics

from tether.cli.demo_env import LocalEnvironment

pytestmark = pytest.mark.usefixtures("controller")

SERIES = (
    "tether_reconcile_duration_seconds_count",
    "tether_reconcile_total",
    "tether_workqueue_depth",
    "tether_workqueue_latency_seconds_count",
    "tether_kube_api_requests_total",
    "tether_git_fetch_duration_seconds_count",
    "tether_application_info",
    "tether_commit_to_ready_seconds_count",
    "tether_webhook_requests_total",
)


def scrape(env: LocalEnvironment) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{env.controller_port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        return parse_metrics(response.read().decode())


def test_metrics_after_a_sync(env: LocalEnvironment) -> None:
    cluster = Cluster(env.kubeconfig)
    app = env.application("metered")
    cluster.apply(app)
    eventually(lambda: ready_at(cluster.app("metered"), env.head()), "the demo app Ready")
    commit = env.commit(
        "Push for the latency histogram",
        {"apps/demo/extra.yaml": ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n")},
    )
    eventually(lambda: ready_at(cluster.app("metered"), commit), "the pushed commit Ready")
    metrics = eventually(
        lambda: (m := scrape(env)) and metric_sum(m, "tether_commit_to_ready_seconds_count") >= 1 and m,
        "the commit-to-ready histogram",
    )
    missing = [
        name
        for name in SERIES
        if metric_sum(metrics, name) == 0 and not any(key.partition("{")[0] == name for key in metrics)
    ]
    assert missing == []
    assert metric_sum(metrics, "tether_reconcile_total", result="success") >= 2
    assert metric_sum(metrics, "tether_reconcile_duration_seconds_count", result="success") >= 2
    assert metric_sum(metrics, "tether_git_fetch_duration_seconds_count") >= 1
    assert metric_sum(metrics, "tether_kube_api_requests_total", verb="PATCH") >= 1
    assert metric_sum(metrics, "tether_webhook_requests_total", provider="generic", result="accepted") >= 1
    info = metric_sum(
        metrics,
        "tether_application_info",
        namespace="default",
        name="metered",
        sync="Synced",
        health="Healthy",
        revision=commit,
    )
    assert info == 1
