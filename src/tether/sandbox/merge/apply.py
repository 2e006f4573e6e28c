"""Server-side apply with upstream structured-merge-diff semantics.

1. The applied config's field set is computed from its type (identity metadata ignored).
2. The config is merged into the live object: granular maps and structs field by field,
   associative lists item by item (map lists by their keys, sets by value), atomic values
   replaced whole.
3. Fields whose value the merge changes and that another manager owns are conflicts; they
   fail the apply unless forced, in which case they move to this manager.
4. Fields this manager applied last time but no longer applies are removed from the object
   unless another manager still owns them (containers emptied that way go too).
5. This manager's Apply entry becomes exactly the applied set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.errors import TetherError
from tether.sandbox.merge.fieldpath import (
    MEMBER,
    FieldSet,
    difference,
    duplicated,
    intersection,
    item_key,
    members,
    object_fields,
    path_string,
    union,
)
from tether.sandbox.merge.managed import (
    Entry,
    compare,
    decode,
    encode,
    entry_key,
    ignored_paths,
    reconcile_entries,
    strip_ignored,
    with_managed_fields,
    without_managed_fields,
)
from tether.sandbox.merge.patch import PatchError, copy_json, json_equal
from tether.sandbox.merge.typeinfo import DEDUCED, LIST, MAP, STRUCT, Node, TypeInfo


@dataclass
class Conflict:
    """One field another manager owns with a different value."""

    manager: str
    api_version: str
    field: str
    operation: str = "Update"
    subresource: str = ""

    @property
    def message(self) -> str:
        """The upstream Status cause message (``conflict with "m1" using v1``)."""
        return f"conflict with {self.manager_text()}"

    def manager_text(self) -> str:
        """The manager as upstream prints it in conflict messages."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


