"""The command line converges in one run on an API server that fails now and then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from kube_helpers import Cluster, run

from tether.kube import Kube

WRITES = ("create", "update", "patch", "delete")


def _tether(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args], capture_output=True, text=True, timeout=280, env=env
    )


def _write(root: Path, files: dict[str, dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*.yaml"):
        old.unlink()
    for name, obj in files.items():
        (root / name).write_text(yaml.safe_dump(obj))
    return root


def _configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"name": name}}


async def _names(kubeconfig: Path, ns: str) -> set[str]:
    async with await Kube.connect(kubeconfig=str(kubeconfig)) as kube:
        cms = await kube.info("v1", "ConfigMap")
        return {c["metadata"]["name"] for c in await kube.list(cms, ns, label_selector="")}


def test_apply_and_prune_converge_in_one_run_under_faults(faults: Cluster, tmp_path: Path) -> None:
    ns = "cli-faults"

    async def make_namespace() -> None:
        async with await Kube.connect(kubeconfig=str(faults.kubeconfig)) as kube:
            await kube.apply(
                await kube.info("v1", "Namespace"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )

    run(make_namespace())
    files = {f"{name}.yaml": _configmap(name) for name in ("alpha", "beta", "gamma", "delta", "epsilon")}
    src = _write(tmp_path / "src", files)
    args = ["--app", "faulty", "--kubeconfig", str(faults.kubeconfig), "-n", ns, "--prune"]
    errors: dict[str, Any] = {verb: {"rate": 0.2, "code": 500} for verb in WRITES}
    errors["*"] = {"rate": 0.2, "code": 429}  # one rule per verb: reads get the 429s
    state = faults.faults({"errors": errors, "seed": 1})

    first = _tether("apply", str(src), *args)
    assert first.returncode == 0, first.stdout + first.stderr
    del files["gamma.yaml"]
    second = _tether("apply", str(_write(src, files)), *args)
    assert second.returncode == 0, second.stdout + second.stderr
    injected = faults.faults({})["injected"] - state["injected"]

    faults.clear_faults()
    assert injected > 0  # the runs did meet failures
    assert {"alpha", "beta", "delta", "epsilon"} <= run(_names(faults.kubeconfig, ns))
    assert "gamma" not in run(_names(faults.kubeconfig, ns))
    settled = _tether("diff", str(src), *args[:-1])
    assert settled.returncode == 0, settled.stdout + settled.stderr
