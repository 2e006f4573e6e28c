"""``tether apply --wait`` on custom resources: CEL health checks (``--health-rules``) and CRDs that
promise a status, with the status written by the test through the status subresource."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine_helpers import namespace, run, tether, write_dir

from tether.errors import KubeError
from tether.kube import Kube


def crd(plural: str, kind: str, *, conditions: bool) -> dict[str, Any]:
    status: dict[str, Any] = {"type": "object", "properties": {"phase": {"type": "string"}}}
    if conditions:
        status["properties"]["conditions"] = {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"type": {"type": "string"}, "status": {"type": "string"}},
            },
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.health.example.com"},
        "spec": {
            "group": "health.example.com",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def custom(kind: str, name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "health.example.com/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": {"size": 1},
    }


async def write_status_once_created(kubeconfig: Path, kind: str, name: str, ns: str, status: dict) -> None:
    """Play the controller of ``kind``: once the object exists, report ``status``."""
    kube = await Kube.connect(kubeconfig=str(kubeconfig))
    try:

        async def created() -> Any:
            try:
                return await kube.get(await kube.info("health.example.com/v1", kind), name, ns)
            except KubeError:  # the CRD is not served yet
                return None

        await kube.wait_for(f"{kind} {ns}/{name}", created, timeout=60)
        info = await kube.info("health.example.com/v1", kind)
        await kube.patch(info, name, ns, {"status": status}, subresource="status")
    finally:
        await kube.close()


def start_apply(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli.main", "apply", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_apply_waits_until_the_cel_current_expression_is_true(sandbox, tmp_path) -> None:
    ns = "health-cel"
    # no status.conditions in the schema: without the rule the Sprocket would be Current at once
    src = write_dir(
        tmp_path / "src",
        {
            "crd.yaml": [crd("sprockets", "Sprocket", conditions=False)],
            "app.yaml": [namespace(ns), custom("Sprocket", "s1", ns)],
        },
    )
    rules = tmp_path / "health.yaml"
    rules.write_text(
        "healthCheckExprs:\n"
        "  - apiVersion: health.example.com/v1\n"
        "    kind: Sprocket\n"
        "    current: \"status.phase == 'Ready'\"\n"
        "    failed: \"status.phase == 'Broken'\"\n"
    )
    kc = ["--kubeconfig", str(sandbox.kubeconfig)]
    process = start_apply(
        str(src), "--app", "health-cel", "--wait", "--timeout", "60s", "--health-rules", str(rules), "-o", "json", *kc
    )
    try:
        run(write_status_once_created(sandbox.kubeconfig, "Sprocket", "s1", ns, {"phase": "Ready"}))
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out + err
    health = {h["object"]: h for h in json.loads(out)["health"]}
    sprocket = health[f"Sprocket.health.example.com {ns}/s1"]
    assert sprocket["status"] == "Current"
    assert sprocket["message"] == "current: status.phase == 'Ready'"


def test_a_bad_rules_file_stops_apply_before_anything_is_written(sandbox, tmp_path) -> None:
    ns = "health-cel-bad"
    src = write_dir(tmp_path / "src", {"app.yaml": [namespace(ns)]})
    rules = tmp_path / "health.yaml"
    rules.write_text("- apiVersion: health.example.com/v1\n  kind: Sprocket\n  current: 'status.phase =='\n")
    result = tether(
        "apply",
        str(src),
        "--app",
        "health-cel-bad",
        "--health-rules",
        str(rules),
        "--kubeconfig",
        str(sandbox.kubeconfig),
    )
    assert result.returncode == 2
    assert f"{rules}: healthCheckExprs[0] (Sprocket): current is not a valid CEL expression" in result.stderr

    async def absent() -> Any:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            return await kube.get(await kube.info("v1", "Namespace"), ns)

    assert asyncio.run(absent()) is None


def test_a_kind_whose_crd_promises_status_waits_for_its_controller(sandbox, tmp_path) -> None:
    ns = "health-promise"
    src = write_dir(
        tmp_path / "src",
        {
            "crd.yaml": [crd("gizmos", "Gizmo", conditions=True)],
            "app.yaml": [namespace(ns), custom("Gizmo", "g1", ns)],
        },
    )
    kc = ["--kubeconfig", str(sandbox.kubeconfig)]
    # nobody writes the status: the wait runs out, naming what it waited for
    first = tether("apply", str(src), "--app", "health-promise", "--wait", "--timeout", "2s", *kc)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "waiting for the controller of Gizmo to report status" in first.stdout + first.stderr

    # the CRD now in the cluster only (left the render, not pruned): the promise is read from there
    write_dir(src, {"app.yaml": [namespace(ns), custom("Gizmo", "g1", ns)]})
    without_crd = tether("apply", str(src), "--app", "health-promise", "--wait", "--timeout", "2s", *kc)
    assert without_crd.returncode == 1, without_crd.stdout + without_crd.stderr
    assert "waiting for the controller of Gizmo to report status" in without_crd.stdout + without_crd.stderr

    status = {"conditions": [{"type": "Ready", "status": "True"}]}
    run(write_status_once_created(sandbox.kubeconfig, "Gizmo", "g1", ns, status))
    done = tether("apply", str(src), "--app", "health-promise", "--wait", "--timeout", "30s", *kc)
    assert done.returncode == 0, done.stdout + done.stderr
