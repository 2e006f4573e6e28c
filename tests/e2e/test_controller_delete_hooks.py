"""Delete hooks when an Application is deleted with the cascade finalizer, and ``tether test``.

The order of what happened is read back from the sandbox's watch history (one resourceVersion
counter for every object), so the test does not depend on timing.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster, condition, eventually, ready_at

from tether.cli.demo_env import LocalEnvironment
from tether.kube import Kube

pytestmark = pytest.mark.usefixtures("controller")

CASCADE = "tether.dev/cascade"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "compat"


def configmap(name: str, namespace: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  v: '1'\n"


def job(name: str, namespace: str, annotations: dict[str, str], command: str = "echo done") -> str:
    notes = "".join(f'    "{k}": "{v}"\n' for k, v in annotations.items())
    return (
        f"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"  annotations:\n{notes}spec:\n  backoffLimit: 0\n  template:\n    spec:\n"
        f"      restartPolicy: Never\n      containers:\n        - name: run\n          image: busybox:1.36\n"
        f'          command: ["sh", "-c", "{command}"]\n'
    )


def app(env: LocalEnvironment, name: str, dest: str, *, cascade: bool = True, path: str = "", **spec: Any) -> dict:
    # a short interval: a commit pushed just after the controller's last fetch is seen soon all the same
    obj = env.application(name, path=path or name, interval="3s", **spec)
    obj["spec"]["destination"] = {"namespace": dest, "createNamespace": True}
    if cascade:
        obj["metadata"]["finalizers"] = [CASCADE]
    return obj


@pytest.fixture
def cluster(env: LocalEnvironment) -> Cluster:
    return Cluster(env.kubeconfig)


def history(env: LocalEnvironment, namespace: str, since: str) -> list[tuple[int, str, str, str, dict]]:
    """(resourceVersion, event type, kind, name, object) of every Job and ConfigMap change after ``since``."""

    async def main() -> list[tuple[int, str, str, str, dict]]:
        kube = await Kube.connect(kubeconfig=str(env.kubeconfig))
        out = []
        try:
            for kind, api_version in (("Job", "batch/v1"), ("ConfigMap", "v1")):
                info = await kube.info(api_version, kind)
                async for event_type, obj in kube.watch(info, namespace, resource_version=since, timeout_seconds=1):
                    meta = obj.get("metadata") or {}
                    if event_type != "BOOKMARK":
                        out.append((int(meta["resourceVersion"]), event_type, kind, meta.get("name", ""), obj))
        finally:
            await kube.close()
        return sorted(out, key=lambda e: e[0])

    return asyncio.run(main())


def complete(obj: dict) -> bool:
    return any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def reasons(cluster: Cluster, name: str) -> dict[str, str]:
    return {e.get("reason", ""): e.get("message", "") for e in cluster.events("default", name)}


def test_pre_delete_runs_before_the_prune_and_post_delete_after(env: LocalEnvironment, cluster: Cluster) -> None:
    env.commit(
        "Add dhorder",
        {
            "dhorder/cm.yaml": configmap("settings", "dhorder"),
            "dhorder/pre.yaml": job("drain", "dhorder", {"helm.sh/hook": "pre-delete", "helm.sh/hook-weight": "-1"}),
            "dhorder/post.yaml": job(
                "farewell",
                "dhorder",
                {"argocd.argoproj.io/hook": "PostDelete", "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"},
            ),
        },
    )
    cluster.apply(app(env, "dhorder", "dhorder"))
    eventually(lambda: ready_at(cluster.app("dhorder"), env.head()), "dhorder Ready")
    assert cluster.get("batch/v1", "Job", "drain", "dhorder") is None  # a sync never runs delete hooks
    since = cluster.get("v1", "ConfigMap", "settings", "dhorder")["metadata"]["resourceVersion"]  # type: ignore[index]
    cluster.delete("tether.dev/v1alpha1", "Application", "dhorder", "default")
    eventually(lambda: cluster.app("dhorder") is None, "the Application to go")

    events = history(env, "dhorder", since)
    pruned = next(rv for rv, kind_, k, name, _ in events if (kind_, k, name) == ("DELETED", "ConfigMap", "settings"))
    drain_done = next(rv for rv, _t, k, name, obj in events if (k, name) == ("Job", "drain") and complete(obj))
    farewell_created = next(rv for rv, t, k, name, _ in events if (t, k, name) == ("ADDED", "Job", "farewell"))
    farewell_done = next(rv for rv, _t, k, name, obj in events if (k, name) == ("Job", "farewell") and complete(obj))
    assert drain_done < pruned < farewell_created < farewell_done
    # delete policies: the default (BeforeHookCreation) keeps the pre-delete Job, HookSucceeded removed the other
    assert ("DELETED", "farewell") in {(t, name) for _rv, t, _k, name, _o in events}
    assert cluster.get("batch/v1", "Job", "drain", "dhorder") is not None
    assert cluster.get("batch/v1", "Job", "farewell", "dhorder") is None
    message = reasons(cluster, "dhorder")["Deleted"]
    assert "pre-delete hooks: Job/dhorder/drain" in message and "post-delete hooks: Job/dhorder/farewell" in message


def test_a_failing_pre_delete_hook_keeps_the_objects_and_the_finalizer(env: LocalEnvironment, cluster: Cluster) -> None:
    env.commit(
        "Add dhfail",
        {
            "dhfail/cm.yaml": configmap("settings", "dhfail"),
            "dhfail/pre.yaml": job("backup", "dhfail", {"helm.sh/hook": "pre-delete"}, command="exit 3"),
        },
    )
    cluster.apply(app(env, "dhfail", "dhfail"))
    eventually(lambda: ready_at(cluster.app("dhfail"), env.head()), "dhfail Ready")
    cluster.delete("tether.dev/v1alpha1", "Application", "dhfail", "default")
    eventually(lambda: "PreDeleteHookFailed" in reasons(cluster, "dhfail"), "the PreDeleteHookFailed Event")
    held = cluster.app("dhfail")
    assert held is not None and held["metadata"]["finalizers"] == [CASCADE]
    assert cluster.get("v1", "ConfigMap", "settings", "dhfail") is not None  # nothing pruned
    ready = eventually(lambda: condition(cluster.app("dhfail"), "Ready"), "the Ready condition")
    assert ready["status"] == "False" and ready["reason"] == "PreDeleteHookFailed"
    assert CASCADE in ready["message"]
    # forcing it: without the finalizer the Application goes and its objects stay
    cluster.patch(
        "tether.dev/v1alpha1",
        "Application",
        "dhfail",
        "default",
        {"metadata": {"finalizers": None}},
    )
    eventually(lambda: cluster.app("dhfail") is None, "the Application to go without its finalizer")
    assert cluster.get("v1", "ConfigMap", "settings", "dhfail") is not None


def test_without_the_cascade_finalizer_no_delete_hook_runs(env: LocalEnvironment, cluster: Cluster) -> None:
    env.commit(
        "Add dhplain",
        {
            "dhplain/cm.yaml": configmap("settings", "dhplain"),
            "dhplain/pre.yaml": job("drain", "dhplain", {"helm.sh/hook": "pre-delete"}),
        },
    )
    obj = app(env, "dhplain", "dhplain", cascade=False)
    obj["metadata"]["finalizers"] = ["example.com/hold"]  # the controller sees the deletion, without cascade
    cluster.apply(obj)
    eventually(lambda: ready_at(cluster.app("dhplain"), env.head()), "dhplain Ready")
    cluster.delete("tether.dev/v1alpha1", "Application", "dhplain", "default")
    deadline = time.monotonic() + 3  # long enough for a hook to be created if it were run
    while time.monotonic() < deadline:
        assert cluster.get("batch/v1", "Job", "drain", "dhplain") is None
        time.sleep(0.1)
    cluster.patch("tether.dev/v1alpha1", "Application", "dhplain", "default", {"metadata": {"finalizers": None}})
    eventually(lambda: cluster.app("dhplain") is None, "the Application to go")
    assert cluster.get("v1", "ConfigMap", "settings", "dhplain") is not None
    assert cluster.get("batch/v1", "Job", "drain", "dhplain") is None


def test_an_app_never_applied_is_deleted_without_hooks(env: LocalEnvironment, cluster: Cluster) -> None:
    cluster.apply(app(env, "dhnever", "dhnever", path="does/not/exist"))
    eventually(lambda: condition(cluster.app("dhnever"), "Ready").get("status") == "False", "dhnever failing")
    cluster.delete("tether.dev/v1alpha1", "Application", "dhnever", "default")
    eventually(lambda: cluster.app("dhnever") is None, "the Application to go")
    assert "no delete hooks ran (the app was never applied)" in reasons(cluster, "dhnever")["Deleted"]


# ---------------------------------------------------------------- tether test

FAILING_TEST = """apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test-schema
  annotations:
    "helm.sh/hook": test
    "helm.sh/hook-weight": "1"
