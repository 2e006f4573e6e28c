"""Running ``tether`` as a user does: a subprocess, its exit code and what it printed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

TETHER = str(Path(sys.executable).with_name("tether"))


def tether(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "TETHER_DEBUG"}
    environment.update(env or {})
    return subprocess.run(
        [TETHER, *args], capture_output=True, text=True, timeout=timeout, env=environment, stdin=subprocess.DEVNULL
    )


def assert_clean_failure(result: subprocess.CompletedProcess, code: int = 2) -> None:
    """The command failed with ``code`` and said so in one ``error:`` line, without a traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    assert result.stderr.startswith("error: "), result.stderr


def write_manifests(directory: Path, objects: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "objects.yaml").write_text(yaml.safe_dump_all(objects))
    return directory


def configmap(name: str, namespace: str = "default") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"key": "value"},
    }


def kubeconfig_for(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def eventually(check: Callable[[], object], timeout: float = 60, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
