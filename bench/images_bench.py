"""Time from an image tag pushed to the registry to the new image running in the sandbox.

Two modes over the same loop (registry -> ImagePolicy -> Git commit -> controller -> Deployment):
``notifications`` (the registry announces each push to ``POST /hooks/registry``) and ``polling``
(no notifications; the ImageRepository is scanned every ``--interval``). Prints p50/p90/max per
mode over ``--tags`` pushes. Run: ``PYTHONPATH=src python bench/images_bench.py --tags 20``.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration" / "images"))

from localregistry import LocalRegistry
from test_loop import DEPLOYMENT, Controller, apply, eventually

from tether.cli.demo_env import LocalEnvironment, git
from tether.cli.demo_tour import _create_webhook_secret
from tether.kube import Kube


def setup(env: LocalEnvironment, registry: LocalRegistry, namespace: str, interval: str) -> str:
    image = f"{registry.host}/bench/{namespace}"
    registry.push_image(f"bench/{namespace}", "1.0.0")
    deployment = DEPLOYMENT.replace("imgloop", namespace).replace("IMAGE", image).replace(":1.1.0", ":1.0.0")
    deployment = deployment.replace("default:api", f"default:{namespace}")
    git(env.work, "pull", "-q", "--rebase", "origin", "main")  # the image updates pushed to it
    env.commit(
        f"Add {namespace}",
        {
            f"{namespace}/ns.yaml": f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n",
            f"{namespace}/deploy.yaml": deployment,
        },
    )
    secret = base64.b64encode(registry.dockerconfigjson().encode()).decode()
    apply(
        env,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": f"{namespace}-auth", "namespace": "default"},
            "data": {".dockerconfigjson": secret},
        },
    )
    app = env.application(namespace, path=namespace)
    app["spec"]["destination"] = {"namespace": namespace}
    apply(env, app)
    for kind, spec in (
        (
            "ImageRepository",
            {"image": image, "interval": interval, "insecure": True, "secretRef": {"name": f"{namespace}-auth"}},
        ),
        ("ImagePolicy", {"imageRepositoryRef": {"name": namespace}, "policy": {"semver": {"range": ">=1.0.0"}}}),
        ("ImageUpdate", {"git": {"url": env.repo_url, "branch": "main"}, "path": namespace, "interval": "10m"}),
    ):
        apply(
            env,
            {
                "apiVersion": "tether.dev/v1alpha1",
                "kind": kind,
                "metadata": {"name": namespace, "namespace": "default"},
                "spec": spec,
            },
        )
    eventually(lambda: running_images_in(env, namespace) == {f"{image}:1.0.0"}, f"{namespace} at 1.0.0", 120)
    return image


def running_images_in(env: LocalEnvironment, namespace: str) -> set[str]:
    import test_loop

    async def action(kube: Kube) -> set[str]:
        pods = await kube.list(await kube.info("v1", "Pod"), namespace)
        return {
            c["image"]
            for p in pods
            if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
            for c in p["spec"]["containers"]
        }

    return test_loop.kube_call(env, action)


def measure(env: LocalEnvironment, registry: LocalRegistry, namespace: str, image: str, tags: int) -> list[float]:
    seconds = []
    for n in range(1, tags + 1):
        tag = f"1.0.{n}"
        started = time.monotonic()
        registry.push_image(f"bench/{namespace}", tag)
        eventually(lambda tag=tag: running_images_in(env, namespace) == {f"{image}:{tag}"}, f"{tag} running", 120)
        seconds.append(time.monotonic() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--interval", default="5s", help="the ImageRepository scan interval in polling mode")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="tether-images-bench-"))
    env = LocalEnvironment(directory, sim_delay=0.1).start()

    async def webhook_secret(kube: Kube) -> None:
        await _create_webhook_secret(kube, env)

    import test_loop

    test_loop.kube_call(env, webhook_secret)
    token = secrets.token_hex(12)
    notifying = LocalRegistry(
        directory / "notifying", notify_token=token, notify_url=f"http://127.0.0.1:{env.controller_port}/hooks/registry"
    ).start()
    quiet = LocalRegistry(directory / "quiet").start()
    controller = Controller(env, token, directory / "images").start()
    eventually(lambda: controller.automation is not None, "the automation")
    try:
        results = {}
        image = setup(env, notifying, "notified", "10m")
        results["notifications"] = measure(env, notifying, "notified", image, args.tags)
        print("notifications:", " ".join(f"{v:.2f}" for v in results["notifications"]), flush=True)
        image = setup(env, quiet, "polled", args.interval)
        results[f"polling every {args.interval}"] = measure(env, quiet, "polled", image, args.tags)
    finally:
        controller.stop()
        notifying.stop()
        quiet.stop()
        env.stop()
    print(f"tag push -> new image running, {args.tags} tags each")
    print(f"{'mode':<22} {'p50':>7} {'p90':>7} {'max':>7}")
    for mode, values in results.items():
        ordered = sorted(values)
        p90 = ordered[max(0, round(0.9 * len(ordered)) - 1)]
        print(f"{mode:<22} {statistics.median(ordered):>6.2f}s {p90:>6.2f}s {ordered[-1]:>6.2f}s")


if __name__ == "__main__":
    main()
