"""How ``tether app`` prints Applications: kubectl-style tables, ``describe`` text, JSON and YAML."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import UTC, datetime
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from tether.apps.ops import condition, event_time, history
from tether.errors import UsageError
from tether.source.url import mask_url

OUTPUTS = ("table", "wide", "json", "yaml")
CONDITION_TYPES = ("Ready", "Reconciling", "Stalled", "Synced", "Healthy", "Drifted", "Pinned")


def check_output(output: str, allowed: tuple[str, ...] = OUTPUTS) -> str:
    if output not in allowed:
        raise UsageError(f"-o/--output {output!r}: choose one of {', '.join(allowed)}")
    return output


def console() -> Console:
    # piped output is read by scripts: never wrap or cut a column to a guessed terminal width
    width = shutil.get_terminal_size((200, 24)).columns if sys.stdout.isatty() else 10_000
    return Console(width=width, highlight=False, soft_wrap=True, no_color=not sys.stdout.isatty())


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", padding=(0, 3, 0, 0))
    for header in headers:
        table.add_column(header, no_wrap=True, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console().print(table)


def dump(data: Any, output: str) -> str:
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(text: str | None, now: datetime | None = None) -> str:
    """kubectl's short age: 45s, 12m, 5h, 3d, 2y."""
    then = parse_time(text)
    if then is None:
        return "<unknown>"
    seconds = max(int(((now or datetime.now(UTC)) - then).total_seconds()), 0)
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def short(revision: str | None) -> str:
    return revision[:7] if revision else "-"


def ref_text(spec: dict[str, Any]) -> str:
    ref = (spec.get("source") or {}).get("ref") or {}
    return ", ".join(f"{k}:{v}" for k, v in ref.items()) or "HEAD (default branch)"


def deployed(obj: dict[str, Any]) -> dict[str, Any]:
    """The newest history entry of the applied revision (or the newest entry)."""
    entries = history(obj)
    applied = (obj.get("status") or {}).get("lastAppliedRevision")
    return next((h for h in entries if h["revision"] == applied), entries[0] if entries else {})


def list_rows(items: list[dict[str, Any]], *, all_namespaces: bool, wide: bool) -> tuple[list[str], list[list[str]]]:
    headers = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "SOURCE", "REVISION", "SYNCED", "HEALTH", "AGE"]
    if wide:
        headers += ["PATH", "LAST DEPLOY", "AUTHOR"]
    rows = []
    for obj in items:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        source = spec.get("source") or {}
        row = ([meta.get("namespace", "")] if all_namespaces else []) + [
            meta["name"],
            mask_url(source.get("url", "")),
            short(status.get("lastAppliedRevision")),
            (status.get("sync") or {}).get("status") or "Unknown",
            (status.get("health") or {}).get("status") or "Unknown",
            age(meta.get("creationTimestamp")),
        ]
        if wide:
            last = deployed(obj)
            row += [
                source.get("path", "."),
                age(last.get("deployedAt")) if last.get("deployedAt") else "-",
                last.get("author") or "-",
            ]
        rows.append(row)
    return headers, rows


