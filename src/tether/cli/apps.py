"""``tether app``: inspect and operate the Applications the controller reconciles.

Exit codes: 0 success; 1 ``sync --wait`` ended without the Application Ready (or the controller
did not handle the request in time), or ``diff`` found differences; 2 any error (usage, cluster,
Git, render).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from tether.apps import ops
from tether.cli.app_output import (
    as_list,
    check_output,
    describe_text,
    dump,
    history_rows,
    list_rows,
    print_table,
    short,
)
from tether.errors import HealthTimeout, KubeError, UsageError
from tether.kube import Kube, NotFound

T = TypeVar("T")

group = typer.Typer(
    name="app",
    no_args_is_help=True,
    add_completion=False,
    help="Inspect and operate Applications (applications.tether.dev).\n\nExit codes: 0 success; 1 sync --wait "
    "ended without the Application Ready or timed out, or diff found differences; 2 any error."
    "\n\nExample:\n\n    tether app list -A",
)

NameArg = Annotated[str, typer.Argument(help="Application name.")]
NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's).")]
AllNamespacesOpt = Annotated[bool, typer.Option("--all-namespaces", "-A", help="Applications of every namespace.")]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", metavar="FILE", help="Path to the kubeconfig file.")]
ContextOpt = Annotated[str | None, typer.Option("--context", metavar="TEXT", help="Kubeconfig context to use.")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="table, wide, json or yaml.")]


class Target:
    """Where a command acts: one connection and the namespace it defaults to."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        self.kubeconfig, self.context, self.namespace_flag = kubeconfig, context, namespace

    def run(self, work: Callable[[Kube, str], Awaitable[T]]) -> T:
        async def main() -> T:
            kube = await Kube.connect(kubeconfig=self.kubeconfig, context=self.context, namespace=self.namespace_flag)
            try:
                return await work(kube, kube.namespace)
            finally:
                await kube.close()

        try:
            return asyncio.run(main())
        except NotFound as error:
            if "applications" in str(error) or "Application" in str(error):
                raise KubeError(f"{error} (is the Application CRD installed? run: tether install)") from None
            raise


def _emit(data: Any, output: str) -> None:
    sys.stdout.write(dump(data, output))


