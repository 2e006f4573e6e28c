"""A bad commit followed by a fixing commit must never let prune reach objects outside the app.

Each scenario applies a commit that fails (or sneaks bookkeeping into the render), then an
ordinary fixing commit with ``--prune``; the victim (another namespace, a whole collection,
another app's object) must survive.
"""

from __future__ import annotations

import json

from engine_helpers import configmap, get, namespace, plan_and_apply, run

from tether.engine import AppIdentity, ApplyOptions
from tether.errors import TetherError

PRUNE = ApplyOptions(prune=True)


def _attempt(sandbox, objs, app, options=PRUNE):  # type: ignore[no-untyped-def]
    try:
        return run(plan_and_apply(sandbox.kubeconfig, objs, app, options))
    except TetherError as error:
        return error


def _victim(sandbox, name: str) -> str:  # type: ignore[no-untyped-def]
    ns = sandbox.create_namespace(name)
    run(_put(sandbox, configmap("precious", ns, keep="me")))
    return ns


async def _put(sandbox, obj):  # type: ignore[no-untyped-def]
    from tether.kube import Kube

    kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
    try:
        return await kube.apply(await kube.info_for(obj), obj, field_manager="someone-else")
    finally:
        await kube.close()


def _good(ns: str) -> list[dict]:
    return [namespace(ns), configmap("ok", ns, a="1")]


def _assert_survives(sandbox, victim: str) -> None:  # type: ignore[no-untyped-def]
    assert run(get(sandbox.kubeconfig, "v1", "Namespace", victim)) is not None, "the victim namespace was deleted"
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "precious", victim)) is not None, "its ConfigMap was deleted"


def test_dot_dot_name_then_fix_does_not_delete_a_namespace(sandbox) -> None:
    victim = _victim(sandbox, "safety-victim-dots")
    bad = [*_good("safety-dots"), configmap("..", victim)]
    _attempt(sandbox, bad, "dots")
    _attempt(sandbox, _good("safety-dots"), "dots")
    _assert_survives(sandbox, victim)


def test_namespace_with_slashes_then_fix_does_not_delete_another_object(sandbox) -> None:
    victim = _victim(sandbox, "safety-victim-slash")
    bad = [*_good("safety-slash"), configmap("precious", f"{victim}/configmaps/..")]
    _attempt(sandbox, bad, "slash")
    _attempt(sandbox, _good("safety-slash"), "slash")
    _assert_survives(sandbox, victim)


def test_generate_name_then_fix_does_not_delete_a_collection(sandbox) -> None:
    victim = _victim(sandbox, "safety-victim-gen")
    generated = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"generateName": "job-", "namespace": victim},
        "data": {"x": "1"},
    }
    _attempt(sandbox, [*_good("safety-gen"), generated], "gen")
    _attempt(sandbox, _good("safety-gen"), "gen")
    _assert_survives(sandbox, victim)


def test_spoofed_inventory_in_git_is_refused_and_prunes_nothing(sandbox) -> None:
    victim = _victim(sandbox, "safety-victim-spoof")
    spoof = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "tether-inventory-spoof", "namespace": "tether-system"},
        "data": {"entries": json.dumps({"v1/ConfigMap": [f"{victim}/precious"], "v1/Namespace": [victim]})},
    }
    outcome = _attempt(sandbox, [*_good("safety-spoof"), spoof], "spoof")
    assert isinstance(outcome, TetherError) and "tether-inventory-spoof" in str(outcome)
    _attempt(sandbox, _good("safety-spoof"), "spoof")
    _assert_survives(sandbox, victim)


def test_spoofed_inventory_of_another_app_is_refused(sandbox) -> None:
    victim = _victim(sandbox, "safety-victim-other")
    spoof = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "tether-inventory-othervictim", "namespace": "tether-system"},
        "data": {"entries": json.dumps({"v1/Namespace": [victim]})},
    }
    outcome = _attempt(sandbox, [*_good("safety-other"), spoof], "other-app")
    assert isinstance(outcome, TetherError) and "tether-inventory-othervictim" in str(outcome)
    _assert_survives(sandbox, victim)


def test_identity_is_namespace_and_name() -> None:
    assert AppIdentity("team-a", "web") != AppIdentity("team-b", "web")
