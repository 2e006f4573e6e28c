"""``metadata.managedFields`` bookkeeping and the ownership rules of Update operations.

Entries are identified as upstream does: manager, operation and subresource, plus the
apiVersion for Update entries only (an Apply entry follows the applier's latest apiVersion).
Entries whose field set becomes empty are dropped; the list is ordered Apply before Update,
then by time, manager, apiVersion and subresource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.sandbox.merge.fieldpath import (
    MEMBER,
    FieldSet,
    created_member,
    difference,
    from_fields_v1,
    item_key,
    object_fields,
    to_fields_v1,
    union,
    without_paths,
)
from tether.sandbox.merge.patch import PatchError, copy_json, json_equal
from tether.sandbox.merge.reconcile import reconcile_with_schema
from tether.sandbox.merge.typeinfo import DEDUCED, LIST, MAP, STRUCT, Node, TypeInfo

# Identity and server-maintained fields upstream never records in managedFields.
_IGNORED: tuple[tuple[str, ...], ...] = (
    ("f:apiVersion",),
    ("f:kind",),
    *(
        ("f:metadata", "f:" + name)
        for name in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
            "clusterName",
        )
    ),
)


def ignored_paths(reset_fields: tuple[tuple[str, ...], ...] = ()) -> tuple[tuple[str, ...], ...]:
    """Field-set paths never tracked: identity metadata plus caller-given reset fields."""
    if not reset_fields:
        return _IGNORED
    return _IGNORED + tuple(tuple("f:" + part for part in path) for path in reset_fields)


def strip_ignored(fields: FieldSet, ignored: tuple[tuple[str, ...], ...]) -> FieldSet:
    out = without_paths(fields, ignored)
    meta = out.get("f:metadata")
    if meta is not None and not meta:
        out = dict(out)
        del out["f:metadata"]
    return out


@dataclass
class Entry:
    """One managedFields entry with its field set decoded."""

    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str | None
    fields: FieldSet
    #: the stored FieldsV1 object while ``fields`` is unchanged (saves re-encoding)
    raw: dict | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return entry_key(self.manager, self.operation, self.api_version, self.subresource)


def reconcile_entries(entries: list[Entry], type_info: TypeInfo) -> None:
    """Every entry's set as the current schema sees it (see ``reconcile``)."""
    for entry in entries:
        fields = reconcile_with_schema(entry.fields, type_info.root)
        if fields is not entry.fields:
            entry.fields, entry.raw = fields, None


def entry_key(manager: str, operation: str, api_version: str, subresource: str) -> tuple[str, str, str, str]:
    return (manager, operation, "" if operation == "Apply" else api_version, subresource)


def decode(obj: dict | None) -> list[Entry]:
    """The entries of an object's ``metadata.managedFields`` (malformed entries are rejected)."""
    if not obj:
        return []
    raw = (obj.get("metadata") or {}).get("managedFields") or []
    if not isinstance(raw, list):
        raise PatchError("metadata.managedFields must be a list")
    entries = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise PatchError(f"metadata.managedFields[{index}] must be an object")
        fields_type = item.get("fieldsType", "FieldsV1")
        if fields_type != "FieldsV1":
            raise PatchError(f"metadata.managedFields[{index}].fieldsType must be FieldsV1, got {fields_type!r}")
        fields_v1 = item.get("fieldsV1") or {}
        entries.append(
            Entry(
                manager=str(item.get("manager", "")),
                operation=str(item.get("operation", "Update")),
                api_version=str(item.get("apiVersion", "")),
                subresource=str(item.get("subresource", "")),
                time=item.get("time"),
                fields=from_fields_v1(fields_v1),
                raw=fields_v1,
            )
        )
    return entries


MAX_UPDATE_ENTRIES = 10


