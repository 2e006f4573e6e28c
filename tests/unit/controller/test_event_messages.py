"""Event messages without secrets, and stable event names for aggregation."""

from __future__ import annotations

import pytest

from tether.controller.events import MAX_MESSAGE, event_name, sanitize


@pytest.mark.parametrize(
    ("message", "secrets", "expected"),
    [
        (
            "fetch https://bot:tok3n@git.example.com/r.git failed",
            (),
            "fetch https://bot:***@git.example.com/r.git failed",
        ),
        ("fetch https://ghp_abcdef@github.com/r.git failed", (), "fetch https://***@github.com/r.git failed"),
        ("ssh://git@host/org/repo.git: denied", (), "ssh://git@host/org/repo.git: denied"),
        ("key AGE-SECRET-KEY-1XYZ rejected", ("AGE-SECRET-KEY-1XYZ",), "key *** rejected"),
        ("password hunter22 and hunter22x", ("hunter22", "hunter22x"), "password *** and ***"),
        (
            "short abc stays",
            ("abc",),
            "short abc stays",
        ),  # too short to be a credential; replacing it would mangle text
    ],
)
def test_sanitize(message: str, secrets: tuple[str, ...], expected: str) -> None:
    assert sanitize(message, secrets) == expected


def test_sanitize_bounds_length() -> None:
    out = sanitize("x" * 5000)
    assert len(out) == MAX_MESSAGE and out.endswith("...")


def test_event_names_are_stable_and_distinct() -> None:
    a = event_name("web", "uid-1", "Warning", "ReconciliationFailed", "boom")
    assert a == event_name("web", "uid-1", "Warning", "ReconciliationFailed", "boom")
    assert a.startswith("web.")
    others = {
        event_name("web", "uid-1", "Warning", "ReconciliationFailed", "bang"),
        event_name("web", "uid-2", "Warning", "ReconciliationFailed", "boom"),
        event_name("web", "uid-1", "Normal", "ReconciliationFailed", "boom"),
        event_name("web", "uid-1", "Warning", "DriftDetected", "boom"),
    }
    assert a not in others and len(others) == 4
    assert len(event_name("x" * 253, "u", "Normal", "R", "m")) <= 253
