"""The dashboard's HTTP server: routes, sign-in, pages, actions and the live-update stream.

Pages are rendered on the server (Jinja2, autoescaped) and work without JavaScript; htmx, when
it runs, swaps the changed part of a page in place, and ``dashboard.js`` listens to the
server-sent event stream (``/events``) to know when, falling back to a periodic refresh when the
stream cannot be held open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from tether.apps import ops as app_ops
from tether.dashboard import actions, diffs, views
from tether.dashboard.auth import SESSION_COOKIE, Session, Sessions, SignInFailed
from tether.dashboard.cache import AppCache, AppKey
from tether.dashboard.tree import build_tree
from tether.errors import KubeError, SourceError, TetherError, UsageError
from tether.kube import Forbidden, Kube, NotFound, Unauthorized

log = logging.getLogger("tether.dashboard")
HERE = Path(__file__).parent
SESSION = web.RequestKey("session", Session)
_OPEN_PATHS = ("/login", "/static/", "/healthz")
HEARTBEAT_SECONDS = 15.0


@dataclass
class DashboardOptions:
    local_sign_in: bool = False  # offer a one-time link acting with the dashboard's own credentials
    cache_dir: str = ""  # Git mirrors for diffs
    events_limit: int = 30


class Dashboard:
    """One dashboard over one cluster connection. ``app`` is the aiohttp application to serve."""

    def __init__(self, kube: Kube, options: DashboardOptions | None = None) -> None:
        self.kube = kube
        self.options = options or DashboardOptions()
        self.cache = AppCache(kube)
        self.sessions = Sessions(kube)
        self._rows: dict[AppKey, tuple[dict[str, Any], views.AppRow]] = {}
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.ChainableUndefined,
        )  # status fields are often absent
        self.templates.filters["short"] = lambda sha: (sha or "")[:8]
        self.templates.filters["urlencode_params"] = lambda params: urlencode(params)
        self.app = web.Application(middlewares=[self._errors, self._authenticate])
        self.app.on_startup.append(self._start)
        self.app.on_cleanup.append(self._stop)
        self.app.add_routes(
            [
                web.get("/", self.index),
                web.get("/healthz", self.healthz),
                web.get("/login", self.login_page),
                web.post("/login", self.login),
                web.get("/login/local", self.login_local),
                web.post("/logout", self.logout),
                web.get("/apps", self.app_list),
                web.get("/overview", self.overview),
                web.get("/apps/{namespace}/{name}", self.app_page),
                web.get("/apps/{namespace}/{name}/diff", self.pending_diff),
                web.post("/apps/{namespace}/{name}/actions/{action}", self.action),
                web.get("/events", self.events),
                web.static("/static", HERE / "static", append_version=True),
            ]
        )

    async def _start(self, _app: web.Application) -> None:
        await self.cache.start()

    async def _stop(self, _app: web.Application) -> None:
        await self.cache.stop()

    # ------------------------------------------------------------ middleware

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(_OPEN_PATHS):
            return await handler(request)
        session: Session | None = None
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            try:
                session = await self.sessions.bearer(header[7:])
            except SignInFailed as error:
                raise web.HTTPUnauthorized(text=str(error)) from None
        else:
            session = self.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
            if session is not None and request.method == "POST":
                form = await request.post()
                if not secrets.compare_digest(str(form.get("csrf", "")), session.csrf):
                    raise web.HTTPForbidden(text="the form's CSRF token does not match this session: reload the page")
        if session is None:
            if request.method == "GET" and request.path != "/events":
                raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}")
            raise web.HTTPUnauthorized(text="sign in first (POST /login with a token, or send Authorization: Bearer)")
        request[SESSION] = session
        return await handler(request)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as error:
            if error.status < 400 or error.content_type != "text/plain" or request.path.startswith("/static/"):
                raise
            return self._error_page(request, error.status, error.reason, error.text or "")
        except Forbidden as error:
            return self._error_page(request, 403, "Forbidden", str(error))
        except (NotFound, app_ops.AppNotFound) as error:
            return self._error_page(request, 404, "Not found", str(error))
        except Unauthorized as error:
            return self._error_page(request, 401, "Unauthorized", str(error))
        except UsageError as error:
            return self._error_page(request, 400, "Bad request", str(error))
        except KubeError as error:
            return self._error_page(request, 502, "The API server failed", str(error))

    def _error_page(self, request: web.Request, status: int, title: str, message: str) -> web.Response:
        session = request.get(SESSION)
        return self._render("error.html", request, status=status, title=title, message=message, session=session)

    def _render(self, template: str, request: web.Request, status: int = 200, **context: Any) -> web.Response:
        context.setdefault("session", request.get(SESSION))
        session = context["session"]
        flash = session.flash.pop() if session is not None and session.flash else ("", "")
        context.setdefault("flash", flash[1] if flash[0] == "done" else "")
        context.setdefault("failure", flash[1] if flash[0] == "failed" else "")
        text = self.templates.get_template(template).render(request=request, **context)
        return web.Response(
            text=text,
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers={
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'self'; style-src 'self'; "
                "script-src 'self'; frame-ancestors 'none'",
                "Referrer-Policy": "same-origin",
            },
        )

    # ------------------------------------------------------------ sign-in

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(
            text="ok" if self.cache.synced.is_set() and not self.cache.error else "not ready",
            status=200 if self.cache.synced.is_set() else 503,
        )

    async def index(self, _request: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/apps")

    async def login_page(self, request: web.Request, message: str = "", status: int = 200) -> web.Response:
        return self._render(
            "login.html",
            request,
            status=status,
            message=message,
            next=_safe_next(request.query.get("next", "")),
            session=None,
        )

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            session_id, _session = await self.sessions.sign_in(str(form.get("token", "")))
        except SignInFailed as error:
            return self._render(
                "login.html",
                request,
                status=401,
                message=str(error),
                next=_safe_next(str(form.get("next", ""))),
                session=None,
            )
        return self._signed_in(request, session_id, _safe_next(str(form.get("next", ""))))

    async def login_local(self, request: web.Request) -> web.Response:
        redeemed = self.sessions.redeem_local(request.query.get("code", "")) if self.options.local_sign_in else None
        if redeemed is None:
            return self._render(
                "login.html",
                request,
                status=401,
                session=None,
                next="/apps",
                message="this sign-in link was used already or is not valid: sign in with a token",
            )
        return self._signed_in(request, redeemed[0], "/apps")

    def _signed_in(self, request: web.Request, session_id: str, target: str) -> web.Response:
        response = web.HTTPSeeOther(target or "/apps")
        response.set_cookie(
            SESSION_COOKIE, session_id, httponly=True, samesite="Strict", path="/", secure=request.secure
        )
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        self.sessions.end(request.cookies.get(SESSION_COOKIE, ""))
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    # ------------------------------------------------------------ pages

    async def visible_rows(self, session: Session) -> list[views.AppRow]:
        """The cached apps as rows, narrowed to the namespaces the user may list Applications in."""
        apps = self.cache.apps
        allowed = await session.visible_namespaces(self.cache.namespaces())
        rows = []
        for key, obj in apps.items():
            if allowed is not None and key[0] not in allowed:
                continue
            memo = self._rows.get(key)
            if memo is None or memo[0] is not obj:
                memo = (obj, views.row_of(obj))
                self._rows[key] = memo
            rows.append(memo[1])
        return rows

    async def app_list(self, request: web.Request) -> web.Response:
        session = request[SESSION]
        query = views.Query.from_params(request.query)
        rows = await self.visible_rows(session)
        page = views.page_of(rows, query)
        namespaces = sorted({r.namespace for r in rows})
        return self._render(
            "list.html",
            request,
            query=query,
            page=page,
            namespaces=namespaces,
            sync_states=views.SYNC_STATES,
            health_states=views.HEALTH_STATES,
            page_sizes=views.PAGE_SIZES,
            cache_error=self.cache.error,
        )

    async def overview(self, request: web.Request) -> web.Response:
        rows = await self.visible_rows(request[SESSION])
        return self._render("overview.html", request, overview=views.overview_of(rows), cache_error=self.cache.error)

    async def app_page(self, request: web.Request) -> web.Response:
        session = request[SESSION]
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        obj = await app_ops.get_app(session.kube, name, namespace)  # as the user: 403 / 404 from the server
        self.cache.put(obj)
        tree, events = await asyncio.gather(
            build_tree(session.kube, namespace, name, _health_rules(obj)), self._events(session.kube, obj)
        )
        history = app_ops.history(obj)
        compare = None
        from_rev, to_rev = request.query.get("from", ""), request.query.get("to", "")
        if from_rev and to_rev:
            compare = await self._compare(session.kube, obj, from_rev, to_rev)
        return self._render(
            "app.html",
            request,
            app=obj,
            row=views.row_of(obj),
            tree=tree,
            events=events,
            history=history,
            compare=compare,
            from_rev=from_rev,
            to_rev=to_rev,
            conditions=(obj.get("status") or {}).get("conditions") or [],
            drift=(obj.get("status") or {}).get("drift") or [],
            spec=obj.get("spec") or {},
        )

    async def _events(self, kube: Kube, obj: dict[str, Any]) -> list[dict[str, Any]] | str:
        try:
            return list(reversed(await app_ops.events_of(kube, obj, self.options.events_limit)))
        except Forbidden as error:
            return f"cannot list Events: {error}"

    async def _compare(self, kube: Kube, obj: dict[str, Any], from_rev: str, to_rev: str) -> dict[str, str]:
        entries = app_ops.history(obj)
        resolved = [app_ops.match_revision(entries, r) or r for r in (from_rev, to_rev)]
        try:
            text = await diffs.revision_diff(kube, obj, resolved[0], resolved[1], self.options.cache_dir)
        except (SourceError, TetherError) as error:
            return {"error": str(error), "from": resolved[0], "to": resolved[1], "text": ""}
        return {"error": "", "from": resolved[0], "to": resolved[1], "text": text}

    async def pending_diff(self, request: web.Request) -> web.Response:
        session = request[SESSION]
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        obj = await app_ops.get_app(session.kube, name, namespace)
        try:
            diff, error = await diffs.pending_diff(session.kube, obj, self.options.cache_dir), ""
        except TetherError as failure:  # a Forbidden dry run included: the rest of the page stays useful
            diff, error = None, str(failure)
        template = "diff_fragment.html" if request.headers.get("HX-Request") else "diff.html"
        return self._render(template, request, app=obj, row=views.row_of(obj), diff=diff, error=error)

    # ------------------------------------------------------------ actions

    async def action(self, request: web.Request) -> web.Response:
        session = request[SESSION]
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        form = {k: str(v) for k, v in (await request.post()).items()}
        target = f"/apps/{quote(namespace)}/{quote(name)}"
        try:
            message, stored = await actions.perform(
                session.kube, request.match_info["action"], namespace, name, session.user, form
            )
        except Forbidden as error:
            if request.headers.get("Accept", "").startswith("application/json"):
                raise
            return self._error_page(request, 403, "Forbidden", str(error))
        except UsageError as error:
            session.flash = [("failed", str(error))]
            raise web.HTTPSeeOther(target) from None
        self.cache.put(stored)
        log.info("dashboard: %s by %s", message, session.user)
        session.flash = [("done", message)]
        raise web.HTTPSeeOther(target)

    # ------------------------------------------------------------ live updates

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: ``changed`` with ``namespace/name`` for each app the user may see that changed."""
        session = request[SESSION]
        only = request.query.get("app", "")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        await response.write(b"retry: 5000\n: connected\n\n")
        async with self.cache.subscribe() as queue:
            while True:
                try:  # asyncio.timeout: 3.11's wait_for can drop a cancel and keep the stream open
                    async with asyncio.timeout(HEARTBEAT_SECONDS):
                        key = await queue.get()
                except TimeoutError:
                    if not await _send(response, b": heartbeat\n\n"):
                        break
                    continue
                text = f"{key[0]}/{key[1]}"
                if only and text != only:
                    continue
                allowed = await session.visible_namespaces(self.cache.namespaces())
                if allowed is not None and key[0] not in allowed:
                    continue
                if not await _send(response, f"event: changed\ndata: {text}\n\n".encode()):
                    break
        return response


async def _send(response: web.StreamResponse, data: bytes) -> bool:
    """False once the browser has gone (a closed tab or a navigation ends its event stream)."""
    try:
        await response.write(data)
    except (ConnectionResetError, RuntimeError):  # aiohttp's ClientConnectionResetError is a ConnectionResetError
        return False
    return True


def _safe_next(target: str) -> str:
    """Only a path on this server (never //host or a scheme): the sign-in form must not redirect away."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/apps"


async def serve(
    kube: Kube,
    host: str,
    port: int,
    options: DashboardOptions | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Any = None,
) -> None:
    """Serve the dashboard until ``stop`` is set (or the task is cancelled)."""
    dashboard = Dashboard(kube, options)
    runner = web.AppRunner(dashboard.app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        if on_ready is not None:
            on_ready(dashboard, runner)
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()


def _health_rules(obj: dict[str, Any]) -> Any:
    """The Application's own CEL health checks; none when its spec does not parse (the page says why)."""
    from tether.controller.api import parse_application
    from tether.errors import TetherError

    try:
        return parse_application(obj).spec.health_rules()
    except TetherError:
        return None
