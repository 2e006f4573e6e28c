"""Immutable fields: the sandbox refuses them as kube-apiserver does; apply recreates only when allowed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_compat_engine import Cluster, cm, job

from tether.kube import Invalid, Kube


@pytest.fixture
def cluster(quick_sandbox: Any) -> Cluster:
    return Cluster(quick_sandbox.kubeconfig)


def _put(cluster: Cluster, obj: dict[str, Any]) -> None:
    async def go() -> None:
        async with await Kube.connect(kubeconfig=cluster.kubeconfig) as kube:
            info = await kube.info(obj["apiVersion"], obj["kind"])
            await kube.apply(info, obj, force=True, field_manager="test")

    asyncio.run(go())


def test_sandbox_refuses_immutable_changes_with_the_field_path(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    frozen = cm("frozen", ns, k="1")
    frozen["immutable"] = True
    _put(cluster, frozen)
    changed = dict(frozen, data={"k": "2"})
    with pytest.raises(Invalid, match=r'ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when '):
        _put(cluster, changed)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "x"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    _put(cluster, deployment)
    deployment["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    with pytest.raises(Invalid, match=r"spec.selector: Invalid value: .*field is immutable"):
        _put(cluster, deployment)
    # a change to a mutable field still goes through
    deployment["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    deployment["spec"]["replicas"] = 2
    _put(cluster, deployment)


def test_apply_names_the_field_and_recreates_only_when_allowed(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    first = job("migrate", ns, {}, command=["sh", "-c", "echo v1"])
    _plan, result = cluster.sync([first], "immutable", timeout=30)
    assert not isinstance(result, Exception), result
    [before] = cluster.list("batch/v1", "Job", ns)

    second = job("migrate", ns, {}, command=["sh", "-c", "echo v2"])
    _plan, error = cluster.sync([second], "immutable", timeout=30)
    assert isinstance(error, Exception)
    assert "spec.template" in str(error) and "field is immutable" in str(error)
    assert 'tether.dev/recreate: "true"' in str(error) and "--recreate" in str(error)

    allowed = job("migrate", ns, {"argocd.argoproj.io/sync-options": "Replace=true"}, command=["sh", "-c", "echo v2"])
    _plan, result = cluster.sync([allowed], "immutable", timeout=30)
    assert not isinstance(result, Exception), result
    [after] = cluster.list("batch/v1", "Job", ns)
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "echo v2"

    flag = job("migrate", ns, {}, command=["sh", "-c", "echo v3"])
    _plan, result = cluster.sync([flag], "immutable", timeout=30, recreate=True)
    assert not isinstance(result, Exception), result
    [last] = cluster.list("batch/v1", "Job", ns)
    assert last["metadata"]["uid"] != after["metadata"]["uid"]


def _diff(cluster: Cluster, objs: list[dict[str, Any]], app: str) -> Any:
    from tether.engine import AppIdentity, make_plan
    from tether.model import Manifest

    async def go() -> Any:
        async with await Kube.connect(kubeconfig=cluster.kubeconfig) as kube:
            return await make_plan(kube, [Manifest(o) for o in objs], AppIdentity("tether-system", app), exact=True)

    return asyncio.run(go())


def test_diff_names_the_immutable_field_and_what_would_recreate(cluster: Cluster, quick_namespace: str) -> None:
    ns = quick_namespace
    first = job("seed", ns, {}, command=["sh", "-c", "echo v1"])
    _plan, result = cluster.sync([first], "immutable-diff", timeout=30)
    assert not isinstance(result, Exception), result

    refused = _diff(cluster, [job("seed", ns, {}, command=["sh", "-c", "echo v2"])], "immutable-diff")
    [change] = refused.changes
    assert change.immutable == ["spec.template"] and not change.recreate
    text = refused.render_text()
    assert f"! update Job.batch {ns}/seed: immutable spec.template changed, so the server refuses" in text
    assert "server: " in text and "field is immutable" in text
    assert 'tether.dev/recreate: "true"' in text and "Replace=true" in text and "--recreate" in text
    assert "kustomize.toolkit.fluxcd.io/force: enabled" in text
    assert refused.has_changes()
    assert refused.to_dict()["changes"][0]["immutable"]["fields"] == ["spec.template"]

    annotated = job("seed", ns, {"kustomize.toolkit.fluxcd.io/force": "enabled"}, command=["sh", "-c", "echo v2"])
    allowed = _diff(cluster, [annotated], "immutable-diff")
    [change] = allowed.changes
    assert change.recreate == "kustomize.toolkit.fluxcd.io/force: enabled"
    text = allowed.render_text()
    assert "-+ recreate" in text and "apply deletes and creates it again" in text
    assert "1 with an immutable field changed (1 to recreate)" in text
    assert "-        - echo v1\n+        - echo v2" in text
    assert "-  completions: 1" not in text, "server defaults shown as removed"
    # the diff changed nothing
    [live] = cluster.list("batch/v1", "Job", ns)
    assert live["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "echo v1"


def test_tether_diff_cli_reports_the_refusal_and_recreate_flag(
    cluster: Cluster, quick_namespace: str, tmp_path: Any
) -> None:
    import subprocess
    import sys

    import yaml

    ns = quick_namespace
    source = tmp_path / "job.yaml"
    source.write_text(yaml.safe_dump(job("cli", ns, {}, command=["sh", "-c", "echo v1"])))
    base = [sys.executable, "-m", "tether.cli.main"]
    flags = ["--app", "immutable-cli", "--kubeconfig", str(cluster.kubeconfig)]
    env_run = {"capture_output": True, "text": True, "timeout": 120}
    applied = subprocess.run([*base, "apply", str(source), *flags], **env_run)  # type: ignore[call-overload]
    assert applied.returncode == 0, applied.stderr
    source.write_text(yaml.safe_dump(job("cli", ns, {}, command=["sh", "-c", "echo v2"])))
    diff = subprocess.run([*base, "diff", str(source), *flags], **env_run)  # type: ignore[call-overload]
    assert diff.returncode == 1, diff.stderr
    headline = next(line for line in diff.stdout.splitlines() if line.startswith("! update"))
    assert f"Job.batch {ns}/cli" in headline and "immutable spec.template changed" in headline, diff.stdout
    forced = subprocess.run([*base, "diff", str(source), *flags, "--recreate"], **env_run)  # type: ignore[call-overload]
    assert forced.returncode == 1, forced.stderr
    headline = next(line for line in forced.stdout.splitlines() if line.startswith("-+ recreate"))
    assert f"Job.batch {ns}/cli" in headline and headline.endswith("apply deletes and creates it again (--recreate)")
