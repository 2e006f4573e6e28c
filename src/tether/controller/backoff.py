"""Exponential backoff with jitter, and a per-key failure count built on it.

The queue retries a failing key after ``base * factor**failures`` seconds (capped), and the
informer reconnects a broken watch the same way. Jitter spreads retries of many keys (or many
controller replicas) that failed at the same moment, so they do not hit the API server together.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Backoff:
    """Delays for retry number 0, 1, 2, ...: ``min(cap, base * factor**attempt)``, minus up to
    ``jitter`` (a fraction) of it, so a delay never exceeds ``cap``."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base < 0 or self.factor < 1 or self.cap < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid backoff {self}: need base >= 0, factor >= 1, cap >= 0, 0 <= jitter <= 1")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling(attempt)
        spread = (rng or random).random() * self.jitter
        return ceiling * (1.0 - spread)

    def ceiling(self, attempt: int) -> float:
        """The delay before jitter."""
        if attempt <= 0:
            return min(self.base, self.cap)
        # factor**attempt overflows a float long after it passes any sensible cap
        try:
            return min(self.cap, self.base * self.factor**attempt)
        except OverflowError:
            return self.cap


@dataclass
class KeyedBackoff(Generic[K]):
    """Failure counts per key: each ``next_delay`` is one more failure; ``forget`` starts over."""

    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    _failures: dict[K, int] = field(default_factory=dict)

    def next_delay(self, key: K) -> float:
        attempt = self._failures.get(key, 0)
        self._failures[key] = attempt + 1
        return self.backoff.delay(attempt, self.rng)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)
