"""The notification policy of one Alert, as a pure state machine over reports and a clock.

Rules (times are the caller's clock, in seconds):

- Only finished reports count: a message is decided when the outcome is known.
- Transitions only: a failure (SyncFailed, HealthDegraded) is told once per episode, not on
  every retry; another event is told when it appears (Deployed: per new revision).
- ``failing_for``: a failure is told only once it has lasted that long; an app that heals
  sooner sends nothing at all.
- ``min_interval``: at most one message per app and event within it (a flapping app is quiet).
- Recovered is told when an app is Ready again after a failure that was *confirmed* (lasted
  ``failing_for``), and carries that failure so the message can refer back to it.
- Grouping (``Grouper``): notices of one event on one revision within ``group_window`` become
  one message, so forty apps failing on one commit send one message.

The per-app state is plain data (``AppState``) so that ``tether.notify.state`` can keep it in
the Alert's status: ``changed`` names the apps whose state changed since the caller last took it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tether.controller import reports as rp
from tether.controller.reports import AppReport
from tether.notify.alerts import AlertSpec

FAILURES = (rp.SYNC_FAILED, rp.HEALTH_DEGRADED)
AppKey = tuple[str, str]


@dataclass(frozen=True)
class Failure:
    """The failure a Recovered message refers back to."""

    event: str
    since: float
    report: AppReport


@dataclass(frozen=True)
class Notice:
    """One app's event, decided by the policy, not yet grouped or sent."""

    event: str
    report: AppReport
    at: float
    failure: Failure | None = None  # Recovered: the failure it ends


@dataclass
class Episode:
    event: str
    since: float
    report: AppReport
    confirmed: bool = False  # lasted failing_for; a Recovered is owed when it ends


@dataclass
class AppState:
    kinds: frozenset[str] = frozenset()
    deployed_revision: str = ""
    episode: Episode | None = None
    last_sent: dict[str, float] = field(default_factory=dict)
    updated: float = 0.0  # when any of the above last changed (pruning goes by it)

    def at_rest(self) -> bool:
        """Healthy with nothing ongoing: forgetting it loses no transition still to tell."""
        return self.episode is None and self.kinds <= {rp.DEPLOYED, rp.RECOVERED}

    def _fingerprint(self) -> tuple[object, ...]:
        episode = self.episode
        told = None if episode is None else (episode.event, episode.since, episode.confirmed)
        return (self.kinds, self.deployed_revision, told, tuple(sorted(self.last_sent.items())))


