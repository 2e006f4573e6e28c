"""Health of live objects, with rules compatible with kstatus.

Each object is computed to a kstatus ``Status`` (Current / InProgress / Failed / Terminating /
NotFound / Unknown) plus a short human message; the status maps to the user-facing ``Health``
(Healthy / Progressing / Degraded / ...). The per-kind checks live in ``KIND_RULES`` so a new
kind is one function and one table row. Everything here is a pure function of the object.

Deliberate differences from kstatus, because tether waits on them during a rollout:
- a Deployment whose Progressing condition says ``ProgressDeadlineExceeded`` is Failed (kstatus
  keeps it InProgress forever; waiting for it is pointless);
- a started Job that has not completed is InProgress (kstatus calls it Current), so
  ``apply --wait`` waits for migration-style Jobs to finish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tether.errors import ApplyError, HealthTimeout
from tether.model import ObjectRef

if TYPE_CHECKING:
    from tether.engine.health_rules import HealthRules


class HealthFailed(ApplyError):
    """An object reported a terminal failure while waiting for health.

    ``states`` holds every object's last health (with its reason); ``result`` is set by
    ``apply_plan`` to everything the apply did before the wait.
    """

    exit_code = 1
    states: list[ObjectHealth]
    result: Any = None


class HealthTimedOut(HealthTimeout):
    """The wait ended before every object was healthy; ``states`` / ``result`` as for HealthFailed."""

    states: list[ObjectHealth]
    result: Any = None


class Status(StrEnum):
    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"
    UNKNOWN = "Unknown"
    #: paused by its spec (a paused Deployment, a suspended Job or CronJob): nothing will change by
    #: waiting, so a wait treats it as done (Argo CD's "Suspended")
    SUSPENDED = "Suspended"


class Health(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    TERMINATING = "Terminating"
    MISSING = "Missing"
    UNKNOWN = "Unknown"
    SUSPENDED = "Suspended"


STATUS_TO_HEALTH: dict[Status, Health] = {
    Status.CURRENT: Health.HEALTHY,
    Status.IN_PROGRESS: Health.PROGRESSING,
    Status.FAILED: Health.DEGRADED,
    Status.TERMINATING: Health.TERMINATING,
    Status.NOT_FOUND: Health.MISSING,
    Status.UNKNOWN: Health.UNKNOWN,
    Status.SUSPENDED: Health.SUSPENDED,
}

#: statuses a wait stops at without failing
DONE = frozenset({Status.CURRENT, Status.SUSPENDED})


@dataclass(frozen=True)
class HealthResult:
    status: Status
    message: str = ""
    #: machine-readable cause (CamelCase, e.g. ``ProgressDeadlineExceeded``, ``ReplicasNotReady``)
    reason: str = ""

    @property
    def health(self) -> Health:
        return STATUS_TO_HEALTH[self.status]


def current(message: str = "", reason: str = "Ready") -> HealthResult:
    return HealthResult(Status.CURRENT, message, reason)


def in_progress(message: str, reason: str = "InProgress") -> HealthResult:
    return HealthResult(Status.IN_PROGRESS, message, reason)


def failed(message: str, reason: str = "Failed") -> HealthResult:
    return HealthResult(Status.FAILED, message, reason)


def suspended(message: str, reason: str = "Suspended") -> HealthResult:
    return HealthResult(Status.SUSPENDED, message, reason)


# ---------------------------------------------------------------- helpers over plain dicts


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in _status(obj).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def _is_true(cond: dict[str, Any] | None) -> bool:
    return cond is not None and cond.get("status") == "True"


def _is_false(cond: dict[str, Any] | None) -> bool:
    return cond is not None and cond.get("status") == "False"


def _cond_text(cond: dict[str, Any]) -> str:
    reason, message = cond.get("reason") or "", cond.get("message") or ""
    return f"{reason}: {message}" if reason and message else reason or message or cond.get("type", "")


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) else default


# ---------------------------------------------------------------- per-kind rules


def deployment(obj: dict[str, Any]) -> HealthResult:
    spec, st = _spec(obj), _status(obj)
    want = _int(spec.get("replicas"), 1)
    progressing = _condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return failed(
            f"progress deadline exceeded: {progressing.get('message') or ''}".strip(), "ProgressDeadlineExceeded"
        )
    if spec.get("paused") is True:
        return suspended("deployment is paused", "DeploymentPaused")
    updated = _int(st.get("updatedReplicas"))
    if updated < want:
        return in_progress(f"updated replicas: {updated}/{want}", "ReplicasNotUpdated")
    total = _int(st.get("replicas"))
    if total > updated:
        return in_progress(f"pending termination: {total - updated} old replicas", "OldReplicasPending")
    available = _int(st.get("availableReplicas"))
    if available < want:
        return in_progress(f"available replicas: {available}/{want}", "ReplicasNotAvailable")
    ready = _int(st.get("readyReplicas"))
    if ready < want:
        return in_progress(f"ready replicas: {ready}/{want}", "ReplicasNotReady")
    available_cond = _condition(obj, "Available")
    if _is_false(available_cond):
        return in_progress(f"not available: {_cond_text(available_cond or {})}", "DeploymentNotAvailable")
    if progressing is not None and want and progressing.get("reason") not in (None, "", "NewReplicaSetAvailable"):
        return in_progress(f"rollout not finished: {_cond_text(progressing)}", "RolloutInProgress")
    return current(f"{want} replicas available")


def statefulset(obj: dict[str, Any]) -> HealthResult:
    spec, st = _spec(obj), _status(obj)
    want = _int(spec.get("replicas"), 1)
    if _int(st.get("replicas")) > want:
        return in_progress(
            f"pending termination: {_int(st.get('replicas')) - want} extra replicas", "ExtraReplicasPending"
        )
    ready = _int(st.get("readyReplicas"))
    if ready < want:
        return in_progress(f"ready replicas: {ready}/{want}", "ReplicasNotReady")
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "OnDelete":
        return current(f"{want} replicas ready (OnDelete update strategy)")
    partition = _int((strategy.get("rollingUpdate") or {}).get("partition"))
    updated = _int(st.get("updatedReplicas"))
    if partition:
        if updated < want - partition:
            return in_progress(f"partitioned roll out: {updated}/{want - partition} updated")
        return current(f"partitioned roll out complete: {updated} updated")
    if st.get("updateRevision") and st.get("currentRevision") != st.get("updateRevision"):
        return in_progress(f"rolling update: {updated}/{want} updated", "RolloutInProgress")
    if isinstance(st.get("currentReplicas"), int) and st["currentReplicas"] < want:
        return in_progress(f"current replicas: {st['currentReplicas']}/{want}", "ReplicasNotCurrent")
    return current(f"{want} replicas ready")


def daemonset(obj: dict[str, Any]) -> HealthResult:
    st = _status(obj)
    if "desiredNumberScheduled" not in st:
        return in_progress("no status yet")
    want = _int(st.get("desiredNumberScheduled"))
    checks = [
        ("currentNumberScheduled", "scheduled"),
        ("updatedNumberScheduled", "updated"),
        ("numberAvailable", "available"),
        ("numberReady", "ready"),
    ]
    if ((_spec(obj).get("updateStrategy") or {}).get("type")) == "OnDelete":
        checks.pop(1)  # pods are updated only when someone deletes them: old ones are not a rollout in progress
    for field_name, word in checks:
        have = _int(st.get(field_name))
        if have < want:
            return in_progress(f"{word} pods: {have}/{want}", f"Pods{word.capitalize()}Short")
    return current(f"{want} pods ready")


def replicaset(obj: dict[str, Any]) -> HealthResult:
    failure = _condition(obj, "ReplicaFailure")
    if _is_true(failure):
        return failed(_cond_text(failure or {}))
    want = _int(_spec(obj).get("replicas"), 1)
    st = _status(obj)
    for field_name, word in (
        ("fullyLabeledReplicas", "labelled"),
        ("availableReplicas", "available"),
        ("readyReplicas", "ready"),
    ):
        have = _int(st.get(field_name))
        if have < want:
            return in_progress(f"{word} replicas: {have}/{want}")
    return current(f"{want} replicas ready")


_POD_FAILURE_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "ImageInspectError",
        "PreStartHookError",
        "PostStartHookError",
        "RegistryUnavailable",
        "ContainerCannotRun",
    }
)
#: waiting reasons of a container that is simply starting
_POD_STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing", ""})
#: how long a pod may stay unschedulable before it counts as failed (a node may be on its way)
UNSCHEDULABLE_GRACE_SECONDS = 120.0


def _waiting_fails(reason: str) -> bool:
    """Known failures, and any reason shaped like one (kubelet adds new ones over time)."""
    if reason in _POD_FAILURE_REASONS:
        return True
    return reason not in _POD_STARTING_REASONS and (reason.endswith(("Error", "BackOff")) or reason.startswith("Err"))


def _age_seconds(timestamp: Any, now: float) -> float:
    import datetime as dt

    try:
        then = dt.datetime.strptime(str(timestamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return 0.0
    return now - then


def pod(obj: dict[str, Any]) -> HealthResult:
    st = _status(obj)
    phase = st.get("phase", "")
    if phase == "Succeeded":
        return current("pod succeeded")
    if phase == "Failed":
        return failed(st.get("message") or st.get("reason") or "pod failed")
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if _waiting_fails(str(waiting.get("reason") or "")):
            return failed(f"container {cs.get('name')}: {waiting['reason']}", str(waiting["reason"]))
    if phase == "Running" and _is_true(_condition(obj, "Ready")):
        return current("pod running and ready")
    scheduled = _condition(obj, "PodScheduled")
    if _is_false(scheduled):
        if (scheduled or {}).get("reason") == "Unschedulable" and _age_seconds(
            (scheduled or {}).get("lastTransitionTime"), time.time()
        ) > UNSCHEDULABLE_GRACE_SECONDS:
            return failed(
                f"unschedulable for more than {UNSCHEDULABLE_GRACE_SECONDS:g}s: {_cond_text(scheduled or {})}",
                "Unschedulable",
            )
        return in_progress(f"not scheduled: {_cond_text(scheduled or {})}", "PodNotScheduled")
    return in_progress(f"pod {phase or 'pending'}, not ready")


def job(obj: dict[str, Any]) -> HealthResult:
    failed_cond = _condition(obj, "Failed")
    if _is_true(failed_cond):
        return failed(_cond_text(failed_cond or {}))
    if _is_true(_condition(obj, "Complete")):
        return current(f"job complete: {_int(_status(obj).get('succeeded'))} succeeded")
    if _spec(obj).get("suspend") is True:
        return suspended("job suspended", "JobSuspended")
    st = _status(obj)
    if not st.get("startTime"):
        return in_progress("job not started")
    return in_progress(f"job running: {_int(st.get('active'))} active, {_int(st.get('succeeded'))} succeeded")


def cronjob(obj: dict[str, Any]) -> HealthResult:
    if _spec(obj).get("suspend") is True:
        return suspended("cron job suspended", "CronJobSuspended")
    return current("cron job scheduled")


def persistentvolumeclaim(obj: dict[str, Any]) -> HealthResult:
    phase = _status(obj).get("phase", "")
    if phase == "Bound":
        return current("claim bound")
    if phase == "Lost":
        return failed("claim lost its volume")
    return in_progress(f"claim {phase or 'Pending'}")


def _has_lb_address(obj: dict[str, Any]) -> bool:
    return bool((_status(obj).get("loadBalancer") or {}).get("ingress"))


def service(obj: dict[str, Any]) -> HealthResult:
    if _spec(obj).get("type") == "LoadBalancer" and not _has_lb_address(obj):
        return in_progress("waiting for a load balancer address")
    return current("service ready")


def ingress(obj: dict[str, Any]) -> HealthResult:
    if not _has_lb_address(obj):
        return in_progress("waiting for an ingress address")
    return current("ingress has an address")


_HPA_V1_CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"


def horizontalpodautoscaler(obj: dict[str, Any]) -> HealthResult:
    conditions = list(_status(obj).get("conditions") or [])
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(_HPA_V1_CONDITIONS)
    if raw and not conditions:  # autoscaling/v1 keeps the conditions in an annotation
        import json

        try:
            parsed = json.loads(raw)
            conditions = [c for c in parsed if isinstance(c, dict)] if isinstance(parsed, list) else []
        except ValueError:
            conditions = []
    for cond in conditions:
        # a Failed... reason is a failure whatever the condition's status says (Argo CD's rule)
        if str(cond.get("reason") or "").startswith("Failed"):
            return failed(f"{cond.get('type')}: {_cond_text(cond)}", str(cond["reason"]))
    return current("autoscaler active")


def customresourcedefinition(obj: dict[str, Any]) -> HealthResult:
    names = _condition(obj, "NamesAccepted")
    if _is_false(names):
        return failed(f"names not accepted: {_cond_text(names or {})}")
    established = _condition(obj, "Established")
    if _is_true(established):
        return current("established")
    if _is_false(established) and (established or {}).get("reason") not in ("Installing", None, ""):
        return failed(f"not established: {_cond_text(established or {})}", "NotEstablished")
    return in_progress("waiting to be established", "Installing")


def apiservice(obj: dict[str, Any]) -> HealthResult:
    available = _condition(obj, "Available")
    if _is_true(available):
        return current("available")
    if available is None:
        return in_progress("no Available condition yet", "NoStatus")
    return in_progress(f"not available: {_cond_text(available)}", str(available.get("reason") or "NotAvailable"))


def generic(obj: dict[str, Any]) -> HealthResult:
    """kstatus' convention for any kind: Stalled / Reconciling / Ready conditions."""
    stalled = _condition(obj, "Stalled")
    if _is_true(stalled):
        return failed(_cond_text(stalled or {}), str((stalled or {}).get("reason") or "Stalled"))
    reconciling = _condition(obj, "Reconciling")
    if _is_true(reconciling):
        return in_progress(_cond_text(reconciling or {}), "Reconciling")
    ready = _condition(obj, "Ready")
    if _is_false(ready):
        return in_progress(f"not ready: {_cond_text(ready or {})}", str((ready or {}).get("reason") or "NotReady"))
    if ready is not None and ready.get("status") == "Unknown":
        return in_progress(f"readiness unknown: {_cond_text(ready)}", "ReadyUnknown")
    if _is_true(ready):
        return current(_cond_text(ready or {}) if ready and ready.get("message") else "ready")
    return current("")


