"""Which files of a repository an app's render reads, so a commit elsewhere does not re-render it.

The app's own directory always counts. Kustomize references are followed: local ``resources``,
``bases``, ``components`` and patch / generator files, recursively through the kustomizations
they lead to (remote references are ignored: they do not live in this repository). Helm charts
and Jsonnet read below their directory plus the value files and library paths given. Anything
that cannot be worked out (an unreadable kustomization) widens the answer to the whole tree.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_LIST_KEYS = ("resources", "bases", "components", "crds", "configurations", "transformers", "generators", "validators")
WHOLE_TREE = frozenset({""})


def app_inputs(root: Path, path: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """Paths (relative to ``root``, "/"-separated, "" = everything) whose change may change the render."""
    found: set[str] = {_norm(path)} | {
        _norm(posixpath.join(path, e)) if not e.startswith("/") else _norm(e) for e in extra
    }
    pending = [_norm(path)]
    while pending:
        directory = pending.pop()
        kustomization = next(
            (root / directory / n for n in KUSTOMIZATION_FILES if (root / directory / n).is_file()), None
        )
        if kustomization is None:
            continue
        try:
            document = yaml.safe_load(kustomization.read_text()) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            return WHOLE_TREE
        if not isinstance(document, dict):
            return WHOLE_TREE
        for reference in _references(document):
            if "://" in reference or reference.startswith(("git@", "github.com/", "gitlab.com/")):
                continue
            target = _norm(posixpath.join(directory, reference))
            if target.startswith(".."):
                continue  # outside the repository: the render refuses it anyway
            if target not in found:
                found.add(target)
                if (root / target).is_dir():
                    pending.append(target)
    return frozenset(found)


def _references(document: dict) -> list[str]:
    refs: list[str] = []
    for key in _LIST_KEYS:
        refs.extend(item for item in document.get(key) or [] if isinstance(item, str))
    for key in ("patchesStrategicMerge",):
        refs.extend(item for item in document.get(key) or [] if isinstance(item, str) and "\n" not in item)
    for patch in (document.get("patches") or []) + (document.get("patchesJson6902") or []):
        if isinstance(patch, dict) and isinstance(patch.get("path"), str):
            refs.append(patch["path"])
    for key in ("configMapGenerator", "secretGenerator"):
        for generator in document.get(key) or []:
            if not isinstance(generator, dict):
                continue
            for item in (generator.get("files") or []) + (generator.get("envs") or []):
                if isinstance(item, str):
                    refs.append(item.partition("=")[2] or item)
            if isinstance(generator.get("env"), str):
                refs.append(generator["env"])
    helm = document.get("helmGlobals") or {}
    if isinstance(helm, dict) and isinstance(helm.get("chartHome"), str):
        refs.append(helm["chartHome"])
    return refs


def touches(changed: list[str] | None, inputs: frozenset[str]) -> bool:
    """Does any changed path fall on or under one of ``inputs``? ``None`` (unknown) means yes."""
    if changed is None or "" in inputs:
        return True
    for name in changed:
        for prefix in inputs:
            if name == prefix or name.startswith(prefix + "/"):
                return True
    return False


def _norm(path: str) -> str:
    normal = posixpath.normpath(path.strip("/")) if path.strip("/") else ""
    return "" if normal == "." else normal
