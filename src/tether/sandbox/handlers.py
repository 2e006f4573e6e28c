"""REST verbs on resources: get, list, create, update, patch (incl. server-side apply), delete,
deletecollection and the /status and /scale subresources."""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from tether.sandbox import admission, errors, managed, selectors, table
from tether.sandbox import request as req
from tether.sandbox.request import RequestInfo
from tether.sandbox.resources import ResourceType
from tether.sandbox.store import Store, clone, encode

JSON = "application/json"
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def respond(body: Any, status: int = 200, warnings: list[str] | None = None, text: str | None = None) -> web.Response:
    response = web.Response(body=(text or encode(body)).encode(), status=status, content_type=JSON)
    for warning in warnings or ():
        response.headers.add("Warning", '299 - "' + warning.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return response


def _with_version(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """Objects are stored once per (group, plural); serve them in the requested version."""
    if obj.get("apiVersion") == rt.api_version and obj.get("kind") == rt.kind:
        return obj
    return {**obj, "apiVersion": rt.api_version, "kind": rt.kind}


def _check_identity(rt: ResourceType, info: RequestInfo, body: dict[str, Any]) -> dict[str, Any]:
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if api_version and api_version != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
    body["apiVersion"], body["kind"] = rt.api_version, rt.kind
    meta = body.setdefault("metadata", {})
    if rt.namespaced:
        if meta.get("namespace") and meta["namespace"] != info.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = info.namespace
    else:
        meta.pop("namespace", None)
    if info.name and meta.get("name") and meta["name"] != info.name:
        raise errors.bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({info.name})"
        )
    if info.name:
        meta["name"] = info.name
    return meta


class ResourceHandlers:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _require(self, rt: ResourceType, info: RequestInfo) -> dict[str, Any]:
        obj = self.store.get(rt, info.namespace, info.name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, info.name)
        return obj

    # -- reads ---------------------------------------------------------------------------------

    async def get(self, request: web.Request, info: RequestInfo, rt: ResourceType) -> web.Response:
        obj = _with_version(rt, self._require(rt, info))
        if info.subresource == "scale":
            return respond(to_scale(rt, obj))
        if req.wants_table(request):
            return respond(table.render(rt, [obj], self.store.rv, request.query.get("includeObject", "Metadata")))
        return respond(obj)

    def predicate(self, request: web.Request, rt: ResourceType) -> selectors.Predicate | None:
        labels = selectors.parse_label_selector(request.query.get("labelSelector", ""))
        fields = selectors.parse_field_selector(request.query.get("fieldSelector", ""), rt.kind)
        if labels and fields:
            return lambda obj: labels(obj) and fields(obj)
        return labels or fields

    async def list(self, request: web.Request, info: RequestInfo, rt: ResourceType) -> web.Response:
        query = request.query
        rv_param, match = query.get("resourceVersion", ""), query.get("resourceVersionMatch", "")
        if match and match not in ("Exact", "NotOlderThan"):
            raise errors.bad_request(f"resourceVersionMatch: Unsupported value: {match!r}")
        if match and not rv_param:
            raise errors.bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
        if rv_param and not rv_param.isdigit():
            raise errors.bad_request(f"invalid resource version: {rv_param!r}")
        if rv_param and int(rv_param) > self.store.rv:
            raise errors.ApiError(
                504,
                "Timeout",
                f"Too large resource version: {rv_param}, current: {self.store.rv}",
                details={
                    "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                    "retryAfterSeconds": 1,
                },
            )
        if match == "Exact" and int(rv_param) != self.store.rv:
            raise errors.expired(f"too old resource version: {rv_param} ({self.store.rv})")
        predicate = self.predicate(request, rt)
        token = query.get("continue", "")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, rv = (state["ns"], state["name"]), int(state["rv"])
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
            items = self.store.list_at(rt, info.namespace or None, rv)
            if predicate is not None:
                items = [o for o in items if predicate(o)]
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        else:
            items, rv = self.store.list(rt, info.namespace or None, predicate)
        limit = req.int_param(request, "limit")
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            state = {"rv": rv, "ns": last.get("namespace", ""), "name": last["name"]}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        items = [_with_version(rt, o) for o in items]
        if req.wants_table(request):
            rendered = table.render(rt, items, rv, query.get("includeObject", "Metadata"))
            rendered["metadata"].update(meta)
            return respond(rendered)
        return respond({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items})

    # -- writes --------------------------------------------------------------------------------

    async def create(self, request: web.Request, info: RequestInfo, rt: ResourceType) -> web.Response:
        if info.name:
            raise errors.method_not_allowed()
        body, duplicates = req.decode_object_checked(await req.read_body(request), request.content_type)
        dry_run, validation = req.dry_run(request), req.field_validation(request)
        manager = req.field_manager(request, required=False)
        warnings = req.duplicate_fields(rt.kind, rt.version, duplicates, validation)
        _check_identity(rt, info, body)
        if "status" in rt.subresources and rt.kind != "Namespace":
            body.pop("status", None)  # status is the controllers' to write, as upstream
        warnings += admission.admit(rt, body, validation, check_name=bool(body["metadata"].get("name")))
        body["metadata"].pop("managedFields", None)
        body = managed.record_update(rt, None, body, manager)
        created = self.store.create(rt, body, dry_run=dry_run)
        return respond(created, 201, warnings, self.store.encoded(created))

    async def update(self, request: web.Request, info: RequestInfo, rt: ResourceType) -> web.Response:
        body, duplicates = req.decode_object_checked(await req.read_body(request), request.content_type)
        dry_run, validation = req.dry_run(request), req.field_validation(request)
        manager = req.field_manager(request, required=False)
        extra = req.duplicate_fields(rt.kind, rt.version, duplicates, validation)
        live = self._require(rt, info)
        if info.subresource == "scale":
            return await self._update_scale(rt, live, body, manager, dry_run)
        meta = _check_identity(rt, info, body)
        if "managedFields" not in meta and "managedFields" in live["metadata"]:
            meta["managedFields"] = live["metadata"]["managedFields"]
        return self._write_update(rt, live, body, manager, info.subresource, dry_run, validation, warnings=extra)

    def _write_update(
        self,
        rt: ResourceType,
        live: dict[str, Any],
        new: dict[str, Any],
        manager: str,
        subresource: str,
        dry_run: bool,
        validation: str,
        *,
        creating: bool = False,
        apply: bool = False,
        warnings: list[str] | None = None,
    ) -> web.Response:
        new = self._restrict(rt, live, new, subresource)
        warnings = (warnings or []) + admission.admit(rt, new, validation)
        if not apply:
            new = managed.record_update(rt, live, new, manager, subresource)
        if creating:
            created = self.store.create(rt, new, dry_run=dry_run)
            return respond(created, 201, warnings, self.store.encoded(created))
        updated = _with_version(rt, self.store.update(rt, new, subresource=subresource, dry_run=dry_run))
        return respond(updated, 200, warnings, self.store.encoded(updated))

    def _restrict(self, rt: ResourceType, live: dict[str, Any] | None, new: dict[str, Any], sub: str) -> dict[str, Any]:
        """What a write may change: the main resource keeps the live status, /status only status."""
        if "status" not in rt.subresources or live is None:
            return new
        if sub == "status":
            kept = {k: v for k, v in live.items() if k != "status"}
            kept["metadata"] = {**live["metadata"], "managedFields": new["metadata"].get("managedFields", [])}
            if not kept["metadata"]["managedFields"]:
                kept["metadata"].pop("managedFields")
            if "resourceVersion" in new["metadata"]:
                kept["metadata"]["resourceVersion"] = new["metadata"]["resourceVersion"]
            if new.get("status") is not None:
                kept["status"] = new["status"]
            return kept
        if "status" in live:
            new["status"] = live["status"]
        else:
            new.pop("status", None)
        return new

    async def patch(self, request: web.Request, info: RequestInfo, rt: ResourceType) -> web.Response:
        content_type = request.content_type
        if content_type not in PATCH_TYPES or (rt.crd and content_type == "application/strategic-merge-patch+json"):
            accepted = [t for t in PATCH_TYPES if not (rt.crd and "strategic" in t)]
            raise errors.unsupported_media_type(content_type, accepted)
        body = req.decode(await req.read_body(request), content_type)
        dry_run, validation = req.dry_run(request), req.field_validation(request)
        is_apply = content_type == "application/apply-patch+yaml"
        manager = req.field_manager(request, required=is_apply)
        live = self.store.get(rt, info.namespace, info.name)
        if info.subresource == "scale":
            if live is None:
                raise errors.not_found(rt.plural, rt.group, info.name)
            scale = managed.patch(rt, to_scale(rt, live), body, content_type) if not is_apply else body
            return await self._update_scale(rt, live, scale, manager, dry_run)
        if is_apply:
            return self._apply(request, info, rt, live, body, manager, dry_run, validation)
        if live is None:
            raise errors.not_found(rt.plural, rt.group, info.name)
        patched = clone(managed.patch(rt, _with_version(rt, live), body, content_type))
        if not isinstance(patched, dict):
            raise errors.ApiError(422, "Invalid", "the patch did not produce an object")
        _check_identity(rt, info, patched)
        return self._write_update(rt, live, patched, manager, info.subresource, dry_run, validation)

    def _apply(
        self,
        request: web.Request,
        info: RequestInfo,
        rt: ResourceType,
        live: dict[str, Any] | None,
        body: Any,
        manager: str,
        dry_run: bool,
        validation: str,
    ) -> web.Response:
        if not isinstance(body, dict):
            raise errors.bad_request("couldn't get version/kind; the apply configuration is not an object")
        if not body.get("apiVersion") or not body.get("kind"):
            raise errors.bad_request("apiVersion and kind must be set in an apply configuration")
        if not isinstance(body.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        force = request.query.get("force", "false").lower() in ("true", "1")
        _check_identity(rt, info, body)
        if "status" in rt.subresources:
            if info.subresource == "status":
                meta = body["metadata"]
                body = {
                    "apiVersion": body["apiVersion"],
                    "kind": body["kind"],
                    "metadata": {k: meta[k] for k in ("name", "namespace") if k in meta},
                    **({"status": body["status"]} if "status" in body else {}),
                }
            else:
                body.pop("status", None)
        if live is None:
            if info.subresource:
                raise errors.not_found(rt.plural, rt.group, info.name)
            if rt.kind == "Namespace" and not rt.crd:
                body.pop("status", None)
            merged = managed.apply(rt, None, body, manager, bool(force))  # a new object: no copy needed
            return self._write_update(rt, None, merged, manager, "", dry_run, validation, creating=True, apply=True)
        merged = managed.apply(rt, _with_version(rt, live), body, manager, bool(force), info.subresource)
        return self._write_update(rt, live, merged, manager, info.subresource, dry_run, validation, apply=True)

    async def _update_scale(
        self, rt: ResourceType, live: dict[str, Any], scale: Any, manager: str, dry_run: bool
    ) -> web.Response:
        if not isinstance(scale, dict) or not isinstance(scale.get("spec", {}), dict):
            raise errors.bad_request("the body of a scale update must be a Scale object")
        replicas = scale.get("spec", {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "Scale",
                "autoscaling",
                live["metadata"]["name"],
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "spec.replicas",
                        "message": f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                    }
                ],
            )
        expected = (scale.get("metadata") or {}).get("resourceVersion")
        new = clone(live)
        path = (rt.scale or {}).get("specReplicasPath", ".spec.replicas").lstrip(".").split(".")
        target = new
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = replicas
        if expected:
            new["metadata"]["resourceVersion"] = expected
        new = managed.record_update(rt, live, new, manager, "scale")
        updated = self.store.update(rt, new, dry_run=dry_run)
        return respond(to_scale(rt, updated))

    async def delete(self, request: web.Request, info: RequestInfo, rt: ResourceType) -> web.Response:
        options = await self._delete_options(request)
        dry_run = req.dry_run(request) or "All" in (options.get("dryRun") or [])
        obj, removed = self.store.delete(
            rt,
            info.namespace,
            info.name,
            preconditions=options.get("preconditions"),
            propagation=options.get("propagationPolicy") or request.query.get("propagationPolicy"),
            dry_run=dry_run,
        )
        if rt.kind == "Namespace" and not rt.crd:
            # upstream answers with the namespace itself: it finalizes asynchronously
            return respond(obj if not removed else {**obj, "status": {**obj.get("status", {}), "phase": "Terminating"}})
        if removed:
            details: dict[str, Any] = {"name": info.name, "kind": rt.plural, "uid": obj["metadata"].get("uid")}
            if rt.group:
                details["group"] = rt.group
            return respond(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
            )
        return respond(_with_version(rt, obj), 202)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        data = await req.read_body(request)
        options: dict[str, Any] = {}
        if data.strip():
            options = req.decode_object(data, request.content_type)
        policy = options.get("propagationPolicy") or request.query.get("propagationPolicy")
        if policy and policy not in ("Orphan", "Background", "Foreground"):
            raise errors.bad_request(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                '"Foreground", "Background", "Orphan"'
            )
        if options.get("preconditions") is not None and not isinstance(options["preconditions"], dict):
            raise errors.bad_request("preconditions must be an object")
        return options

    async def delete_collection(self, request: web.Request, info: RequestInfo, rt: ResourceType) -> web.Response:
        options = await self._delete_options(request)
        dry_run = req.dry_run(request) or "All" in (options.get("dryRun") or [])
        items, _ = self.store.list(rt, info.namespace or None, self.predicate(request, rt))
        deleted = []
        for obj in list(items):
            meta = obj["metadata"]
            try:
                gone, _ = self.store.delete(
                    rt,
                    meta.get("namespace", ""),
                    meta["name"],
                    dry_run=dry_run,
                    propagation=options.get("propagationPolicy"),
                )
            except errors.ApiError as error:
                if error.code == 404:
                    continue
                raise
            deleted.append(_with_version(rt, gone))
        return respond(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": deleted,
            }
        )


def to_scale(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale view of a scalable object."""
    paths = rt.scale or {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}

    def at(path: str | None) -> Any:
        current: Any = obj
        for part in (path or "").lstrip(".").split("."):
            current = current.get(part) if isinstance(current, dict) else None
        return current

    meta = obj["metadata"]
    status: dict[str, Any] = {"replicas": at(paths.get("statusReplicasPath")) or 0}
    if rt.crd:
        if paths.get("labelSelectorPath") and at(paths["labelSelectorPath"]):
            status["selector"] = at(paths["labelSelectorPath"])
    else:
        selector = (obj.get("spec") or {}).get("selector") or {}
        labels = selector.get("matchLabels") or {}
        if labels:
            status["selector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": {"replicas": at(paths.get("specReplicasPath")) or 0},
        "status": status,
    }
