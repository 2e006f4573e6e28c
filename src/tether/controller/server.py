"""The controller's HTTP server: ``/metrics``, ``/healthz``, ``/readyz`` and ``POST /hooks/{provider}``.

A verified push is handed to ``on_push``, which returns how many Applications it queued for a
refresh; the answer is ``202 {"refreshed": N}``. Refusals answer with the status the
``WebhookRejected`` carries: 401 (no signature), 403 (bad signature or provider not enabled),
409 (replayed delivery), 413 (body over 1 MiB), 400 (not a push payload we can read). The body is
read in bounded chunks, so an oversized request is refused without buffering it.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from tether.controller.metrics import ControllerMetrics
from tether.controller.webhooks import (
    PROVIDERS,
    PushEvent,
    TooLarge,
    UnknownProvider,
    WebhookRejected,
    WebhookSecrets,
    WebhookVerifier,
)
from tether.kube import Kube

OnPush = Callable[[PushEvent], "int | Awaitable[int]"]
Readiness = Callable[[], "bool | Awaitable[bool]"]


async def load_webhook_secrets(kube: Kube, name: str, namespace: str) -> WebhookSecrets:
    """The webhook secrets from the Secret ``namespace/name`` (an empty set when it does not exist)."""
    info = await kube.info("v1", "Secret")
    secret = await kube.get(info, name, namespace)
    return WebhookSecrets.from_secret(secret or {})


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _json(body: dict[str, Any], status: int) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise TooLarge(f"body of {declared} bytes is over the {limit} byte limit")
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body is over the {limit} byte limit")
        chunks.append(chunk)


def build_app(
    *,
    metrics: ControllerMetrics,
    verifier: WebhookVerifier,
    on_push: OnPush,
    ready: Readiness = lambda: True,
    extra_routes: Iterable[web.AbstractRouteDef] = (),
) -> web.Application:
    """The aiohttp application (serve it with ``start_server`` or aiohttp's runners); ``extra_routes``
    (such as ``POST /hooks/registry``) take precedence over ``/hooks/{provider}``."""

    async def metrics_handler(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = metrics.content_type
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if await _maybe_await(ready()):
            return web.Response(text="ok\n")
        return web.Response(text="not ready\n", status=503)

    async def hook(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        label = provider if provider in PROVIDERS else "unknown"
        try:
            if provider not in PROVIDERS:
                raise UnknownProvider(f"unknown webhook provider {provider!r}; use one of {', '.join(PROVIDERS)}")
            body = await _read_bounded(request, verifier.max_body)
            event = verifier.verify(provider, request.headers, body)
        except WebhookRejected as error:
            if isinstance(error, TooLarge | UnknownProvider):  # refused before the verifier counted it
                verifier.rejections[error.reason] += 1
            metrics.count_webhook(label, error.reason)
            return _json({"error": str(error)}, error.status)
        if event is None:
            metrics.count_webhook(provider, "ignored")
            return _json({"refreshed": 0, "ignored": True}, 200)
        refreshed = int(await _maybe_await(on_push(event)))
        metrics.count_webhook(provider, "accepted")
        return _json({"refreshed": refreshed, "delivery": event.delivery}, 202)

    # the verifier enforces the body limit itself; aiohttp's own limit stays out of its way
    app = web.Application(client_max_size=verifier.max_body * 2)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_routes(list(extra_routes))
    app.router.add_post("/hooks/{provider}", hook)
    return app


async def start_server(app: web.Application, host: str = "0.0.0.0", port: int = 8080) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (``await runner.cleanup()`` stops it) and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port


__all__ = ["OnPush", "Readiness", "WebhookSecrets", "build_app", "load_webhook_secrets", "start_server"]
