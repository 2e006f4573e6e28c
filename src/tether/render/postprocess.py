"""Steps applied to every rendered object, whatever the renderer.

- ``${VAR}`` / ``${VAR:=default}`` substitution in string values (never in keys, and on the
  parsed object rather than the text, so a value cannot inject YAML structure), only when the
  caller passes variables (it is opt-in, as Flux's postBuild: shell scripts in ConfigMaps use
  the same syntax). ``$${VAR}`` is the escape for a literal ``${VAR}``. A variable without a
  value or default is an error (an empty string silently deployed is worse); one run names
  every such variable of every object. Opt out per object with the annotation
  ``tether.dev/substitute: disabled``.
- namespace defaulting for namespaced objects that have none;
- the labels ``app.kubernetes.io/managed-by: tether`` (unless the object names its own manager, as a
  Helm chart's ``Helm``) and ``tether.dev/app: <app>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tether.errors import RenderError
from tether.model import Manifest
from tether.render.scope import ScopeResolver

SUBSTITUTE_ANNOTATION = "tether.dev/substitute"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
APP_LABEL = "tether.dev/app"
MANAGED_BY_VALUE = "tether"

_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::=([^}]*))?\}")


def _substitute_string(text: str, variables: dict[str, str], path: str, missing: list[str]) -> str:
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in variables:
            return variables[name]
        if default is not None:
            return default
        missing.append(f"${{{name}}} at {path}")
        return match.group(0)

    return _VAR.sub(replace, text)


def _substitute_in_place(
    container: dict[str, Any] | list[Any], variables: dict[str, str], path: str, missing: list[str]
) -> None:
    """Replace ``${...}`` in string values, touching only the strings that contain one."""
    items = container.items() if isinstance(container, dict) else enumerate(container)
    for key, value in items:
        if isinstance(value, str):
            if "${" in value:
                container[key] = _substitute_string(value, variables, _join(path, key), missing)  # type: ignore
        elif isinstance(value, dict | list):
            _substitute_in_place(value, variables, _join(path, key), missing)


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def substitution_disabled(obj: dict[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(SUBSTITUTE_ANNOTATION, "")).lower() == "disabled"


def substitute(manifest: Manifest, variables: dict[str, str]) -> None:
    """Substitute in place; a RenderError names every variable of the object without a value."""
    if substitution_disabled(manifest.obj):
        return
    missing: list[str] = []
    _substitute_in_place(manifest.obj, variables, "", missing)
    if missing:
        names = sorted({m.split(" at ")[0][2:-1] for m in missing})
        what = f"variable {missing[0]} has" if len(missing) == 1 else f"variables {', '.join(missing)} have"
        raise RenderError(
            f"{manifest.where()}: {what} no value and no default (pass "
            f"{' '.join(f'--var {name}=VALUE' for name in names)}, write ${{{names[0]}:=default}}, or annotate "
            f"the object {SUBSTITUTE_ANNOTATION}: disabled)"
        )


def check_object(manifest: Manifest) -> None:
    """Minimal shape every object needs before anything else looks at it."""
    obj = manifest.obj
    where = str(manifest.source) if manifest.source else "<rendered>"
    if not isinstance(obj, dict):
        raise RenderError(f"{where}: expected a Kubernetes object (a mapping), got {type(obj).__name__}")
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise RenderError(f"{where}: object has no {key}")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        raise RenderError(f"{where}: {obj['kind']} has no metadata.name")
    for field in ("labels", "annotations"):
        if meta.get(field) is not None and not isinstance(meta[field], dict):
            raise RenderError(f"{where}: metadata.{field} must be a mapping")


def postprocess(
    manifests: list[Manifest],
    *,
    app: str,
    namespace: str,
    variables: dict[str, str] | None,
    add_labels: bool = True,
    on_error: Callable[[RenderError], None] | None = None,
) -> list[Manifest]:
    """Expand List kinds, substitute variables, default namespaces and add labels, in place.

    ``on_error``: called with the error of a bad object, which is then left out, instead of raising."""
    expanded: list[Manifest] = []
    for manifest in manifests:
        obj = manifest.obj
        if (
            isinstance(obj, dict)
            and isinstance(obj.get("kind"), str)
            and obj["kind"].endswith("List")
            and isinstance(obj.get("items"), list)
        ):
            expanded.extend(Manifest(item, manifest.source) for item in obj["items"])
        else:
            expanded.append(manifest)
    checked: list[Manifest] = []
    unset: list[RenderError] = []  # every object's missing variables, reported together
    for manifest in expanded:
        try:
            check_object(manifest)
        except RenderError as error:
            if on_error is None:
                raise
            on_error(error)
            continue
        if variables is not None:
            try:
                substitute(manifest, variables)
            except RenderError as error:
                if on_error is not None:
                    on_error(error)
                else:
                    unset.append(error)
                continue
        checked.append(manifest)
    if unset:
        raise RenderError("\n".join(str(e) for e in unset))
    expanded = checked
    scopes = ScopeResolver(m.obj for m in expanded)
    for manifest in expanded:
        meta = manifest.obj["metadata"]
        if namespace and not meta.get("namespace") and scopes.namespaced(manifest.obj):
            meta["namespace"] = namespace
        if add_labels:
            labels = meta.get("labels") or {}
            labels.setdefault(MANAGED_BY_LABEL, MANAGED_BY_VALUE)  # a chart's own (Helm) is kept
            if app:
                labels[APP_LABEL] = app
            meta["labels"] = labels
    return expanded
