"""Job and CronJob controllers of the simulation (and the cron schedule parser they need)."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tether.sandbox.simulation import events, owner_reference, status
from tether.sandbox.simulation.workloads import new_pod
from tether.sandbox.store import clone

if TYPE_CHECKING:
    from tether.sandbox.simulation import Simulation

_FINISHED = ("Complete", "Failed")


def _job_condition(kind: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def job_finished(job: dict[str, Any]) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in _FINISHED and cond.get("status") == "True":
            return str(cond["type"])
    return None


def reconcile_job(sim: Simulation, namespace: str, name: str) -> None:
    job = sim.get("batch", "jobs", namespace, name)
    if job is None or job["metadata"].get("deletionTimestamp"):
        return
    spec, old = job.get("spec") or {}, job.get("status") or {}
    pods = sim.owned("", "pods", namespace, job)
    phase = [(p.get("status") or {}).get("phase") for p in pods]
    succeeded, failed = phase.count("Succeeded"), phase.count("Failed")
    active = [
        p
        for p, ph in zip(pods, phase, strict=True)
        if ph not in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")
    ]
    now = status.timestamp()
    conditions = [dict(c) for c in old.get("conditions") or []]
    new: dict[str, Any] = {}
    completions = spec.get("completions")
    parallelism = spec.get("parallelism", 1)
    if job_finished(job) is None:
        if failed > spec.get("backoffLimit", 6):
            for pod in active:
                sim.delete("", "pods", pod)
            active = []
            reason, message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            conditions += [
                _job_condition("FailureTarget", reason, message, now),
                _job_condition("Failed", reason, message, now),
            ]
            events.record(sim, job, "job", reason, message, "Warning")
        elif (completions is not None and succeeded >= completions) or (
            completions is None and succeeded > 0 and not active
        ):
            reason, message = "CompletionsReached", "Reached expected number of succeeded pods"
            conditions += [
                _job_condition("SuccessCriteriaMet", reason, message, now),
                _job_condition("Complete", reason, message, now),
            ]
            new["completionTime"] = now
            events.record(sim, job, "job", "Completed", "Job completed")
        elif spec.get("suspend"):
            for pod in active:
                sim.delete("", "pods", pod)
            active = []
            if not any(c.get("type") == "Suspended" for c in conditions):
                conditions.append(_job_condition("Suspended", "JobSuspended", "Job suspended", now))
        else:
            conditions = [c for c in conditions if c.get("type") != "Suspended"]
            remaining = (completions if completions is not None else parallelism) - succeeded
            for _ in range(min(parallelism, remaining) - len(active)):
                active.append(sim.create("", "pods", new_pod(job, spec.get("template") or {})))
                events.record(sim, job, "job", "SuccessfulCreate", f"Created pod: {active[-1]['metadata']['name']}")
    started = old.get("startTime") or (now if not spec.get("suspend") else None)
    new_status: dict[str, Any] = {
        "conditions": conditions,
        "startTime": started,
        "completionTime": new.get("completionTime") or old.get("completionTime"),
        "active": len(active),
        "ready": sum(1 for p in active if status.pod_ready(p)),
        "succeeded": succeeded,
        "failed": failed,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    sim.write_status(
        "batch", "jobs", job, status.compact(new_status, keep=("ready", "terminating", "uncountedTerminatedPods"))
    )


# -- cron ----------------------------------------------------------------------------------------

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NAMES = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
    "sun": 0,
    "mon": 1,
    "tue": 2,
    "wed": 3,
    "thu": 4,
    "fri": 5,
    "sat": 6,
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.lower().split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = int(_NAMES.get(a, a)), int(_NAMES.get(b, b))
        else:
            start = int(_NAMES.get(base, base))
            end = high if step_text else start
        if step <= 0 or start < low or end > high or start > end:
            raise ValueError(f"value out of range in {text!r}")
        values.update(range(start, end + 1, step))
    return values


def parse_schedule(schedule: str) -> tuple[set[int], ...]:
    """Minute, hour, day of month, month, day of week sets of a standard 5-field cron schedule."""
    text = _MACROS.get(schedule.strip(), schedule.strip())
    if text.startswith(("TZ=", "CRON_TZ=")):
        text = text.split(None, 1)[1]
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: {schedule}")
    sets = [_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True)]
    if 7 in sets[4]:
        sets[4].add(0)
    sets[4] &= set(range(7))
    sets.append({0} if fields[2] in ("*", "?") else set())  # marks: day-of-month unrestricted
    sets.append({0} if fields[4] in ("*", "?") else set())  # marks: day-of-week unrestricted
    return tuple(sets)


def next_time(schedule: str, after: dt.datetime) -> dt.datetime | None:
    """The first schedule time strictly after ``after`` (within about a year)."""
    minutes, hours, days, months, weekdays, dom_any, dow_any = parse_schedule(schedule)
    moment = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    for _ in range(366 * 24 * 60):
        if moment.month not in months:
            moment = (moment.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
            continue
        weekday = (moment.weekday() + 1) % 7
        day_ok = (
            (moment.day in days and weekday in weekdays)
            if (dom_any or dow_any)
            else (moment.day in days or weekday in weekdays)
        )
        if not day_ok:
            moment = moment.replace(hour=0, minute=0) + dt.timedelta(days=1)
            continue
        if moment.hour not in hours:
            moment = moment.replace(minute=0) + dt.timedelta(hours=1)
            continue
        if moment.minute in minutes:
            return moment
        moment += dt.timedelta(minutes=1)
    return None


def _zone(cronjob: dict[str, Any]) -> dt.tzinfo:
    name = (cronjob.get("spec") or {}).get("timeZone")
    try:
        return ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def reconcile_cronjob(sim: Simulation, namespace: str, name: str) -> None:
    cronjob = sim.get("batch", "cronjobs", namespace, name)
    if cronjob is None or cronjob["metadata"].get("deletionTimestamp"):
        return
    spec, old = cronjob.get("spec") or {}, cronjob.get("status") or {}
    jobs = sim.owned("batch", "jobs", namespace, cronjob)
    finished = [j for j in jobs if job_finished(j)]
    running = [j for j in jobs if not job_finished(j) and not j["metadata"].get("deletionTimestamp")]
    new_status: dict[str, Any] = {}
    last_success = old.get("lastSuccessfulTime")
    for job in finished:
        done = (job.get("status") or {}).get("completionTime")
        if job_finished(job) == "Complete" and done and (not last_success or done > last_success):
            last_success = done
    for kind, limit in (
        ("Complete", spec.get("successfulJobsHistoryLimit", 3)),
        ("Failed", spec.get("failedJobsHistoryLimit", 1)),
    ):
        done = sorted(
            (j for j in finished if job_finished(j) == kind), key=lambda j: j["metadata"].get("creationTimestamp", "")
        )
        for job in done[: max(len(done) - limit, 0)]:
            sim.delete("batch", "jobs", job)
    zone = _zone(cronjob)
    last = status.parse_time(old.get("lastScheduleTime") or cronjob["metadata"].get("creationTimestamp"))
    try:
        upcoming = next_time(spec.get("schedule", ""), dt.datetime.fromtimestamp(last or time.time(), zone))
    except ValueError:
        upcoming = None
    last_schedule = old.get("lastScheduleTime")
    # of several missed schedule times only the most recent one runs, as upstream
    for _ in range(1000):
        following = next_time(spec.get("schedule", ""), upcoming) if upcoming is not None else None
        if following is None or following.timestamp() > time.time():
            break
        upcoming = following
    if upcoming is not None and upcoming.timestamp() <= time.time() and not spec.get("suspend"):
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Replace":
            for job in running:
                sim.delete("batch", "jobs", job)
            running = []
        if policy != "Forbid" or not running:
            template = spec.get("jobTemplate") or {}
            tmeta = template.get("metadata") or {}
            stamp = int(upcoming.timestamp() // 60)
            job = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": f"{name}-{stamp}",
                    "namespace": namespace,
                    "labels": dict(tmeta.get("labels") or {}),
                    "annotations": {
                        **(tmeta.get("annotations") or {}),
                        "batch.kubernetes.io/cronjob-scheduled-timestamp": upcoming.astimezone(dt.UTC).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        ),
                    },
                    "ownerReferences": [owner_reference(cronjob)],
                },
                "spec": clone(template.get("spec") or {}),
            }
            if sim.get("batch", "jobs", namespace, job["metadata"]["name"]) is None:
                running.append(sim.create("batch", "jobs", job))
                events.record(sim, cronjob, "cronjob", "SuccessfulCreate", f"Created job {job['metadata']['name']}")
        last_schedule = status.timestamp(upcoming.timestamp())
        upcoming = next_time(spec.get("schedule", ""), upcoming)
    if running:
        # upstream records the Job's resourceVersion at creation; later Job writes do not touch it
        known = {r.get("uid"): r for r in old.get("active") or []}
        new_status["active"] = [
            known.get(j["metadata"]["uid"])
            or {
                "kind": "Job",
                "namespace": namespace,
                "name": j["metadata"]["name"],
                "uid": j["metadata"]["uid"],
                "apiVersion": "batch/v1",
                "resourceVersion": j["metadata"].get("resourceVersion", ""),
            }
            for j in running
        ]
    if last_schedule:
        new_status["lastScheduleTime"] = last_schedule
    if last_success:
        new_status["lastSuccessfulTime"] = last_success
    sim.write_status("batch", "cronjobs", cronjob, new_status)
    if upcoming is not None and not spec.get("suspend"):
        sim.schedule("cronjob", namespace, name, max(upcoming.timestamp() - time.time(), 0.0) + 0.5)
