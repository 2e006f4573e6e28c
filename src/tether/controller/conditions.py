"""Status conditions as pure functions over a tuple of ``Condition``.

``set_condition`` changes ``lastTransitionTime`` only when a condition's status changes, so a
status rewritten with the same facts is identical and costs no write. The kstatus trio follows
what ``kstatus`` (and so ``kubectl wait``, Flux and Argo CD health checks) reads:

- ``Reconciling=True`` while the controller is working towards the desired state (absent when done);
- ``Stalled=True`` when it cannot make progress without a change from a person (absent otherwise);
- ``Ready`` summarises: True when the last reconcile of the current generation succeeded.

Reconciling and Stalled are "abnormal-true" conditions: they are removed rather than set False,
as kstatus expects. Conditions are kept in a fixed order (the trio first) so that the same set
always serialises the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from tether.controller.api import Condition, ConditionStatus

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
SYNCED = "Synced"
HEALTHY = "Healthy"
DRIFTED = "Drifted"
PINNED = "Pinned"

ORDER = (READY, RECONCILING, STALLED, SYNCED, HEALTHY, DRIFTED, PINNED)
ABNORMAL_TRUE = frozenset({RECONCILING, STALLED})

# reasons (CamelCase, machine-readable)
PROGRESSING = "Progressing"
PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
RECONCILIATION_SUCCEEDED = "ReconciliationSucceeded"
RECONCILIATION_FAILED = "ReconciliationFailed"
DEPENDENCY_NOT_READY = "DependencyNotReady"
SUSPENDED = "Suspended"
RETRIES_EXHAUSTED = "RetriesExhausted"
INVALID_SPEC = "InvalidSpec"

Conditions = tuple[Condition, ...]


def parse_time(text: str) -> float | None:
    """RFC 3339 (``2024-05-01T10:00:00Z``) as a Unix time; None when empty or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def rfc3339(moment: datetime | None = None) -> str:
    """``2024-05-01T12:00:00Z`` (seconds precision, UTC), the form Kubernetes stores."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rank(condition: Condition) -> tuple[int, str]:
    try:
        return (ORDER.index(condition.type), "")
    except ValueError:
        return (len(ORDER), condition.type)


def _sorted(conditions: Iterable[Condition]) -> Conditions:
    return tuple(sorted(conditions, key=_rank))


def get(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    found = get(conditions, type_)
    return found is not None and found.status == "True"


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: datetime | None = None,
) -> Conditions:
    """``conditions`` with ``type_`` set; its lastTransitionTime moves only when the status changes."""
    old = get(conditions, type_)
    transition = old.last_transition_time if old is not None and old.status == status else rfc3339(now)
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    return _sorted([*(c for c in conditions if c.type != type_), new])


def delete(conditions: Sequence[Condition], type_: str) -> Conditions:
    return _sorted(c for c in conditions if c.type != type_)


def mark_reconciling(
    conditions: Sequence[Condition],
    reason: str,
    message: str,
    generation: int,
    now: datetime | None = None,
) -> Conditions:
    """Work has started (or is retrying): Reconciling=True, Stalled gone, Ready Unknown unless it
    already describes this generation (a periodic resync does not flap Ready)."""
    result = delete(conditions, STALLED)
    result = set_condition(result, RECONCILING, "True", reason, message, generation, now)
    ready = get(result, READY)
    if ready is None or ready.observed_generation != generation:
        result = set_condition(result, READY, "Unknown", reason, message, generation, now)
    return result


def mark_ready(
    conditions: Sequence[Condition],
    reason: str,
    message: str,
    generation: int,
    now: datetime | None = None,
) -> Conditions:
    """The reconcile succeeded: Ready=True, Reconciling and Stalled gone."""
    result = delete(delete(conditions, RECONCILING), STALLED)
    return set_condition(result, READY, "True", reason, message, generation, now)


def mark_failed(
    conditions: Sequence[Condition],
    reason: str,
    message: str,
    generation: int,
    now: datetime | None = None,
) -> Conditions:
    """A transient failure that will be retried: Ready=False, Reconciling=True (ProgressingWithRetry)."""
    result = delete(conditions, STALLED)
    result = set_condition(result, RECONCILING, "True", PROGRESSING_WITH_RETRY, message, generation, now)
    return set_condition(result, READY, "False", reason, message, generation, now)


def mark_stalled(
    conditions: Sequence[Condition],
    reason: str,
    message: str,
    generation: int,
    now: datetime | None = None,
) -> Conditions:
    """A terminal failure (invalid spec, retries exhausted): Stalled=True, Ready=False, Reconciling gone."""
    result = delete(conditions, RECONCILING)
    result = set_condition(result, STALLED, "True", reason, message, generation, now)
    return set_condition(result, READY, "False", reason, message, generation, now)


def mark_suspended(
    conditions: Sequence[Condition],
    message: str,
    generation: int,
    now: datetime | None = None,
) -> Conditions:
    """Suspended: nothing is being worked on, and Ready keeps its last value (kstatus treats a
    suspended object as current when neither Reconciling nor Stalled is set)."""
    result = delete(delete(conditions, RECONCILING), STALLED)
    ready = get(result, READY)
    if ready is None:
        result = set_condition(result, READY, "Unknown", SUSPENDED, message, generation, now)
    return result


def summarize_ready(conditions: Sequence[Condition]) -> ConditionStatus:
    """What Ready should say given the other conditions: False when Stalled, or Synced/Healthy are
    False; Unknown while Reconciling; True otherwise."""
    if is_true(conditions, STALLED):
        return "False"
    for kind in (SYNCED, HEALTHY):
        found = get(conditions, kind)
        if found is not None and found.status == "False":
            return "False"
    if is_true(conditions, RECONCILING):
        return "Unknown"
    return "True"


def to_dicts(conditions: Sequence[Condition]) -> list[dict[str, object]]:
    return [c.model_dump(by_alias=True, mode="json") for c in conditions]


__all__ = [
    "ABNORMAL_TRUE",
    "DEPENDENCY_NOT_READY",
    "DRIFTED",
    "HEALTHY",
    "INVALID_SPEC",
    "ORDER",
    "PINNED",
    "PROGRESSING",
    "PROGRESSING_WITH_RETRY",
    "READY",
    "RECONCILIATION_FAILED",
    "RECONCILIATION_SUCCEEDED",
    "RECONCILING",
    "RETRIES_EXHAUSTED",
    "STALLED",
    "SUSPENDED",
    "SYNCED",
    "Conditions",
    "delete",
    "get",
    "is_true",
    "mark_failed",
    "mark_ready",
    "mark_reconciling",
    "mark_stalled",
    "mark_suspended",
    "parse_time",
    "rfc3339",
    "set_condition",
    "summarize_ready",
    "to_dicts",
]
