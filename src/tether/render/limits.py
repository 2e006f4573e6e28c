"""Run a renderer's child process within a time, memory and output budget.

Every child a renderer starts (``kubectl kustomize``, the Helm and Jsonnet child of
``tether.render.isolate``) goes through ``run_limited``:

- **memory**: the child's address space is capped with ``RLIMIT_AS`` (and core dumps are
  off). The cap is set by a tiny launcher (``python -S -c ...`` that calls ``setrlimit`` and
  ``exec``s the real command) rather than a ``preexec_fn``, which is not safe in a process
  that runs threads. The cap is on *virtual* memory: a Go program such as kubectl reserves
  about 1.2 GiB of address space before doing anything, Helm's Go library in a Python child
  about 1.8 GiB, hence the default of 3 GiB.
- **output**: stdout is read as it comes; once it passes the limit the child is killed. stderr
  keeps only its last 64 KiB (it is for messages).
- **time**: the child is killed at the deadline.

Each limit that is hit is a ``RenderError`` naming the renderer, the limit and the option that
raises it, never a crash of the caller.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tether.errors import RenderError

#: cap on a renderer child's address space (virtual memory; see the module docstring)
DEFAULT_MAX_MEMORY_BYTES = 3 * 1024**3
#: cap on what a renderer child may print (the rendered manifests)
DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024**2
#: seconds a renderer may run (``--render-timeout`` on the command line)
DEFAULT_RENDER_TIMEOUT = 120.0

_STDERR_KEEP = 64 * 1024
_CHUNK = 64 * 1024

# sets the limits, then becomes the real command; -S: no site import, so it starts in milliseconds
_LAUNCHER = (
    "import os, resource, sys\n"
    "limit = int(sys.argv[1])\n"
    "_soft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
    "limit = limit if hard == resource.RLIM_INFINITY else min(limit, hard)\n"
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)

# what Go, Python and the C runtime print when an allocation fails under RLIMIT_AS
_OUT_OF_MEMORY = re.compile(
    r"out of memory|cannot allocate memory|memory allocation|MemoryError|std::bad_alloc|pthread_create failed|"
    r"failed to reserve page summary memory|mmap.*errno=12|Resource temporarily unavailable",
    re.I,
)


@dataclass(frozen=True)
class Limits:
    timeout: float = DEFAULT_RENDER_TIMEOUT
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES  # 0: no limit
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES  # 0: no limit


@dataclass
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


def _mib(count: int) -> str:
    return f"{count / 1024**2:g} MiB"


def memory_error(what: str, limits: Limits) -> RenderError:
    return RenderError(
        f"{what}: ran out of memory under the limit of {limits.max_memory_bytes} bytes "
        f"({_mib(limits.max_memory_bytes)}, RenderOptions.max_memory_bytes); stopped"
    )


def looks_out_of_memory(completed: Completed) -> bool:
    return completed.returncode != 0 and bool(_OUT_OF_MEMORY.search(completed.stderr.decode("utf-8", "replace")))


def run_limited(
    command: list[str],
    *,
    what: str,
    limits: Limits,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Completed:
    """Run ``command`` under ``limits``; RenderError when one is exceeded (or the child runs out of memory)."""
    if limits.max_memory_bytes:
        command = [sys.executable, "-S", "-c", _LAUNCHER, str(limits.max_memory_bytes), *command]
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as error:
        raise RenderError(f"{what}: cannot start {command[0]}: {error.strerror}") from error
    writer = threading.Thread(target=_feed, args=(process, stdin), daemon=True)
    writer.start()
    stdout, stderr = bytearray(), bytearray()
    deadline = time.monotonic() + limits.timeout
    exceeded = ""
    with selectors.DefaultSelector() as selector:
        assert process.stdout is not None and process.stderr is not None
        selector.register(process.stdout, selectors.EVENT_READ, stdout)
        selector.register(process.stderr, selectors.EVENT_READ, stderr)
        while selector.get_map() and not exceeded:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                exceeded = "timeout"
                break
            for key, _events in selector.select(min(remaining, 1.0)):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                buffer += chunk
                if buffer is stderr and len(stderr) > _STDERR_KEEP:
                    del stderr[:-_STDERR_KEEP]
                if buffer is stdout and limits.max_output_bytes and len(stdout) > limits.max_output_bytes:
                    exceeded = "output"
                    break
    if exceeded:
        _kill(process)
    else:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            exceeded = "timeout"
            _kill(process)
    writer.join(timeout=5)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    if exceeded == "timeout":
        raise RenderError(
            f"{what}: rendering took longer than {limits.timeout:g}s; stopped "
            "(raise --render-timeout if it needs longer)"
        )
    if exceeded == "output":
        raise RenderError(
            f"{what}: output passed the limit of {limits.max_output_bytes} bytes ({_mib(limits.max_output_bytes)}, "
            "RenderOptions.max_output_bytes); stopped"
        )
    completed = Completed(process.returncode, bytes(stdout), bytes(stderr))
    if limits.max_memory_bytes and looks_out_of_memory(completed):
        raise memory_error(what, limits)
    return completed


def _feed(process: subprocess.Popen[bytes], data: bytes) -> None:
    assert process.stdin is not None
    try:
        if data:
            process.stdin.write(data)
        process.stdin.close()
    except (BrokenPipeError, ValueError, OSError):
        pass  # the child exited (or was killed) without reading everything


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the child and anything it started (its own session), then reap it."""
    try:
        os.killpg(process.pid, 9)
    except (ProcessLookupError, PermissionError):
        process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL does not wait; never hang on a zombie
        process.wait(timeout=10)
