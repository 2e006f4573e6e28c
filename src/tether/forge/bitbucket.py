"""Bitbucket Cloud (API 2.0) shapes: comment and pull-request bodies, and the paged ``values`` + ``next`` lists.

Bitbucket renders Markdown with raw HTML escaped, so an HTML comment would show as text in the
comment. A Markdown link reference definition (``[//]: # (...)``) renders as nothing there and on
every CommonMark renderer, and ``content.raw`` keeps it as written: that is the marker for
Bitbucket bodies.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

#: the largest ``pagelen`` Bitbucket serves for pull-request comments and for pull requests
COMMENT_PAGE_LENGTH, PULL_REQUEST_PAGE_LENGTH = 100, 50


def hidden_marker(name: str) -> str:
    """A marker line Bitbucket's Markdown shows nothing of: ``[//]: # (name)``."""
    return f"[//]: # ({name})"


def comment_payload(body: str) -> dict[str, Any]:
    return {"content": {"raw": body}}


def comment_text(item: dict[str, Any]) -> str:
    return str((item.get("content") or {}).get("raw") or "")


def pull_request_payload(head: str, base: str, title: str, body: str) -> dict[str, Any]:
    return {
        "title": title,
        "description": body,
        "source": {"branch": {"name": head}},
        "destination": {"branch": {"name": base}},
    }


def pull_request_fields(item: dict[str, Any]) -> tuple[int, str, str, str, str]:
    """(id, web page, source branch, destination branch, title) of a Bitbucket pull request."""

    def branch(side: str) -> str:
        return str(((item.get(side) or {}).get("branch") or {}).get("name") or "")

    web = str(((item.get("links") or {}).get("html") or {}).get("href") or "")
    return int(item["id"]), web, branch("source"), branch("destination"), str(item.get("title") or "")


def page_values(answer: Any) -> tuple[list[dict[str, Any]], str] | None:
    """The ``values`` of one page and its ``next`` link ("" on the last page); None when ``answer`` is no page."""
    if not isinstance(answer, dict) or not isinstance(answer.get("values"), list):
        return None
    return [item for item in answer["values"] if isinstance(item, dict)], str(answer.get("next") or "")


def same_api(next_url: str, api_url: str) -> bool:
    """Does a ``next`` link stay on the API the client was given (so the token is never sent elsewhere)?"""
    target, base = urllib.parse.urlsplit(next_url), urllib.parse.urlsplit(api_url)
    return (target.scheme, target.netloc) == (base.scheme, base.netloc) and (
        target.path == base.path or target.path.startswith(base.path.rstrip("/") + "/")
    )


__all__ = [
    "COMMENT_PAGE_LENGTH",
    "PULL_REQUEST_PAGE_LENGTH",
    "comment_payload",
    "comment_text",
    "hidden_marker",
    "page_values",
    "pull_request_fields",
    "pull_request_payload",
    "same_api",
]
