"""The sandbox HTTP server: routing, authentication, request hooks, metrics and lifecycle.

Extension points for other parts of the sandbox (authorization, fault injection, simulation):

    sandbox.hooks.append(hook)   # async hook(info: RequestInfo, request) -> web.StreamResponse | None
        # runs for every authenticated request before it is served, in order; returning a
        # response answers the request with it, raising ApiError answers with that Status.
    sandbox.users[token] = UserInfo(name, groups)   # bearer tokens the server accepts
    sandbox.store                                   # see tether.sandbox.store for its API
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tether import __version__
from tether.sandbox import discovery, errors, extras, namespaces, openapi_proto, watch
from tether.sandbox import request as req
from tether.sandbox.crds import CrdController
from tether.sandbox.handlers import ResourceHandlers, respond
from tether.sandbox.metrics import Metrics
from tether.sandbox.openapi import OpenAPI
from tether.sandbox.request import RequestInfo, UserInfo
from tether.sandbox.resources import Registry
from tether.sandbox.store import Store
from tether.sandbox.tls import ensure_certificates, server_context, write_kubeconfig

log = logging.getLogger(__name__)

RequestHook = Callable[[RequestInfo, web.Request], Awaitable[web.StreamResponse | None]]
ADMIN = UserInfo("admin", ["system:masters", "system:authenticated"])
_PUBLIC = {"/healthz", "/livez", "/readyz", "/version"}
_METRIC_VERBS = {
    "create": "POST",
    "update": "PUT",
    "get": "GET",
    "list": "LIST",
    "watch": "WATCH",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETECOLLECTION",
}
INFO = web.RequestKey("tether_request_info", RequestInfo)


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 0
    data_dir: Path | None = None
    tls: bool = False
    tokens: list[str] = field(default_factory=list)  # admin bearer tokens; empty: no authentication
    kube_version: str = "1.32"
    bookmark_interval: float = 5.0
    history_size: int = 10_000
    namespace_settle: float = namespaces.SETTLE  # quiet seconds before a Terminating namespace is emptied
    extras: extras.ExtrasConfig = field(default_factory=extras.ExtrasConfig)  # defaults, GC, simulation, RBAC, faults


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.registry = Registry()
        self.store = Store(self.registry, config.data_dir, history_size=config.history_size)
        self.crds = CrdController(self.store)
        self.namespaces = namespaces.install(self.store, settle=config.namespace_settle)
        self.handlers = ResourceHandlers(self.store)
        self.openapi = OpenAPI(self.registry, f"v{config.kube_version}.0")
        self.metrics = Metrics()
        self.hooks: list[RequestHook] = []
        self.users: dict[str, UserInfo] = {token: ADMIN for token in config.tokens}
        self.extras = extras.install(self)
        self.url = ""
        self.ca_path: Path | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=req.MAX_BODY + 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start(self) -> str:
        ssl_context = None
        if self.config.tls:
            directory = (self.config.data_dir or Path(".")) / "pki"
            self.ca_path, cert, key = ensure_certificates(directory, [self.config.host])
            ssl_context = server_context(cert, key)
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, ssl_context=ssl_context)
        await site.start()
        self.namespaces.start()
        self.extras.start()
        server = site._server
        assert server is not None and server.sockets
        port = server.sockets[0].getsockname()[1]
        scheme = "https" if ssl_context else "http"
        host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1"
        self.url = f"{scheme}://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        self.extras.stop()
        self.store.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.store.close()

    def write_kubeconfig(self, path: Path) -> Path:
        token = self.config.tokens[0] if self.config.tokens else None
        return write_kubeconfig(path, self.url, ca=self.ca_path, token=token)

    # -- request path ------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        started = time.perf_counter()
        info = RequestInfo(verb=request.method.lower(), path=request.path)
        code = 500
        try:
            info = req.parse(request, self.registry)
            request[INFO] = info
            info.user = self._authenticate(request)
            for hook in self.hooks:
                answer = await hook(info, request)
                if answer is not None:
                    code = answer.status
                    return answer
            response = await handler(request)
            code = response.status
            return response
        except errors.ApiError as error:
            code = error.code
            response = respond(error.status(), error.code)
            for key, value in error.headers.items():
                response.headers[key] = value
            return response
        except web.HTTPException as error:
            code = error.status
            return respond(
                errors.ApiError(error.status, error.reason, error.text or error.reason).status(), error.status
            )
        except (asyncio.CancelledError, ConnectionError):
            code = 499
            raise
        except Exception:  # never a stack trace to the client: log it, answer a Status
            log.exception("internal error serving %s %s", request.method, request.path)
            code = 500
            return respond(
                errors.ApiError(
                    500, "InternalError", "an error on the server prevented the request from succeeding"
                ).status(),
                500,
            )
        finally:
            verb = _METRIC_VERBS.get(info.verb, info.verb.upper()) if info.is_resource else request.method
            if verb == "PATCH" and request.content_type == "application/apply-patch+yaml":
                verb = "APPLY"
            self.metrics.requests.labels(verb, info.group, info.resource, info.subresource, str(code)).inc()
            self.metrics.latency.labels(verb, info.resource).observe(time.perf_counter() - started)

    @property
    def anonymous_allowed(self) -> bool:
        """Whether a request without a token gets in (as admin, or as anonymous on health paths).

        With RBAC authorization the sandbox authenticates as kube-apiserver does with
        ``--anonymous-auth=false``: every request needs a valid token, health and version included.
        """
        return self.config.extras.authz.lower() != "rbac"

    def _authenticate(self, request: web.Request) -> UserInfo:
        if not self.users and self.anonymous_allowed:
            return ADMIN  # no tokens configured: no authentication at all
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            user = self.users.get(header[7:].strip())
            if user is not None:
                return user
        if request.path in _PUBLIC and self.anonymous_allowed:
            return UserInfo("system:anonymous", ["system:unauthenticated"])
        raise errors.ApiError(401, "Unauthorized", "Unauthorized")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        info = request[INFO]
        if info.is_resource:
            return await self._resource(request, info)
        path = request.path.rstrip("/") or "/"
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/version":
            return respond(
                {
                    "major": "1",
                    "minor": self.config.kube_version.split(".")[1],
                    "gitVersion": f"v{self.config.kube_version}.0",
                    "gitCommit": f"tether-{__version__}",
                    "gitTreeState": "clean",
                    "buildDate": "2024-12-11T00:00:00Z",
                    "goVersion": "go1.23.4",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            )
        if path == "/metrics":
            self.metrics.objects.set(sum(len(b) for b in self.store.objects.values()))
            self.metrics.watchers.set(len(self.store._subscribers))
            return web.Response(body=self.metrics.render(), content_type="text/plain", charset="utf-8")
        if path in ("/api", "/apis"):
            media = discovery.wants_aggregated(request.headers.get("Accept", ""))
            if media:
                body = discovery.aggregated(self.registry, core=path == "/api", media_type=media)
                response = respond(body)
                response.headers["Content-Type"] = media
                return response
            if path == "/api":
                return respond(discovery.api_versions(request.host))
            return respond(discovery.api_group_list(self.registry))
        parts = path.strip("/").split("/")
        if parts == ["api", "v1"]:
            return respond(discovery.api_resource_list(self.registry, "", "v1"))
        if parts[0] == "apis" and len(parts) == 2:
            group = discovery.api_group(self.registry, parts[1])
            if group:
                return respond(group)
        if parts[0] == "apis" and len(parts) == 3 and self.registry.in_group_version(parts[1], parts[2]):
            return respond(discovery.api_resource_list(self.registry, parts[1], parts[2]))
        if path == "/openapi/v2":
            if openapi_proto.wants_protobuf(request.headers.get("Accept", "")):
                return web.Response(body=self.openapi.v2_protobuf(), headers={"Content-Type": openapi_proto.MEDIA_TYPE})
            return web.Response(body=self.openapi.v2(), content_type="application/json")
        if path == "/openapi/v3":
            return web.Response(body=self.openapi.v3_index(), content_type="application/json")
        if path.startswith("/openapi/v3/"):
            doc = self.openapi.v3_document(path.removeprefix("/openapi/v3/"))
            if doc is not None:
                return web.Response(
                    body=doc,
                    content_type="application/json",
                    headers={"Cache-Control": "public, immutable"} if "hash" in request.query else {},
                )
        raise errors.page_not_found(path)

    async def _resource(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        rt = info.rt
        if rt is None or (info.subresource and info.subresource not in rt.subresources):
            raise errors.page_not_found(request.path)
        if rt.namespaced and not info.namespace and info.verb not in ("list", "watch", "deletecollection"):
            raise errors.page_not_found(request.path)
        if not rt.namespaced and info.namespace:
            raise errors.page_not_found(request.path)
        handlers = self.handlers
        verb = info.verb
        if (verb in ("update", "patch") and not info.name) or (verb == "create" and info.name and not info.subresource):
            raise errors.method_not_allowed()
        if info.subresource and verb not in ("get", "update", "patch"):
            raise errors.method_not_allowed()
        if info.subresource == "finalize" and verb != "update":
            raise errors.method_not_allowed()  # upstream serves only PUT on namespaces/NAME/finalize
        if verb == "get":
            return await handlers.get(request, info, rt)
        if verb == "list":
            return await handlers.list(request, info, rt)
        if verb == "watch":
            return await watch.serve(request, info, rt, handlers, self.config.bookmark_interval)
        if verb == "create":
            return await handlers.create(request, info, rt)
        if verb == "update":
            return await handlers.update(request, info, rt)
        if verb == "patch":
            return await handlers.patch(request, info, rt)
        if verb == "delete":
            return await handlers.delete(request, info, rt)
        if verb == "deletecollection":
            return await handlers.delete_collection(request, info, rt)
        raise errors.method_not_allowed()


class SandboxThread:
    """A sandbox serving from a background thread with its own event loop (tests, the demo)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.sandbox: Sandbox | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tether-sandbox", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.sandbox = Sandbox(self.config)
            self.loop.run_until_complete(self.sandbox.start())
        except BaseException as error:  # reported to the starting thread
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.sandbox.stop())
        self.loop.close()

    def start(self, timeout: float = 60.0) -> Sandbox:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the sandbox did not start")
        if self._error is not None:
            raise self._error
        assert self.sandbox is not None
        return self.sandbox

    def call(self, fn: Callable[[], object], timeout: float = 30.0) -> object:
        """Run ``fn`` on the server's loop thread (the store is not thread-safe) and return its result."""

        async def run() -> object:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)


def new_token() -> str:
    return secrets.token_urlsafe(32)
