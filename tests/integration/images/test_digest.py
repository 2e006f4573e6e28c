"""``digestReflectionPolicy: Always``: the digest is read again at every scan (a tag moved to a new
image is noticed and written), and only at scans, not at every pass of the loop."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from localregistry import LocalRegistry
from test_pull_request import git, secret

from tether.images import ImageAutomation
from tether.images.api import POLICY_INFO, install_crds
from tether.images.notifications import PushedImage
from tether.kube import Kube


def test_always_rereads_the_digest_at_every_scan(
    sandbox: Any, sandbox_namespace: str, registry: LocalRegistry, tmp_path: Path
) -> None:
    ns, image_path = sandbox_namespace, "team/moving"
    image = f"{registry.host}/{image_path}"
    first_digest = registry.push_image(image_path, "1.0.0")
    bare = tmp_path / "deploy.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "deploy.yaml").write_text(f'image: {image}:0.9.0 # {{"$imagepolicy": "{ns}:api"}}\n')
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "seed")
    git(seed, "push", "-q", str(bare), "main")
    objects = [
        secret(
            "registry-auth", ns, {".dockerconfigjson": registry.dockerconfigjson()}, "kubernetes.io/dockerconfigjson"
        ),
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "ImageRepository",
            "metadata": {"name": "api", "namespace": ns},
            "spec": {"image": image, "interval": "10m", "insecure": True, "secretRef": {"name": "registry-auth"}},
        },
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "ImagePolicy",
            "metadata": {"name": "api", "namespace": ns},
            "spec": {
                "imageRepositoryRef": {"name": "api"},
                "policy": {"semver": {"range": ">=1.0.0"}},
                "digestReflectionPolicy": "Always",
            },
        },
        {
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
    ]

    async def scenario() -> None:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        try:
            await install_crds(kube)
            for obj in objects:
                await kube.apply(await kube.info(obj["apiVersion"], obj["kind"]), obj, force=True, field_manager="test")
            automation = ImageAutomation(kube, namespaces=[ns], work_dir=tmp_path / "work", install=False)

            async def latest() -> str:
                return (await kube.get(POLICY_INFO, "api", ns))["status"]["latestImage"]

            await automation.refresh()
            await automation.step()
            assert await latest() == f"{image}:1.0.0@{first_digest}"
            assert first_digest in git(bare, "show", "main:deploy.yaml")

            moved_digest = registry.push_image(image_path, "1.0.0")  # the same tag, another image
            assert moved_digest != first_digest
            await automation.refresh()
            await automation.step()  # no scan is due: the registry is not asked again
            assert await latest() == f"{image}:1.0.0@{first_digest}"

            automation.notify([PushedImage(image_path, registry.host, "1.0.0")])
            await automation.refresh()
            await automation.step()
            assert await latest() == f"{image}:1.0.0@{moved_digest}"
            assert (await kube.get(POLICY_INFO, "api", ns))["status"][
                "observedPreviousImage"
            ] == f"{image}:1.0.0@{first_digest}"
            assert (
                git(bare, "show", "main:deploy.yaml")
                == f'image: {image}:1.0.0@{moved_digest} # {{"$imagepolicy": "{ns}:api"}}'
            )
        finally:
            await kube.close()

    asyncio.run(scenario())
