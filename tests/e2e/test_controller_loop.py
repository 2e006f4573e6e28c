"""The GitOps loop end to end: Git push -> applied, drift -> corrected or reported, failures kept safe."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cluster import Cluster, condition, eventually, ready_at

from tether.cli.demo_env import LocalEnvironment

pytestmark = pytest.mark.usefixtures("controller")


def configmap(name: str, namespace: str, **data: str) -> str:
    lines = "".join(f'  {k}: "{v}"\n' for k, v in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n{lines}"


def namespace(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


def app(env: LocalEnvironment, name: str, path: str, dest: str, **spec: Any) -> dict:
    obj = env.application(name, path=path, **spec)
    obj["spec"]["destination"] = {"namespace": dest}
    return obj


@pytest.fixture
def cluster(env: LocalEnvironment) -> Cluster:
    return Cluster(env.kubeconfig)


def data_of(cluster: Cluster, name: str, ns: str) -> dict:
    return ((cluster.get("v1", "ConfigMap", name, ns) or {}).get("data")) or {}


def test_push_is_applied_and_history_records_the_commit(env: LocalEnvironment, cluster: Cluster) -> None:
    env.commit("Add alpha", {"alpha/ns.yaml": namespace("alpha"), "alpha/cm.yaml": configmap("c", "alpha", v="1")})
    cluster.apply(app(env, "alpha", "alpha", "alpha"))
    first = env.head()
    eventually(lambda: ready_at(cluster.app("alpha"), first), "alpha Ready at the first commit")
    second = env.commit("Bump alpha to 2", {"alpha/cm.yaml": configmap("c", "alpha", v="2")})
    eventually(lambda: data_of(cluster, "c", "alpha").get("v") == "2", "the pushed value")
    eventually(lambda: ready_at(cluster.app("alpha"), second), "alpha Ready at the pushed commit")
    history = cluster.app("alpha")["status"]["history"]
    assert history[0]["revision"] == second
    assert history[0]["subject"] == "Bump alpha to 2"
    assert history[0]["author"].startswith("Dana Developer")
    reasons = {e.get("reason") for e in cluster.events("default", "alpha")}
    assert "ReconciliationSucceeded" in reasons


def test_the_echo_of_its_own_apply_does_not_reconcile_an_app_again(
    env: LocalEnvironment, cluster: Cluster, controller: Any
) -> None:
    passes: list[str] = []
    controller.controller.reports.subscribe(
        lambda r: passes.append(r.revision) if (r.name, r.phase) == ("echo", "finished") else None
    )
    files = {f"echo/cm-{i}.yaml": configmap(f"c{i}", "echo", v="git") for i in range(5)}
    env.commit("Add echo", {"echo/ns.yaml": namespace("echo"), **files})
    cluster.apply(app(env, "echo", "echo", "echo"))
    eventually(lambda: ready_at(cluster.app("echo"), env.head()), "echo Ready")
    time.sleep(2)  # the watch events of the six objects it wrote have long arrived
    assert len(passes) == 1, f"{len(passes)} passes for one apply of six objects"
    cluster.patch("v1", "ConfigMap", "c3", "echo", {"data": {"v": "edited"}})  # someone else's write
    eventually(lambda: data_of(cluster, "c3", "echo").get("v") == "git", "the edit to be reverted")
    assert len(passes) >= 2


def test_self_heal_reverts_an_edit_and_recreates_a_deleted_object(env: LocalEnvironment, cluster: Cluster) -> None:
    env.commit("Add heal", {"heal/ns.yaml": namespace("heal"), "heal/cm.yaml": configmap("c", "heal", v="git")})
    cluster.apply(app(env, "heal", "heal", "heal"))
    eventually(lambda: ready_at(cluster.app("heal"), env.head()), "heal Ready")
    cluster.patch("v1", "ConfigMap", "c", "heal", {"data": {"v": "edited"}})
    eventually(lambda: data_of(cluster, "c", "heal").get("v") == "git", "the edit to be reverted")
    assert "DriftCorrected" in {e.get("reason") for e in cluster.events("default", "heal")}
    cluster.delete("v1", "ConfigMap", "c", "heal")
    eventually(lambda: data_of(cluster, "c", "heal").get("v") == "git", "the deleted object to come back")


def test_without_self_heal_drift_is_reported_with_the_manager(env: LocalEnvironment, cluster: Cluster) -> None:
    env.commit("Add watch", {"watch/ns.yaml": namespace("watch"), "watch/cm.yaml": configmap("c", "watch", v="git")})
    cluster.apply(app(env, "watch", "watch", "watch", self_heal=False))
    eventually(lambda: ready_at(cluster.app("watch"), env.head()), "watch Ready")
    cluster.patch("v1", "ConfigMap", "c", "watch", {"data": {"v": "edited"}}, manager="kubectl-edit")
    drifted = eventually(
        lambda: condition(cluster.app("watch"), "Drifted").get("status") == "True" and cluster.app("watch"),
        "Drifted=True",
    )
    assert drifted["status"]["sync"]["status"] == "OutOfSync"
    entry = drifted["status"]["drift"][0]
    assert entry["object"] == "ConfigMap watch/c"
    assert ".data.v" in entry["fields"]
    assert entry["manager"] == "kubectl-edit"
    assert data_of(cluster, "c", "watch")["v"] == "edited"  # reported, not reverted


def test_prune_on_removal_and_a_broken_commit_keeps_the_last_good_state(
    env: LocalEnvironment, cluster: Cluster
) -> None:
    env.commit(
        "Add prune",
        {
            "prune/ns.yaml": namespace("prune"),
            "prune/a.yaml": configmap("a", "prune", v="1"),
            "prune/b.yaml": configmap("b", "prune", v="1"),
        },
    )
    cluster.apply(app(env, "prune", "prune", "prune"))
    eventually(lambda: ready_at(cluster.app("prune"), env.head()), "prune Ready")
    env.commit("Break prune", {"prune/b.yaml": None, "prune/a.yaml": "kind: [unclosed\n"})
    failed = eventually(
        lambda: condition(cluster.app("prune"), "Ready").get("status") == "False" and cluster.app("prune"),
        "Ready=False after the broken commit",
    )
    assert "RenderFailed" in condition(failed, "Ready")["reason"]
    assert cluster.get("v1", "ConfigMap", "b", "prune") is not None, "nothing may be pruned after a failed render"
    assert cluster.get("v1", "ConfigMap", "a", "prune") is not None
    fixed = env.commit("Fix prune", {"prune/a.yaml": configmap("a", "prune", v="2")})
    eventually(lambda: ready_at(cluster.app("prune"), fixed), "recovery")
    assert cluster.get("v1", "ConfigMap", "b", "prune") is None, "b left Git and is pruned"
    assert data_of(cluster, "a", "prune")["v"] == "2"


def test_depends_on_orders_two_apps(env: LocalEnvironment, cluster: Cluster) -> None:
    env.commit(
        "Add base and top",
        {
            "base/ns.yaml": namespace("base"),
            "base/cm.yaml": configmap("c", "base", v="1"),
            "top/cm.yaml": configmap("c", "base", w="1").replace("name: c", "name: top"),
        },
    )
    cluster.apply(app(env, "top", "top", "base", dependsOn=[{"name": "base"}]))
    waiting = eventually(
        lambda: condition(cluster.app("top"), "Ready").get("reason") == "DependencyNotReady" and cluster.app("top"),
        "top waiting for base",
    )
    assert cluster.get("v1", "ConfigMap", "top", "base") is None
    assert waiting
    cluster.apply(app(env, "base", "base", "base"))
    eventually(lambda: ready_at(cluster.app("top"), env.head()), "top Ready after base")


def test_suspend_then_resume(env: LocalEnvironment, cluster: Cluster) -> None:
    env.commit("Add susp", {"susp/ns.yaml": namespace("susp"), "susp/cm.yaml": configmap("c", "susp", v="1")})
    cluster.apply(app(env, "susp", "susp", "susp"))
    eventually(lambda: ready_at(cluster.app("susp"), env.head()), "susp Ready")
    cluster.patch(*("tether.dev/v1alpha1", "Application"), "susp", "default", {"spec": {"suspend": True}})
    eventually(
        lambda: (
            (cluster.app("susp") or {}).get("status", {}).get("observedGeneration")
            == cluster.app("susp")["metadata"]["generation"]
        ),
        "the suspension to be observed",
    )
    commit = env.commit("Change susp", {"susp/cm.yaml": configmap("c", "susp", v="2")})
    cluster.patch(
        "tether.dev/v1alpha1",
        "Application",
        "susp",
        "default",
        {"metadata": {"annotations": {"tether.dev/refresh-requested-at": "now"}}},
    )
    import time

    time.sleep(1.5)
    assert data_of(cluster, "c", "susp")["v"] == "1", "a suspended app is not applied"
    cluster.patch("tether.dev/v1alpha1", "Application", "susp", "default", {"spec": {"suspend": False}})
    eventually(lambda: ready_at(cluster.app("susp"), commit), "resumed and applied")
    assert data_of(cluster, "c", "susp")["v"] == "2"


def test_pin_and_unpin(env: LocalEnvironment, cluster: Cluster) -> None:
    first = env.commit("Add pin", {"pin/ns.yaml": namespace("pin"), "pin/cm.yaml": configmap("c", "pin", v="1")})
    cluster.apply(app(env, "pin", "pin", "pin"))
    eventually(lambda: ready_at(cluster.app("pin"), first), "pin Ready")
    second = env.commit("Pin v2", {"pin/cm.yaml": configmap("c", "pin", v="2")})
    eventually(lambda: ready_at(cluster.app("pin"), second), "pin at v2")
    cluster.patch(
        "tether.dev/v1alpha1",
        "Application",
        "pin",
        "default",
        {"spec": {"pin": {"revision": first, "reason": "bad release"}}},
    )
    eventually(
        lambda: data_of(cluster, "c", "pin").get("v") == "1" and ready_at(cluster.app("pin"), first), "the rollback"
    )
    assert condition(cluster.app("pin"), "Pinned")["status"] == "True"
    cluster.patch("tether.dev/v1alpha1", "Application", "pin", "default", {"spec": {"pin": None}})
    eventually(lambda: data_of(cluster, "c", "pin").get("v") == "2", "back to the branch head")
    assert condition(cluster.app("pin"), "Pinned") == {}


def test_an_invalid_object_is_refused_before_anything_is_written(env: LocalEnvironment, cluster: Cluster) -> None:
    env.commit("Add valid", {"valid/ns.yaml": namespace("valid"), "valid/cm.yaml": configmap("c", "valid", v="1")})
    cluster.apply(app(env, "valid", "valid", "valid"))
    eventually(lambda: ready_at(cluster.app("valid"), env.head()), "valid Ready")
    bad = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: valid\n"
        "spec:\n  replicas: two\n  selector: {matchLabels: {a: b}}\n"
        "  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: nginx}]}\n"
    )
    env.commit("Add an invalid Deployment", {"valid/d.yaml": bad, "valid/cm.yaml": configmap("c", "valid", v="2")})
    failed = eventually(
        lambda: condition(cluster.app("valid"), "Ready").get("reason") == "ValidationFailed" and cluster.app("valid"),
        "ValidationFailed",
    )
    assert "replicas" in condition(failed, "Ready")["message"]
    assert condition(failed, "Stalled")["status"] == "True"  # only a new commit can help
    assert data_of(cluster, "c", "valid")["v"] == "1", "nothing of the invalid commit may be applied"


def test_app_diff_shows_the_live_drift_and_changes_nothing(env: LocalEnvironment, cluster: Cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    env.commit(
        "Add livediff",
        {"livediff/ns.yaml": namespace("livediff"), "livediff/cm.yaml": configmap("c", "livediff", v="git")},
    )
    cluster.apply(app(env, "livediff", "livediff", "livediff", self_heal=False))
    eventually(lambda: ready_at(cluster.app("livediff"), env.head()), "livediff Ready")
    cli = [
        sys.executable,
        "-m",
        "tether.cli.main",
        "app",
        "diff",
        "livediff",
        "-n",
        "default",
        "--kubeconfig",
        str(env.kubeconfig),
        "--cache-dir",
        str(tmp_path),
    ]
    same = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert same.returncode == 0, same.stdout + same.stderr
    cluster.patch("v1", "ConfigMap", "c", "livediff", {"data": {"v": "edited"}})
    changed = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "-  v: edited" in changed.stdout and "+  v: git" in changed.stdout
    assert data_of(cluster, "c", "livediff")["v"] == "edited"  # a diff writes nothing


def test_delete_with_cascade_prunes_the_apps_objects_first(env: LocalEnvironment, cluster: Cluster) -> None:
    env.commit("Add gone", {"gone/cm.yaml": configmap("c", "default", v="1")})
    cluster.apply(app(env, "gone", "gone", "default"))
    eventually(lambda: ready_at(cluster.app("gone"), env.head()), "gone Ready")
    assert cluster.get("v1", "ConfigMap", "c", "default") is not None
    current = cluster.app("gone")
    cluster.patch(
        "tether.dev/v1alpha1",
        "Application",
        "gone",
        "default",
        {"metadata": {"finalizers": ["tether.dev/cascade"], "resourceVersion": current["metadata"]["resourceVersion"]}},
    )
    cluster.delete("tether.dev/v1alpha1", "Application", "gone", "default")
    eventually(lambda: cluster.app("gone") is None, "the Application to go once its objects are pruned")
    assert cluster.get("v1", "ConfigMap", "c", "default") is None
