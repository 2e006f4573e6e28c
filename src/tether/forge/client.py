"""A small REST client for the forges tether reports to: commit statuses and pull-request comments.

Endpoints followed (see docs/feedback.md for the API versions):

=========  ===========================================  ==============================================
provider   commit status                                pull-request comments (list / create / update)
=========  ===========================================  ==============================================
github     POST /repos/{o}/{r}/statuses/{sha}           GET|POST /repos/{o}/{r}/issues/{n}/comments,
                                                        PATCH /repos/{o}/{r}/issues/comments/{id}
gitlab     POST /projects/{id}/statuses/{sha}           GET|POST /projects/{id}/merge_requests/{iid}/notes,
                                                        PUT .../notes/{note_id}
gitea      POST /repos/{o}/{r}/statuses/{sha}           as github (under /api/v1)
bitbucket  POST /repositories/{w}/{r}/commit/{sha}/     GET|POST /repositories/{w}/{r}/pullrequests/{id}/comments
           statuses/build                               (paged: values + next), PUT .../comments/{comment_id}
=========  ===========================================  ==============================================

Pull requests (``upsert_pull_request``: find the open one from a head branch, update it, or open one):

=========  ==================================================================================
github     GET /repos/{o}/{r}/pulls?head={o}:{branch}&base=&state=open, POST /repos/{o}/{r}/pulls,
           PATCH /repos/{o}/{r}/pulls/{number}
gitlab     GET /projects/{id}/merge_requests?source_branch=&target_branch=&state=opened,
           POST /projects/{id}/merge_requests, PUT /projects/{id}/merge_requests/{iid}
gitea      GET /repos/{o}/{r}/pulls?state=open (paged; matched on head and base), POST and
           PATCH as github (under /api/v1)
bitbucket  GET /repositories/{w}/{r}/pullrequests?state=OPEN (paged; matched on source and
           destination branch), POST /repositories/{w}/{r}/pullrequests, PUT .../pullrequests/{id}
=========  ==================================================================================

One ``ForgeClient`` per repository; every method raises ``ForgeError`` naming the request and the
forge's answer (never the token). ``retryable`` on the error says whether trying again may help.
"""

from __future__ import annotations

import base64
import hashlib
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from tether.errors import TetherError, UsageError
from tether.forge import bitbucket
from tether.forge.repo import ForgeRepo

StatusState = Literal["pending", "success", "failure", "error"]
_GITLAB_STATES = {"pending": "running", "success": "success", "failure": "failed", "error": "failed"}
_BITBUCKET_STATES = {"pending": "INPROGRESS", "success": "SUCCESSFUL", "failure": "FAILED", "error": "FAILED"}
_TOKEN_VARIABLES = {
    "github": "GITHUB_TOKEN",
    "gitlab": "GITLAB_TOKEN",
    "gitea": "GITEA_TOKEN",
    "bitbucket": "BITBUCKET_TOKEN",
}
_MAX_PAGES = 20


class ForgeError(TetherError):
    """A forge's REST API refused a request or could not be reached."""

    def __init__(self, message: str, *, status: int = 0, retryable: bool = False) -> None:
        super().__init__(message)
        self.status, self.retryable = status, retryable


@dataclass(frozen=True)
class Comment:
    id: int
    body: str


@dataclass(frozen=True)
class PullRequest:
    """A pull request (GitLab: merge request); ``number`` is GitLab's ``iid``."""

    number: int
    url: str  # the web page
    head: str
    base: str
    title: str = ""


def token_from_env(provider: str, environ: dict[str, str] | None = None) -> str:
    """``TETHER_FORGE_TOKEN``, else the provider's usual variable (``GITHUB_TOKEN``, ``GITLAB_TOKEN``, ...)."""
    env = os.environ if environ is None else environ
    variable = _TOKEN_VARIABLES.get(provider, "")
    token = env.get("TETHER_FORGE_TOKEN") or env.get(variable, "")
    if not token:
        raise UsageError(f"no {provider} token: set TETHER_FORGE_TOKEN or {variable}")
    return token


