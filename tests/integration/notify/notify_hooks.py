"""A webhook endpoint on loopback that records what Apprise's json:// plugin posts to it."""

from __future__ import annotations

import http.server
import json
import threading
from collections import defaultdict
from typing import Any


class _Handler(http.server.BaseHTTPRequestHandler):
    server: HookServer

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            failures = self.server.fail_next.get(self.path, 0)
            if failures:
                self.server.fail_next[self.path] = failures - 1
                self.server.refused[self.path] += 1
            else:
                self.server.received[self.path].append(json.loads(body))
        self.send_response(500 if failures else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class HookServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.refused: dict[str, int] = defaultdict(int)
        self.fail_next: dict[str, int] = {}
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.server_address[1]}/{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received[f"/{path}"])
