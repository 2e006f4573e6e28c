"""End-to-end: the sandbox, a real git http-backend and the controller, all on this machine.

One environment per module (starting a sandbox and Git server takes about a second); tests keep
apart by using their own Application names, repository paths and destination namespaces. The
controller runs on its own event loop in a thread, as it would in its own process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from controllers import GITHUB_SECRET

from tether.cli.demo_env import LocalEnvironment


class ControllerThread:
    def __init__(self, env: LocalEnvironment, **options: Any) -> None:
        self.env, self.options = env, options
        self.loop = asyncio.new_event_loop()
        self.controller: Any = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="controller")

    def _run(self) -> None:
        from tether.controller.run import Controller, ControllerOptions
        from tether.kube import Kube

        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            kube = await Kube.connect(kubeconfig=str(self.env.kubeconfig))
            try:
                self.controller = Controller(
                    kube,
                    ControllerOptions(
                        listen=f"127.0.0.1:{self.env.controller_port}",
                        webhook_secret="tether-system/tether-webhooks",
                        cache_dir=str(self.env.directory / "cache"),
                        **self.options,
                    ),
                )
                self._ready.set()
                await self.controller.run()
            finally:
                await kube.close()

        try:
            self.loop.run_until_complete(main())
        except BaseException as error:  # reported by the test that looks
            self.error = error
            self._ready.set()

    def start(self) -> ControllerThread:
        self._thread.start()
        self._ready.wait(30)
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.loop.call_soon_threadsafe(self.controller.stop)
        self._thread.join(60)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    """A module's environment; a module may set ``ENV_OPTIONS`` (e.g. ``{"authz": "rbac"}``)."""
    from tether.cli.demo_tour import _create_webhook_secret
    from tether.kube import Kube

    options = {"sim_delay": 0.2, **getattr(request.module, "ENV_OPTIONS", {})}
    environment = LocalEnvironment(Path(tmp_path_factory.mktemp("e2e")), **options).start()

    async def secret() -> None:
        kube = await Kube.connect(kubeconfig=str(environment.kubeconfig))
        try:
            await _create_webhook_secret(kube, environment)
            # a GitHub secret of its own, so a generic signature cannot pass for a GitHub one
            await kube.patch(
                await kube.info("v1", "Secret"),
                "tether-webhooks",
                "tether-system",
                {"stringData": {"github": GITHUB_SECRET}},
                field_manager="e2e",
            )
        finally:
            await kube.close()

    run(secret())
    yield environment
    environment.stop()


@pytest.fixture(scope="module")
def controller(env: LocalEnvironment) -> Iterator[ControllerThread]:
    thread = ControllerThread(env).start()
    yield thread
    thread.stop()
