"""CEL health checks (Flux's healthCheckExprs), CRDs that promise a status, and Suspended in apply's output."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tether.engine.health import Status, compute, wait_healthy
from tether.engine.health_kinds import promises_status, status_kinds_cached
from tether.engine.health_rules import HealthRules, _compile, load_health_rules, parse_health_checks
from tether.errors import UsageError
from tether.model import ObjectRef

READY = "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"
BROKEN = "status.conditions.exists(c, c.type == 'Ready' && c.status == 'False')"
ISSUING = "status.conditions.exists(c, c.type == 'Issuing' && c.status == 'True')"


def widget(status: dict | None = None, api: str = "example.com/v1", **meta: Any) -> dict:
    out: dict[str, Any] = {"apiVersion": api, "kind": "Widget", "metadata": {"name": "w", "namespace": "ns", **meta}}
    if status is not None:
        out["status"] = status
    return out


def conds(*pairs: tuple[str, str]) -> dict:
    return {"conditions": [{"type": kind, "status": status} for kind, status in pairs]}


def rules(**exprs: str) -> HealthRules:
    entry = {"apiVersion": exprs.pop("apiVersion", "example.com/v1"), "kind": exprs.pop("kind", "Widget"), **exprs}
    return parse_health_checks([entry], "rules.yaml")


FULL = rules(current=READY, failed=BROKEN, inProgress=ISSUING)


# ---------------------------------------------------------------- each outcome


@pytest.mark.parametrize(
    ("status", "expected", "reason"),
    [
        (conds(("Ready", "True")), Status.CURRENT, "HealthCheckCurrent"),
        (conds(("Ready", "False")), Status.FAILED, "HealthCheckFailed"),
        # inProgress is evaluated first: it wins even while current is also true (Flux's order)
        (conds(("Issuing", "True"), ("Ready", "True")), Status.IN_PROGRESS, "HealthCheckInProgress"),
        # failed comes before current
        (conds(("Ready", "False"), ("Ready", "True")), Status.FAILED, "HealthCheckFailed"),
        # none true: InProgress
        (conds(("Ready", "Unknown")), Status.IN_PROGRESS, "HealthCheckPending"),
    ],
)
def test_each_expression_outcome(status: dict, expected: Status, reason: str) -> None:
    result = compute(widget(status), FULL)
    assert (result.status, result.reason) == (expected, reason)


def test_messages_name_the_expression_that_decided() -> None:
    assert compute(widget(conds(("Ready", "True"))), FULL).message == f"current: {READY}"
    pending = compute(widget(conds()), FULL)
    assert "rules.yaml: healthCheckExprs[0] (Widget)" in pending.message


def test_only_current_is_required_and_false_means_in_progress() -> None:
    only = rules(current=READY)
    assert compute(widget(conds(("Ready", "False"))), only).status is Status.IN_PROGRESS
    assert compute(widget(conds(("Ready", "True"))), only).status is Status.CURRENT


def test_object_fields_are_top_level_variables() -> None:
    check = rules(current="metadata.generation == 2 && spec.size == status.size")
    obj = {**widget({"size": 3}, generation=2), "spec": {"size": 3}}
    assert compute(obj, check).status is Status.CURRENT


def test_stale_observed_generation_is_in_progress_before_any_expression() -> None:
    obj = widget({"observedGeneration": 1, **conds(("Ready", "True"))}, generation=2)
    assert compute(obj, FULL).reason == "GenerationNotObserved"


def test_match_is_by_group_and_kind_not_version() -> None:
    assert compute(widget(conds(("Ready", "False")), api="example.com/v2"), FULL).status is Status.FAILED
    other_group = widget(conds(("Ready", "False")), api="other.example.com/v1")
    assert compute(other_group, FULL).reason != "HealthCheckFailed"


# ---------------------------------------------------------------- precedence


def test_a_check_replaces_the_built_in_rule_of_its_kind() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ns"},
        "spec": {"replicas": 3},
        "status": {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
    }
    assert compute(deployment).status is Status.IN_PROGRESS
    lenient = rules(apiVersion="apps/v1", kind="Deployment", current="status.availableReplicas >= 1")
    assert compute(deployment, lenient).status is Status.CURRENT


def test_a_check_replaces_the_generic_stalled_rule() -> None:
    obj = widget(conds(("Stalled", "True"), ("Ready", "True")))
    assert compute(obj).status is Status.FAILED
    assert compute(obj, rules(current=READY)).status is Status.CURRENT


def test_app_checks_override_file_checks_for_their_kind_only() -> None:
    file_rules = parse_health_checks(
        [
            {"apiVersion": "example.com/v1", "kind": "Widget", "current": "false"},
            {"apiVersion": "example.com/v1", "kind": "Gadget", "current": "true"},
        ],
        "rules.yaml",
    )
    app_rules = parse_health_checks([{"apiVersion": "example.com/v1", "kind": "Widget", "current": "true"}], "spec")
    merged = file_rules.overridden_by(app_rules)
    assert compute(widget({}), merged).status is Status.CURRENT
    gadget = {**widget({}), "kind": "Gadget"}
    assert compute(gadget, merged).status is Status.CURRENT
    assert file_rules.overridden_by(None) is file_rules


def test_first_entry_of_a_kind_counts() -> None:
    twice = parse_health_checks(
        [
            {"apiVersion": "example.com/v1", "kind": "Widget", "current": "true"},
            {"apiVersion": "example.com/v2", "kind": "Widget", "current": "false"},
        ],
        "rules.yaml",
    )
    assert compute(widget({}), twice).status is Status.CURRENT


def test_not_found_and_terminating_come_before_checks() -> None:
    always = rules(current="true")
    assert compute(None, always).status is Status.NOT_FOUND
    assert compute(widget({}, deletionTimestamp="2024-01-01T00:00:00Z"), always).status is Status.TERMINATING


# ---------------------------------------------------------------- expressions that cannot be evaluated


@pytest.mark.parametrize(
    ("expression", "obj", "detail"),
    [
        ("status.phase == 'Ready'", widget({}), "phase"),  # missing field
        ("status.ready", widget(None), "status"),  # no status at all
        ("status.size", widget({"size": 3}), "not a bool"),
        ("1 / status.zero == 1", widget({"zero": 0}), "divide by zero"),
    ],
)
def test_an_expression_that_fails_is_unknown_and_names_the_rule(expression: str, obj: dict, detail: str) -> None:
    result = compute(obj, rules(current=expression))
    assert result.status is Status.UNKNOWN
    assert result.reason == "HealthCheckError"
    assert "health check rules.yaml: healthCheckExprs[0] (Widget): current" in result.message
    assert detail in result.message
    assert "in activation" not in result.message and len(result.message) < 300


def test_a_failing_expression_keeps_the_wait_going_until_the_field_appears() -> None:
    ref = ObjectRef("example.com", "Widget", "ns", "w", "v1")
    answers = iter([widget({}), widget({"phase": "Ready"})])

    async def fetch(refs: list[ObjectRef]) -> dict:
        return {ref: next(answers)}

    states = asyncio.run(
        wait_healthy([ref], fetch, timeout=10, interval=0, rules=rules(current="status.phase == 'Ready'"))
    )
    assert states[0].result.status is Status.CURRENT


def test_expressions_are_compiled_at_load_not_per_object() -> None:
    check = rules(current="status.compiled_once == true")
    before = _compile.cache_info().misses
    for _ in range(50):
        compute(widget({"compiled_once": True}), check)
    assert _compile.cache_info().misses == before


# ---------------------------------------------------------------- loading


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "health.yaml"
    path.write_text(text)
    return path


def test_a_file_holds_a_list_or_a_healthcheckexprs_mapping(tmp_path: Path) -> None:
    entry = f'- apiVersion: example.com/v1\n  kind: Widget\n  current: "{READY}"\n'
    as_list = load_health_rules(write(tmp_path, entry))
    as_mapping = load_health_rules(write(tmp_path, "healthCheckExprs:\n" + entry))
    for loaded in (as_list, as_mapping):
        assert compute(widget(conds(("Ready", "True"))), loaded).status is Status.CURRENT


def test_a_syntax_error_names_file_entry_kind_and_expression(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "- apiVersion: example.com/v1\n  kind: Widget\n  current: 'true'\n"
        "- apiVersion: example.com/v1\n  kind: Gadget\n  current: 'true'\n  failed: \"status.x ==\"\n",
    )
    with pytest.raises(UsageError) as caught:
        load_health_rules(path)
    text = str(caught.value)
    assert f"{path}: healthCheckExprs[1] (Gadget): failed is not a valid CEL expression: 'status.x =='" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- apiVersion: example.com/v1\n  kind: Widget\n", "healthCheckExprs[0]: current is required"),
        ("- kind: Widget\n  current: 'true'\n", "healthCheckExprs[0]: apiVersion is required"),
        (
            "- apiVersion: a.b/v1\n  kind: W\n  current: 'true'\n  inprogress: 'false'\n",
            "unknown field(s) inprogress",
        ),
        ("- apiVersion: a.b/v1\n  kind: W\n  current: true\n", "current must be a string"),
        ("kind: Widget\n", "expected a list of health checks"),
        ("- just a string\n", "healthCheckExprs[0]: expected a mapping"),
        ("- [unclosed\n", "invalid YAML in health rules file"),
    ],
)
def test_load_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=None) as caught:
        load_health_rules(write(tmp_path, text))
    assert message in str(caught.value)
    assert str(tmp_path / "health.yaml") in str(caught.value)


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read health rules file"):
        load_health_rules(tmp_path / "absent.yaml")


# ---------------------------------------------------------------- CRDs that promise a status


def crd(*, subresource: bool = True, conditions: bool = True, group: str = "example.com", kind: str = "Widget") -> dict:
    status: dict[str, Any] = {"type": "object"}
    if conditions:
        status["properties"] = {"conditions": {"type": "array", "items": {"type": "object"}}}
    else:
        status["x-kubernetes-preserve-unknown-fields"] = True
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {"status": status}}},
    }
    if subresource:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def test_only_a_status_subresource_with_declared_conditions_is_a_promise() -> None:
    assert promises_status(crd())
    assert not promises_status(crd(subresource=False))
    assert not promises_status(crd(conditions=False))


def test_a_kind_that_promises_status_is_in_progress_until_it_has_one() -> None:
    promising = HealthRules(status_kinds=[("example.com", "Widget")])
    waiting = compute(widget(None), promising)
    assert (waiting.status, waiting.reason) == (Status.IN_PROGRESS, "StatusNotReported")
    assert waiting.message == "waiting for the controller of Widget to report status"
    assert compute(widget({}), promising).reason == "StatusNotReported"
    assert compute(widget({"phase": "Running"}), promising).status is Status.CURRENT
    # the generic rules still read the status once it is there
    assert compute(widget(conds(("Ready", "False"))), promising).status is Status.IN_PROGRESS


def test_without_the_promise_a_custom_resource_with_no_status_stays_current() -> None:
    assert compute(widget(None)).status is Status.CURRENT
    assert compute(widget(None), HealthRules()).status is Status.CURRENT
    assert compute(widget(None), HealthRules(status_kinds=[("other.com", "Widget")])).status is Status.CURRENT


def test_a_check_takes_precedence_over_the_status_promise() -> None:
    both = rules(current="true").with_status_kinds([("example.com", "Widget")])
    assert compute(widget(None), both).status is Status.CURRENT


def _change(obj: dict, plural: str = "widgets") -> Any:
    from tether.engine.changes import Action, Change
    from tether.kube import ResourceInfo

    ref = ObjectRef.of(obj)
    return Change(ref, Action.CREATE, ResourceInfo(ref.group, ref.version, ref.kind, plural, True), desired=obj)


def test_controller_finds_the_crd_in_the_render_or_the_cache() -> None:
    gadget = {**widget(None), "kind": "Gadget"}
    cached = crd(kind="Gadget")
    cached["metadata"]["name"] = "gadgets.example.com"
    lookups: list[tuple[str, ...]] = []

    def get(group: str, kind: str, namespace: str, name: str) -> dict | None:
        lookups.append((group, kind, namespace, name))
        return cached if name == "gadgets.example.com" else None

    changes = [_change(crd(), "customresourcedefinitions"), _change(widget(None)), _change(gadget, "gadgets")]
    kinds = status_kinds_cached(changes, get)
    assert kinds == {("example.com", "Widget"), ("example.com", "Gadget")}
    assert lookups == [("apiextensions.k8s.io", "CustomResourceDefinition", "", "gadgets.example.com")]
    # a kind whose CRD is nowhere: nothing promised, the plain rule stays
    assert status_kinds_cached([_change(widget(None))], lambda *_: None) == frozenset()


# ---------------------------------------------------------------- Suspended in apply's output


def test_apply_output_reports_suspended_as_suspended_not_unhealthy(capsys: pytest.CaptureFixture[str]) -> None:
    from tether.cli.push_output import print_apply_result
    from tether.engine.apply import ApplyOptions, ApplyResult, Outcome
    from tether.engine.changes import Action, Plan
    from tether.engine.health import HealthResult, ObjectHealth, suspended
    from tether.engine.inventory import Inventory

    paused = ObjectRef("apps", "Deployment", "ns", "paused", "v1")
    ready = ObjectRef("", "ConfigMap", "ns", "ready", "v1")
    result = ApplyResult(
        outcomes=[Outcome(paused, Action.CREATE), Outcome(ready, Action.CREATE)],
        health=[
            ObjectHealth(paused, suspended("deployment is paused", "DeploymentPaused")),
            ObjectHealth(ready, HealthResult(Status.CURRENT, "")),
        ],
    )
    print_apply_result(Plan("web", [], Inventory("web")), result, ApplyOptions(wait=True), "text")
    out = " ".join(capsys.readouterr().out.split())
    assert "not healthy" not in out
    assert "suspended: Deployment.apps ns/paused (deployment is paused)" in out
    assert "1 objects healthy, 1 suspended" in out


def test_a_wait_stops_at_suspended_without_failing() -> None:
    ref = ObjectRef("batch", "CronJob", "ns", "nightly", "v1")
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"}, "spec": {"suspend": True}}

    async def fetch(refs: list[ObjectRef]) -> dict:
        return {ref: cronjob}

    states = asyncio.run(wait_healthy([ref], fetch, timeout=0))
    assert states[0].result.status is Status.SUSPENDED
