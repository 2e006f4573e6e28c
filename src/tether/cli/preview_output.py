"""The preview as values, and as Markdown for a pull-request comment or JSON for tools.

The Markdown starts with a hidden marker (``--post`` finds its own comment again by it), then a
summary line, then one collapsed section per app. It is bounded: diffs are shortened first,
then whole apps are left out, and a note says what was cut.

Bitbucket escapes raw HTML, so for it (``forge="bitbucket"``) the marker is a Markdown link
reference definition, which renders as nothing, and each app is a heading instead of a
``<details>`` section.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from tether.forge.bitbucket import hidden_marker

MARKER = "<!-- tether:preview -->"
BITBUCKET_MARKER = hidden_marker("tether:preview")
DIFF_LINES = 80  # per object, before the report is cut at all


@dataclass
class Change:
    action: str  # create, adopt, update, conflict
    object: str
    diff: str = ""
    owner: str = ""


@dataclass
class Violation:
    """A policy (``--policy FILE``) that does not hold for one object the change would apply."""

    policy: str
    severity: str  # error (the app is invalid) or warning
    object: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: `{self.object}`: {self.message}"


@dataclass
class AppPreview:
    namespace: str
    name: str
    path: str
    changes: list[Change] = field(default_factory=list)
    prune: list[Change] = field(default_factory=list)  # in the inventory, no longer in Git
    prune_enabled: bool = False
    skipped: list[str] = field(default_factory=list)  # inventory entries prune would not touch
    findings: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    render_diff: str = ""  # without a cluster: base render against head render
    invalid: bool = False
    error: str = ""

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "delete": 0, "conflict": 0}
        for change in self.changes:
            out["create" if change.action in ("create", "adopt") else change.action] += 1
        if self.prune_enabled:
            out["delete"] = len(self.prune)
        return out

    def has_changes(self) -> bool:
        return bool(self.changes or (self.prune and self.prune_enabled) or self.render_diff)


@dataclass
class PreviewResult:
    base: str
    head: str
    changed_files: list[str]
    apps: list[AppPreview]
    cluster: bool = True
    requests: dict[tuple[str, bool], int] = field(default_factory=dict)  # Kubernetes API (method, dry-run)

    def writes(self) -> int:
        """Requests that could have changed the cluster: non-GET without dry-run (the preview makes none)."""
        return sum(n for (method, dry_run), n in self.requests.items() if method != "GET" and not dry_run)


def to_json(result: PreviewResult) -> str:
    data = {
        "base": result.base,
        "head": result.head,
        "changedFiles": result.changed_files,
        "cluster": result.cluster,
        "writes": result.writes(),
        "apps": [{**asdict(app), "counts": app.counts(), "hasChanges": app.has_changes()} for app in result.apps],
    }
    return json.dumps(data, indent=2) + "\n"


def _summary(result: PreviewResult) -> str:
    totals = {"create": 0, "update": 0, "delete": 0}
    for app in result.apps:
        for key in totals:
            totals[key] += app.counts()[key]
    changing = sum(1 for app in result.apps if app.has_changes())
    invalid = sum(1 for app in result.apps if app.invalid)
    violations = sum(len(app.violations) for app in result.apps)
    failed = sum(1 for app in result.apps if app.error and not app.invalid)
    text = (
        f"**{len(result.apps)} app(s) affected, {changing} with changes**: {totals['create']} to create, "
        f"{totals['update']} to update, {totals['delete']} to delete"
    )
    if invalid:
        text += f", **{invalid} invalid**"
    if violations:
        text += f", {violations} policy violation(s)"
    if failed:
        text += f", **{failed} failed**"
    return text + f" · {len(result.changed_files)} file(s) changed"


def _short(diff: str, limit: int) -> str:
    lines = diff.splitlines()
    if len(lines) <= limit:
        return diff
    return "\n".join([*lines[:limit], f"... {len(lines) - limit} more line(s)"])


def marker_for(forge: str) -> str:
    """The marker of the preview comment on ``forge`` (one that forge's Markdown does not show)."""
    return BITBUCKET_MARKER if forge == "bitbucket" else MARKER


def _section(app: AppPreview, diff_lines: int, html: bool = True) -> str:
    counts = app.counts()
    if app.invalid:
        state = "invalid"
    elif app.error:
        state = "error"
    elif not app.has_changes():
        state = "no changes"
    else:
        state = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "changes"
    name, where = f"{app.namespace}/{app.name}", f"({app.path or '.'}): {state}"
    out = [f"<details><summary><b>{name}</b> {where}</summary>" if html else f"#### {name} {where}", ""]
    if app.error:
        out += ["```", app.error, "```", ""]
    if app.findings:
        out += ["Validation:", "", *(f"- {f}" for f in app.findings[:30]), ""]
    if app.violations:
        out += ["Policy violations:", "", *(f"- {v}" for v in app.violations[:30]), ""]
    for change in app.changes:
        owner = f" (owned by app {change.owner}; not applied)" if change.owner else ""
        out.append(f"**{change.action}** `{change.object}`{owner}")
        if change.diff:
            out += ["", "```diff", _short(change.diff, diff_lines), "```"]
        out.append("")
    if app.prune:
        verb = "would be pruned" if app.prune_enabled else "left Git (prune is off: they stay in the cluster)"
        out += [f"Objects that {verb}:", "", *(f"- `{c.object}`" for c in app.prune), ""]
    for skipped in app.skipped:
        out.append(f"- inventory entry not verified, never pruned: {skipped}")
    if app.render_diff:
        out += [
            "Rendered base against head (no cluster):",
            "",
            "```diff",
            _short(app.render_diff, diff_lines * 4),
            "```",
            "",
        ]
    if html:
        out += ["</details>", ""]
    return "\n".join(out)


def to_markdown(result: PreviewResult, *, max_chars: int = 60000, forge: str = "") -> str:
    """``forge``: the forge the comment is for; ``bitbucket`` gets Markdown without HTML."""
    where = "against the live cluster (server-side dry-run)" if result.cluster else "render only (no cluster)"
    html = forge != "bitbucket"
    head = [
        marker_for(forge),
        f"### tether preview: `{result.base[:12]}` → `{result.head[:12]}`, {where}",
        "",
        _summary(result),
        "",
    ]
    if not result.apps:
        head.append("No Application's inputs are touched by this change.")
        return "\n".join(head) + "\n"
    for diff_lines in (DIFF_LINES, 20, 0):
        sections = [_section(app, diff_lines, html) for app in result.apps]
        body = "\n".join(head) + "\n" + "".join(sections)
        if len(body) <= max_chars:
            return body + (
                ""
                if diff_lines == DIFF_LINES
                else f"\n_Diffs shortened to {diff_lines} line(s) per object to fit the comment._\n"
            )
    kept, size = [], len("\n".join(head)) + 200
    for section in sections:
        if size + len(section) > max_chars:
            break
        kept.append(section)
        size += len(section)
    left = len(sections) - len(kept)
    return (
        "\n".join(head)
        + "\n"
        + "".join(kept)
        + f"\n_Report cut at {max_chars} characters: {left} app(s) not shown; run `tether preview --format json` "
        "for all of it._\n"
    )


__all__ = [
    "BITBUCKET_MARKER",
    "MARKER",
    "AppPreview",
    "Change",
    "PreviewResult",
    "Violation",
    "marker_for",
    "to_json",
    "to_markdown",
]
