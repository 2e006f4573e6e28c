"""The notification policy as a pure state machine: reports and a clock in, notices out."""

from __future__ import annotations

from tether.controller.reports import AppReport
from tether.notify.alerts import AlertSpec, parse_alert
from tether.notify.policy import AlertPolicy, Grouper

ALL = ("SyncFailed", "HealthDegraded", "Recovered", "Deployed", "DriftDetected", "DriftCorrected")


def spec(**fields: object) -> AlertSpec:
    return AlertSpec("shop", "a", events=ALL, urls_secret="s", **fields)  # type: ignore[arg-type]


def report(*kinds: str, name: str = "web", ready: bool | None = None, revision: str = "r1") -> AppReport:
    return AppReport("shop", name, "finished", revision=revision, kinds=kinds, ready=ready)


def events(notices: list) -> list[str]:
    return [n.event for n in notices]


def test_transitions_only_and_deployed_once_per_revision() -> None:
    policy = AlertPolicy(spec())
    assert events(policy.observe(report("Deployed", "DriftDetected", ready=True), 0)) == ["Deployed", "DriftDetected"]
    assert events(policy.observe(report("DriftDetected", ready=True), 1)) == []  # still drifting
    assert events(policy.observe(report(ready=True), 2)) == []
    assert events(policy.observe(report("DriftDetected", ready=True), 3)) == ["DriftDetected"]
    assert events(policy.observe(report("Deployed", ready=True, revision="r2"), 4)) == ["Deployed"]
    assert events(policy.observe(AppReport("shop", "web", "started", revision="r3"), 5)) == []


def test_a_failure_changing_kind_is_told_and_recovered_refers_to_the_last() -> None:
    policy = AlertPolicy(spec())
    assert events(policy.observe(report("SyncFailed", ready=False), 0)) == ["SyncFailed"]
    assert events(policy.observe(report("SyncFailed", ready=False), 10)) == []
    assert events(policy.observe(report("HealthDegraded", ready=False), 20)) == ["HealthDegraded"]
    [recovered] = policy.observe(report("Recovered", ready=True), 50)
    assert recovered.event == "Recovered" and recovered.failure is not None
    assert (recovered.failure.event, recovered.failure.since) == ("HealthDegraded", 0)


def test_failing_for_waits_and_a_heal_cancels() -> None:
    policy = AlertPolicy(spec(failing_for=60))
    assert policy.observe(report("SyncFailed", ready=False), 0) == []
    assert policy.next_due() == 60
    assert policy.due(59) == []
    assert events(policy.due(60)) == ["SyncFailed"]
    assert policy.observe(report("SyncFailed", name="api", ready=False), 100) == []
    assert policy.observe(report(name="api", ready=True), 130) == []  # healed: nothing owed
    assert policy.due(1000) == [] and policy.next_due() is None


def test_suspended_alerts_and_unselected_events_say_nothing() -> None:
    assert AlertPolicy(spec(suspend=True)).observe(report("SyncFailed", ready=False), 0) == []
    quiet = AlertPolicy(AlertSpec("shop", "a", events=("Deployed",), urls_secret="s"))
    assert quiet.observe(report("SyncFailed", ready=False), 0) == []
    assert quiet.observe(report("Recovered", ready=True), 1) == []  # the failure was never told


def test_grouping_is_per_event_and_revision() -> None:
    alert = spec(group_window=30)
    grouper, policy = Grouper(alert), AlertPolicy(alert)
    assert grouper.add(policy.observe(report("SyncFailed", name="a", ready=False), 0), 0) == []
    assert grouper.add(policy.observe(report("SyncFailed", name="b", ready=False), 5), 5) == []
    assert grouper.add(policy.observe(report("SyncFailed", name="c", ready=False, revision="r2"), 10), 10) == []
    [first] = grouper.ready(30)
    assert (first.event, first.revision, [n.report.name for n in first.notices]) == ("SyncFailed", "r1", ["a", "b"])
    [second] = grouper.ready(40)
    assert [n.report.name for n in second.notices] == ["c"]


def test_alert_objects_are_parsed_with_their_fields() -> None:
    alert = parse_alert(
        {
            "metadata": {"namespace": "shop", "name": "oncall"},
            "spec": {
                "apps": ["web"],
                "selector": {
                    "matchLabels": {"team": "shop"},
                    "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["dev"]}],
                },
                "events": ["SyncFailed", "Recovered"],
                "urlsSecretRef": {"name": "hooks"},
                "failingFor": "2m",
                "minInterval": "1h",
                "groupWindow": "30s",
            },
        }
    )
    assert (alert.failing_for, alert.min_interval, alert.group_window) == (120, 3600, 30)
    assert alert.selects("shop", "web", {"team": "shop", "tier": "prod"})
    assert not alert.selects("shop", "web", {"team": "shop", "tier": "dev"})
    assert not alert.selects("shop", "api", {"team": "shop"}) and not alert.selects("other", "web", {"team": "shop"})
    try:
        parse_alert(
            {
                "metadata": {"namespace": "shop", "name": "bad"},
                "spec": {"events": ["Oops"], "urlsSecretRef": {"name": "h"}},
            }
        )
    except Exception as error:
        assert "Alert shop/bad: spec.events has unknown event(s) Oops" in str(error)
    else:
        raise AssertionError("an unknown event was accepted")
