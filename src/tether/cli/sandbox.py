"""``tether sandbox``: the local Kubernetes-compatible API server."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
from pathlib import Path

import typer

from tether.cli import conventions
from tether.errors import UsageError

_BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def _serve(config: object, kubeconfig: Path, after_start: object = None) -> None:
    """Serve until SIGINT (exit 130, as for any interrupted command) or SIGTERM (exit 0)."""
    from tether.sandbox.server import Sandbox

    received: list[int] = []

    async def main() -> None:
        sandbox = Sandbox(config)  # type: ignore[arg-type]
        try:
            try:
                await sandbox.start()
            except OSError as error:
                if error.errno not in _BIND_ERRORS:
                    raise
                host, port = sandbox.config.host, sandbox.config.port
                hint = (
                    "is --host an address of this machine?"
                    if error.errno == errno.EADDRNOTAVAIL
                    else "choose another --port, or --port 0 for a free one"
                )
                raise UsageError(f"cannot listen on {host}:{port}: {os.strerror(error.errno or 0)} ({hint})") from None
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            # before the kubeconfig path is printed: whoever waits for it may signal right away
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, lambda sig=sig: (received.append(sig), stop.set()))
            sandbox.write_kubeconfig(kubeconfig)
            typer.echo(str(kubeconfig))
            typer.echo(f"# serving {sandbox.url}; stop with Ctrl-C", err=True)
            if callable(after_start):
                await loop.run_in_executor(None, after_start, sandbox, kubeconfig)
            await stop.wait()
        finally:
            await sandbox.stop()

    asyncio.run(main())
    if received and received[0] == signal.SIGINT:
        raise typer.Exit(conventions.INTERRUPTED)


def sandbox_command(
    host: str = typer.Option("127.0.0.1", metavar=conventions.HOST, help="Address to listen on."),
    port: int = typer.Option(6443, metavar=conventions.PORT, help="Port to listen on (0 picks a free one)."),
    data: Path = typer.Option(
        Path(".tether-sandbox"), "--data", metavar=conventions.DIRECTORY, help="Directory of the persistent store."
    ),
    kubeconfig_out: Path = typer.Option(
        None,
        "--kubeconfig-out",
        metavar=conventions.FILE,
        help="Where to write the kubeconfig (default: DATA/kubeconfig).",
    ),
    tls: bool = typer.Option(
        False,
        "--tls",
        help="Serve HTTPS with a generated CA (kept under DATA/pki); without "
        "--token an admin token is generated (DATA/pki/admin-token).",
    ),
    token: list[str] = typer.Option(
        [], "--token", metavar=conventions.TEXT, help="Require this admin bearer token (repeatable)."
    ),
    history: int = typer.Option(
        10_000, metavar=conventions.INTEGER, help="Watch history kept in memory; older versions get 410 Gone."
    ),
    sim_delay: float = typer.Option(
        1.0, "--sim-delay", metavar=conventions.SECONDS, help="Seconds until simulated pods run (0.05 or more)."
    ),
    no_simulation: bool = typer.Option(False, "--no-simulation", help="Do not simulate workload controllers."),
    authz: str = typer.Option(
        "AlwaysAllow",
        "--authz",
        metavar=conventions.TEXT,
        help="Authorization mode: AlwaysAllow or rbac (every request then needs a token; "
        "implies --tls, since kubectl sends tokens only over HTTPS).",
    ),
    token_file: Path = typer.Option(
        None,
        "--token-file",
        metavar=conventions.FILE,
        help="Static tokens, one token,user,uid,groups line each (groups quoted).",
    ),
    fault: list[str] = typer.Option(
        [], "--fault", metavar=conventions.TEXT, help="Inject faults, e.g. error=create:0.2 (see docs)."
    ),
) -> None:
    """Serve a local Kubernetes-compatible API server until stopped; prints the kubeconfig path.

    Ctrl-C stops it with exit code 130, SIGTERM with 0.

    Example:

        tether sandbox --port 0 --tls --data /tmp/sandbox
    """
    from tether.sandbox.extras import ExtrasConfig
    from tether.sandbox.server import SandboxConfig
    from tether.sandbox.tls import ensure_admin_token

    if port < 0 or port > 65535:
        raise UsageError(f"--port {port} is not a TCP port")
    if authz.lower() not in ("alwaysallow", "rbac"):
        raise UsageError(f"--authz {authz!r}: choose AlwaysAllow or rbac")
    rbac = authz.lower() == "rbac"
    tls = tls or rbac
    tokens = list(token)
    if tls and not tokens:
        # a kubeconfig without credentials makes kubectl prompt for a username over HTTPS
        tokens = [ensure_admin_token(data / "pki" / "admin-token")]
    extras = ExtrasConfig(
        simulate=not no_simulation,
        sim_delay=max(sim_delay, 0.05),
        authz="rbac" if rbac else "AlwaysAllow",
        token_file=token_file,
        faults=list(fault),
    )
    config = SandboxConfig(
        host=host, port=port, data_dir=data, tls=tls, tokens=tokens, history_size=history, extras=extras
    )
    _serve(config, kubeconfig_out or data / "kubeconfig")


def register(app: typer.Typer) -> None:
    app.command("sandbox")(sandbox_command)
