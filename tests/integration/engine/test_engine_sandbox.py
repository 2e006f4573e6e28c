"""Plan / apply / prune / health against the sandbox API server."""

from __future__ import annotations

import pytest
from engine_helpers import (
    configmap,
    deployment,
    get,
    namespace,
    plan_and_apply,
    plan_only,
    request_counts,
    run,
    writes_between,
)

from tether.engine.apply import ApplyOptions
from tether.engine.diff import IgnoreRule
from tether.engine.health import HealthFailed
from tether.engine.inventory import Inventory
from tether.engine.plan import Action
from tether.errors import ApplyError, HealthTimeout, KubeError, ValidationError
from tether.kube import Kube

SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "creds", "namespace": "eng-noop"},
    "stringData": {"password": "hunter2"},
}


def _set(ns: str) -> list[dict]:
    return [
        namespace(ns),
        configmap("one", ns, a="1"),
        configmap("two", ns, b="2"),
        deployment("web", ns),
        {**SECRET, "metadata": {**SECRET["metadata"], "namespace": ns}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]


def test_second_apply_makes_no_writes_and_one_change_writes_one(sandbox) -> None:
    objs = _set("eng-noop")
    plan, result = run(plan_and_apply(sandbox.kubeconfig, objs, "noop"))
    assert plan.summary()["create"] == len(objs)
    assert not result.failed

    before = request_counts(sandbox.url)
    plan, result = run(plan_and_apply(sandbox.kubeconfig, objs, "noop"))
    after = request_counts(sandbox.url)
    assert plan.summary() == {"create": 0, "adopt": 0, "update": 0, "unchanged": len(objs), "delete": 0, "conflict": 0}
    assert writes_between(before, after) == {}

    objs[1] = configmap("one", "eng-noop", a="changed")
    before = request_counts(sandbox.url)
    plan, result = run(plan_and_apply(sandbox.kubeconfig, objs, "noop"))
    after = request_counts(sandbox.url)
    assert [str(c.ref) for c in plan.of(Action.UPDATE)] == ["ConfigMap eng-noop/one"]
    assert writes_between(before, after) == {("APPLY", "configmaps"): 1}
    live = run(get(sandbox.kubeconfig, "v1", "ConfigMap", "one", "eng-noop"))
    assert live["data"] == {"a": "changed"}


def test_drift_is_detected_and_corrected(sandbox) -> None:
    objs = [namespace("eng-drift"), configmap("cm", "eng-drift", k="git")]
    run(plan_and_apply(sandbox.kubeconfig, objs, "drift"))
    import json
    import urllib.request

    patch = json.dumps({"data": {"k": "edited"}}).encode()
    request = urllib.request.Request(
        f"{sandbox.url}/api/v1/namespaces/eng-drift/configmaps/cm",
        data=patch,
        method="PATCH",
        headers={"Content-Type": "application/merge-patch+json"},
    )
    urllib.request.urlopen(request, timeout=30).close()
    for exact in (True, False):
        plan = run(plan_only(sandbox.kubeconfig, objs, "drift", exact=exact))
        [change] = plan.of(Action.UPDATE)
        text = "\n".join(change.diff_lines())
        assert "-  k: edited" in text and "+  k: git" in text
        assert [str(t) for t in change.takes] == ["takes .data.k from Python-urllib"] or change.takes
    # the editor now owns the field: Git wins by default (--no-force would refuse)
    with pytest.raises(ApplyError, match=r"ConfigMap eng-drift/cm.*409"):
        run(plan_and_apply(sandbox.kubeconfig, objs, "drift", ApplyOptions(force=False)))
    run(plan_and_apply(sandbox.kubeconfig, objs, "drift"))
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "cm", "eng-drift"))["data"] == {"k": "git"}


def test_prune_removes_exactly_what_left(sandbox) -> None:
    ns = "eng-prune"
    keep = configmap("keep", ns, v="1")
    keep["metadata"]["annotations"] = {"tether.dev/prune": "disabled"}
    objs = [namespace(ns), configmap("stay", ns), configmap("leave", ns), keep]
    run(plan_and_apply(sandbox.kubeconfig, objs, "prune", ApplyOptions(prune=True)))
    # an object with the app's label that tether never applied: outside the inventory
    stranger = configmap("stranger", ns)
    stranger["metadata"]["labels"] = {"tether.dev/app": "prune"}
    run(plan_and_apply(sandbox.kubeconfig, [stranger], "other-app"))

    remaining = [namespace(ns), configmap("stay", ns)]
    plan, result = run(plan_and_apply(sandbox.kubeconfig, remaining, "prune", ApplyOptions(prune=True)))
    assert [str(c.ref) for c in plan.of(Action.DELETE)] == ["ConfigMap prune/leave".replace("prune/", f"{ns}/")]
    assert [str(r) for r in plan.kept] == [f"ConfigMap {ns}/keep"]
    assert result.count(Action.DELETE) == 1
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "leave", ns)) is None
    for name in ("stay", "keep", "stranger"):
        assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", name, ns)) is not None, name
    inventory = Inventory.from_configmap(
        "prune", run(get(sandbox.kubeconfig, "v1", "ConfigMap", "tether-inventory-prune", "tether-system"))
    )
    assert sorted(str(r) for r in inventory.entries) == [f"ConfigMap {ns}/stay", f"Namespace {ns}"]


