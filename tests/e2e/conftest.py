"""End-to-end: the sandbox, a real git http-backend and the controller, all on this machine.

One environment per module (starting a sandbox and Git server takes about a second); tests keep
apart by using their own Application names, repository paths and destination namespaces. The
controller runs on its own event loop in a thread, as it would in its own process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tether.cli.demo_env import LocalEnvironment, free_port


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
                self.controller = Controller(kube, ControllerOptions(
                    listen=f"127.0.0.1:{self.env.controller_port}", webhook_secret="tether-system/tether-webhooks",
                    cache_dir=str(self.env.directory / "cache"), **self.options))
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


class ControllerProcess:
    """``tether controller`` as its own process (what kill -9 and leader election need)."""

    def __init__(self, env: LocalEnvironment, *args: str, port: int = 0, name: str = "controller") -> None:
        self.env, self.args, self.name = env, args, name
        self.port = port or free_port()
        self.log = env.directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ControllerProcess:
        command = [sys.executable, "-c", "from tether.cli.main import main; main()", "controller",
                   "--kubeconfig", str(self.env.kubeconfig), "-A", "--listen", f"127.0.0.1:{self.port}",
                   "--webhook-secret", "tether-system/tether-webhooks",
                   "--cache-dir", str(self.env.directory / f"cache-{self.name}"), *self.args]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env={**os.environ})
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        """(status, body) of a GET on the controller's listener; (0, "") while it is not listening."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def metrics(self) -> dict[str, float]:
        return parse_metrics(self.get("/metrics")[1])

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as {'name{label="v",...}': value} (labels sorted) for simple lookups."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def metric_sum(metrics: dict[str, float], series_name: str, **labels: str) -> float:
    """The sum of every series of ``name`` whose labels include ``labels``."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for key, value in metrics.items():
        series, _, rest = key.partition("{")
        if series == series_name and all(w in rest for w in wanted):
            total += value
    return total


GITHUB_SECRET = "e2e-github-webhook-secret"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    """A module's environment; a module may set ``ENV_OPTIONS`` (e.g. ``{"authz": "rbac"}``)."""
    from tether.cli.demo import _create_webhook_secret
    from tether.kube import Kube

    options = {"sim_delay": 0.2, **getattr(request.module, "ENV_OPTIONS", {})}
    environment = LocalEnvironment(Path(tmp_path_factory.mktemp("e2e")), **options).start()

    async def secret() -> None:
        kube = await Kube.connect(kubeconfig=str(environment.kubeconfig))
        try:
            await _create_webhook_secret(kube, environment)
            # a GitHub secret of its own, so a generic signature cannot pass for a GitHub one
            await kube.patch(await kube.info("v1", "Secret"), "tether-webhooks", "tether-system",
                             {"stringData": {"github": GITHUB_SECRET}}, field_manager="e2e")
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
