"""Drift: which fields of a live object differ from what Git declares, and who changed them.

Pure functions over plain dicts. Paths are the object's own keys (``.spec.replicas``); lists
are compared as a whole (``.spec.template.spec.containers``), which is what a person reads
first. The manager is taken from ``metadata.managedFields``: the one (other than tether) whose
field set covers the changed path, the most recent first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: at most this many fields are listed per object (status stays small at any drift)
MAX_FIELDS = 10
_IGNORED_TOP = frozenset({"status"})
_IGNORED_META = frozenset({"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"})


@dataclass(frozen=True)
class Drift:
    object: str  # "Deployment demo/web"
    fields: tuple[str, ...]
    manager: str  # "" when no other manager claims the fields (e.g. the object was deleted)
    operation: str = ""
    subresource: str = ""
    time: str = ""

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"object": self.object, "fields": list(self.fields), "manager": self.manager}
        if self.time:
            out["time"] = self.time
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def describe(self) -> str:
        who = (
            f" by {self.manager}" + (f" (subresource {self.subresource})" if self.subresource else "")
            if self.manager
            else ""
        )
        if not self.fields:
            return f"{self.object}: deleted{who}"
        return f"{self.object}: {', '.join(self.fields)} changed{who}"


def changed_paths(desired: Any, live: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths where ``desired`` (what would be after apply) and ``live`` differ."""
    if isinstance(desired, dict) and isinstance(live, dict):
        paths: list[tuple[str, ...]] = []
        for key in sorted(set(desired) | set(live)):
            if not prefix and key in _IGNORED_TOP:
                continue
            if prefix == ("metadata",) and key in _IGNORED_META:
                continue
            mine, theirs = desired.get(key), live.get(key)
            if not prefix and key == "metadata":  # bookkeeping only on one side is no difference
                mine, theirs = mine or {}, theirs or {}
            if mine != theirs:
                paths.extend(changed_paths(mine, theirs, (*prefix, key)))
        return paths
    return [prefix] if desired != live else []


def _covers(fields: Any, path: tuple[str, ...]) -> bool:
    node = fields
    for key in path:
        if not isinstance(node, dict):
            return False
        child = node.get(f"f:{key}")
        if child is None:
            return False
        node = child
    return True


def find_manager(live: dict[str, Any], path: tuple[str, ...], ours: set[str]) -> dict[str, Any] | None:
    entries = [
        e
        for e in (live.get("metadata") or {}).get("managedFields") or []
        if isinstance(e, dict) and e.get("manager") not in ours
    ]
    entries.sort(key=lambda e: e.get("time") or "", reverse=True)
    for entry in entries:
        if _covers(entry.get("fieldsV1") or {}, path):
            return entry
    return None


def detect(label: str, after: dict[str, Any] | None, live: dict[str, Any] | None, ours: set[str]) -> Drift:
    """The drift of one object: ``after`` is what applying Git would make of it, ``live`` what is there."""
    if live is None:
        return Drift(label, (), "")
    paths = changed_paths(after or {}, live)
    fields = tuple("." + ".".join(p) for p in paths[:MAX_FIELDS])
    manager: dict[str, Any] | None = None
    for path in paths:
        manager = find_manager(live, path, ours)
        if manager is not None:
            break
    if manager is None:
        return Drift(label, fields, "")
    return Drift(
        label,
        fields,
        str(manager.get("manager") or ""),
        str(manager.get("operation") or ""),
        str(manager.get("subresource") or ""),
        str(manager.get("time") or ""),
    )