def test_apply_without_prune_keeps_and_remembers(sandbox) -> None:
    ns = "eng-noprune"
    run(plan_and_apply(sandbox.kubeconfig, [namespace(ns), configmap("a", ns), configmap("b", ns)], "noprune"))
    plan, _ = run(plan_and_apply(sandbox.kubeconfig, [namespace(ns), configmap("a", ns)], "noprune"))
    assert [str(c.ref) for c in plan.of(Action.DELETE)] == [f"ConfigMap {ns}/b"]
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "b", ns)) is not None
    # a later run with --prune still knows about b
    plan, _ = run(
        plan_and_apply(sandbox.kubeconfig, [namespace(ns), configmap("a", ns)], "noprune", ApplyOptions(prune=True))
    )
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "b", ns)) is None


def test_prune_refuses_empty_desired_set(sandbox) -> None:
    ns = "eng-empty"
    run(plan_and_apply(sandbox.kubeconfig, [namespace(ns), configmap("a", ns)], "empty"))
    with pytest.raises(ApplyError, match="refusing to prune all 2 objects"):
        run(plan_and_apply(sandbox.kubeconfig, [], "empty", ApplyOptions(prune=True)))
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "a", ns)) is not None


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gizmos.eng.example.com"},
    "spec": {
        "group": "eng.example.com",
        "scope": "Namespaced",
        "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo", "listKind": "GizmoList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
                    }
                },
            }
        ],
    },
}


def test_crd_and_custom_resource_in_one_run(sandbox) -> None:
    ns = "eng-crd"
    gizmo = {
        "apiVersion": "eng.example.com/v1",
        "kind": "Gizmo",
        "metadata": {"name": "g1", "namespace": ns},
        "spec": {"size": 3},
    }
    objs = [gizmo, namespace(ns), CRD]
    diff = run(plan_only(sandbox.kubeconfig, objs, "crd", exact=True))
    assert diff.summary()["create"] == 3
    _plan, dry = run(plan_and_apply(sandbox.kubeconfig, objs, "crd", ApplyOptions(dry_run=True)))
    assert not dry.failed and dry.count(Action.CREATE) == 3
    assert (
        run(get(sandbox.kubeconfig, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "gizmos.eng.example.com"))
        is None
    )
    _plan, result = run(plan_and_apply(sandbox.kubeconfig, objs, "crd", ApplyOptions(wait=True, timeout=120)))
    assert not result.failed and result.count(Action.CREATE) == 3
    assert next(str(o.ref) for o in result.outcomes).startswith("CustomResourceDefinition")
    assert run(get(sandbox.kubeconfig, "eng.example.com/v1", "Gizmo", "g1", ns))["spec"] == {"size": 3}
    again = run(plan_only(sandbox.kubeconfig, objs, "crd"))
    assert again.summary()["unchanged"] == 3
    # prune removes the custom resource before its CRD
    _plan, result = run(plan_and_apply(sandbox.kubeconfig, [namespace(ns)], "crd", ApplyOptions(prune=True)))
    order = [str(o.ref) for o in result.outcomes]
    assert order.index(f"Gizmo.eng.example.com {ns}/g1") < order.index(
        "CustomResourceDefinition.apiextensions.k8s.io gizmos.eng.example.com"
    )


def test_unknown_kind_applies_nothing(sandbox) -> None:
    ns = "eng-unknown"
    objs = [
        namespace(ns),
        configmap("a", ns),
        {"apiVersion": "nope.example.com/v1", "kind": "Nothing", "metadata": {"name": "x", "namespace": ns}},
    ]
    with pytest.raises(ValidationError, match=r"unknown kind Nothing in apiVersion nope\.example\.com/v1"):
        run(plan_and_apply(sandbox.kubeconfig, objs, "unknown"))
    assert run(get(sandbox.kubeconfig, "v1", "Namespace", ns)) is None


