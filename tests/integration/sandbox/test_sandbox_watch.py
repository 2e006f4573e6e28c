"""Watch semantics over HTTP: event types, replay from a resourceVersion, selectors, bookmarks, 410."""

from __future__ import annotations

import json
import threading
from typing import Any

import requests
from api_helpers import configmap


def watch_events(url: str, path: str, params: dict[str, Any], count: int, timeout: int = 30) -> list[dict[str, Any]]:
    params = {"watch": "1", "timeoutSeconds": str(timeout), **params}
    events = []
    with requests.get(url + path, params=params, stream=True, timeout=timeout + 30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                events.append(json.loads(line))
                if len(events) >= count:
                    break
    return events


def test_watch_replays_added_modified_deleted_from_rv(api, sandbox, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/api/v1/namespaces/{ns}/configmaps"
    _, listed, _ = api.get(base)
    start = listed["metadata"]["resourceVersion"]
    _, created, _ = api.post(base, configmap("w", ns))
    created["data"] = {"k": "changed"}
    api.put(f"{base}/w", created)
    api.delete(f"{base}/w")
    events = watch_events(sandbox.url, base, {"resourceVersion": start}, 3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["data"] == {"k": "changed"}
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)


def test_watch_without_rv_starts_with_current_state(api, sandbox, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/api/v1/namespaces/{ns}/configmaps"
    api.post(base, configmap("existing", ns))
    events = watch_events(sandbox.url, base, {}, 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "existing"


def test_watch_streams_live_events_across_namespaces(api, sandbox, sandbox_namespace):
    ns = sandbox_namespace
    _, listed, _ = api.get("/api/v1/configmaps")
    rv = listed["metadata"]["resourceVersion"]
    result: list[dict[str, Any]] = []

    def consume() -> None:
        result.extend(
            watch_events(
                sandbox.url,
                "/api/v1/configmaps",
                {"resourceVersion": rv, "fieldSelector": f"metadata.namespace={ns}"},
                2,
            )
        )

    thread = threading.Thread(target=consume)
    thread.start()
    api.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("live1", ns))
    api.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("live2", ns))
    thread.join(60)
    assert [e["object"]["metadata"]["name"] for e in result] == ["live1", "live2"]


def test_object_leaving_selector_is_deleted_for_the_watcher(api, sandbox, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/api/v1/namespaces/{ns}/configmaps"
    _, listed, _ = api.get(base)
    rv = listed["metadata"]["resourceVersion"]
    _, created, _ = api.post(base, configmap("sel", ns, labels={"watch": "me"}))
    created["metadata"]["labels"] = {"watch": "not-me"}
    api.put(f"{base}/sel", created)
    events = watch_events(sandbox.url, base, {"resourceVersion": rv, "labelSelector": "watch=me"}, 2)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_too_old_resource_version_is_410_expired(api, sandbox, sandbox_namespace):
    events = watch_events(
        sandbox.url, f"/api/v1/namespaces/{sandbox_namespace}/configmaps", {"resourceVersion": "1"}, 1
    )
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


def test_send_initial_events_ends_with_annotated_bookmark(api, sandbox, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/api/v1/namespaces/{ns}/configmaps"
    api.post(base, configmap("i1", ns))
    api.post(base, configmap("i2", ns))
    events = watch_events(
        sandbox.url,
        base,
        {
            "sendInitialEvents": "true",
            "resourceVersionMatch": "NotOlderThan",
            "allowWatchBookmarks": "true",
            "resourceVersion": "",
        },
        3,
    )
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    code, status, _ = api.get(base, params={"watch": "1", "sendInitialEvents": "true"})
    assert code == 422 and status["kind"] == "Status"


def test_periodic_bookmarks(api, sandbox, sandbox_namespace):
    sandbox.server.config.bookmark_interval = 0.2
    try:
        base = f"/api/v1/namespaces/{sandbox_namespace}/configmaps"
        _, listed, _ = api.get(base)
        events = watch_events(
            sandbox.url,
            base,
            {"resourceVersion": listed["metadata"]["resourceVersion"], "allowWatchBookmarks": "true"},
            1,
        )
        assert events[0]["type"] == "BOOKMARK" and int(events[0]["object"]["metadata"]["resourceVersion"]) > 0
    finally:
        sandbox.server.config.bookmark_interval = 5.0


def test_paginated_list_is_a_consistent_snapshot(api, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for name in ("a", "b", "c"):
        api.post(base, configmap(name, ns))
    _, page, _ = api.get(base, params={"limit": 1})
    rv = page["metadata"]["resourceVersion"]
    api.post(base, configmap("bb", ns))
    api.delete(f"{base}/c")
    _, rest, _ = api.get(base, params={"limit": 10, "continue": page["metadata"]["continue"]})
    assert [o["metadata"]["name"] for o in rest["items"]] == ["b", "c"]
    assert rest["metadata"]["resourceVersion"] == rv
