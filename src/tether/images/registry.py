"""A client for the OCI distribution API: list tags, read manifest digests.

Authentication follows the registry's lead: a request goes out anonymously (or with a cached
token); a ``401`` names the scheme in ``WWW-Authenticate``. ``Basic`` is answered with the
credentials; ``Bearer realm=...,service=...,scope=...`` sends the credentials to the token
service named by ``realm`` (as Docker Hub, GHCR and Harbor do) and retries with the token it
returns. Tokens are cached per repository until they expire.

Tag lists are paged: each page's ``Link: <...>; rel="next"`` header names the next one. ``429`` and
``503`` answers are retried after the ``Retry-After`` the registry asked for (capped), then given up
with ``RegistryRateLimited``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2 as httpx

from tether.images.errors import (
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryUnauthorized,
    RegistryUnreachable,
)
from tether.images.reference import ImageName

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
MAX_PAGES = 10_000


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(username={self.username!r})"


@dataclass
class RegistryOptions:
    credentials: Credentials | None = None
    insecure: bool = False  # plain HTTP
    ca_pem: bytes | None = None  # extra CA to trust (spec.certSecretRef)
    timeout: float = 20.0
    page_size: int = 1000
    max_retries: int = 3
    max_retry_after: float = 30.0


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class RegistryStats:
    requests: int = 0
    token_requests: int = 0
    pages: int = 0
    retries: int = 0


@dataclass
class RegistryClient:
    """One client per registry host and set of credentials; ``async with`` closes it."""

    options: RegistryOptions = field(default_factory=RegistryOptions)
    stats: RegistryStats = field(default_factory=RegistryStats)

    def __post_init__(self) -> None:
        verify: Any = True
        if self.options.ca_pem:
            context = ssl.create_default_context()
            context.load_verify_locations(cadata=self.options.ca_pem.decode())
            verify = context
        self._http = httpx.AsyncClient(timeout=self.options.timeout, verify=verify, follow_redirects=True)
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._basic: set[str] = set()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    def _base(self, image: ImageName) -> str:
        return f"{'http' if self.options.insecure else 'https'}://{image.api_host}"

    # ------------------------------------------------------------ public

    async def list_tags(self, image: ImageName) -> list[str]:
        """Every tag of the repository, all pages read, in the registry's order."""
        url: str | None = f"{self._base(image)}/v2/{image.path}/tags/list?n={self.options.page_size}"
        tags: list[str] = []
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= MAX_PAGES:
                raise RegistryError(
                    f"{image}: the tag list pages loop (page {url} repeated)", host=image.host, repository=image.path
                )
            seen.add(url)
            response = await self._request("GET", url, image)
            self.stats.pages += 1
            try:
                body = response.json()
            except ValueError:
                raise RegistryError(
                    f"{image}: the tag list at {url} is not JSON",
                    host=image.host,
                    repository=image.path,
                    status=response.status_code,
                ) from None
            tags.extend(str(tag) for tag in body.get("tags") or [])
            url = _next_page(response, url)
        return tags

    async def manifest_digest(self, image: ImageName, tag: str) -> str:
        """The digest (``sha256:...``) of the manifest the tag points at."""
        url = f"{self._base(image)}/v2/{image.path}/manifests/{tag}"
        response = await self._request("HEAD", url, image, headers={"Accept": MANIFEST_TYPES})
        digest = response.headers.get("Docker-Content-Digest", "")
        if digest:
            return digest
        response = await self._request("GET", url, image, headers={"Accept": MANIFEST_TYPES})
        return "sha256:" + hashlib.sha256(response.content).hexdigest()

    # ------------------------------------------------------------ requests

    async def _request(
        self,
        method: str,
        url: str,
        image: ImageName,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        scope = f"repository:{image.path}:pull"
        retries = 0
        answered_challenge = False
        while True:
            sent = dict(headers or {})
            auth = self._authorization(image, scope)
            if auth:
                sent["Authorization"] = auth
            response = await self._send(method, url, image, sent, content)
            if response.status_code == 401 and not answered_challenge:
                answered_challenge = True
                if await self._answer_challenge(response, image, scope):
                    continue
            if response.status_code in (429, 503) and retries < self.options.max_retries:
                retries += 1
                self.stats.retries += 1
                await asyncio.sleep(_retry_after(response, retries, self.options.max_retry_after))
                continue
            if response.status_code < 400:
                return response
            raise _error(response, image, url, self.options.credentials is not None)

    async def _send(
        self, method: str, url: str, image: ImageName, headers: dict[str, str], content: bytes | None
    ) -> httpx.Response:
        self.stats.requests += 1
        try:
            return await self._http.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as error:
            raise RegistryUnreachable(
                f"{image}: {method} {_redact(url)} failed: {error.__class__.__name__}: {error}",
                host=image.host,
                repository=image.path,
            ) from None

    def _authorization(self, image: ImageName, scope: str) -> str:
        token = self._tokens.get((image.api_host, scope))
        if token is not None and token.expires_at > time.monotonic():
            return f"Bearer {token.value}"
        if image.api_host in self._basic and self.options.credentials is not None:
            return _basic(self.options.credentials)
        return ""

    async def _answer_challenge(self, response: httpx.Response, image: ImageName, scope: str) -> bool:
        """Prepare credentials for the retry the challenge asks for; False when nothing can be tried."""
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        if scheme.lower() == "basic":
            if self.options.credentials is None:
                return False
            self._basic.add(image.api_host)
            return True
        if scheme.lower() != "bearer" or not params.get("realm"):
            return False
        query = {"service": params.get("service", ""), "scope": params.get("scope") or scope}
        realm = params["realm"]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        headers = {"Authorization": _basic(self.options.credentials)} if self.options.credentials else {}
        self.stats.token_requests += 1
        try:
            answer = await self._http.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise RegistryUnreachable(
                f"{image}: the token service {realm} could not be reached: {error}",
                host=image.host,
                repository=image.path,
            ) from None
        if answer.status_code in (401, 403):
            raise RegistryUnauthorized(
                f"{image}: the token service {realm} refused the credentials (HTTP {answer.status_code}); "
                f"check the username and password in the ImageRepository's spec.secretRef",
                host=image.host,
                repository=image.path,
                status=answer.status_code,
            )
        if answer.status_code >= 400:
            raise RegistryError(
                f"{image}: the token service {realm} answered HTTP {answer.status_code}",
                host=image.host,
                repository=image.path,
                status=answer.status_code,
            )
        try:
            body = answer.json()
        except ValueError:
            raise RegistryError(
                f"{image}: the token service {realm} answered with no JSON", host=image.host, repository=image.path
            ) from None
        value = body.get("token") or body.get("access_token")
        if not value:
            raise RegistryError(
                f"{image}: the token service {realm} answered without a token", host=image.host, repository=image.path
            )
        lifetime = float(body.get("expires_in") or 60)
        self._tokens[(image.api_host, scope)] = _Token(str(value), time.monotonic() + max(lifetime - 5, 1))
        return True


def _basic(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _next_page(response: httpx.Response, current: str) -> str | None:
    match = _LINK_NEXT.search(response.headers.get("Link", ""))
    return urllib.parse.urljoin(current, match.group(1)) if match else None


def _retry_after(response: httpx.Response, attempt: int, cap: float) -> float:
    text = response.headers.get("Retry-After", "").strip()
    wait: float | None = None
    if text:
        try:
            wait = float(text)
        except ValueError:
            try:
                wait = parsedate_to_datetime(text).timestamp() - time.time()
            except (TypeError, ValueError):
                wait = None
    if wait is None:
        wait = 0.5 * 2 ** (attempt - 1)
    return min(max(wait, 0.0), cap)


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=parts.hostname or "" if parts.password else parts.netloc).geturl()


def _error(response: httpx.Response, image: ImageName, url: str, had_credentials: bool) -> RegistryError:
    status = response.status_code
    detail = ""
    try:
        errors = (response.json() or {}).get("errors") or []
        detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        detail = ""
    where = f"{image}: {response.request.method} {_redact(url)} answered HTTP {status}"
    suffix = f" ({detail})" if detail else ""
    common = {"host": image.host, "repository": image.path, "status": status}
    if status in (401, 403):
        hint = (
            "the credentials in the ImageRepository's spec.secretRef were refused; check username and password"
            if had_credentials
            else "the registry wants credentials: set spec.secretRef to a docker-registry "
            "Secret (.dockerconfigjson) for this host"
        )
        return RegistryUnauthorized(f"{where}{suffix}: {hint}", **common)
    if status == 404:
        return RegistryNotFound(f"{where}{suffix}: check spec.image (the repository does not exist there)", **common)
    if status in (429, 503):
        return RegistryRateLimited(f"{where}{suffix}: still limited after the Retry-After waits", **common)
    return RegistryError(f"{where}{suffix}", **common)


def credentials_from_dockerconfig(config: bytes | str, host: str) -> Credentials | None:
    """The credentials a ``.dockerconfigjson`` holds for ``host`` (``auths`` keyed by host or URL)."""
    try:
        data = json.loads(config)
    except ValueError:
        raise RegistryError(".dockerconfigjson is not JSON", host=host) from None
    auths = (data or {}).get("auths") or {}
    aliases = {host}
    if host in ("docker.io", "registry-1.docker.io"):
        aliases |= {"docker.io", "registry-1.docker.io", "index.docker.io", "https://index.docker.io/v1/"}
    for key, entry in auths.items():
        key_host = urllib.parse.urlsplit(key if "//" in key else f"//{key}").netloc or key
        if key not in aliases and key_host not in aliases:
            continue
        entry = entry or {}
        if entry.get("username") is not None:
            return Credentials(str(entry["username"]), str(entry.get("password") or ""))
        if entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return Credentials(user, password)
    return None


__all__ = ["Credentials", "RegistryClient", "RegistryOptions", "RegistryStats", "credentials_from_dockerconfig"]
