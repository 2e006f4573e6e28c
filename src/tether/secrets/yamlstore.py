"""YAML documents for SOPS, via ruamel.yaml so comments and key order survive.

Comments are encrypted like values (type ``comment``). Their additional data is the path of
the mapping or list that owns them; ruamel attaches a comment to the node *before* it, so the
owner is chosen by column: the innermost enclosing collection whose indentation is not
deeper than the comment. Decryption also tries the other enclosing collections, because
other writers may attach a comment differently.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.compat import ordereddict
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString
from ruamel.yaml.tokens import CommentToken

from tether.errors import SecretsError
from tether.secrets.cipher import Comment
from tether.secrets.tree import Slot

_Chain = list[tuple[tuple[str, ...], int]]


def _yaml() -> YAML:
    yaml = YAML()
    yaml.indent(mapping=4, sequence=6, offset=4)
    yaml.width = 1 << 20  # never fold long ENC[...] strings
    yaml.preserve_quotes = True
    yaml.representer.add_representer(type(None), _represent_null)
    return yaml


def _represent_null(representer: Any, _data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


class YamlDocument:
    format = "yaml"

    def __init__(self, docs: list[Any], metadata: dict[str, Any] | None) -> None:
        self.docs = docs
        self.metadata = metadata

    @classmethod
    def load(cls, data: bytes, where: str) -> YamlDocument:
        try:
            docs = [d for d in _yaml().load_all(data.decode("utf-8")) if d is not None]
        except (YAMLError, UnicodeDecodeError) as error:
            mark = getattr(error, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or "syntax error"
            raise SecretsError(f"{where}{line}: not valid YAML: {problem}") from None
        metadata = None
        for doc in docs:
            if isinstance(doc, dict) and "sops" in doc:
                if metadata is None:
                    metadata = _plain(doc["sops"])
                del doc["sops"]
        return cls(docs, metadata)

    def slots(self) -> list[Slot]:
        slots: list[Slot] = []
        for doc in self.docs:
            if not isinstance(doc, dict | list):
                raise SecretsError("a YAML document must be a mapping or a list to be encrypted")
            _unshare(doc, set())
            slots += _value_slots(doc, ())
            slots += _comment_slots(doc)
        return slots

    def dump(self) -> bytes:
        out = io.StringIO()
        docs = self.docs
        if self.metadata is not None:
            docs = []
            for doc in self.docs:
                if not isinstance(doc, dict):
                    raise SecretsError("SOPS metadata can only be added to a YAML mapping document")
                doc["sops"] = _styled(self.metadata)
                docs.append(doc)
        _yaml().dump_all(docs, out)
        for doc in docs:
            if self.metadata is not None:
                del doc["sops"]
        return out.getvalue().encode()


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def _styled(node: Any) -> Any:
    if isinstance(node, dict):
        out = CommentedMap()
        for k, v in node.items():
            out[k] = _styled(v)
        return out
    if isinstance(node, list):
        seq = CommentedSeq()
        seq.extend(_styled(v) for v in node)
        return seq
    if isinstance(node, str) and "\n" in node:
        return LiteralScalarString(node)
    return node


def _unshare(node: Any, seen: set[int]) -> None:
    """Give every alias its own copy: each value is encrypted under its own path, as SOPS does."""
    if isinstance(node, CommentedMap) and node.merge:
        raise SecretsError("YAML merge keys (<<) are not supported in encrypted files")
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(children):
        if isinstance(value, dict | list):
            if id(value) in seen:
                value = copy.deepcopy(value)
                _drop_anchors(value)
                node[key] = value
            seen.add(id(value))
            _unshare(value, seen)


def _drop_anchors(node: Any) -> None:
    if hasattr(node, "anchor"):
        node.anchor.value = None
    for value in node.values() if isinstance(node, dict) else node if isinstance(node, list) else ():
        _drop_anchors(value)


def _value_slots(node: Any, path: tuple[str, ...]) -> Iterator[Slot]:
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise SecretsError(f"non-string key {key!r} under '{':'.join(path)}:'; only string keys are supported")
            child = (*path, key)
            if isinstance(value, dict | list):
                yield from _value_slots(value, child)
            else:
                yield Slot(child, value, _setter(node, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, dict | list):
                yield from _value_slots(value, path)
            else:
                yield Slot(path, value, _setter(node, index))


def _setter(container: Any, key: Any) -> Any:
    def set_value(value: Any) -> None:
        if isinstance(value, Comment):
            value = str(value)
        elif isinstance(value, str) and "\n" in value and not value.startswith("ENC["):
            value = LiteralScalarString(value)  # multi-line text reads best as a | block
        # bypass ruamel's "keep the old scalar style", which would put ENC[...] in a | block
        if isinstance(container, CommentedMap):
            ordereddict.__setitem__(container, key, value)
        elif isinstance(container, list):
            list.__setitem__(container, key, value)
        else:
            container[key] = value
    return set_value


def _tokens(obj: Any) -> Iterator[CommentToken]:
    if isinstance(obj, CommentToken):
        yield obj
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _tokens(item)


def _collect(node: Any, path: tuple[str, ...], chain: _Chain, found: dict[int, tuple[CommentToken, _Chain]]) -> None:
    if not isinstance(node, CommentedMap | CommentedSeq):
        return
    col = node.lc.col if node.lc.col is not None else 0
    chain = [*chain, (path, col)]
    ca = node.ca
    sources = [ca.comment, list(ca.items.values()), getattr(ca, "end", None)]
    for token in _tokens(sources):
        known = found.get(id(token))
        if known is None or len(chain) > len(known[1]):
            found[id(token)] = (token, chain)
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            _collect(value, (*path, str(key)), chain, found)
    else:
        for value in node:
            _collect(value, path, chain, found)


def _comment_slots(doc: Any) -> list[Slot]:
    found: dict[int, tuple[CommentToken, _Chain]] = {}
    _collect(doc, (), [], found)
    slots: list[Slot] = []
    for token, chain in found.values():
        lines = token.value.split("\n")
        for index, line in enumerate(lines):
            stripped = line.lstrip(" \t")
            if not stripped.startswith("#"):
                continue
            column = token.column if index == 0 else len(line) - len(stripped)
            owner = next((p for p, c in reversed(chain) if c <= column), chain[0][0])
            others = [p for p, _ in reversed(chain) if p != owner]
            indent = line[: len(line) - len(stripped)]
            slots.append(Slot(owner, Comment(stripped[1:]), _comment_setter(token, lines, index, indent),
                              comment=True, alt_paths=others))
    return slots


def _comment_setter(token: CommentToken, lines: list[str], index: int, indent: str) -> Any:
    def set_comment(value: Any) -> None:
        lines[index] = f"{indent}#{value}"
        token.value = "\n".join(lines)
    return set_comment
