"""Helm charts rendered offline with Helm's own Go library (``helm-python-sdk``, no helm binary).

Values compose as ``helm template -f A -f B --set k=v --set-string k=v`` does: chart defaults,
then each values file (maps merge, everything else replaces), then each ``--set``. CRDs from
the chart's ``crds/`` directory are included (a GitOps apply installs them, unlike
``helm template`` without ``--include-crds``). Rendering runs in a child process so a
template that never ends can be stopped at the time limit.

``.Capabilities.KubeVersion`` is the Kubernetes version tether renders for (``--kube-version``, or
the target cluster's), not Helm's built-in default; ``.Capabilities.APIVersions`` is Helm's
built-in list plus the given ``group/version`` and ``group/version/Kind`` entries (the cluster's
served APIs when one is known). Dependencies missing from ``charts/`` are fetched first
(``tether.render.helm_deps``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tether.errors import RenderError
from tether.model import Manifest, SourceLocation
from tether.render.files import decode, is_inside, load_yaml_documents, read_bytes, relative
from tether.render.helm_deps import chart_with_dependencies
from tether.render.helm_fetch import FetchSettings, default_cache_dir
from tether.render.isolate import run_isolated
from tether.render.limits import Limits


def merge_values(base: dict[str, Any], override: dict[str, Any], indexed: bool = False) -> dict[str, Any]:
    """Helm's coalescing for user values: nested maps merge, any other value replaces.

    ``indexed``: the override came from a ``--set`` with ``name[i]`` syntax, which Helm applies *into*
    the existing list (element ``i`` only; ``None`` marks the elements it did not name).
    """
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = merge_values(current, value, indexed)
        elif indexed and isinstance(value, list) and isinstance(current, list):
            merged[key] = _merge_indexed(current, value)
        else:
            merged[key] = value
    return merged


def _merge_indexed(current: list[Any], override: list[Any]) -> list[Any]:
    out = list(current) + [None] * max(0, len(override) - len(current))
    for index, item in enumerate(override):
        if item is None:
            continue
        if isinstance(item, dict) and isinstance(out[index], dict):
            out[index] = merge_values(out[index], item, True)
        elif isinstance(item, list) and isinstance(out[index], list):
            out[index] = _merge_indexed(out[index], item)
        else:
            out[index] = item
    return out


def _values_file(name: str, chart_dir: Path, root: Path, max_bytes: int) -> dict[str, Any]:
    """A values file: a relative name is looked up in the chart directory first, where it must stay inside the
    source tree (by ``..`` and through symlinks); else an absolute path or one relative to the working
    directory, the operator's own file named on the command line."""
    path = Path(name)
    in_chart = chart_dir / path
    if not path.is_absolute() and os.path.lexists(in_chart):
        lexical = Path(os.path.normpath(in_chart.absolute()))
        if not (is_inside(lexical, Path(os.path.normpath(root.absolute()))) or is_inside(lexical, root.resolve())):
            raise RenderError(f"values file {name}: points outside the source tree (to {lexical}); refusing to read it")
        candidate, base = in_chart, root  # inside the source: same checks as manifests (symlinks, size)
    elif path.is_file():
        candidate, base = path, path.parent
    else:
        raise RenderError(f"values file {name}: not found (looked in the chart directory and the working directory)")
    rel = str(name)
    text = decode(read_bytes(candidate, base, max_bytes), rel)
    values: dict[str, Any] = {}
    for _index, _line, data in load_yaml_documents(text, rel):
        if not isinstance(data, dict):
            raise RenderError(f"{rel}: a values file must be a mapping, not {type(data).__name__}")
        values = merge_values(values, data)
    return values


def user_values(
    chart_dir: Path,
    root: Path,
    values_files: tuple[str, ...],
    set_values: tuple[str, ...],
    set_string_values: tuple[str, ...],
    max_bytes: int,
) -> dict[str, Any]:
    import helm_python

    values: dict[str, Any] = {}
    for name in values_files:
        values = merge_values(values, _values_file(name, chart_dir, root, max_bytes))
    for parse, expressions in (
        (helm_python.parse_set_string, set_values),
        (helm_python.parse_set_string_values, set_string_values),
    ):
        for expression in expressions:
            try:
                values = merge_values(values, parse(expression), indexed="[" in expression)
            except helm_python.HelmError as error:
                raise RenderError(f"--set {expression}: {error}") from error
    return values


