"""Strategic merge patch, as the Kubernetes API server applies it.

Lists whose field carries ``x-kubernetes-patch-strategy: merge`` are merged (by the
``x-kubernetes-patch-merge-key`` for lists of objects, by value for primitive lists); every
other list is replaced. Directives: ``$patch: replace|merge|delete`` in maps and list items,
``$retainKeys``, ``$deleteFromPrimitiveList/<field>``, ``$setElementOrder/<field>``; null
deletes a key. Untyped parts (deduced nodes) merge maps and replace lists, as a JSON merge
patch does.
"""

from __future__ import annotations

from typing import Any

from tether.sandbox.merge.patch import PatchError, copy_json, json_equal
from tether.sandbox.merge.typeinfo import DEDUCED_NODE, Node, TypeInfo

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"


def strategic_merge_patch(obj: dict, patch: dict, type_info: TypeInfo) -> dict:
    """Applies a strategic merge patch to a copy of ``obj``."""
    if not isinstance(patch, dict):
        raise PatchError(f"strategic merge patch must be an object, got {type(patch).__name__}")
    result = _merge_map(obj if isinstance(obj, dict) else {}, patch, type_info.root, "")
    return {} if result is None else result


def _strategy(node: Node) -> set[str]:
    return set((node.patch_strategy or "").split(","))


def _merge_map(original: dict, patch: dict, node: Node, where: str) -> dict | None:
    """Merges ``patch`` into a copy of ``original``; None means "delete this map"."""
    directive = patch.get(_PATCH)
    if directive is not None:
        if directive == "replace":
            return _strip(patch, node)
        if directive == "delete":
            return None
        if directive != "merge":
            raise PatchError(f"strategic merge patch at {where or '/'}: unknown $patch directive {directive!r}")
    out = copy_json(original)
    retain = patch.get(_RETAIN)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError(f"strategic merge patch at {where or '/'}: $retainKeys must be a list")
        for key, value in patch.items():
            if key.startswith("$") or value is None:
                continue
            if key not in retain:
                raise PatchError(
                    f"strategic merge patch at {where or '/'}: field {key!r} is not listed in $retainKeys"
                )
        for key in list(out):
            if key not in retain:
                del out[key]
    # primitive deletions first, so a patch that also adds values sees the pruned list
    for key, values in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if not isinstance(values, list):
                raise PatchError(f"strategic merge patch at {where}/{field}: {key} must be a list")
            current = out.get(field)
            if isinstance(current, list):
                out[field] = [v for v in current if not any(json_equal(v, d) for d in values)]
    for key, value in patch.items():
        if key.startswith("$"):
            if key in (_PATCH, _RETAIN) or key.startswith((_DELETE_PRIMITIVE, _ORDER)):
                continue
            raise PatchError(f"strategic merge patch at {where or '/'}: unknown directive {key!r}")
        sub = node.field(key)
        path = f"{where}/{key}"
        if value is None:
            out.pop(key, None)
            continue
        merged = _merge_value(out.get(key), value, sub, path, key in out)
        if merged is _DELETE:
            out.pop(key, None)
        else:
            out[key] = merged
    for key, order in patch.items():
        if key.startswith(_ORDER):
            field = key[len(_ORDER) :]
            if not isinstance(order, list):
                raise PatchError(f"strategic merge patch at {where}/{field}: {key} must be a list")
            current = out.get(field)
            if isinstance(current, list):
                out[field] = _reorder(current, order, node.field(field))
    return out


_DELETE = object()


def _merge_value(original: Any, patch: Any, node: Node, where: str, present: bool) -> Any:
    strategy = _strategy(node)
    if isinstance(patch, dict):
        if "replace" in strategy:
            return _strip(patch, node)
        merged = _merge_map(original if present and isinstance(original, dict) else {}, patch, node, where)
        return _DELETE if merged is None else merged
    if isinstance(patch, list):
        if "merge" in strategy and node is not DEDUCED_NODE:
            return _merge_list(original if present and isinstance(original, list) else [], patch, node, where)
        return [_strip(v, node.item()) for v in patch]
    return patch


def _key_of(item: Any, merge_key: str, where: str) -> Any:
    if merge_key not in item:
        raise PatchError(f"strategic merge patch at {where}: list item {item!r} lacks merge key {merge_key!r}")
    return item[merge_key]


def _merge_list(original: list, patch: list, node: Node, where: str) -> list:
    item_node = node.item()
    merge_key = node.patch_merge_key
    for item in patch:
        if isinstance(item, dict) and item.get(_PATCH) == "replace":
            return [_strip(v, item_node) for v in patch if v is not item]
    if not merge_key or not any(isinstance(v, dict) for v in patch):
        out = [copy_json(v) for v in original]
        for value in patch:
            if isinstance(value, dict) and _PATCH in value:
                raise PatchError(f"strategic merge patch at {where}: $patch in a list without a merge key")
            if not any(json_equal(value, v) for v in out):
                out.append(copy_json(value))
        return out
    out = [copy_json(v) for v in original]
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"strategic merge patch at {where}: expected an object item, got {item!r}")
        directive = item.get(_PATCH)
        key = _key_of(item, merge_key, where)
        index = next(
            (i for i, v in enumerate(out) if isinstance(v, dict) and json_equal(v.get(merge_key), key)), None
        )
        if directive == "delete":
            out = [v for v in out if not (isinstance(v, dict) and json_equal(v.get(merge_key), key))]
            continue
        if directive not in (None, "merge"):
            raise PatchError(f"strategic merge patch at {where}: unknown $patch directive {directive!r}")
        item_where = f"{where}[{merge_key}={key}]"
        if index is None:
            merged = _merge_map({}, item, item_node, item_where)
            if merged is not None:
                out.append(merged)
        else:
            merged = _merge_map(out[index], item, item_node, item_where)
            if merged is None:
                del out[index]
            else:
                out[index] = merged
    return out


def _reorder(items: list, order: list, node: Node) -> list:
    """Applies ``$setElementOrder``: listed items take the listed order, the rest keep their slots."""
    merge_key = node.patch_merge_key

    def ident(value: Any) -> Any:
        if merge_key and isinstance(value, dict):
            return value.get(merge_key)
        return value

    wanted = [ident(v) for v in order]

    def rank(value: Any) -> int | None:
        ident_value = ident(value)
        for i, w in enumerate(wanted):
            if json_equal(w, ident_value):
                return i
        return None

    ranks = [rank(v) for v in items]
    listed = sorted((r, i) for i, r in enumerate(ranks) if r is not None)
    slots = [i for i, r in enumerate(ranks) if r is not None]
    out = list(items)
    for slot, (_, source) in zip(slots, listed, strict=True):
        out[slot] = items[source]
    return out


def _strip(value: Any, node: Node) -> Any:
    """A copy of a patch value with directives resolved against an empty original."""
    if isinstance(value, dict):
        if not any(k.startswith("$") for k in value) and not any(v is None for v in value.values()):
            return {k: _strip(v, node.field(k)) for k, v in value.items()}
        body = {k: v for k, v in value.items() if k != _PATCH}
        merged = _merge_map({}, body, node, "")
        return {} if merged is None else merged
    if isinstance(value, list):
        return [_strip(v, node.item()) for v in value if not (isinstance(v, dict) and v.get(_PATCH) == "delete")]
    return value
