"""Git credentials from the URL, the environment or files; never logged, never on a command line.

Environment (all optional)::

    TETHER_GIT_USERNAME, TETHER_GIT_PASSWORD      HTTP(S) basic auth
    TETHER_GIT_PASSWORD_FILE                      ... password (or token) read from a file
    TETHER_GIT_SSH_KEY_FILE                       private key for ssh:// URLs
    TETHER_GIT_KNOWN_HOSTS_FILE                   known_hosts for ssh:// (host keys are always checked)
"""

from __future__ import annotations

import base64
import os
import shlex
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tether.errors import SourceError


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    ssh_key_file: str = ""
    known_hosts_file: str = ""

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return f"Credentials(username={self.username!r}, password={'***' if self.password else ''!r})"

    @classmethod
    def for_url(cls, url: str, environ: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        parts = urllib.parse.urlsplit(url)
        username = urllib.parse.unquote(parts.username or "") or env.get("TETHER_GIT_USERNAME", "")
        password = urllib.parse.unquote(parts.password or "") if parts.password else env.get("TETHER_GIT_PASSWORD", "")
        if not password and env.get("TETHER_GIT_PASSWORD_FILE"):
            try:
                password = Path(env["TETHER_GIT_PASSWORD_FILE"]).read_text().strip()
            except OSError as error:
                raise SourceError(f"TETHER_GIT_PASSWORD_FILE: cannot read: {error.strerror}") from error
        if parts.scheme in ("http", "https") and parts.username and not parts.password and not password:
            password, username = username, "git"  # https://TOKEN@host form
        return cls(
            username, password, env.get("TETHER_GIT_SSH_KEY_FILE", ""), env.get("TETHER_GIT_KNOWN_HOSTS_FILE", "")
        )

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self._basic_token()) if s]

    def _basic_token(self) -> str:
        if not self.password:
            return ""
        return base64.b64encode(f"{self.username or 'git'}:{self.password}".encode()).decode()

    def git_env(self, url: str) -> dict[str, str]:
        scheme = urllib.parse.urlsplit(url).scheme
        env: dict[str, str] = {}
        if scheme in ("http", "https") and self.password:
            env.update(
                {
                    "GIT_CONFIG_COUNT": "1",
                    "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": f"Authorization: Basic {self._basic_token()}",
                }
            )
        if scheme == "ssh" or ("@" in url and "://" not in url):
            options = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
            if self.ssh_key_file:
                options += ["-i", self.ssh_key_file, "-o", "IdentitiesOnly=yes"]
            if self.known_hosts_file:
                options += ["-o", f"UserKnownHostsFile={self.known_hosts_file}"]
            env["GIT_SSH_COMMAND"] = shlex.join(options)
        return env