def helm_kube_version(version: str) -> str:
    """``1.32`` -> ``v1.32.0``; ``v1.29.3`` / ``1.29.3`` -> ``v1.29.3`` (Helm wants a full semver)."""
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?([-+].*)?$", version.strip())
    if not match:
        raise RenderError(f"kube version {version!r}: expected MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 1.32")
    major, minor, patch, rest = match.groups()
    return f"v{major}.{minor}.{patch or 0}{rest or ''}"


def _render_with_capabilities(
    chart: Any, values: dict[str, Any], release: str, namespace: str, kube_version: str, api_versions: list[str]
) -> dict[str, str]:
    """``Chart.render`` with the capabilities set.

    ``Chart.render`` of helm_python does not expose them, but the native ``helm_render`` call takes
    ``kube_version`` and ``api_versions`` among its JSON options; this uses the wrapper's private
    ``_native`` module, so it stays in this one function.
    """
    from helm_python import _native

    options: dict[str, Any] = {"name": release, "namespace": namespace, "is_install": True}
    options["kube_version"] = kube_version
    if api_versions:
        options["api_versions"] = api_versions
    rendered = _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(options))
    return dict(json.loads(rendered))


def _render_in_child(
    chart_dir: str,
    values: dict[str, Any],
    release: str,
    namespace: str,
    kube_version: str = "v1.32.0",
    api_versions: tuple[str, ...] = (),
) -> list[tuple[str, str]]:
    """Runs in the child process: returns (path inside the chart, rendered text) pairs, CRDs first."""
    import helm_python

    try:
        chart = helm_python.Chart.load(chart_dir)
        # subcharts load under their chart name; an alias renames them only at render time
        declared = {d.get("name") for d in chart.metadata.get("dependencies") or []}
        loaded = {d.get("name") for d in chart.dependencies}
        missing = sorted(str(d) for d in declared - loaded if d)
        if missing:
            raise RenderError(
                f"Chart.yaml: dependencies {', '.join(missing)} are declared but missing in charts/ "
                "(vendor them under charts/ or give their repository URL)"
            )
        rendered = _render_with_capabilities(chart, values, release, namespace, kube_version, list(api_versions))
        crds = [(c["filename"], c["data"]) for c in chart.crds]
    except helm_python.HelmError as error:
        raise RenderError(str(error)) from error
    prefix = f"{chart.name}/"
    out = [(name.removeprefix(prefix), data) for name, data in sorted(crds)]
    for name, text in sorted(rendered.items()):
        base = name.rsplit("/", 1)[-1]
        if base == "NOTES.txt" or base.startswith("_") or not text.strip():
            continue
        out.append((name.removeprefix(prefix), text))
    return out


def render_helm(
    chart_dir: Path,
    root: Path,
    *,
    release: str,
    namespace: str,
    values: dict[str, Any],
    timeout: Limits | float,
    kube_version: str = "1.32",
    api_versions: tuple[str, ...] = (),
    fetch: FetchSettings | None = None,
    max_bytes: int = 32 * 1024**2,
) -> list[Manifest]:
    """Render the chart in ``chart_dir``; ``fetch``: how missing dependencies are fetched (default cache)."""
    rel_dir = relative(chart_dir, root)
    chart_file = chart_dir / "Chart.yaml"
    if not chart_file.is_file():
        raise RenderError(f"{relative(chart_file, root)}: chart not found (no Chart.yaml in {rel_dir})")
    capabilities = (helm_kube_version(kube_version), tuple(api_versions))
    settings = fetch or FetchSettings(default_cache_dir())
    with chart_with_dependencies(chart_dir, root, settings, max_bytes) as render_dir:
        pieces = run_isolated(
            _render_in_child,
            (str(render_dir), values, release, namespace, *capabilities),
            timeout,
            f"{relative(chart_file, root)} (helm chart)",
        )
    manifests: list[Manifest] = []
    prefix = "" if rel_dir in ("", ".") else rel_dir + "/"
    for name, text in pieces:
        rel = prefix + name
        manifests.extend(
            Manifest(data, SourceLocation(rel, line, index)) for index, line, data in load_yaml_documents(text, rel)
        )
    return manifests