def cap_updates(entries: list[Entry]) -> list[Entry]:
    """Merges the oldest Update entries into per-apiVersion ``ancient-changes`` entries once
    there are more than ten, as upstream does to bound managedFields."""
    updaters = sorted((e for e in entries if e.operation == "Update" and e.fields), key=lambda e: e.time or "")
    excess = len(updaters) - MAX_UPDATE_ENTRIES
    if excess <= 0:
        return entries
    gone: set[int] = set()
    buckets: dict[str, Entry] = {
        e.api_version: e for e in entries if e.operation == "Update" and e.manager == "ancient-changes"
    }
    first_of_version: dict[str, Entry] = {}
    for entry in updaters:
        if excess <= 0:
            break
        version = entry.api_version
        bucket = buckets.get(version)
        if bucket is None and version not in first_of_version:
            first_of_version[version] = entry
            continue
        if bucket is None:
            first = first_of_version[version]
            bucket = Entry("ancient-changes", "Update", version, "", first.time, first.fields)
            buckets[version] = bucket
            gone.add(id(first))
            entries = [*entries, bucket]
        if bucket is entry:
            continue
        bucket.fields, bucket.raw, bucket.time = union(bucket.fields, entry.fields), None, entry.time
        gone.add(id(entry))
        excess -= 1
    return [e for e in entries if id(e) not in gone]


def encode(entries: list[Entry]) -> list[dict]:
    """managedFields in upstream order, empty entries dropped."""
    kept = [e for e in cap_updates(entries) if e.fields]
    kept.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    out = []
    for entry in kept:
        item: dict[str, Any] = {"manager": entry.manager, "operation": entry.operation}
        if entry.api_version:
            item["apiVersion"] = entry.api_version
        if entry.time:
            item["time"] = entry.time
        item["fieldsType"] = "FieldsV1"
        item["fieldsV1"] = entry.raw if entry.raw is not None else to_fields_v1(entry.fields)
        if entry.subresource:
            item["subresource"] = entry.subresource
        out.append(item)
    return out


def with_managed_fields(obj: dict, managed: list[dict]) -> dict:
    """A shallow copy of ``obj`` whose metadata carries ``managed`` (absent when empty)."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    if managed:
        meta["managedFields"] = managed
    else:
        meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


# ---------------------------------------------------------------------------------------------
# comparing two versions of an object


def compare(old: Any, new: Any, node: Node) -> tuple[FieldSet, FieldSet]:
    """(added or modified, removed) field sets between two values of the same type."""
    changed: FieldSet = {}
    removed: FieldSet = {}
    _compare(old, new, node, changed, removed)
    return changed, removed


def _is_granular_map(value: Any, node: Node) -> bool:
    return isinstance(value, dict) and not node.atomic and node.kind in (STRUCT, MAP, DEDUCED)


def _is_assoc_list(value: Any, node: Node) -> bool:
    return isinstance(value, list) and node.kind == LIST and node.list_type != "atomic"


def _added(value: Any, node: Node) -> FieldSet:
    entry = object_fields(value, node, mark_maps=True)
    if value and created_member(value, node):
        entry[MEMBER] = None  # a map or list that did not exist before is owned as a whole too
    return entry


def _compare(old: Any, new: Any, node: Node, changed: FieldSet, removed: FieldSet) -> None:
    if old is new or (type(old) is type(new) and old == new):
        # C-speed shortcut for unchanged subtrees; the only JSON difference it can miss is a
        # bool turned into 0/1 inside a container, which no typed field can hold
        return
    if _is_granular_map(old, node) and _is_granular_map(new, node):
        for name, value in new.items():
            sub = node.field(name)
            key = "f:" + name
            if name not in old:
                changed[key] = _added(value, sub)
                continue
            child_changed: FieldSet = {}
            child_removed: FieldSet = {}
            _compare(old[name], value, sub, child_changed, child_removed)
            if child_changed:
                changed[key] = child_changed
            if child_removed:
                removed[key] = child_removed
        for name, value in old.items():
            if name not in new:
                removed["f:" + name] = _whole(value, node.field(name))  # the subtree leaves every set
        return
    if _is_assoc_list(old, node) and _is_assoc_list(new, node):
        _compare_list(old, new, node, changed, removed)
        return
    if not json_equal(old, new):
        changed[MEMBER] = None


def _groups(items: list, node: Node) -> dict[str, list]:
    out: dict[str, list] = {}
    for item in items:
        out.setdefault(item_key(item, node), []).append(item)
    return out


def _compare_list(old: list, new: list, node: Node, changed: FieldSet, removed: FieldSet) -> None:
    """Associative lists item by item. A key that occurs more than once on either side is one
    unit, as upstream since structured-merge-diff v4.4.1: the writer who changes any of its
    copies owns the key alone and everybody else loses the item and its fields."""
    item_node = node.item()
    old_groups = _groups(old, node)
    new_groups = _groups(new, node)
    for key, items in new_groups.items():
        before = old_groups.get(key)
        if before is not None and (len(items) > 1 or len(before) > 1):
            if not json_equal(before, items):
                changed[key] = {MEMBER: None} if len(items) > 1 else _added_item(items[0], node, item_node)
                inside: FieldSet = {}
                for item in before:
                    inside = union(inside, _added_item(item, node, item_node))
                inside = difference(inside, changed[key])
                inside.pop(MEMBER, None)
                if inside:
                    removed[key] = inside
            continue
        if before is None:
            changed[key] = {MEMBER: None} if len(items) > 1 else _added_item(items[0], node, item_node)
        elif node.list_type == "map":
            child_changed: FieldSet = {}
            child_removed: FieldSet = {}
            _compare(before[0], items[0], item_node, child_changed, child_removed)
            if child_changed:
                changed[key] = child_changed
            if child_removed:
                removed[key] = child_removed
    for key, items in old_groups.items():
        if key not in new_groups:
            removed[key] = _whole(items[0], item_node) if node.list_type == "map" else {MEMBER: None}


def _whole(value: Any, node: Node) -> FieldSet:
    """Every path in ``value``'s subtree, each a member (what leaves all sets when it goes)."""
    return _all_members(object_fields(value, node, mark_maps=True))


