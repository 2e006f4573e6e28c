"""JSON, dotenv, INI and binary documents for SOPS, and choosing a store by file name.

dotenv and INI have no nesting, so the metadata is flattened into ``sops_``-prefixed keys
(dotenv) or a ``[sops]`` section (INI), with newlines written as ``\\n``. A binary file is
stored as the JSON document ``{"data": <whole file>, "sops": {...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from tether.errors import SecretsError
from tether.secrets.cipher import Comment
from tether.secrets.metadata import flatten, unflatten
from tether.secrets.tree import Slot
from tether.secrets.yamlstore import YamlDocument

FORMATS = ("yaml", "json", "dotenv", "ini", "binary")
_BY_SUFFIX = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".env": "dotenv", ".ini": "ini"}


class Document(Protocol):
    format: str
    metadata: dict[str, Any] | None

    def slots(self) -> list[Slot]: ...
    def dump(self) -> bytes: ...


def format_for(path: Path | str, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise SecretsError(f"unknown format {explicit!r} (one of {', '.join(FORMATS)})")
        return explicit
    name = Path(path).name
    suffix = Path(name).suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    if name == ".env" or name.startswith(".env.") or name.endswith(".env"):
        return "dotenv"
    return "binary"


def load(data: bytes, fmt: str, where: str) -> Document:
    loader = {
        "yaml": YamlDocument.load,
        "json": JsonDocument.load,
        "dotenv": DotenvDocument.load,
        "ini": IniDocument.load,
        "binary": BinaryDocument.load,
    }[fmt]
    return loader(data, where)  # type: ignore[operator]


def _setter(container: Any, key: Any) -> Any:
    def set_value(value: Any) -> None:
        container[key] = value

    return set_value


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[Slot]:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list):
                yield from _walk(value, (*path, key))
            else:
                yield Slot((*path, key), value, _setter(node, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, dict | list):
                yield from _walk(value, path)
            else:
                yield Slot(path, value, _setter(node, index))


def _integral_floats(node: Any) -> Any:
    # SOPS reads every JSON number as a float and writes 1.0 back as 1; do the same
    if isinstance(node, dict):
        return {k: _integral_floats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_integral_floats(v) for v in node]
    if isinstance(node, float) and node.is_integer() and abs(node) < 2**53:
        return int(node)
    return node


class JsonDocument:
    format = "json"

    def __init__(self, data: Any, metadata: dict[str, Any] | None) -> None:
        self.data = data
        self.metadata = metadata

    @classmethod
    def load(cls, data: bytes, where: str) -> JsonDocument:
        try:
            tree = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            line = f":{error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
            raise SecretsError(f"{where}{line}: not valid JSON: {getattr(error, 'msg', error)}") from None
        metadata = tree.pop("sops", None) if isinstance(tree, dict) else None
        return cls(tree, metadata)

    def slots(self) -> list[Slot]:
        if not isinstance(self.data, dict | list):
            raise SecretsError("a JSON document must be an object or an array to be encrypted")
        return list(_walk(self.data, ()))

    def dump(self) -> bytes:
        tree = _integral_floats(self.data)
        if self.metadata is not None:
            if not isinstance(tree, dict):
                raise SecretsError("SOPS metadata can only be added to a JSON object")
            tree = {**tree, "sops": self.metadata}
        return (json.dumps(tree, indent="\t", ensure_ascii=False) + "\n").encode()


class BinaryDocument:
    format = "binary"

    def __init__(self, data: Any, metadata: dict[str, Any] | None) -> None:
        self.data = data
        self.metadata = metadata

    @classmethod
    def load(cls, data: bytes, where: str) -> BinaryDocument:
        if data.lstrip().startswith(b"{"):
            try:
                tree = json.loads(data)
            except ValueError:
                tree = None
            if isinstance(tree, dict) and "sops" in tree and "data" in tree:
                return cls(tree["data"], tree["sops"])
        return cls(data, None)

    def slots(self) -> list[Slot]:
        return [Slot(("data",), self.data, self._set)]

    def _set(self, value: Any) -> None:
        self.data = value

    def dump(self) -> bytes:
        if self.metadata is None:
            return self.data if isinstance(self.data, bytes) else str(self.data).encode()
        data = "" if self.data == b"" else self.data  # an empty file stays empty, unencrypted
        return (json.dumps({"data": data, "sops": self.metadata}, indent="\t") + "\n").encode()


class DotenvDocument:
    format = "dotenv"

    def __init__(self, entries: list[Any], metadata: dict[str, Any] | None) -> None:
        self.entries = entries  # [key, value] pairs and Comment items, in order
        self.metadata = metadata

    @classmethod
    def load(cls, data: bytes, where: str) -> DotenvDocument:
        entries: list[Any] = []
        flat: dict[str, str] = {}
        for number, line in enumerate(data.decode("utf-8", errors="surrogateescape").splitlines(), 1):
            if not line.strip():
                continue
            if line.lstrip().startswith("#"):
                entries.append(Comment(line.lstrip()[1:]))
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise SecretsError(f"{where}:{number}: invalid dotenv line (expected KEY=VALUE)")
            value = value.replace("\\n", "\n")
            if key.startswith("sops_"):
                flat[key[5:]] = value
            else:
                entries.append([key, value])
        return cls(entries, unflatten(flat) if flat else None)

    def slots(self) -> list[Slot]:
        slots = []
        for entry in self.entries:
            if isinstance(entry, list):
                slots.append(Slot((entry[0],), entry[1], _setter(entry, 1)))
        for index, entry in enumerate(self.entries):
            if isinstance(entry, Comment):
                slots.append(Slot((), entry, self._comment_setter(index), comment=True))
        return slots

    def _comment_setter(self, index: int) -> Any:
        def set_comment(value: Any) -> None:
            self.entries[index] = Comment(value)

        return set_comment

    def dump(self) -> bytes:
        lines = []
        for entry in self.entries:
            if isinstance(entry, Comment):
                lines.append(f"#{entry}")
            else:
                lines.append(f"{entry[0]}={_env_value(entry[1])}")
        if self.metadata is not None:
            flat = sorted(flatten(self.metadata).items())
            lines += ["sops_{}={}".format(k, v.replace("\n", "\\n")) for k, v in flat]
        return ("\n".join(lines) + "\n").encode(errors="surrogateescape")


def _env_value(value: Any) -> str:
    from tether.secrets.cipher import to_bytes

    text = value if isinstance(value, str) else to_bytes(value)[0].decode()
    return text.replace("\n", "\\n")


class IniDocument:
    format = "ini"

    def __init__(self, sections: list[tuple[str, list[Any]]], metadata: dict[str, Any] | None) -> None:
        self.sections = sections  # (name, [[key, value] | Comment, ...])
        self.metadata = metadata

    @classmethod
    def load(cls, data: bytes, where: str) -> IniDocument:
        sections: list[tuple[str, list[Any]]] = []
        pending: list[Any] = []  # comments before the first section belong to it
        current: list[Any] | None = None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretsError(f"{where}: an INI file must be UTF-8 text") from None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line:
                continue
            if line[0] in ";#":
                (pending if current is None else current).append(Comment(line[1:].strip()))
            elif line.startswith("[") and line.endswith("]"):
                current = [*pending]
                pending = []
                sections.append((line[1:-1].strip(), current))
            else:
                key, sep, value = line.partition("=")
                if not sep:
                    key, sep, value = line.partition(":")
                if not sep:
                    raise SecretsError(f"{where}:{number}: invalid INI line (expected key = value)")
                if current is None:
                    current = [*pending]
                    pending = []
                    sections.append(("DEFAULT", current))
                value, comment = _ini_parse_value(value.strip())
                if comment is not None:
                    current.append(Comment(comment))  # an inline comment goes above its key, as SOPS does
                current.append([key.strip(), value])
        metadata = None
        for index, (name, entries) in enumerate(sections):
            if name == "sops":
                flat = {e[0]: e[1].replace("\\n", "\n") for e in entries if isinstance(e, list)}
                metadata = unflatten(flat)
                del sections[index]
                break
        return cls(sections, metadata)

    def slots(self) -> list[Slot]:
        slots = []
        for name, entries in self.sections:
            for entry in entries:
                if isinstance(entry, list):
                    slots.append(Slot((name, entry[0]), entry[1], _setter(entry, 1)))
        for name, entries in self.sections:
            for index, entry in enumerate(entries):
                if isinstance(entry, Comment):
                    slots.append(Slot((name,), entry, _comment_setter(entries, index), comment=True))
        return slots

    def dump(self) -> bytes:
        sections = list(self.sections)
        if self.metadata is not None:
            flat = flatten(self.metadata)
            sections.append(("sops", [[k, v.replace("\n", "\\n")] for k, v in flat.items()]))
        blocks = []
        for name, entries in sections:
            width = max((len(e[0]) for e in entries if isinstance(e, list)), default=0)
            lines = [] if name == "DEFAULT" else [f"[{name}]"]
            for entry in entries:
                if isinstance(entry, Comment):
                    lines.insert(len(lines), f"; {entry}")
                else:
                    lines.append(f"{entry[0].ljust(width)} = {_ini_value(entry[1])}")
            # comments that precede a section header are written above it
            blocks.append("\n".join(_hoist_comments(lines, name)))
        return ("\n\n".join(blocks) + "\n").encode()


def _hoist_comments(lines: list[str], name: str) -> list[str]:
    if name == "DEFAULT" or len(lines) < 2 or not lines[1].startswith("; "):
        return lines
    count = 0
    while 1 + count < len(lines) and lines[1 + count].startswith("; "):
        count += 1
    return [*lines[1 : 1 + count], lines[0], *lines[1 + count :]]


def _comment_setter(entries: list[Any], index: int) -> Any:
    def set_comment(value: Any) -> None:
        entries[index] = Comment(value)

    return set_comment


def _ini_parse_value(text: str) -> tuple[str, str | None]:
    """Value and inline comment, read the way SOPS' INI library reads them."""
    if len(text) >= 6 and text.startswith('"""') and text.endswith('"""'):
        return text[3:-3], None
    if len(text) >= 2 and text[0] in "\"'`" and text[-1] == text[0]:
        return text[1:-1], None
    cut = min((i for i in (text.find(";"), text.find("#")) if i >= 0), default=-1)
    if cut >= 0:
        return text[:cut].strip(), text[cut + 1 :].strip()
    return text, None


def _ini_value(value: Any) -> str:
    from tether.secrets.cipher import to_bytes

    text = value if isinstance(value, str) else to_bytes(value)[0].decode()
    if "\n" in text or "`" in text:
        return f'"""{text}"""'
    if "#" in text or ";" in text:
        return f"`{text}`"
    if text != text.strip() or (len(text) >= 2 and text[0] in "\"'" and text[-1] == text[0]):
        return f'"{text}"'
    return text
