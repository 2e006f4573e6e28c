"""A work queue of keys (one per Application) for the reconcilers, asyncio only.

Semantics, after the client-go work queue:

- A key is in the queue at most once: adding a key that already waits is a no-op.
- A key is processed by at most one worker at a time. Adding a key while it is being
  processed marks it *dirty*: it runs once more after the current run ends, however many
  times it was added meanwhile.
- At most ``concurrency`` keys are processed at once (``run``).
- A key has at most one pending entry: queued now, or waiting for a time. ``add`` supersedes
  a waiting entry (the key runs now instead); of two ``add_after`` the earlier time wins.
- ``add_rate_limited`` waits per-key exponential backoff with jitter; ``forget`` resets it
  (the reconciler calls it after a success).
- A worker that raises (anything but cancellation) is logged and its key retried rate-limited,
  so an unexpected bug delays an Application instead of dropping it from the queue.
- ``shutdown(drain=True)`` lets running work finish but starts nothing new;
  ``drain=False`` cancels it. Either way ``run`` returns once no work is left running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from tether.controller.backoff import Backoff, KeyedBackoff
from tether.errors import TetherError

K = TypeVar("K", bound=Hashable)
log = logging.getLogger("tether.controller.queue")

Worker = Callable[[K], Awaitable[object]]
LatencyHook = Callable[[K, float], None]


class QueueShutDown(TetherError):
    """The work queue was shut down; it runs no more work."""


class WorkQueue(Generic[K]):
    def __init__(
        self,
        backoff: Backoff | None = None,
        *,
        on_latency: LatencyHook[K] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ready: deque[K] = deque()
        self._pending: set[K] = set()  # keys that must run (again): in _ready, or dirty while processing
        self._processing: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._added_at: dict[K, float] = {}
        self._tasks: dict[K, asyncio.Task[None]] = {}
        self._limiter: KeyedBackoff[K] = KeyedBackoff(backoff or Backoff(base=1.0, cap=300.0))
        self._on_latency = on_latency
        self._clock = clock
        self._wake = asyncio.Event()
        self._shutting_down = False
        self._running = False

    # ------------------------------------------------------------ adding

    def add(self, key: K) -> None:
        """Queue ``key`` to run as soon as a worker is free (or again after its current run)."""
        if self._shutting_down:
            return
        self._cancel_timer(key)
        if key in self._pending:
            return
        self._pending.add(key)
        self._added_at[key] = self._clock()
        if key not in self._processing:
            self._ready.append(key)
            self._wake.set()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds; no-op when it is already queued or waits less."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        if key in self._pending:
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._timer_fired, key)

    def add_rate_limited(self, key: K) -> float:
        """Queue ``key`` after its next backoff delay (one more failure); returns that delay."""
        delay = self._limiter.next_delay(key)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset the key's failure count (its next ``add_rate_limited`` waits ``base``)."""
        self._limiter.forget(key)

    def failures(self, key: K) -> int:
        return self._limiter.failures(key)

    def _timer_fired(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _cancel_timer(self, key: K) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    # ------------------------------------------------------------ introspection (metrics, tests)

    def depth(self) -> int:
        """Keys ready to run and waiting for a worker."""
        return len(self._ready)

    def waiting(self) -> int:
        """Keys scheduled for later (``add_after`` / ``add_rate_limited``)."""
        return len(self._timers)

    def in_flight(self) -> frozenset[K]:
        return frozenset(self._processing)

    def is_queued(self, key: K) -> bool:
        """Will ``key`` run (again) without a further add: ready, or dirty while processing."""
        return key in self._pending

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    async def wait_idle(self, poll: float = 0.01) -> None:
        """Return once nothing is ready or running (scheduled keys may still wait)."""
        while self._ready or self._processing:
            await asyncio.sleep(poll)

    # ------------------------------------------------------------ running

    async def run(self, worker: Worker[K], concurrency: int) -> None:
        """Process keys with ``worker`` until ``shutdown``; at most ``concurrency`` at once."""
        if concurrency < 1:
            raise ValueError(f"work queue concurrency must be at least 1, not {concurrency}")
        if self._running:
            raise RuntimeError("WorkQueue.run is already running")
        if self._shutting_down:
            raise QueueShutDown("the work queue was shut down; create a new one")
        self._running = True
        slots = asyncio.Semaphore(concurrency)
        try:
            while True:
                await slots.acquire()
                key = await self._next()
                if key is None:
                    slots.release()
                    break
                self._start(worker, key, slots)
        finally:
            # run() itself cancelled: take the work down with it
            if not self._shutting_down:
                self._shutting_down = True
                for task in self._tasks.values():
                    task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._running = False

    async def _next(self) -> K | None:
        while not self._ready:
            if self._shutting_down:
                return None
            self._wake.clear()
            await self._wake.wait()
        if self._shutting_down:
            return None
        return self._ready.popleft()

    def _start(self, worker: Worker[K], key: K, slots: asyncio.Semaphore) -> None:
        self._pending.discard(key)
        self._processing.add(key)
        added = self._added_at.pop(key, None)
        if added is not None and self._on_latency is not None:
            try:
                self._on_latency(key, max(self._clock() - added, 0.0))
            except Exception:  # a metrics hook must not stop the queue
                log.exception("work queue latency hook failed for %r", key)
        self._tasks[key] = asyncio.create_task(self._process(worker, key, slots), name=f"reconcile {key!r}")

    async def _process(self, worker: Worker[K], key: K, slots: asyncio.Semaphore) -> None:
        try:
            await worker(key)
        except asyncio.CancelledError:
            if not self._shutting_down:
                raise
        except Exception:
            log.exception("reconcile of %r failed unexpectedly; retrying with backoff", key)
            self.add_rate_limited(key)
        finally:
            self._processing.discard(key)
            self._tasks.pop(key, None)
            slots.release()
            if key in self._pending and not self._shutting_down:
                self._ready.append(key)
                self._wake.set()

    async def shutdown(self, drain: bool = True, timeout: float | None = None) -> None:
        """Stop: start no new work, drop what is queued or scheduled, and finish (``drain``) or
        cancel the running work. With ``drain`` and a ``timeout``, work still running after it
        is cancelled. Returns when no work is left running."""
        self._shutting_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._ready.clear()
        self._pending.clear()
        self._wake.set()
        tasks = list(self._tasks.values())
        if not tasks:
            return
        if drain:
            _done, still_running = await asyncio.wait(tasks, timeout=timeout)
        else:
            still_running = set(tasks)
        for task in still_running:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
