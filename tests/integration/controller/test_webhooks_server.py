"""The controller's HTTP server end to end: signed pushes over real HTTP, refusals with their status
codes, metrics, health and readiness; webhook secrets read from a Secret in the sandbox."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tether.controller.metrics import ControllerMetrics
from tether.controller.server import build_app, load_webhook_secrets, start_server
from tether.controller.webhooks import MAX_BODY, PushEvent, WebhookVerifier
from tether.kube import Kube

GITHUB_SECRET, GITLAB_TOKEN, GENERIC_SECRET = b"gh-hook-secret", b"gl-token", b"generic-secret"
SHA = "9f2c1e0b7d3a4c5e6f708192a3b4c5d6e7f80912"


def signed(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def github_body(ref: str = "refs/heads/main") -> bytes:
    return json.dumps(
        {
            "ref": ref,
            "after": SHA,
            "repository": {"clone_url": "https://github.com/acme/shop.git", "ssh_url": "git@github.com:acme/shop.git"},
        }
    ).encode()


async def _secret(kube: Kube, namespace: str) -> None:
    info = await kube.info("v1", "Secret")
    await kube.create(
        info,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hooks", "namespace": namespace},
            "data": {
                "github": base64.b64encode(GITHUB_SECRET).decode(),
                "gitlab": base64.b64encode(GITLAB_TOKEN).decode(),
                "generic": base64.b64encode(GENERIC_SECRET + b"\n").decode(),
            },
        },
    )


def test_webhook_server_end_to_end(sandbox, sandbox_namespace) -> None:
    pushes: list[PushEvent] = []
    ready = {"value": False}

    def on_push(event: PushEvent) -> int:
        pushes.append(event)
        return 2 if "github.com/acme/shop" in event.urls else 0

    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            await _secret(kube, sandbox_namespace)
            secrets = await load_webhook_secrets(kube, "hooks", sandbox_namespace)
            assert (await load_webhook_secrets(kube, "missing", sandbox_namespace)).github is None
        metrics = ControllerMetrics(api_requests=lambda: Counter({("GET", 200): 4}))
        verifier = WebhookVerifier(secrets)
        app = build_app(metrics=metrics, verifier=verifier, on_push=on_push, ready=lambda: ready["value"])
        runner, port = await start_server(app, "127.0.0.1", 0)
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                await _health(http, base, ready)
                await _pushes(http, base)
                await _refusals(http, base)
                await _metrics(http, base)
        finally:
            await runner.cleanup()
        assert verifier.rejections == {
            "bad-signature": 2,
            "missing-signature": 1,
            "replayed": 1,
            "too-large": 2,
            "not-configured": 1,
            "unknown-provider": 1,
            "bad-payload": 1,
        }

    asyncio.run(scenario())
    assert [(p.provider, p.ref, p.commit) for p in pushes] == [
        ("github", "main", SHA),
        ("gitlab", "v1.0.0", SHA),
        ("generic", "main", ""),
        ("github", "main", SHA),
    ]


async def _health(http: aiohttp.ClientSession, base: str, ready: dict) -> None:
    async with http.get(f"{base}/healthz") as response:
        assert response.status == 200
    async with http.get(f"{base}/readyz") as response:
        assert response.status == 503
    ready["value"] = True
    async with http.get(f"{base}/readyz") as response:
        assert response.status == 200


async def _post(
    http: aiohttp.ClientSession, url: str, body: bytes | AsyncIterator[bytes], headers: dict[str, str]
) -> tuple[int, dict]:
    async with http.post(url, data=body, headers={"Content-Type": "application/json", **headers}) as response:
        return response.status, await response.json()


async def _pushes(http: aiohttp.ClientSession, base: str) -> None:
    body = github_body()
    status, answer = await _post(
        http,
        f"{base}/hooks/github",
        body,
        {"X-GitHub-Event": "push", "X-GitHub-Delivery": "gh-1", "X-Hub-Signature-256": signed(GITHUB_SECRET, body)},
    )
    assert (status, answer) == (202, {"refreshed": 2, "delivery": "gh-1"})

    ping = json.dumps({"zen": "Design for failure."}).encode()
    status, answer = await _post(
        http,
        f"{base}/hooks/github",
        ping,
        {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "gh-ping", "X-Hub-Signature-256": signed(GITHUB_SECRET, ping)},
    )
    assert (status, answer["refreshed"]) == (200, 0)

    body = json.dumps(
        {
            "object_kind": "tag_push",
            "ref": "refs/tags/v1.0.0",
            "checkout_sha": SHA,
            "project": {"git_http_url": "https://gitlab.example.com/acme/api.git"},
        }
    ).encode()
    status, answer = await _post(
        http,
        f"{base}/hooks/gitlab",
        body,
        {"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": GITLAB_TOKEN.decode(), "X-Gitlab-Event-UUID": "gl-1"},
    )
    assert (status, answer["refreshed"]) == (202, 0)

    body = json.dumps({"url": "https://git.example.com/acme/infra", "ref": "main"}).encode()
    status, _ = await _post(
        http,
        f"{base}/hooks/generic",
        body,
        {"X-Tether-Delivery": "gen-1", "X-Tether-Signature": signed(GENERIC_SECRET, body)},
    )
    assert status == 202


async def _refusals(http: aiohttp.ClientSession, base: str) -> None:
    body = github_body()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "gh-1",
        "X-Hub-Signature-256": signed(GITHUB_SECRET, body),
    }
    status, answer = await _post(http, f"{base}/hooks/github", body, headers)  # the first push again
    assert status == 409 and "already received" in answer["error"]

    forged = {**headers, "X-GitHub-Delivery": "gh-2", "X-Hub-Signature-256": signed(b"guessed", body)}
    assert (await _post(http, f"{base}/hooks/github", body, forged))[0] == 403
    unsigned = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "gh-3"}
    assert (await _post(http, f"{base}/hooks/github", body, unsigned))[0] == 401
    wrong_token = {"X-Gitlab-Token": "nope", "X-Gitlab-Event-UUID": "gl-2"}
    assert (await _post(http, f"{base}/hooks/gitlab", body, wrong_token))[0] == 403
    # a forged request did not burn its delivery id: the genuine one still goes through
    genuine = {**headers, "X-GitHub-Delivery": "gh-2"}
    assert (await _post(http, f"{base}/hooks/github", body, genuine))[0] == 202

    big = b'{"pad": "' + b"x" * MAX_BODY + b'"}'
    status, answer = await _post(
        http,
        f"{base}/hooks/github",
        big,
        {**headers, "X-GitHub-Delivery": "gh-big", "X-Hub-Signature-256": signed(GITHUB_SECRET, big)},
    )
    assert status == 413 and "limit" in answer["error"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the server must count as it reads
        for _ in range(20):
            yield b"y" * (64 * 1024)

    assert (await _post(http, f"{base}/hooks/generic", chunked(), {"X-Tether-Delivery": "gen-big"}))[0] == 413

    assert (await _post(http, f"{base}/hooks/gitea", body, {"X-Gitea-Signature": "00"}))[0] == 403  # no secret
    assert (await _post(http, f"{base}/hooks/svn", body, {}))[0] == 404
    not_json = b"not json"
    status, _ = await _post(
        http,
        f"{base}/hooks/generic",
        not_json,
        {"X-Tether-Delivery": "gen-2", "X-Tether-Signature": signed(GENERIC_SECRET, not_json)},
    )
    assert status == 400


async def _metrics(http: aiohttp.ClientSession, base: str) -> None:
    async with http.get(f"{base}/metrics") as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("tether_webhook_requests_total", (("provider", "github"), ("result", "accepted")))] == 2
    assert values[("tether_webhook_requests_total", (("provider", "github"), ("result", "bad-signature")))] == 1
    assert values[("tether_webhook_requests_total", (("provider", "github"), ("result", "replayed")))] == 1
    assert values[("tether_webhook_requests_total", (("provider", "unknown"), ("result", "unknown-provider")))] == 1
    assert values[("tether_kube_api_requests_total", (("code", "200"), ("verb", "GET")))] == 4
