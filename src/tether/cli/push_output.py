"""Terminal output of ``tether apply``: a progress bar while applying, a summary table after."""

from __future__ import annotations

import json
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tether.engine.apply import ApplyOptions, ApplyResult, Outcome
from tether.engine.health import DONE, ObjectHealth, Status
from tether.engine.plan import Action, Plan

#: rows shown in the summary table before it is cut short (counts always cover everything)
MAX_ROWS = 50


class Reporter:
    """Terminal feedback while applying: a progress bar over the writes, then a one-line health status."""

    def __init__(self, plan: Plan, options: ApplyOptions, *, enabled: bool) -> None:
        self.console = Console(stderr=True)
        self.enabled = enabled
        total = len(plan.of(Action.CREATE)) + len(plan.of(Action.UPDATE))
        if options.prune:
            total += len(plan.of(Action.DELETE))
        self._progress: Progress | None = None
        self._status: Any = None
        if enabled and total:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._progress.add_task(f"applying {plan.app}", total=total)
            self._progress.start()

    def outcome(self, outcome: Outcome) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)
        if self.enabled and not outcome.ok:
            self.console.print(f"[red]failed[/red] {outcome.ref}: {outcome.error}")

    def health(self, states: list[ObjectHealth]) -> None:
        if not self.enabled:
            return
        if self._progress is not None:  # writes are done: the bar gives way to the status line
            self._progress.stop()
            self._progress = None
        waiting = [s for s in states if s.result.status not in DONE]
        text = f"waiting for {len(waiting)} of {len(states)} objects"
        if waiting:
            text += f": {waiting[0].ref} {waiting[0].result.status} ({waiting[0].result.message})"
        if self._status is None:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._status is not None:
            self._status.stop()


def result_dict(plan: Plan, result: ApplyResult, options: ApplyOptions) -> dict[str, Any]:
    return {
        "app": plan.app,
        "dryRun": options.dry_run,
        "summary": {
            "created": result.count(Action.CREATE),
            "adopted": result.count(Action.ADOPT),
            "updated": result.count(Action.UPDATE),
            "deleted": result.count(Action.DELETE),
            "unchanged": result.unchanged,
            "failed": len(result.failed),
        },
        "objects": [
            {"action": str(o.action), "object": str(o.ref), "ok": o.ok, **({"error": o.error} if o.error else {})}
            for o in result.outcomes
        ],
        "kept": [str(ref) for ref in plan.kept],
        "skipped": [{"entry": s.entry, "reason": s.reason} for s in plan.skipped],
        "health": [
            {
                "object": str(h.ref),
                "status": str(h.result.status),
                "health": str(h.result.health),
                "message": h.result.message,
            }
            for h in result.health
        ],
    }


def print_apply_result(plan: Plan, result: ApplyResult, options: ApplyOptions, output: str) -> None:
    data = result_dict(plan, result, options)
    if output == "json":
        print(json.dumps(data, indent=2))
        return
    if output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False), end="")
        return
    console = Console()
    health = {h.ref: h.result for h in result.health}
    table = Table(title=f"tether apply {plan.app}{' (dry run)' if options.dry_run else ''}")
    for column in ("action", "object", "result"):
        table.add_column(column)
    past = {"create": "created", "adopt": "adopted", "update": "updated", "delete": "deleted"}
    for outcome in result.outcomes[:MAX_ROWS]:
        verdict = past[str(outcome.action)] if outcome.ok else f"failed: {outcome.error}"
        if outcome.ref in health:
            state = health[outcome.ref]
            verdict += f", {state.health}" + (f" ({state.message})" if state.status is not Status.CURRENT else "")
        table.add_row(str(outcome.action), str(outcome.ref), verdict)
    if len(result.outcomes) > MAX_ROWS:
        table.add_row("...", f"{len(result.outcomes) - MAX_ROWS} more", "")
    if result.outcomes:
        console.print(table)
    s = data["summary"]
    console.print(
        f"{plan.app}: {s['created']} created, {s['adopted']} adopted, {s['updated']} updated, "
        f"{s['deleted']} deleted, {s['unchanged']} unchanged" + (f", {s['failed']} failed" if s["failed"] else "")
    )
    for ref in plan.kept:
        console.print(f"kept {ref} (annotated {plan.keep_reasons.get(ref, 'tether.dev/prune: disabled')})")
    for skipped in plan.skipped:
        console.print(f"not pruned: inventory entry {skipped} (dropped from the inventory)")
    # Suspended (a paused Deployment, a suspended Job or CronJob) is what the spec asks for, not a
    # failure: the wait stops at it and the exit code stays 0, so it is reported on its own line.
    suspended = [h for h in result.health if h.result.status is Status.SUSPENDED]
    unhealthy = [h for h in result.health if h.result.status not in DONE]
    for state in unhealthy:
        console.print(f"not healthy: {state.ref}: {state.result.status} ({state.result.message})")
    for state in suspended:
        console.print(f"suspended: {state.ref} ({state.result.message})")
    if result.health and not unhealthy:
        healthy = len(result.health) - len(suspended)
        console.print(
            f"{healthy} objects healthy, {len(suspended)} suspended"
            if suspended
            else f"all {len(result.health)} objects healthy"
        )
