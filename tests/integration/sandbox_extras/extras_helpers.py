"""Small HTTP and polling helpers for the sandbox extras integration tests."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tether.sandbox.server import SandboxConfig, SandboxThread

ADMIN_TOKEN = "admin-token-for-tests"


class Http:
    def __init__(
        self, url: str, token: str | None = None, headers: dict[str, str] | None = None, ca: object = None
    ) -> None:
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.context = ssl.create_default_context(cafile=str(ca)) if parsed.scheme == "https" else None
        self.headers = dict(headers or {})
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any]:
        conn = (
            http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context)
            if self.context is not None
            else http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        )
        try:
            data = json.dumps(body).encode() if body is not None else None
            all_headers = {**self.headers, **(headers or {})}
            if data is not None:
                all_headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            raw = response.read()
            try:
                return response.status, json.loads(raw) if raw else None
            except ValueError:
                return response.status, raw.decode(errors="replace")
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.request("DELETE", path, body, **kw)

    def namespace(self, name: str) -> str:
        code, body = self.post(
            "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
        assert code == 201, body
        return name


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (generous timeout: the machine may be busy)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


def deployment(name: str, image: str = "nginx:1.27", replicas: int = 2, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            **spec,
        },
    }


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in (obj.get("status") or {}).get("conditions") or []}


class Running:
    """A sandbox in a background thread (like the shared fixture, with our own configuration)."""

    def __init__(self, directory: Path, **options: object) -> None:
        self.thread = SandboxThread(SandboxConfig(port=0, data_dir=directory, **options))  # type: ignore[arg-type]
        self.server = self.thread.start()
        self.url = self.server.url
        self.kubeconfig = self.server.write_kubeconfig(directory / "kubeconfig")

    def call(self, fn):  # type: ignore[no-untyped-def]
        return self.thread.call(fn)


def start_sandbox(directory: Path, **options: object) -> Running:
    return Running(directory, **options)
