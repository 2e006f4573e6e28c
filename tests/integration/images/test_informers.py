"""The running loop on informers: one LIST per kind at start, then watches only; a created, changed or
deleted object takes effect at once (the resync is an hour here, so only a wake-up can explain it);
the echoes of the loop's own status writes do not wake it; resyncs re-evaluate without scanning."""

from __future__ import annotations

import asyncio
import re
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from localregistry import LocalRegistry
from test_pull_request import git, secret

from tether.images import ImageAutomation
from tether.images.api import POLICY_INFO, REPOSITORY_INFO, UPDATE_INFO, install_crds
from tether.images.notifications import PushedImage
from tether.kube import Kube

RESOURCES = ("imagerepositories", "imagepolicies", "imageupdates")
_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+([0-9.e+]+)$")
HOUR = 3600.0


def server_lists(url: str) -> dict[str, int]:
    """LIST requests the sandbox has answered for each of the three resources, from its /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    totals = dict.fromkeys(RESOURCES, 0)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if labels.get("verb") == "LIST" and labels.get("resource") in totals:
                totals[labels["resource"]] += int(float(match.group(2)))
    return totals


async def eventually(what: str, check: Callable[[], Any], timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def deploy_repository(tmp_path: Path, ns: str, image: str) -> Path:
    bare = tmp_path / "deploy.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "deploy.yaml").write_text(f'image: {image}:0.9.0 # {{"$imagepolicy": "{ns}:api"}}\n')
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "seed")
    git(seed, "push", "-q", str(bare), "main")
    return bare


def objects(ns: str, image: str, registry: LocalRegistry, bare: Path) -> dict[str, dict[str, Any]]:
    return {
        "secret": secret(
            "registry-auth", ns, {".dockerconfigjson": registry.dockerconfigjson()}, "kubernetes.io/dockerconfigjson"
        ),
        "repository": {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "ImageRepository",
            "metadata": {"name": "api", "namespace": ns},
            "spec": {"image": image, "interval": "10m", "insecure": True, "secretRef": {"name": "registry-auth"}},
        },
        "policy": {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "ImagePolicy",
            "metadata": {"name": "api", "namespace": ns},
            "spec": {"imageRepositoryRef": {"name": "api"}, "policy": {"semver": {"range": ">=1.0.0 <2.0.0"}}},
        },
        "update": {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "ImageUpdate",
            "metadata": {"name": "apps", "namespace": ns},
            "spec": {
                "git": {"url": str(bare), "branch": "main"},
                "path": ".",
                "interval": "10m",
                "batchInterval": "0s",
            },
        },
    }


@asynccontextmanager
async def running(kube: Kube, ns: str, work: Path, resync: float) -> AsyncIterator[ImageAutomation]:
    automation = ImageAutomation(kube, namespaces=[ns], work_dir=work, install=False, resync=resync)
    task = asyncio.create_task(automation.run())
    try:
        await eventually("the informers' first lists", lambda: _now(automation.objects.synced))
        yield automation
    finally:
        automation.stop()
        await asyncio.wait_for(task, 30)
    assert not automation.objects.synced, "the informers stopped with the loop"


async def apply(kube: Kube, obj: dict[str, Any]) -> None:
    await kube.apply(await kube.info(obj["apiVersion"], obj["kind"]), obj, force=True, field_manager="test")


def test_changes_wake_the_loop_at_once(
    sandbox: Any, sandbox_namespace: str, registry: LocalRegistry, tmp_path: Path
) -> None:
    ns, image_path = sandbox_namespace, f"team/{sandbox_namespace}"
    image = f"{registry.host}/{image_path}"
    registry.push_image(image_path, "1.0.0", "1.1.0", "2.0.0")
    bare = deploy_repository(tmp_path, ns, image)
    made = objects(ns, image, registry, bare)

    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            await install_crds(kube)
            await apply(kube, made["secret"])
            async with running(kube, ns, tmp_path / "work", HOUR) as automation:

                async def policy() -> dict[str, Any]:
                    return (await kube.get(POLICY_INFO, "api", ns) or {}).get("status") or {}

                async def deployed() -> str:
                    return git(bare, "show", "main:deploy.yaml")

                # created: scanned and evaluated without waiting for the (hour-long) resync
                await apply(kube, made["repository"])
                await apply(kube, made["policy"])
                await eventually("the policy to choose 1.1.0", lambda: _is(policy(), "latestImage", f"{image}:1.1.0"))
                await apply(kube, made["update"])
                await eventually("the update to commit 1.1.0", lambda: _contains(deployed(), f"{image}:1.1.0 #"))

                # a policy's new spec: evaluated again, and its new image committed
                made["policy"]["spec"]["policy"]["semver"]["range"] = ">=2.0.0"
                await apply(kube, made["policy"])
                await eventually("the new range to commit 2.0.0", lambda: _contains(deployed(), f"{image}:2.0.0 #"))

                # a repository's new spec: scanned again
                made["repository"]["spec"]["exclusionList"] = [r"^1\.0\.0$"]
                await apply(kube, made["repository"])
                await eventually(
                    "the rescan without 1.0.0",
                    lambda: _scan_tag_count(kube, ns, 2),
                )

                # an update's new spec: run again
                made["update"]["spec"]["commit"] = {"author": {"name": "Image Bot", "email": "bot@example.com"}}
                await apply(kube, made["update"])
                generation = (await kube.get(UPDATE_INFO, "apps", ns))["metadata"]["generation"]
                await eventually("the update to run its new spec", lambda: _observed(kube, ns, generation))

                # deleted: the policy sees its repository gone, the loop forgets what it kept
                await kube.delete(REPOSITORY_INFO, "api", ns)
                await eventually(
                    "the policy to see its repository gone",
                    lambda: _reason(policy(), "RepositoryNotFound"),
                )
                assert (ns, "api") not in automation.state.repositories
                await kube.delete(POLICY_INFO, "api", ns)
                await kube.delete(UPDATE_INFO, "apps", ns)
                await eventually(
                    "the deleted policy and update to be forgotten",
                    lambda: _now((ns, "api") not in automation.state.chosen and not automation.state.updates),
                )

                stats = automation.stats
                # every status write came back as a watch event that did not wake the loop
                assert stats.events - stats.wakeups >= 5, stats
                # each pass had a cause: the start or a wake-up (a busy loop would make thousands)
                assert stats.passes <= stats.wakeups + 1, stats
                informers = automation.objects.stats()
                assert (informers.lists, informers.relists) == (3, 0)

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_steady_state_makes_no_list_requests(
    sandbox: Any, sandbox_namespace: str, registry: LocalRegistry, tmp_path: Path
) -> None:
    ns, image_path = sandbox_namespace, f"team/{sandbox_namespace}"
    image = f"{registry.host}/{image_path}"
    registry.push_image(image_path, "1.0.0", "1.1.0")
    bare = deploy_repository(tmp_path, ns, image)
    made = objects(ns, image, registry, bare)
    made["suspended"] = {**made["repository"], "metadata": {"name": "held", "namespace": ns}}
    made["suspended"]["spec"] = {**made["repository"]["spec"], "image": f"{image}-held", "suspend": True}
    resync = 0.2

    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            await install_crds(kube)
            for obj in made.values():
                await apply(kube, obj)
            before_start = server_lists(sandbox.url)
            async with running(kube, ns, tmp_path / "work", resync) as automation:
                await eventually("the first commit", lambda: _contains(_show(bare), f"{image}:1.1.0 #"))
                assert automation.stats.scans == 1, "the suspended repository is not scanned"
                after_sync = server_lists(sandbox.url)
                assert {r: after_sync[r] - before_start[r] for r in RESOURCES} == dict.fromkeys(RESOURCES, 1)
                passes = automation.stats.passes

                # ten resync periods: passes that re-evaluate, without a LIST or a registry scan
                await eventually("ten resyncs", lambda: _now(automation.stats.passes >= passes + 10))
                assert server_lists(sandbox.url) == after_sync
                assert automation.stats.scans == 1, "scans follow spec.interval, not the resync"
                # the suspended repository (never scanned, nothing due) does not make passes back to back
                assert automation.stats.passes <= passes + 10 + automation.stats.wakeups

                # a registry notification still scans at once
                assert automation.notify([PushedImage(image_path, registry.host, "1.1.0")]) == 1
                await eventually("the notified scan", lambda: _now(automation.stats.scans == 2))
                assert server_lists(sandbox.url) == after_sync
                assert automation.objects.stats().lists == 3

    asyncio.run(asyncio.wait_for(scenario(), 120))


async def _now(value: bool) -> bool:
    return value


async def _is(status: Any, key: str, value: str) -> bool:
    return (await status).get(key) == value


async def _contains(text: Any, part: str) -> bool:
    return part in await text


async def _show(bare: Path) -> str:
    return git(bare, "show", "main:deploy.yaml")


async def _reason(status: Any, reason: str) -> bool:
    conditions = (await status).get("conditions") or [{}]
    return conditions[-1].get("reason") == reason


async def _scan_tag_count(kube: Kube, ns: str, count: int) -> bool:
    status = (await kube.get(REPOSITORY_INFO, "api", ns) or {}).get("status") or {}
    return (status.get("lastScanResult") or {}).get("tagCount") == count


async def _observed(kube: Kube, ns: str, generation: int) -> bool:
    return ((await kube.get(UPDATE_INFO, "apps", ns) or {}).get("status") or {}).get("observedGeneration") == generation
