"""Annotations, sync waves and hooks of Argo CD, Flux and Helm, applied to a sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tether.engine import AppIdentity, ApplyOptions, HealthTimedOut, apply_plan, make_plan
from tether.engine.hooks import HookFailed
from tether.kube import Kube
from tether.model import Manifest


def cm(name: str, namespace: str, annotations: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}


def job(
    name: str, namespace: str, annotations: dict[str, str], command: list[str] | None = None, generate: bool = False
) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": namespace, "annotations": annotations}
    meta["generateName" if generate else "name"] = name
    container = {"name": "run", "image": "busybox:1.36", "command": command or ["sh", "-c", "echo ok"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }


class Cluster:
    def __init__(self, kubeconfig: Any) -> None:
        self.kubeconfig = str(kubeconfig)

    def sync(self, objs: list[dict[str, Any]], app: str, **options: Any) -> tuple[Any, Any]:
        async def go() -> tuple[Any, Any]:
            async with await Kube.connect(kubeconfig=self.kubeconfig) as kube:
                plan = await make_plan(kube, [Manifest(o) for o in objs], AppIdentity("tether-system", app))
                try:
                    return plan, await apply_plan(kube, plan, ApplyOptions(health_interval=0.1, **options))
                except Exception as error:  # the test looks at the error and the plan both
                    return plan, error

        return asyncio.run(go())

    def list(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        async def go() -> list[dict[str, Any]]:
            async with await Kube.connect(kubeconfig=self.kubeconfig) as kube:
                return await kube.list(await kube.info(api_version, kind), namespace)

        return asyncio.run(go())

    def names(self, api_version: str, kind: str, namespace: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.list(api_version, kind, namespace)}


@pytest.fixture
def cluster(quick_sandbox: Any) -> Cluster:
    return Cluster(quick_sandbox.kubeconfig)


KEEPS = {
    "tether": {"tether.dev/prune": "disabled"},
    "argo": {"argocd.argoproj.io/sync-options": "Validate=false, Prune=false"},
    "helm": {"helm.sh/resource-policy": "keep"},
    "flux": {"kustomize.toolkit.fluxcd.io/prune": "disabled"},
}


def test_keep_annotations_of_every_tool_survive_prune(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    objs = [cm(f"keep-{tool}", ns, annotations) for tool, annotations in KEEPS.items()] + [cm("plain", ns)]
    _plan, result = cluster.sync(objs, "keeps", prune=True)
    assert not isinstance(result, Exception), result
    plan, result = cluster.sync([cm("other", ns)], "keeps", prune=True)
    assert not isinstance(result, Exception), result
    assert cluster.names("v1", "ConfigMap", ns) >= {f"keep-{tool}" for tool in KEEPS} | {"other"}
    assert "plain" not in cluster.names("v1", "ConfigMap", ns)
    reasons = {ref.name: reason for ref, reason in plan.keep_reasons.items()}
    assert reasons == {
        "keep-tether": "tether.dev/prune: disabled",
        "keep-argo": "argocd.argoproj.io/sync-options: Prune=false",
        "keep-helm": "helm.sh/resource-policy: keep",
        "keep-flux": "kustomize.toolkit.fluxcd.io/prune: disabled",
    }


def test_create_only_and_ignored_objects(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    once = {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}
    ignore = {"kustomize.toolkit.fluxcd.io/ssa": "Ignore"}
    _plan, result = cluster.sync([cm("once", ns, once, k="first"), cm("skipped", ns, ignore)], "flux-ssa")
    assert not isinstance(result, Exception), result
    assert cluster.names("v1", "ConfigMap", ns) == {"once"}  # Ignore: never created
    plan, result = cluster.sync([cm("once", ns, once, k="second"), cm("skipped", ns, ignore)], "flux-ssa", prune=True)
    assert not isinstance(result, Exception), result
    assert not plan.has_changes()
    [live] = [o for o in cluster.list("v1", "ConfigMap", ns) if o["metadata"]["name"] == "once"]
    assert live["data"] == {"k": "first"}  # IfNotPresent: never updated
    assert [(ref.name, reason) for ref, reason in plan.ignored] == [
        ("skipped", "kustomize.toolkit.fluxcd.io/ssa: Ignore")
    ]


def test_ignore_extraneous_is_not_a_difference(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    generated = cm("generated", ns, {"argocd.argoproj.io/compare-options": "IgnoreExtraneous"})
    cluster.sync([generated, cm("main", ns)], "extraneous")
    plan, _result = cluster.sync([cm("main", ns)], "extraneous")
    assert [c.ref.name for c in plan.changes if c.action == "delete"] == ["generated"]
    assert not plan.has_changes()


def test_waves_wait_for_health_and_a_timeout_names_the_wave(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "db", "namespace": ns, "annotations": {"argocd.argoproj.io/sync-wave": "-1"}},
        "spec": {
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "registry.example/fail-db:1"}]},
            },
        },
    }
    after = cm("after-db", ns, {"tether.dev/wave": "1"})
    _plan, error = cluster.sync([bad, after], "waves", timeout=1.5)
    assert isinstance(error, HealthTimedOut), error
    assert "wave -1 (namespaced objects) not healthy, so wave 1 (namespaced objects) was not started" in str(error)
    assert f"Deployment.apps {ns}/db: InProgress" in str(error)
    assert "after-db" not in cluster.names("v1", "ConfigMap", ns)

    migrate = job("migrate", ns, {"argocd.argoproj.io/sync-wave": "-1"})
    _plan, result = cluster.sync([migrate, after], "waves-ok", timeout=30)
    assert not isinstance(result, Exception), result
    jobs = {o["metadata"]["name"]: o for o in cluster.list("batch/v1", "Job", ns)}
    finished = jobs["migrate"]["status"]["completionTime"]
    [config] = [o for o in cluster.list("v1", "ConfigMap", ns) if o["metadata"]["name"] == "after-db"]
    assert config["metadata"]["creationTimestamp"] >= finished  # created only after the Job completed


def test_argo_hooks_run_in_order_are_cleaned_and_a_no_op_runs_none(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    presync = job(
        "schema-",
        ns,
        {"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"},
        generate=True,
    )
    postsync = job("smoke", ns, {"argocd.argoproj.io/hook": "PostSync"})
    objs = [presync, postsync, cm("app", ns)]
    plan, result = cluster.sync(objs, "argo-hooks", timeout=30)
    assert not isinstance(result, Exception), result
    assert [h.phase for h in sorted(plan.hooks, key=lambda h: h.phase)] == ["PostSync", "PreSync"]
    jobs = {o["metadata"]["name"]: o for o in cluster.list("batch/v1", "Job", ns)}
    assert set(jobs) == {"smoke"}  # the PreSync Job was deleted once it succeeded
    first_uid = jobs["smoke"]["metadata"]["uid"]
    assert jobs["smoke"]["status"]["succeeded"] == 1
    assert {r.name for r in plan.inventory.entries} <= {"app"}

    # nothing changed: no hook runs, nothing is written
    _plan, result = cluster.sync(objs, "argo-hooks", timeout=30)
    assert not isinstance(result, Exception) and not result.outcomes
    assert cluster.list("batch/v1", "Job", ns)[0]["metadata"]["uid"] == first_uid

    # a change runs the hooks again; BeforeHookCreation (the default) replaces the PostSync Job
    _plan, result = cluster.sync([presync, postsync, cm("app", ns, k="changed")], "argo-hooks", timeout=30)
    assert not isinstance(result, Exception), result
    [smoke] = cluster.list("batch/v1", "Job", ns)
    assert smoke["metadata"]["uid"] != first_uid


def test_a_failing_hook_fails_the_sync_and_runs_syncfail(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    failing = job(
        "migrate",
        ns,
        {"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "HookFailed"},
        command=["sh", "-c", "echo migrating\nexit 3"],
    )
    on_fail = job("page-", ns, {"argocd.argoproj.io/hook": "SyncFail"}, generate=True)
    _plan, error = cluster.sync([failing, on_fail, cm("app", ns)], "failing-hook", timeout=30)
    assert isinstance(error, HookFailed), error
    assert f"PreSync hook(s) failed: Job/{ns}/migrate" in str(error)
    assert "app" not in cluster.names("v1", "ConfigMap", ns)  # the sync stopped before its objects
    jobs = cluster.names("batch/v1", "Job", ns)
    assert "migrate" not in jobs  # HookFailed: deleted after it failed
    assert any(name.startswith("page-") for name in jobs)  # the SyncFail hook ran


def test_helm_hooks_install_upgrade_and_tests(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    pre_install = job("pre-install", ns, {"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-5"})
    post_upgrade = job(
        "post-upgrade",
        ns,
        {"helm.sh/hook": "post-upgrade", "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"},
    )
    test_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "release-test", "namespace": ns, "annotations": {"helm.sh/hook": "test"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "busybox:1.36"}]},
    }
    objs = [pre_install, post_upgrade, test_pod, cm("chart", ns)]
    plan, result = cluster.sync(objs, "helm-hooks", timeout=30)
    assert not isinstance(result, Exception), result
    assert [h.label() for h in plan.hooks] == [f"Job/{ns}/pre-install"]
    assert any("test hook" in why for _what, why in plan.not_run)
    assert cluster.names("batch/v1", "Job", ns) == {"pre-install"}
    assert cluster.list("v1", "Pod", ns) == [] or all(
        p["metadata"]["name"] != "release-test" for p in cluster.list("v1", "Pod", ns)
    )

    plan, result = cluster.sync([pre_install, post_upgrade, test_pod, cm("chart", ns, k="2")], "helm-hooks", timeout=30)
    assert not isinstance(result, Exception), result
    assert [h.label() for h in plan.hooks] == [f"Job/{ns}/post-upgrade"]
    assert cluster.names("batch/v1", "Job", ns) == {"pre-install"}  # post-upgrade ran and was deleted


def test_a_hook_never_replaces_another_apps_object(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    theirs = job("shared-name", ns, {})
    _plan, result = cluster.sync([theirs], "owner-app", timeout=30)
    assert not isinstance(result, Exception), result
    [before] = cluster.list("batch/v1", "Job", ns)
    hook = job("shared-name", ns, {"argocd.argoproj.io/hook": "PreSync"})
    _plan, error = cluster.sync([hook, cm("app", ns)], "hook-app", timeout=30)
    assert isinstance(error, HookFailed) and "belongs to app tether-system/owner-app" in str(error), error
    [after] = cluster.list("batch/v1", "Job", ns)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
