"""Helpers for engine tests against a running API server (the ``sandbox`` fixture)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from tether.engine import AppIdentity, ApplyOptions, ApplyResult, Plan, apply_plan, make_plan
from tether.kube import Kube
from tether.model import Manifest

WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY", "CREATE", "UPDATE"}
_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+([0-9.e+]+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def request_counts(url: str) -> Counter[tuple[str, str]]:
    """Requests served so far by (verb, resource), from the server's /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    counts: Counter[tuple[str, str]] = Counter()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            labels = dict(_LABEL.findall(match.group(1)))
            counts[(labels.get("verb", ""), labels.get("resource", ""))] += int(float(match.group(2)))
    return counts


def writes_between(before: Counter, after: Counter) -> dict[tuple[str, str], int]:
    delta = after - before
    return {key: n for key, n in delta.items() if key[0].upper() in WRITE_VERBS and n}


def manifests(objs: list[dict[str, Any]]) -> list[Manifest]:
    return [Manifest(obj) for obj in objs]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def plan_and_apply(
    kubeconfig: Path,
    objs: list[dict[str, Any]],
    app: str | AppIdentity,
    options: ApplyOptions = ApplyOptions(),
    **plan_args: Any,
) -> tuple[Plan, ApplyResult]:
    kube = await Kube.connect(kubeconfig=str(kubeconfig))
    try:
        plan = await make_plan(kube, manifests(objs), app, **plan_args)
        return plan, await apply_plan(kube, plan, options)
    finally:
        await kube.close()


async def plan_only(kubeconfig: Path, objs: list[dict[str, Any]], app: str | AppIdentity, **plan_args: Any) -> Plan:
    kube = await Kube.connect(kubeconfig=str(kubeconfig))
    try:
        return await make_plan(kube, manifests(objs), app, **plan_args)
    finally:
        await kube.close()


async def get(kubeconfig: Path, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
    kube = await Kube.connect(kubeconfig=str(kubeconfig))
    try:
        return await kube.get(await kube.info(api_version, kind), name, namespace)
    finally:
        await kube.close()


def write_dir(root: Path, files: dict[str, list[dict[str, Any]] | str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for existing in root.rglob("*.yaml"):
        existing.unlink()
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump_all(content))
    return root


def tether(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real ``tether`` command line."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def configmap(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict(data),
    }


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(name: str, ns: str, replicas: int = 1, image: str = "nginx:1.27") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "main", "image": image, "resources": {"limits": {"cpu": "0.5", "memory": "64Mi"}}}
                    ]
                },
            },
        },
    }
