"""A small forge on loopback: the documented GitHub, GitLab and Gitea REST endpoints for commit
statuses and pull-request comments, checking auth headers, paths and bodies as the forges do."""

from __future__ import annotations

import http.server
import json
import re
import threading
from typing import Any

TOKEN = "t0ken-for-tests"
_ROUTES = {
    "github": [("POST", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$", "status"),
               ("GET", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$", "list"),
               ("POST", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$", "create"),
               ("PATCH", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$", "update")],
    "gitea": [("POST", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$", "status"),
              ("GET", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$", "list"),
              ("POST", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$", "create"),
              ("PATCH", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$", "update")],
    "gitlab": [("POST", r"^/api/v4/projects/(?P<repo>[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$", "status"),
               ("GET", r"^/api/v4/projects/(?P<repo>[^/]+)/merge_requests/(?P<n>\d+)/notes$", "list"),
               ("POST", r"^/api/v4/projects/(?P<repo>[^/]+)/merge_requests/(?P<n>\d+)/notes$", "create"),
               ("PUT", r"^/api/v4/projects/(?P<repo>[^/]+)/merge_requests/(?P<n>\d+)/notes/(?P<id>\d+)$", "update")],
}
_STATES = {"github": {"pending", "success", "failure", "error"}, "gitea": {"pending", "success", "failure", "error",
                                                                          "warning"},
           "gitlab": {"pending", "running", "success", "failed", "canceled"}}


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeForge

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        provider = self.server.provider
        if provider == "github":
            return (self.headers.get("Authorization") == f"Bearer {TOKEN}"
                    and self.headers.get("Accept") == "application/vnd.github+json"
                    and self.headers.get("X-GitHub-Api-Version") == "2022-11-28")
        if provider == "gitlab":
            return self.headers.get("PRIVATE-TOKEN") == TOKEN
        return self.headers.get("Authorization") == f"token {TOKEN}"

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, body))
        if not self._authorized():
            return self._answer(401, {"message": "Bad credentials"})
        for method, pattern, action in _ROUTES[self.server.provider]:
            match = re.match(pattern, path)
            if match and method == self.command:
                return getattr(self, f"_{action}")(match.groupdict(), body, query)
        return self._answer(404, {"message": f"no route {self.command} {path}"})

    do_GET = do_POST = do_PATCH = do_PUT = _handle

    def _status(self, groups: dict[str, str], body: dict[str, Any], _query: str) -> None:
        name_key = "name" if self.server.provider == "gitlab" else "context"
        if body.get("state") not in _STATES[self.server.provider] or not body.get(name_key):
            return self._answer(422, {"message": f"invalid status {body}"})
        self.server.statuses.append({"repo": groups["repo"], "sha": groups["sha"], **body})
        return self._answer(201, {"id": len(self.server.statuses), **body})

    def _list(self, groups: dict[str, str], _body: Any, query: str) -> None:
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        size = int(params.get("limit") or params.get("per_page") or 30)
        page = int(params.get("page") or 1)
        comments = [c for c in self.server.comments.values() if c["n"] == groups["n"]]
        shown = comments[(page - 1) * size: page * size]
        return self._answer(200, [{"id": c["id"], "body": c["body"], "system": False} for c in shown])

    def _create(self, groups: dict[str, str], body: dict[str, Any], _query: str) -> None:
        ident = 1000 + len(self.server.comments)
        self.server.comments[ident] = {"id": ident, "n": groups["n"], "body": body["body"]}
        return self._answer(201, self.server.comments[ident])

    def _update(self, groups: dict[str, str], body: dict[str, Any], _query: str) -> None:
        comment = self.server.comments.get(int(groups["id"]))
        if comment is None:
            return self._answer(404, {"message": "no such comment"})
        comment["body"] = body["body"]
        return self._answer(200, comment)


class FakeForge(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, provider: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.provider = provider
        self.requests: list[tuple[str, str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.comments: dict[int, dict[str, Any]] = {}
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def api_url(self) -> str:
        root = {"github": "/api", "gitea": "/api/v1", "gitlab": "/api/v4"}[self.provider]
        return f"http://127.0.0.1:{self.server_address[1]}{root}"
