"""WorkQueue semantics: order, dedupe, dirty re-run, per-key exclusivity, concurrency, delays,
rate limiting, failure retry, latency hook and shutdown."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tether.controller.backoff import Backoff
from tether.controller.queue import QueueShutDown, WorkQueue

FAST = Backoff(base=0.001, factor=2, cap=0.01, jitter=0)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


async def drain_with(queue: WorkQueue[str], worker: Callable[[str], Awaitable[None]], concurrency: int = 1) -> None:
    """Run the queue until it is idle, then shut it down."""
    runner = asyncio.create_task(queue.run(worker, concurrency))
    await asyncio.sleep(0)
    await queue.wait_idle()
    await queue.shutdown()
    await runner


@pytest.mark.parametrize(
    ("adds", "processed"),
    [
        (["a", "b", "c"], ["a", "b", "c"]),  # first in, first out
        (["a", "a", "b", "a", "c", "b"], ["a", "b", "c"]),  # a queued key is added once
        (["x"], ["x"]),
        ([], []),
    ],
)
def test_order_and_dedupe_of_queued_keys(adds: list[str], processed: list[str]) -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        seen: list[str] = []
        for key in adds:
            queue.add(key)
        assert queue.depth() == len(set(adds))

        async def worker(key: str) -> None:
            seen.append(key)

        await drain_with(queue, worker)
        return seen

    assert run(scenario()) == processed


@pytest.mark.parametrize("adds_while_running", [0, 1, 5])
def test_adding_a_key_while_it_runs_runs_it_exactly_once_more(adds_while_running: int) -> None:
    async def scenario() -> int:
        queue: WorkQueue[str] = WorkQueue()
        runs: Counter[str] = Counter()
        started, release = asyncio.Event(), asyncio.Event()

        async def worker(key: str) -> None:
            runs[key] += 1
            if runs[key] == 1:
                started.set()
                await release.wait()

        queue.add("a")
        runner = asyncio.create_task(queue.run(worker, 4))
        await started.wait()
        for _ in range(adds_while_running):
            queue.add("a")
        assert queue.depth() == 0  # dirty keys wait for the run, not for a worker
        assert queue.is_queued("a") == bool(adds_while_running)
        release.set()
        await queue.wait_idle()
        await queue.shutdown()
        await runner
        return runs["a"]

    assert run(scenario()) == (2 if adds_while_running else 1)


@pytest.mark.parametrize(("concurrency", "keys"), [(1, 6), (3, 12), (8, 5)])
def test_concurrency_bound_and_never_two_workers_on_one_key(concurrency: int, keys: int) -> None:
    async def scenario() -> tuple[int, Counter[str]]:
        queue: WorkQueue[str] = WorkQueue()
        rng = random.Random(3)
        active: set[str] = set()
        peak = 0
        runs: Counter[str] = Counter()
        names = [f"k{i}" for i in range(keys)]

        async def worker(key: str) -> None:
            nonlocal peak
            assert key not in active, f"{key} processed by two workers at once"
            active.add(key)
            peak = max(peak, len(active))
            runs[key] += 1
            # keep re-adding random keys (often ones that are running) while working
            if sum(runs.values()) < keys * 6:
                queue.add(rng.choice(names))
            await asyncio.sleep(rng.random() / 500)
            active.discard(key)

        for name in names:
            queue.add(name)
        await drain_with(queue, worker, concurrency)
        return peak, runs

    peak, runs = run(scenario())
    assert peak == min(concurrency, keys)
    assert set(runs) == {f"k{i}" for i in range(keys)}


def test_add_after_waits_then_runs_and_add_supersedes_a_waiting_entry() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        seen: list[str] = []

        async def worker(key: str) -> None:
            seen.append(key)

        runner = asyncio.create_task(queue.run(worker, 1))
        queue.add_after("late", 0.05)
        queue.add_after("later", 0.2)
        queue.add_after("later", 0.1)  # the earlier time wins
        queue.add_after("later", 5)  # ... and a later one does not postpone it
        queue.add_after("now-instead", 60)
        queue.add("now-instead")  # runs at once, and not again in a minute
        queue.add("first")
        assert queue.waiting() == 2
        while len(seen) < 4:
            await asyncio.sleep(0.01)
        assert queue.waiting() == 0
        await queue.shutdown()
        await runner
        return seen

    assert run(scenario()) == ["now-instead", "first", "late", "later"]


def test_add_after_of_a_queued_key_is_a_noop() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        queue.add_after("a", 0.01)
        assert queue.waiting() == 0
        assert queue.depth() == 1
        await queue.shutdown()

    run(scenario())


def test_rate_limited_adds_back_off_per_key_and_forget_resets() -> None:
    async def scenario() -> tuple[list[float], float, int]:
        queue: WorkQueue[str] = WorkQueue(Backoff(base=1, factor=2, cap=8, jitter=0))
        delays = [queue.add_rate_limited("a") for _ in range(6)]
        other = queue.add_rate_limited("b")
        failures = queue.failures("a")
        queue.forget("a")
        assert queue.add_rate_limited("a") == 1
        await queue.shutdown()
        return delays, other, failures

    delays, other, failures = run(scenario())
    assert delays == [1, 2, 4, 8, 8, 8]
    assert (other, failures) == (1, 6)


def test_a_worker_that_raises_is_retried_with_backoff() -> None:
    async def scenario() -> tuple[int, int]:
        queue: WorkQueue[str] = WorkQueue(FAST)
        attempts = 0

        async def worker(key: str) -> None:
            nonlocal attempts
            attempts += 1
            if attempts < 4:
                raise RuntimeError("render failed")
            queue.forget(key)

        queue.add("app")
        runner = asyncio.create_task(queue.run(worker, 1))
        while attempts < 4:
            await asyncio.sleep(0.005)
        await queue.wait_idle()
        failures = queue.failures("app")
        await queue.shutdown()
        await runner
        return attempts, failures

    assert run(scenario()) == (4, 0)


def test_latency_hook_measures_add_to_start() -> None:
    async def scenario() -> list[tuple[str, float]]:
        now = [100.0]
        measured: list[tuple[str, float]] = []
        queue: WorkQueue[str] = WorkQueue(
            on_latency=lambda key, seconds: measured.append((key, seconds)), clock=lambda: now[0]
        )
        queue.add("a")
        now[0] = 102.5
        queue.add("b")
        now[0] = 104.0

        async def worker(key: str) -> None:
            pass

        await drain_with(queue, worker)
        return measured

    assert run(scenario()) == [("a", 4.0), ("b", 1.5)]


@pytest.mark.parametrize(
    ("drain", "timeout", "finished", "cancelled"),
    [(True, None, True, False), (False, None, False, True), (True, 0.05, False, True)],
)
def test_shutdown_finishes_or_cancels_running_work_and_starts_nothing_new(
    drain: bool,
    timeout: float | None,
    finished: bool,
    cancelled: bool,
) -> None:
    async def scenario() -> dict[str, Any]:
        queue: WorkQueue[str] = WorkQueue()
        outcome: dict[str, Any] = {"finished": False, "cancelled": False, "started": []}
        started, release = asyncio.Event(), asyncio.Event()

        async def worker(key: str) -> None:
            outcome["started"].append(key)
            if key == "slow":
                started.set()
                try:
                    if timeout is None:
                        await asyncio.sleep(0.05)  # finishes by itself
                    else:
                        await release.wait()  # only a cancel ends it
                    outcome["finished"] = True
                except asyncio.CancelledError:
                    outcome["cancelled"] = True
                    raise

        queue.add("slow")
        queue.add("queued")  # waits for the one worker
        queue.add_after("scheduled", 0.01)
        runner = asyncio.create_task(queue.run(worker, 1))
        await started.wait()
        await queue.shutdown(drain=drain, timeout=timeout)
        assert queue.in_flight() == frozenset()
        await runner  # run returns after shutdown
        queue.add("after")  # ignored
        await asyncio.sleep(0.03)
        outcome["depth"] = queue.depth()
        with pytest.raises(QueueShutDown, match="shut down"):
            await queue.run(worker, 1)
        return outcome

    outcome = run(scenario())
    assert (outcome["finished"], outcome["cancelled"]) == (finished, cancelled)
    assert outcome["started"] == ["slow"]
    assert outcome["depth"] == 0


def test_cancelling_run_cancels_running_work() -> None:
    async def scenario() -> bool:
        queue: WorkQueue[str] = WorkQueue()
        cancelled = asyncio.Event()
        started = asyncio.Event()

        async def worker(key: str) -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        queue.add("a")
        runner = asyncio.create_task(queue.run(worker, 2))
        await started.wait()
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        return cancelled.is_set() and queue.shutting_down

    assert run(scenario())


def test_invalid_concurrency_is_refused() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()

        async def worker(key: str) -> None:
            pass

        with pytest.raises(ValueError, match="at least 1"):
            await queue.run(worker, 0)

    run(scenario())
