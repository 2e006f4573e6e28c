"""Entry point of the ``tether`` command: assembles the command groups."""

from __future__ import annotations

import sys

import typer

from tether import __version__
from tether.errors import TetherError

app = typer.Typer(
    name="tether",
    help="GitOps continuous delivery for Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """GitOps continuous delivery for Kubernetes."""


# Command groups: each module under tether.cli exposes ``register(app)``.
# (one line per group, kept sorted)
from tether.cli import apps as _app  # noqa: E402
from tether.cli import install as _install  # noqa: E402
from tether.cli import push as _push  # noqa: E402
from tether.cli import render as _render_cli  # noqa: E402
from tether.cli import sandbox as _sandbox  # noqa: E402
from tether.cli import secrets as _secrets  # noqa: E402

for _group in (_app, _install, _push, _render_cli, _sandbox, _secrets):
    _group.register(app)


@app.command()
def version() -> None:
    """Print the tether version."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except TetherError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
