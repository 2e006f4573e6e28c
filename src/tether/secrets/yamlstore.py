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
import math
import re
from collections.abc import Iterator
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.compat import ordereddict
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString
from ruamel.yaml.tokens import CommentToken

from tether.errors import SecretsError
from tether.secrets.cipher import Comment
from tether.secrets.tree import Slot

_Chain = list[tuple[tuple[str, ...], int]]


def _yaml(indent: tuple[int, int] = (4, 4)) -> YAML:
    mapping, offset = indent
    yaml = YAML()
    yaml.indent(mapping=mapping, sequence=max(mapping, offset + 2), offset=offset)
    yaml.width = 1 << 20  # never fold long ENC[...] strings
    yaml.preserve_quotes = True
    yaml.representer.add_representer(type(None), _represent_null)
    yaml.representer.add_representer(float, _represent_float)
    return yaml


def _represent_float(representer: Any, value: float) -> Any:
    # "1.0e+20", not "1e+20": YAML 1.1 readers need the dot to see a float
    if math.isnan(value):
        text = ".nan"
    elif math.isinf(value):
        text = ".inf" if value > 0 else "-.inf"
    else:
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


_OPENER = re.compile(r"^( *)[^\s#-][^#]*:[ \t]*(#.*)?$")  # "key:" with the value on the next lines


def guess_indent(text: str) -> tuple[int, int]:
    """The file's mapping indentation and list dash offset, so a round trip keeps its layout.

    Measured where a ``key:`` line opens a block: the next line's extra indentation is the
    mapping indent (a key) or the dash offset (a list item)."""
    mapping: int | None = None
    offset: int | None = None
    opener: int | None = None  # indentation of the previous line if it opened a block
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#") or stripped.startswith("---"):
            continue
        indent = len(line) - len(stripped)
        if opener is not None and indent >= opener:
            if stripped.startswith("-") and offset is None:
                offset = indent - opener
            elif not stripped.startswith("-") and mapping is None and indent > opener:
                mapping = indent - opener
        match = _OPENER.match(line)
        opener = indent if match and not stripped.startswith("-") else None
        if mapping is not None and offset is not None:
            break
    if mapping is None or not 2 <= mapping <= 8:
        mapping = 2 if offset in (0, 2) else 4  # lists in 2-space style suggest 2-space mappings
    if offset is None or offset > mapping:
        offset = 4 if mapping == 4 else 0
    return mapping, offset


_YAML11 = yaml.resolver.Resolver()
_YAML11_EXTRA = {"y", "Y", "n", "N"}  # booleans for go-yaml v2 (Kubernetes), not for PyYAML


def ambiguous_in_yaml11(text: str) -> bool:
    """A string that a YAML 1.1 reader (Kubernetes, PyYAML) would take for another type if plain."""
    if text in _YAML11_EXTRA:
        return True
    return _YAML11.resolve(yaml.ScalarNode, text, (True, False)) != "tag:yaml.org,2002:str"


