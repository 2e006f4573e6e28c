"""``tether demo``: the GitOps loop on this machine, with nothing else installed.

Starts the sandbox, a Git server holding the example repository, the controller and an
Application for it, then prints what to try. ``--tour`` runs the tour unattended, timing each
step, and exits 0 only if every step held.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from typing import Annotated

import typer


def demo_command(
    tour: Annotated[
        bool, typer.Option("--tour", help="Run the tour unattended; exit 0 only if every step held.")
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option("--data", metavar="DIRECTORY", help="Keep state here (default: a temporary directory)."),
    ] = None,
) -> None:
    """Run the GitOps loop locally: sandbox, Git server, controller and an example app.

    Example:

        tether demo --tour
    """
    with contextlib.ExitStack() as stack:
        directory = data or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tether-demo-")))
        from tether.cli.demo_tour import run_demo  # the sandbox and controller load only when used

        code = asyncio.run(run_demo(directory, tour=tour))
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
