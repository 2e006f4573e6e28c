"""The demo itself: a local GitOps setup, the printed instructions, and the unattended tour.

Starts the sandbox, a Git server holding the example repository, the controller and an
Application for it, then prints what to try. ``--tour`` runs the tour unattended, timing each
step, and exits 0 only if every step held.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import typer

from tether.cli.demo_env import LocalEnvironment, wait_until


async def _get(kube: Any, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
    return await kube.get(await kube.info(api_version, kind), name, namespace)


def _ready(app: dict | None, commit: str) -> bool:
    status = (app or {}).get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return ready.get("status") == "True" and status.get("lastAppliedRevision") == commit


def _condition(app: dict | None, type_: str) -> dict:
    return next((c for c in ((app or {}).get("status") or {}).get("conditions") or [] if c.get("type") == type_), {})


class Tour:
    def __init__(self, env: LocalEnvironment, kube: Any) -> None:
        self.env, self.kube = env, kube
        self.results: list[tuple[str, bool, float, str]] = []

    async def app(self) -> dict | None:
        return await _get(self.kube, "tether.dev/v1alpha1", "Application", "demo", "default")

    async def greeting(self) -> str:
        config = await _get(self.kube, "v1", "ConfigMap", "web-config", "demo")
        return ((config or {}).get("data") or {}).get("GREETING", "")

    async def step(self, title: str, action: Callable[[], Awaitable[str]]) -> bool:
        started = time.monotonic()
        try:
            detail = await action()
            ok = True
        except (TimeoutError, AssertionError, RuntimeError) as error:
            detail, ok = str(error), False
        seconds = time.monotonic() - started
        self.results.append((title, ok, seconds, detail))
        mark = "ok  " if ok else "FAIL"
        typer.echo(f"[{mark}] {title:<48} {seconds:6.2f}s  {detail}")
        return ok

    async def run(self) -> bool:
        env = self.env
        first = env.head()
        manifest = env.work / "apps" / "demo" / "app.yaml"
        original = manifest.read_text()

        async def initial() -> str:
            await wait_until("the first sync", lambda: self._is_ready(first), timeout=60)
            return f"revision {first[:12]} applied"

        async def push() -> str:
            commit = env.commit(
                "Greet in French", {"apps/demo/app.yaml": original.replace("hello from tether", "bonjour de tether")}
            )
            await wait_until("the push to apply", lambda: self._greets("bonjour de tether", commit))
            return f"{commit[:12]} live"

        async def scale() -> str:
            await self._scale(5)
            await wait_until("the scale to be reverted", self._replicas_back)
            return "replicas back to 2 (selfHeal)"

        async def broken() -> str:
            env.commit("Break the manifest", {"apps/demo/app.yaml": original + "\n---\nkind: [unclosed\n"})
            await wait_until("Ready=False", self._failed)
            ready = _condition(await self.app(), "Ready")
            assert await self.greeting() == "bonjour de tether", "the last good state was not kept"
            return f"Ready=False {ready.get('reason')}; last good state still running"

        async def fix() -> str:
            commit = env.commit(
                "Fix the manifest", {"apps/demo/app.yaml": original.replace("hello from tether", "bonjour de tether")}
            )
            await wait_until("recovery", lambda: self._is_ready(commit))
            return f"{commit[:12]} Ready"

        async def rollback() -> str:
            await self._patch_spec({"pin": {"revision": first, "reason": "tour rollback"}})
            await wait_until("the rollback", lambda: self._greets("hello from tether", first))
            assert _condition(await self.app(), "Pinned").get("status") == "True", "Pinned is not True"
            return f"pinned to {first[:12]}"

        async def unpin() -> str:
            head = env.head()
            await self._patch_spec({"pin": None})
            await wait_until("the unpin", lambda: self._greets("bonjour de tether", head))
            return f"back at {head[:12]}"

        steps: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            ("initial sync", initial),
            ("a push is applied", push),
            ("kubectl scale is reverted", scale),
            ("a broken commit keeps the last good state", broken),
            ("a fix recovers", fix),
            ("rollback pins an earlier revision", rollback),
            ("unpin returns to the branch", unpin),
        ]
        for title, action in steps:
            if not await self.step(title, action):
                return False
        return True

    async def _is_ready(self, commit: str) -> bool:
        return _ready(await self.app(), commit)

    async def _greets(self, text: str, commit: str) -> bool:
        return await self.greeting() == text and _ready(await self.app(), commit)

    async def _failed(self) -> bool:
        return _condition(await self.app(), "Ready").get("status") == "False"

    async def _replicas_back(self) -> bool:
        deployment = await _get(self.kube, "apps/v1", "Deployment", "web", "demo")
        return ((deployment or {}).get("spec") or {}).get("replicas") == 2

    async def _scale(self, replicas: int) -> None:
        kubectl = shutil.which("kubectl")
        if kubectl:
            done = await asyncio.to_thread(
                subprocess.run,
                [
                    kubectl,
                    "--kubeconfig",
                    str(self.env.kubeconfig),
                    "-n",
                    "demo",
                    "scale",
                    "deployment/web",
                    f"--replicas={replicas}",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"kubectl scale failed: {done.stderr.strip()}")
            return
        info = await self.kube.info("apps/v1", "Deployment")
        await self.kube.patch(
            info, "web", "demo", {"spec": {"replicas": replicas}}, subresource="scale", field_manager="kubectl"
        )

    async def _patch_spec(self, spec: dict[str, Any]) -> None:
        info = await self.kube.info("tether.dev/v1alpha1", "Application")
        await self.kube.patch(info, "demo", "default", {"spec": spec}, field_manager="tether-demo")


async def run_demo(directory: Path, *, tour: bool) -> int:
    from tether.controller.run import Controller, ControllerOptions
    from tether.kube import Kube

    env = LocalEnvironment(directory).start()
    kube = await Kube.connect(kubeconfig=str(env.kubeconfig))
    await _create_webhook_secret(kube, env)
    controller = Controller(
        kube,
        ControllerOptions(
            listen=f"127.0.0.1:{env.controller_port}",
            webhook_secret="tether-system/tether-webhooks",
            cache_dir=str(directory / "cache"),
        ),
    )
    running = asyncio.create_task(controller.run())
    try:
        await wait_until("the controller", lambda: _true(controller.ready), timeout=60)
        info = await kube.info("tether.dev/v1alpha1", "Application")
        await kube.apply(info, env.application(), force=True, field_manager="tether-demo")
        typer.echo(str(env.kubeconfig))  # first line of stdout: scripts find the cluster here
        if tour:
            ok = await Tour(env, kube).run()
            typer.echo("tour: every step held" if ok else "tour: a step failed", err=not ok)
            return 0 if ok else 1
        typer.echo(_instructions(env, directory), err=True)
        await running  # until Ctrl-C (exit 130, as any interrupted command)
        return 0
    finally:
        controller.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 30)
        await kube.close()
        env.stop()


async def _true(value: bool) -> bool:
    return value


async def _create_webhook_secret(kube: Any, env: LocalEnvironment) -> None:
    namespace = await kube.info("v1", "Namespace")
    await kube.apply(
        namespace,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tether-system"}},
        force=True,
        field_manager="tether-demo",
    )
    secret = await kube.info("v1", "Secret")
    await kube.apply(
        secret,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tether-webhooks", "namespace": "tether-system"},
            "stringData": {"generic": env.webhook_secret},
        },
        force=True,
        field_manager="tether-demo",
    )


def _instructions(env: LocalEnvironment, directory: Path) -> str:
    k = f"--kubeconfig {env.kubeconfig}"
    return (
        "\ntether demo is running: a sandbox cluster, a Git server and the controller.\n\n"
        f"  Git repository:  {env.repo_url}   (a clone to edit: {env.work})\n"
        f"  Metrics:         http://127.0.0.1:{env.controller_port}/metrics\n\n"
        "Try:\n"
        f"  cd {env.work} && sed -i 's/hello from tether/hello again/' apps/demo/app.yaml \\\n"
        "      && git commit -qam 'New greeting' && git push -q origin main     # applied within a second\n"
        f"  kubectl {k} -n demo get configmap web-config -o yaml\n"
        f"  kubectl {k} -n demo scale deployment web --replicas=5                 # reverted (selfHeal)\n"
        f"  kubectl {k} get applications -A\n"
        f"  tether app {k} list -A ; tether app {k} history demo ; tether app {k} describe demo\n\n"
        "Stop with Ctrl-C."
    )
