"""Delivery figures of one Application (``tether app stats``), from one of two sources.

- ``from_history``: the Application's ``status.history`` (the default: it needs only read access
  to the Application). Each entry is a revision applied (``deployedAt``) with its commit time
  (``committedAt``), so it gives deployments, their frequency and lead time (commit to applied)
  over the entries kept (``spec.revisionHistoryLimit``, 10 by default). The controller records
  applied revisions only, so failures count only entries whose result is ``Failed``, and time to
  restore is not in it; the current failure (the Ready condition) is shown instead.
- ``from_metrics``: the controller's ``/metrics`` (the series of ``tether.notify.dora``): all four
  figures, since the controller started.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from tether.controller.conditions import parse_time
from tether.errors import TetherError


class StatsError(TetherError):
    """The controller's /metrics could not be read."""


@dataclass
class Distribution:
    """Seconds: exact from the history; estimated from histogram buckets for /metrics (as PromQL does)."""

    count: int = 0
    mean: float | None = None
    median: float | None = None
    p90: float | None = None
    max: float | None = None


@dataclass
class AppStats:
    namespace: str
    name: str
    source: str  # "status.history" or the /metrics URL
    succeeded: int = 0
    failed: int | None = 0  # None: the source does not record failed deployments
    since: str = ""  # the oldest deployment counted (history only)
    per_day: float | None = None
    change_failure_rate: float | None = None
    lead_time: Distribution = field(default_factory=Distribution)
    time_to_restore: Distribution | None = None  # None: the source does not record it
    ready: str = ""  # the Ready condition now: status and reason
    failing_since: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def deployments(self) -> int:
        return self.succeeded + (self.failed or 0)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "deployments": self.deployments}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def exact(values: list[float]) -> Distribution:
    if not values:
        return Distribution()
    return Distribution(
        len(values), sum(values) / len(values), _quantile(values, 0.5), _quantile(values, 0.9), max(values)
    )


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), {})


def _current(stats: AppStats, obj: dict[str, Any]) -> AppStats:
    ready = _ready(obj)
    if ready:
        stats.ready = f"{ready.get('status', 'Unknown')} ({ready.get('reason') or '-'})"
        if ready.get("status") == "False":
            stats.failing_since = str(ready.get("lastTransitionTime") or "")
    return stats


def from_history(obj: dict[str, Any], now: float | None = None) -> AppStats:
    meta = obj["metadata"]
    entries = [h for h in ((obj.get("status") or {}).get("history") or []) if isinstance(h, dict) and h.get("revision")]
    stats = AppStats(meta.get("namespace", ""), meta["name"], "status.history")
    failed = sum(1 for h in entries if h.get("result") == "Failed")
    stats.succeeded, stats.failed = len(entries) - failed, failed or None
    deployed = [t for t in (parse_time(str(h.get("deployedAt") or "")) for h in entries) if t is not None]
    if deployed:
        oldest = min(deployed)
        stats.since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(oldest))
        days = ((now if now is not None else time.time()) - oldest) / 86400
        stats.per_day = len(entries) / days if days > 0 else None
    leads = []
    for entry in entries:
        committed, applied = (
            parse_time(str(entry.get("committedAt") or "")),
            parse_time(str(entry.get("deployedAt") or "")),
        )
        if entry.get("result") != "Failed" and committed is not None and applied is not None:
            leads.append(max(applied - committed, 0.0))
    stats.lead_time = exact(leads)
    if failed:
        stats.change_failure_rate = failed / len(entries)
    limit = int((obj.get("spec") or {}).get("revisionHistoryLimit") or 10)
    stats.notes.append(
        f"the last {limit} deployments at most (spec.revisionHistoryLimit); lead time is commit to "
        "applied; failures and time to restore are counted by the controller: use --controller URL"
    )
    return _current(stats, obj)


# ------------------------------------------------------------------ /metrics


def read_metrics(url: str, timeout: float = 10.0) -> str:
    target = url.rstrip("/")
    if not target.endswith("/metrics"):
        target += "/metrics"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            return response.read().decode()
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise StatsError(
            f"--controller {url}: cannot read {target}: {reason} (is the controller running with "
            "--listen, and is the URL its address?)"
        ) from None


