"""Webhooks end to end: a signed GitHub push refreshes exactly the matching apps; forgeries are refused."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import Cluster, eventually, ready_at
from controllers import GITHUB_SECRET, metric_sum, parse_metrics

from tether.cli.demo_env import LocalEnvironment, git


def configmap(name: str, namespace: str, value: str) -> str:
    return (
        f'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  v: "{value}"\n'
    )


def files(value: str) -> dict[str, str | None]:
    return {f"hooks/{app}/cm.yaml": configmap(app, "hooks", value) for app in ("a", "b", "other")}


@pytest.fixture(scope="module")
def quiet(env: LocalEnvironment, controller: Any) -> Iterator[LocalEnvironment]:
    """Pushes go unannounced: only the webhooks the tests send wake the controller."""
    assert env.git_server is not None
    env.git_server.set_on_push(None)
    yield env
    env.git_server.set_on_push(env._announce)


def post_github(
    env: LocalEnvironment,
    payload: dict,
    *,
    secret: str = GITHUB_SECRET,
    delivery: str = "",
    signature: str | None = None,
) -> tuple[int, dict]:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
    }
    if signature is None:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if signature:
        headers["X-Hub-Signature-256"] = signature
    request = urllib.request.Request(
        f"http://127.0.0.1:{env.controller_port}/hooks/github", data=body, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def push_payload(env: LocalEnvironment, branch: str, commit: str) -> dict:
    return {
        "ref": f"refs/heads/{branch}",
        "before": "0" * 39 + "1",
        "after": commit,
        "repository": {"clone_url": env.repo_url, "full_name": "local/apps"},
    }


def webhook_metrics(env: LocalEnvironment) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{env.controller_port}/metrics", timeout=10) as response:
        return parse_metrics(response.read().decode())


def test_a_github_push_refreshes_exactly_the_apps_on_that_branch_and_forgeries_are_counted(
    quiet: LocalEnvironment,
) -> None:
    env, cluster = quiet, Cluster(quiet.kubeconfig)
    first = env.commit("Add hook apps", files("1"))
    git(env.work, "push", "-q", "origin", "HEAD:other")
    for name, branch in (("hook-a", "main"), ("hook-b", "main"), ("hook-other", "other")):
        app = env.application(name, path=f"hooks/{name.removeprefix('hook-')}")
        app["spec"]["source"]["ref"] = {"branch": branch}
        app["spec"]["destination"] = {"namespace": "hooks", "createNamespace": True}
        cluster.apply(app)
    for name in ("hook-a", "hook-b", "hook-other"):
        eventually(lambda name=name: ready_at(cluster.app(name), first), f"{name} Ready at the first commit")

    second = env.commit("Bump every hook app", files("2"))  # unannounced
    git(env.work, "push", "-q", "origin", "HEAD:other")
    payload = push_payload(env, "main", second)
    code, answer = post_github(env, payload, delivery="delivery-main-1")
    assert (code, answer["refreshed"]) == (202, 2), answer
    eventually(lambda: ready_at(cluster.app("hook-a"), second), "hook-a at the pushed commit")
    eventually(lambda: ready_at(cluster.app("hook-b"), second), "hook-b at the pushed commit")
    other = cluster.app("hook-other")
    assert other["status"]["lastAppliedRevision"] == first, "a push to main must not refresh an app on 'other'"
    assert cluster.get("v1", "ConfigMap", "other", "hooks")["data"]["v"] == "1"

    # refused: replayed delivery, a signature made with another secret, no signature at all
    assert post_github(env, payload, delivery="delivery-main-1")[0] == 409
    assert post_github(env, push_payload(env, "other", second), secret="not-the-secret")[0] == 403
    assert post_github(env, push_payload(env, "other", second), signature="")[0] == 401
    metrics = webhook_metrics(env)
    assert metric_sum(metrics, "tether_webhook_requests_total", provider="github", result="replayed") == 1
    assert metric_sum(metrics, "tether_webhook_requests_total", provider="github", result="bad-signature") == 1
    assert metric_sum(metrics, "tether_webhook_requests_total", provider="github", result="missing-signature") == 1
    assert metric_sum(metrics, "tether_webhook_requests_total", provider="github", result="accepted") == 1
    assert cluster.app("hook-other")["status"]["lastAppliedRevision"] == first, "a refused push refreshes nothing"

    code, answer = post_github(env, push_payload(env, "other", second))
    assert (code, answer["refreshed"]) == (202, 1), answer
    eventually(lambda: ready_at(cluster.app("hook-other"), second), "hook-other at the pushed commit")


def test_a_push_announced_during_a_reconcile_is_fetched_by_the_next_one(
    quiet: LocalEnvironment, controller: Any
) -> None:
    """The webhook lands while the app's pass runs (after its fetch): the push must not be lost."""
    env, cluster = quiet, Cluster(quiet.kubeconfig)
    first = env.commit("Add racer", {"racer/cm.yaml": configmap("racer", "hooks", "1")})
    app = env.application("racer", path="racer")
    app["spec"]["destination"] = {"namespace": "hooks", "createNamespace": True}
    cluster.apply(app)
    assert post_github(env, push_payload(env, "main", first))[0] == 202
    eventually(lambda: ready_at(cluster.app("racer"), first), "racer Ready")

    reconciler = controller.controller.reconciler
    original = reconciler.run_pass
    in_pass, go = threading.Event(), threading.Event()

    async def held(app_: object, *args: object, **kwargs: object) -> object:
        result = await original(app_, *args, **kwargs)
        if getattr(app_, "name", "") == "racer" and not go.is_set():
            in_pass.set()
            await asyncio.to_thread(go.wait, 30)
        return result

    reconciler.run_pass = held
    try:
        cluster.patch(
            "tether.dev/v1alpha1",
            "Application",
            "racer",
            "default",
            {"metadata": {"annotations": {"tether.dev/refresh-requested-at": "race-1"}}},
        )
        assert in_pass.wait(30), "the refresh pass started"
        second = env.commit("Bump racer", {"racer/cm.yaml": configmap("racer", "hooks", "2")})  # unannounced
        code, answer = post_github(env, push_payload(env, "main", second))
        assert code == 202 and answer["refreshed"] >= 1, answer
        go.set()
        eventually(lambda: ready_at(cluster.app("racer"), second), "the push announced mid-pass applied")
    finally:
        go.set()
        reconciler.run_pass = original
