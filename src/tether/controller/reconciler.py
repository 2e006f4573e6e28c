"""Reconcile one Application: the engine driven from the watch cache, status written once.

A reconcile is a pass through the pipeline, cheap where nothing changed:

- Git is fetched when the app's interval has passed, on a webhook, a refresh or a spec change;
  otherwise the revision of the last pass is kept and nothing touches the network.
- An app is re-rendered only when its spec changed or a new commit touched its inputs (its
  path, the Kustomize bases it reaches, its values files); otherwise the last render is reused.
- Planning reads live objects from the informers' cache (no LIST requests); unchanged objects
  cost no request at all, so a resync of a converged app makes zero API calls.
- Failure keeps the last good state: nothing is pruned after a failed fetch, render, validate
  or apply, the status says which stage failed and why, and the queue retries with backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.controller.drift import Drift, detect
from tether.delivery.inputs import app_inputs, touches
from tether.delivery.render import render_tree_async
from tether.delivery.source import CommitInfo, SecretCredentials, SourceFetcher
from tether.errors import TetherError
from tether.model import Manifest

#: annotations the CLI sets to ask for work now (values are timestamps; a change is the request)
REFRESH_ANNOTATION = "tether.dev/refresh-requested-at"
SYNC_ANNOTATION = "tether.dev/sync-requested-at"
#: an app deleted with this finalizer has its objects pruned first (``tether app delete --cascade``)
CASCADE_FINALIZER = "tether.dev/cascade"
MAX_DRIFT = 20


class StageError(TetherError):
    """A stage of the pipeline failed; ``stage`` names it for the status reason."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass
class AppMemory:
    """What the controller remembers of one app between passes (in memory only; Git is the record)."""

    commit: str = ""
    commit_info: CommitInfo | None = None
    fetched_at: float = float("-inf")
    manifests: list[Manifest] | None = None
    rendered_commit: str = ""
    rendered_generation: int = -1
    inputs: frozenset[str] = frozenset()
    handled_refresh: str = ""
    handled_sync: str = ""
    #: when a push of a commit was first announced (webhook), for commit-to-applied latency
    announced: dict[str, float] = field(default_factory=dict)
    ready_revision: str = ""


@dataclass
class Outcome:
    """What one pass decided; the runner turns it into status, events, metrics and a requeue."""

    result: str  # "success" | "failure" | "skipped"
    requeue_after: float | None = None
    status: dict[str, Any] = field(default_factory=dict)


def now_text(clock: Callable[[], float] = time.time) -> str:
    return datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spec_of(app: dict[str, Any]) -> dict[str, Any]:
    return app.get("spec") or {}


def ref_text(ref: Any) -> str:
    """``spec.source.ref`` ({branch: main} / {tag: v1} / {semver: ">=1"} / {commit: sha}) as a source ref."""
    if isinstance(ref, str):
        return ref
    if not isinstance(ref, dict):
        return ""
    for kind in ("commit", "tag", "semver", "branch"):
        if ref.get(kind):
            return f"{kind}:{ref[kind]}"
    return ""


def annotations_of(app: dict[str, Any]) -> dict[str, str]:
    return (app.get("metadata") or {}).get("annotations") or {}


async def fetch_revision(fetcher: SourceFetcher, app: dict[str, Any], memory: AppMemory, *, force: bool,
                         secret_data: dict[str, str] | None, interval: float) -> bool:
    """Bring ``memory.commit`` up to date when due; True when it was looked up this pass."""
    spec = spec_of(app)
    source = spec.get("source") or {}
    url = str(source.get("url") or "")
    pin = (spec.get("pin") or {}).get("revision") or ""
    due = force or time.monotonic() - memory.fetched_at >= interval or not memory.commit
    if pin and memory.commit.startswith(pin) and memory.commit_info is not None and not force:
        return False  # a pinned commit never moves
    if not due:
        return False
    credentials = SecretCredentials(secret_data, url) if secret_data else None
    try:
        if not (pin and fetcher.has_commit(url, pin)):
            await fetcher.fetch(url, credentials.credentials if credentials else None, force=force)
        fetched = await fetcher.resolve(url, f"commit:{pin}" if pin else ref_text(source.get("ref")))
    except TetherError as error:
        raise StageError("FetchFailed", str(error)) from None
    finally:
        if credentials is not None:
            credentials.close()
    memory.fetched_at = time.monotonic()
    memory.commit, memory.commit_info = fetched.commit, fetched.info
    return True


async def render_revision(fetcher: SourceFetcher, app: dict[str, Any], memory: AppMemory, options: Any,
                          decryptor: Any) -> bool:
    """Render when the spec changed or a new commit touched the app's inputs; True when rendered."""
    spec = spec_of(app)
    source = spec.get("source") or {}
    url, path = str(source.get("url") or ""), str(source.get("path") or "")
    generation = int((app.get("metadata") or {}).get("generation") or 0)
    if memory.manifests is not None and memory.rendered_generation == generation:
        if memory.rendered_commit == memory.commit:
            return False
        changed = await fetcher.changed_paths(url, memory.rendered_commit, memory.commit)
        if not touches(changed, memory.inputs):
            memory.rendered_commit = memory.commit  # the commit did not touch this app: same render
            return False
    try:
        root = await fetcher.export(url, memory.commit)
        manifests = await render_tree_async(root, path, options, decryptor)
    except TetherError as error:
        raise StageError("RenderFailed", f"{memory.commit[:12]}: {error}") from None
    values = tuple(((spec.get("render") or {}).get("helm") or {}).get("valuesFiles") or ())
    memory.inputs = app_inputs(root, path, values)
    memory.manifests, memory.rendered_commit, memory.rendered_generation = manifests, memory.commit, generation
    return True


def drift_of(changes: list[Any], ours: set[str]) -> list[Drift]:
    """Drift entries for the changes a plan found while Git stayed at the applied revision."""
    drifts = []
    for change in changes[:MAX_DRIFT]:
        label = str(change.ref)
        drifts.append(detect(label, change.after, change.live, ours))
    return drifts


def history_entry(info: CommitInfo | None, commit: str, result: str, counts: dict[str, int],
                  clock: Callable[[], float] = time.time) -> dict[str, Any]:
    entry: dict[str, Any] = {"revision": commit, "result": result, "deployedAt": now_text(clock),
                             "objects": counts}
    if info is not None:
        entry.update({"author": info.author, "subject": info.subject,
                      "committedAt": info.committed_at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return entry


def trimmed_history(history: list[dict[str, Any]], entry: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """Newest first; a repeat of the newest revision replaces it instead of adding a row."""
    rest = [h for h in history if isinstance(h, dict)]
    if rest and rest[0].get("revision") == entry["revision"]:
        rest = rest[1:]
    return [entry, *rest][: max(limit, 1)]



# ---------------------------------------------------------------- the pass


@dataclass
class PassResult:
    """What one pass found, before it is written as status."""

    stage: str = ""  # the failed stage's reason ("" = no failure)
    message: str = ""
    synced: bool | None = None  # None: unknown (nothing planned)
    applied: bool = False
    health: str = "Unknown"
    health_message: str = ""
    drift: list[Drift] = field(default_factory=list)
    drift_corrected: list[Drift] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    inventory: int | None = None
    pruned: int = 0
    waiting_on: str = ""  # a dependency that is not Ready
    requeue_after: float | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
