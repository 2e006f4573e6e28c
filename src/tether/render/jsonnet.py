"""Jsonnet through the official bindings, with the ``jsonnet`` CLI's ext vars, TLAs and -J paths.

Imports are resolved by our own callback so a file can only import from the source tree and
the given library paths (a repository must not be able to ``importstr '/etc/passwd'``).
Evaluation runs in a child process so an endless recursion is stopped at the time limit.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tether.errors import RenderError
from tether.model import Manifest, SourceLocation
from tether.render.files import is_inside, relative, resolve
from tether.render.isolate import run_isolated
from tether.render.limits import Limits

MAIN_NAMES = ("main.jsonnet", "index.jsonnet")


def main_file(directory: Path) -> Path | None:
    for name in MAIN_NAMES:
        if (directory / name).is_file():
            return directory / name
    candidates = sorted(directory.glob("*.jsonnet"))
    return candidates[0] if len(candidates) == 1 else None


def _evaluate_in_child(main: str, root: str, jpaths: list[str], args: dict[str, dict[str, str]], max_bytes: int) -> str:
    import _jsonnet

    allowed = [Path(root).resolve(), *(Path(p).resolve() for p in jpaths)]

    def import_callback(base: str, rel: str) -> tuple[str, bytes]:
        for directory in [Path(base), *(Path(p) for p in jpaths)]:
            try:
                candidate = (directory / rel).resolve()
            except (RuntimeError, OSError):
                raise RuntimeError(f"import {rel!r}: symlink loop") from None
            if not candidate.is_file():
                continue
            if not any(candidate == a or a in candidate.parents for a in allowed):
                raise RuntimeError(
                    f"import {rel!r} resolves outside the source tree and library paths (to "
                    f"{candidate}); refusing to read it"
                )
            if candidate.stat().st_size > max_bytes:
                raise RuntimeError(f"import {rel!r} is over the size limit of {max_bytes} bytes")
            return str(directory / rel), candidate.read_bytes()
        raise RuntimeError(f"import {rel!r} not found")

    try:
        return _jsonnet.evaluate_file(
            main,
            import_callback=import_callback,
            max_trace=20,
            ext_vars=args["ext_str"],
            ext_codes=args["ext_code"],
            tla_vars=args["tla_str"],
            tla_codes=args["tla_code"],
        )
    except RuntimeError as error:
        # paths relative to the main file's directory, like the main file's own name in the prefix
        raise RenderError(_clean(str(error), [str(Path(main).parent)])) from error


def _clean(message: str, prefixes: list[str]) -> str:
    """``file:line:col: RUNTIME ERROR: msg`` with paths relative to the source, trace dropped."""
    for prefix in prefixes:
        message = message.replace(prefix.rstrip("/") + "/", "")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return "jsonnet evaluation failed"
    head = lines[0]
    location = next((line.split()[0] for line in lines[1:] if re.match(r"^\S+:\d+:\d+", line)), "")
    return f"{location}: {head}" if location and location not in head else head


def _objects(value: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """Accept an object, a list, or a (nested) mapping of named objects, as kubecfg/tanka do."""
    if isinstance(value, list):
        return [o for i, item in enumerate(value) for o in _objects(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        if "kind" in value and "apiVersion" in value:
            return [(path, value)]
        return [o for key in sorted(value) for o in _objects(value[key], f"{path}.{key}")]
    if value is None:
        return []
    raise RenderError(f"{path or '<output>'}: expected Kubernetes objects, got {type(value).__name__}")


def library_paths(jpaths: tuple[str, ...], root: Path) -> list[str]:
    """-J directories: a relative one is inside the source tree (``vendor``) and must stay there; an absolute
    one is the operator's own library directory, named on the command line."""
    out = []
    root_resolved = resolve(root, root)
    for jpath in jpaths:
        path = Path(jpath)
        if path.is_absolute():
            out.append(str(resolve(path, path)))
            continue
        lexical = Path(os.path.normpath(root.absolute() / path))
        resolved = resolve(root / path, root)
        if not (is_inside(lexical, Path(os.path.normpath(root.absolute()))) and is_inside(resolved, root_resolved)):
            raise RenderError(
                f"-J {jpath}: a relative library path is taken inside the source tree, and this one "
                f"leads outside it (to {resolved}); pass an absolute path for a library of your own"
            )
        out.append(str(resolved))
    return out


def render_jsonnet(
    directory: Path,
    root: Path,
    *,
    jpaths: tuple[str, ...],
    ext_str: dict[str, str],
    ext_code: dict[str, str],
    tla_str: dict[str, str],
    tla_code: dict[str, str],
    timeout: Limits | float,
    max_bytes: int,
    main: Path | None = None,
) -> list[Manifest]:
    main = main or main_file(directory)
    if main is None:
        raise RenderError(f"{relative(directory, root)}: no main.jsonnet (or single *.jsonnet file) to evaluate")
    rel = relative(main, root)
    args = {"ext_str": ext_str, "ext_code": ext_code, "tla_str": tla_str, "tla_code": tla_code}
    output = run_isolated(
        _evaluate_in_child,
        (str(main), str(resolve(root, root)), library_paths(jpaths, root), args, max_bytes),
        timeout,
        rel,
    )
    try:
        value = json.loads(output)
    except json.JSONDecodeError as error:  # pragma: no cover - the VM always emits JSON
        raise RenderError(f"{rel}: output is not JSON: {error}") from error
    return [Manifest(obj, SourceLocation(rel, None, i)) for i, (_p, obj) in enumerate(_objects(value, ""))]