#: (group, kind) -> rule. Kinds not listed use ``generic``.
KIND_RULES: dict[tuple[str, str], Callable[[dict[str, Any]], HealthResult]] = {
    ("apps", "Deployment"): deployment,
    ("apps", "StatefulSet"): statefulset,
    ("apps", "DaemonSet"): daemonset,
    ("apps", "ReplicaSet"): replicaset,
    ("", "Pod"): pod,
    ("batch", "Job"): job,
    ("batch", "CronJob"): cronjob,
    ("", "PersistentVolumeClaim"): persistentvolumeclaim,
    ("", "Service"): service,
    ("networking.k8s.io", "Ingress"): ingress,
    ("autoscaling", "HorizontalPodAutoscaler"): horizontalpodautoscaler,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): customresourcedefinition,
    ("apiregistration.k8s.io", "APIService"): apiservice,
}


def compute(obj: dict[str, Any] | None, rules: HealthRules | None = None) -> HealthResult:
    """The health of one live object (``None`` = it does not exist).

    ``rules`` adds the user's CEL checks (they take the place of the built-in rule of their kind)
    and the custom kinds whose CRD promises a status (see ``health_rules`` / ``health_kinds``)."""
    if obj is None:
        return HealthResult(Status.NOT_FOUND, "object not found")
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return HealthResult(Status.TERMINATING, "object is being deleted")
    ref = ObjectRef.of(obj)
    key = (ref.group, ref.kind)
    st = _status(obj)
    # A status written for an older spec says nothing about the current one (kstatus rule).
    observed = st.get("observedGeneration")
    generation = meta.get("generation")
    if isinstance(observed, int) and isinstance(generation, int) and observed != generation:
        return in_progress(
            f"controller has not observed generation {generation} yet (at {observed})", "GenerationNotObserved"
        )
    check = rules.check_for(*key) if rules is not None else None
    if check is not None:
        return check.evaluate(obj)
    rule = KIND_RULES.get(key)
    if rule is None:
        if not st and rules is not None and rules.reports_status(*key):
            return in_progress(f"waiting for the controller of {ref.kind} to report status", "StatusNotReported")
        return generic(obj)
    # Stalled=True and Reconciling=True speak for the controller itself: they override kind rules.
    if _is_true(_condition(obj, "Stalled")) or _is_true(_condition(obj, "Reconciling")):
        return generic(obj)
    return rule(obj)


