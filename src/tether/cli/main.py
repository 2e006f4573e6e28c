"""Entry point of the ``tether`` command: assembles the command groups and is the one place where
errors become messages and exit codes (see tether.cli.conventions and docs/cli.md).

No Python traceback reaches a user: a ``TetherError`` prints ``error: MESSAGE`` and exits with its
code, Ctrl-C exits 130, and anything unexpected prints one line (the traceback too with
``TETHER_DEBUG=1``) and exits 2.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer
import typer.core
import typer.main

from tether import __version__
from tether.cli import conventions
from tether.errors import TetherError

app = typer.Typer(
    name="tether",
    help="GitOps continuous delivery for Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
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

    Exit codes: 0 ok (diff: no changes), 1 diff found changes or the input is invalid / unhealthy,
    2 error, 130 interrupted. Set TETHER_DEBUG=1 to see the traceback of an unexpected error.

    Example:

        tether diff ./deploy --app web --kubeconfig ~/.kube/config
    """


# Command groups: each module under tether.cli exposes ``register(app)``.
# (one line per group, kept sorted)
from tether.cli import push as _push  # noqa: E402
from tether.cli import render as _render_cli  # noqa: E402
from tether.cli import sandbox as _sandbox  # noqa: E402
from tether.cli import secrets as _secrets  # noqa: E402

for _group in (_push, _render_cli, _sandbox, _secrets):
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


def _interrupted() -> int:
    # tasks of an interrupted event loop are destroyed while pending; asyncio would log each one
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    conventions.print_interrupted()
    return conventions.INTERRUPTED


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line and return its exit code; prints errors, never raises (but SystemExit)."""
    try:
        result = command().main(args=list(argv) if argv is not None else None, prog_name="tether",
                                standalone_mode=False)
    except TetherError as error:
        conventions.print_error(str(error))
        return error.exit_code
    except typer.Abort as error:  # what a prompt raises on Ctrl-C or on a closed stdin
        if isinstance(error.__cause__, KeyboardInterrupt):
            return _interrupted()
        if isinstance(error.__cause__, EOFError):
            conventions.print_error("standard input ended while waiting for an answer")
            return conventions.ERROR
        conventions.print_error("aborted")
        return conventions.CHANGES_OR_INVALID
    except KeyboardInterrupt:
        return _interrupted()
    except typer.TyperException as error:  # a usage error: typer formats it (and the usage line) itself
        from typer import rich_utils

        rich_utils.rich_format_error(error)  # type: ignore[arg-type]
        return error.exit_code
    except OSError as error:
        conventions.print_error(conventions.describe_os_error(error))
        conventions.print_traceback(error)
        return conventions.ERROR
    except Exception as error:
        conventions.print_error(conventions.describe_unexpected(error))
        conventions.print_traceback(error)
        return conventions.ERROR
    # without standalone mode, typer returns the code of a typer.Exit, and turns Ctrl-C into Exit(130)
    code = result if isinstance(result, int) else conventions.OK
    if code == conventions.INTERRUPTED:
        return _interrupted()
    return code


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