def _histogram(samples: list[tuple[str, dict[str, str], float]], name: str) -> Distribution | None:
    buckets = sorted(
        (
            (math.inf if labels["le"] in ("+Inf", "inf") else float(labels["le"]), value)
            for sample, labels, value in samples
            if sample == f"{name}_bucket"
        ),
        key=lambda b: b[0],
    )
    count = next((v for s, _labels, v in samples if s == f"{name}_count"), None)
    total = next((v for s, _labels, v in samples if s == f"{name}_sum"), None)
    if count is None:
        return None
    if not count:
        return Distribution()
    return Distribution(
        int(count), (total or 0.0) / count, _bucket_quantile(buckets, 0.5), _bucket_quantile(buckets, 0.9)
    )


def _bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Linear interpolation within the bucket holding the quantile (PromQL's histogram_quantile)."""
    if not buckets or not buckets[-1][1]:
        return None
    rank, lower, below = q * buckets[-1][1], 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower  # beyond the largest bound: its value is all that can be said
            return lower + (upper - lower) * ((rank - below) / (cumulative - below) if cumulative > below else 1)
        lower, below = upper, cumulative
    return lower


def from_metrics(text: str, namespace: str, name: str, source: str, obj: dict[str, Any] | None = None) -> AppStats:
    from prometheus_client.parser import text_string_to_metric_families

    samples: list[tuple[str, dict[str, str], float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if labels.get("namespace") == namespace and labels.get("name") == name:
                samples.append((sample.name, labels, float(sample.value)))
    stats = AppStats(namespace, name, source)
    for sample, labels, value in samples:
        if sample == "tether_deployments_total":
            if labels.get("result") == "succeeded":
                stats.succeeded = int(value)
            elif labels.get("result") == "failed":
                stats.failed = int(value)
    if stats.deployments:
        stats.change_failure_rate = (stats.failed or 0) / stats.deployments
    stats.lead_time = _histogram(samples, "tether_deployment_lead_time_seconds") or Distribution()
    stats.time_to_restore = _histogram(samples, "tether_time_to_restore_seconds") or Distribution()
    stats.notes.append("counted since the controller started; quantiles are estimated from histogram buckets")
    if not samples:
        stats.notes.append(
            f"the controller has no delivery series for {namespace}/{name} (no deployment since it "
            "started, or another controller reconciles it)"
        )
    return _current(stats, obj) if obj is not None else stats


# ------------------------------------------------------------------ text


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def _distribution(value: Distribution | None, what: str) -> str:
    if value is None:
        return "not recorded here (use --controller URL)"
    if not value.count:
        return f"no {what} yet"
    text = f"median {duration(value.median)}, p90 {duration(value.p90)}"
    text += f", max {duration(value.max)}" if value.max is not None else f", mean {duration(value.mean)}"
    return text + f" ({value.count} {what})"


def to_text(stats: AppStats) -> str:
    if stats.change_failure_rate is not None:
        rate = f"{stats.change_failure_rate:.0%} ({stats.failed or 0} of {stats.deployments})"
    else:
        rate = "not recorded here (use --controller URL)" if stats.failed is None else "no deployments yet"
    counts = (
        f"{stats.succeeded} applied" if stats.failed is None else f"{stats.succeeded} succeeded, {stats.failed} failed"
    )
    frequency = f", {stats.per_day:.2g} a day" if stats.per_day is not None else ""
    rows = [
        (
            "deployments",
            f"{stats.deployments} ({counts}){frequency}" + (f" since {stats.since}" if stats.since else ""),
        ),
        ("lead time", _distribution(stats.lead_time, "deployments")),
        ("change failure rate", rate),
        ("time to restore", _distribution(stats.time_to_restore, "restores")),
    ]
    if stats.ready:
        rows.append(
            ("ready now", stats.ready + (f", failing since {stats.failing_since}" if stats.failing_since else ""))
        )
    lines = [f"{stats.namespace}/{stats.name} (from {stats.source})"]
    lines += [f"  {label:<20} {value}" for label, value in rows]
    lines += [f"  note: {note}" for note in stats.notes]
    return "\n".join(lines) + "\n"


__all__ = ["AppStats", "Distribution", "StatsError", "from_history", "from_metrics", "read_metrics", "to_text"]
