"""No traceback reaches a user: each failure is one ``error:`` line and a documented exit code."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
from cli_helpers import TETHER, assert_clean_failure, configmap, eventually, kubeconfig_for, tether, write_manifests

from tether.sandbox.extras import ExtrasConfig
from tether.sandbox.server import SandboxConfig, SandboxThread

CONTROL = "\x1b[2J\x07"  # clear the screen, ring the bell


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.mark.parametrize("command", ["diff", "apply"])
def test_unreachable_api_server(tmp_path: Path, command: str) -> None:
    source = write_manifests(tmp_path / "src", [configmap("settings")])
    kubeconfig = kubeconfig_for(tmp_path / "kubeconfig", f"http://127.0.0.1:{_closed_port()}")
    result = tether(command, str(source), "--app", "web", "--kubeconfig", str(kubeconfig))
    assert_clean_failure(result)
    assert "cannot reach the API server" in result.stderr


@pytest.mark.parametrize("command", ["diff", "apply"])
def test_stopped_sandbox(tmp_path: Path, command: str) -> None:
    thread = SandboxThread(SandboxConfig(port=0, data_dir=tmp_path / "data"))
    kubeconfig = thread.start().write_kubeconfig(tmp_path / "kubeconfig")
    thread.stop()
    source = write_manifests(tmp_path / "src", [configmap("settings")])
    result = tether(command, str(source), "--app", "web", "--kubeconfig", str(kubeconfig))
    assert_clean_failure(result)


@pytest.mark.parametrize("command", ["diff", "apply"])
def test_malformed_kubeconfig_is_an_error_not_changes(tmp_path: Path, command: str) -> None:
    # exit 1 would tell a pipeline "diff found changes"; a broken kubeconfig is an error (2)
    source = write_manifests(tmp_path / "src", [configmap("settings")])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("clusters: [unclosed\n")
    result = tether(command, str(source), "--app", "web", "--kubeconfig", str(kubeconfig))
    assert_clean_failure(result)
    assert len(result.stderr.strip().splitlines()) == 1
    # names the file and says what is wrong with it, down to the line
    assert f"cannot load {kubeconfig}: not valid YAML" in result.stderr and "line 2" in result.stderr


def test_debug_variable_adds_the_traceback(tmp_path: Path) -> None:
    source = write_manifests(tmp_path / "src", [configmap("settings")])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("clusters: [unclosed\n")
    result = tether("diff", str(source), "--app", "web", "--kubeconfig", str(kubeconfig), env={"TETHER_DEBUG": "1"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" in result.stderr


def test_symlink_loop_in_the_rendered_directory(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    source = write_manifests(tmp_path / "src", [configmap("settings")])
    (source / "a.yaml").symlink_to(source / "b.yaml")
    (source / "b.yaml").symlink_to(source / "a.yaml")
    for args in (["render"], ["diff", "--kubeconfig", str(sandbox.kubeconfig)]):
        result = tether(*args, str(source), "--app", "web")
        assert_clean_failure(result)
        assert "a.yaml" in result.stderr or "b.yaml" in result.stderr


def test_control_characters_in_a_file_name_are_not_printed_raw(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / f"bad{CONTROL}.yaml").write_text("kind: [unclosed\n")
    result = tether("render", str(source))
    assert_clean_failure(result)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "bad\\x1b[2J\\x07.yaml" in result.stderr


def test_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    Path(os.fsdecode(bytes(source) + b"/bad\xff.yaml")).write_text("kind: [unclosed\n")
    result = tether("render", str(source))
    assert_clean_failure(result)
    assert "bad\\xff.yaml" in result.stderr


def test_control_characters_in_an_object_name(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    source = write_manifests(tmp_path / "src", [configmap(f"bad{CONTROL}name")])
    for command in ("diff", "apply"):
        result = tether(command, str(source), "--app", "web", "--kubeconfig", str(sandbox.kubeconfig))
        assert result.returncode in (1, 2), result.stderr  # refused as invalid or as an error, never a crash
        assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")
        assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_control_characters_in_an_argument(tmp_path: Path) -> None:
    result = tether("render", str(tmp_path / f"missing{CONTROL}"))
    assert_clean_failure(result)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr and "missing\\x1b[2J\\x07" in result.stderr
    result = tether("secrets", "decrypt", str(tmp_path / f"missing{CONTROL}.yaml"))
    assert_clean_failure(result)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = tether("sandbox", "--port", str(port), "--data", str(tmp_path / "data"))
    assert_clean_failure(result)
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "--port 0" in result.stderr


def _wait_for_first_line(proc: subprocess.Popen) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, proc.stderr.read() if proc.stderr else ""
    return line


def test_ctrl_c_stops_the_sandbox_with_130(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [TETHER, "sandbox", "--port", "0", "--data", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert Path(_wait_for_first_line(proc)).is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.rstrip().endswith("interrupted")


def test_sigterm_stops_the_sandbox_with_0(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [TETHER, "sandbox", "--port", "0", "--data", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_first_line(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr


def _deployment(name: str) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


def test_ctrl_c_while_apply_waits_for_health(tmp_path: Path) -> None:
    # without simulated controllers a Deployment never becomes available: apply --wait waits
    thread = SandboxThread(SandboxConfig(port=0, data_dir=tmp_path / "data", extras=ExtrasConfig(simulate=False)))
    server = thread.start()
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        source = write_manifests(tmp_path / "src", [_deployment("never-ready")])
        proc = subprocess.Popen(
            [
                TETHER,
                "apply",
                str(source),
                "--app",
                "web",
                "--wait",
                "--timeout",
                "10m",
                "--kubeconfig",
                str(kubeconfig),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def applied() -> bool:
                url = f"{server.url}/apis/apps/v1/namespaces/default/deployments"
                with urllib.request.urlopen(url, timeout=30) as response:
                    return bool(json.load(response)["items"])

            eventually(applied, what="the Deployment to be applied")  # apply is now waiting for health
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
    finally:
        thread.stop()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr.strip() == "interrupted"
