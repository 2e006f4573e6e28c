"""A small forge on loopback: the documented GitHub, GitLab, Gitea and Bitbucket Cloud REST endpoints
for commit statuses, pull-request comments and pull requests, checking auth headers, paths and bodies
as the forges do. With ``git_dir`` (a bare repository) set, a pull request from a branch that does not
exist there is refused, as the forges refuse it.

Bitbucket pages its lists (``values`` + a ``next`` link, ``pagelen`` capped at ``max_pagelen``), answers
404 for a pull request the repository does not have, and takes ``Authorization: Bearer TOKEN`` or
Basic ``USER:TOKEN``."""

from __future__ import annotations

import base64
import http.server
import json
import re
import subprocess
import threading
import urllib.parse
from pathlib import Path
from typing import Any

TOKEN = "t0ken-for-tests"
_ROUTES = {
    "github": [
        ("POST", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$", "status"),
        ("GET", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$", "list"),
        ("POST", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$", "create"),
        ("PATCH", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$", "update"),
        ("GET", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/pulls$", "list_pulls"),
        ("POST", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/pulls$", "create_pull"),
        ("PATCH", r"^/api/repos/(?P<repo>[^/]+/[^/]+)/pulls/(?P<n>\d+)$", "update_pull"),
    ],
    "gitea": [
        ("POST", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$", "status"),
        ("GET", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$", "list"),
        ("POST", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$", "create"),
        ("PATCH", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$", "update"),
        ("GET", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/pulls$", "list_pulls"),
        ("POST", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/pulls$", "create_pull"),
        ("PATCH", r"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/pulls/(?P<n>\d+)$", "update_pull"),
    ],
    "gitlab": [
        ("POST", r"^/api/v4/projects/(?P<repo>[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$", "status"),
        ("GET", r"^/api/v4/projects/(?P<repo>[^/]+)/merge_requests/(?P<n>\d+)/notes$", "list"),
        ("POST", r"^/api/v4/projects/(?P<repo>[^/]+)/merge_requests/(?P<n>\d+)/notes$", "create"),
        ("PUT", r"^/api/v4/projects/(?P<repo>[^/]+)/merge_requests/(?P<n>\d+)/notes/(?P<id>\d+)$", "update"),
        ("GET", r"^/api/v4/projects/(?P<repo>[^/]+)/merge_requests$", "list_pulls"),
        ("POST", r"^/api/v4/projects/(?P<repo>[^/]+)/merge_requests$", "create_pull"),
        ("PUT", r"^/api/v4/projects/(?P<repo>[^/]+)/merge_requests/(?P<n>\d+)$", "update_pull"),
    ],
    "bitbucket": [
        ("POST", r"^/2\.0/repositories/(?P<repo>[^/]+/[^/]+)/commit/(?P<sha>[0-9a-f]{40})/statuses/build$", "status"),
        ("GET", r"^/2\.0/repositories/(?P<repo>[^/]+/[^/]+)/pullrequests/(?P<n>\d+)/comments$", "bb_list"),
        ("POST", r"^/2\.0/repositories/(?P<repo>[^/]+/[^/]+)/pullrequests/(?P<n>\d+)/comments$", "bb_create"),
        (
            "PUT",
            r"^/2\.0/repositories/(?P<repo>[^/]+/[^/]+)/pullrequests/(?P<n>\d+)/comments/(?P<id>\d+)$",
            "bb_update",
        ),
        ("GET", r"^/2\.0/repositories/(?P<repo>[^/]+/[^/]+)/pullrequests$", "bb_list_pulls"),
        ("POST", r"^/2\.0/repositories/(?P<repo>[^/]+/[^/]+)/pullrequests$", "create_pull"),
        ("PUT", r"^/2\.0/repositories/(?P<repo>[^/]+/[^/]+)/pullrequests/(?P<n>\d+)$", "update_pull"),
    ],
}
_STATES = {
    "github": {"pending", "success", "failure", "error"},
    "gitea": {"pending", "success", "failure", "error", "warning"},
    "gitlab": {"pending", "running", "success", "failed", "canceled"},
    "bitbucket": {"INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"},
}
BASIC_USER = "bot"


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
            return (
                self.headers.get("Authorization") == f"Bearer {TOKEN}"
                and self.headers.get("Accept") == "application/vnd.github+json"
                and self.headers.get("X-GitHub-Api-Version") == "2022-11-28"
            )
        if provider == "gitlab":
            return self.headers.get("PRIVATE-TOKEN") == TOKEN
        if provider == "bitbucket":
            basic = "Basic " + base64.b64encode(f"{BASIC_USER}:{TOKEN}".encode()).decode()
            return self.headers.get("Authorization") in (f"Bearer {TOKEN}", basic)
        return self.headers.get("Authorization") == f"token {TOKEN}"

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, body))
        if not self._authorized():
            if self.server.provider == "bitbucket":
                return self._answer(401, {"type": "error", "error": {"message": "Token is invalid or not supported"}})
            return self._answer(401, {"message": "Bad credentials"})
        for method, pattern, action in _ROUTES[self.server.provider]:
            match = re.match(pattern, path)
            if match and method == self.command:
                return getattr(self, f"_{action}")(match.groupdict(), body, query)
        return self._answer(404, {"message": f"no route {self.command} {path}"})

    do_GET = do_POST = do_PATCH = do_PUT = _handle

    def _status(self, groups: dict[str, str], body: dict[str, Any], _query: str) -> None:
        name_key = {"gitlab": "name", "bitbucket": "key"}.get(self.server.provider, "context")
        if body.get("state") not in _STATES[self.server.provider] or not body.get(name_key):
            return self._answer(422, {"message": f"invalid status {body}"})
        self.server.statuses.append({"repo": groups["repo"], "sha": groups["sha"], **body})
        return self._answer(201, {"id": len(self.server.statuses), **body})

    def _list(self, groups: dict[str, str], _body: Any, query: str) -> None:
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        size = int(params.get("limit") or params.get("per_page") or 30)
        page = int(params.get("page") or 1)
        comments = [c for c in self.server.comments.values() if c["n"] == groups["n"]]
        shown = comments[(page - 1) * size : page * size]
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

    # ------------------------------------------------------------ pull requests

    def _pull_view(self, pull: dict[str, Any]) -> dict[str, Any]:
        web = f"https://forge.test/{pull['repo']}"
        if self.server.provider == "bitbucket":
            return {
                "type": "pullrequest",
                "id": pull["number"],
                "title": pull["title"],
                "description": pull["body"],
                "state": "OPEN" if pull["open"] else "DECLINED",
                "source": {"branch": {"name": pull["head"]}},
                "destination": {"branch": {"name": pull["base"]}},
                "links": {"html": {"href": f"{web}/pull-requests/{pull['number']}"}},
            }
        if self.server.provider == "gitlab":
            return {
                "id": 500 + pull["number"],
                "iid": pull["number"],
                "source_branch": pull["head"],
                "target_branch": pull["base"],
                "title": pull["title"],
                "description": pull["body"],
                "state": "opened" if pull["open"] else "closed",
                "web_url": f"{web}/-/merge_requests/{pull['number']}",
            }
        return {
            "number": pull["number"],
            "title": pull["title"],
            "body": pull["body"],
            "state": "open" if pull["open"] else "closed",
            "html_url": f"{web}/pull/{pull['number']}",
            "head": {"ref": pull["head"]},
            "base": {"ref": pull["base"]},
        }

    def _fields(self, body: dict[str, Any]) -> tuple[str, str, str, str]:
        if self.server.provider == "bitbucket":
            source = ((body.get("source") or {}).get("branch") or {}).get("name", "")
            destination = ((body.get("destination") or {}).get("branch") or {}).get("name", "")
            return source, destination, body.get("title", ""), body.get("description", "")
        if self.server.provider == "gitlab":
            return (
                body.get("source_branch", ""),
                body.get("target_branch", ""),
                body.get("title", ""),
                body.get("description", ""),
            )
        return body.get("head", ""), body.get("base", ""), body.get("title", ""), body.get("body", "")

    def _list_pulls(self, groups: dict[str, str], _body: Any, query: str) -> None:
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        provider, pulls = self.server.provider, [p for p in self.server.pulls.values() if p["repo"] == groups["repo"]]
        if provider == "gitlab":
            if params.get("state", "opened") != "opened":
                return self._answer(400, {"message": "this forge only lists opened merge requests"})
            pulls = [
                p
                for p in pulls
                if p["open"]
                and params.get("source_branch", p["head"]) == p["head"]
                and params.get("target_branch", p["base"]) == p["base"]
            ]
        else:
            if params.get("state", "open") != "open":
                return self._answer(400, {"message": "this forge only lists open pull requests"})
            pulls = [p for p in pulls if p["open"]]
            if provider == "github" and "head" in params:
                owner, _, branch = params["head"].partition(":")
                if owner != groups["repo"].split("/")[0]:
                    return self._answer(200, [])
                pulls = [p for p in pulls if p["head"] == branch and params.get("base", p["base"]) == p["base"]]
            size, page = int(params.get("limit") or params.get("per_page") or 30), int(params.get("page") or 1)
            pulls = pulls[(page - 1) * size : page * size]
        return self._answer(200, [self._pull_view(p) for p in pulls])

    def _create_pull(self, groups: dict[str, str], body: dict[str, Any], _query: str) -> None:
        head, base, title, text = self._fields(body or {})
        if not (head and base and title):
            return self._answer(422, {"message": f"head, base and title are required, got {body}"})
        if self.server.git_dir is not None and not self.server.branch_exists(head):
            return self._answer(422, {"message": f"head branch {head!r} does not exist"})
        if any(p["open"] and (p["head"], p["base"]) == (head, base) for p in self.server.pulls.values()):
            code = 409 if self.server.provider in ("gitlab", "gitea") else 422
            return self._answer(code, {"message": f"a pull request for {head} -> {base} already exists"})
        number = len(self.server.pulls) + 1
        self.server.pulls[number] = {
            "number": number,
            "repo": groups["repo"],
            "head": head,
            "base": base,
            "title": title,
            "body": text,
            "open": True,
        }
        return self._answer(201, self._pull_view(self.server.pulls[number]))

    def _update_pull(self, groups: dict[str, str], body: dict[str, Any], _query: str) -> None:
        pull = self.server.pulls.get(int(groups["n"]))
        if pull is None or pull["repo"] != groups["repo"]:
            return self._answer(404, {"message": "no such pull request"})
        _head, _base, title, text = self._fields(body or {})
        pull.update({k: v for k, v in (("title", title), ("body", text)) if v})
        return self._answer(200, self._pull_view(pull))

    # ------------------------------------------------------------ Bitbucket: paged lists, 404 for unknown PRs

    def _page(self, path: str, query: str, items: list[dict[str, Any]], max_pagelen: int) -> None:
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        pagelen = min(int(params.get("pagelen") or 10), max_pagelen)
        page = int(params.get("page") or 1)
        answer: dict[str, Any] = {
            "size": len(items),
            "page": page,
            "pagelen": pagelen,
            "values": items[(page - 1) * pagelen : page * pagelen],
        }
        if page * pagelen < len(items):
            following = urllib.parse.urlencode({**params, "page": str(page + 1)})
            answer["next"] = f"{self.server.next_root or self.server.root_url}{path}?{following}"
        return self._answer(200, answer)

    def _bb_pull(self, groups: dict[str, str]) -> dict[str, Any] | None:
        pull = self.server.pulls.get(int(groups["n"]))
        return pull if pull is not None and pull["repo"] == groups["repo"] else None

    def _bb_comment_view(self, comment: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "pullrequest_comment",
            "id": comment["id"],
            "content": {"raw": comment["body"], "markup": "markdown"},
            "deleted": comment.get("deleted", False),
        }

    def _bb_list(self, groups: dict[str, str], _body: Any, query: str) -> None:
        if self._bb_pull(groups) is None:
            return self._answer(404, {"type": "error", "error": {"message": "Pull request not found"}})
        comments = [self._bb_comment_view(c) for c in self.server.comments.values() if c["n"] == groups["n"]]
        return self._page(self.path.partition("?")[0], query, comments, self.server.max_pagelen)

    def _bb_create(self, groups: dict[str, str], body: dict[str, Any], _query: str) -> None:
        if self._bb_pull(groups) is None:
            return self._answer(404, {"type": "error", "error": {"message": "Pull request not found"}})
        raw = ((body or {}).get("content") or {}).get("raw")
        if not isinstance(raw, str) or not raw:
            return self._answer(400, {"type": "error", "error": {"message": f"content.raw is required, got {body}"}})
        ident = 1000 + len(self.server.comments)
        self.server.comments[ident] = {"id": ident, "n": groups["n"], "body": raw}
        return self._answer(201, self._bb_comment_view(self.server.comments[ident]))

    def _bb_update(self, groups: dict[str, str], body: dict[str, Any], _query: str) -> None:
        comment = self.server.comments.get(int(groups["id"]))
        if self._bb_pull(groups) is None or comment is None or comment["n"] != groups["n"]:
            return self._answer(404, {"type": "error", "error": {"message": "Comment not found"}})
        raw = ((body or {}).get("content") or {}).get("raw")
        if not isinstance(raw, str) or not raw:
            return self._answer(400, {"type": "error", "error": {"message": f"content.raw is required, got {body}"}})
        comment["body"] = raw
        return self._answer(200, self._bb_comment_view(comment))

    def _bb_list_pulls(self, groups: dict[str, str], _body: Any, query: str) -> None:
        state = (urllib.parse.parse_qs(query).get("state") or ["OPEN"])[0]
        if state != "OPEN":
            return self._answer(400, {"type": "error", "error": {"message": "this forge only lists OPEN ones"}})
        pulls = [self._pull_view(p) for p in self.server.pulls.values() if p["repo"] == groups["repo"] and p["open"]]
        return self._page(self.path.partition("?")[0], query, pulls, min(self.server.max_pagelen, 50))


class FakeForge(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, provider: str, git_dir: Path | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.provider, self.git_dir = provider, git_dir
        self.pulls: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.comments: dict[int, dict[str, Any]] = {}
        self.max_pagelen = 100  # Bitbucket: the most one page holds, whatever pagelen asks
        self.next_root = ""  # Bitbucket: where next links point (default: this server)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def branch_exists(self, branch: str) -> bool:
        return (
            subprocess.run(
                ["git", "--git-dir", str(self.git_dir), "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )

    def open_pull(self, repo: str, head: str, base: str, title: str = "a change") -> int:
        """A pull request someone opened (Bitbucket comments need one that exists)."""
        number = len(self.pulls) + 1
        self.pulls[number] = {
            "number": number,
            "repo": repo,
            "head": head,
            "base": base,
            "title": title,
            "body": "",
            "open": True,
        }
        return number

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def api_url(self) -> str:
        root = {"github": "/api", "gitea": "/api/v1", "gitlab": "/api/v4", "bitbucket": "/2.0"}[self.provider]
        return f"{self.root_url}{root}"
