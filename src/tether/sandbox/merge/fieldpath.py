"""Field sets and their FieldsV1 encoding.

A field set is a tree of plain dicts keyed by upstream path-element strings: ``"f:<name>"``
for a struct field or map key, ``"k:<json>"`` for an item of a map-typed list (JSON object of
its key fields, sorted by name), ``"v:<json>"`` for an item of a set, ``"i:<n>"`` for a
positional item. The key ``"."`` (value None) marks that the path itself belongs to the set,
so ``{"f:spec": {"f:replicas": {".": None}}}`` holds ``.spec.replicas``. The FieldsV1 wire form
differs only in writing a bare member as ``{}`` and ``"."`` as ``{}``, with children sorted as
upstream does (fields, then keys, then values, then indexes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from tether.sandbox.merge.patch import PatchError
from tether.sandbox.merge.typeinfo import DEDUCED, LIST, MAP, STRUCT, Node

FieldSet = dict[str, Any]
MEMBER = "."

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode
_PLAIN = re.compile(r'[^"\\<>&\x00-\x1f\u2028\u2029]*')


def _dumps(value: Any) -> str:
    """Compact JSON with Go's escaping of ``<``, ``>`` and ``&`` (as upstream keys are written)."""
    kind = type(value)
    if kind is str:
        if _PLAIN.fullmatch(value):
            return '"' + value + '"'
    elif kind is int:
        return str(value)
    text = _encode(value)
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        text = (
            text.replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
    return text


def item_key(item: Any, node: Node) -> str:
    """The path element of one item of a non-atomic list ``node``."""
    if node.list_type == "map" and isinstance(item, dict):
        parts = []
        for key in node.sorted_keys:
            if key in item:
                parts.append(f'"{key}":{_dumps(item[key])}')
            elif key in node.key_defaults:
                parts.append(f'"{key}":{_dumps(node.key_defaults[key])}')
        return "k:{" + ",".join(parts) + "}"
    return "v:" + _dumps(item)


class _BadItem(Exception):
    """A list item that cannot be identified; ``parts`` grows as the error unwinds."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.parts: list[str] = []


def object_fields(value: Any, node: Node, mark_maps: bool = False, strict: bool = False) -> FieldSet:
    """The set of leaf fields a value sets, as upstream computes it for an applied config.

    As upstream's ``ToFieldSet``: scalars and atomic values are members; granular structs and
    maps contribute their children, and a null or empty one is a member itself (the applier
    owns ``emptyDir: {}``); map elements are members themselves; every item of an associative
    list is a member plus its fields, except items whose key occurs more than once (possible
    through create/update), which are members only, as upstream since structured-merge-diff
    v4.4.1. ``mark_maps`` gives the Update flavour instead (upstream's comparison): empty values
    are leaves and every newly created non-empty map or associative list (not struct) is a
    member too. ``strict`` rejects (PatchError) map-list items missing a key field and duplicate
    items, as upstream rejects such apply configurations.
    """
    out: FieldSet = {}
    try:
        _collect(value, node, out, mark_maps, strict)
    except _BadItem as error:
        where = "".join(reversed(error.parts))
        raise PatchError(f"{where}: {error.message}") from None
    return out


def _collect(value: Any, node: Node, out: FieldSet, mark: bool = False, strict: bool = False) -> None:
    kind = node.kind
    if isinstance(value, dict) and not node.atomic and kind in (STRUCT, MAP, DEDUCED):
        fields = node.fields if kind == STRUCT else None
        for name, child in value.items():
            declared = fields.get(name) if fields is not None else None
            sub = declared or node.field(name)
            entry: FieldSet = {}
            if isinstance(child, dict | list) and child:
                try:
                    _collect(child, sub, entry, mark, strict)
                except _BadItem as error:
                    error.parts.append("." + name)
                    raise
                if mark and created_member(child, sub):
                    entry[MEMBER] = None
            elif mark or _apply_leaf(child, sub):
                entry[MEMBER] = None
            if declared is None and not mark:
                entry[MEMBER] = None  # upstream: map elements are members even with children
            if entry:
                out["f:" + name] = entry
        return
    if isinstance(value, list) and kind == LIST and node.list_type != "atomic":
        item_node = node.item()
        keys = [item_key(item, node) for item in value]
        repeated = duplicated(keys) if not strict else set()
        for index, item in enumerate(value):
            entry = {MEMBER: None}
            key = keys[index]
            if strict:
                _check_item(item, node, key, index, out)
            if key in repeated:
                out[key] = entry  # a duplicated item is owned as a whole, not field by field
                continue
            if node.list_type == "map" and isinstance(item, dict):
                try:
                    _collect(item, item_node, entry, mark, strict)
                except _BadItem as error:
                    error.parts.append(f"[{index}]")
                    raise
            out[key] = entry
        return
    out[MEMBER] = None


def created_member(value: Any, node: Node) -> bool:
    """Whether an Update that creates this non-empty value owns it as a whole, besides its
    contents: maps and associative lists do (upstream's comparison sees them added), structs
    do not, nor lists the API types always serialize (``containers``), which upstream's
    comparison never sees added."""
    if isinstance(value, dict):
        return node.kind in (MAP, DEDUCED)
    return isinstance(value, list) and node.kind == LIST and node.list_type != "atomic" and not node.always_present


def _apply_leaf(value: Any, node: Node) -> bool:
    """Whether an empty container, null or scalar is itself a member of an applied set: as
    upstream, null and empty objects are (whatever their type), an empty associative list is not."""
    if isinstance(value, list):
        return not (node.kind == LIST and node.list_type != "atomic")
    return True


def duplicated(keys: list[str]) -> set[str]:
    """The keys occurring more than once."""
    if len(keys) == len(set(keys)):
        return set()
    seen: set[str] = set()
    twice: set[str] = set()
    for key in keys:
        if key in seen:
            twice.add(key)
        seen.add(key)
    return twice


def _check_item(item: Any, node: Node, key: str, index: int, seen: FieldSet) -> None:
    if node.list_type == "map":
        if not isinstance(item, dict):
            raise _BadItem(f"element {index}: associative list with keys expects objects, got {item!r}")
        for name in node.keys:
            if name not in item and name not in node.key_defaults:
                raise _BadItem(
                    f"element {index}: associative list with keys has an element that omits key field "
                    f'"{name}" (and doesn\'t have default value)'
                )
    if key in seen:
        raise _BadItem(f"element {index}: duplicate entries for key {path_string((key,))}")


# ---------------------------------------------------------------------------------------------
# set algebra


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    if not a:
        return b
    if not b:
        return a
    out = dict(a)
    for key, sub in b.items():
        mine = out.get(key)
        if key == MEMBER:
            out[key] = None
        elif mine is None:
            out[key] = sub
        else:
            out[key] = union(mine, sub)
    return out


def difference(a: FieldSet, b: FieldSet) -> FieldSet:
    """Members of ``a`` not in ``b``."""
    if not b:
        return a
    out: FieldSet = {}
    for key, sub in a.items():
        if key == MEMBER:
            if MEMBER not in b:
                out[key] = None
            continue
        other = b.get(key)
        if other is None:
            out[key] = sub
            continue
        rest = difference(sub, other)
        if rest:
            out[key] = rest
    return out


def intersection(a: FieldSet, b: FieldSet) -> FieldSet:
    out: FieldSet = {}
    if len(b) < len(a):
        a, b = b, a
    for key, sub in a.items():
        if key not in b:
            continue
        if key == MEMBER:
            out[key] = None
            continue
        both = intersection(sub, b[key])
        if both:
            out[key] = both
    return out


def members(fields: FieldSet, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every member path, in upstream order."""
    if MEMBER in fields:
        yield prefix
    for key in sorted((k for k in fields if k != MEMBER), key=_order):
        yield from members(fields[key], (*prefix, key))


def without_paths(fields: FieldSet, paths: tuple[tuple[str, ...], ...]) -> FieldSet:
    """``fields`` minus whole subtrees (used for fields upstream never tracks)."""
    if not paths:
        return fields
    out = dict(fields)
    for path in paths:
        _drop(out, path)
    return out


def _drop(node: FieldSet, path: tuple[str, ...]) -> bool:
    """Removes the subtree at ``path`` (copy-on-write); True when ``node`` became empty."""
    head = path[0]
    if head not in node:
        return not node
    if len(path) == 1:
        del node[head]
    else:
        child = dict(node[head])
        if _drop(child, path[1:]):
            del node[head]
        else:
            node[head] = child
    return not node


# ---------------------------------------------------------------------------------------------
# encoding


def _value_order(value: Any) -> tuple:
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (3, value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, list):
        return (4, tuple(_value_order(v) for v in value))
    if isinstance(value, dict):
        return (5, tuple((k, _value_order(v)) for k, v in sorted(value.items())))
    return (6, str(value))


def _order(key: str) -> tuple:
    tag = key[0]
    if tag == "f":
        return (0, key[2:])
    if tag == "k":
        try:
            decoded = json.loads(key[2:])
        except ValueError:
            return (1, (), key)
        return (1, tuple((k, _value_order(v)) for k, v in sorted(decoded.items())), key)
    if tag == "v":
        try:
            return (2, _value_order(json.loads(key[2:])), key)
        except ValueError:
            return (2, (), key)
    if tag == "i":
        return (3, int(key[2:]) if key[2:].isdigit() else 0)
    return (4, key)


def to_fields_v1(fields: FieldSet) -> dict:
    """The FieldsV1 JSON object of a set, children in upstream order."""
    out: dict = {}
    if MEMBER in fields:
        if len(fields) == 1:
            return out
        out[MEMBER] = {}
    for key in sorted((k for k in fields if k != MEMBER), key=_order):
        out[key] = to_fields_v1(fields[key])
    return out


def from_fields_v1(raw: Any) -> FieldSet:
    """Decodes a FieldsV1 object (as stored in managedFields) into a set."""
    if not isinstance(raw, dict):
        return {}
    if not raw:
        return {MEMBER: None}
    out: FieldSet = {}
    for key, sub in raw.items():
        if key == MEMBER:
            out[MEMBER] = None
        else:
            child = from_fields_v1(sub)
            if child:
                out[key] = child
    return out


# ---------------------------------------------------------------------------------------------
# path strings as upstream prints them in conflicts


def path_string(path: tuple[str, ...]) -> str:
    """``(".spec", 'k:{"name":"a"}', "f:image")`` style path as ``.spec[name="a"].image``."""
    parts = []
    for key in path:
        tag, rest = key[0], key[2:]
        if tag == "f":
            parts.append("." + rest)
        elif tag == "k":
            try:
                decoded = json.loads(rest)
            except ValueError:
                parts.append("[" + rest + "]")
                continue
            inner = ",".join(f"{k}={_dumps(v)}" for k, v in sorted(decoded.items()))
            parts.append("[" + inner + "]")
        elif tag == "v":
            parts.append("[=" + rest + "]")
        else:
            parts.append("[" + rest + "]")
    return "".join(parts)
