"""Run an in-process renderer (Helm's Go library, the Jsonnet VM) in a child process with a time limit.

Both libraries run native code that holds the interpreter and cannot be interrupted, so a
thread with a timeout would leave a runaway template spinning forever. A spawned child can
be killed. "spawn" (not "fork") because forking a process that already loaded the Go runtime
is unsafe.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from tether.errors import RenderError, TetherError


def _child(conn: Connection, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        conn.send(("ok", func(*args)))
    except TetherError as error:
        conn.send(("error", str(error)))
    except BaseException as error:  # report anything; the parent turns it into a RenderError
        conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        conn.close()


def run_isolated(func: Callable[..., Any], args: tuple[Any, ...], timeout: float, what: str) -> Any:
    """Call ``func(*args)`` in a child process; RenderError on error, crash or timeout."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child, func, args), daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise RenderError(f"{what}: rendering took longer than {timeout:g}s; stopped (raise --timeout if needed)")
        try:
            status, payload = parent.recv()
        except EOFError as error:
            process.join(5)
            raise RenderError(f"{what}: renderer crashed (exit code {process.exitcode})") from error
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        parent.close()
    if status == "error":
        raise RenderError(f"{what}: {payload}")
    return payload
