"""Backoff delays: exponential growth, the cap, jitter bounds, per-key counts and reset."""

from __future__ import annotations

import random

import pytest

from tether.controller.backoff import Backoff, KeyedBackoff


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        (Backoff(base=1, factor=2, cap=10, jitter=0), [1, 2, 4, 8, 10, 10, 10]),
        (Backoff(base=0.5, factor=3, cap=100, jitter=0), [0.5, 1.5, 4.5, 13.5, 40.5, 100, 100]),
        (Backoff(base=5, factor=1, cap=60, jitter=0), [5, 5, 5, 5, 5, 5, 5]),
        (Backoff(base=20, factor=2, cap=10, jitter=0), [10, 10, 10, 10, 10, 10, 10]),
    ],
)
def test_delay_grows_geometrically_up_to_the_cap(backoff: Backoff, expected: list[float]) -> None:
    assert [backoff.delay(n) for n in range(len(expected))] == pytest.approx(expected)


def test_huge_attempt_counts_stay_at_the_cap() -> None:
    assert Backoff(base=1, factor=10, cap=30, jitter=0).delay(10_000) == 30


@pytest.mark.parametrize("jitter", [0.1, 0.5, 1.0])
def test_jitter_lowers_a_delay_by_at_most_its_fraction_and_never_exceeds_the_cap(jitter: float) -> None:
    backoff = Backoff(base=1, factor=2, cap=16, jitter=jitter)
    rng = random.Random(7)
    for attempt in range(8):
        ceiling = backoff.ceiling(attempt)
        samples = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(ceiling * (1 - jitter) <= s <= ceiling <= 16 for s in samples)
        assert len(set(samples)) > 1  # jitter actually spreads them


@pytest.mark.parametrize("bad", [dict(base=-1), dict(factor=0.5), dict(cap=-1), dict(jitter=1.5)])
def test_invalid_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid backoff"):
        Backoff(**bad)


def test_keyed_backoff_counts_per_key_and_forget_resets() -> None:
    keyed: KeyedBackoff[str] = KeyedBackoff(Backoff(base=1, factor=2, cap=100, jitter=0))
    assert [keyed.next_delay("a") for _ in range(4)] == [1, 2, 4, 8]
    assert keyed.next_delay("b") == 1  # other keys are independent
    assert (keyed.failures("a"), keyed.failures("b")) == (4, 1)
    keyed.forget("a")
    assert keyed.failures("a") == 0
    assert keyed.next_delay("a") == 1
    assert keyed.next_delay("b") == 2