def test_field_conflict_git_wins_unless_no_force(sandbox) -> None:
    ns = "eng-conflict"
    run(plan_and_apply(sandbox.kubeconfig, [namespace(ns), configmap("cm", ns, k="mine")], "conflict"))

    async def other_manager() -> None:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        info = await kube.info("v1", "ConfigMap")
        await kube.apply(info, configmap("cm", ns, k="theirs"), force=True, field_manager="someone")
        await kube.close()

    run(other_manager())
    objs = [namespace(ns), configmap("cm", ns, k="mine")]
    with pytest.raises(ApplyError, match=r"ConfigMap eng-conflict/cm.*409.*force"):
        run(plan_and_apply(sandbox.kubeconfig, objs, "conflict", ApplyOptions(force=False)))
    run(plan_and_apply(sandbox.kubeconfig, objs, "conflict"))
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "cm", ns))["data"] == {"k": "mine"}


def test_wait_ends_when_the_rollout_is_done(sandbox) -> None:
    ns = "eng-wait"
    objs = [namespace(ns), deployment("web", ns, replicas=2), configmap("cfg", ns)]
    _, result = run(plan_and_apply(sandbox.kubeconfig, objs, "wait", ApplyOptions(wait=True, timeout=120)))
    assert {str(h.ref): str(h.result.status) for h in result.health} == {
        f"Deployment.apps {ns}/web": "Current",
        f"ConfigMap {ns}/cfg": "Current",
        f"Namespace {ns}": "Current",
    }
    live = run(get(sandbox.kubeconfig, "apps/v1", "Deployment", "web", ns))
    assert live["status"]["readyReplicas"] == 2


def test_wait_times_out_naming_what_is_not_ready(sandbox) -> None:
    ns = "eng-wait-timeout"
    # the sandbox never pulls an image whose name contains "fail"
    objs = [
        namespace(ns),
        deployment("stuck", ns, replicas=2, image="registry.example.com/fail:1"),
        configmap("cfg", ns),
    ]
    with pytest.raises(HealthTimeout, match=rf"1 object\(s\): Deployment\.apps {ns}/stuck: InProgress \("):
        run(plan_and_apply(sandbox.kubeconfig, objs, "wait-timeout", ApplyOptions(wait=True, timeout=3)))


def test_wait_fails_fast_on_a_failed_job(sandbox) -> None:
    ns = "eng-wait-fail"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": ns},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "m", "image": "registry.example.com/fail:1"}],
                }
            },
        },
    }
    with pytest.raises(HealthFailed, match=rf"Job\.batch {ns}/migrate: Failed"):
        # fails long before the timeout: the wait does not sit it out
        run(plan_and_apply(sandbox.kubeconfig, [namespace(ns), job], "wait-fail", ApplyOptions(wait=True, timeout=600)))


def test_bad_kubeconfig_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(KubeError, match="cannot load"):
        run(plan_only(tmp_path / "missing", [], "x"))


def test_ignore_rule_by_field_manager_stops_the_tug_of_war(sandbox) -> None:
    ns = "eng-ignore"
    rules = [IgnoreRule("apps", "Deployment", ("/spec/replicas",), manager="autoscaler")]
    objs = [namespace(ns), deployment("web", ns, replicas=2)]
    run(plan_and_apply(sandbox.kubeconfig, objs, "ignore", ignore_rules=rules))

    async def autoscale() -> None:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        info = await kube.info("apps/v1", "Deployment")
        await kube.apply(
            info,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": ns},
                "spec": {"replicas": 5},
            },
            force=True,
            field_manager="autoscaler",
        )
        await kube.close()

    run(autoscale())
    # without the rule the scaled replicas are drift; with it, nothing to do
    assert run(plan_only(sandbox.kubeconfig, objs, "ignore", exact=True)).summary()["update"] == 1
    assert run(plan_only(sandbox.kubeconfig, objs, "ignore", ignore_rules=rules)).summary()["unchanged"] == 2
    # a real change is applied without taking replicas back
    objs[1] = deployment("web", ns, replicas=2, image="nginx:1.28")
    plan, _ = run(plan_and_apply(sandbox.kubeconfig, objs, "ignore", ignore_rules=rules))
    assert [str(c.ref) for c in plan.of(Action.UPDATE)] == [f"Deployment.apps {ns}/web"]
    live = run(get(sandbox.kubeconfig, "apps/v1", "Deployment", "web", ns))
    assert live["spec"]["replicas"] == 5
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
