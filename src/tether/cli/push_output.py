"""Terminal output of ``tether apply``: a progress bar while applying, a summary table after."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tether.engine.apply import ApplyOptions, ApplyResult, Outcome
from tether.engine.plan import Action, Plan

#: rows shown in the summary table before it is cut short (counts always cover everything)
MAX_ROWS = 50


@contextlib.contextmanager
def progress_reporter(plan: Plan, options: ApplyOptions, *, enabled: bool) -> Iterator[Callable[[Outcome], None]]:
    total = len(plan.of(Action.CREATE)) + len(plan.of(Action.UPDATE))
    if options.prune:
        total += len(plan.of(Action.DELETE))
    if not enabled or total == 0:
        yield lambda _outcome: None
        return
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"applying {plan.app}", total=total)

        def report(outcome: Outcome) -> None:
            progress.advance(task)
            if not outcome.ok:
                console.print(f"[red]failed[/red] {outcome.ref}: {outcome.error}")

        yield report


def result_dict(plan: Plan, result: ApplyResult, options: ApplyOptions) -> dict[str, Any]:
    return {
        "app": plan.app,
        "dryRun": options.dry_run,
        "summary": {
            "created": result.count(Action.CREATE),
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
        "health": [{"object": str(h.ref), "status": str(h.result.status), "health": str(h.result.health),
                    "message": h.result.message} for h in result.health],
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
    past = {"create": "created", "update": "updated", "delete": "deleted"}
    for outcome in result.outcomes[:MAX_ROWS]:
        verdict = past[str(outcome.action)] if outcome.ok else f"failed: {outcome.error}"
        if outcome.ref in health:
            verdict += f", {health[outcome.ref].health}"
        table.add_row(str(outcome.action), str(outcome.ref), verdict)
    if len(result.outcomes) > MAX_ROWS:
        table.add_row("...", f"{len(result.outcomes) - MAX_ROWS} more", "")
    if result.outcomes:
        console.print(table)
    s = data["summary"]
    console.print(f"{plan.app}: {s['created']} created, {s['updated']} updated, {s['deleted']} deleted, "
                  f"{s['unchanged']} unchanged" + (f", {s['failed']} failed" if s["failed"] else ""))
    for ref in plan.kept:
        console.print(f"kept {ref} (annotated tether.dev/prune: disabled)")
    if result.health:
        console.print(f"all {len(result.health)} objects healthy")