class AlertPolicy:
    def __init__(self, spec: AlertSpec) -> None:
        self.spec = spec
        self._apps: dict[AppKey, AppState] = {}
        self.suppressed: list[str] = []  # events of notices dropped by min_interval (the caller drains it)
        self.changed: set[AppKey] = set()  # apps whose state changed (or went) since the caller took them

    @property
    def apps(self) -> dict[AppKey, AppState]:
        return self._apps

    def restore(self, states: dict[AppKey, AppState]) -> None:
        """Take over state kept elsewhere (the Alert's status) for apps not seen since."""
        for key, state in states.items():
            self._apps[key] = state

    def observe(self, report: AppReport, now: float) -> list[Notice]:
        """The notices ``report`` causes now (failures waiting for ``failing_for`` come from ``due``)."""
        if report.phase != "finished" or self.spec.suspend:
            return []
        key = (report.namespace, report.name)
        known = key in self._apps
        state = self._apps.setdefault(key, AppState())
        before = state._fingerprint() if known else None
        out = self._observe(state, report, known, now)
        if state._fingerprint() != before:
            state.updated = now
            self.changed.add(key)
        return out

    def _observe(self, state: AppState, report: AppReport, known: bool, now: float) -> list[Notice]:
        kinds = frozenset(report.kinds)
        out: list[Notice] = []
        failure = next((k for k in report.kinds if k in FAILURES), "")
        if failure:
            episode = state.episode
            if episode is None or episode.event != failure:
                # a new failure, or another kind of failure: a transition (the episode's start stays)
                state.episode = Episode(
                    failure,
                    now if episode is None else episode.since,
                    report,
                    confirmed=episode.confirmed if episode else False,
                )
                if self.spec.failing_for <= 0 or (episode is not None and episode.confirmed):
                    out.extend(self._confirm(state, now))
            else:
                episode.report = report  # the latest details, for a message still to come
        elif report.ready:
            episode, state.episode = state.episode, None
            if episode is not None and episode.confirmed:
                out.extend(
                    self._notice(
                        state, rp.RECOVERED, report, now, Failure(episode.event, episode.since, episode.report)
                    )
                )
            elif episode is None and not known and rp.RECOVERED in kinds:
                out.extend(self._notice(state, rp.RECOVERED, report, now))  # failed before we were watching
        for event in report.kinds:
            if event in FAILURES or event == rp.RECOVERED or event not in self.spec.events:
                continue
            if event == rp.DEPLOYED:
                if report.revision and report.revision != state.deployed_revision:
                    state.deployed_revision = report.revision
                    out.extend(self._notice(state, event, report, now))
            elif event not in state.kinds:
                out.extend(self._notice(state, event, report, now))
        if rp.DEPLOYED in kinds:
            state.deployed_revision = report.revision
        state.kinds = kinds
        return out

    def due(self, now: float) -> list[Notice]:
        """Failures that have now lasted ``failing_for``."""
        out: list[Notice] = []
        for key, state in self._apps.items():
            episode = state.episode
            if episode is not None and not episode.confirmed and now >= episode.since + self.spec.failing_for:
                out.extend(self._confirm(state, now))
                state.updated = now
                self.changed.add(key)
        return out

    def next_due(self) -> float | None:
        times = [
            s.episode.since + self.spec.failing_for
            for s in self._apps.values()
            if s.episode is not None and not s.episode.confirmed
        ]
        return min(times) if times else None

    def forget(self, namespace: str, name: str) -> None:
        if self._apps.pop((namespace, name), None) is not None:
            self.changed.add((namespace, name))

    def prune(
        self,
        now: float,
        *,
        limit: int,
        rest_for: float,
        exists: Callable[[str, str], bool] | None = None,
        grace: float = 300.0,
    ) -> list[AppKey]:
        """Forget apps that are gone, apps at rest for ``rest_for`` (and ``min_interval``), and the
        oldest beyond ``limit`` (at rest first); the keys forgotten that were not at rest."""
        rest_for = max(rest_for, self.spec.min_interval)
        for key, state in list(self._apps.items()):
            idle = now - state.updated
            gone = exists is not None and idle >= grace and not exists(*key)
            if gone or (state.at_rest() and idle >= rest_for):
                self.forget(*key)
        lost: list[AppKey] = []
        if len(self._apps) > limit:
            oldest = sorted(self._apps.items(), key=lambda item: (not item[1].at_rest(), item[1].updated))
            for key, state in oldest[: len(self._apps) - limit]:
                if not state.at_rest():
                    lost.append(key)
                self.forget(*key)
        return lost

    def _confirm(self, state: AppState, now: float) -> list[Notice]:
        episode = state.episode
        assert episode is not None
        episode.confirmed = True
        return self._notice(state, episode.event, episode.report, now)

    def _notice(
        self, state: AppState, event: str, report: AppReport, now: float, failure: Failure | None = None
    ) -> list[Notice]:
        if event not in self.spec.events:
            return []
        last = state.last_sent.get(event)
        if last is not None and self.spec.min_interval > 0 and now - last < self.spec.min_interval:
            self.suppressed.append(event)
            return []
        state.last_sent[event] = now
        return [Notice(event, report, now, failure)]


@dataclass
class Message:
    """What one send tells: one event on one revision, for one or more apps."""

    alert: AlertSpec
    event: str
    revision: str
    notices: list[Notice]


class Grouper:
    """Holds notices for ``window`` seconds from the first of each (event, revision), then one message."""

    def __init__(self, alert: AlertSpec) -> None:
        self.alert = alert
        self._open: dict[tuple[str, str], tuple[float, list[Notice]]] = {}

    def add(self, notices: list[Notice], now: float) -> list[Message]:
        if self.alert.group_window <= 0:
            return [Message(self.alert, n.event, n.report.revision, [n]) for n in notices]
        for notice in notices:
            key = (notice.event, notice.report.revision)
            _opened, held = self._open.setdefault(key, (now, []))
            held.append(notice)
        return self.ready(now)

    def ready(self, now: float) -> list[Message]:
        out = []
        for key, (opened, held) in list(self._open.items()):
            if now >= opened + self.alert.group_window:
                del self._open[key]
                out.append(Message(self.alert, key[0], key[1], held))
        return out

    def next_due(self) -> float | None:
        times = [opened + self.alert.group_window for opened, _ in self._open.values()]
        return min(times) if times else None

    def flush(self) -> list[Message]:
        out = [Message(self.alert, k[0], k[1], held) for k, (_, held) in self._open.items()]
        self._open.clear()
        return out


__all__ = ["FAILURES", "AlertPolicy", "AppKey", "AppState", "Episode", "Failure", "Grouper", "Message", "Notice"]