def _represent_null(representer: Any, _data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


class YamlDocument:
    format = "yaml"

    def __init__(self, docs: list[Any], metadata: dict[str, Any] | None, indent: tuple[int, int] = (4, 4)) -> None:
        self.docs = docs
        self.metadata = metadata
        self.indent = indent

    @classmethod
    def load(cls, data: bytes, where: str) -> YamlDocument:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretsError(f"{where}: a YAML file must be UTF-8 text") from None
        try:
            docs = [d for d in _yaml().load_all(text) if d is not None]
        except YAMLError as error:
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
        return cls(docs, metadata, guess_indent(text))

    def slots(self) -> list[Slot]:
        if not self.docs:
            raise SecretsError("the YAML file holds no document")
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
        for doc in docs:
            _lift_list_comments(doc)
        _yaml(self.indent).dump_all(docs, out)
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
        if isinstance(value, str) and not isinstance(value, Comment) and not value.startswith("ENC["):
            if "\n" in value:
                value = LiteralScalarString(value)  # multi-line text reads best as a | block
            elif ambiguous_in_yaml11(value):
                value = DoubleQuotedScalarString(value)  # stays a string for YAML 1.1 readers too
        # bypass ruamel's "keep the old scalar style", which would put ENC[...] in a | block
        if isinstance(container, CommentedMap):
            ordereddict.__setitem__(container, key, value)
        elif isinstance(container, list):
            list.__setitem__(container, key, value)
        else:
            container[key] = value

    return set_value


def _lift_list_comments(node: Any) -> None:
    """SOPS writes a comment inside a list as an ENC[...,type:comment] item; make it a comment again."""
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        _lift_list_comments(child)
    if not isinstance(node, CommentedSeq) or not any(isinstance(item, Comment) for item in node):
        return
    pad = " " * (node.lc.col or 0)
    kept: list[Any] = []
    items: dict[int, list[Any]] = {}
    pending: list[str] = []  # comment lines waiting to follow kept[-1] (or open the list)

    def attach(index: int) -> None:
        if not pending:
            return
        text = "\n".join(pending) + "\n"
        pending.clear()
        if index < 0:
            node.ca.comment = [None, [CommentToken(text, CommentMark(0), None)]]
            return
        slot = items.setdefault(index, [None, None, None, None])
        if slot[0] is not None:
            slot[0].value = slot[0].value.rstrip("\n") + "\n" + text
        else:
            slot[0] = CommentToken("\n" + text, CommentMark(0), None)

    for index, item in enumerate(list(node)):
        slots = node.ca.items.get(index)
        if isinstance(item, Comment):
            pending.append(f"{pad}#{item}")
            # real comments ruamel attached after this pseudo-item follow it
            pending += [line for t in _tokens(slots) for line in t.value.split("\n") if line.strip()]
            continue
        attach(len(kept) - 1)
        kept.append(item)
        if slots:
            items[len(kept) - 1] = slots
    if not kept:
        raise SecretsError("a list holds only comments; it cannot be written back")
    attach(len(kept) - 1)
    list.__setitem__(node, slice(None), kept)
    node.ca.items.clear()
    node.ca.items.update(items)


def _tokens(obj: Any) -> Iterator[CommentToken]:
    if isinstance(obj, CommentToken):
        yield obj
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _tokens(item)


class _Found:
    """Where a comment token sits: the chain of enclosing collections, and whether its first
    line ends a line holding a key or item (an end-of-line comment)."""

    def __init__(self, token: CommentToken, chain: _Chain, eol: bool, pinned: bool) -> None:
        self.token, self.chain, self.eol, self.pinned = token, chain, eol, pinned


def _collect(node: Any, path: tuple[str, ...], chain: _Chain, found: dict[int, _Found]) -> None:
    if not isinstance(node, CommentedMap | CommentedSeq):
        return
    parent_chain = chain
    col = node.lc.col if node.lc.col is not None else 0
    chain = [*chain, (path, col)]
    ca = node.ca
    eol_slot = 2 if isinstance(node, CommentedMap) else 0
    entries: list[tuple[Any, _Chain, bool, bool]] = []
    if ca.comment:
        # comment[0] ends the line of the key that opens this collection: it belongs to the parent
        entries.append((ca.comment[0], parent_chain or chain, True, True))
        entries += [(t, chain, False, False) for t in ca.comment[1:]]
    for slots in ca.items.values():
        entries += [(t, chain, i == eol_slot, False) for i, t in enumerate(slots or [])]
    entries.append((getattr(ca, "end", None), chain, False, False))
    for obj, owner_chain, eol, pinned in entries:
        for token in _tokens(obj):
            known = found.get(id(token))
            if known is None or (not known.pinned and (pinned or len(owner_chain) > len(known.chain))):
                found[id(token)] = _Found(token, owner_chain, eol, pinned)
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            _collect(value, (*path, str(key)), chain, found)
    else:
        for value in node:
            _collect(value, path, chain, found)


def _comment_slots(doc: Any) -> list[Slot]:
    found: dict[int, _Found] = {}
    _collect(doc, (), [], found)
    slots: list[Slot] = []
    for entry in found.values():
        token, chain = entry.token, entry.chain
        lines = token.value.split("\n")
        for index, line in enumerate(lines):
            stripped = line.lstrip(" \t")
            if not stripped.startswith("#"):
                continue
            column = token.column if index == 0 else len(line) - len(stripped)
            owner = next((p for p, c in reversed(chain) if c <= column), chain[0][0])
            others = [p for p, _ in reversed(chain) if p != owner]
            indent = line[: len(line) - len(stripped)]
            eol = entry.eol and index == 0
            slots.append(
                Slot(
                    owner,
                    Comment(stripped[1:]),
                    _comment_setter(token, lines, index, indent, eol),
                    comment=True,
                    alt_paths=others,
                )
            )
    return slots


def _comment_setter(token: CommentToken, lines: list[str], index: int, indent: str, eol: bool) -> Any:
    def set_comment(value: Any) -> None:
        lines[index] = f"{indent}#{value}"
        token.value = "\n".join(lines)
        if eol:
            token.column = 0  # the line's length changed; keep the comment one space after the value

    return set_comment
