"""ssh:// sources against a real sshd (started here on a free port, key authentication only)."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.errors import SourceError
from tether.render import RenderOptions, render_source

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[dict[str, str]]:
    home = tmp_path / "sshd"
    home.mkdir()
    host_key = keygen(home / "host_key")
    client_key = keygen(home / "client_key")
    (home / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    port = free_port()
    (home / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {home}/authorized_keys\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nStrictModes no\n"
        f"UsePAM no\nPidFile {home}/sshd.pid\nAllowUsers {getpass.getuser()}\nPermitRootLogin prohibit-password\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(home / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=open(home / "log", "wb"),  # noqa: SIM115 - held by the child for its life
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {(home / 'log').read_text()}") from None
                time.sleep(0.1)
        known_hosts = home / "known_hosts"
        public = host_key.with_suffix(".pub").read_text().split()
        known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
        yield {"port": str(port), "key": str(client_key), "known_hosts": str(known_hosts), "user": getpass.getuser()}
    finally:
        process.terminate()
        process.wait(30)


def test_ssh_url_with_key_and_known_hosts(sshd, work_repo: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TETHER_GIT_SSH_KEY_FILE", sshd["key"])
    monkeypatch.setenv("TETHER_GIT_KNOWN_HOSTS_FILE", sshd["known_hosts"])
    url = f"ssh://{sshd['user']}@127.0.0.1:{sshd['port']}{work_repo}//apps/web?ref=v1.2.0"
    result = render_source(url, RenderOptions(cache_dir=str(tmp_path / "cache")))
    assert result.manifests[0].obj["data"]["version"] == "1.2.0"
    assert result.revision.url.startswith("ssh://")


def test_ssh_unknown_host_key_is_refused(sshd, work_repo: Path, tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    monkeypatch.setenv("TETHER_GIT_SSH_KEY_FILE", sshd["key"])
    monkeypatch.setenv("TETHER_GIT_KNOWN_HOSTS_FILE", str(empty))
    url = f"ssh://{sshd['user']}@127.0.0.1:{sshd['port']}{work_repo}?ref=main"
    with pytest.raises(SourceError, match=r"git clone failed: .*Host key verification failed"):
        render_source(url, RenderOptions(cache_dir=str(tmp_path / "cache")))
