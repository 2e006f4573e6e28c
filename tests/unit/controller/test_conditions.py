"""Conditions: transitions move lastTransitionTime, the kstatus trio follows its rules, order is fixed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tether.controller import conditions as c
from tether.controller.api import Condition

T0 = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
T1 = datetime(2024, 1, 1, 0, 5, 0, tzinfo=UTC)
S0, S1 = "2024-01-01T00:00:00Z", "2024-01-01T00:05:00Z"


def cond(type_: str, status: str, reason: str = "R", message: str = "", at: str = S0, gen: int = 1) -> Condition:
    return Condition(
        type=type_, status=status, reason=reason, message=message, last_transition_time=at, observed_generation=gen
    )


def summary(conditions: tuple[Condition, ...]) -> dict[str, tuple[str, str, str]]:
    return {x.type: (x.status, x.reason, x.last_transition_time) for x in conditions}


@pytest.mark.parametrize(
    ("before", "status", "reason", "expected_time"),
    [
        ((), "True", "A", S1),  # new condition: now
        ((cond("Synced", "True", "A"),), "True", "B", S0),  # same status, new reason: time kept
        ((cond("Synced", "True", "A"),), "False", "A", S1),  # transition: time moves
        ((cond("Synced", "Unknown", "A"),), "Unknown", "A", S0),  # no change at all
    ],
)
def test_set_condition_transition_time(before, status, reason, expected_time) -> None:
    after = c.set_condition(before, "Synced", status, reason, "msg", 2, now=T1)
    found = c.get(after, "Synced")
    assert found is not None
    assert (found.status, found.reason, found.last_transition_time, found.observed_generation) == (
        status,
        reason,
        expected_time,
        2,
    )


def test_set_condition_is_pure() -> None:
    before = (cond("Ready", "True"),)
    c.set_condition(before, "Ready", "False", "X", "", 2, now=T1)
    assert before == (cond("Ready", "True"),)


def test_order_is_fixed_whatever_the_insertion_order() -> None:
    result: tuple[Condition, ...] = ()
    for type_ in ("Custom", "Pinned", "Healthy", "Stalled", "Synced", "Ready", "Drifted", "Another"):
        result = c.set_condition(result, type_, "True", "R", "", 1, now=T0)
    assert [x.type for x in result] == [
        "Ready",
        "Stalled",
        "Synced",
        "Healthy",
        "Drifted",
        "Pinned",
        "Another",
        "Custom",
    ]


# each row: starting conditions, the transition, the expected {type: (status, reason, time)}
CASES = [
    (
        "first reconcile starts",
        (),
        lambda x: c.mark_reconciling(x, c.PROGRESSING, "fetching", 1, now=T1),
        {"Ready": ("Unknown", "Progressing", S1), "Reconciling": ("True", "Progressing", S1)},
    ),
    (
        "resync of a ready generation keeps Ready",
        (cond("Ready", "True", "ReconciliationSucceeded"),),
        lambda x: c.mark_reconciling(x, c.PROGRESSING, "resync", 1, now=T1),
        {"Ready": ("True", "ReconciliationSucceeded", S0), "Reconciling": ("True", "Progressing", S1)},
    ),
    (
        "new generation makes Ready unknown",
        (cond("Ready", "True", "ReconciliationSucceeded", gen=1),),
        lambda x: c.mark_reconciling(x, c.PROGRESSING, "spec changed", 2, now=T1),
        {"Ready": ("Unknown", "Progressing", S1), "Reconciling": ("True", "Progressing", S1)},
    ),
    (
        "success clears Reconciling and Stalled",
        (cond("Ready", "Unknown"), cond("Reconciling", "True"), cond("Stalled", "True")),
        lambda x: c.mark_ready(x, c.RECONCILIATION_SUCCEEDED, "applied", 1, now=T1),
        {"Ready": ("True", "ReconciliationSucceeded", S1)},
    ),
    (
        "transient failure retries",
        (cond("Ready", "True"), cond("Reconciling", "True", "Progressing")),
        lambda x: c.mark_failed(x, c.RECONCILIATION_FAILED, "apply failed", 1, now=T1),
        {"Ready": ("False", "ReconciliationFailed", S1), "Reconciling": ("True", "ProgressingWithRetry", S0)},
    ),
    (
        "terminal failure stalls",
        (cond("Ready", "Unknown"), cond("Reconciling", "True")),
        lambda x: c.mark_stalled(x, c.RETRIES_EXHAUSTED, "gave up", 1, now=T1),
        {"Ready": ("False", "RetriesExhausted", S1), "Stalled": ("True", "RetriesExhausted", S1)},
    ),
    (
        "work after a stall un-stalls",
        (cond("Ready", "False", gen=1), cond("Stalled", "True", gen=1)),
        lambda x: c.mark_reconciling(x, c.PROGRESSING, "spec fixed", 2, now=T1),
        {"Ready": ("Unknown", "Progressing", S1), "Reconciling": ("True", "Progressing", S1)},
    ),
    (
        "suspend keeps Ready, drops work conditions",
        (cond("Ready", "True"), cond("Reconciling", "True")),
        lambda x: c.mark_suspended(x, "suspended", 1, now=T1),
        {"Ready": ("True", "R", S0)},
    ),
    (
        "suspend of a new app says Unknown",
        (),
        lambda x: c.mark_suspended(x, "suspended", 1, now=T1),
        {"Ready": ("Unknown", "Suspended", S1)},
    ),
]


@pytest.mark.parametrize(("name", "before", "step", "expected"), CASES, ids=[case[0] for case in CASES])
def test_kstatus_transitions(name, before, step, expected) -> None:
    after = step(before)
    assert summary(after) == expected
    # kstatus never sees Reconciling and Stalled true together
    assert not (c.is_true(after, c.RECONCILING) and c.is_true(after, c.STALLED))


@pytest.mark.parametrize(
    ("given", "ready"),
    [
        ((), "True"),
        ((cond("Synced", "True"), cond("Healthy", "True")), "True"),
        ((cond("Synced", "False"), cond("Healthy", "True")), "False"),
        ((cond("Healthy", "False"),), "False"),
        ((cond("Reconciling", "True"), cond("Synced", "True")), "Unknown"),
        ((cond("Stalled", "True"), cond("Reconciling", "True")), "False"),
        ((cond("Drifted", "True"), cond("Synced", "True")), "True"),  # drift alone is reported, not a failure
    ],
)
def test_summarize_ready(given, ready) -> None:
    assert c.summarize_ready(given) == ready


def test_rfc3339_is_utc_seconds() -> None:
    assert c.rfc3339(datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=UTC)) == "2024-05-01T14:00:00Z"


def test_to_dicts_uses_api_field_names() -> None:
    assert c.to_dicts((cond("Ready", "True", "Ok", "m", gen=4),)) == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Ok",
            "message": "m",
            "lastTransitionTime": S0,
            "observedGeneration": 4,
        }
    ]
