"""Entry point of the ``tether`` command, and the one place where errors become messages and exit
codes (see tether.cli.conventions and docs/cli.md).

No Python traceback reaches a user: a ``TetherError`` prints ``error: MESSAGE`` and exits with its
code, Ctrl-C exits 130 (also while the command tree is still being imported), and anything
unexpected prints one line (the traceback too with ``TETHER_DEBUG=1``) and exits 2.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from tether.cli import conventions


def __getattr__(name: str) -> Any:
    if name == "app":  # ``from tether.cli.main import app`` keeps working; the tree loads on demand
        from tether.cli.app import app

        return app
    raise AttributeError(name)


class _Interrupts:
    """Ctrl-C that lets a running event loop unwind: its tasks are cancelled, not hit mid-step.

    Python raises KeyboardInterrupt wherever the main thread happens to be; inside an event loop
    that leaves coroutines half run, and their cleanup (closing connections) then fails once the
    loop is gone. While a loop runs, the first Ctrl-C cancels its tasks instead, so ``finally``
    blocks run on the loop; a second Ctrl-C, or one outside a loop, raises KeyboardInterrupt.
    """

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = None

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _on_sigint(self, signum: int, frame: object) -> None:
        first, self.received = not self.received, True
        asyncio = sys.modules.get("asyncio")  # not imported yet: no event loop can be running
        try:
            loop = asyncio.get_running_loop() if asyncio is not None else None
        except RuntimeError:
            loop = None
        if not first or loop is None or asyncio is None:
            raise KeyboardInterrupt
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.call_soon_threadsafe(lambda: None)  # wake the loop if it sleeps in select()


def _interrupted() -> int:
    if not conventions.debugging():
        # an interrupted program leaves coroutines and connections unfinished; Python and asyncio
        # would report each one as it is collected
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        sys.unraisablehook = lambda unraisable: None
    conventions.print_interrupted()
    return conventions.INTERRUPTED


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line and return its exit code; prints errors, never raises (but SystemExit)."""
    with _Interrupts() as interrupts:
        try:
            code = _run(argv, interrupts)
        except SystemExit:
            raise
        except BaseException as error:  # whatever a Ctrl-C left behind, or a cancellation nobody expected
            if interrupts.received or isinstance(error, KeyboardInterrupt):
                return _interrupted()
            conventions.print_error(conventions.describe_unexpected(error))
            conventions.print_traceback(error)
            return conventions.ERROR
    if interrupts.received and code != conventions.OK:
        return _interrupted()
    return code


def _run(argv: Sequence[str] | None, interrupts: _Interrupts) -> int:
    """The command's exit code; expected failures are printed, an interrupt propagates."""
    import typer

    from tether.cli.app import command

    try:
        result = command().main(
            args=list(argv) if argv is not None else None, prog_name="tether", standalone_mode=False
        )
    except typer.Abort as error:  # what a prompt raises on Ctrl-C or on a closed stdin
        if isinstance(error.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        if isinstance(error.__cause__, EOFError):
            conventions.print_error("standard input ended while waiting for an answer")
            return conventions.ERROR
        conventions.print_error("aborted")
        return conventions.CHANGES_OR_INVALID
    except Exception as error:
        if interrupts.received:  # the error is how the interrupted command unwound
            raise
        return _report(error)
    # without standalone mode, typer returns the code of a typer.Exit, and turns Ctrl-C into Exit(130)
    code = result if isinstance(result, int) else conventions.OK
    if code == conventions.INTERRUPTED:
        raise KeyboardInterrupt
    return code


def _report(error: Exception) -> int:
    """Print an error that ended a command; its exit code."""
    import typer

    from tether.errors import TetherError

    if isinstance(error, TetherError):
        conventions.print_error(str(error))
        conventions.print_traceback(error)  # only with TETHER_DEBUG=1
        return error.exit_code
    if isinstance(error, typer.TyperException):  # a usage error: typer formats it (and the usage line)
        from typer import rich_utils

        rich_utils.rich_format_error(error)  # type: ignore[arg-type]
        return error.exit_code
    if isinstance(error, OSError):
        conventions.print_error(conventions.describe_os_error(error))
    else:
        conventions.print_error(conventions.describe_unexpected(error))
    conventions.print_traceback(error)
    return conventions.ERROR


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
