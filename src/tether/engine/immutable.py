"""Changes the API server refuses because a field is immutable, and what allows recreating the object."""

from __future__ import annotations

from typing import Any

from tether.kube import Invalid

RECREATE_HINT = (
    'tether.dev/recreate: "true" (or argocd.argoproj.io/sync-options: Replace=true, '
    "kustomize.toolkit.fluxcd.io/force: enabled)"
)


def is_immutable_error(error: Invalid) -> bool:
    text = str(error)
    return (
        "field is immutable" in text
        or "Forbidden: updates to statefulset spec" in text
        or "spec is immutable after creation" in text
    )


def immutable_fields(error: Invalid) -> list[str]:
    """The field paths a 422 names (its causes), in order; empty when it names none."""
    causes = ((getattr(error, "status", None) or {}).get("details") or {}).get("causes") or []
    fields = [str(c["field"]) for c in causes if isinstance(c, dict) and c.get("field")]
    return list(dict.fromkeys(fields))


def as_recreated(live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """What the diff shows for a refused change: the live object with every desired value laid over
    it (maps merged, lists of equal length merged item by item), so the fields the server fills in
    are not shown as removed. An approximation: a recreate gets fresh defaults and generated values."""

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{key: merge(base.get(key), value) for key, value in over.items()}}
        if isinstance(base, list) and isinstance(over, list) and len(base) == len(over):
            return [merge(b, o) for b, o in zip(base, over, strict=True)]
        return over

    return merge({k: v for k, v in live.items() if k != "status"}, desired)


__all__ = ["RECREATE_HINT", "as_recreated", "immutable_fields", "is_immutable_error"]
