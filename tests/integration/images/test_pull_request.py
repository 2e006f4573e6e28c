"""Pull-request mode: the ImageUpdate pushes a branch of its own to a repository on the local Git server
and opens one pull request from it on a loopback forge; the next update window force-pushes the branch
and updates that pull request. The commits are SSH-signed and verify against the signer's key."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import markdown
import pytest
from localregistry import LocalRegistry

sys.path.insert(0, str(Path(__file__).parents[1] / "notify"))

from forge_fake import TOKEN, FakeForge

from tether.images import ImageAutomation
from tether.images.api import POLICY_INFO, REPOSITORY_INFO, UPDATE_INFO, install_crds
from tether.images.notifications import PushedImage
from tether.images.pullrequest import BITBUCKET_MARKER, MARKER
from tether.kube import Kube
from tether.sandbox.git_server import GitServer
from tether.source.git import GitCache, Resolved
from tether.source.verify import verify_revision

DEPLOY = """\
# the api; its tag follows the ImagePolicy api
spec:
  template:
    spec:
      containers:
        - name: api
          image: IMAGE:1.0.0 # {"$imagepolicy": "NS:api"}
"""
PROVIDERS = ["github", "gitlab", "gitea", "bitbucket"]


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    server = GitServer(tmp_path_factory.mktemp("git"), credentials=("bot", "pushpass")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An SSH signing key and an allowed-signers file naming it."""
    directory = tmp_path_factory.mktemp("signer")
    key = directory / "signer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bot", "-f", str(key)], check=True)
    allowed = directory / "allowed_signers"
    allowed.write_text("bot@example.com " + " ".join(key.with_suffix(".pub").read_text().split()[:2]) + "\n")
    return key, allowed


