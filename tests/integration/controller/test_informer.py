"""Informers against the sandbox: list then watch, no LISTs in steady state, reconnects after
server timeouts and dropped or failing watches, relist on 410 with synthetic events; the informer
set, object cache and cache reader on top."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.conftest import start_sandbox

from tether.controller.backoff import Backoff
from tether.controller.cache import LAST_APPLIED, CacheReader, InformerSet
from tether.controller.informer import Informer
from tether.engine import AppIdentity, ListingReader
from tether.kube import Kube

QUICK = Backoff(base=0.05, factor=2, cap=0.5)
_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+([0-9.e+]+)$")


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))  # type: ignore[arg-type]


async def eventually(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def server_lists(url: str, resource: str) -> int:
    """LIST requests the server has answered for ``resource``, from its /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    total = 0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if labels.get("verb") == "LIST" and labels.get("resource") == resource:
                total += int(float(match.group(2)))
    return total


def faults(url: str, method: str = "POST", body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body or {}).encode() if method == "POST" else None
    request = urllib.request.Request(
        f"{url}/_sandbox/faults", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def configmap(name: str, namespace: str, data: str = "1", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "data": {"v": data},
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = []

    def __call__(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self.events.append((kind, obj["metadata"]["name"], obj, old))

    def names(self, start: int = 0) -> list[tuple[str, str]]:
        return [(kind, name) for kind, name, _obj, _old in self.events[start:]]


def test_list_then_watch_without_lists_in_steady_state(sandbox, sandbox_namespace) -> None:
    ns = sandbox_namespace

    async def scenario() -> None:
        async with (
            await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as writer,
            await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as reader,
        ):
            info = await writer.info("v1", "ConfigMap")
            for name in ("a", "b", "c"):
                await writer.apply(info, configmap(name, ns))
            recorder = Recorder()
            informer = Informer(reader, await reader.info("v1", "ConfigMap"), ns, watch_timeout=1, backoff=QUICK)
            informer.on_event(recorder)
            async with informer:
                await informer.wait_synced(30)
                assert sorted(recorder.names()) == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
                reads_after_sync = reader.requests[("GET", False)]
                server_lists_after_sync = server_lists(sandbox.url, "configmaps")

                await writer.apply(info, configmap("d", ns))
                await writer.apply(info, configmap("a", ns, data="2"))
                await writer.delete(info, "b", ns)
                await eventually("three watch events", lambda: len(recorder.events) == 6)
                assert recorder.names(3) == [("ADDED", "d"), ("MODIFIED", "a"), ("DELETED", "b")]
                _, _, modified, before = recorder.events[4]
                assert modified["data"] == {"v": "2"} and before is not None and before["data"] == {"v": "1"}
                _, _, _deleted, last_known = recorder.events[5]
                assert last_known is not None and last_known["metadata"]["name"] == "b"

                # the server ends each watch after 1s; the informer watches again from where it was
                await eventually("watches renewed after server timeouts", lambda: informer.stats.watches >= 3)
                await writer.apply(info, configmap("e", ns))
                await eventually("an event after reconnecting", lambda: ("ADDED", "e") in recorder.names())

                assert reader.requests[("GET", False)] == reads_after_sync  # not one LIST (nor GET)
                assert server_lists(sandbox.url, "configmaps") == server_lists_after_sync
                assert (informer.stats.lists, informer.stats.relists) == (1, 0)
                assert sorted(o["metadata"]["name"] for o in informer.items()) == ["a", "c", "d", "e"]
                assert informer.get(ns, "a")["data"] == {"v": "2"}  # type: ignore[index]
                assert int(informer.resource_version) >= int(informer.get(ns, "e")["metadata"]["resourceVersion"])  # type: ignore[index]
            assert not informer.running

    run(scenario())


def test_dropped_watches_reconnect_without_listing(sandbox, sandbox_namespace) -> None:
    ns = sandbox_namespace

    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            info = await kube.info("v1", "ConfigMap")
            recorder = Recorder()
            informer = Informer(kube, info, ns, backoff=QUICK)
            informer.on_event(recorder)
            async with informer:
                await informer.wait_synced(30)
                for round_ in range(3):
                    # an event seen proves the watch is open on the server before it is dropped
                    await kube.apply(info, configmap(f"before-drop-{round_}", ns))
                    await eventually("the watch", lambda: ("ADDED", f"before-drop-{round_}") in recorder.names())  # noqa: B023
                    watches = informer.stats.watches
                    faults(sandbox.url, body={"dropWatches": True})
                    await eventually("a new watch", lambda: informer.stats.watches > watches)  # noqa: B023
                    await kube.apply(info, configmap(f"after-drop-{round_}", ns))
                    await eventually("the event", lambda: ("ADDED", f"after-drop-{round_}") in recorder.names())  # noqa: B023
                assert (informer.stats.lists, informer.stats.relists) == (1, 0)

    run(scenario())


def test_relist_after_410_hands_on_the_differences(tmp_path: Path) -> None:
    # a watch history of a few events: falling behind by more makes the informer's version too old
    small = start_sandbox(tmp_path, history_size=5)
    try:
        ns = small.create_namespace("relist")
        other = small.create_namespace("churn")

        async def scenario() -> None:
            async with await Kube.connect(kubeconfig=str(small.kubeconfig)) as kube:
                info = await kube.info("v1", "ConfigMap")
                for name in ("gone", "changed", "same"):
                    await kube.apply(info, configmap(name, ns))
                recorder = Recorder()
                informer = Informer(kube, info, ns, backoff=QUICK)
                informer.on_event(recorder)
                async with informer:
                    await informer.wait_synced(30)
                    same_before = informer.get(ns, "same")
                    # every watch request now fails: the informer retries with backoff, still at its version
                    faults(small.url, body={"errors": {"watch": {"rate": 1.0, "code": 500}}, "dropWatches": True})
                    errors = informer.stats.errors
                    await eventually("a failed watch", lambda: informer.stats.errors > errors)
                    await kube.delete(info, "gone", ns)
                    await kube.apply(info, configmap("changed", ns, data="2"))
                    await kube.apply(info, configmap("new", ns))
                    for i in range(8):
                        await kube.apply(info, configmap(f"churn-{i}", other))
                    seen = len(recorder.events)
                    faults(small.url, method="DELETE")
                    await eventually("the relist", lambda: informer.stats.relists == 1)
                    await eventually("synthetic events", lambda: len(recorder.events) >= seen + 3)
                    after = recorder.events[seen:]
                    assert sorted((kind, name) for kind, name, _o, _p in after) == [
                        ("ADDED", "new"),
                        ("DELETED", "gone"),
                        ("MODIFIED", "changed"),
                    ]
                    by_name = {name: (obj, old) for _k, name, obj, old in after}
                    assert by_name["changed"][0]["data"] == {"v": "2"}
                    assert by_name["changed"][1]["data"] == {"v": "1"}  # type: ignore[index]
                    assert by_name["gone"][1]["metadata"]["name"] == "gone"  # type: ignore[index]
                    assert informer.get(ns, "same") is same_before  # unchanged: no event, same object
                    assert informer.stats.lists == 2

                    # and it watches again from the relist's version
                    await kube.apply(info, configmap("later", ns))
                    await eventually("a watch event after the relist", lambda: ("ADDED", "later") in recorder.names())
                    assert informer.stats.lists == 2

        run(scenario())
    finally:
        small.thread.stop()


def test_informer_set_feeds_the_cache_and_the_reader_makes_no_requests(sandbox, sandbox_namespace) -> None:
    ns = sandbox_namespace
    app = f"shop-{ns}"[:60]

    async def scenario() -> None:
        async with (
            await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as writer,
            await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as reader,
        ):
            cm = await writer.info("v1", "ConfigMap")
            secret = await writer.info("v1", "Secret")
            mine = {"tether.dev/app": app}
            await writer.apply(cm, configmap("one", ns, labels=mine))
            await writer.apply(cm, configmap("two", ns, labels={**mine, "tether.dev/app-namespace": "team"}))
            await writer.apply(cm, configmap("theirs", ns, labels={"tether.dev/app": "someone-else"}))
            await writer.apply(cm, configmap("unmanaged", ns))
            await writer.apply(
                secret,
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "Opaque",
                    "metadata": {"name": "s", "namespace": ns, "labels": mine},
                    "stringData": {"k": "v"},
                },
            )
            # kubectl apply leaves its last-applied annotation: the cache drops it
            (await writer.patch(cm, "one", ns, {"metadata": {"annotations": {LAST_APPLIED: "{}", "keep": "x"}}}))

            informers = InformerSet(reader, label_selector="tether.dev/app", watch_timeout=30)
            recorder = Recorder()
            informers.on_event(recorder)
            reader_for_app = CacheReader(informers)
            try:
                live = await reader_for_app.list_app_objects([cm, secret, cm], app)
                # the engine's own lister
                expected = await ListingReader(writer).list_app_objects([cm, secret], AppIdentity("default", app))
                assert (
                    set(live)
                    == set(expected)
                    == {("", "ConfigMap", ns, "one"), ("", "ConfigMap", ns, "two"), ("", "Secret", ns, "s")}
                )
                for key, obj in live.items():
                    assert obj["metadata"]["resourceVersion"] == expected[key]["metadata"]["resourceVersion"]
                one = live[("", "ConfigMap", ns, "one")]
                assert one["metadata"]["annotations"] == {"keep": "x"}
                assert one["metadata"]["managedFields"]  # kept for drift detection

                scoped = CacheReader(informers, app_namespace="team")
                assert set(await scoped.list_app_objects([cm], app)) == {("", "ConfigMap", ns, "two")}

                requests = sum(reader.requests.values())
                for _ in range(3):
                    assert set(await reader_for_app.list_app_objects([cm, secret], app)) == set(expected)
                assert sum(reader.requests.values()) == requests  # planning from the cache: no requests

                await writer.delete(cm, "one", ns)
                await eventually("the deletion", lambda: ("DELETED", "one") in recorder.names())
                assert set(await reader_for_app.list_app_objects([cm], app)) == {("", "ConfigMap", ns, "two")}
                assert sum(reader.requests.values()) == requests

                # a selector-less get cannot trust a labelled cache: one GET
                assert (await reader_for_app.get(cm, "unmanaged", ns))["metadata"]["name"] == "unmanaged"  # type: ignore[index]
                assert sum(reader.requests.values()) == requests + 1

                # a restart lists again but hands on only what changed meanwhile
                seen = len(recorder.events)
                old_informer = informers.informers[("", "ConfigMap")]
                await informers.restart()
                new_informer = informers.informers[("", "ConfigMap")]
                assert new_informer is not old_informer and not old_informer.running
                await asyncio.gather(*(i.wait_synced(30) for i in informers.informers.values()))
                assert [e for e in recorder.names(seen) if e[1] in ("two", "theirs")] == []
                await writer.apply(cm, configmap("three", ns, labels=mine))
                await eventually("an event after the restart", lambda: ("ADDED", "three") in recorder.names())
                assert ("", "ConfigMap", ns, "three") in await reader_for_app.list_app_objects([cm], app)
                assert informers.stats().lists >= 3  # ConfigMap, Secret, ConfigMap again

                await informers.remove(secret)
                assert not informers.watching(secret)
                assert informers.cache.get("", "Secret", ns, "s") is None
            finally:
                await informers.stop()
            assert all(not i.running for i in (old_informer, new_informer))

    run(scenario())
