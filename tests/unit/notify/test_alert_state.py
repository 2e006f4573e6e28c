"""The policy state as status entries: what is written reads back the same, garbled entries are
named, and pruning keeps the state bounded."""

from __future__ import annotations

import pytest

from tether.controller.reports import AppReport
from tether.notify.alerts import AlertSpec
from tether.notify.policy import AlertPolicy
from tether.notify.state import MESSAGE_LIMIT, GarbledEntry, decode, encode, load

T0 = 1_700_000_000.0


def spec(**fields: object) -> AlertSpec:
    return AlertSpec("shop", "a", urls_secret="s", **fields)  # type: ignore[arg-type]


def failed(name: str = "web", message: str = "boom") -> AppReport:
    return AppReport(
        "shop", name, "finished", revision="r1", kinds=("SyncFailed",), ready=False, reason="X", message=message
    )


def test_an_entry_reads_back_as_the_state_it_was_written_from() -> None:
    policy = AlertPolicy(spec(failing_for=60))
    policy.observe(failed(message="m" * 2000), T0)
    policy.due(T0 + 60.25)
    state = policy.apps[("shop", "web")]
    entry = encode(state)
    assert entry["failure"]["since"] == "2023-11-14T22:13:20.000Z" and len(entry["failure"]["message"]) == MESSAGE_LIMIT
    again = decode("shop", "web", entry)
    assert (again.kinds, again.last_sent, again.updated) == (state.kinds, state.last_sent, state.updated)
    assert again.episode is not None and state.episode is not None
    assert (again.episode.event, again.episode.since, again.episode.confirmed) == ("SyncFailed", T0, True)
    assert (again.episode.report.reason, again.episode.report.revision) == ("X", "r1")
    assert policy.changed == {("shop", "web")}


def test_garbled_entries_are_named_and_left_out() -> None:
    with pytest.raises(GarbledEntry, match=r"status.told.web.failure.event must be one of SyncFailed, HealthDegraded"):
        decode("shop", "web", {"kinds": [], "updated": "2024-01-01T00:00:00Z", "failure": {"event": "Oops"}})
    obj = {"metadata": {"namespace": "shop", "name": "a"}, "status": {"told": {"web": [], "api": {"updated": "x"}}}}
    assert load(obj) == {}
    assert load({"metadata": {}, "status": {"told": "garbage"}}) == {}
    assert load({"metadata": {}, "status": "garbage"}) == {}


def test_pruning_forgets_rested_and_gone_apps_and_caps_the_rest() -> None:
    policy = AlertPolicy(spec(min_interval=7200))
    healthy = AppReport("shop", "old", "finished", revision="r1", kinds=("Deployed",), ready=True)
    policy.observe(healthy, T0)
    policy.observe(failed("gone"), T0)
    policy.prune(T0 + 100, limit=10, rest_for=60, exists=lambda _ns, name: name != "gone")
    assert set(policy.apps) == {("shop", "old"), ("shop", "gone")}  # minInterval outlasts rest_for; gone: grace
    policy.prune(T0 + 7200, limit=10, rest_for=60, exists=lambda _ns, name: name != "gone")
    assert policy.apps == {}
    for index in range(4):
        policy.observe(failed(f"f{index}"), T0 + 8000 + index)
    policy.changed.clear()
    assert policy.prune(T0 + 8010, limit=2, rest_for=60) == [("shop", "f0"), ("shop", "f1")]
    assert set(policy.apps) == {("shop", "f2"), ("shop", "f3")}
    assert policy.changed == {("shop", "f0"), ("shop", "f1")}  # their removal is written