class ForgeClient:
    """REST calls on one repository of one forge, authenticated with ``token``."""

    def __init__(
        self, repo: ForgeRepo, token: str, *, timeout: float = 15.0, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.repo, self._token = repo, token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session, self._owns_session = session, session is None

    async def __aenter__(self) -> ForgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    # ------------------------------------------------------------ public

    async def set_status(
        self, sha: str, state: StatusState, context: str, description: str = "", target_url: str = ""
    ) -> None:
        """Set the status ``context`` of commit ``sha`` (a new status replaces the context's last one)."""
        description = description if len(description) <= 140 else description[:139] + "…"
        provider = self.repo.provider
        if provider in ("github", "gitea"):
            body: dict[str, Any] = {"state": state, "context": context, "description": description}
            if target_url:
                body["target_url"] = target_url
            await self._call("POST", f"{self._repo_root()}/statuses/{sha}", body)
        elif provider == "gitlab":
            body = {"state": _GITLAB_STATES[state], "name": context, "description": description}
            if target_url:
                body["target_url"] = target_url
            await self._call("POST", f"{self._repo_root()}/statuses/{sha}", body)
        elif provider == "bitbucket":
            # the key identifies the status (at most 40 characters); the name is what people read
            key = context if len(context) <= 40 else hashlib.sha256(context.encode()).hexdigest()[:40]
            body = {
                "key": key,
                "state": _BITBUCKET_STATES[state],
                "name": context,
                "description": description,
                "url": target_url or self.repo.web_url,
            }
            await self._call("POST", f"{self._repo_root()}/commit/{sha}/statuses/build", body)
        else:
            raise UsageError(f"unknown forge provider {provider!r}")

    async def list_comments(self, number: int) -> list[Comment]:
        """Every comment of pull request (GitLab: merge request) ``number``, oldest first."""
        path = self._comments_path(number)
        if self.repo.provider == "bitbucket":
            items = await self._bitbucket_pages(path, bitbucket.COMMENT_PAGE_LENGTH)
            return [Comment(int(item["id"]), bitbucket.comment_text(item)) for item in items if not item.get("deleted")]
        found: list[Comment] = []
        size = 50 if self.repo.provider == "gitea" else 100
        for page in range(1, _MAX_PAGES + 1):
            query = {"page": str(page), "limit" if self.repo.provider == "gitea" else "per_page": str(size)}
            batch = await self._call("GET", path, query=query)
            if not isinstance(batch, list):
                raise ForgeError(f"{self._where('GET', path)}: expected a list of comments, got {type(batch).__name__}")
            found.extend(
                Comment(int(item["id"]), str(item.get("body") or ""))
                for item in batch
                if not (self.repo.provider == "gitlab" and item.get("system"))
            )
            if len(batch) < size:
                break
        return found

    async def create_comment(self, number: int, body: str) -> Comment:
        if self.repo.provider == "bitbucket":
            answer = await self._call("POST", self._comments_path(number), bitbucket.comment_payload(body))
            return Comment(int(answer["id"]), bitbucket.comment_text(answer) or body)
        answer = await self._call("POST", self._comments_path(number), {"body": body})
        return Comment(int(answer["id"]), str(answer.get("body") or body))

    async def update_comment(self, number: int, comment_id: int, body: str) -> Comment:
        provider = self.repo.provider
        if provider == "bitbucket":
            path = f"{self._comments_path(number)}/{comment_id}"
            answer = await self._call("PUT", path, bitbucket.comment_payload(body))
            return Comment(int(answer.get("id", comment_id)), bitbucket.comment_text(answer) or body)
        if provider == "gitlab":
            answer = await self._call("PUT", f"{self._comments_path(number)}/{comment_id}", {"body": body})
        else:
            answer = await self._call("PATCH", f"{self._repo_root()}/issues/comments/{comment_id}", {"body": body})
        return Comment(int(answer.get("id", comment_id)), str(answer.get("body") or body))

    async def upsert_comment(self, number: int, body: str, marker: str) -> tuple[Comment, bool]:
        """Update the first comment containing ``marker`` (which ``body`` must contain), or create one.

        Returns the comment and whether it was created."""
        if marker not in body:
            raise UsageError(f"the comment body does not contain its marker {marker!r}")
        for comment in await self.list_comments(number):
            if marker in comment.body:
                return await self.update_comment(number, comment.id, body), False
        return await self.create_comment(number, body), True

    async def find_pull_request(self, head: str, base: str) -> PullRequest | None:
        """The open pull request from branch ``head`` (of this repository) into ``base``, if any."""
        provider, root = self.repo.provider, self._repo_root()
        if provider == "github":
            owner = self.repo.path.split("/", 1)[0]
            found = await self._call(
                "GET", f"{root}/pulls", query={"head": f"{owner}:{head}", "base": base, "state": "open"}
            )
            candidates = [self._pull_request(item) for item in self._items(found, "GET", f"{root}/pulls")]
        elif provider == "gitlab":
            path = f"{root}/merge_requests"
            found = await self._call(
                "GET", path, query={"source_branch": head, "target_branch": base, "state": "opened"}
            )
            candidates = [self._pull_request(item) for item in self._items(found, "GET", path)]
        elif provider == "gitea":
            # Gitea's list has no head filter before 1.22: read the open ones and match
            candidates, size = [], 50
            for page in range(1, _MAX_PAGES + 1):
                batch = self._items(
                    await self._call(
                        "GET", f"{root}/pulls", query={"state": "open", "page": str(page), "limit": str(size)}
                    ),
                    "GET",
                    f"{root}/pulls",
                )
                candidates.extend(self._pull_request(item) for item in batch)
                if len(batch) < size:
                    break
        elif provider == "bitbucket":
            items = await self._bitbucket_pages(
                f"{root}/pullrequests", bitbucket.PULL_REQUEST_PAGE_LENGTH, {"state": "OPEN"}
            )
            candidates = [self._pull_request(item) for item in items]
        else:
            raise UsageError(f"unknown forge provider {provider!r}")
        return next((pr for pr in candidates if pr.head == head and pr.base == base), None)

    async def create_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequest:
        provider, root = self.repo.provider, self._repo_root()
        if provider == "gitlab":
            answer = await self._call(
                "POST",
                f"{root}/merge_requests",
                {"source_branch": head, "target_branch": base, "title": title, "description": body},
            )
        elif provider in ("github", "gitea"):
            answer = await self._call(
                "POST", f"{root}/pulls", {"head": head, "base": base, "title": title, "body": body}
            )
        elif provider == "bitbucket":
            answer = await self._call(
                "POST", f"{root}/pullrequests", bitbucket.pull_request_payload(head, base, title, body)
            )
        else:
            raise UsageError(f"unknown forge provider {provider!r}")
        return self._pull_request(answer)

    async def update_pull_request(self, number: int, title: str, body: str) -> PullRequest:
        provider, root = self.repo.provider, self._repo_root()
        if provider == "gitlab":
            answer = await self._call("PUT", f"{root}/merge_requests/{number}", {"title": title, "description": body})
        elif provider in ("github", "gitea"):
            answer = await self._call("PATCH", f"{root}/pulls/{number}", {"title": title, "body": body})
        elif provider == "bitbucket":
            answer = await self._call("PUT", f"{root}/pullrequests/{number}", {"title": title, "description": body})
        else:
            raise UsageError(f"unknown forge provider {provider!r}")
        return self._pull_request(answer)

    async def upsert_pull_request(self, head: str, base: str, title: str, body: str) -> tuple[PullRequest, bool]:
        """Update the open pull request from ``head`` into ``base``, or open one. Returns it and whether it
        was created."""
        existing = await self.find_pull_request(head, base)
        if existing is not None:
            return await self.update_pull_request(existing.number, title, body), False
        return await self.create_pull_request(head, base, title, body), True

    # ------------------------------------------------------------ plumbing

    async def _bitbucket_pages(self, path: str, size: int, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every item of a Bitbucket list, following each page's ``next`` link."""
        found: list[dict[str, Any]] = []
        answer = await self._call("GET", path, query={**(query or {}), "pagelen": str(size)})
        for _ in range(_MAX_PAGES):
            page = bitbucket.page_values(answer)
            if page is None:
                raise ForgeError(f"{self._where('GET', path)}: expected a page with 'values', got {answer!r:.120}")
            items, next_url = page
            found.extend(items)
            if not next_url:
                break
            if not bitbucket.same_api(next_url, self.repo.api_url):
                raise ForgeError(
                    f"{self._where('GET', path)}: the next page is not on {self.repo.api_url} ({next_url}); "
                    "not following it with the token"
                )
            answer = await self._call("GET", path, url=next_url)
        return found

    def _items(self, answer: Any, method: str, path: str) -> list[dict[str, Any]]:
        if not isinstance(answer, list):
            raise ForgeError(f"{self._where(method, path)}: expected a list, got {type(answer).__name__}")
        return [item for item in answer if isinstance(item, dict)]

    def _pull_request(self, item: dict[str, Any]) -> PullRequest:
        if self.repo.provider == "bitbucket":
            return PullRequest(*bitbucket.pull_request_fields(item))
        if self.repo.provider == "gitlab":
            return PullRequest(
                int(item["iid"]),
                str(item.get("web_url") or ""),
                str(item.get("source_branch") or ""),
                str(item.get("target_branch") or ""),
                str(item.get("title") or ""),
            )
        head, base = item.get("head") or {}, item.get("base") or {}
        return PullRequest(
            int(item["number"]),
            str(item.get("html_url") or ""),
            str(head.get("ref") or ""),
            str(base.get("ref") or ""),
            str(item.get("title") or ""),
        )

    def _repo_root(self) -> str:
        provider, path = self.repo.provider, self.repo.path
        if provider == "gitlab":
            return f"/projects/{urllib.parse.quote(path, safe='')}"
        if provider == "bitbucket":
            return f"/repositories/{path}"
        return f"/repos/{path}"

    def _comments_path(self, number: int) -> str:
        provider = self.repo.provider
        if provider == "gitlab":
            return f"{self._repo_root()}/merge_requests/{number}/notes"
        if provider in ("github", "gitea"):
            return f"{self._repo_root()}/issues/{number}/comments"
        if provider == "bitbucket":
            return f"{self._repo_root()}/pullrequests/{number}/comments"
        raise UsageError(f"unknown forge provider {provider!r}")

    def _headers(self) -> dict[str, str]:
        provider = self.repo.provider
        headers = {"Accept": "application/json", "User-Agent": "tether"}
        if provider == "github":
            headers.update(
                {
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28",
                    "Authorization": f"Bearer {self._token}",
                }
            )
        elif provider == "gitlab":
            headers["PRIVATE-TOKEN"] = self._token
        elif provider == "gitea":
            headers["Authorization"] = f"token {self._token}"
        elif ":" in self._token:
            # Bitbucket: USER:APP_PASSWORD (or EMAIL:API_TOKEN) goes as Basic; an access token as Bearer
            headers["Authorization"] = "Basic " + base64.b64encode(self._token.encode()).decode()
        else:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _where(self, method: str, path: str) -> str:
        return f"{self.repo.provider} {method} {self.repo.api_url}{path}"

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
        url: str = "",
    ) -> Any:
        """``url``: a whole URL the forge gave (a next page), used instead of ``api_url + path``."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = url or self.repo.api_url + path
        where = f"{self.repo.provider} {method} {url}"
        try:
            async with self._session.request(method, url, json=body, params=query, headers=self._headers()) as answer:
                text = await answer.text()
                if answer.status >= 400:
                    raise ForgeError(
                        f"{where} answered {answer.status}: {_reason(text)}"
                        + (
                            " (check the token and its permissions on the repository)"
                            if answer.status in (401, 403)
                            else ""
                        ),
                        status=answer.status,
                        retryable=answer.status == 429 or answer.status >= 500,
                    )
                if not text.strip():
                    return {}
                try:
                    return await answer.json(content_type=None)
                except ValueError:
                    raise ForgeError(f"{where} answered {answer.status} with a body that is not JSON") from None
        except aiohttp.ClientError as error:
            raise ForgeError(f"{where} failed: {error}", retryable=True) from None
        except TimeoutError:
            raise ForgeError(f"{where} timed out", retryable=True) from None


def _reason(text: str) -> str:
    import json

    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200] or "(no body)"
    if isinstance(data, dict):
        message = data.get("message") or data.get("error") or data
        if isinstance(message, dict):
            message = message.get("message") or message
        return str(message)[:200]
    return str(data)[:200]


__all__ = ["Comment", "ForgeClient", "ForgeError", "PullRequest", "StatusState", "token_from_env"]
