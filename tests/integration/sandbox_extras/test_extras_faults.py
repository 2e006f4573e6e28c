"""Fault injection seen by real clients: injected errors, latency, dropped watches, compaction -> 410."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
from extras_helpers import Http, eventually
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

FAULTS = "/_sandbox/faults"


@pytest.fixture
def faults(http_fast: Http):  # type: ignore[no-untyped-def]
    yield http_fast
    assert http_fast.request("DELETE", FAULTS)[0] == 200  # never leak faults into other tests


def test_injected_errors_reach_the_kubernetes_client(fast, faults: Http) -> None:  # type: ignore[no-untyped-def]
    ns = faults.namespace("faults-errors")
    core = client.CoreV1Api(config.new_client_from_config(str(fast.kubeconfig)))
    code, state = faults.post(FAULTS, {"errors": {"create": {"rate": 1.0, "code": 500}}, "seed": 3})
    assert code == 200 and state["errors"] == {"create": {"rate": 1.0, "code": 500}}
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(ns, body)
    assert caught.value.status == 500
    status = json.loads(caught.value.body)
    assert status["kind"] == "Status" and status["reason"] == "InternalError" and "injected fault" in status["message"]
    assert core.list_namespaced_config_map(ns).items == []  # other verbs are unaffected
    faults.post(FAULTS, {"errors": {"*": {"rate": 1.0, "code": 429}}})
    code, status = faults.get(f"/api/v1/namespaces/{ns}/configmaps")
    assert code == 429 and status["reason"] == "TooManyRequests"
    faults.post(FAULTS, {"errors": {}, "latency": {"get": 0.05}})
    assert core.list_namespaced_config_map(ns).items == []  # slowed down, still served
    assert faults.get(FAULTS)[1]["injected"] >= 2


def test_partial_error_rate_is_reproducible_with_a_seed(faults: Http) -> None:
    ns = faults.namespace("faults-rate")
    outcomes = []
    for _ in range(2):
        faults.post(FAULTS, {"errors": {"list": {"rate": 0.5}}, "seed": 42})
        outcomes.append([faults.get(f"/api/v1/namespaces/{ns}/configmaps")[0] for _ in range(20)])
    assert outcomes[0] == outcomes[1] and {200, 500} == set(outcomes[0])


def _watch_lines(fast, path: str, collected: list[dict], done: threading.Event) -> None:  # type: ignore[no-untyped-def]
    host, port = fast.url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", path)
    response = conn.getresponse()
    for line in response:
        if line.strip():
            collected.append(json.loads(line))
    done.set()


def test_dropped_watches_end_the_stream(fast, faults: Http) -> None:  # type: ignore[no-untyped-def]
    ns = faults.namespace("faults-drop")
    events: list[dict] = []
    ended = threading.Event()
    threading.Thread(
        target=_watch_lines, args=(fast, f"/api/v1/namespaces/{ns}/configmaps?watch=1", events, ended), daemon=True
    ).start()
    faults.post(
        f"/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen"}}
    )
    eventually(lambda: events)
    assert not ended.is_set()
    faults.post(FAULTS, {"dropWatches": True})
    assert ended.wait(30), "the watch stream did not end"


def test_compaction_makes_old_watches_410(fast, faults: Http) -> None:  # type: ignore[no-untyped-def]
    ns = faults.namespace("faults-compact")
    code, created = faults.post(
        f"/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    )
    old_rv = created["metadata"]["resourceVersion"]
    faults.post(
        f"/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}
    )
    code, state = faults.post(FAULTS, {"compact": True})
    assert code == 200 and int(state["compactedTo"]) > int(old_rv)
    core = client.CoreV1Api(config.new_client_from_config(str(fast.kubeconfig)))
    with pytest.raises(ApiException) as caught:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=old_rv, timeout_seconds=5):
            pass
    assert caught.value.status == 410
    # a fresh list + watch from the current version works again
    current = core.list_namespaced_config_map(ns).metadata.resource_version
    code, _ = faults.get(f"/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={current}&timeoutSeconds=1")
    assert code == 200


def test_fault_flags_drop_watches_periodically(tmp_path) -> None:
    from extras_helpers import start_sandbox

    from tether.sandbox.extras import ExtrasConfig

    running = start_sandbox(tmp_path, extras=ExtrasConfig(faults=["drop-watches=0.5", "error=delete:1:503"]))
    try:
        http = Http(running.url)
        ns = http.namespace("faults-flags")
        code, status = http.delete(f"/api/v1/namespaces/{ns}")
        assert code == 503 and status["reason"] == "ServiceUnavailable"
        events: list[dict] = []
        ended = threading.Event()
        threading.Thread(
            target=_watch_lines,
            args=(running, f"/api/v1/namespaces/{ns}/configmaps?watch=1", events, ended),
            daemon=True,
        ).start()
        assert ended.wait(30), "the periodic drop did not end the watch"
    finally:
        running.thread.stop()


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"errors": {"fly": 0.5}},
        {"errors": {"get": {"rate": 3}}, "seed": 5},
        {"errors": {"get": 0.5}, "latency": {"get": "slow"}},
    ],
)
def test_bad_fault_settings_are_400_and_change_nothing(faults: Http, body) -> None:  # type: ignore[no-untyped-def]
    before = faults.get(FAULTS)[1]
    code, status = faults.post(FAULTS, body)
    assert code == 400 and status["kind"] == "Status" and status["reason"] == "BadRequest"
    after = faults.get(FAULTS)[1]
    assert {k: v for k, v in after.items() if k != "resourceVersion"} == {
        k: v for k, v in before.items() if k != "resourceVersion"
    }
