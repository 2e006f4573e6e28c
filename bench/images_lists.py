"""LIST requests the image automation makes in steady state, counted on the sandbox's /metrics.

One namespace with an ImageRepository (a local registry), an ImagePolicy and an ImageUpdate (a local
bare Git repository); the loop runs with ``--resync`` and, after its first commit, the LISTs of the
three resources are counted over ``--seconds``. Run:
``PYTHONPATH=src python bench/images_lists.py --seconds 60 --resync 10``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration" / "images"))

from localregistry import LocalRegistry
from test_informers import RESOURCES, apply, deploy_repository, objects, server_lists
from test_pull_request import git
from tests.conftest import start_sandbox

from tether.images import ImageAutomation
from tether.images.api import install_crds
from tether.kube import Kube


async def measure(
    sandbox_url: str, kubeconfig: Path, registry: LocalRegistry, work: Path, args: argparse.Namespace
) -> None:
    ns, image = "bench", f"{registry.host}/bench/api"
    registry.push_image("bench/api", "1.0.0", "1.1.0")
    bare = deploy_repository(work, ns, image)
    async with await Kube.connect(kubeconfig=str(kubeconfig)) as kube:
        await kube.apply(
            await kube.info("v1", "Namespace"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            field_manager="bench",
        )
        await install_crds(kube)
        for obj in objects(ns, image, registry, bare).values():
            await apply(kube, obj)
        namespaces = [ns] if args.namespaced else []
        automation = ImageAutomation(
            kube, namespaces=namespaces, work_dir=work / "work", install=False, resync=args.resync
        )
        task = asyncio.create_task(automation.run())
        deadline = time.monotonic() + 60
        while f"{image}:1.1.0 #" not in git(bare, "show", "main:deploy.yaml"):
            assert time.monotonic() < deadline, "no first commit within 60 s"
            await asyncio.sleep(0.1)
        start = server_lists(sandbox_url)
        await asyncio.sleep(args.seconds)
        end = server_lists(sandbox_url)
        automation.stop()
        await task
    counted = {resource: end[resource] - start[resource] for resource in RESOURCES}
    where = f"namespace {ns}" if args.namespaced else "all namespaces"
    print(f"LIST requests over {args.seconds:g} s, resync {args.resync:g} s, {where}:")
    for resource, count in counted.items():
        print(f"  {resource:18} {count}")
    print(f"  {'total':18} {sum(counted.values())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--resync", type=float, default=10.0)
    parser.add_argument("--namespaced", action="store_true", help="watch one namespace, not all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tether-images-lists-") as tmp:
        directory = Path(tmp)
        (directory / "sandbox").mkdir()
        sandbox = start_sandbox(directory / "sandbox")
        registry = LocalRegistry(directory / "registry").start()
        try:
            asyncio.run(measure(sandbox.url, sandbox.kubeconfig, registry, directory, args))
        finally:
            registry.stop()
            sandbox.thread.stop()


if __name__ == "__main__":
    main()