# ---------------------------------------------------------------- waiting


@dataclass(frozen=True)
class ObjectHealth:
    ref: ObjectRef
    result: HealthResult


FetchMany = Callable[[list[ObjectRef]], Awaitable[dict[ObjectRef, dict[str, Any] | None]]]


def summarise(states: Iterable[ObjectHealth]) -> str:
    return "; ".join(f"{s.ref}: {s.result.status} ({s.result.message})" for s in states)


async def wait_healthy(
    refs: Iterable[ObjectRef],
    fetch_many: FetchMany,
    *,
    timeout: float,
    interval: float = 1.0,
    on_update: Callable[[list[ObjectHealth]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    rules: HealthRules | None = None,
) -> list[ObjectHealth]:
    """Poll until every object is Current (or Suspended); raise on the first Failed one or at the deadline.

    ``fetch_many`` returns the live objects (``None`` for missing) of the refs asked for; the
    caller decides how (one list per kind keeps the request count low). ``rules`` as for ``compute``.
    """
    pending = sorted(set(refs))
    deadline = clock() + timeout
    states: dict[ObjectRef, ObjectHealth] = {}
    while True:
        live = await fetch_many(pending)
        for ref in pending:
            states[ref] = ObjectHealth(ref, compute(live.get(ref), rules))
        if on_update is not None:
            on_update(sorted(states.values(), key=lambda s: s.ref))
        failing = [s for s in states.values() if s.result.status is Status.FAILED]
        if failing:
            error = HealthFailed(f"objects failed: {summarise(failing)}")
            error.states = sorted(states.values(), key=lambda s: s.ref)
            raise error
        pending = [ref for ref in pending if states[ref].result.status not in DONE]
        if not pending:
            return sorted(states.values(), key=lambda s: s.ref)
        if clock() >= deadline:
            timed_out = HealthTimedOut(
                f"timed out after {timeout:g}s waiting for {len(pending)} object(s): "
                + summarise(states[ref] for ref in pending)
            )
            timed_out.states = sorted(states.values(), key=lambda s: s.ref)
            raise timed_out
        await asyncio.sleep(min(interval, max(0.0, deadline - clock())))
