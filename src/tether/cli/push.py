"""Push mode: ``tether diff`` and ``tether apply``.

Exit codes (documented in docs/engine.md):
- diff: 0 no changes, 1 changes, 2 error (as ``kubectl diff``);
- apply: 0 applied (and healthy with --wait), 1 invalid input, an object failed health or the
  wait timed out, 2 any other error (render, cluster, an object the server refused).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import typer
import yaml

from tether.cli.push_output import print_apply_result, progress_reporter
from tether.engine.apply import ApplyOptions, ApplyResult, apply_plan
from tether.engine.diff import load_ignore_rules
from tether.engine.inventory import DEFAULT_NAMESPACE
from tether.engine.plan import Plan, make_plan
from tether.errors import RenderError, TetherError, UsageError
from tether.kube import Kube
from tether.model import Manifest, SourceLocation

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> float:
    """``5m``, ``90s``, ``1h30m`` or plain seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        raise UsageError(f"invalid duration {text!r} (use e.g. 90s, 5m, 1h30m)")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def _pairs(values: list[str], flag: str) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {value!r}")
        out.append((key, val))
    return tuple(out)


def _plain_manifests(path: str) -> list[Manifest]:
    """Plain YAML/JSON files under a directory: the adapter used until the render pipeline is present."""
    root = Path(path)
    if not root.is_dir():
        raise RenderError(f"{path}: not a directory")
    manifests: list[Manifest] = []
    for file in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()):
        rel = str(file.relative_to(root))
        try:
            documents = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise RenderError(f"{rel}: {error}") from None
        for index, doc in enumerate(documents):
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                raise RenderError(f"{rel}: document {index + 1} is not a Kubernetes object")
            manifests.append(Manifest(doc, SourceLocation(rel, None, index)))
    return manifests


def render_manifests(path: str, app: str, namespace: str, render: dict[str, Any]) -> list[Manifest]:
    """Render PATH with the same options as ``tether render`` (raises on any render error)."""
    from tether.render import RenderOptions, render_source

    if importlib.util.find_spec("tether.render.pipeline") is None:
        return _plain_manifests(path)

    options = RenderOptions(
        app=app,
        namespace=namespace,
        renderer=render["renderer"],
        values_files=tuple(render["values"]),
        set_values=tuple(render["set_values"]),
        set_string_values=tuple(render["set_string"]),
        tla_str=_pairs(render["tla_str"], "--tla-str"),
        tla_code=_pairs(render["tla_code"], "--tla-code"),
        ext_str=_pairs(render["ext_str"], "--ext-str"),
        ext_code=_pairs(render["ext_code"], "--ext-code"),
        jsonnet_paths=tuple(render["jpath"]),
        variables=_pairs(render["var"], "--var"),
    )
    return render_source(path, options).manifests


async def _connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Kube:
    return await Kube.connect(kubeconfig=kubeconfig, context=context, namespace=namespace)


async def _plan(kube: Kube, manifests: list[Manifest], app: str, common: dict[str, Any], *, exact: bool) -> Plan:
    rules = load_ignore_rules(common["ignore_rules"]) if common["ignore_rules"] else []
    return await make_plan(kube, manifests, app, ignore_rules=rules, exact=exact,
                           inventory_namespace=common["inventory_namespace"], force=common["force"])


def _emit_structured(data: Any, output: str) -> None:
    if output == "json":
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


def _check_output(output: str) -> None:
    if output not in ("text", "json", "yaml"):
        raise UsageError(f"-o/--output must be text, json or yaml (got {output!r})")


def diff_command(path: str, app: str, common: dict[str, Any], render: dict[str, Any]) -> int:
    _check_output(common["output"])

    async def run() -> Plan:
        kube = await _connect(common["kubeconfig"], common["context"], common["namespace"])
        try:
            manifests = render_manifests(path, app, common["namespace"] or "", render)
            return await _plan(kube, manifests, app, common, exact=True)
        finally:
            await kube.close()

    plan = asyncio.run(run())
    if common["output"] == "text":
        typer.echo(plan.render_text(color=sys.stdout.isatty()), nl=False)
    else:
        _emit_structured(plan.to_dict(), common["output"])
    return 1 if plan.has_changes() else 0


def apply_command(path: str, app: str, common: dict[str, Any], render: dict[str, Any], options: ApplyOptions) -> int:
    _check_output(common["output"])
    interactive = sys.stderr.isatty() and common["output"] == "text"

    async def run() -> tuple[Plan, ApplyResult]:
        # Render (and fail) before touching the cluster: bad input applies and prunes nothing.
        manifests = render_manifests(path, app, common["namespace"] or "", render)
        kube = await _connect(common["kubeconfig"], common["context"], common["namespace"])
        try:
            plan = await _plan(kube, manifests, app, common, exact=False)
            with progress_reporter(plan, options, enabled=interactive) as report:
                result = await apply_plan(kube, plan, options, progress=report)
            return plan, result
        finally:
            await kube.close()

    plan, result = asyncio.run(run())
    print_apply_result(plan, result, options, common["output"])
    return 0


