"""Render + plan + apply of 1,000 and 10,000 objects into the sandbox, against ``kubectl apply --server-side``.

For each size, on a fresh sandbox each: ``tether apply`` cold (everything created) and no-op
(the same files again), then ``kubectl apply --server-side`` cold and no-op on another fresh
sandbox. Both are run as real command lines; reported per run: wall time, API requests (all /
writes, from the sandbox's /metrics) and the peak RSS of the client process. A breakdown of
tether's no-op into render / validate / plan comes from an in-process run.

    python -m bench.engine_bench [--sizes 1000,10000] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}
_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+([0-9.e+]+)$")
_VERB = re.compile(r'verb="([^"]*)"')


# ---------------------------------------------------------------- input


def make_objects(total: int) -> list[dict[str, Any]]:
    """A realistic mix: namespaces, then ConfigMaps 50%, Services 20%, Deployments 20%, Secrets 10%."""
    namespaces = max(1, total // 1000)
    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{n}"}} for n in range(namespaces)
    ]
    index = 0
    while len(objs) < total:
        ns, name = f"bench-{index % namespaces}", f"obj-{index:05d}"
        slot = index % 10
        if slot < 5:
            obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns},
                "data": {"key": f"value-{index}", "config.yaml": f"replicas: {index % 7}\nlevel: info\n"},
            }
        elif slot < 7:
            obj = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            }
        elif slot < 9:
            obj = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "main",
                                    "image": "registry.example.com/app:1.0",
                                    "ports": [{"containerPort": 8080}],
                                    "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                                }
                            ]
                        },
                    },
                },
            }
        else:
            obj = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": ns},
                "type": "Opaque",
                "data": {"token": "c2VjcmV0"},
            }
        objs.append(obj)
        index += 1
    return objs


def write_files(objs: list[dict[str, Any]], root: Path, per_file: int = 100) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for start in range(0, len(objs), per_file):
        chunk = objs[start : start + per_file]
        (root / f"{start // per_file:04d}.yaml").write_text(yaml.dump_all(chunk, Dumper=dumper, sort_keys=False))
    return root


# ---------------------------------------------------------------- sandbox as a separate process


class SandboxProcess:
    def __init__(self, workdir: Path) -> None:
        self.data = workdir / "sandbox"
        self.kubeconfig = workdir / "kubeconfig"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tether.cli.main",
                "sandbox",
                "--port",
                "0",
                "--data",
                str(self.data),
                "--kubeconfig-out",
                str(self.kubeconfig),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.strip():
            raise RuntimeError("the sandbox did not start")
        config = yaml.safe_load(self.kubeconfig.read_text())
        self.url = config["clusters"][0]["cluster"]["server"]

    def requests(self) -> Counter[str]:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/metrics", timeout=60) as response:
            text = response.read().decode()
        counts: Counter[str] = Counter()
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match:
                verb = _VERB.search(match.group(1))
                counts[verb.group(1) if verb else ""] += int(float(match.group(2)))
        return counts

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------- measuring one command


def measure(sandbox: SandboxProcess, argv: list[str], label: str) -> dict[str, Any]:
    before = sandbox.requests()
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{label} failed ({process.returncode}): {stderr[-2000:]}")
    delta = sandbox.requests() - before
    return {
        "run": label,
        "seconds": round(wall, 2),
        "requests": sum(delta.values()),
        "writes": sum(n for verb, n in delta.items() if verb.upper() in WRITE_VERBS),
        "by_verb": dict(sorted(delta.items())),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def tether_argv(files: Path, kubeconfig: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tether.cli.main",
        "apply",
        str(files),
        "--app",
        "bench",
        "--kubeconfig",
        str(kubeconfig),
        "-o",
        "json",
    ]


def kubectl_argv(files: Path, kubeconfig: Path) -> list[str]:
    # a private discovery cache: kubectl's default one is keyed by host:port, and a later sandbox
    # on the same port would otherwise be served this one's stale discovery
    return [
        "kubectl",
        "--kubeconfig",
        str(kubeconfig),
        "--cache-dir",
        str(kubeconfig.parent / "kube-cache"),
        "apply",
        "--server-side",
        "--field-manager",
        "kubectl-bench",
        "-R",
        "-f",
        str(files),
    ]


async def breakdown(files: Path, kubeconfig: Path) -> dict[str, float]:
    """Where a no-op's time goes, stage by stage (in this process)."""
    from tether.delivery.plan import validate_changes as validate_against
    from tether.engine.apply import ApplyOptions, apply_plan
    from tether.engine.plan import make_plan
    from tether.kube import Kube
    from tether.render import RenderOptions, render_source

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    manifests = render_source(files, RenderOptions(app="bench")).manifests
    out["render"] = time.perf_counter() - t0
    kube = await Kube.connect(kubeconfig=str(kubeconfig))
    try:
        t0 = time.perf_counter()
        plan = await make_plan(kube, manifests, "bench")
        out["plan"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if plan.changed_manifests():  # as the CLI: only what would be written is validated
            await validate_against(kube, plan.changed_manifests(), "1.32")
        out["validate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await apply_plan(kube, plan, ApplyOptions())
        out["apply"] = time.perf_counter() - t0
        out["unchanged"] = len(plan.changes) - sum(plan.summary()[k] for k in ("create", "update", "delete"))
    finally:
        await kube.close()
    return {key: round(value, 3) for key, value in out.items()}


def run_size(total: int, workdir: Path) -> dict[str, Any]:
    files = write_files(make_objects(total), workdir / f"files-{total}")
    result: dict[str, Any] = {"objects": total}

    sandbox = SandboxProcess(workdir / f"tether-{total}")
    try:
        result["tether_cold"] = measure(sandbox, tether_argv(files, sandbox.kubeconfig), "tether apply (cold)")
        result["tether_noop"] = measure(sandbox, tether_argv(files, sandbox.kubeconfig), "tether apply (no-op)")
        result["tether_noop_stages"] = asyncio.run(breakdown(files, sandbox.kubeconfig))
    finally:
        sandbox.stop()

    sandbox = SandboxProcess(workdir / f"kubectl-{total}")
    try:
        result["kubectl_cold"] = measure(sandbox, kubectl_argv(files, sandbox.kubeconfig), "kubectl apply (cold)")
        result["kubectl_noop"] = measure(sandbox, kubectl_argv(files, sandbox.kubeconfig), "kubectl apply (no-op)")
    finally:
        sandbox.stop()

    result["ratio_cold"] = round(result["kubectl_cold"]["seconds"] / result["tether_cold"]["seconds"], 2)
    result["ratio_noop"] = round(result["kubectl_noop"]["seconds"] / result["tether_noop"]["seconds"], 2)
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| objects | run | wall s | client CPU s | requests | writes | peak RSS MiB |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for res in results:
        for key in ("tether_cold", "kubectl_cold", "tether_noop", "kubectl_noop"):
            run = res[key]
            lines.append(
                f"| {res['objects']:,} | {run['run']} | {run['seconds']} | {run['cpu_seconds']} | "
                f"{run['requests']:,} | "
                f"{run['writes']:,} | {run['peak_rss_mib']} |"
            )
    lines.append("")
    for res in results:
        lines.append(
            f"{res['objects']:,} objects: kubectl/tether wall-time ratio cold {res['ratio_cold']}x, "
            f"no-op {res['ratio_noop']}x; tether no-op stages (s): {res['tether_noop_stages']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if shutil.which("kubectl") is None:
        sys.exit("kubectl is needed for the baseline")
    workdir = Path(tempfile.mkdtemp(prefix="tether-engine-bench-"))
    try:
        results = [run_size(int(size), workdir) for size in args.sizes.split(",")]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
