"""Push webhooks from Git hosts: verify the request, refuse replays, read which repository and ref moved.

==========  ==============================================  =========================================
provider    authenticity                                    delivery id (replay protection)
==========  ==============================================  =========================================
github      ``X-Hub-Signature-256: sha256=<hex HMAC>``       ``X-GitHub-Delivery``
gitea       ``X-Gitea-Signature: <hex HMAC>``                ``X-Gitea-Delivery``
gitlab      ``X-Gitlab-Token`` equal to the secret           ``X-Gitlab-Event-UUID``
bitbucket   ``X-Hub-Signature: sha256=<hex HMAC>``           ``X-Request-UUID`` (Cloud), ``X-Request-Id``
generic     ``X-Tether-Signature: sha256=<hex HMAC>``        ``X-Tether-Delivery`` (required)
==========  ==============================================  =========================================

Every HMAC is HMAC-SHA256 of the raw body with the provider's secret; comparisons are constant
time. Checks run cheapest-first and a forged request never reaches the replay cache, so it cannot
poison delivery ids. A verified request that is not a push (GitHub's ``ping``, a branch deletion,
another event) yields ``None``: acknowledged, nothing to refresh.

``PushEvent.urls`` holds every clone URL the payload names, normalised by ``normalize_repo_url``
so an Application whose ``spec.source.url`` is the https, ssh or scp-like form of the same
repository matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.errors import TetherError

PROVIDERS = ("github", "gitea", "gitlab", "bitbucket", "generic")
MAX_BODY = 1024 * 1024
ZERO_SHA = re.compile(r"^0+$")


@dataclass(frozen=True)
class PushEvent:
    urls: frozenset[str]  # normalised (normalize_repo_url)
    ref: str  # branch or tag name ("main", "v1.2.0"); "" when the payload names none
    commit: str  # the pushed head commit; "" when unknown
    delivery: str
    provider: str = ""
    is_tag: bool = False
    received_at: float = field(default_factory=time.time, compare=False)  # epoch seconds


class WebhookRejected(TetherError):
    """A webhook request was refused; ``status`` is the HTTP answer, ``reason`` the metric label."""

    status = 400
    reason = "bad-request"


class Unauthenticated(WebhookRejected):
    status, reason = 401, "missing-signature"


class BadSignature(WebhookRejected):
    status, reason = 403, "bad-signature"


class NotConfigured(WebhookRejected):
    status, reason = 403, "not-configured"


class Replayed(WebhookRejected):
    status, reason = 409, "replayed"


class TooLarge(WebhookRejected):
    status, reason = 413, "too-large"


class BadPayload(WebhookRejected):
    status, reason = 400, "bad-payload"


class UnknownProvider(WebhookRejected):
    status, reason = 404, "unknown-provider"


@dataclass(frozen=True)
class WebhookSecrets:
    """Per-provider shared secrets; a provider without one refuses every request."""

    github: bytes | None = None
    gitlab: bytes | None = None
    gitea: bytes | None = None
    bitbucket: bytes | None = None
    generic: bytes | None = None

    @classmethod
    def from_secret(cls, obj: dict[str, Any]) -> WebhookSecrets:
        """Read keys github, gitlab, gitea, bitbucket, generic of a Secret (``data`` base64, or
        ``stringData``). A trailing newline (left by ``--from-file`` of an edited file) is dropped."""
        data = obj.get("data") or {}
        string_data = obj.get("stringData") or {}
        values: dict[str, bytes | None] = {}
        for provider in PROVIDERS:
            raw: bytes | None = None
            if provider in data and data[provider] is not None:
                raw = base64.b64decode(data[provider])
            elif provider in string_data and string_data[provider] is not None:
                raw = str(string_data[provider]).encode()
            if raw is not None:
                raw = raw.rstrip(b"\r\n")
            values[provider] = raw or None
        return cls(**values)

    def for_provider(self, provider: str) -> bytes | None:
        return getattr(self, provider, None)

    def __repr__(self) -> str:  # never print the values
        configured = [p for p in PROVIDERS if self.for_provider(p)]
        return f"WebhookSecrets(configured={configured})"


# ------------------------------------------------------------------ URL normalisation

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?!//)(?P<path>.+)$")


def normalize_repo_url(url: str) -> str:
    """One spelling per repository: ``host/org/repo`` (lower case, no scheme, user, port, ``.git``
    or trailing slash); a local repository (path or file://) becomes its absolute path without ``.git``.

    ``https://host/org/repo``, ``https://host/org/repo.git``, ``ssh://git@host:22/org/repo.git``
    and ``git@host:org/repo.git`` all give ``host/org/repo``."""
    url = url.strip()
    if url.startswith("file://"):
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        return _strip_repo_suffix(path) or "/"
    if url.startswith("/"):
        return _strip_repo_suffix(url) or "/"
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        host, path = (parts.hostname or "").lower(), urllib.parse.unquote(parts.path)
    else:
        match = _SCP_LIKE.match(url)
        if not match:
            return _strip_repo_suffix(url.lower())
        host, path = match["host"].lower(), match["path"]
    path = _strip_repo_suffix("/" + path.lstrip("/")).lower()
    return f"{host}{path}"


def _strip_repo_suffix(path: str) -> str:
    path = path.rstrip("/")
    return path.removesuffix(".git").rstrip("/")


# ------------------------------------------------------------------ payloads


def _short_ref(ref: str) -> tuple[str, bool]:
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/"), False
    if ref.startswith("refs/tags/"):
        return ref.removeprefix("refs/tags/"), True
    return ref, False


def _urls(values: Iterable[Any]) -> frozenset[str]:
    return frozenset(normalize_repo_url(v) for v in values if isinstance(v, str) and v)


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _github_like(payload: dict[str, Any], event: str) -> tuple[frozenset[str], str, str, bool] | None:
    """GitHub and Gitea: ``ref``, ``after``, repository ``clone_url`` / ``ssh_url`` / ``html_url``."""
    if event not in ("push", ""):
        return None
    if payload.get("deleted") or ZERO_SHA.match(str(payload.get("after") or "")):
        return None
    repo = payload.get("repository") or {}
    urls = _urls(repo.get(k) for k in ("clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url"))
    ref, is_tag = _short_ref(str(payload.get("ref") or ""))
    return urls, ref, str(payload.get("after") or ""), is_tag


def _gitlab(payload: dict[str, Any], event: str) -> tuple[frozenset[str], str, str, bool] | None:
    """GitLab push and tag push hooks: ``ref``, ``checkout_sha`` (or ``after``), project/repository URLs."""
    kind = payload.get("object_kind") or ""
    if kind not in ("push", "tag_push") and event not in ("Push Hook", "Tag Push Hook"):
        return None
    commit = str(payload.get("checkout_sha") or payload.get("after") or "")
    if not commit or ZERO_SHA.match(commit):
        return None  # a deleted branch or tag
    keys = ("git_http_url", "git_ssh_url", "http_url", "ssh_url", "web_url", "url", "homepage")
    urls = _urls([*(_dig(payload, "project", k) for k in keys), *(_dig(payload, "repository", k) for k in keys)])
    ref, is_tag = _short_ref(str(payload.get("ref") or ""))
    return urls, ref, commit, is_tag or kind == "tag_push"


def _bitbucket(payload: dict[str, Any], event: str) -> tuple[frozenset[str], str, str, bool] | None:
    """Bitbucket Cloud ``repo:push`` (push.changes[].new) and Data Center ``repo:refs_changed`` (changes[])."""
    if event not in ("repo:push", "repo:refs_changed", ""):
        return None
    repo = payload.get("repository") or {}
    links = repo.get("links") or {}
    candidates: list[Any] = [_dig(links, "html", "href")]
    clone = links.get("clone")
    if isinstance(clone, list):
        candidates += [c.get("href") for c in clone if isinstance(c, dict)]
    urls = _urls(candidates)
    for change in _dig(payload, "push", "changes") or []:
        new = (change or {}).get("new") or {}
        commit = str(_dig(new, "target", "hash") or "")
        if new.get("name") and commit:
            return urls, str(new["name"]), commit, new.get("type") == "tag"
    for change in payload.get("changes") or []:
        if (change or {}).get("type") == "DELETE":
            continue
        ref = _dig(change, "ref", "id") or ""
        commit = str((change or {}).get("toHash") or "")
        if ref and commit and not ZERO_SHA.match(commit):
            name, is_tag = _short_ref(str(ref))
            return urls, name, commit, is_tag
    return None


def _generic(payload: dict[str, Any], event: str) -> tuple[frozenset[str], str, str, bool] | None:
    url = payload.get("url")
    if not isinstance(url, str) or not url:
        raise BadPayload(
            "generic webhook: the body must be JSON with a non-empty string 'url' (and optional 'ref', 'commit')"
        )
    for key in ("ref", "commit"):
        if payload.get(key) is not None and not isinstance(payload[key], str):
            raise BadPayload(f"generic webhook: '{key}' must be a string")
    ref, is_tag = _short_ref(payload.get("ref") or "")
    return _urls([url]), ref, payload.get("commit") or "", is_tag


_PARSERS: dict[str, Callable[[dict[str, Any], str], tuple[frozenset[str], str, str, bool] | None]] = {
    "github": _github_like,
    "gitea": _github_like,
    "gitlab": _gitlab,
    "bitbucket": _bitbucket,
    "generic": _generic,
}
_EVENT_HEADER = {
    "github": "X-GitHub-Event",
    "gitea": "X-Gitea-Event",
    "gitlab": "X-Gitlab-Event",
    "bitbucket": "X-Event-Key",
    "generic": "",
}
_DELIVERY_HEADERS = {
    "github": ("X-GitHub-Delivery",),
    "gitea": ("X-Gitea-Delivery",),
    "gitlab": ("X-Gitlab-Event-UUID",),
    "bitbucket": ("X-Request-UUID", "X-Request-Id"),
    "generic": ("X-Tether-Delivery",),
}


# ------------------------------------------------------------------ verification


def sign(secret: bytes, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``body``: what senders put after ``sha256=``."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _check_hmac(secret: bytes, body: bytes, given: str | None, header: str, prefix: str) -> None:
    if not given:
        raise Unauthenticated(f"missing {header} header")
    if prefix:
        if not given.startswith(prefix):
            raise BadSignature(f"{header} must be '{prefix}<hex HMAC-SHA256 of the body>'")
        given = given[len(prefix) :]
    if not hmac.compare_digest(sign(secret, body).encode(), given.strip().lower().encode()):
        raise BadSignature(f"{header} does not match the body signed with the configured secret")


class ReplayCache:
    """Delivery ids seen within ``window`` seconds, at most ``capacity`` of them (oldest forgotten first)."""

    def __init__(
        self, window: float = 3600.0, capacity: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window, self.capacity, self.clock = window, capacity, clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen_before(self, key: str) -> bool:
        """True when ``key`` was seen within the window; records it otherwise."""
        now = self.clock()
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at <= self.window:
                break
            del self._seen[oldest]
        if key in self._seen:
            return True
        self._seen[key] = now
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._seen)


class WebhookVerifier:
    """Verifies and parses webhook requests; ``rejections`` counts refusals by reason."""

    def __init__(self, secrets: WebhookSecrets, *, replay: ReplayCache | None = None, max_body: int = MAX_BODY) -> None:
        self.secrets = secrets
        self.replay = replay or ReplayCache()
        self.max_body = max_body
        self.rejections: Counter[str] = Counter()

    def verify(self, provider: str, headers: Mapping[str, str], body: bytes) -> PushEvent | None:
        """The push a request announces, ``None`` for a verified request that is not a push.

        Raises a ``WebhookRejected`` subclass (counted in ``rejections``) for anything refused."""
        try:
            return self._verify(provider, headers, body)
        except WebhookRejected as error:
            self.rejections[error.reason] += 1
            raise

    def _verify(self, provider: str, headers: Mapping[str, str], body: bytes) -> PushEvent | None:
        if provider not in PROVIDERS:
            raise UnknownProvider(f"unknown webhook provider {provider!r}; use one of {', '.join(PROVIDERS)}")
        if len(body) > self.max_body:
            raise TooLarge(f"{provider} webhook: body of {len(body)} bytes is over the {self.max_body} byte limit")
        secret = self.secrets.for_provider(provider)
        if not secret:
            raise NotConfigured(f"{provider} webhooks are not enabled: the webhook Secret has no '{provider}' key")
        self._authenticate(provider, secret, headers, body)
        delivery = next((v for h in _DELIVERY_HEADERS[provider] if (v := _header(headers, h))), "")
        if not delivery:
            if provider == "generic":
                raise BadPayload("generic webhook: missing X-Tether-Delivery header (a unique id per request)")
            delivery = "sha256:" + hashlib.sha256(body).hexdigest()  # the same body twice is a replay
        if self.replay.seen_before(f"{provider}\0{delivery}"):
            raise Replayed(f"{provider} webhook: delivery {delivery} was already received")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError) as error:
            raise BadPayload(f"{provider} webhook: the body is not JSON: {error}") from None
        if not isinstance(payload, dict):
            raise BadPayload(f"{provider} webhook: the body must be a JSON object")
        event_header = _EVENT_HEADER[provider]
        event = (_header(headers, event_header) or "") if event_header else ""
        parsed = _PARSERS[provider](payload, event)
        if parsed is None:
            return None
        urls, ref, commit, is_tag = parsed
        if not urls:
            raise BadPayload(f"{provider} webhook: the payload names no repository URL")
        return PushEvent(urls=urls, ref=ref, commit=commit, delivery=delivery, provider=provider, is_tag=is_tag)

    @staticmethod
    def _authenticate(provider: str, secret: bytes, headers: Mapping[str, str], body: bytes) -> None:
        if provider == "github":
            _check_hmac(secret, body, _header(headers, "X-Hub-Signature-256"), "X-Hub-Signature-256", "sha256=")
        elif provider == "gitea":
            _check_hmac(secret, body, _header(headers, "X-Gitea-Signature"), "X-Gitea-Signature", "")
        elif provider == "bitbucket":
            _check_hmac(secret, body, _header(headers, "X-Hub-Signature"), "X-Hub-Signature", "sha256=")
        elif provider == "generic":
            _check_hmac(secret, body, _header(headers, "X-Tether-Signature"), "X-Tether-Signature", "sha256=")
        else:
            token = _header(headers, "X-Gitlab-Token")
            if not token:
                raise Unauthenticated("missing X-Gitlab-Token header")
            if not hmac.compare_digest(token.encode(), secret):
                raise BadSignature("X-Gitlab-Token does not match the configured secret")


def matches(event: PushEvent, url: str, ref_kind: str | None, ref_value: str | None) -> bool:
    """Does a push concern a source (its URL and ref)? A source without a ref (HEAD), a semver
    range (any new tag may match) or a commit pin matches any push to the repository."""
    if normalize_repo_url(url) not in event.urls:
        return False
    if ref_kind == "branch":
        return not event.is_tag and (not event.ref or event.ref == ref_value)
    if ref_kind == "tag":
        return event.is_tag and (not event.ref or event.ref == ref_value)
    if ref_kind == "semver":
        return event.is_tag or not event.ref
    return True


__all__ = [
    "MAX_BODY",
    "PROVIDERS",
    "BadPayload",
    "BadSignature",
    "NotConfigured",
    "PushEvent",
    "ReplayCache",
    "Replayed",
    "TooLarge",
    "Unauthenticated",
    "UnknownProvider",
    "WebhookRejected",
    "WebhookSecrets",
    "WebhookVerifier",
    "matches",
    "normalize_repo_url",
    "sign",
]
