"""An async client for the Kubernetes API over plain dict objects.

Connection, kubeconfig handling and authentication (tokens, client certificates, exec
plugins, CA bundles) come from ``lightkube``; requests are made on its configured HTTP
client with the object bodies kept as plain ``dict``. lightkube's generic-resource classes
share one process-wide registry that hands back typed models for built-in kinds, and typed
models drop fields they do not know; the engine must compare and apply objects byte for
byte, so it stays on dicts. JSON is decoded with msgspec (a lightkube dependency) because
plans list thousands of objects.

On top of that: every path is built from checked, escaped segments (``names``), every
request is retried as ``retry`` says (``requests`` counts requests, ``responses`` counts
attempts by status), connecting has its own short timeout, and ``impersonate`` gives views
acting as other users over the same pool.
"""

from __future__ import annotations

import asyncio
import copy
import random
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import msgspec
import yaml
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ConfigError

from tether.errors import KubeError
from tether.kube import names, retry
from tether.kube.discovery import Discovery, ResourceInfo
from tether.kube.errors import FieldConflict, Unreachable, UnsafeName, error_for
from tether.kube.retry import RetryPolicy
from tether.model import ObjectRef

FIELD_MANAGER = "tether"
#: connections for requests (the engine runs at most 16 at once per app) and for watches (one
#: each, held open; unbounded so that watching many kinds never waits for a connection)
REQUEST_POOL = httpx.Limits(max_connections=32, max_keepalive_connections=16)
WATCH_POOL = httpx.Limits(max_connections=None, max_keepalive_connections=4)
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def _load_config(kubeconfig: str | None, context: str | None) -> Any:
    try:
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        return config.get(context_name=context) if context else config.get()
    except (ConfigError, OSError, KeyError, TypeError, AttributeError, yaml.YAMLError) as error:
        # a kubeconfig that is not YAML, or YAML of the wrong shape, names the file
        where = kubeconfig or "the default kubeconfig"
        if isinstance(error, (TypeError, AttributeError)):
            reason = "not a kubeconfig (expected a mapping with clusters, users and contexts)"
        elif isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
            mark = error.problem_mark
            reason = f"not valid YAML: {error.problem} (line {mark.line + 1}, column {mark.column + 1})"
        else:
            reason = " ".join(str(error).split())
        raise KubeError(f"cannot load {where}{f' context {context!r}' if context else ''}: {reason}") from None


