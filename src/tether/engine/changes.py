"""The plan as a value: one ``Change`` per object, printable as a diff, JSON or a summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tether.engine.annotations import PRUNE_ANNOTATION
from tether.engine.diff import strip_noise, unified
from tether.engine.fields import FieldTake
from tether.engine.identity import ADOPT_ANNOTATION, AppIdentity
from tether.engine.immutable import RECREATE_HINT
from tether.engine.inventory import DEFAULT_NAMESPACE, Inventory
from tether.kube import ResourceInfo
from tether.model import Manifest, ObjectRef


class Action(StrEnum):
    CREATE = "create"
    ADOPT = "adopt"  # exists without tether ownership (or adopted explicitly): apply takes it over
    UPDATE = "update"
    UNCHANGED = "unchanged"
    DELETE = "delete"
    CONFLICT = "conflict"  # owned by another app: not applied


WRITES = frozenset({Action.CREATE, Action.ADOPT, Action.UPDATE})
_SIGN = {
    Action.CREATE: "+",
    Action.ADOPT: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.UNCHANGED: "=",
    Action.CONFLICT: "!",
}


@dataclass
class Change:
    ref: ObjectRef
    action: Action
    info: ResourceInfo
    desired: dict[str, Any] | None = None  # the object to apply (None for delete)
    live: dict[str, Any] | None = None  # live object (None for create)
    after: dict[str, Any] | None = None  # what the object would become (None for delete)
    source: str = ""
    wave: int = 0
    manifest: Manifest | None = None  # what the object was rendered from (None for delete)
    owner: str = ""  # CONFLICT: the app that owns the live object
    takes: list[FieldTake] = field(default_factory=list)  # fields taken from other managers
    create_only: bool = False  # generateName: POSTed, never addressed by name
    #: DELETE of an object annotated IgnoreExtraneous: pruned with --prune, but not a difference
    quiet: bool = False
    #: created for the app but never recorded in its inventory, so never pruned (--create-namespace)
    untracked: bool = False
    #: UPDATE/ADOPT the server refuses: these immutable fields changed (from the dry-run's 422)
    immutable: list[str] = field(default_factory=list)
    immutable_error: str = ""
    #: what allows deleting and creating it again instead (an annotation); '' = not allowed
    recreate: str = ""

    def label(self) -> str:
        kind = f"{self.ref.kind}.{self.ref.group}" if self.ref.group else self.ref.kind
        name = self.ref.name or f"{(self.desired or {}).get('metadata', {}).get('generateName', '')}*"
        return "/".join(p for p in (kind, self.ref.namespace, name) if p)

    def diff_lines(self) -> list[str]:
        if self.action in (Action.UNCHANGED, Action.CONFLICT):
            return []
        before = strip_noise(self.live, keep_digest=False) if self.live else None
        after = strip_noise(self.after, keep_digest=False) if self.after else None
        return unified(before, after, self.label())

    def headline(self) -> str:
        where = f"  ({self.source})" if self.source else ""
        what = str(self.ref) if self.ref.name else f"{self.label()} (generateName: created on every apply)"
        text = f"{_SIGN[self.action]} {self.action} {what}{where}"
        if self.immutable or self.immutable_error:
            fields = ", ".join(self.immutable) or "a field"
            if self.recreate:
                return (
                    f"-+ recreate {what}{where}: immutable {fields} changed; "
                    f"apply deletes and creates it again ({self.recreate})"
                )
            return (
                f"! {self.action} {what}{where}: immutable {fields} changed, so the server refuses the update; "
                f"annotate the object {RECREATE_HINT}, or apply with --recreate, to delete and create it again"
            )
        if self.action is Action.CONFLICT:
            text += (
                f": owned by app {self.owner}; not applied (adopt it with --adopt or the annotation "
                f'{ADOPT_ANNOTATION}: "true")'
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        out = {
            "action": str(self.action),
            "apiVersion": self.ref.api_version,
            "kind": self.ref.kind,
            "namespace": self.ref.namespace,
            "name": self.ref.name,
            "source": self.source,
            "diff": "\n".join(self.diff_lines()),
        }
        if self.owner:
            out["owner"] = self.owner
        if self.untracked:
            out["untracked"] = True
        if self.immutable or self.immutable_error:
            out["immutable"] = {"fields": self.immutable, "error": self.immutable_error, "recreate": self.recreate}
        if self.takes:
            out["takes"] = [{"field": t.path, "manager": t.manager, "subresource": t.subresource} for t in self.takes]
        return out


@dataclass(frozen=True)
class Skipped:
    """An inventory entry prune did not act on, and why (it is dropped from the inventory)."""

    entry: str
    reason: str
    ref: ObjectRef | None = None  # None: the entry could not even be parsed

    def __str__(self) -> str:
        return f"{self.entry}: {self.reason}"


@dataclass
class Plan:
    identity: AppIdentity
    changes: list[Change]
    inventory: Inventory
    inventory_namespace: str = ""
    kept: list[ObjectRef] = field(default_factory=list)  # left Git, but annotated to keep
    skipped: list[Skipped] = field(default_factory=list)  # inventory entries not verified: never deleted
    #: why each kept object is kept (the annotation); objects missing here were kept by tether.dev/prune
    keep_reasons: dict[ObjectRef, str] = field(default_factory=dict)
    #: desired objects annotated to be left alone (Flux ssa: Ignore): not applied, not pruned
    ignored: list[tuple[ObjectRef, str]] = field(default_factory=list)
    #: hook objects (tether.engine.hooks.Hook) apply runs around the sync when it changes something
    hooks: list[Any] = field(default_factory=list)
    #: hook and hook-like objects apply never runs, and why (Helm test hooks, Skip, delete hooks)
    not_run: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.identity, str):
            self.identity = AppIdentity(self.inventory_namespace or DEFAULT_NAMESPACE, self.identity)
        self.inventory_namespace = self.identity.namespace

    @property
    def app(self) -> str:
        return self.identity.name

    def of(self, action: Action) -> list[Change]:
        return [c for c in self.changes if c.action is action]

    def changed_manifests(self) -> list[Manifest]:
        """What create/adopt/update would write (and the hooks a sync that writes would run): the only
        objects that still need validating."""
        writes = [c.manifest for c in self.changes if c.action in WRITES and c.manifest]
        return writes + [hook.manifest for hook in self.hooks] if writes else writes

    @property
    def desired_refs(self) -> set[ObjectRef]:
        return {c.ref for c in self.changes if c.action not in (Action.DELETE, Action.CONFLICT) and c.ref.name}

    def allow_recreate(self, reason: str) -> None:
        """Show every refused immutable change as a recreate (``apply --recreate``: ``reason``)."""
        for change in self.changes:
            if (change.immutable or change.immutable_error) and not change.recreate:
                change.recreate = reason

    def summary(self) -> dict[str, int]:
        return {str(action): len(self.of(action)) for action in Action}

    def has_changes(self, *, include_deletes: bool = True) -> bool:
        actions = set(WRITES) | {Action.CONFLICT} | ({Action.DELETE} if include_deletes else set())
        return any(c.action in actions and not c.quiet for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "appNamespace": self.identity.namespace,
            "summary": self.summary(),
            "changes": [c.to_dict() for c in self.changes if c.action is not Action.UNCHANGED],
            "kept": [str(ref) for ref in self.kept],
            "ignored": [{"object": str(ref), "reason": reason} for ref, reason in self.ignored],
            "hooks": [hook.to_dict() for hook in self.hooks],
            "skipped": [{"entry": s.entry, "reason": s.reason} for s in self.skipped],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def render_text(self, *, color: bool = False, verbose: bool = False) -> str:
        counts = self.summary()
        head = (
            f"Plan for app {self.app}: {counts['create']} to create, {counts['adopt']} to adopt, "
            f"{counts['update']} to update, {counts['delete']} to delete, {counts['unchanged']} unchanged"
        )
        if counts["conflict"]:
            head += f", {counts['conflict']} owned by other apps"
        immutable = [c for c in self.changes if c.immutable or c.immutable_error]
        if immutable:
            recreated = sum(1 for c in immutable if c.recreate)
            head += f"; {len(immutable)} with an immutable field changed ({recreated} to recreate)"
        out = [_paint(head, "1", color)]
        for change in self.changes:
            if change.action is Action.UNCHANGED and not verbose:
                continue
            out.append(_paint(change.headline(), "1", color))
            out.extend(f"  {take}" for take in change.takes)
            if change.immutable_error and not change.recreate:
                out.append(f"  server: {change.immutable_error}")
            lines = change.diff_lines()
            if change.action in (Action.UPDATE, Action.ADOPT) and not lines:
                lines = ["  (only tether's labels or applied-digest annotation differ)"]
            out.extend(_color_line(line, color) for line in lines)
        for ref in self.kept:
            reason = self.keep_reasons.get(ref, f"{PRUNE_ANNOTATION}: disabled")
            out.append(f"  keep {ref} (annotated {reason}; no longer managed)")
        for ref, reason in self.ignored:
            out.append(f"  ignore {ref} (annotated {reason}; neither applied nor pruned)")
        for hook in self.hooks:
            out.append(f"  hook {hook.describe()}")
        for what, reason in self.not_run:
            out.append(f"  not run {what} ({reason})")
        for skipped in self.skipped:
            out.append(f"  skip inventory entry {skipped} (not deleted; dropped from the inventory)")
        return "\n".join(out) + "\n"


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _color_line(line: str, color: bool) -> str:
    if line.startswith(("+++", "---")):
        return _paint(line, "1", color)
    if line.startswith("+"):
        return _paint(line, "32", color)
    if line.startswith("-"):
        return _paint(line, "31", color)
    if line.startswith("@@"):
        return _paint(line, "36", color)
    return line
