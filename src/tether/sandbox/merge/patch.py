"""JSON patch (RFC 6902) and JSON merge patch (RFC 7386) over JSON-like values."""

from __future__ import annotations

from typing import Any

from tether.errors import TetherError


class PatchError(TetherError):
    """A patch is malformed or cannot be applied (the server answers 400/422)."""


def copy_json(value: Any) -> Any:
    """A fast deep copy of plain JSON data (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: copy_json(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) if isinstance(v, dict | list) else v for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike ``==``, ``true`` never equals ``1``; ``1`` equals ``1.0``."""
    ta, tb = type(a), type(b)
    if ta is not tb:
        return ta in _NUMBERS and tb in _NUMBERS and a == b
    if ta is dict:
        if len(a) != len(b):
            return False
        for key, value in a.items():
            other = b.get(key, _ABSENT)
            if other is _ABSENT or not json_equal(value, other):
                return False
        return True
    if ta is list:
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


_NUMBERS = (int, float)
_ABSENT = object()


# ---------------------------------------------------------------------------------------------
# RFC 7386


def merge_patch(obj: Any, patch: Any) -> Any:
    """Applies a JSON merge patch: objects merge recursively, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy_json(patch)
    out = copy_json(obj) if isinstance(obj, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = merge_patch(out.get(key), value)
        else:
            out[key] = copy_json(value)
    return out


# ---------------------------------------------------------------------------------------------
# RFC 6902


def _pointer(path: Any, op_index: int) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"JSON patch operation {op_index}: path must be a string, got {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON patch operation {op_index}: path {path!r} must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list, token: str, path: str, op_index: int, *, allow_end: bool) -> int:
    """An array index as the API server's JSON patch library reads it: decimal (leading zeros and
    sign allowed), negative counting from the end, ``-`` for the end when adding."""
    if token == "-" and allow_end:
        return len(container)
    digits = token[1:] if token[:1] in "+-" else token
    if not digits.isdigit() or not digits.isascii():
        raise PatchError(f"JSON patch operation {op_index}: invalid array index {token!r} in {path!r}")
    index = int(token)
    size = len(container) + 1 if allow_end else len(container)
    if index < 0 and index >= -size:
        index += size
    if not 0 <= index < size:
        raise PatchError(f"JSON patch operation {op_index}: index {token} out of range in {path!r}")
    return index


def _parent(doc: Any, tokens: list[str], path: str, op_index: int) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"JSON patch operation {op_index}: path {path!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, op_index, allow_end=False)]
        else:
            raise PatchError(f"JSON patch operation {op_index}: path {path!r} does not exist")
    return node


def _get(doc: Any, tokens: list[str], path: str, op_index: int) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path, op_index)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"JSON patch operation {op_index}: path {path!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, op_index, allow_end=False)]
    raise PatchError(f"JSON patch operation {op_index}: path {path!r} does not exist")


def _add(doc: Any, tokens: list[str], value: Any, path: str, op_index: int) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens, path, op_index)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, op_index, allow_end=True), value)
    else:
        raise PatchError(f"JSON patch operation {op_index}: cannot add at {path!r}: parent is not a container")
    return doc


def _remove(doc: Any, tokens: list[str], path: str, op_index: int) -> Any:
    if not tokens:
        raise PatchError(f"JSON patch operation {op_index}: cannot remove the whole document")
    parent = _parent(doc, tokens, path, op_index)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"JSON patch operation {op_index}: path {path!r} does not exist")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, path, op_index, allow_end=False))
    raise PatchError(f"JSON patch operation {op_index}: path {path!r} does not exist")


def _test(doc: Any, tokens: list[str], op: dict, path: str, op_index: int) -> None:
    """As upstream: an absent member equals an absent or null value; the parent must exist."""
    expected = op.get("value")
    if tokens:
        parent = _parent(doc, tokens, path, op_index)
        if isinstance(parent, dict) and tokens[-1] not in parent:
            if expected is None:
                return
            raise PatchError(f"JSON patch operation {op_index}: test failed at {path!r}: the member is absent")
        if not isinstance(parent, dict | list):
            raise PatchError(f"JSON patch operation {op_index}: path {path!r} does not exist")
    actual = _get(doc, tokens, path, op_index)
    if "value" not in op or not json_equal(actual, expected):
        raise PatchError(
            f"JSON patch operation {op_index}: test failed at {path!r}: expected {expected!r}, found {actual!r}"
        )


def json_patch(obj: Any, operations: list) -> Any:
    """Applies an RFC 6902 JSON patch (add, remove, replace, move, copy, test) to a copy."""
    if not isinstance(operations, list):
        raise PatchError("JSON patch must be a list of operations")
    doc = copy_json(obj)
    for index, op in enumerate(operations):
        if not isinstance(op, dict):
            raise PatchError(f"JSON patch operation {index}: must be an object, got {op!r}")
        kind = op.get("op")
        path = op.get("path")
        tokens = _pointer(path, index)
        value = op.get("value")  # absent is null, as upstream
        if kind == "add":
            doc = _add(doc, tokens, copy_json(value), path, index)
        elif kind == "remove":
            _remove(doc, tokens, path, index)
        elif kind == "replace":
            _get(doc, tokens, path, index)  # must exist
            if tokens:
                _remove(doc, tokens, path, index)
            doc = _add(doc, tokens, copy_json(value), path, index)
        elif kind in ("move", "copy"):
            source = op.get("from")
            from_tokens = _pointer(source, index)
            if kind == "move":
                if tokens[: len(from_tokens)] == from_tokens and len(tokens) > len(from_tokens):
                    raise PatchError(f"JSON patch operation {index}: cannot move {source!r} into its child {path!r}")
                value = _get(doc, from_tokens, source, index)
                if from_tokens:
                    _remove(doc, from_tokens, source, index)
            else:
                value = copy_json(_get(doc, from_tokens, source, index))
            doc = _add(doc, tokens, value, path, index)
        elif kind == "test":
            _test(doc, tokens, op, path, index)
        else:
            raise PatchError(f"JSON patch operation {index}: unknown op {kind!r}")
    return doc
