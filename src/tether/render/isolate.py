"""Run an in-process renderer (Helm's Go library, the Jsonnet VM) in a child process within limits.

Both libraries run native code that holds the interpreter and cannot be interrupted, so a
thread with a timeout would leave a runaway template spinning forever. A child process can
be killed. The child is a fresh ``python -m tether.render.isolate`` (not a fork: forking a
process that loaded the Go runtime is unsafe; and not multiprocessing's "spawn", which
re-imports the caller's ``__main__``). Arguments and results travel as pickles over pipes. The
child runs under ``tether.render.limits``: time, address space (RLIMIT_AS) and output size.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tether
from tether.errors import RenderError, TetherError
from tether.render.limits import Limits, memory_error, run_limited


def run_isolated(func: Callable[..., Any], args: tuple[Any, ...], limits: Limits | float, what: str) -> Any:
    """Call ``func(*args)`` (a module-level function) in a child process; RenderError on error, crash or a limit.

    ``limits``: time, memory and output budget of the child (a number: seconds, other limits default)."""
    if not isinstance(limits, Limits):
        limits = Limits(timeout=float(limits))
    request = pickle.dumps((func.__module__, func.__qualname__, args))
    # the child must import this very tether, even when it is on sys.path only by the caller's doing
    package_parent = str(Path(tether.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    done = run_limited(
        [sys.executable, "-m", "tether.render.isolate"], what=what, limits=limits, stdin=request, env=env
    )
    try:
        status, payload = pickle.loads(done.stdout)
    except Exception as error:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise RenderError(f"{what}: renderer crashed (exit code {done.returncode}) {detail[0]}".rstrip()) from error
    if status == "memory" and limits.max_memory_bytes:
        raise memory_error(what, limits)
    if status in ("error", "memory"):
        raise RenderError(f"{what}: {payload}")
    return payload


def _main() -> None:
    module, name, args = pickle.loads(sys.stdin.buffer.read())
    try:
        result = ("ok", getattr(importlib.import_module(module), name)(*args))
    except TetherError as error:
        result = ("error", str(error))
    except MemoryError:
        result = ("memory", "out of memory")
    except Exception as error:  # report anything; the parent turns it into a RenderError
        result = ("error", f"{type(error).__name__}: {error}")
    sys.stdout.buffer.write(pickle.dumps(result))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _main()
