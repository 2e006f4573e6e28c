"""Converting plaintext between formats, for ``--input-type`` / ``--output-type``."""

from __future__ import annotations

import io
import json
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from tether.errors import SecretsError


def _load(data: bytes, fmt: str, where: str) -> Any:
    from tether.secrets.stores import load

    if fmt == "yaml":
        try:
            docs = list(YAML(typ="safe").load_all(data))
        except YAMLError as error:
            problem = getattr(error, "problem", None) or "syntax error"
            raise SecretsError(f"{where}: not valid YAML: {problem}") from None
        if len(docs) != 1:
            raise SecretsError(f"{where}: only a single YAML document can be converted")
        return docs[0]
    document = load(data, fmt, where)
    if fmt == "json":
        return document.data  # type: ignore[attr-defined]
    if fmt == "dotenv":
        return {e[0]: e[1] for e in document.entries if isinstance(e, list)}  # type: ignore[attr-defined]
    if fmt == "ini":
        return {name: {e[0]: e[1] for e in entries if isinstance(e, list)} for name, entries in document.sections}  # type: ignore[attr-defined]
    return {"data": data.decode("utf-8", errors="strict")}


def _flat_scalar(value: Any, where: str) -> str:
    if isinstance(value, dict | list):
        raise SecretsError(f"{where}: nested values cannot be written as dotenv/INI")
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _represent_str(representer: Any, text: str) -> Any:
    from tether.secrets.yamlstore import ambiguous_in_yaml11

    style = '"' if ambiguous_in_yaml11(text) else None
    return representer.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def convert(data: bytes, source: str, target: str, where: str) -> bytes:
    """Re-express a plaintext document in another format; comments are not carried over."""
    if source == target:
        return data
    if source == "binary" or target == "binary":
        if target == "binary":
            return data
        raise SecretsError(f"{where}: a binary file cannot be converted to {target}")
    try:
        tree = _load(data, source, where)
    except UnicodeDecodeError:
        raise SecretsError(f"{where}: not UTF-8 text") from None
    if target == "json":
        return (json.dumps(tree, indent="\t", ensure_ascii=False, default=str) + "\n").encode()
    if target == "yaml":
        out = io.StringIO()
        yaml = YAML()
        yaml.indent(mapping=4, sequence=6, offset=4)
        yaml.representer.add_representer(str, _represent_str)
        yaml.dump(tree, out)
        return out.getvalue().encode()
    if not isinstance(tree, dict):
        raise SecretsError(f"{where}: only a mapping can be written as {target}")
    if target == "dotenv":
        lines = [f"{k}={_flat_scalar(v, where)}".replace("\n", "\\n") for k, v in tree.items()]
        return ("\n".join(lines) + "\n").encode()
    blocks = []
    for name, section in tree.items():
        if not isinstance(section, dict):
            raise SecretsError(f"{where}: INI needs a mapping of sections")
        blocks.append("\n".join([f"[{name}]"] + [f"{k} = {_flat_scalar(v, where)}" for k, v in section.items()]))
    return ("\n\n".join(blocks) + "\n").encode()