@group.command("list")
def list_command(
    namespace: NamespaceOpt = None,
    all_namespaces: AllNamespacesOpt = False,
    output: OutputOpt = "table",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """List Applications: source, applied revision, sync and health.

    Example:

        tether app list -A
    """
    check_output(output)

    async def work(kube: Kube, ns: str) -> tuple[str, list[dict[str, Any]]]:
        return ns, await ops.list_apps(kube, None if all_namespaces else ns)

    listed_ns, items = Target(kubeconfig, context, namespace).run(work)
    if output in ("json", "yaml"):
        _emit(as_list(items), output)
    elif not items:
        typer.echo("No Applications found" + ("" if all_namespaces else f" in namespace {listed_ns}") + ".", err=True)
    else:
        print_table(*list_rows(items, all_namespaces=all_namespaces, wide=output == "wide"))


@group.command("get")
def get_command(
    name: NameArg,
    namespace: NamespaceOpt = None,
    output: OutputOpt = "table",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Show one Application (a table row, or the whole object with -o json|yaml).

    Example:

        tether app get web -n shop -o yaml
    """
    check_output(output)
    obj = Target(kubeconfig, context, namespace).run(lambda kube, ns: ops.get_app(kube, name, ns))
    if output in ("json", "yaml"):
        _emit(obj, output)
    else:
        print_table(*list_rows([obj], all_namespaces=False, wide=output == "wide"))


@group.command("describe")
def describe_command(
    name: NameArg, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None
) -> None:
    """Spec summary, conditions, drift, history and recent events of one Application.

    Example:

        tether app describe web -n shop
    """

    async def work(kube: Kube, ns: str) -> str:
        obj = await ops.get_app(kube, name, ns)
        return describe_text(obj, await ops.events_of(kube, obj))

    sys.stdout.write(Target(kubeconfig, context, namespace).run(work))


@group.command("create")
def create_command(
    name: NameArg,
    url: Annotated[str, typer.Option("--url", help="Git repository URL (credentials do not belong here).")],
    path: Annotated[str, typer.Option("--path", help="Directory inside the repository.")] = ".",
    branch: Annotated[str, typer.Option("--branch", help="Follow this branch.")] = "",
    tag: Annotated[str, typer.Option("--tag", help="Deploy this tag.")] = "",
    semver: Annotated[str, typer.Option("--semver", help="Deploy the highest tag in this semver range.")] = "",
    commit: Annotated[str, typer.Option("--commit", help="Deploy this commit SHA.")] = "",
    ref: Annotated[
        str,
        typer.Option(
            "--ref", metavar="[KIND:]REF", help="branch:B, tag:T, semver:R or commit:SHA (a bare name is a branch)."
        ),
    ] = "",
    dest_namespace: Annotated[str, typer.Option("--dest-namespace", help="Namespace for objects without one.")] = "",
    create_namespace: Annotated[
        bool, typer.Option("--create-namespace", help="Create the destination namespace.")
    ] = False,
    no_auto: Annotated[
        bool, typer.Option("--no-auto", help="Only detect changes; apply on `tether app sync`.")
    ] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Delete objects no longer rendered.")] = False,
    self_heal: Annotated[bool, typer.Option("--self-heal", help="Undo changes made in the cluster.")] = False,
    interval: Annotated[str, typer.Option("--interval", help="How often to check Git and drift (Go duration).")] = "1m",
    service_account: Annotated[str, typer.Option("--service-account", help="Apply as this ServiceAccount.")] = "",
    depends_on: Annotated[
        list[str] | None,
        typer.Option("--depends-on", help="NS/NAME of an Application that must be Ready first (repeatable)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the Application instead of creating it.")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="With --dry-run: yaml or json.")] = "yaml",
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Create an Application (with --dry-run: print it).

    Example:

        tether app create web -n shop --url https://git.example.com/apps.git --path apps/web --branch main
    """
    check_output(output, ("yaml", "json"))
    if ref:
        kind, _, value = (
            ref.partition(":") if ref.split(":", 1)[0] in ("branch", "tag", "semver", "commit") else ("branch", "", ref)
        )
        given = {"branch": branch, "tag": tag, "semver": semver, "commit": commit}
        if given[kind]:
            raise UsageError(f"--ref {ref} and --{kind} both name the {kind}: give one")
        branch, tag, semver, commit = (value if kind == k else given[k] for k in ("branch", "tag", "semver", "commit"))
    options = ops.CreateOptions(
        url=url,
        path=path,
        branch=branch,
        tag=tag,
        semver=semver,
        commit=commit,
        dest_namespace=dest_namespace,
        create_namespace=create_namespace,
        automated=not no_auto,
        prune=prune,
        self_heal=self_heal,
        interval=interval,
        service_account=service_account,
        depends_on=list(depends_on or []),
    )
    if dry_run:
        _emit(ops.build_application(name, namespace or "default", options), output)
        return

    async def work(kube: Kube, ns: str) -> dict[str, Any]:
        return await kube.create(ops.APPLICATION, ops.build_application(name, ns, options))

    created = Target(kubeconfig, context, namespace).run(work)
    typer.echo(
        f"application.{ops.API_VERSION.split('/')[0]}/{created['metadata']['name']} created "
        f"in namespace {created['metadata']['namespace']}"
    )


@group.command("sync")
def sync_command(
    name: NameArg,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the controller handled the request.")] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="With --wait: how long to wait (90s, 5m).")] = "5m",
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Fetch and apply now, even when automated sync is off. With --wait: exit 1 unless it ends Ready.

    Example:

        tether app sync web -n shop --wait --timeout 2m
    """
    from tether.cli.push import parse_duration

    seconds = parse_duration(timeout)

    async def work(kube: Kube, ns: str) -> tuple[str, ops.SyncOutcome | None]:
        value = await ops.request(kube, name, ns, ops.SYNC_ANNOTATION)
        return value, (await ops.wait_for_sync(kube, name, ns, value, seconds) if wait else None)

    value, outcome = Target(kubeconfig, context, namespace).run(work)
    if outcome is None:
        typer.echo(f"sync requested for {name} ({ops.SYNC_ANNOTATION}={value})")
        return
    if not outcome.handled:
        raise HealthTimeout(f"{name}: {outcome.message}")
    if outcome.ready:
        typer.echo(f"{name} synced at {short(outcome.revision)}: Ready ({outcome.reason or 'ok'})")
        return
    typer.echo(f"{name} sync handled but not Ready: {outcome.reason or 'Unknown'}: {outcome.message}", err=True)
    raise typer.Exit(1)


@group.command("refresh")
def refresh_command(
    name: NameArg, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None
) -> None:
    """Fetch Git now and re-plan (applies only when automated sync is on).

    Example:

        tether app refresh web -n shop
    """
    value = Target(kubeconfig, context, namespace).run(
        lambda kube, ns: ops.request(kube, name, ns, ops.REFRESH_ANNOTATION)
    )
    typer.echo(f"refresh requested for {name} ({ops.REFRESH_ANNOTATION}={value})")


@group.command("history")
def history_command(
    name: NameArg,
    namespace: NamespaceOpt = None,
    output: OutputOpt = "table",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Deployed revisions, newest first.

    Example:

        tether app history web -n shop
    """
    check_output(output)
    obj = Target(kubeconfig, context, namespace).run(lambda kube, ns: ops.get_app(kube, name, ns))
    if output in ("json", "yaml"):
        _emit(ops.history(obj), output)
    elif not ops.history(obj):
        typer.echo(f"{name}: no deployments recorded yet", err=True)
    else:
        print_table(*history_rows(obj))


@group.command("stats")
def stats_command(
    name: NameArg,
    controller: Annotated[
        str,
        typer.Option(
            "--controller",
            metavar="URL",
            help="Read the controller's /metrics (all four figures since it started) instead of status.history.",
        ),
    ] = "",
    output: Annotated[str, typer.Option("--output", "-o", help="text, json or yaml.")] = "text",
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Delivery figures: deployments, lead time, change failure rate, time to restore.

    From status.history by default (deployments and lead time of the revisions it keeps); with
    --controller, from the controller's /metrics (all four, counted since it started).

    Example:

        tether app stats web -n shop --controller http://127.0.0.1:8080
    """
    from tether.apps import stats

    check_output(output, ("text", "json", "yaml"))
    obj = Target(kubeconfig, context, namespace).run(lambda kube, ns: ops.get_app(kube, name, ns))
    if controller:
        meta = obj["metadata"]
        figures = stats.from_metrics(stats.read_metrics(controller), meta["namespace"], meta["name"], controller, obj)
    else:
        figures = stats.from_history(obj)
    if output == "text":
        sys.stdout.write(stats.to_text(figures))
    else:
        _emit(figures.as_dict(), output)


@group.command("rollback")
def rollback_command(
    name: NameArg,
    revision: Annotated[
        str | None,
        typer.Argument(
            help="Revision (full or short SHA from `tether app history`); default: the previous successful one."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Pin a revision that is not in the history.")] = False,
    revert: Annotated[
        bool,
        typer.Option(
            "--revert",
            help="Instead of pinning: revert every later commit on the "
            "source branch and push (Git credentials from TETHER_GIT_*).",
        ),
    ] = False,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Roll back by pinning an earlier revision (undo with `tether app unpin`), or by a Git revert.

    Example:

        tether app rollback web -n shop 1a2b3c4
    """
    user = ops.current_user()
    target = Target(kubeconfig, context, namespace)
    if revert:
        if not revision:
            raise UsageError(
                "rollback --revert needs the revision to go back to: tether app rollback NAME REV --revert"
            )
        _revert(target, name, revision, user)
        return

    async def work(kube: Kube, ns: str) -> str:
        obj = await ops.get_app(kube, name, ns)
        chosen = ops.rollback_revision(obj, revision, force=force)
        await ops.patch_app(kube, name, ns, ops.pin_patch(chosen, user))
        return chosen

    chosen = target.run(work)
    typer.echo(f"{name} pinned to {chosen[:12]}; undo with: tether app unpin {name}")


def _revert(target: Target, name: str, revision: str, user: str) -> None:
    from tether.apps.revisions import revert_branch

    obj = target.run(lambda kube, ns: ops.get_app(kube, name, ns))
    result = revert_branch(
        obj,
        ops.match_revision(ops.history(obj), revision) or revision,
        user,
        on_step=lambda message: typer.echo(message, err=True),
    )
    target.run(lambda kube, ns: ops.request(kube, name, ns, ops.REFRESH_ANNOTATION))
    typer.echo(
        f"reverted {len(result.reverted)} commit(s) on {result.branch}; new head {result.new_head[:12]} "
        "pushed and a refresh requested"
    )
    if (obj.get("spec") or {}).get("pin"):
        typer.echo(f"note: {name} is pinned; it stays on the pinned revision until: tether app unpin {name}", err=True)


def _set_spec(
    name: str, patch: dict[str, Any], done: str, namespace: str | None, kubeconfig: str | None, context: str | None
) -> None:
    Target(kubeconfig, context, namespace).run(lambda kube, ns: ops.patch_app(kube, name, ns, {"spec": patch}))
    typer.echo(f"{name} {done}")


@group.command("unpin")
def unpin_command(
    name: NameArg, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None
) -> None:
    """Remove spec.pin: follow the source ref again.

    Example:

        tether app unpin web -n shop
    """
    _set_spec(name, {"pin": None}, "unpinned: following its source ref again", namespace, kubeconfig, context)


@group.command("suspend")
def suspend_command(
    name: NameArg, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None
) -> None:
    """Stop reconciling (nothing is fetched, applied or pruned) until resumed.

    Example:

        tether app suspend web -n shop
    """
    _set_spec(name, {"suspend": True}, "suspended", namespace, kubeconfig, context)


@group.command("resume")
def resume_command(
    name: NameArg, namespace: NamespaceOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None
) -> None:
    """Reconcile again after suspend.

    Example:

        tether app resume web -n shop
    """
    _set_spec(name, {"suspend": False}, "resumed", namespace, kubeconfig, context)


@group.command("delete")
def delete_command(
    name: NameArg,
    cascade: Annotated[
        bool, typer.Option("--cascade", help="Have the controller delete the app's objects first.")
    ] = False,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Delete an Application. Its objects stay in the cluster unless --cascade is given.

    Example:

        tether app delete web -n shop --cascade
    """

    async def work(kube: Kube, ns: str) -> list[str]:
        obj = await ops.get_app(kube, name, ns)
        finalizers = list(obj["metadata"].get("finalizers") or [])
        if cascade and ops.CASCADE_FINALIZER not in finalizers:
            # the whole list goes in a merge patch; resourceVersion makes a concurrent change a conflict
            await kube.patch(
                ops.APPLICATION,
                name,
                ns,
                {
                    "metadata": {
                        "finalizers": [*finalizers, ops.CASCADE_FINALIZER],
                        "resourceVersion": obj["metadata"]["resourceVersion"],
                    }
                },
                field_manager=ops.FIELD_MANAGER,
            )
            finalizers.append(ops.CASCADE_FINALIZER)
        await kube.delete(ops.APPLICATION, name, ns)
        return finalizers

    finalizers = Target(kubeconfig, context, namespace).run(work)
    if ops.CASCADE_FINALIZER in finalizers:
        typer.echo(
            f"{name} deletion requested: the controller deletes its objects, then removes the "
            f"{ops.CASCADE_FINALIZER} finalizer"
        )
    else:
        typer.echo(f"{name} deleted (its objects were left in the cluster)")


@group.command("diff")
def diff_command(
    name: NameArg,
    from_rev: Annotated[str, typer.Option("--from", help="Old revision: SHA, tag or branch.")] = "",
    to_rev: Annotated[str, typer.Option("--to", help="New revision: SHA, tag or branch.")] = "",
    cache_dir: Annotated[str, typer.Option("--cache-dir", help="Git mirror cache (default: the user cache).")] = "",
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Diff the cluster against Git, or two revisions (--from/--to). Exit 0 same, 1 different, 2 error.

    Without --from/--to: the app's objects as Git says them (at the revision the controller last
    resolved) against the live cluster, by a server-side dry run; nothing is written. With both:
    both revisions are rendered from Git (Git is the record; nothing else is stored).

    Example:

        tether app diff web -n shop --from 1a2b3c4 --to main
    """
    from tether.apps.revisions import render_both, render_current, render_inputs, unified_diff

    async def inputs(kube: Kube, ns: str) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
        obj = await ops.get_app(kube, name, ns)
        return (obj, *await render_inputs(kube, obj))

    target = Target(kubeconfig, context, namespace)
    obj, variables, keys, credentials = target.run(inputs)
    if bool(from_rev) != bool(to_rev):
        raise UsageError("give both --from and --to, or neither (to diff against the live cluster)")
    if not from_rev:
        _live_diff(target, obj, render_current(obj, variables, keys, cache_dir, chart_credentials=credentials))
        return
    old, new = render_both(obj, from_rev, to_rev, variables, keys, cache_dir, credentials)
    text = unified_diff(old, new)
    if not text:
        typer.echo(f"no differences between {old.commit[:12]} and {new.commit[:12]}", err=True)
        return
    sys.stdout.write(text)
    raise typer.Exit(1)


def _live_diff(target: Target, obj: dict[str, Any], rendered: Any) -> None:
    from tether.delivery.plan import plan_app
    from tether.engine import AppIdentity

    meta = obj["metadata"]
    destination = ((obj.get("spec") or {}).get("destination") or {}).get("namespace") or meta["namespace"]

    async def work(kube: Kube, _ns: str) -> Any:
        return await plan_app(
            kube,
            list(rendered.manifests),
            AppIdentity(meta["namespace"], meta["name"]),
            exact=True,
            validate=False,
            default_namespace=destination,
        )

    plan = target.run(work)
    typer.echo(plan.render_text(color=sys.stdout.isatty()), nl=False)
    if plan.has_changes():
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="app")
