"""``tether test APP``: run an app's Helm test hooks, as ``helm test`` runs a release's.

The app is rendered at its applied revision (``status.lastAppliedRevision``) the way ``tether app
diff`` renders it, or with ``--path`` from a local directory for an app applied in push mode.
Its ``helm.sh/hook: test`` objects (and the older ``test-success``) are created one at a time in
weight order and waited for; the first failure ends the run, as with ``helm test``.

Exit codes: 0 every test passed (or there are none), 1 a test failed, 2 an error.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from tether.cli.render import build_render_options, with_render_options
from tether.engine import DEFAULT_NAMESPACE, AppIdentity
from tether.errors import UsageError
from tether.kube import Kube
from tether.model import Manifest
from tether.render import RenderOptions

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


@with_render_options
def test_command(
    app: Annotated[str, typer.Argument(metavar="APP", help="Application name (with --path: the push-mode app).")],
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace",
            "-n",
            help="Namespace of the Application (default: the context's); with --path: the namespace "
            "for objects without one.",
        ),
    ] = "",
    path: Annotated[
        str,
        typer.Option(
            "--path", metavar="DIRECTORY", help="Render this directory (a push-mode app) instead of the Application."
        ),
    ] = "",
    timeout: Annotated[str, typer.Option("--timeout", metavar="DURATION", help="How long each test may run.")] = "5m",
    logs: Annotated[
        bool, typer.Option("--logs", help="Print the test Pods' logs (when the cluster serves them).")
    ] = False,
    cache_dir: Annotated[str, typer.Option("--cache-dir", help="Git mirror cache (default: the user cache).")] = "",
    inventory_namespace: Annotated[
        str, typer.Option("--inventory-namespace", help="With --path: namespace of the app inventory.")
    ] = DEFAULT_NAMESPACE,
    kubeconfig: Annotated[
        str | None, typer.Option("--kubeconfig", metavar="FILE", help="Path to the kubeconfig file.")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context to use.")] = None,
    *,
    render_options: RenderOptions,
) -> None:
    """Run an app's Helm test hooks and print each result. Exit 0 all passed, 1 a test failed, 2 error.

    Without --path: the Application APP at its applied revision, rendered as its spec says.

    With --path: that directory, rendered with the render options given here (a push-mode app).

    Example:

        tether test web -n shop --timeout 2m --logs
    """
    from tether.cli.push import parse_duration

    seconds = parse_duration(timeout)
    if not path and render_options != build_render_options(app=app, namespace=namespace):
        raise UsageError("render options (--values, --set, ...) need --path; an Application renders as its spec says")
    if path:
        manifests, identity, destination = _local(path, render_options, inventory_namespace)
        target_namespace = namespace or None
    else:
        manifests, identity, destination = _applied(app, namespace, cache_dir, kubeconfig, context)
        target_namespace = identity.namespace
    results = _run(manifests, identity, destination, seconds, logs, kubeconfig, context, target_namespace)
    if not results:
        typer.echo(f"{app}: no test hooks (helm.sh/hook: test) in the render", err=True)
        return
    if any(not r.passed for r in results):
        raise typer.Exit(1)


def _local(path: str, options: RenderOptions, inventory_namespace: str) -> tuple[list[Manifest], AppIdentity, str]:
    from tether.cli.conventions import print_warning
    from tether.render import render_source

    rendered = render_source(path, options)
    for warning in rendered.warnings:
        print_warning(warning)
    return list(rendered.manifests), AppIdentity(inventory_namespace, options.app), options.namespace


def _applied(
    name: str, namespace: str, cache_dir: str, kubeconfig: str | None, context: str | None
) -> tuple[list[Manifest], AppIdentity, str]:
    """The Application rendered at its applied revision (the render path of ``tether app diff``)."""
    from tether.apps import ops
    from tether.apps.revisions import render_current, render_inputs
    from tether.cli.apps import Target

    async def inputs(kube: Kube, ns: str) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
        obj = await ops.get_app(kube, name, ns)
        return (obj, *await render_inputs(kube, obj))

    obj, variables, keys, credentials = Target(kubeconfig, context, namespace or None).run(inputs)
    meta = obj["metadata"]
    if not (obj.get("status") or {}).get("lastAppliedRevision"):
        raise UsageError(f"{ops.where(meta['namespace'], meta['name'])} has no applied revision yet: nothing to test")
    rendered = render_current(obj, variables, keys, cache_dir, applied=True, chart_credentials=credentials)
    destination = ((obj.get("spec") or {}).get("destination") or {}).get("namespace") or meta["namespace"]
    return list(rendered.manifests), AppIdentity(meta["namespace"], meta["name"]), destination


def _run(
    manifests: list[Manifest],
    identity: AppIdentity,
    destination: str,
    timeout: float,
    logs: bool,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> list[Any]:
    import asyncio

    from tether.engine.hooks import HookPhase
    from tether.engine.lifecycle_hooks import HelmTestResult, run_tests, select_hooks

    def show(result: HelmTestResult) -> None:
        typer.echo(f"{result.name:<50} {result.phase:<10} {result.seconds:6.1f}s  {result.message}".rstrip())
        if result.logs:
            sys.stdout.write(result.logs if result.logs.endswith("\n") else result.logs + "\n")

    async def main() -> list[HelmTestResult]:
        kube = await Kube.connect(kubeconfig=kubeconfig, context=context, namespace=namespace)
        try:
            hooks = await select_hooks(
                kube, manifests, identity, frozenset({HookPhase.TEST}), default_namespace=destination or kube.namespace
            )
            if hooks:
                typer.echo(f"{'TEST':<50} {'PHASE':<10} {'TIME':>7}")
            return await run_tests(
                kube, hooks, identity, timeout=timeout, collect=_log_reader(kube) if logs else None, on_result=show
            )
        finally:
            await kube.close()

    return asyncio.run(main())


def _log_reader(kube: Kube) -> Any:
    """Reads the logs of a test Pod, or of a test Job's Pods, while they still exist."""

    async def read(hook: Any) -> str:
        created = hook.created or {}
        meta = created.get("metadata") or {}
        name, namespace = meta.get("name", ""), meta.get("namespace", "")
        if created.get("kind") == "Pod":
            pods = [created]
        elif created.get("kind") == "Job":
            info = await kube.info("v1", "Pod")
            pods = await kube.list(info, namespace, label_selector=f"{JOB_NAME_LABEL}={name}")
        else:
            return ""
        chunks = []
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            for container in (pod.get("spec") or {}).get("containers") or []:
                text = await kube.pod_log(pod_name, namespace, container.get("name", ""))
                header = f"--- logs of Pod {namespace}/{pod_name}, container {container.get('name')}"
                if text is None:
                    chunks.append(f"{header}: not available (the cluster does not serve pods/log, or the Pod is gone)")
                else:
                    chunks.append(f"{header}\n{text.rstrip()}")
        return "\n".join(chunks)

    return read


def register(app: typer.Typer) -> None:
    app.command("test")(test_command)
