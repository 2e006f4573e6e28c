"""Strategic merge patch, as the Kubernetes API server applies it.

Lists whose field carries ``x-kubernetes-patch-strategy: merge`` are merged (by the
``x-kubernetes-patch-merge-key`` for lists of objects, by value for primitive lists); every
other list is replaced. Directives: ``$patch: replace|delete`` in maps and list items,
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
            return _without_directive_keys(patch)
        if directive == "delete":
            return None
        # as upstream, "merge" (the default) cannot be spelled out in a map
        raise PatchError(f"strategic merge patch at {where or '/'}: unknown $patch directive {directive!r}")
    out = copy_json(original)
    retain = patch.get(_RETAIN)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError(f"strategic merge patch at {where or '/'}: $retainKeys must be a list")
        for key, value in patch.items():
            if value is None or key in (_PATCH, _RETAIN) or key.startswith((_DELETE_PRIMITIVE, _ORDER)):
                continue
            if key not in retain:
                raise PatchError(f"strategic merge patch at {where or '/'}: field {key!r} is not listed in $retainKeys")
        for key in list(out):
            if key not in retain:
                del out[key]
    done: set[str] = set()
    for key, order in patch.items():
        if not key.startswith(_ORDER):
            continue
        field = key[len(_ORDER) :]
        path = f"{where}/{field}"
        if not isinstance(order, list):
            raise PatchError(f"strategic merge patch at {path}: {key} must be a list")
        sub = node.field(field)
        current = out.get(field)
        if isinstance(patch.get(field), list):
            _check_order(patch[field], order, sub.patch_merge_key, path)
        if field in patch and patch[field] is not None:
            merged = _merge_value(current, patch[field], sub, path, field in out)
        elif isinstance(current, list):
            merged = current
        else:
            continue
        done.add(field)
        if merged is _DELETE:
            out.pop(field, None)
        elif isinstance(merged, list):
            server = current if isinstance(current, list) else []
            out[field] = _normalize_order(merged, order, server, sub.patch_merge_key)
        else:
            out[field] = merged
    for key, value in patch.items():
        if key.startswith("$"):
            if key.startswith(_DELETE_PRIMITIVE):
                field = key[len(_DELETE_PRIMITIVE) :]
                if not isinstance(value, list):
                    raise PatchError(f"strategic merge patch at {where}/{field}: {key} must be a list")
                current = out.get(field)
                if isinstance(current, list):
                    out[field] = [v for v in current if not any(json_equal(v, d) for d in value)]
                continue
            if key in (_PATCH, _RETAIN) or key.startswith(_ORDER):
                continue
            raise PatchError(f"strategic merge patch at {where or '/'}: unknown directive {key!r}")
        if key in done:
            continue
        if value is None:
            out.pop(key, None)
            continue
        merged = _merge_value(out.get(key), value, node.field(key), f"{where}/{key}", key in out)
        if merged is _DELETE:
            out.pop(key, None)
        else:
            out[key] = merged
    return out


_DELETE = object()


def _merge_value(original: Any, patch: Any, node: Node, where: str, present: bool) -> Any:
    strategy = _strategy(node)
    if not present:
        fresh = _new_value(patch)
        return _DELETE if fresh is _DELETE else fresh
    if isinstance(patch, dict):
        if "replace" in strategy or not isinstance(original, dict):
            return _without_directive_keys(patch)
        merged = _merge_map(original, patch, node, where)
        return {} if merged is None else merged  # "$patch: delete" empties a present map, as upstream
    if isinstance(patch, list):
        if "merge" in strategy and node is not DEDUCED_NODE and isinstance(original, list):
            return _merge_list(original, patch, node, where)
        return _without_directive_keys(patch)  # replaced by the list as sent, as upstream
    return patch


def _new_value(value: Any) -> Any:
    """A patch value for a key the object lacks, as upstream ends up storing it: maps and list
    items carrying ``$patch`` are dropped, other directive keys and nulls vanish."""
    if isinstance(value, dict):
        if _PATCH in value:
            return _DELETE
        out = {}
        for key, sub in value.items():
            if sub is None or key.startswith("$"):
                continue
            fresh = _new_value(sub)
            if fresh is not _DELETE:
                out[key] = fresh
        return out
    if isinstance(value, list):
        kept = (_new_value(v) for v in value if not (isinstance(v, dict) and _PATCH in v))
        return [v for v in kept if v is not _DELETE]
    return value


def _without_directive_keys(value: Any) -> Any:
    """A patch value stored as sent, as the API server's decoding leaves it: directive keys and
    nulls in objects do not survive the conversion into the typed object."""
    if isinstance(value, dict):
        return {k: _without_directive_keys(v) for k, v in value.items() if v is not None and not k.startswith("$")}
    if isinstance(value, list):
        return [_without_directive_keys(v) for v in value]
    return value


def _check_order(items: list, order: list, merge_key: str | None, where: str) -> None:
    """As upstream: the patch list must follow the ``$setElementOrder`` list (delete items aside;
    other directive items are skipped only while the order list lasts)."""
    if merge_key:
        items = [v for v in items if not (isinstance(v, dict) and v.get(_PATCH) == "delete")]
    patch_index = order_index = 0
    while patch_index < len(items) and order_index < len(order):
        item = items[patch_index]
        if isinstance(item, dict) and _PATCH in item:
            patch_index += 1
            continue
        if json_equal(_ident(item, merge_key), _ident(order[order_index], merge_key)):
            patch_index += 1
        order_index += 1
    if patch_index < len(items):
        raise PatchError(
            f"strategic merge patch at {where}: the order of the patch list does not match its $setElementOrder list"
        )


def _ident(value: Any, merge_key: str | None) -> Any:
    if merge_key and isinstance(value, dict):
        return value.get(merge_key)
    return value


def _position(items: list, value: Any, merge_key: str | None) -> int:
    wanted = _ident(value, merge_key)
    for index, item in enumerate(items):
        if json_equal(_ident(item, merge_key), wanted):
            return index
    return -1


def _normalize_order(merged: list, order: list, server: list, merge_key: str | None) -> list:
    """Orders a merged list as upstream: items named by ``order`` (the patch list or
    ``$setElementOrder``) take that order; server-only items keep theirs and go in front of a
    patch item only when the live list had them in front of it."""
    patch_items = [v for v in merged if _position(order, v, merge_key) >= 0]
    server_only = [v for v in merged if _position(order, v, merge_key) < 0]
    patch_items.sort(key=lambda v: _position(order, v, merge_key))
    out = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(patch_items[j])
            j += 1
        else:
            left = _position(server, server_only[i], merge_key)
            right = _position(server, patch_items[j], merge_key)
            if left >= 0 and right >= 0 and left < right:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patch_items[j])
                j += 1
    return out


def _merge_list(original: list, patch: list, node: Node, where: str) -> list:
    item_node = node.item()
    merge_key = node.patch_merge_key
    if not any(isinstance(v, dict) for v in patch + original):
        merged = [copy_json(v) for v in original]
        for value in patch:
            if not any(json_equal(value, v) for v in merged):
                merged.append(copy_json(value))
        return _normalize_order(merged, patch, original, None)
    if not merge_key:
        raise PatchError(f"strategic merge patch at {where}: cannot merge lists of objects without a merge key")
    server = [copy_json(v) for v in original]
    plain = []
    replace = False
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"strategic merge patch at {where}: expected an object item, got {item!r}")
        directive = item.get(_PATCH)
        if directive is None:
            plain.append(item)
        elif directive == "delete":
            key = _key_of(item, merge_key, where)
            server = [v for v in server if not (isinstance(v, dict) and json_equal(v.get(merge_key), key))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError(f"strategic merge patch at {where}: merging lists cannot be specified with $patch")
        else:
            raise PatchError(f"strategic merge patch at {where}: unknown $patch directive {directive!r}")
    if replace:
        return [_without_directive_keys(v) for v in plain]
    merged = list(server)
    for item in plain:
        key = _key_of(item, merge_key, where)
        index = _position(merged, {merge_key: key}, merge_key)
        item_where = f"{where}[{merge_key}={key}]"
        if index < 0:
            merged.append(_without_directive_keys(item))  # appended as sent, as upstream
        else:
            result = _merge_map(merged[index], item, item_node, item_where)
            if result is None:
                del merged[index]
            else:
                merged[index] = result
    return _normalize_order(merged, plain, server, merge_key)


def _key_of(item: Any, merge_key: str, where: str) -> Any:
    if merge_key not in item:
        raise PatchError(f"strategic merge patch at {where}: list item {item!r} lacks merge key {merge_key!r}")
    return item[merge_key]