def secret(name: str, namespace: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": type_,
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_updates_go_to_one_pull_request(
    provider: str,
    sandbox: Any,
    sandbox_namespace: str,
    registry: LocalRegistry,
    git_server: GitServer,
    signer: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    ns, image_path = sandbox_namespace, f"team/pr-{provider}"
    image = f"{registry.host}/{image_path}"
    registry.push_image(image_path, "1.0.0", "1.1.0")
    bare = git_server.create(f"acme/deploy-{provider}.git")
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "apps").mkdir()
    (seed / "apps" / "deploy.yaml").write_text(DEPLOY.replace("IMAGE", image).replace("NS", ns))
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "seed")
    git(seed, "push", "-q", str(bare), "main")
    main = git(bare, "rev-parse", "main")
    forge = FakeForge(provider, git_dir=bare)
    key, allowed = signer
    objects = [
        secret(
            "registry-auth", ns, {".dockerconfigjson": registry.dockerconfigjson()}, "kubernetes.io/dockerconfigjson"
        ),
        secret("git-auth", ns, {"username": "bot", "password": "pushpass"}),
        secret("forge-token", ns, {"token": TOKEN}),
        secret("signing", ns, {"identity": key.read_text()}),
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
            "spec": {"imageRepositoryRef": {"name": "api"}, "policy": {"semver": {"range": ">=1.0.0"}}},
        },
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "ImageUpdate",
            "metadata": {"name": "apps", "namespace": ns},
            "spec": {
                "git": {
                    "url": git_server.url(f"acme/deploy-{provider}.git"),
                    "branch": "main",
                    "pushBranch": "image-updates",
                    "secretRef": {"name": "git-auth"},
                },
                "path": "apps",
                "interval": "10m",
                "batchInterval": "0s",
                "commit": {
                    "author": {"name": "Image Bot", "email": "bot@example.com"},
                    "signingKey": {"type": "ssh", "secretRef": {"name": "signing"}},
                },
                "pullRequest": {
                    "provider": provider,
                    "apiURL": forge.api_url,
                    "repository": "acme/deploy",
                    "tokenSecretRef": {"name": "forge-token"},
                },
            },
        },
    ]

    def verify_branch() -> str:
        commit = git(bare, "rev-parse", "image-updates")
        return verify_revision(
            GitCache(tmp_path / "cache", timeout=30),
            bare,
            "deploy",
            Resolved(commit, "branch", "image-updates"),
            "ssh",
            str(allowed),
        )

    async def scenario() -> tuple[ImageAutomation, dict[str, Any]]:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        try:
            await install_crds(kube)
            for obj in objects:
                await kube.apply(await kube.info(obj["apiVersion"], obj["kind"]), obj, force=True, field_manager="test")
            automation = ImageAutomation(kube, namespaces=[ns], work_dir=tmp_path / "work", install=False)
            await automation.refresh()
            await automation.step()
            first = await kube.get(UPDATE_INFO, "apps", ns)
            assert first["status"]["conditions"][-1]["status"] == "True", first["status"]
            assert first["status"]["pullRequest"]["number"] == 1
            assert git(bare, "rev-parse", "main") == main, "the base branch is never pushed to"
            assert git(bare, "rev-parse", "image-updates^") == main
            assert "Good" in verify_branch()
            assert forge.pulls[1]["body"].count(f"{image}: 1.0.0 -> 1.1.0") == 1
            pushed_first = git(bare, "rev-parse", "image-updates")

            registry.push_image(image_path, "1.2.0")
            assert automation.notify([PushedImage(image_path, registry.host, "1.2.0")]) == 1
            await automation.refresh()
            await automation.step()
            second = await kube.get(UPDATE_INFO, "apps", ns)
            assert second["status"]["pullRequest"]["number"] == 1
            assert "pull request #1 updated" in second["status"]["conditions"][-1]["message"]
            assert git(bare, "rev-list", "--count", "main..image-updates") == "1", "force-pushed, one commit"
            assert (
                subprocess.run(
                    ["git", "--git-dir", str(bare), "merge-base", "--is-ancestor", pushed_first, "image-updates"],
                    check=False,
                ).returncode
                == 1
            )
            assert "Good" in verify_branch()

            calls = len(forge.requests)
            automation.state.updates[(ns, "apps")].next_run = 0.0  # the interval passes, nothing changed
            await automation.step()
            assert len(forge.requests) == calls, "an unchanged branch needs no forge call"
            assert (await kube.get(POLICY_INFO, "api", ns))["status"]["latestImage"] == f"{image}:1.2.0"
            assert (await kube.get(REPOSITORY_INFO, "api", ns))["status"]["lastScanResult"]["tagCount"] == 3
            return automation, second
        finally:
            await kube.close()

    try:
        automation, _ = asyncio.run(scenario())
    finally:
        forge.shutdown()
    assert (automation.stats.pull_requests_opened, automation.stats.pull_requests_updated) == (1, 1)
    assert len(forge.pulls) == 1, "never a second pull request"
    pull = forge.pulls[1]
    assert (pull["head"], pull["base"], pull["open"]) == ("image-updates", "main", True)
    assert pull["title"] == f"Update {image} to 1.2.0"
    assert f"{image}: 1.0.0 -> 1.2.0" in pull["body"], "the change against the base"
    assert (BITBUCKET_MARKER if provider == "bitbucket" else MARKER) in pull["body"]
    shown = git(bare, "show", "image-updates:apps/deploy.yaml")
    assert shown + "\n" == DEPLOY.replace("IMAGE", image).replace("NS", ns).replace(":1.0.0 #", ":1.2.0 #")
    lists = [path for method, path, _ in forge.requests if method == "GET"]
    if provider == "github":
        assert all("head=acme%3Aimage-updates" in p or "head=acme:image-updates" in p for p in lists), lists
    elif provider == "gitlab":
        assert all("source_branch=image-updates" in p and "state=opened" in p for p in lists), lists
    elif provider == "bitbucket":
        assert all("state=OPEN" in p for p in lists), lists
        assert "tether:image-update" not in markdown.markdown(pull["body"]), "Bitbucket shows no marker"