def register(app: typer.Typer) -> None:
    def _common(kubeconfig: str | None, context: str | None, namespace: str | None, output: str,
                inventory_namespace: str, ignore_rules: str | None, force: bool) -> dict[str, Any]:
        return dict(kubeconfig=kubeconfig, context=context, namespace=namespace, output=output,
                    inventory_namespace=inventory_namespace, ignore_rules=ignore_rules, force=force)

    def _render(renderer: str, values: list[str], set_values: list[str], set_string: list[str], tla_str: list[str],
                tla_code: list[str], ext_str: list[str], ext_code: list[str], jpath: list[str],
                var: list[str]) -> dict[str, Any]:
        return dict(renderer=renderer, values=values, set_values=set_values, set_string=set_string,
                    tla_str=tla_str, tla_code=tla_code, ext_str=ext_str, ext_code=ext_code, jpath=jpath, var=var)

    kubeconfig_opt = typer.Option(None, "--kubeconfig", help="Path to the kubeconfig file.")
    context_opt = typer.Option(None, "--context", help="Kubeconfig context to use.")
    namespace_opt = typer.Option(None, "-n", "--namespace", help="Namespace for objects that name none.")
    output_opt = typer.Option("text", "-o", "--output", help="text, json or yaml.")
    inv_ns_opt = typer.Option(DEFAULT_NAMESPACE, "--inventory-namespace", help="Where the app inventory lives.")
    ignore_opt = typer.Option(None, "--ignore-rules", help="YAML file of fields to leave out of comparison.")
    force_opt = typer.Option(False, "--force", help="Take ownership of fields other managers own.")
    app_opt = typer.Option(..., "--app", help="Application name (labels objects, names the inventory).")
    renderer_opt = typer.Option("auto", "--renderer", help="auto, yaml, kustomize, helm or jsonnet.")
    values_opt = typer.Option([], "-f", "--values", help="Helm values file (repeatable).")
    set_opt = typer.Option([], "--set", help="Helm value KEY=VALUE (repeatable).")
    set_string_opt = typer.Option([], "--set-string", help="Helm string value KEY=VALUE (repeatable).")
    tla_str_opt = typer.Option([], "--tla-str", help="Jsonnet top-level argument KEY=VALUE.")
    tla_code_opt = typer.Option([], "--tla-code", help="Jsonnet top-level argument KEY=CODE.")
    ext_str_opt = typer.Option([], "--ext-str", help="Jsonnet external variable KEY=VALUE.")
    ext_code_opt = typer.Option([], "--ext-code", help="Jsonnet external variable KEY=CODE.")
    jpath_opt = typer.Option([], "-J", "--jpath", help="Jsonnet library path (repeatable).")
    var_opt = typer.Option([], "--var", help="Substitution variable KEY=VALUE for ${KEY} (repeatable).")

    @app.command("diff")
    def diff(
        path: str = typer.Argument(..., help="Directory or Git source (URL//sub/path?ref=...)."),
        app_name: str = app_opt, kubeconfig: str | None = kubeconfig_opt, context: str | None = context_opt,
        namespace: str | None = namespace_opt, output: str = output_opt, inventory_namespace: str = inv_ns_opt,
        ignore_rules: str | None = ignore_opt, force: bool = force_opt, renderer: str = renderer_opt,
        values: list[str] = values_opt, set_values: list[str] = set_opt, set_string: list[str] = set_string_opt,
        tla_str: list[str] = tla_str_opt, tla_code: list[str] = tla_code_opt, ext_str: list[str] = ext_str_opt,
        ext_code: list[str] = ext_code_opt, jpath: list[str] = jpath_opt, var: list[str] = var_opt,
    ) -> None:
        """Show what apply would change. Exit 0: no changes, 1: changes, 2: error."""
        common = _common(kubeconfig, context, namespace, output, inventory_namespace, ignore_rules, force)
        render = _render(renderer, values, set_values, set_string, tla_str, tla_code, ext_str, ext_code, jpath, var)
        try:
            code = diff_command(path, app_name, common, render)
        except TetherError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        raise typer.Exit(code)

    @app.command("apply")
    def apply(
        path: str = typer.Argument(..., help="Directory or Git source (URL//sub/path?ref=...)."),
        app_name: str = app_opt, kubeconfig: str | None = kubeconfig_opt, context: str | None = context_opt,
        namespace: str | None = namespace_opt, output: str = output_opt, inventory_namespace: str = inv_ns_opt,
        ignore_rules: str | None = ignore_opt, force: bool = force_opt,
        prune: bool = typer.Option(False, "--prune", help="Delete inventory objects that left the desired set."),
        wait: bool = typer.Option(False, "--wait", help="Wait until every object is healthy."),
        timeout: str = typer.Option("5m", "--timeout", help="How long --wait waits (e.g. 90s, 5m)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Server-side dry run: send, persist nothing."),
        concurrency: int = typer.Option(16, "--concurrency", min=1, max=256, help="Parallel requests per batch."),
        allow_empty_prune: bool = typer.Option(False, "--allow-empty-prune",
                                               help="Allow --prune when nothing is desired (deletes everything)."),
        renderer: str = renderer_opt,
        values: list[str] = values_opt, set_values: list[str] = set_opt, set_string: list[str] = set_string_opt,
        tla_str: list[str] = tla_str_opt, tla_code: list[str] = tla_code_opt, ext_str: list[str] = ext_str_opt,
        ext_code: list[str] = ext_code_opt, jpath: list[str] = jpath_opt, var: list[str] = var_opt,
    ) -> None:
        """Apply PATH to the cluster (server-side apply), optionally prune and wait for health."""
        common = _common(kubeconfig, context, namespace, output, inventory_namespace, ignore_rules, force)
        render = _render(renderer, values, set_values, set_string, tla_str, tla_code, ext_str, ext_code, jpath, var)
        try:
            options = ApplyOptions(force=force, dry_run=dry_run, prune=prune, wait=wait,
                                   timeout=parse_duration(timeout), concurrency=concurrency,
                                   allow_empty_prune=allow_empty_prune)
            code = apply_command(path, app_name, common, render, options)
        except TetherError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None
        raise typer.Exit(code)