class ApplyConflictError(TetherError):
    """A server-side apply would change fields other managers own (HTTP 409)."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(_conflict_message(conflicts))


def _conflict_message(conflicts: list[Conflict]) -> str:
    if len(conflicts) == 1:
        only = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {only.manager_text()}: {only.field}"
    by_manager: dict[str, list[str]] = {}
    for conflict in conflicts:
        by_manager.setdefault(conflict.manager_text(), []).append(conflict.field)
    lines = []
    for manager in sorted(by_manager):
        lines.append(f"conflicts with {manager}:")
        lines.extend(f"- {field}" for field in by_manager[manager])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# merging


def _granular(node: Node) -> bool:
    return not node.atomic and node.kind in (STRUCT, MAP, DEDUCED)


def merges_as_empty(live: Any, applied: Any, node: Node) -> bool:
    """Whether an applied null leaves a live value's content alone: as upstream, null merges
    into a non-empty granular struct, map or associative list as an empty one would."""
    if applied is not None or not live:
        return False
    if isinstance(live, dict):
        return _granular(node)
    return isinstance(live, list) and node.kind == LIST and node.list_type != "atomic"


def merge(live: Any, applied: Any, node: Node) -> Any:
    """``applied`` merged into ``live`` (a new value; nulls in ``applied`` delete scalars and
    atomic values and leave granular content alone)."""
    if isinstance(applied, dict):
        if not _granular(node):
            return copy_json(applied)
        base = live if isinstance(live, dict) else {}
        out = {}
        fields = node.fields if node.kind == STRUCT else None
        for name, value in base.items():
            if name in applied:
                new = applied[name]
                sub = (fields.get(name) if fields is not None else None) or node.field(name)
                if new is not None:
                    out[name] = merge(value, new, sub)
                elif merges_as_empty(value, new, sub):
                    out[name] = copy_json(value)
            else:
                out[name] = copy_json(value) if isinstance(value, dict | list) else value
        for name, new in applied.items():
            if name not in base and new is not None:
                sub = (fields.get(name) if fields is not None else None) or node.field(name)
                out[name] = merge(None, new, sub)
        return out
    if isinstance(applied, list):
        if node.kind != LIST or node.list_type == "atomic" or not isinstance(live, list):
            return copy_json(applied)
        return _merge_list(live, applied, node)
    return applied


def _index(items: list, node: Node, applied: dict[str, Any] | None = None) -> tuple[list[str], dict[str, Any]]:
    """Item keys in order and the items by key. Live items whose key is duplicated (create and
    update accept that) stay apart under private keys unless the apply sets that key, in which
    case the applied item replaces them all (``applied``: the applied items by key)."""
    keys: list[str] = []
    by_key: dict[str, Any] = {}
    for index, item in enumerate(items):
        key = item_key(item, node)
        if key in by_key:
            if applied is None or key in applied:
                continue
            key = f"{key}\x00{index}"  # never an applied key
        by_key[key] = item
        keys.append(key)
    return keys, by_key


def _merge_list(live: list, applied: list, node: Node) -> list:
    """Associative merge ordered as upstream: applied order for shared and new items, live-only
    items kept where they were relative to the shared items around them."""
    item_node = node.item()
    is_map = node.list_type == "map"
    applied_keys, applied_items = _index(applied, node)
    live_keys, live_items = _index(live, node, applied_items)
    repeated = duplicated([item_key(item, node) for item in live])
    shared = [key for key in applied_keys if key in live_items]
    next_shared = 0
    out: list = []

    def take(key: str) -> None:
        new = applied_items[key]
        if is_map and key not in repeated:
            out.append(merge(live_items.get(key), new, item_node))
        else:
            out.append(copy_json(new))  # duplicated live items are replaced as a whole, as upstream

    li = ri = 0
    n_live, n_applied = len(live_keys), len(applied_keys)
    while li < n_live or ri < n_applied:
        if li < n_live and ri < n_applied:
            key = live_keys[li]
            if key == applied_keys[ri]:
                take(key)
                li, ri, next_shared = li + 1, ri + 1, next_shared + 1
                continue
            if key in applied_items and next_shared < len(shared) and shared[next_shared] != key:
                li += 1  # shared, but its turn comes later in applied order
                continue
        if li < n_live and live_keys[li] not in applied_items:
            out.append(copy_json(live_items[live_keys[li]]))
            li += 1
            continue
        if ri < n_applied:
            key = applied_keys[ri]
            take(key)
            ri += 1
            if next_shared < len(shared) and shared[next_shared] == key:
                next_shared += 1
            continue
        li += 1  # a shared live item already emitted from the applied side
    return out


# ---------------------------------------------------------------------------------------------
# what the apply changes


_MISSING = object()


def changed_fields(live: Any, applied: Any, fields: FieldSet, node: Node) -> FieldSet:
    """The members of ``fields`` (the applied set) whose live value differs from the applied one."""
    out: FieldSet = {}
    if live is _MISSING and applied is None:
        return out  # applying null to an absent field changes nothing
    if type(live) is type(applied) and live == applied and (len(fields) > 1 or MEMBER not in fields):
        return out  # identical subtree (C-speed shortcut, see managed._compare)
    if len(fields) == 1 and MEMBER in fields:
        if live is _MISSING:
            out[MEMBER] = None
        elif not (_empty_granular(applied, node) or merges_as_empty(live, applied, node)) and not json_equal(
            live, applied
        ):
            out[MEMBER] = None  # an empty granular value merges into the live one and changes nothing
        return out
    if MEMBER in fields and live is _MISSING:
        out[MEMBER] = None
    if isinstance(applied, dict):
        live_map = live if isinstance(live, dict) else {}
        for key, sub_fields in fields.items():
            if key == MEMBER:
                continue
            name = key[2:]
            sub = changed_fields(live_map.get(name, _MISSING), applied.get(name), sub_fields, node.field(name))
            if sub:
                out[key] = sub
    elif isinstance(applied, list):
        live_list = live if isinstance(live, list) else []
        live_keys = [item_key(i, node) for i in live_list]
        live_items = dict(zip(live_keys, live_list, strict=True))
        for key in duplicated(live_keys):
            del live_items[key]  # applying a duplicated key sets the whole item anew
        applied_items = {item_key(i, node): i for i in applied}
        item_node = node.item()
        for key, sub_fields in fields.items():
            if key == MEMBER:
                continue
            sub = changed_fields(live_items.get(key, _MISSING), applied_items.get(key), sub_fields, item_node)
            if sub:
                out[key] = sub
    return out


def _empty_granular(applied: Any, node: Node) -> bool:
    return isinstance(applied, dict) and not applied and _granular(node)


# ---------------------------------------------------------------------------------------------
# pruning fields the applier dropped


def prune(value: Any, remove: FieldSet, keep: FieldSet, node: Node) -> Any:
    """``value`` without the members of ``remove`` (containers something in ``keep`` needs stay)."""
    if isinstance(value, dict) and _granular(node):
        out = dict(value)
        for key, sub_remove in remove.items():
            if key == MEMBER or key[0] != "f":
                continue
            name = key[2:]
            if name not in out:
                continue
            sub_keep = keep.get(key) or {}
            if MEMBER in sub_remove and not sub_keep:
                del out[name]
                continue
            child = out[name]
            new_child = prune(child, sub_remove, sub_keep, node.field(name))
            if isinstance(new_child, dict | list) and not new_child and child:
                del out[name]  # emptied by the removal: gone, as upstream
            else:
                out[name] = new_child
        return out
    if isinstance(value, list) and node.kind == LIST and node.list_type != "atomic":
        item_node = node.item()
        key_fields = {"f:" + name for name in node.keys}
        out_list = []
        for item in value:
            key = item_key(item, node)
            sub_remove = remove.get(key)
            if sub_remove is None:
                out_list.append(item)
                continue
            if MEMBER in sub_remove:
                # as upstream: an item nobody else owns as a whole goes with everything in it,
                # even fields another manager set inside it
                continue
            sub_keep = keep.get(key) or {}
            if node.list_type == "map":
                # an item another manager still needs keeps the fields that identify it
                sub_remove = {k: v for k, v in sub_remove.items() if k not in key_fields}
                item = prune(item, sub_remove, sub_keep, item_node)
            out_list.append(item)
        return out_list
    return value


# ---------------------------------------------------------------------------------------------
# the operation


def apply_patch(
    live: dict | None,
    applied: dict,
    *,
    manager: str,
    api_version: str,
    force: bool,
    type_info: TypeInfo,
    now: str,
    subresource: str = "",
    reset_fields: tuple[tuple[str, ...], ...] = (),
) -> dict:
    """Server-side apply of ``applied`` onto ``live`` by ``manager`` (see the module docstring).

    ``reset_fields`` are field paths (tuples of field names, e.g. ``("status",)`` for the main
    resource of a kind with a status subresource) that, as upstream's per-resource reset
    fields, the applied config cannot set (their live values stay) and nobody owns through it.
    """
    if not isinstance(applied, dict):
        raise PatchError("apply configuration must be an object")
    applied_meta = applied.get("metadata")
    if isinstance(applied_meta, dict) and applied_meta.get("managedFields") is not None:
        raise PatchError("metadata.managedFields must be nil in an apply configuration")
    root = type_info.root
    if reset_fields:
        applied = _drop_values(applied, reset_fields)
    entries: list[Entry] = decode(live)
    reconcile_entries(entries, type_info)
    live_body = without_managed_fields(live)
    ignored = ignored_paths(reset_fields)
    if live is not None and not entries:
        # as upstream: fields of an untracked object belong to a placeholder Update manager, so
        # the first applier cannot silently take them over
        owned = strip_ignored(object_fields(live_body, root), ignored)
        if owned:
            entries.append(Entry("before-first-apply", "Update", api_version, "", now, owned))
    applied_fields = strip_ignored(object_fields(applied, root, strict=True), ignored)
    changed = changed_fields(live_body, applied, applied_fields, root) if live is not None else applied_fields

    key = entry_key(manager, "Apply", api_version, subresource)
    mine: Entry | None = None
    others: list[Entry] = []
    for entry in entries:
        if entry.key == key:
            mine = entry
        else:
            others.append(entry)
    if changed and others:
        conflicts: list[Conflict] = []
        for entry in others:
            clash = intersection(entry.fields, changed)
            if not clash:
                continue
            if force:
                entry.fields, entry.raw = difference(entry.fields, clash), None
                continue
            conflicts.extend(
                Conflict(entry.manager, entry.api_version, path_string(path), entry.operation, entry.subresource)
                for path in members(clash)
            )
        if conflicts:
            raise ApplyConflictError(conflicts)

    merged = merge(live_body, applied, root)
    object_changed = bool(changed)
    if mine is not None:
        dropped = difference(mine.fields, applied_fields)
        if dropped:
            owned_by_others: FieldSet = {}
            for entry in others:
                owned_by_others = union(owned_by_others, entry.fields)
            remove = difference(dropped, owned_by_others)
            if remove:
                pruned = prune(merged, remove, union(owned_by_others, applied_fields), root)
                if not json_equal(pruned, merged):
                    object_changed = True
                    # fields that went with a removed item leave every other manager's set
                    _, gone = compare(merged, pruned, root)
                    for entry in others:
                        rest = difference(entry.fields, gone)
                        if rest != entry.fields:
                            entry.fields, entry.raw = rest, None
                merged = pruned
    if mine is None:
        mine = Entry(manager, "Apply", api_version, subresource, now, applied_fields)
        entries.append(mine)
    else:
        if object_changed or mine.fields != applied_fields or mine.api_version != api_version:
            mine.time = now
        if mine.fields != applied_fields:
            mine.fields, mine.raw = applied_fields, None
        mine.api_version = api_version
    return with_managed_fields(merged, encode(entries))


def _drop_values(obj: dict, paths: tuple[tuple[str, ...], ...]) -> dict:
    """A copy-on-write ``obj`` without the values at ``paths``."""
    out = dict(obj)
    for path in paths:
        node = out
        for name in path[:-1]:
            child = node.get(name)
            if not isinstance(child, dict):
                break
            node[name] = node = dict(child)
        else:
            node.pop(path[-1], None)
    return out