class Kube:
    """One connection to one cluster. Use ``await Kube.connect(...)`` and ``await kube.close()``.

    Every request path is built from checked segments (``tether.kube.names``): an unsafe name
    or namespace raises ``UnsafeName`` before anything is sent. Failed requests are retried as
    ``tether.kube.retry`` describes. ``impersonate`` gives a view acting as another user over
    the same connections.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        namespace: str,
        server: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        watch_http: httpx.AsyncClient | None = None,
    ) -> None:
        self._http = http
        #: watches hold their connection for minutes: a pool of their own, so however many kinds
        #: are watched they never take the connections requests need
        self._watch_http = watch_http or http
        self._owns_http = True
        self._impersonation: list[tuple[str, str]] = []
        self.namespace = namespace
        self.server = server
        self.retry = retry or RetryPolicy()
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.discovery = Discovery(self._get_json)
        #: requests made, by (HTTP method, dry-run), once per request however often it was tried —
        #: the bench and the CLI summary report it
        self.requests: Counter[tuple[str, bool]] = Counter()
        #: every attempt, retries included, by (HTTP method, status code; 0 when no response came)
        self.responses: Counter[tuple[str, int]] = Counter()
        self._random = random.Random()

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        timeout: float = 30.0,
        *,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
    ) -> Kube:
        """Connect as the kubeconfig says. ``timeout`` bounds each read and write; ``connect_timeout``
        bounds opening a connection (TLS handshake included), so a server that never answers
        fails in seconds rather than after the read timeout."""
        config = _load_config(kubeconfig, context)
        params = ConnectionParams(timeout=httpx.Timeout(timeout, connect=connect_timeout))
        try:
            # lightkube works out server, TLS and auth. The request pool is sized for the engine's
            # bounded concurrency: httpcore scans every pooled connection on each request and
            # response, so a larger pool costs CPU on every request without more throughput.
            http = httpx.AsyncClient(**params.httpx_params(config), limits=REQUEST_POOL)
            watch_http = httpx.AsyncClient(**params.httpx_params(config), limits=WATCH_POOL)
        except (ConfigError, AssertionError, OSError) as error:
            raise KubeError(f"cannot configure a connection to {config.cluster.server}: {error}") from None
        return cls(
            http,
            namespace or config.namespace or "default",
            config.cluster.server,
            retry=retry,
            timeout=timeout,
            connect_timeout=connect_timeout,
            watch_http=watch_http,
        )

    def impersonate(self, user: str, groups: list[str] | None = None) -> Kube:
        """A view of this client that acts as ``user`` (and ``groups``) on every request.

        It sends ``Impersonate-User`` / ``Impersonate-Group``, so the connecting identity needs
        the ``impersonate`` verb on those users, groups or service accounts. The view shares the
        connection pool, the discovery cache (discovery is fetched as the connecting identity)
        and the ``requests`` / ``responses`` counters; closing it leaves the pool open, and it
        stops working once the client it came from is closed.
        """
        view = copy.copy(self)
        view._owns_http = False
        view._impersonation = [("Impersonate-User", _header_value(user, "user to impersonate"))]
        view._impersonation += [("Impersonate-Group", _header_value(g, "group to impersonate")) for g in groups or []]
        return view

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()
            if self._watch_http is not self._http:
                await self._watch_http.aclose()

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ raw requests

    def _headers(self, content_type: str | None) -> list[tuple[str, str]]:
        headers = [("Accept", "application/json"), *self._impersonation]
        if content_type:
            headers.append(("Content-Type", content_type))
        return headers

    async def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        allow_404: bool = False,
        repeatable: bool = False,
    ) -> Any:
        """``repeatable``: the request may be repeated after a 5xx or a broken connection even though
        its method alone is not idempotent (a create of a named object: a repeat is AlreadyExists)."""
        content = _encode(body) if body is not None else None
        sent_type = content_type if body is not None else None
        headers = self._headers(sent_type)
        dry = bool(params and params.get("dryRun"))
        self.requests[(method, dry)] += 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(method, path, params=params, content=content, headers=headers)
            except httpx.HTTPError as error:
                unconnected = retry.never_connected(error)
                self.responses[(method, 0)] += 1
                failure: KubeError = Unreachable(
                    f"{what}: cannot reach the API server at {self.server}: {self._describe(error)}"
                )
                again = retry.transport_retryable(error, "PUT" if repeatable else method, sent_type)
            else:
                unconnected = False
                status = response.status_code
                self.responses[(method, status)] += 1
                if status == 404 and allow_404:
                    return None
                if status < 400:
                    return _decode(response.content) if response.content else None
                failure = _error(what, response)
                again = retry.status_retryable(status, "PUT" if repeatable else method, sent_type)
            if not again:
                raise failure
            delay = self.retry.delay(attempt, failure.retry_after, self._random)
            elapsed = loop.time() - started
            limit = min(self.retry.unreachable_attempts, self.retry.attempts) if unconnected else self.retry.attempts
            if attempt >= limit or elapsed + delay > self.retry.budget:
                if attempt > 1:
                    failure.args = (f"{failure.args[0]} (gave up after {attempt} attempts in {elapsed:.1f}s)",)
                raise failure
            await asyncio.sleep(delay)

    def _describe(self, error: httpx.HTTPError) -> str:
        if isinstance(error, httpx.ConnectTimeout):
            return f"no connection within {self.connect_timeout:g}s (connect timeout)"
        if isinstance(error, httpx.TimeoutException):
            return f"no answer within {self.timeout:g}s ({type(error).__name__})"
        return str(error) or type(error).__name__

    async def _get_json(self, path: str) -> Any:
        return await self._request("GET", path, what=f"GET {path}", allow_404=True)

    # ------------------------------------------------------------ typed helpers

    async def info(self, api_version: str, kind: str, *, refresh: bool = False) -> ResourceInfo:
        return await self.discovery.resolve(api_version, kind, refresh=refresh)

    async def info_for(self, obj_or_ref: dict[str, Any] | ObjectRef) -> ResourceInfo:
        ref = obj_or_ref if isinstance(obj_or_ref, ObjectRef) else ObjectRef.of(obj_or_ref)
        return await self.info(ref.api_version, ref.kind)

    async def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        path = info.object_path(namespace, name)
        return await self._request("GET", path, what=f"get {info.kind} {_nsname(namespace, name)}", allow_404=True)

    async def list(
        self,
        info: ResourceInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int = 5000,
    ) -> list[dict[str, Any]]:
        """All objects of one kind (in one namespace, or all namespaces when ``None``), following pages."""
        items, _version = await self.list_with_version(info, namespace, label_selector=label_selector, limit=limit)
        return items

    async def list_with_version(
        self,
        info: ResourceInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int = 5000,
    ) -> tuple[list[dict[str, Any]], str]:
        """``list`` plus the list's ``metadata.resourceVersion``: where a watch of the same set starts."""
        path = info.collection_path(namespace)
        params: dict[str, str] = {"limit": str(limit)}
        if label_selector:
            params["labelSelector"] = label_selector
        items: list[dict[str, Any]] = []
        while True:
            page = await self._request("GET", path, params=params, what=f"list {info.plural}")
            kind = info.kind
            for item in page.get("items") or []:
                # list items omit apiVersion/kind; put them back so every object is self-describing
                item.setdefault("apiVersion", info.api_version)
                item.setdefault("kind", kind)
                items.append(item)
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, meta.get("resourceVersion") or ""
            params["continue"] = token

    async def list_page(
        self,
        info: ResourceInfo,
        namespace: str | None = None,
        *,
        limit: int = 1,
        label_selector: str | None = None,
    ) -> dict[str, Any]:
        """One page of a list (at most ``limit`` items, no continuation followed): a cheap way to ask
        whether the caller may list a collection at all (``Forbidden`` when not)."""
        params: dict[str, str] = {"limit": str(limit)}
        if label_selector:
            params["labelSelector"] = label_selector
        page = await self._request("GET", info.collection_path(namespace), params=params, what=f"list {info.plural}")
        return page if isinstance(page, dict) else {}

    async def apply(
        self,
        info: ResourceInfo,
        obj: dict[str, Any],
        *,
        force: bool = False,
        dry_run: bool = False,
        field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        """Server-side apply (PATCH application/apply-patch+yaml) as ``field_manager``."""
        meta = obj.get("metadata") or {}
        path = info.object_path(meta.get("namespace"), meta.get("name"))
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        if dry_run:
            params["dryRun"] = "All"
        return await self._request(
            "PATCH",
            path,
            params=params,
            body=obj,
            content_type="application/apply-patch+yaml",
            what=f"apply {ObjectRef.of(obj)}",
        )

    async def patch(
        self,
        info: ResourceInfo,
        name: str,
        namespace: str | None,
        patch: dict[str, Any],
        *,
        subresource: str = "",
        patch_type: str = "application/merge-patch+json",
        field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        """A JSON merge (or other) patch, optionally of a subresource such as ``status``."""
        path = info.object_path(namespace, name, subresource)
        return await self._request(
            "PATCH",
            path,
            params={"fieldManager": field_manager},
            body=patch,
            content_type=patch_type,
            what=f"patch {info.kind} {_nsname(namespace, name)}",
        )

    async def create(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """POST to the collection. An object with ``generateName`` is retried only when the server
        certainly did not act on it: a repeated POST could create a second object. A named object
        is retried like any write: a repeat of a create that did happen fails AlreadyExists."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace")
        if info.namespaced:
            namespace = names.check_namespace(namespace, f"namespace of {ObjectRef.of(obj)}")
        return await self._request(
            "POST",
            info.collection_path(namespace),
            body=obj,
            what=f"create {ObjectRef.of(obj)}",
            repeatable=bool(meta.get("name")),
        )

    async def delete(
        self,
        info: ResourceInfo,
        name: str,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        propagation: str = "Background",
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> bool:
        """Delete one object; False when it was already gone.

        ``uid`` / ``resource_version`` become ``DeleteOptions.preconditions``: the server refuses
        (409 Conflict) when the object at that name is not the one that was verified.
        """
        params = {"propagationPolicy": propagation}
        if dry_run:
            params["dryRun"] = "All"
        body: dict[str, Any] | None = None
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions}
        path = info.object_path(namespace, name)
        found = await self._request(
            "DELETE",
            path,
            params=params,
            body=body,
            allow_404=True,
            what=f"delete {info.kind} {_nsname(namespace, name)}",
        )
        return found is not None

    async def replace(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole object; with ``metadata.resourceVersion`` set this is an optimistic-concurrency
        update (409 Conflict when the object changed since it was read)."""
        meta = obj.get("metadata") or {}
        return await self._request(
            "PUT",
            info.object_path(meta.get("namespace"), meta.get("name")),
            body=obj,
            what=f"update {ObjectRef.of(obj)}",
        )

    async def watch(
        self,
        info: ResourceInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield (event type, object) from one watch request until the server closes it.

        Event types are ADDED, MODIFIED, DELETED and BOOKMARK (whose object carries only
        ``metadata.resourceVersion``). An ERROR event is raised as its typed error: ``Gone``
        when the resourceVersion is too old and the caller must relist.
        """
        params = {"watch": "true", "timeoutSeconds": str(timeout_seconds), "allowWatchBookmarks": "true"}
        if label_selector:
            params["labelSelector"] = label_selector
        if resource_version:
            params["resourceVersion"] = resource_version
        path = info.collection_path(namespace)
        self.requests[("WATCH", False)] += 1
        what = f"watch {info.plural}"
        answered = False
        try:
            async with self._watch_http.stream(
                "GET",
                path,
                params=params,
                headers=self._headers(None),
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout, read=None),
            ) as response:
                answered = True
                self.responses[("GET", response.status_code)] += 1
                if response.status_code >= 400:
                    await response.aread()
                    raise _error(what, response)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = _decode(line)
                    kind, obj = event.get("type", ""), event.get("object") or {}
                    if kind == "ERROR":
                        code = int(obj.get("code") or 500)
                        raise error_for(
                            f"{what}: {code} {obj.get('reason', '')}: {obj.get('message', '')}",
                            code,
                            obj.get("reason") or "",
                            obj,
                        )
                    yield kind, obj
        except httpx.HTTPError as error:
            if not answered:
                self.responses[("GET", 0)] += 1
                raise Unreachable(
                    f"{what}: cannot reach the API server at {self.server}: {self._describe(error)}"
                ) from None
            raise Unreachable(f"{what}: connection to {self.server} broke: {error}") from None

    async def get_raw(self, path: str) -> Any:
        """GET a fixed API path (``/version``, discovery documents); None on 404."""
        return await self._get_json(names.check_raw_path(path))

    async def pod_log(self, name: str, namespace: str, container: str = "") -> str | None:
        """The log of one container of a Pod (``pods/log``, as text); None when the server answers 404
        (the Pod is gone, or the server does not serve ``pods/log``)."""
        path = names.join(
            "api", "v1", "namespaces", names.check_namespace(namespace), "pods", names.check_segment(name), "log"
        )
        what = f"read the log of Pod {namespace}/{name}"
        try:
            response = await self._http.get(
                path, params={"container": container} if container else None, headers=self._impersonation
            )
        except httpx.HTTPError as error:
            raise Unreachable(
                f"{what}: cannot reach the API server at {self.server}: {self._describe(error)}"
            ) from None
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _error(what, response)
        return response.text

    async def wait_for(self, what: str, check: Any, timeout: float, interval: float = 0.25) -> Any:
        """Poll ``check()`` (an async callable) until it returns a truthy value or the timeout passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = await check()
            if result:
                return result
            if loop.time() >= deadline:
                raise KubeError(f"timed out after {timeout:g}s waiting for {what}")
            await asyncio.sleep(interval)


def _nsname(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _error(what: str, response: httpx.Response) -> KubeError:
    status: dict[str, Any] = {}
    try:
        decoded = _decode(response.content)
        status = decoded if isinstance(decoded, dict) else {}
        message = status.get("message") or response.text
        reason = status.get("reason") or ""
    except (msgspec.DecodeError, AttributeError):
        message, reason = response.text.strip()[:500], ""
    text = f"{what}: {response.status_code} {reason}: {message}".replace(":  ", ": ")
    error = error_for(text, response.status_code, reason, status, _retry_after(response))
    if isinstance(error, FieldConflict):
        error.args = (text + " (another field manager owns these fields; apply with force to take them)",)
    return error


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def _header_value(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or any(unicodedata.category(c) == "Cc" for c in value):
        raise UnsafeName(
            f"refusing to send a request: {what} {value!r} must be a non-empty string without control characters"
        )
    return value


def service_account_user(namespace: str, name: str) -> tuple[str, list[str]]:
    """The user name and groups the API server gives ServiceAccount ``namespace/name``
    (what ``Kube.impersonate`` takes to act as that account)."""
    names.check_namespace(namespace, "ServiceAccount namespace")
    names.check_segment(name, "ServiceAccount name")
    return (
        f"system:serviceaccount:{namespace}:{name}",
        ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
    )
