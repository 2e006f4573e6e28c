"""Push mode: ``tether diff`` and ``tether apply``.

Exit codes (documented in docs/engine.md):
- diff: 0 no changes, 1 changes, 2 error (as ``kubectl diff``);
- apply: 0 applied (and healthy with --wait), 1 invalid input, an object failed health or the
  wait timed out, 2 any other error (render, cluster, an object the server refused).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import sys
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
import yaml

from tether.cli.conventions import print_error, print_traceback, print_warning
from tether.cli.render import with_render_options
from tether.delivery.capabilities import CapabilitiesCache
from tether.delivery.plan import plan_app
from tether.engine import (
    DEFAULT_NAMESPACE,
    AppIdentity,
    ApplyOptions,
    ApplyResult,
    ObjectHealth,
    Outcome,
    Plan,
    apply_plan,
)
from tether.engine.diff import load_ignore_rules
from tether.engine.namespaces import plan_namespaces
from tether.errors import TetherError, UsageError
from tether.kube import Kube
from tether.render import RenderOptions, render_source

T = TypeVar("T")
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


#: the parameters of diff and apply that make their ``Common`` (besides the render options)
COMMON_OPTIONS = (
    "kubeconfig",
    "context",
    "output",
    "inventory_namespace",
    "ignore_rules",
    "force",
    "kube_version",
    "validate",
    "adopt",
    "create_namespace",
)


class Common:
    """Options shared by diff and apply."""

    def __init__(
        self,
        *,
        render: RenderOptions,
        kubeconfig: str | None,
        context: str | None,
        output: str,
        inventory_namespace: str,
        ignore_rules: str | None,
        force: bool,
        kube_version: str,
        validate: bool,
        adopt: bool = False,
        create_namespace: bool = False,
    ) -> None:
        if not render.app:
            raise UsageError("--app is required: it labels the objects and names the inventory")
        if output not in ("text", "json", "yaml"):
            raise UsageError(f"-o/--output must be text, json or yaml (got {output!r})")
        self.render, self.kubeconfig, self.context, self.output = render, kubeconfig, context, output
        self.inventory_namespace, self.ignore_rules, self.force = inventory_namespace, ignore_rules, force
        self.kube_version, self.validate, self.adopt = kube_version, validate, adopt
        self.create_namespace = create_namespace
        self.identity = AppIdentity(inventory_namespace, render.app)

    async def plan(self, path: str, *, exact: bool) -> tuple[Kube, Plan]:
        """Render, plan and validate, all before any write: bad input applies and prunes nothing."""
        kube = await Kube.connect(
            kubeconfig=self.kubeconfig, context=self.context, namespace=self.render.namespace or None
        )
        try:
            # Helm's .Capabilities follow the target cluster: discovered once, and only when a chart renders
            capabilities, loop = CapabilitiesCache(ttl=None), asyncio.get_running_loop()

            def discovered() -> tuple[str, tuple[str, ...]]:
                return asyncio.run_coroutine_threadsafe(capabilities.get(kube), loop).result()

            options = dataclasses.replace(self.render, cluster_capabilities=discovered)
            rendered = await asyncio.to_thread(render_source, path, options)
            for warning in rendered.warnings:
                print_warning(warning)
            rules = load_ignore_rules(self.ignore_rules) if self.ignore_rules else []
            # plain files: field errors can point at the field's own line
            root = (rendered.source_root or rendered.root) if rendered.renderer == "yaml" else None
            plan = await plan_app(
                kube,
                rendered.manifests,
                self.identity,
                ignore_rules=rules,
                exact=exact,
                adopt=self.adopt,
                default_namespace=self.render.namespace or None,
                validate=self.validate,
                kube_version=self.kube_version,
                root=root,
            )
            destination = self.render.namespace or kube.namespace
            await plan_namespaces(kube, plan, destination, create=self.create_namespace)
        except BaseException:
            await kube.close()
            raise
        return kube, plan


def _emit_structured(data: Any, output: str) -> None:
    if output == "json":
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` without its habit of repr()-ing the finished task's result on the way out.

    asyncio's Runner checks the SIGINT handler after the main task ends, and on Python 3.11 that
    check formats a repr of the handler, which includes the task and its result: for a plan of
    10,000 objects that repr took longer than the whole no-op run. A plain event loop has no such
    handler.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def diff_command(path: str, common: Common, *, recreate: bool = False) -> int:
    async def run() -> Plan:
        kube, plan = await common.plan(path, exact=True)
        await kube.close()
        return plan

    plan = _run(run())
    if recreate:
        plan.allow_recreate("--recreate")
    if common.output == "text":
        typer.echo(plan.render_text(color=sys.stdout.isatty() and not os.environ.get("NO_COLOR")), nl=False)
    else:
        _emit_structured(plan.to_dict(), common.output)
    return 1 if plan.has_changes() else 0


def apply_command(path: str, common: Common, options: ApplyOptions) -> int:
    from tether.cli.push_output import Reporter, print_apply_result

    interactive = sys.stderr.isatty() and common.output == "text"

    planned: list[Plan] = []
    done: list[Outcome] = []
    health: list[list[ObjectHealth]] = [[]]

    async def tracked() -> tuple[Plan, ApplyResult]:
        kube, plan = await common.plan(path, exact=False)
        planned.append(plan)
        try:
            reporter = Reporter(plan, options, enabled=interactive)
            try:

                def progress(outcome: Outcome) -> None:
                    done.append(outcome)
                    reporter.outcome(outcome)

                def on_health(states: list[ObjectHealth]) -> None:
                    health[0] = states
                    reporter.health(states)

                result = await apply_plan(kube, plan, options, progress=progress, on_health=on_health)
            finally:
                reporter.close()
            return plan, result
        finally:
            await kube.close()

    try:
        plan, result = _run(tracked())
    except TetherError as error:
        # what was done so far, and each object's reason, before the error itself
        partial = getattr(error, "result", None)
        if planned and isinstance(partial, ApplyResult):
            print_apply_result(planned[0], partial, options, common.output)
        raise
    except KeyboardInterrupt:
        if planned:
            print_apply_result(planned[0], ApplyResult(outcomes=done, health=health[0]), options, common.output)
        typer.echo(
            "interrupted: the apply stopped part-way; run it again to converge "
            "(nothing was pruned unless the prune phase had begun)",
            err=True,
        )
        return 130
    print_apply_result(plan, result, options, common.output)
    return 0


PathArg = Annotated[
    str,
    typer.Argument(
        metavar="DIRECTORY|URL", help="Directory, or a Git source such as https://host/repo.git//dir?ref=v1"
    ),
]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", metavar="FILE", help="Path to the kubeconfig file.")]
ContextOpt = Annotated[str | None, typer.Option("--context", help="Kubeconfig context to use.")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="text, json or yaml.")]
InventoryNsOpt = Annotated[str, typer.Option("--inventory-namespace", help="Namespace of the app inventory.")]
IgnoreOpt = Annotated[
    str | None, typer.Option("--ignore-rules", metavar="FILE", help="YAML file: fields left out of comparison.")
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force/--no-force", help="Take fields other field managers own (the default: Git wins); --no-force refuses."
    ),
]
AdoptOpt = Annotated[
    bool, typer.Option("--adopt", help="Take over objects another app owns (otherwise they are reported as conflicts).")
]
KubeVersionOpt = Annotated[str, typer.Option("--kube-version", help="Kubernetes version of the schemas.")]
ValidateOpt = Annotated[bool, typer.Option("--validate/--no-validate", help="Validate before touching the cluster.")]
CreateNamespaceOpt = Annotated[
    bool,
    typer.Option(
        "--create-namespace",
        help="Create the destination namespace (--namespace) when missing; labelled as the app's, never pruned.",
    ),
]


@with_render_options
def diff(
    path: PathArg,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    output: OutputOpt = "text",
    inventory_namespace: InventoryNsOpt = DEFAULT_NAMESPACE,
    ignore_rules: IgnoreOpt = None,
    force: ForceOpt = True,
    kube_version: KubeVersionOpt = "1.32",
    validate: ValidateOpt = True,
    adopt: AdoptOpt = False,
    create_namespace: CreateNamespaceOpt = False,
    recreate: Annotated[
        bool, typer.Option("--recreate", help="Show objects whose immutable fields changed as apply --recreate would.")
    ] = False,
    *,
    render_options: RenderOptions,
) -> None:
    """Show what apply would change. Exit 0: no changes, 1: changes, 2: error.

    --app is required.

    Example:

        tether diff ./deploy --app web --kubeconfig ~/.kube/config
    """
    arguments = locals()
    try:
        common = Common(render=render_options, **{name: arguments[name] for name in COMMON_OPTIONS})
        code = diff_command(path, common, recreate=recreate)
    except TetherError as error:
        print_error(str(error))
        print_traceback(error)  # only with TETHER_DEBUG=1
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@with_render_options
def apply(
    path: PathArg,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    output: OutputOpt = "text",
    inventory_namespace: InventoryNsOpt = DEFAULT_NAMESPACE,
    ignore_rules: IgnoreOpt = None,
    force: ForceOpt = True,
    kube_version: KubeVersionOpt = "1.32",
    validate: ValidateOpt = True,
    adopt: AdoptOpt = False,
    create_namespace: CreateNamespaceOpt = False,
    prune: Annotated[bool, typer.Option("--prune", help="Delete inventory objects that left the desired set.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until every object is healthy.")] = False,
    timeout: Annotated[
        str, typer.Option("--timeout", metavar="DURATION", help="How long --wait waits (e.g. 90s, 5m).")
    ] = "5m",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Server-side dry run: persist nothing.")] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=256, help="Parallel writes.")] = 16,
    allow_empty_prune: Annotated[
        bool, typer.Option("--allow-empty-prune", help="Allow --prune when nothing is desired (deletes everything).")
    ] = False,
    recreate: Annotated[
        bool,
        typer.Option(
            "--recreate",
            help="Delete and create again objects whose immutable fields changed "
            "(per object: tether.dev/recreate, Argo CD Replace=true, Flux force: enabled).",
        ),
    ] = False,
    no_hooks: Annotated[
        bool, typer.Option("--no-hooks", help="Do not run Argo CD / Helm hooks (PreSync, PostSync, pre-install, ...).")
    ] = False,
    health_rules: Annotated[
        str | None,
        typer.Option(
            "--health-rules",
            metavar="FILE",
            help="YAML list of CEL health checks per kind (Flux healthCheckExprs: apiVersion, kind, current, ...).",
        ),
    ] = None,
    *,
    render_options: RenderOptions,
) -> None:
    """Apply PATH (server-side apply); optionally prune and wait for health. Exit 0 ok, 1 invalid/unhealthy, 2 error.

    --app is required.

    Example:

        tether apply ./deploy --app web --prune --wait --timeout 5m
    """
    arguments = locals()
    try:
        common = Common(render=render_options, **{name: arguments[name] for name in COMMON_OPTIONS})
        options = ApplyOptions(
            force=force,
            dry_run=dry_run,
            prune=prune,
            wait=wait,
            timeout=parse_duration(timeout),
            concurrency=concurrency,
            allow_empty_prune=allow_empty_prune,
            recreate=recreate,
            hooks=not no_hooks,
            health_rules=_health_rules(health_rules),
        )
        code = apply_command(path, common, options)
    except TetherError as error:
        print_error(str(error))
        print_traceback(error)  # only with TETHER_DEBUG=1
        raise typer.Exit(error.exit_code) from None
    raise typer.Exit(code)


def _health_rules(path: str | None) -> Any:
    """The ``--health-rules`` file, loaded (and its expressions compiled) before anything is applied."""
    if path is None:
        return None
    from tether.engine.health_rules import load_health_rules

    return load_health_rules(path)


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
    app.command("apply")(apply)
