"""Run an in-process renderer (Helm's Go library, the Jsonnet VM) in a child process with a time limit.

Both libraries run native code that holds the interpreter and cannot be interrupted, so a
thread with a timeout would leave a runaway template spinning forever. A child process can
be killed. The child is a fresh ``python -m tether.render.isolate`` (not a fork: forking a
process that loaded the Go runtime is unsafe; and not multiprocessing's "spawn", which
re-imports the caller's ``__main__``). Arguments and results travel as pickles over pipes.
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from tether.errors import RenderError, TetherError


def run_isolated(func: Callable[..., Any], args: tuple[Any, ...], timeout: float, what: str) -> Any:
    """Call ``func(*args)`` (a module-level function) in a child process; RenderError on error, crash or timeout."""
    request = pickle.dumps((func.__module__, func.__qualname__, args))
    try:
        done = subprocess.run([sys.executable, "-m", "tether.render.isolate"], input=request, capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise RenderError(f"{what}: rendering took longer than {timeout:g}s; stopped (raise --timeout if needed)") \
            from error
    try:
        status, payload = pickle.loads(done.stdout)
    except Exception as error:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise RenderError(f"{what}: renderer crashed (exit code {done.returncode}) {detail[0]}".rstrip()) from error
    if status == "error":
        raise RenderError(f"{what}: {payload}")
    return payload


def _main() -> None:
    module, name, args = pickle.loads(sys.stdin.buffer.read())
    try:
        result = ("ok", getattr(importlib.import_module(module), name)(*args))
    except TetherError as error:
        result = ("error", str(error))
    except Exception as error:  # report anything; the parent turns it into a RenderError
        result = ("error", f"{type(error).__name__}: {error}")
    sys.stdout.buffer.write(pickle.dumps(result))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _main()