def history_rows(obj: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    applied = (obj.get("status") or {}).get("lastAppliedRevision")
    pinned = ((obj.get("spec") or {}).get("pin") or {}).get("revision", "")
    rows = []
    for entry in history(obj):
        counts = entry.get("objects") or {}
        marks = ("current" if entry["revision"] == applied else "") + (
            " pinned" if pinned and entry["revision"].startswith(pinned) else ""
        )
        rows.append(
            [
                short(entry["revision"]),
                entry.get("result", "Succeeded"),
                entry.get("deployedAt") or "-",
                entry.get("author") or "-",
                entry.get("subject") or "-",
                " ".join(f"{k}={v}" for k, v in counts.items() if v) or "-",
                marks.strip() or "-",
            ]
        )
    return ["REVISION", "RESULT", "DEPLOYED", "AUTHOR", "SUBJECT", "OBJECTS", ""], rows


def describe_text(obj: dict[str, Any], events: list[dict[str, Any]]) -> str:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    source, policy = spec.get("source") or {}, spec.get("syncPolicy") or {}
    destination = spec.get("destination") or {}
    lines = [
        f"Name:          {meta['name']}",
        f"Namespace:     {meta.get('namespace', '')}",
        f"Created:       {meta.get('creationTimestamp', '-')} ({age(meta.get('creationTimestamp'))} ago)",
    ]
    if meta.get("deletionTimestamp"):
        lines.append(f"Deleting:      since {meta['deletionTimestamp']}")
    if meta.get("finalizers"):
        lines.append(f"Finalizers:    {', '.join(meta['finalizers'])}")
    lines += [
        "Source:",
        f"  URL:         {mask_url(source.get('url', ''))}",
        f"  Ref:         {ref_text(spec)}",
        f"  Path:        {source.get('path', '.')}",
    ]
    lines += [
        "Destination:",
        f"  Namespace:   {destination.get('namespace') or '(as rendered)'}"
        + (" (created when missing)" if destination.get("createNamespace") else ""),
    ]
    flags = [
        name
        for name, on in (
            ("automated", policy.get("automated", True)),
            ("prune", policy.get("prune")),
            ("self-heal", policy.get("selfHeal")),
        )
        if on
    ]
    lines += [f"Sync Policy:   {', '.join(flags) or 'manual'} every {spec.get('interval', '1m')}"]
    if spec.get("serviceAccountName"):
        lines.append(f"Applies As:    ServiceAccount {spec['serviceAccountName']}")
    if spec.get("dependsOn"):
        deps = [f"{d.get('namespace') or meta.get('namespace')}/{d.get('name')}" for d in spec["dependsOn"]]
        lines.append(f"Depends On:    {', '.join(deps)}")
    if spec.get("suspend"):
        lines.append("Suspended:     yes (nothing is fetched, applied or pruned)")
    if spec.get("pin"):
        lines.append(f"Pinned:        {spec['pin'].get('revision')} ({spec['pin'].get('reason') or 'no reason given'})")
    lines += [
        "Status:",
        f"  Source Revision:  {status.get('sourceRevision') or '-'}",
        f"  Applied Revision: {status.get('lastAppliedRevision') or '-'}",
        f"  Sync:             {(status.get('sync') or {}).get('status') or 'Unknown'}",
        f"  Health:           {(status.get('health') or {}).get('status') or 'Unknown'}"
        + (f" ({status['health']['message']})" if (status.get("health") or {}).get("message") else ""),
        f"  Objects:          {(status.get('inventory') or {}).get('count', 0)}",
    ]
    lines.append("Conditions:")
    present = [condition(obj, kind) for kind in CONDITION_TYPES if condition(obj, kind)]
    present += [c for c in status.get("conditions") or [] if c.get("type") not in CONDITION_TYPES]
    lines += [
        f"  {c.get('type', ''):<12} {c.get('status', ''):<8} {c.get('reason', '') or '-':<22} "
        f"{c.get('message', '')}".rstrip()
        for c in present
    ] or ["  <none>"]
    lines.append("Drift:")
    lines += [
        f"  {d.get('object')}: {', '.join(d.get('fields') or []) or '(whole object)'}"
        + (f" by {d['manager']}" if d.get("manager") else "")
        + (f" at {d['time']}" if d.get("time") else "")
        for d in status.get("drift") or []
    ] or ["  <none>"]
    lines.append("History:")
    lines += [
        f"  {short(h['revision'])}  {h.get('result', 'Succeeded'):<9} {h.get('deployedAt') or '-':<20} "
        f"{h.get('author') or '-'}: {h.get('subject') or ''}".rstrip()
        for h in history(obj)
    ] or ["  <none>"]
    lines.append("Events:")
    lines += [
        f"  {e.get('type', 'Normal'):<8} {e.get('reason', ''):<20} {age(event_time(e)):>5} ago  {e.get('message', '')}"
        for e in events
    ] or ["  <none>"]
    return "\n".join(lines) + "\n"


__all__ = [
    "OUTPUTS",
    "age",
    "as_list",
    "check_output",
    "describe_text",
    "dump",
    "history_rows",
    "list_rows",
    "print_table",
    "short",
]
