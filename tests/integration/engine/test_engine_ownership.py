"""Ownership between apps, adoption, the legacy field manager, Git winning over kubectl, and
the inventory's bookkeeping under crashes and concurrent writers."""

from __future__ import annotations

import subprocess

import pytest
from engine_helpers import configmap, deployment, get, namespace, plan_and_apply, plan_only, run, tether, write_dir

from tether.engine import Action, AppIdentity, ApplyFailed, ApplyOptions, read_inventory, update_inventory
from tether.kube import Kube
from tether.model import ObjectRef


def test_two_apps_rendering_the_same_object_never_take_or_delete_each_others(sandbox) -> None:
    ns = sandbox.create_namespace("own-shared")
    first, second = AppIdentity("team-a", "web"), AppIdentity("team-b", "web")
    run(plan_and_apply(sandbox.kubeconfig, [configmap("shared", ns, by="a")], first))
    plan = run(plan_only(sandbox.kubeconfig, [configmap("shared", ns, by="b"), configmap("own", ns)], second))
    [conflict] = plan.of(Action.CONFLICT)
    assert conflict.owner == "team-a/web" and "owned by app team-a/web" in plan.render_text()
    with pytest.raises(ApplyFailed) as failed:
        run(plan_and_apply(sandbox.kubeconfig, [configmap("shared", ns, by="b"), configmap("own", ns)], second))
    assert {str(o.ref): o.ok for o in failed.value.result.outcomes} == {
        f"ConfigMap {ns}/shared": False,
        f"ConfigMap {ns}/own": True,
    }  # the other object proceeded
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "shared", ns))["data"] == {"by": "a"}
    # the second app leaves it behind with prune: the first app's object stays
    run(plan_and_apply(sandbox.kubeconfig, [configmap("own", ns)], second, ApplyOptions(prune=True)))
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "shared", ns)) is not None
    # explicit adoption moves it; the first app's later prune does not delete what it no longer owns
    plan, _ = run(plan_and_apply(sandbox.kubeconfig, [configmap("shared", ns, by="b")], second, adopt=True))
    assert [str(c.ref) for c in plan.of(Action.ADOPT)] == [f"ConfigMap {ns}/shared"]
    run(plan_and_apply(sandbox.kubeconfig, [configmap("other", ns)], first, ApplyOptions(prune=True)))
    live = run(get(sandbox.kubeconfig, "v1", "ConfigMap", "shared", ns))
    assert live["data"] == {"by": "b"} and live["metadata"]["labels"]["tether.dev/app-namespace"] == "team-b"


def test_unowned_object_is_adopted_not_created(sandbox) -> None:
    ns = sandbox.create_namespace("own-adopt")
    subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(sandbox.kubeconfig),
            "-n",
            ns,
            "create",
            "configmap",
            "pre",
            "--from-literal=a=1",
        ],
        check=True,
        capture_output=True,
    )
    plan, result = run(plan_and_apply(sandbox.kubeconfig, [configmap("pre", ns, a="2")], AppIdentity(ns, "adopter")))
    assert [c.action for c in plan.changes] == [Action.ADOPT] and result.count(Action.ADOPT) == 1


def test_legacy_objects_are_relabelled_and_legacy_fields_migrated(sandbox) -> None:
    ns = sandbox.create_namespace("own-legacy")
    legacy = AppIdentity("tether-system", "legacy")

    async def old_style_apply() -> None:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        try:
            obj = {
                **configmap("cm", ns, a="1", b="2"),
                "metadata": {"name": "cm", "namespace": ns, "labels": {"tether.dev/app": "legacy"}},
            }
            await kube.apply(await kube.info("v1", "ConfigMap"), obj, field_manager="tether")
            await update_inventory(kube, legacy, add={ObjectRef("", "ConfigMap", ns, "cm", "v1")})
        finally:
            await kube.close()

    run(old_style_apply())
    plan, _ = run(plan_and_apply(sandbox.kubeconfig, [configmap("cm", ns, a="1", b="2")], legacy))
    assert [c.action for c in plan.changes] == [Action.UPDATE]
    live = run(get(sandbox.kubeconfig, "v1", "ConfigMap", "cm", ns))
    assert live["metadata"]["labels"]["tether.dev/app-namespace"] == "tether-system"
    assert "tether" not in {e["manager"] for e in live["metadata"]["managedFields"]}
    # a field removed from Git is removed from the cluster: nobody else holds it any more
    run(plan_and_apply(sandbox.kubeconfig, [configmap("cm", ns, a="1")], legacy))
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "cm", ns))["data"] == {"a": "1"}


