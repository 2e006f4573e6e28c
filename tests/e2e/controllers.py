"""Controllers as their own processes, and reading their /metrics (for the end-to-end tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from tether.cli.demo_env import LocalEnvironment, free_port

#: the webhook Secret's GitHub key in every e2e environment (conftest writes it)
GITHUB_SECRET = "e2e-github-webhook-secret"


class ControllerProcess:
    """``tether controller`` as its own process (what kill -9 and leader election need)."""

    def __init__(self, env: LocalEnvironment, *args: str, port: int = 0, name: str = "controller") -> None:
        self.env, self.args, self.name = env, args, name
        self.port = port or free_port()
        self.log = env.directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ControllerProcess:
        command = [
            sys.executable,
            "-c",
            "from tether.cli.main import main; main()",
            "controller",
            "--kubeconfig",
            str(self.env.kubeconfig),
            "-A",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--webhook-secret",
            "tether-system/tether-webhooks",
            "--cache-dir",
            str(self.env.directory / f"cache-{self.name}"),
            *self.args,
        ]
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
