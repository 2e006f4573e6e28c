"""The whole loop: a tag pushed to the registry ends up running in the sandbox, through a Git commit.

registry push -> the registry's notification -> ``POST /hooks/registry`` -> scan -> ImagePolicy ->
ImageUpdate commits at the setter marker (comments intact) -> the Git server's webhook -> the
controller applies -> the Deployment's pods run the new image.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from localregistry import LocalRegistry

from tether.cli.demo_env import LocalEnvironment, git
from tether.images import ImageAutomation
from tether.kube import Kube

DEPLOYMENT = """\
# The api, deployed by tether; its image is kept current by the ImagePolicy default:api.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: imgloop
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
        - name: api   # the only container
          image: IMAGE:1.1.0 # {"$imagepolicy": "default:api"}
"""


class Controller:
    """The controller with image automation as a companion, on its own loop in a thread."""

    def __init__(self, env: LocalEnvironment, token: str, work: Path) -> None:
        self.env, self.token, self.work = env, token, work
        self.loop = asyncio.new_event_loop()
        self.controller: Any = None
        self.automation: ImageAutomation | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _make(self, kube: Kube) -> ImageAutomation:
        self.automation = ImageAutomation(kube, work_dir=self.work, resync=1.0, notification_secret=self.token.encode())
        return self.automation

    def _run(self) -> None:
        from tether.controller.run import Controller as Runner
        from tether.controller.run import ControllerOptions

        async def main() -> None:
            kube = await Kube.connect(kubeconfig=str(self.env.kubeconfig))
            try:
                self.controller = Runner(
                    kube,
                    ControllerOptions(
                        listen=f"127.0.0.1:{self.env.controller_port}",
                        webhook_secret="tether-system/tether-webhooks",
                        cache_dir=str(self.env.directory / "cache"),
                        companions=(self._make,),
                    ),
                )
                self._ready.set()
                await self.controller.run()
            finally:
                await kube.close()

        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(main())

    def start(self) -> Controller:
        self._thread.start()
        self._ready.wait(30)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.controller.stop)
        self._thread.join(60)


def kube_call(env: LocalEnvironment, action: Callable[[Kube], Any]) -> Any:
    async def main() -> Any:
        kube = await Kube.connect(kubeconfig=str(env.kubeconfig))
        try:
            return await action(kube)
        finally:
            await kube.close()

    return asyncio.run(main())


def apply(env: LocalEnvironment, obj: dict[str, Any]) -> None:
    async def action(kube: Kube) -> Any:
        return await kube.apply(await kube.info(obj["apiVersion"], obj["kind"]), obj, force=True, field_manager="test")

    kube_call(env, action)


def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def running_images(env: LocalEnvironment) -> set[str]:
    async def action(kube: Kube) -> Any:
        pods = await kube.list(await kube.info("v1", "Pod"), "imgloop")
        return {
            c["image"]
            for p in pods
            if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
            for c in p["spec"]["containers"]
        }

    return kube_call(env, action)


def policy_status(env: LocalEnvironment) -> dict[str, Any]:
    async def action(kube: Kube) -> Any:
        return await kube.get(await kube.info("tether.dev/v1alpha1", "ImagePolicy"), "api", "default")

    return (kube_call(env, action) or {}).get("status") or {}


@pytest.fixture(scope="module")
def loop_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalEnvironment, LocalRegistry, Controller]]:
    from tether.cli.demo_tour import _create_webhook_secret

    env = LocalEnvironment(Path(tmp_path_factory.mktemp("imgloop")), sim_delay=0.1).start()

    async def webhook_secret(kube: Kube) -> None:
        await _create_webhook_secret(kube, env)

    kube_call(env, webhook_secret)
    token = secrets.token_hex(12)
    registry = LocalRegistry(
        env.directory / "registry",
        notify_token=token,
        notify_url=f"http://127.0.0.1:{env.controller_port}/hooks/registry",
    ).start()
    registry.push_image("team/api", "1.0.0", "1.1.0")
    controller = Controller(env, token, env.directory / "images").start()
    yield env, registry, controller
    controller.stop()
    registry.stop()
    env.stop()


def test_a_pushed_tag_is_committed_and_runs(loop_env: tuple[LocalEnvironment, LocalRegistry, Controller]) -> None:
    env, registry, controller = loop_env
    image = f"{registry.host}/team/api"
    env.commit(
        "Add the api",
        {
            "imgloop/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: imgloop\n",
            "imgloop/deploy.yaml": DEPLOYMENT.replace("IMAGE", image),
        },
    )
    secret = base64.b64encode(registry.dockerconfigjson().encode()).decode()
    apply(
        env,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "registry-auth", "namespace": "default"},
            "data": {".dockerconfigjson": secret},
        },
    )
    app = env.application("imgloop", path="imgloop")
    app["spec"]["destination"] = {"namespace": "imgloop"}
    apply(env, app)
    eventually(lambda: running_images(env) == {f"{image}:1.1.0"}, "the first image to run")
    eventually(lambda: controller.automation is not None, "the automation (it installs the CRDs) to start")
    apply(
        env,
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "ImageRepository",
            "metadata": {"name": "api", "namespace": "default"},
            "spec": {"image": image, "interval": "10m", "insecure": True, "secretRef": {"name": "registry-auth"}},
        },
    )
    apply(
        env,
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "ImagePolicy",
            "metadata": {"name": "api", "namespace": "default"},
            "spec": {"imageRepositoryRef": {"name": "api"}, "policy": {"semver": {"range": ">=1.0.0"}}},
        },
    )
    apply(
        env,
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "ImageUpdate",
            "metadata": {"name": "apps", "namespace": "default"},
            "spec": {
                "git": {"url": env.repo_url, "branch": "main"},
                "path": "imgloop",
                "interval": "10m",
                "batchInterval": "1s",
                "commit": {"author": {"name": "Image Bot", "email": "bot@example.com"}},
            },
        },
    )
    eventually(lambda: policy_status(env).get("latestImage") == f"{image}:1.1.0", "the policy to see 1.1.0")
    before = git(env.directory / "git" / "apps.git", "rev-parse", "main")
    automation = controller.automation
    assert automation is not None
    eventually(lambda: automation.stats.updates_without_change >= 1, "the first update (nothing to change)")
    assert git(env.directory / "git" / "apps.git", "rev-parse", "main") == before, "nothing changed: no push"

    notifications = automation.stats.notifications
    registry.push_image("team/api", "1.2.0")
    eventually(lambda: running_images(env) == {f"{image}:1.2.0"}, "the pushed tag to run")
    assert automation.stats.notifications > notifications, "the registry's notification started the scan"
    assert policy_status(env)["observedPreviousImage"] == f"{image}:1.1.0"
    git(env.work, "pull", "-q", "--rebase", "origin", "main")
    assert (env.work / "imgloop" / "deploy.yaml").read_text() == DEPLOYMENT.replace("IMAGE", image).replace(
        ":1.1.0 #", ":1.2.0 #"
    ), "only the tag changed; comments and layout intact"
    message = git(env.work, "log", "-1", "--format=%an%n%B")
    assert message.startswith("Image Bot\nUpdate 127.0.0.1")
    assert f"{image}: 1.1.0 -> 1.2.0" in message


def test_the_image_cli(loop_env: tuple[LocalEnvironment, LocalRegistry, Controller]) -> None:
    from typer.testing import CliRunner

    from tether.cli.app import app
    from tether.errors import UsageError

    env, registry, _ = loop_env
    runner = CliRunner()
    listed = runner.invoke(app, ["image", "list", "-n", "default", "--kubeconfig", str(env.kubeconfig)])
    assert listed.exit_code == 0, listed.output
    assert f"ImagePolicy      api   {registry.host}/team/api:1.2.0" in listed.output
    scanned = runner.invoke(app, ["image", "scan", "api", "-n", "default", "--kubeconfig", str(env.kubeconfig)])
    assert scanned.exit_code == 0, scanned.output
    assert f"{registry.host}/team/api: 3 tags" in scanned.output
    assert f"ImagePolicy api: {registry.host}/team/api:1.2.0" in scanned.output
    missing = runner.invoke(app, ["image", "get", "nope", "-n", "default", "--kubeconfig", str(env.kubeconfig)])
    assert isinstance(missing.exception, UsageError)  # the CLI's error edge turns it into exit code 2
    assert "no ImagePolicy, ImageRepository or ImageUpdate named 'nope'" in str(missing.exception)
