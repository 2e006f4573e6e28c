"""Registry notifications: which repositories got a new tag, from the payloads registries send.

==============================  ===============================================================
sender                          payload read
==============================  ===============================================================
CNCF distribution (``registry``)  ``{"events": [{"action": "push", "target": {"repository", "tag"},
                                "request": {"host"}}]}`` (``application/vnd.docker.distribution.events.v1+json``)
Harbor                          ``{"type": "PUSH_ARTIFACT", "event_data": {"resources": [{"resource_url"}]}}``
Docker Hub                      ``{"push_data": {"tag"}, "repository": {"repo_name"}}``
GHCR (GitHub package event)     ``{"package": {"package_type": "CONTAINER", "package_version": {"package_url"}}}``
==============================  ===============================================================

Authenticity: the shared token as ``Authorization: Bearer <token>`` (distribution's ``headers``
setting, Harbor's auth header), ``X-Tether-Token``, or ``?token=`` (Docker Hub sends no headers of
its own); or an HMAC-SHA256 of the body in ``X-Tether-Signature`` / ``X-Hub-Signature-256``
(``sha256=<hex>``, as GitHub signs). Comparisons are constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.images.errors import ImageError
from tether.images.reference import DOCKER_HUB, InvalidImageReference, parse_reference


class NotificationRejected(ImageError):
    status = 400


class NotificationUnauthenticated(NotificationRejected):
    status = 401


class NotificationForbidden(NotificationRejected):
    status = 403


@dataclass(frozen=True)
class PushedImage:
    path: str  # repository path on the registry, e.g. "team/api"
    host: str = ""  # "" when the payload does not say
    tag: str = ""


def verify(secret: bytes, headers: Mapping[str, str], query: Mapping[str, str], body: bytes) -> None:
    """Raise ``NotificationRejected`` unless the request carries the token or a valid HMAC."""
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get("x-tether-signature") or lowered.get("x-hub-signature-256")
    if signature:
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise NotificationForbidden(
                "registry notification: the signature does not match the body signed with the configured secret"
            )
        return
    authorization = lowered.get("authorization", "")
    token = (
        (authorization[7:] if authorization.lower().startswith("bearer ") else authorization)
        or lowered.get("x-tether-token", "")
        or query.get("token", "")
    )
    if not token:
        raise NotificationUnauthenticated(
            "registry notification: no token (Authorization: Bearer, X-Tether-Token "
            "or ?token=) and no signature (X-Tether-Signature)"
        )
    if not hmac.compare_digest(token.strip().encode(), secret):
        raise NotificationForbidden("registry notification: the token does not match the configured secret")


def parse(body: bytes) -> list[PushedImage]:
    """Every pushed tag the payload announces (pulls, deletions and untagged pushes left out)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise NotificationRejected(f"registry notification: the body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise NotificationRejected("registry notification: the body must be a JSON object")
    if isinstance(payload.get("events"), list):
        return _distribution(payload["events"])
    if "event_data" in payload:
        return _harbor(payload)
    if "push_data" in payload:
        return _docker_hub(payload)
    if isinstance(payload.get("package"), dict):
        return _ghcr(payload)
    raise NotificationRejected(
        "registry notification: not a payload of the distribution registry, Harbor, Docker Hub or GHCR"
    )


def _distribution(events: list[Any]) -> list[PushedImage]:
    pushed = []
    for event in events:
        if not isinstance(event, dict) or event.get("action") != "push":
            continue
        target = event.get("target") or {}
        if not target.get("repository") or not target.get("tag"):
            continue  # blob pushes and pushes by digest name no tag
        host = str((event.get("request") or {}).get("host") or "")
        pushed.append(PushedImage(str(target["repository"]), host.lower(), str(target["tag"])))
    return pushed


def _from_url(url: str, tag: str = "") -> list[PushedImage]:
    try:
        reference = parse_reference(url.split("://", 1)[-1])
    except InvalidImageReference:
        return []
    return [PushedImage(reference.name.path, reference.name.host, reference.tag or tag)]


def _harbor(payload: dict[str, Any]) -> list[PushedImage]:
    if str(payload.get("type") or "").upper() not in ("PUSH_ARTIFACT", "PUSHARTIFACT"):
        return []
    pushed = []
    for resource in (payload.get("event_data") or {}).get("resources") or []:
        if isinstance(resource, dict) and resource.get("resource_url"):
            pushed.extend(_from_url(str(resource["resource_url"]), str(resource.get("tag") or "")))
    return pushed


def _docker_hub(payload: dict[str, Any]) -> list[PushedImage]:
    name = str((payload.get("repository") or {}).get("repo_name") or "")
    if not name:
        return []
    path = name if "/" in name else f"library/{name}"
    return [PushedImage(path, DOCKER_HUB, str((payload.get("push_data") or {}).get("tag") or ""))]


def _ghcr(payload: dict[str, Any]) -> list[PushedImage]:
    package = payload["package"]
    if str(package.get("package_type") or "").upper() != "CONTAINER":
        return []
    version = package.get("package_version") or {}
    if version.get("package_url"):
        return _from_url(str(version["package_url"]))
    owner = str((package.get("owner") or {}).get("login") or package.get("namespace") or "")
    name = str(package.get("name") or "")
    return [PushedImage(f"{owner}/{name}".lower(), "ghcr.io")] if owner and name else []


__all__ = [
    "NotificationForbidden",
    "NotificationRejected",
    "NotificationUnauthenticated",
    "PushedImage",
    "parse",
    "verify",
]