def _all_members(fields: FieldSet) -> FieldSet:
    out: FieldSet = {key: _all_members(sub) for key, sub in fields.items() if key != MEMBER}
    out[MEMBER] = None
    return out


def _added_item(item: Any, node: Node, item_node: Node) -> FieldSet:
    entry = object_fields(item, item_node, mark_maps=True) if node.list_type == "map" else {}
    entry[MEMBER] = None
    return entry


# ---------------------------------------------------------------------------------------------
# Update operations


def record_update(
    old: dict | None,
    new: dict,
    *,
    manager: str,
    api_version: str,
    type_info: TypeInfo,
    now: str,
    subresource: str = "",
    reset_fields: tuple[tuple[str, ...], ...] = (),
) -> dict:
    """Records a non-apply write: ``manager`` takes every field it added or changed.

    The fields move away from every other manager without conflicts; removed fields leave
    every manager's set. When the client sent managedFields different from the stored ones
    (as upstream allows, e.g. ``[]`` to reset), those are the starting point.
    """
    old_meta = (old or {}).get("metadata") or {}
    new_meta = new.get("metadata") or {}
    entries = None
    if "managedFields" in new_meta and not json_equal(new_meta.get("managedFields"), old_meta.get("managedFields")):
        try:
            entries = decode(new)
        except PatchError:
            entries = None  # as upstream: undecodable client-sent managedFields fall back to the stored ones
    if entries is None:
        entries = decode(old)
    reconcile_entries(entries, type_info)
    ignored = ignored_paths(reset_fields)
    changed, removed = compare(without_managed_fields(old), without_managed_fields(new), type_info.root)
    changed = strip_ignored(changed, ignored)
    removed = strip_ignored(removed, ignored)
    key = entry_key(manager, "Update", api_version, subresource)
    mine = None
    for entry in entries:
        if entry.key == key:
            mine = entry
            continue
        if changed or removed:
            rest = difference(difference(entry.fields, changed), removed)
            if rest != entry.fields:
                entry.fields, entry.raw = rest, None
    if changed:
        if mine is None:
            mine = Entry(manager, "Update", api_version, subresource, now, {})
            entries.append(mine)
        mine.fields, mine.raw, mine.time = difference(union(mine.fields, changed), removed), None, now
    elif mine is not None and removed:
        mine.fields, mine.raw = difference(mine.fields, removed), None
    return with_managed_fields(copy_json(new), encode(entries))


def without_managed_fields(obj: dict | None) -> dict:
    """The object without managedFields (never compared or tracked)."""
    if not obj:
        return {}
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return obj
