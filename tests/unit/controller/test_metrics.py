"""Controller metrics: own registry, every series exposed, app info replaced not accumulated."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from tether.controller.metrics import ControllerMetrics


def samples(metrics: ControllerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_registries_are_not_shared() -> None:
    a, b = ControllerMetrics(), ControllerMetrics()
    a.observe_reconcile(0.2, "success")
    assert samples(a)[("tether_reconcile_total", (("result", "success"),))] == 1
    assert ("tether_reconcile_total", (("result", "success"),)) not in samples(b)


def test_reconcile_queue_fetch_and_latency_series() -> None:
    m = ControllerMetrics()
    m.observe_reconcile(0.2, "success")
    m.observe_reconcile(3.0, "failure")
    m.set_queue_depth(7)
    m.observe_queue_latency(0.004)
    m.observe_git_fetch(1.5)
    m.observe_commit_to_ready(42.0)
    m.observe_commit_to_ready(-1.0)  # clock skew between Git host and controller: counted as 0
    s = samples(m)
    assert s[("tether_reconcile_duration_seconds_count", (("result", "failure"),))] == 1
    assert s[("tether_reconcile_duration_seconds_bucket", (("le", "0.25"), ("result", "success")))] == 1
    assert s[("tether_workqueue_depth", ())] == 7
    assert s[("tether_workqueue_latency_seconds_bucket", (("le", "0.005"),))] == 1
    assert s[("tether_git_fetch_duration_seconds_sum", (("result", "success"),))] == 1.5
    assert s[("tether_commit_to_ready_seconds_count", ())] == 2
    assert s[("tether_commit_to_ready_seconds_bucket", (("le", "1.0"),))] == 1
    assert s[("tether_commit_to_ready_seconds_sum", ())] == 42.0


def test_api_requests_come_from_the_callable_at_scrape_time() -> None:
    counts: Counter[tuple[str, int]] = Counter({("GET", 200): 3, ("PATCH", 409): 1})
    m = ControllerMetrics(api_requests=lambda: counts)
    assert samples(m)[("tether_kube_api_requests_total", (("code", "200"), ("verb", "GET")))] == 3
    counts[("GET", 200)] += 2
    s = samples(m)
    assert s[("tether_kube_api_requests_total", (("code", "200"), ("verb", "GET")))] == 5
    assert s[("tether_kube_api_requests_total", (("code", "409"), ("verb", "PATCH")))] == 1


def test_a_failing_request_source_does_not_break_the_scrape() -> None:
    def broken() -> Counter[tuple[str, int]]:
        raise RuntimeError("client closed")

    m = ControllerMetrics(api_requests=broken)
    m.set_queue_depth(1)
    assert samples(m)[("tether_workqueue_depth", ())] == 1


def test_app_info_keeps_one_series_per_app() -> None:
    m = ControllerMetrics()
    m.set_app("team-a", "web", "OutOfSync", "Progressing", "abc")
    m.set_app("team-a", "web", "Synced", "Healthy", "def")
    m.set_app("team-b", "api", "Synced", "Healthy", "123")
    info = {k: v for k, v in samples(m).items() if k[0] == "tether_application_info"}
    assert info == {
        (
            "tether_application_info",
            (("health", "Healthy"), ("name", "web"), ("namespace", "team-a"), ("revision", "def"), ("sync", "Synced")),
        ): 1,
        (
            "tether_application_info",
            (("health", "Healthy"), ("name", "api"), ("namespace", "team-b"), ("revision", "123"), ("sync", "Synced")),
        ): 1,
    }
    m.forget_app("team-a", "web")
    m.forget_app("team-a", "never-seen")
    assert [k for k in samples(m) if k[0] == "tether_application_info"] == [
        (
            "tether_application_info",
            (("health", "Healthy"), ("name", "api"), ("namespace", "team-b"), ("revision", "123"), ("sync", "Synced")),
        )
    ]


def test_webhook_counts() -> None:
    m = ControllerMetrics()
    m.count_webhook("github", "accepted")
    m.count_webhook("github", "bad-signature")
    m.count_webhook("github", "bad-signature")
    s = samples(m)
    assert s[("tether_webhook_requests_total", (("provider", "github"), ("result", "bad-signature")))] == 2
    assert s[("tether_webhook_requests_total", (("provider", "github"), ("result", "accepted")))] == 1
