"""``tether demo`` and ``tether sandbox`` as a new user runs them."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

TETHER = str(Path(sys.executable).with_name("tether"))
KUBECTL = shutil.which("kubectl") or "kubectl"


def _first_line(proc: subprocess.Popen) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, proc.stderr.read() if proc.stderr else ""
    return line


def test_demo_runs_the_gitops_loop_and_serves_until_interrupted(tmp_path: Path):
    proc = subprocess.Popen(
        [TETHER, "demo", "--data", str(tmp_path / "demo")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        kubeconfig = _first_line(proc)
        assert Path(kubeconfig).is_file()
        # the demo prints its hints once the controller runs and the Application exists
        assert proc.stderr is not None
        seen = ""
        while "Stop with Ctrl-C" not in seen:
            line = proc.stderr.readline()
            assert line, seen
            seen += line
        assert "git push" in seen and "tether app" in seen
        deadline = time.monotonic() + 60
        while True:  # the controller applies the example from the demo's Git server
            out = subprocess.run(
                [KUBECTL, "--kubeconfig", kubeconfig, "get", "all", "-n", "demo"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if "deployment.apps/web" in out.stdout and "service/web" in out.stdout:
                break
            assert time.monotonic() < deadline, out.stdout + out.stderr
            time.sleep(0.2)
        out = subprocess.run(
            [KUBECTL, "--kubeconfig", kubeconfig, "get", "applications", "-A"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0 and "demo" in out.stdout, out.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 130  # interrupted, as any command stopped with Ctrl-C


def test_sandbox_command_writes_kubeconfig_and_keeps_state(tmp_path: Path):
    data = tmp_path / "data"
    kubeconfig = tmp_path / "kc.yaml"
    for round_ in range(2):
        proc = subprocess.Popen(
            [TETHER, "sandbox", "--port", "0", "--data", str(data), "--kubeconfig-out", str(kubeconfig)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert _first_line(proc) == str(kubeconfig)
            if round_ == 0:
                manifest = tmp_path / "ns.yaml"
                manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: persisted}\n")
                args = ["apply", "-f", str(manifest)]
            else:
                args = ["get", "namespace", "persisted", "-o", "name"]
            out = subprocess.run(
                [KUBECTL, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=60
            )
            assert out.returncode == 0, out.stderr
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
    assert "namespace/persisted" in out.stdout
