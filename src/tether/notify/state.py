"""The policy state of an Alert kept in its own ``status.told``, so a restart or a new leader goes on
where the last one stopped: an ongoing failure is not told again, ``failingFor`` keeps counting
from the failure's start, and a Recovered still owed is sent.

``status.told`` maps each app (of the Alert's namespace) to what the policy knows of it::

    web:
      kinds: [SyncFailed]                 # outcomes of its last finished reconcile
      deployed: <revision>                # last Deployed told or seen
      updated: "2024-05-01T10:00:00.000Z" # when this entry last changed
      lastSent: {SyncFailed: "..."}       # per event, for minInterval
      failure: {event, since, confirmed, revision, reason, message}   # the open episode

Writes are JSON merge patches of the status subresource naming only the apps that changed, with
the resourceVersion last seen: a conflict (the spec was edited, another replica wrote) re-reads
the Alert, takes the other writer's entries for apps this one did not change, and tries again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tether.controller.reports import AppReport
from tether.errors import KubeError
from tether.kube import Kube
from tether.kube.errors import Conflict, Invalid, NotFound
from tether.notify.alerts import ALERT_INFO
from tether.notify.policy import FAILURES, AlertPolicy, AppKey, AppState, Episode

log = logging.getLogger("tether.notify")

#: characters of a failure's message kept (the Recovered message quotes it; the status stays small)
MESSAGE_LIMIT = 512
#: attempts of one write that keep meeting conflicts before it waits for the next round
CONFLICT_ATTEMPTS = 5
FIELD_MANAGER = "tether-notifier"


class GarbledEntry(ValueError):
    pass


def format_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: object, where: str) -> float:
    if not isinstance(text, str):
        raise GarbledEntry(f"{where} must be an RFC 3339 time, not {text!r}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise GarbledEntry(f"{where} {text!r} is not an RFC 3339 time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def encode(state: AppState) -> dict[str, Any]:
    entry: dict[str, Any] = {"kinds": sorted(state.kinds), "updated": format_time(state.updated)}
    if state.deployed_revision:
        entry["deployed"] = state.deployed_revision
    if state.last_sent:
        entry["lastSent"] = {event: format_time(at) for event, at in sorted(state.last_sent.items())}
    episode = state.episode
    if episode is not None:
        entry["failure"] = {
            "event": episode.event,
            "since": format_time(episode.since),
            "confirmed": episode.confirmed,
            "revision": episode.report.revision,
            "reason": episode.report.reason,
            "message": episode.report.message[:MESSAGE_LIMIT],
        }
    return entry


def decode(namespace: str, name: str, entry: object) -> AppState:
    """The state of one app from its ``status.told`` entry; ``GarbledEntry`` naming the field when it is not one."""
    where = f"status.told.{name}"
    if not isinstance(entry, dict):
        raise GarbledEntry(f"{where} must be an object")
    kinds = entry.get("kinds") or []
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise GarbledEntry(f"{where}.kinds must be a list of event names")
    sent = entry.get("lastSent") or {}
    if not isinstance(sent, dict):
        raise GarbledEntry(f"{where}.lastSent must map events to times")
    state = AppState(
        kinds=frozenset(kinds),
        deployed_revision=str(entry.get("deployed") or ""),
        last_sent={str(event): parse_time(at, f"{where}.lastSent.{event}") for event, at in sent.items()},
        updated=parse_time(entry.get("updated"), f"{where}.updated"),
    )
    failure = entry.get("failure")
    if failure is not None:
        if not isinstance(failure, dict) or failure.get("event") not in FAILURES:
            raise GarbledEntry(f"{where}.failure.event must be one of {', '.join(FAILURES)}")
        event = str(failure["event"])
        report = AppReport(
            namespace,
            name,
            "finished",
            revision=str(failure.get("revision") or ""),
            kinds=(event,),
            ready=False,
            reason=str(failure.get("reason") or ""),
            message=str(failure.get("message") or ""),
        )
        since = parse_time(failure.get("since"), f"{where}.failure.since")
        state.episode = Episode(event, since, report, confirmed=failure.get("confirmed") is True)
    return state


def load(obj: dict[str, Any]) -> dict[AppKey, AppState]:
    """The policy state in an Alert object's status; what cannot be read is left out, with a warning."""
    meta = obj.get("metadata") or {}
    namespace, alert = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    status = obj.get("status")
    if status is None:
        return {}
    told = status.get("told") if isinstance(status, dict) else None
    if told is None and isinstance(status, dict):
        return {}
    if not isinstance(told, dict):
        log.warning("Alert %s/%s: status.told is not an object; its policy starts empty", namespace, alert)
        return {}
    states: dict[AppKey, AppState] = {}
    for name, entry in told.items():
        try:
            states[(namespace, str(name))] = decode(namespace, str(name), entry)
        except GarbledEntry as error:
            log.warning("Alert %s/%s: %s; that app's policy starts empty", namespace, alert, error)
    return states


