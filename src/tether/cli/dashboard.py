"""``tether dashboard``: the web dashboard over one cluster, until Ctrl-C."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from tether.errors import UsageError


def parse_listen(listen: str, flag: str = "--listen") -> tuple[str, int]:
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"{flag} {listen!r}: expected HOST:PORT such as 127.0.0.1:8081")
    return host.strip("[]") or "127.0.0.1", int(port)


def dashboard_command(
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", metavar="FILE", help="Kubeconfig file.")] = None,
    context: Annotated[str | None, typer.Option("--context", metavar="TEXT", help="Kubeconfig context.")] = None,
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Serve the dashboard here.")
    ] = "127.0.0.1:8081",
    cache_dir: Annotated[str, typer.Option("--cache-dir", metavar="DIRECTORY", help="Git mirrors for diffs.")] = "",
    no_local_sign_in: Annotated[
        bool,
        typer.Option(
            "--no-local-sign-in", help="Do not print a sign-in link acting with the kubeconfig's credentials."
        ),
    ] = False,
) -> None:
    """Serve the web dashboard: apps, resource trees, diffs, history and actions.

    Users sign in with a bearer token and act as themselves (TokenReview, then impersonation), so
    Kubernetes RBAC decides what each sees and may do. On a loopback address a one-time link that
    signs in with the kubeconfig's own credentials is printed.

    Example:

        tether dashboard --kubeconfig ./kubeconfig --listen 127.0.0.1:8081
    """
    from tether.dashboard import DashboardOptions, serve
    from tether.kube import Kube

    host, port = parse_listen(listen)
    local = not no_local_sign_in and host in ("127.0.0.1", "localhost", "::1")

    async def run() -> None:
        kube = await Kube.connect(kubeconfig=kubeconfig, context=context)

        def ready(dashboard, runner) -> None:  # type: ignore[no-untyped-def]
            bound = runner.addresses[0][1] if runner.addresses else port
            typer.echo(f"tether dashboard on http://{host}:{bound}/", err=True)
            if local:
                code = dashboard.sessions.local_code()
                typer.echo(f"sign in as the kubeconfig user: http://{host}:{bound}/login/local?code={code}", err=True)

        try:
            await serve(kube, host, port, DashboardOptions(local_sign_in=local, cache_dir=cache_dir), on_ready=ready)
        finally:
            await kube.close()

    asyncio.run(run())


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard_command)
