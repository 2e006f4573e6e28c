"""The app page's resource tree judges custom resources with the app's own CEL health checks
(``spec.healthCheckExprs``), as the controller does, not only with the built-in rules."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tether.cli.app import app as cli_app
from tether.dashboard.tree import build_tree
from tether.engine.health_rules import parse_health_checks
from tether.kube import Kube

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.tree.example.com"},
    "spec": {
        "group": "tree.example.com",
        "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}
CHECKS = [
    {
        "apiVersion": "tree.example.com/v1",
        "kind": "Gadget",
        "current": "status.phase == 'Running'",
        "failed": "status.phase == 'Broken'",
    }
]


def gadget(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "tree.example.com/v1", "kind": "Gadget", "metadata": {"name": name, "namespace": ns}}


def test_the_tree_uses_the_apps_own_health_checks(sandbox: Any, sandbox_namespace: str, tmp_path: Path) -> None:
    ns = sandbox_namespace
    source = tmp_path / "shop"
    source.mkdir()
    (source / "crd.yaml").write_text(json.dumps(CRD))
    (source / "gadgets.yaml").write_text(
        json.dumps({"apiVersion": "v1", "kind": "List", "items": [gadget("ok", ns), gadget("bad", ns)]})
    )
    args = ["apply", str(source), "--app", "shop", "-n", ns, "--inventory-namespace", ns]
    applied = CliRunner().invoke(cli_app, [*args, "--kubeconfig", str(sandbox.kubeconfig)])
    assert applied.exit_code == 0, applied.output

    async def trees() -> tuple[dict[str, str], dict[str, str]]:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            info = await kube.info("tree.example.com/v1", "Gadget")
            for name, phase in (("ok", "Running"), ("bad", "Broken")):  # as the Gadget's controller would
                await kube.patch(info, name, ns, {"status": {"phase": phase}}, field_manager="gadget-controller")
            plain = await build_tree(kube, ns, "shop")
            checked = await build_tree(kube, ns, "shop", parse_health_checks(CHECKS, "spec"))
        health = lambda tree: {n.name: n.health for n in tree.roots if n.kind == "Gadget"}  # noqa: E731
        return health(plain), health(checked)

    plain, checked = asyncio.run(trees())
    assert plain == {"ok": "Healthy", "bad": "Healthy"}  # built-in rules know nothing of a Gadget's phase
    assert checked == {"ok": "Healthy", "bad": "Degraded"}
