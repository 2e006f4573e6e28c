"""What ``tether app`` does to Application objects, apart from printing: build, request, pin, wait.

The controller and this command agree on a handful of names (annotations, a finalizer, status
fields); they are spelled once here. Requests go through ``tether.kube.Kube`` and use merge
patches, so the command never takes ownership of fields the controller or a GitOps tool applies.
"""

from __future__ import annotations

import asyncio
import getpass
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.errors import KubeError, UsageError
from tether.kube import Kube, ResourceInfo

GROUP, VERSION, KIND, PLURAL = "tether.dev", "v1alpha1", "Application", "applications"
API_VERSION = f"{GROUP}/{VERSION}"
APPLICATION = ResourceInfo(
    GROUP, VERSION, KIND, PLURAL, True, frozenset({"create", "delete", "get", "list", "patch", "update", "watch"})
)
EVENT = ResourceInfo("", "v1", "Event", "events", True, frozenset({"list"}))

REFRESH_ANNOTATION = "tether.dev/refresh-requested-at"
SYNC_ANNOTATION = "tether.dev/sync-requested-at"
CASCADE_FINALIZER = "tether.dev/cascade"
FIELD_MANAGER = "tether-cli"

_SHA = re.compile(r"^[0-9a-f]{7,64}$")
_DURATION = re.compile(r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$")


class AppNotFound(KubeError):
    """The named Application does not exist."""


def now_rfc3339() -> str:
    """Now, as the annotations carry it: RFC 3339 in UTC with microseconds, so two quick requests differ."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def where(namespace: str, name: str) -> str:
    return f"{KIND} {namespace}/{name}"


async def get_app(kube: Kube, name: str, namespace: str) -> dict[str, Any]:
    obj = await kube.get(APPLICATION, name, namespace)
    if obj is None:
        raise AppNotFound(f"{where(namespace, name)} not found (list them with: tether app list -n {namespace})")
    return obj


async def list_apps(kube: Kube, namespace: str | None) -> list[dict[str, Any]]:
    items = await kube.list(APPLICATION, namespace)
    return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))


async def patch_app(kube: Kube, name: str, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
    await get_app(kube, name, namespace)  # a named NotFound instead of the server's bare 404
    return await kube.patch(APPLICATION, name, namespace, patch, field_manager=FIELD_MANAGER)


async def events_of(kube: Kube, obj: dict[str, Any], limit: int = 20) -> list[dict[str, Any]]:
    """core/v1 Events whose involvedObject is this Application, oldest first (newest ``limit``)."""
    meta = obj["metadata"]
    found = []
    for event in await kube.list(EVENT, meta["namespace"]):
        involved = event.get("involvedObject") or {}
        if (
            involved.get("kind") == KIND
            and involved.get("name") == meta["name"]
            and involved.get("namespace", meta["namespace"]) == meta["namespace"]
            and (not involved.get("uid") or not meta.get("uid") or involved["uid"] == meta["uid"])
        ):
            found.append(event)
    found.sort(key=event_time)
    return found[-limit:]


def event_time(event: dict[str, Any]) -> str:
    return (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


# ------------------------------------------------------------------ create


@dataclass
class CreateOptions:
    url: str
    path: str = "."
    branch: str = ""
    tag: str = ""
    semver: str = ""
    commit: str = ""
    dest_namespace: str = ""
    create_namespace: bool = False
    automated: bool = True
    prune: bool = False
    self_heal: bool = False
    interval: str = "1m"
    service_account: str = ""
    depends_on: list[str] = field(default_factory=list)


def build_application(name: str, namespace: str, options: CreateOptions) -> dict[str, Any]:
    """The Application manifest ``tether app create`` sends; usage errors name the flag at fault."""
    refs = {
        k: v
        for k, v in (
            ("branch", options.branch),
            ("tag", options.tag),
            ("semver", options.semver),
            ("commit", options.commit),
        )
        if v
    }
    if len(refs) > 1:
        raise UsageError(f"give at most one of --branch, --tag, --semver, --commit (got {', '.join(refs)})")
    if options.commit and not _SHA.match(options.commit):
        raise UsageError(f"--commit {options.commit!r}: expected a hex commit SHA of 7 to 64 characters")
    if not _DURATION.match(options.interval) or options.interval == "0":
        raise UsageError(f"--interval {options.interval!r}: expected a Go duration longer than 0 such as 90s, 1m, 1h")
    if options.path.startswith("/") or ".." in options.path.split("/"):
        raise UsageError(f"--path {options.path!r}: must be relative to the repository root, without '..'")
    source: dict[str, Any] = {"url": options.url, "path": options.path or "."}
    if refs:
        source["ref"] = refs
    spec: dict[str, Any] = {"source": source}
    if options.dest_namespace or options.create_namespace:
        spec["destination"] = {
            k: v for k, v in (("namespace", options.dest_namespace), ("createNamespace", options.create_namespace)) if v
        }
    spec["interval"] = options.interval
    spec["syncPolicy"] = {"automated": options.automated, "prune": options.prune, "selfHeal": options.self_heal}
    if options.service_account:
        spec["serviceAccountName"] = options.service_account
    if options.depends_on:
        spec["dependsOn"] = [parse_dependency(d) for d in options.depends_on]
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def parse_dependency(text: str) -> dict[str, str]:
    namespace, slash, name = text.rpartition("/")
    if not name or (slash and not namespace):
        raise UsageError(f"--depends-on {text!r}: expected NAME or NAMESPACE/NAME")
    return {"namespace": namespace, "name": name} if namespace else {"name": name}


# ------------------------------------------------------------------ sync


@dataclass(frozen=True)
class SyncOutcome:
    handled: bool
    ready: bool
    reason: str
    message: str
    revision: str


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(item, dict) and item.get("type") == kind:
            return item
    return {}


async def request(kube: Kube, name: str, namespace: str, annotation: str) -> str:
    """Set a request annotation to a fresh timestamp; returns the value set."""
    value = now_rfc3339()
    await patch_app(kube, name, namespace, {"metadata": {"annotations": {annotation: value}}})
    return value


async def wait_for_sync(
    kube: Kube, name: str, namespace: str, value: str, timeout: float, interval: float = 0.5
) -> SyncOutcome:
    """Poll until the controller records ``value`` in status.lastHandledSyncAt, or the timeout passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        obj = await get_app(kube, name, namespace)
        status = obj.get("status") or {}
        if status.get("lastHandledSyncAt") == value:
            ready = condition(obj, "Ready")
            return SyncOutcome(
                True,
                ready.get("status") == "True",
                ready.get("reason", ""),
                ready.get("message", ""),
                status.get("lastAppliedRevision", ""),
            )
        if loop.time() >= deadline:
            return SyncOutcome(
                False,
                False,
                "Timeout",
                f"the controller did not handle the sync request within {timeout:g}s "
                f"(status.lastHandledSyncAt is {status.get('lastHandledSyncAt') or 'unset'}; "
                "is the controller running and watching this namespace?)",
                "",
            )
        await asyncio.sleep(min(interval, max(deadline - loop.time(), 0.01)))


# ------------------------------------------------------------------ history and rollback


def history(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """status.history, newest first (as the controller records it)."""
    return [h for h in ((obj.get("status") or {}).get("history") or []) if isinstance(h, dict) and h.get("revision")]


def match_revision(entries: list[dict[str, Any]], revision: str) -> str | None:
    """The full SHA of the history entry ``revision`` abbreviates; None when none does."""
    matches = sorted({h["revision"] for h in entries if h["revision"].startswith(revision.lower())})
    if len(matches) > 1:
        raise UsageError(f"revision {revision!r} is ambiguous: it matches {', '.join(m[:12] for m in matches)}")
    return matches[0] if matches else None


def default_rollback_revision(obj: dict[str, Any]) -> str:
    """The newest Succeeded history entry older than the current lastAppliedRevision."""
    entries = history(obj)
    current = (obj.get("status") or {}).get("lastAppliedRevision") or ""
    positions = [i for i, h in enumerate(entries) if h["revision"] == current]
    # entries before the newest deployment of the current revision are newer than it: skip them
    older = entries[positions[0] + 1 :] if positions else entries
    for entry in older:
        if entry.get("result", "Succeeded") == "Succeeded" and entry["revision"] != current:
            return str(entry["revision"])
    meta = obj["metadata"]
    raise UsageError(
        f"{where(meta['namespace'], meta['name'])}: no earlier successful revision in status.history "
        f"than {current[:12] or '(none applied)'}; name one: tether app rollback {meta['name']} REV"
    )


def rollback_revision(obj: dict[str, Any], revision: str | None, *, force: bool) -> str:
    if not revision:
        return default_rollback_revision(obj)
    if not _SHA.match(revision.lower()):
        raise UsageError(f"revision {revision!r}: expected a commit SHA (at least 7 hex characters)")
    found = match_revision(history(obj), revision)
    if found:
        return found
    if force:
        return revision.lower()
    meta = obj["metadata"]
    raise UsageError(
        f"{where(meta['namespace'], meta['name'])}: revision {revision} is not in status.history "
        "(see: tether app history); pass --force to pin it anyway"
    )


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def pin_patch(revision: str, user: str) -> dict[str, Any]:
    return {"spec": {"pin": {"revision": revision, "reason": f"rollback by {user} via tether app rollback"}}}


__all__ = [
    "API_VERSION",
    "APPLICATION",
    "CASCADE_FINALIZER",
    "EVENT",
    "KIND",
    "REFRESH_ANNOTATION",
    "SYNC_ANNOTATION",
    "AppNotFound",
    "CreateOptions",
    "SyncOutcome",
    "build_application",
    "condition",
    "current_user",
    "default_rollback_revision",
    "events_of",
    "get_app",
    "history",
    "list_apps",
    "match_revision",
    "now_rfc3339",
    "parse_dependency",
    "patch_app",
    "pin_patch",
    "request",
    "rollback_revision",
    "wait_for_sync",
    "where",
]
