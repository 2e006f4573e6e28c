"""The ``tether`` command tree: the root command, its options and the command groups.

``tether.cli.main`` is the entry point; it imports this module only once it can handle Ctrl-C,
since importing every command group takes a noticeable moment.
"""

from __future__ import annotations

import typer
import typer.core
import typer.main

from tether import __version__
from tether.cli import conventions

app = typer.Typer(
    name="tether",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": conventions.HELP_OPTION_NAMES},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the tether version and exit."
    ),
) -> None:
    """GitOps continuous delivery for Kubernetes.

    Exit codes: 0 ok (diff: no changes), 1 diff found changes or invalid / unhealthy input, 2 error, 130 interrupted.
    Set TETHER_DEBUG=1 to see the traceback of an unexpected error.

    Example:

        tether diff ./deploy --app web --kubeconfig ~/.kube/config
    """


# Command groups: each module under tether.cli exposes ``register(app)``.
# (one line per group, kept sorted)
from tether.cli import app_test as _app_test  # noqa: E402
from tether.cli import apps as _apps  # noqa: E402
from tether.cli import controller as _controller  # noqa: E402
from tether.cli import dashboard as _dashboard  # noqa: E402
from tether.cli import demo as _demo  # noqa: E402
from tether.cli import image as _image  # noqa: E402
from tether.cli import install as _install  # noqa: E402
from tether.cli import preview as _preview  # noqa: E402
from tether.cli import push as _push  # noqa: E402
from tether.cli import render as _render_cli  # noqa: E402
from tether.cli import sandbox as _sandbox  # noqa: E402
from tether.cli import secrets as _secrets  # noqa: E402

for _group in (
    _app_test,
    _apps,
    _controller,
    _dashboard,
    _demo,
    _image,
    _install,
    _preview,
    _push,
    _render_cli,
    _sandbox,
    _secrets,
):
    _group.register(app)


@app.command()
def version() -> None:
    """Print the tether version (the same as tether --version).

    Example:

        tether version
    """
    typer.echo(__version__)


def command() -> typer.core.TyperGroup:
    """The click command tree of ``tether``, with the help conventions applied."""
    group = typer.main.get_command(app)
    conventions.apply_help_conventions(group)
    return group  # type: ignore[return-value]
