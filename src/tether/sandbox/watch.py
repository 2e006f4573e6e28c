"""Streaming watches: ``?watch=1`` answers with one JSON event per line until the timeout."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tether.sandbox import errors, table
from tether.sandbox import request as req
from tether.sandbox.handlers import ResourceHandlers, _with_version
from tether.sandbox.request import RequestInfo
from tether.sandbox.resources import ResourceType
from tether.sandbox.store import encode

DEFAULT_TIMEOUT = 1800.0


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


async def serve(
    request: web.Request, info: RequestInfo, rt: ResourceType, handlers: ResourceHandlers, bookmark_interval: float
) -> web.StreamResponse:
    store = handlers.store
    query = request.query
    predicate = handlers.predicate(request, rt)
    if info.name:
        name = info.name
        base = predicate
        predicate = (
            (lambda o: o["metadata"]["name"] == name and base(o)) if base else (lambda o: o["metadata"]["name"] == name)
        )
    rv_param = query.get("resourceVersion", "")
    match = query.get("resourceVersionMatch", "")
    send_initial_param = query.get("sendInitialEvents")
    bookmarks = _flag(query.get("allowWatchBookmarks"))
    if rv_param and not rv_param.isdigit():
        raise errors.bad_request(f"invalid resource version: {rv_param!r}")
    send_initial = _flag(send_initial_param)
    if send_initial_param is not None:
        if match != "NotOlderThan":
            raise errors.invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                [
                    {
                        "reason": "FieldValueForbidden",
                        "field": "resourceVersionMatch",
                        "message": "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    }
                ],
            )
        if send_initial and not bookmarks:
            raise errors.invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                [
                    {
                        "reason": "FieldValueForbidden",
                        "field": "allowWatchBookmarks",
                        "message": "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                    }
                ],
            )
    elif match:
        raise errors.bad_request("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
    timeout = req.int_param(request, "timeoutSeconds")
    deadline = time.monotonic() + (timeout if timeout is not None and timeout > 0 else DEFAULT_TIMEOUT)
    as_table = req.wants_table(request)
    include = query.get("includeObject", "Metadata")
    namespace = info.namespace or None

    initial: list[dict[str, Any]] = []
    error: errors.ApiError | None = None
    if send_initial or (send_initial_param is None and rv_param in ("", "0")):
        initial, since = store.list(rt, namespace, predicate)
        sub = store.subscribe(rt.storage_key, namespace, since)
    else:
        since = int(rv_param) if rv_param else store.rv
        try:
            sub = store.subscribe(rt.storage_key, namespace, since)
        except errors.ApiError as expired:
            sub, error = None, expired

    response = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    headers_sent = False

    async def send(kind: str, obj: dict[str, Any]) -> None:
        nonlocal headers_sent
        if as_table and kind not in ("ERROR", "BOOKMARK"):
            obj = table.render(
                rt, [obj], int(obj["metadata"].get("resourceVersion", 0)), include, headers=not headers_sent
            )
            headers_sent = True
        await response.write(encode({"type": kind, "object": obj}).encode() + b"\n")

    def bookmark(rv: int, initial_end: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}

    try:
        if error is not None or sub is None:
            await send("ERROR", (error or errors.expired("watch expired")).status())
            return response
        for obj in initial:
            await send("ADDED", _with_version(rt, obj))
        if send_initial:
            await send("BOOKMARK", bookmark(since, initial_end=True))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = min(remaining, bookmark_interval) if bookmarks else remaining
            event = await sub.get(wait)
            if event is None:
                if sub.closed:
                    if sub.overflowed:
                        await send("ERROR", errors.expired("the watch fell too far behind; list again").status())
                    break
                if bookmarks and time.monotonic() < deadline:
                    await send("BOOKMARK", bookmark(store.rv))
                continue
            kind = event.type
            if predicate is not None:
                now_matches = kind != "DELETED" and predicate(event.object)
                was_matching = event.old is not None and predicate(event.old) if kind != "ADDED" else False
                if kind == "DELETED":
                    was_matching = predicate(event.old or event.object)
                    if not was_matching:
                        continue
                elif now_matches and not was_matching:
                    kind = "ADDED"
                elif was_matching and not now_matches:
                    kind = "DELETED"
                elif not now_matches:
                    continue
            served = _with_version(rt, event.object)
            if kind == event.type and served is event.object and not as_table:
                if event.line is None:
                    event.line = encode({"type": kind, "object": served}).encode() + b"\n"
                await response.write(event.line)
            else:
                await send(kind, served)
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away
    finally:
        if sub is not None:
            sub.close()
    return response