def _replacing(state: AppState | None) -> dict[str, Any] | None:
    """The merge patch of one entry: fields it no longer has are nulled (a merge patch merges objects)."""
    if state is None:
        return None
    return {"deployed": None, "lastSent": None, "failure": None, **encode(state)}


class StatusWriter:
    """Writes one Alert's changed policy state to its status; ``resource_version`` is the last seen."""

    def __init__(self, kube: Kube, namespace: str, name: str, resource_version: str) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.resource_version = resource_version
        self.where = f"Alert {namespace}/{name}"
        self.unavailable = False  # no status subresource: the state stays in memory

    async def write(self, policy: AlertPolicy) -> bool:
        """Write the apps ``policy`` changed; False (their changes kept for the next try) when it failed."""
        changed, policy.changed = policy.changed, set()
        if not changed or self.unavailable:
            return True
        try:
            for _attempt in range(CONFLICT_ATTEMPTS):
                if await self._patch(policy, changed):
                    return True
                await self._merge(policy, changed)
            log.warning(
                "%s: its status kept changing under the notifier; the policy state is written later", self.where
            )
        except NotFound:
            log.warning(
                "%s: not found, or it has no status subresource (is the Alert CRD current?); its policy state "
                "is kept in memory only",
                self.where,
            )
            self.unavailable = True
            return True
        except Invalid as error:  # the same entries would be refused again: what they say stays in memory
            log.error("%s: the API server refused its policy state in status.told: %s", self.where, error)
            return True
        except KubeError as error:
            log.warning("%s: writing the policy state to status.told failed (%s); it is retried", self.where, error)
        policy.changed |= changed
        return False

    async def _patch(self, policy: AlertPolicy, changed: set[AppKey]) -> bool:
        told = {key[1]: _replacing(policy.apps.get(key)) for key in changed}
        patch = {"metadata": {"resourceVersion": self.resource_version}, "status": {"told": told}}
        try:
            written = await self.kube.patch(
                ALERT_INFO, self.name, self.namespace, patch, subresource="status", field_manager=FIELD_MANAGER
            )
        except Conflict:
            return False
        self.resource_version = str((written.get("metadata") or {}).get("resourceVersion") or "")
        return True

    async def _merge(self, policy: AlertPolicy, changed: set[AppKey]) -> None:
        """Re-read the Alert: another writer's entries count for every app this one did not change."""
        live = await self.kube.get(ALERT_INFO, self.name, self.namespace)
        if live is None:
            raise NotFound(f"{self.where} was deleted")
        self.resource_version = str((live.get("metadata") or {}).get("resourceVersion") or "")
        theirs = load(live)
        for key in list(policy.apps):
            if key not in changed and key not in theirs:
                del policy.apps[key]
        policy.restore({key: state for key, state in theirs.items() if key not in changed})


__all__ = ["MESSAGE_LIMIT", "StatusWriter", "decode", "encode", "load"]
