"""Parsing of one API request: which resource and verb it addresses, its body and its options."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web

from tether.sandbox import errors, protobuf
from tether.sandbox.resources import Registry, ResourceType

MAX_BODY = 3 * 1024 * 1024  # upstream's request size limit

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class UserInfo:
    name: str
    groups: list[str] = field(default_factory=list)


@dataclass
class RequestInfo:
    """What a request is about, as an authorizer or a fault injector sees it."""

    verb: str  # get list watch create update patch delete deletecollection; HTTP method for non-resource paths
    path: str
    is_resource: bool = False
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    rt: ResourceType | None = None
    user: UserInfo | None = None


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "")


def parse(request: web.Request, registry: Registry) -> RequestInfo:
    """Map a path like /apis/apps/v1/namespaces/ns/deployments/web/status to a RequestInfo."""
    path = request.path
    parts = [p for p in path.split("/") if p]
    method = request.method
    info = RequestInfo(verb=method.lower(), path=path)
    if not parts or parts[0] not in ("api", "apis"):
        return info
    if parts[0] == "api":
        if len(parts) < 2:
            return info
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return info
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return info
    watch_prefix = rest[0] == "watch"
    if watch_prefix:
        rest = rest[1:]
    namespace = ""
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and not (group == "" and len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return info
    info.is_resource = True
    info.group, info.version, info.namespace = group, version, namespace
    info.resource = rest[0]
    info.name = rest[1] if len(rest) > 1 else ""
    info.subresource = rest[2] if len(rest) > 2 else ""
    info.rt = registry.get(group, version, info.resource)
    query = request.query
    if method == "GET":
        if info.name:
            info.verb = "watch" if watch_prefix or _flag(query.get("watch")) else "get"
        else:
            info.verb = "watch" if watch_prefix or _flag(query.get("watch")) else "list"
    elif method == "POST":
        info.verb = "create"
    elif method == "PUT":
        info.verb = "update"
    elif method == "PATCH":
        info.verb = "patch"
    elif method == "DELETE":
        info.verb = "delete" if info.name else "deletecollection"
    return info


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.ApiError(413, "RequestEntityTooLarge", "the request body is too large")
    try:
        data = await request.read()  # cached: request hooks may have read it already
    except web.HTTPRequestEntityTooLarge:
        raise errors.ApiError(413, "RequestEntityTooLarge", "the request body is too large") from None
    if len(data) > MAX_BODY:
        raise errors.ApiError(413, "RequestEntityTooLarge", "the request body is too large")
    return data


def decode(data: bytes, content_type: str) -> Any:
    """JSON (or YAML for apply patches and YAML bodies); malformed input is a 400 Status."""
    return decode_checked(data, content_type)[0]


def decode_checked(data: bytes, content_type: str) -> tuple[Any, list[str]]:
    """``decode`` plus the keys a JSON body repeats (fieldValidation reports them)."""
    if content_type == "application/vnd.kubernetes.protobuf":
        try:
            return protobuf.decode(data), []
        except (protobuf.Unsupported, KeyError, ValueError, TypeError):
            pass  # a kind or field the sandbox cannot read: refuse rather than drop data
    if "protobuf" in content_type or "cbor" in content_type:
        raise errors.unsupported_media_type(content_type, ["application/json", "application/yaml"])
    if not data.strip():
        raise errors.bad_request("the body of the request is empty")
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    try:
        return json.loads(data, object_pairs_hook=pairs), duplicates
    except (ValueError, RecursionError) as error:
        if "yaml" not in content_type:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {error}") from None
    try:
        return yaml.load(data, Loader=_YAML_LOADER), []
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        raise errors.bad_request(f"error decoding YAML: {error}") from None


def decode_object(data: bytes, content_type: str) -> dict[str, Any]:
    return decode_object_checked(data, content_type)[0]


def decode_object_checked(data: bytes, content_type: str) -> tuple[dict[str, Any], list[str]]:
    body, duplicates = decode_checked(data, content_type)
    if not isinstance(body, dict):
        raise errors.bad_request(
            f"couldn't get version/kind; json parse error: cannot unmarshal {type(body).__name__} into an object"
        )
    meta = body.get("metadata")
    if meta is None:
        body["metadata"] = {}
    elif not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    return body, duplicates


def duplicate_fields(kind: str, version: str, duplicates: list[str], validation: str) -> list[str]:
    """Warnings for repeated JSON keys; under Strict a 400 as upstream."""
    if not duplicates or validation == "Ignore":
        return []
    fields = ", ".join(f'duplicate field "{key}"' for key in duplicates)
    if validation == "Strict":
        raise errors.bad_request(
            f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: {fields}'
        )
    return [f'duplicate field "{key}"' for key in duplicates]


def dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise errors.bad_request(f'Invalid dryRun value: "{value}": valid values are: "All"')
    return bool(values)


def field_validation(request: web.Request) -> str:
    value = request.query.get("fieldValidation", "Warn") or "Warn"
    if value not in ("Ignore", "Warn", "Strict"):
        raise errors.bad_request(f"fieldValidation parameter unsupported: {value}; must be Ignore, Warn or Strict")
    return value


def field_manager(request: web.Request, *, required: bool) -> str:
    manager = request.query.get("fieldManager", "")
    if manager:
        if len(manager) > 128:
            raise errors.bad_request("fieldManager: Too long: may not be more than 128 bytes")
        return manager
    if required:
        raise errors.bad_request("PATCH /apply requires fieldManager to be set")
    # upstream's default: the User-Agent up to the first "/"
    agent = request.headers.get("User-Agent", "unknown")
    return agent.split("/", 1)[0][:128] or "unknown"


def int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f"invalid value for {name}: {raw!r} is not an integer") from None


def wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept
