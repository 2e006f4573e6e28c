"""``tether sandbox --tls`` and ``--authz rbac`` as kubectl and a plain HTTPS client see them."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import yaml
from cli_helpers import TETHER

from tether.sandbox.extras import ExtrasConfig
from tether.sandbox.server import SandboxConfig, SandboxThread

KUBECTL = shutil.which("kubectl") or "kubectl"
UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


@contextmanager
def serving(*args: str) -> Iterator[Path]:
    """``tether sandbox ARGS`` running; yields the kubeconfig it wrote."""
    proc = subprocess.Popen(
        [TETHER, "sandbox", "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line, proc.stderr.read() if proc.stderr else ""
        yield Path(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    # stdin closed: a kubeconfig without credentials would make kubectl ask for a username
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def anonymous_get(kubeconfig: Path, path: str) -> tuple[int, object]:
    """GET ``path`` over the kubeconfig's HTTPS endpoint, trusting its CA, without a token."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    url = urlparse(cluster["server"])
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body.startswith(b"{") else body.decode()
    finally:
        connection.close()


def test_tls_kubeconfig_needs_no_prompt_and_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving("--tls", "--data", str(data)) as kubeconfig:
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"].startswith("https://")
        assert config["clusters"][0]["cluster"]["certificate-authority-data"]
        token = config["users"][0]["user"]["token"]
        assert len(token) >= 32
        listed = kubectl(kubeconfig, "get", "namespaces")
        assert listed.returncode == 0, listed.stderr
        assert "default" in listed.stdout and "Username" not in listed.stderr
        assert anonymous_get(kubeconfig, "/api/v1/namespaces") == (401, UNAUTHORIZED)
        earlier = tmp_path / "earlier-kubeconfig"
        shutil.copy(kubeconfig, earlier)
    with serving("--tls", "--data", str(data)) as kubeconfig:
        assert yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"] == token
        # the server moved to another port; the earlier kubeconfig's credentials still hold
        config = yaml.safe_load(earlier.read_text())
        config["clusters"][0]["cluster"]["server"] = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"][
            "server"
        ]
        earlier.write_text(yaml.safe_dump(config))
        assert kubectl(earlier, "get", "namespace", "default", "-o", "name").stdout.strip() == "namespace/default"


def test_rbac_denies_anonymous_requests_and_authorizes_token_holders(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('alice-token,alice,1001,"devs"\n')
    with serving("--authz", "rbac", "--token-file", str(tokens), "--data", str(tmp_path / "data")) as kubeconfig:
        # as kube-apiserver with --anonymous-auth=false: no token, no answer but 401, health included
        for path in ("/api/v1/namespaces", "/api", "/version", "/healthz", "/readyz"):
            assert anonymous_get(kubeconfig, path) == (401, UNAUTHORIZED), path
        assert kubectl(kubeconfig, "get", "namespaces").returncode == 0  # the generated admin token
        denied = kubectl(kubeconfig, "--token", "alice-token", "get", "namespaces")
        assert denied.returncode == 1
        assert 'User "alice" cannot list resource "namespaces"' in denied.stderr, denied.stderr
        unknown = kubectl(kubeconfig, "--token", "not-a-token", "get", "namespaces")
        assert unknown.returncode == 1 and "Unauthorized" in unknown.stderr, unknown.stderr
        granted = kubectl(
            kubeconfig, "create", "clusterrolebinding", "devs-view", "--clusterrole", "view", "--group", "devs"
        )
        assert granted.returncode == 0, granted.stderr
        allowed = kubectl(kubeconfig, "--token", "alice-token", "get", "namespaces", "-o", "name")
        assert allowed.returncode == 0 and "namespace/default" in allowed.stdout, allowed.stderr


def test_rbac_without_any_token_lets_no_one_in(tmp_path: Path) -> None:
    # no --token and no token file: anonymous requests were once served as the admin
    thread = SandboxThread(
        SandboxConfig(port=0, data_dir=tmp_path / "data", tls=True, extras=ExtrasConfig(authz="rbac"))
    )
    server = thread.start()
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        assert anonymous_get(kubeconfig, "/api/v1/namespaces/kube-system/secrets") == (401, UNAUTHORIZED)
        assert anonymous_get(kubeconfig, "/healthz") == (401, UNAUTHORIZED)
    finally:
        thread.stop()