spec:
  restartPolicy: Never
  containers:
    - name: check
      image: busybox:1.36
      command: ["sh", "-c", "echo checking the schema; exit 1"]
"""


def chart_files(root: str) -> dict[str, str]:
    """The helm-hooks fixture chart (a passing test Pod) plus a failing test of higher weight."""
    source = FIXTURES / "helm-hooks"
    files = {f"{root}/{p.relative_to(source)}": p.read_text() for p in source.rglob("*") if p.is_file()}
    files[f"{root}/templates/test-schema.yaml"] = FAILING_TEST
    return files


def tether(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args], capture_output=True, text=True, timeout=180, check=False
    )


def test_tether_test_runs_the_helm_tests_in_weight_order(
    env: LocalEnvironment, cluster: Cluster, tmp_path: Path
) -> None:
    env.commit("Add shoptest", chart_files("shoptest"))
    cluster.apply(app(env, "shoptest", "shoptest", cascade=False))
    eventually(lambda: ready_at(cluster.app("shoptest"), env.head()), "shoptest Ready", timeout=60)
    assert cluster.get("v1", "Pod", "shoptest-test-connection", "shoptest") is None  # apply never runs tests
    args = ["test", "shoptest", "-n", "default", "--kubeconfig", str(env.kubeconfig), "--cache-dir", str(tmp_path)]
    first = tether(*args, "--timeout", "60s", "--logs")
    assert first.returncode == 1, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    passed = next(i for i, line in enumerate(lines) if "Pod/shoptest/shoptest-test-connection" in line)
    failed = next(i for i, line in enumerate(lines) if "Pod/shoptest/shoptest-test-schema" in line)
    assert passed < failed
    assert "Succeeded" in lines[passed] and "Failed" in lines[failed]
    assert "not available (the cluster does not serve pods/log" in first.stdout  # the sandbox does not
    uid = cluster.get("v1", "Pod", "shoptest-test-connection", "shoptest")["metadata"]["uid"]  # type: ignore[index]
    # before-hook-creation (the default): the earlier test Pod is deleted and created anew
    second = tether(*args)
    assert second.returncode == 1, second.stdout + second.stderr
    again = cluster.get("v1", "Pod", "shoptest-test-connection", "shoptest")
    assert again is not None and again["metadata"]["uid"] != uid


def test_tether_test_with_a_local_path(env: LocalEnvironment, tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(FIXTURES / "helm-hooks", chart)
    common = ["--path", str(chart), "-n", "default", "--kubeconfig", str(env.kubeconfig)]
    passing = tether("test", "localshop", *common)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Pod/default/localshop-test-connection" in passing.stdout and "Succeeded" in passing.stdout
    (chart / "templates" / "test-schema.yaml").write_text(FAILING_TEST)
    failing = tether("test", "localshop", *common)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "localshop-test-schema" in failing.stdout and "Failed" in failing.stdout


def test_tether_test_help_and_usage() -> None:
    shown = tether("test", "--help")
    assert shown.returncode == 0
    assert "tether test web -n shop" in shown.stdout and "--logs" in shown.stdout
    misuse = tether("test", "web", "--set", "a=b")
    assert misuse.returncode == 2 and "need --path" in misuse.stderr
