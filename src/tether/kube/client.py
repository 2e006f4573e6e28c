"""An async client for the Kubernetes API over plain dict objects.

Connection, kubeconfig handling and authentication (tokens, client certificates, exec
plugins, CA bundles) come from ``lightkube``; requests are made on its configured HTTP
client with the object bodies kept as plain ``dict``. lightkube's generic-resource classes
share one process-wide registry that hands back typed models for built-in kinds, and typed
models drop fields they do not know; the engine must compare and apply objects byte for
byte, so it stays on dicts. JSON is decoded with msgspec (a lightkube dependency) because
plans list thousands of objects.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import msgspec
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ConfigError

from tether.errors import KubeError
from tether.kube.discovery import Discovery, ResourceInfo
from tether.kube.errors import FieldConflict, Unreachable, error_for
from tether.model import ObjectRef

FIELD_MANAGER = "tether"
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def _load_config(kubeconfig: str | None, context: str | None) -> Any:
    try:
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        return config.get(context_name=context) if context else config.get()
    except (ConfigError, OSError, KeyError) as error:
        where = kubeconfig or "the default kubeconfig"
        raise KubeError(f"cannot load {where}{f' context {context!r}' if context else ''}: {error}") from None


class Kube:
    """One connection to one cluster. Use ``await Kube.connect(...)`` and ``await kube.close()``."""

    def __init__(self, http: httpx.AsyncClient, namespace: str, server: str) -> None:
        self._http = http
        self.namespace = namespace
        self.server = server
        self.discovery = Discovery(self._get_json)
        #: requests made, by (HTTP method, dry-run) — the bench and the CLI summary report it
        self.requests: Counter[tuple[str, bool]] = Counter()

    @classmethod
    async def connect(
        cls, kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None,
        timeout: float = 30.0,
    ) -> Kube:
        config = _load_config(kubeconfig, context)
        params = ConnectionParams(timeout=httpx.Timeout(timeout))
        try:
            # lightkube works out server, TLS and auth; keep-alive pool sized for bounded-concurrency apply
            http = httpx.AsyncClient(**params.httpx_params(config),
                                     limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        except (ConfigError, AssertionError, OSError) as error:
            raise KubeError(f"cannot configure a connection to {config.cluster.server}: {error}") from None
        return cls(http, namespace or config.namespace or "default", config.cluster.server)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ raw requests

    async def _request(
        self, method: str, path: str, *, what: str, params: dict[str, str] | None = None,
        body: Any = None, content_type: str = "application/json", allow_404: bool = False,
    ) -> Any:
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            content = _encode(body)
            headers["Content-Type"] = content_type
        dry = bool(params and params.get("dryRun"))
        self.requests[(method, dry)] += 1
        try:
            response = await self._http.request(method, path, params=params, content=content, headers=headers)
        except httpx.HTTPError as error:
            raise Unreachable(f"{what}: cannot reach the API server at {self.server}: {error}") from None
        if response.status_code == 404 and allow_404:
            return None
        if response.status_code >= 400:
            raise _error(what, response)
        if not response.content:
            return None
        return _decode(response.content)

    async def _get_json(self, path: str) -> Any:
        return await self._request("GET", path, what=f"GET {path}", allow_404=True)

    # ------------------------------------------------------------ typed helpers

    async def info(self, api_version: str, kind: str, *, refresh: bool = False) -> ResourceInfo:
        return await self.discovery.resolve(api_version, kind, refresh=refresh)

    async def info_for(self, obj_or_ref: dict[str, Any] | ObjectRef) -> ResourceInfo:
        ref = obj_or_ref if isinstance(obj_or_ref, ObjectRef) else ObjectRef.of(obj_or_ref)
        return await self.info(ref.api_version, ref.kind)

    async def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        path = info.path(namespace if info.namespaced else None, name)
        return await self._request("GET", path, what=f"get {info.kind} {_nsname(namespace, name)}", allow_404=True)

    async def list(
        self, info: ResourceInfo, namespace: str | None = None, *, label_selector: str | None = None,
        limit: int = 5000,
    ) -> list[dict[str, Any]]:
        """All objects of one kind (in one namespace, or all namespaces when ``None``), following pages."""
        items, _version = await self.list_with_version(info, namespace, label_selector=label_selector, limit=limit)
        return items

    async def list_with_version(
        self, info: ResourceInfo, namespace: str | None = None, *, label_selector: str | None = None,
        limit: int = 5000,
    ) -> tuple[list[dict[str, Any]], str]:
        """``list`` plus the list's ``metadata.resourceVersion``: where a watch of the same set starts."""
        path = info.path(namespace if info.namespaced else None)
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

    async def apply(
        self, info: ResourceInfo, obj: dict[str, Any], *, force: bool = False, dry_run: bool = False,
        field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        """Server-side apply (PATCH application/apply-patch+yaml) as ``field_manager``."""
        meta = obj.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace") if info.namespaced else None
        if info.namespaced and not namespace:
            raise KubeError(f"{ObjectRef.of(obj)}: namespaced object without a namespace")
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        if dry_run:
            params["dryRun"] = "All"
        return await self._request(
            "PATCH", info.path(namespace, name), params=params, body=obj,
            content_type="application/apply-patch+yaml", what=f"apply {ObjectRef.of(obj)}",
        )

    async def patch(
        self, info: ResourceInfo, name: str, namespace: str | None, patch: dict[str, Any], *,
        subresource: str = "", patch_type: str = "application/merge-patch+json", field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        """A JSON merge (or other) patch, optionally of a subresource such as ``status``."""
        path = info.path(namespace if info.namespaced else None, name) + (f"/{subresource}" if subresource else "")
        return await self._request("PATCH", path, params={"fieldManager": field_manager}, body=patch,
                                   content_type=patch_type, what=f"patch {info.kind} {_nsname(namespace, name)}")

    async def create(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = (obj.get("metadata") or {}).get("namespace") if info.namespaced else None
        return await self._request("POST", info.path(namespace), body=obj, what=f"create {ObjectRef.of(obj)}")

    async def delete(
        self, info: ResourceInfo, name: str, namespace: str | None = None, *, dry_run: bool = False,
        propagation: str = "Background", uid: str | None = None, resource_version: str | None = None,
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
        path = info.path(namespace if info.namespaced else None, name)
        found = await self._request("DELETE", path, params=params, body=body, allow_404=True,
                                    what=f"delete {info.kind} {_nsname(namespace, name)}")
        return found is not None

    async def replace(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole object; with ``metadata.resourceVersion`` set this is an optimistic-concurrency
        update (409 Conflict when the object changed since it was read)."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if info.namespaced else None
        return await self._request("PUT", info.path(namespace, meta.get("name")), body=obj,
                                   what=f"update {ObjectRef.of(obj)}")

    async def watch(
        self, info: ResourceInfo, namespace: str | None = None, *, label_selector: str | None = None,
        resource_version: str | None = None, timeout_seconds: int = 300,
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
        self.requests[("WATCH", False)] += 1
        path = info.path(namespace if info.namespaced else None)
        what = f"watch {info.plural}"
        try:
            async with self._http.stream("GET", path, params=params,
                                         timeout=httpx.Timeout(30, read=None)) as response:
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
                        raise error_for(f"{what}: {code} {obj.get('reason', '')}: {obj.get('message', '')}", code,
                                        obj.get("reason") or "", obj)
                    yield kind, obj
        except httpx.HTTPError as error:
            raise Unreachable(f"{what}: connection to {self.server} broke: {error}") from None

    async def get_raw(self, path: str) -> Any:
        """GET any API path (``/version``, discovery documents); None on 404."""
        return await self._get_json(path)

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


def quote_name(name: str) -> str:
    return quote(name, safe="")
