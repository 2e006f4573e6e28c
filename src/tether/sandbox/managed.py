"""The server's side of field management: type information per resource type and the calls
into the merge library (``tether.sandbox.merge``), with its errors turned into Status objects."""

from __future__ import annotations

from typing import Any

from tether.sandbox import errors
from tether.sandbox.resources import ResourceType
from tether.sandbox.store import now


def _merge():  # imported lazily: the merge library is a separate, pure package
    from tether.sandbox import merge

    return merge


def type_info(rt: ResourceType) -> Any:
    info = rt.cache.get("type_info")
    if info is None:
        merge = _merge()
        if rt.crd:
            info = merge.crd_type(rt.schema)
        else:
            info = merge.builtin_type(rt.group, rt.version, rt.kind)
            if info is None:
                info = merge.crd_type(None)
        rt.cache["type_info"] = info
    return info


def record_update(
    rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any], manager: str, subresource: str = ""
) -> dict[str, Any]:
    return _merge().record_update(
        old,
        new,
        manager=manager,
        api_version=rt.api_version,
        type_info=type_info(rt),
        now=now(),
        subresource=subresource,
    )


def apply(
    rt: ResourceType,
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    force: bool,
    subresource: str = "",
) -> dict[str, Any]:
    merge = _merge()
    try:
        return merge.apply_patch(
            live,
            applied,
            manager=manager,
            api_version=rt.api_version,
            force=force,
            type_info=type_info(rt),
            now=now(),
            subresource=subresource,
        )
    except merge.ApplyConflictError as error:
        causes = [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{c.manager}" using {c.api_version}',
                "field": c.field,
            }
            for c in error.conflicts
        ]
        name = (applied.get("metadata") or {}).get("name", "")
        details: dict[str, Any] = {"name": name, "kind": rt.plural, "causes": causes}
        if rt.group:
            details["group"] = rt.group
        raise errors.ApiError(409, "Conflict", str(error), details=details) from None
    except merge.PatchError as error:
        raise errors.ApiError(422, "Invalid", f"error applying patch: {error}") from None


def patch(rt: ResourceType, live: dict[str, Any], body: Any, content_type: str) -> dict[str, Any]:
    """A JSON / merge / strategic merge patch of ``live``; a malformed patch is a Status."""
    merge = _merge()
    try:
        if content_type == "application/json-patch+json":
            if not isinstance(body, list):
                raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            return merge.json_patch(live, body)
        if not isinstance(body, dict):
            raise errors.bad_request("json: cannot unmarshal a non-object patch")
        if content_type == "application/merge-patch+json":
            return merge.merge_patch(live, body)
        return merge.strategic_merge_patch(live, body, type_info(rt))
    except merge.PatchError as error:
        raise errors.ApiError(422, "Invalid", str(error)) from None