def test_after_kubectl_scale_diff_names_the_manager_and_apply_converges(sandbox, tmp_path) -> None:
    ns = sandbox.create_namespace("own-scale")
    src = write_dir(tmp_path / "src", {"app.yaml": [deployment("web", ns, replicas=2)]})
    common = ["--kubeconfig", str(sandbox.kubeconfig), "--app", "scale", "--inventory-namespace", ns]
    assert tether("apply", str(src), *common).returncode == 0
    subprocess.run(
        ["kubectl", "--kubeconfig", str(sandbox.kubeconfig), "-n", ns, "scale", "deployment/web", "--replicas=5"],
        check=True,
        capture_output=True,
    )
    diff = tether("diff", str(src), *common)
    assert diff.returncode == 1, diff.stderr
    changed = [
        line
        for line in diff.stdout.splitlines()
        if line.startswith(("+ ", "- ", "+  ", "-  ")) and not line.startswith(("+++", "---"))
    ]
    assert [line.strip() for line in changed] == ["-  replicas: 5", "+  replicas: 2"], diff.stdout
    assert "takes .spec.replicas from kubectl, subresource scale" in diff.stdout
    applied = tether("apply", str(src), *common)
    assert applied.returncode == 0, applied.stderr
    assert run(get(sandbox.kubeconfig, "apps/v1", "Deployment", "web", ns))["spec"]["replicas"] == 2


class Crash(BaseException):
    """Stands for kill -9: nothing after it runs, no cleanup handler sees it."""


def test_crash_between_recording_and_creating_then_next_run_converges(sandbox) -> None:
    ns = sandbox.create_namespace("own-crash")
    app = AppIdentity(ns, "crash")
    run(plan_and_apply(sandbox.kubeconfig, [configmap("keep", ns)], app))

    async def crashing_apply() -> None:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        from tether.engine import apply_plan, make_plan
        from tether.model import Manifest

        plan = await make_plan(kube, [Manifest(configmap("keep", ns)), Manifest(configmap("new", ns))], app)

        async def die(*_args, **_kwargs):  # type: ignore[no-untyped-def]
            raise Crash

        kube.apply = die  # type: ignore[method-assign]
        try:
            await apply_plan(kube, plan)
        finally:
            await kube._http.aclose()

    with pytest.raises(Crash):
        run(crashing_apply())
    inventory = run(_read(sandbox, app))
    assert {r.name for r in inventory.entries} == {"keep", "new"}  # recorded before the request
    # the next commit no longer has "new": the entry is dropped, "keep" is untouched
    run(plan_and_apply(sandbox.kubeconfig, [configmap("keep", ns)], app, ApplyOptions(prune=True)))
    assert {r.name for r in run(_read(sandbox, app)).entries} == {"keep"}
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "keep", ns)) is not None


def test_rejected_create_is_removed_from_the_inventory(sandbox) -> None:
    ns = sandbox.create_namespace("own-reject")
    app = AppIdentity(ns, "reject")
    bad = configmap("bad", "own-reject-missing-namespace")
    with pytest.raises(ApplyFailed):
        run(plan_and_apply(sandbox.kubeconfig, [configmap("ok", ns), bad], app))
    assert {r.name for r in run(_read(sandbox, app)).entries} == {"ok"}


def test_concurrent_inventory_writers_keep_each_others_entries(sandbox) -> None:
    ns = sandbox.create_namespace("own-concurrent")
    app = AppIdentity(ns, "both")

    async def scenario() -> set[str]:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        try:
            stale = await read_inventory(kube, app)
            await update_inventory(kube, app, add={ObjectRef("", "ConfigMap", ns, "from-cli", "v1")}, known=stale)
            # a second writer that read before the first wrote: conflict, re-read, merge
            await update_inventory(
                kube, app, add={ObjectRef("", "ConfigMap", ns, "from-controller", "v1")}, known=stale
            )
            return {r.name for r in (await read_inventory(kube, app)).entries}
        finally:
            await kube.close()

    assert run(scenario()) == {"from-cli", "from-controller"}


async def _read(sandbox, app):  # type: ignore[no-untyped-def]
    kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
    try:
        return await read_inventory(kube, app)
    finally:
        await kube.close()


def test_namespaces_are_pruned_only_when_verified(sandbox) -> None:
    app = AppIdentity("tether-system", "nsprune")
    run(plan_and_apply(sandbox.kubeconfig, [namespace("own-nsprune"), configmap("a", "own-nsprune")], app))
    run(plan_and_apply(sandbox.kubeconfig, [namespace("own-nsprune")], app, ApplyOptions(prune=True)))
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "a", "own-nsprune")) is None
