"""Who is signed in, and what they may list.

A bearer token (a ServiceAccount token, or any token the API server accepts) is checked once with
a TokenReview (``authentication.k8s.io/v1``); from then on every request is made by the
dashboard's connection impersonating the user and groups the review named. The token itself is
not kept: the browser holds a random session id (HttpOnly, SameSite=Strict cookie), the server
the identity. ``tether dashboard`` can also print a one-time sign-in link that acts with the
kubeconfig's own credentials, for a person on their own machine.

What a user may see of the Application cache is decided by the API server too: a list of
Applications across all namespaces as the user, else one per namespace, each asking for a
single item; the answers are kept for ``ACCESS_TTL`` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass, field

from tether.apps.ops import APPLICATION
from tether.errors import KubeError
from tether.kube import Forbidden, Kube, ResourceInfo, Unauthorized

TOKEN_REVIEW = ResourceInfo("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, frozenset({"create"}))
SESSION_COOKIE = "tether_session"
SESSION_TTL = 8 * 3600.0
ACCESS_TTL = 15.0
_PROBE_CONCURRENCY = 16


class SignInFailed(KubeError):
    """The token was refused (the message says why, for the sign-in page)."""


@dataclass
class Session:
    user: str
    groups: list[str]
    kube: Kube  # the view that acts as this user
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    expires: float = field(default_factory=lambda: time.monotonic() + SESSION_TTL)
    #: (when checked, None = every namespace, else the namespaces the user may list Applications in)
    _access: tuple[float, frozenset[str] | None] | None = None
    _checked: frozenset[str] = frozenset()
    #: one message for the next page (after an action's redirect): ("done" | "failed", text)
    flash: list[tuple[str, str]] = field(default_factory=list)  # the namespaces the last answer covers
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def visible_namespaces(self, namespaces: list[str]) -> frozenset[str] | None:
        """None when the user may list Applications everywhere, else the namespaces (of ``namespaces``) they may."""
        async with self._lock:
            now = time.monotonic()
            if self._access is not None and now - self._access[0] < ACCESS_TTL:
                cached = self._access[1]
                if cached is None or self._checked.issuperset(namespaces):
                    return cached
            try:
                await self.kube.list_page(APPLICATION, None, limit=1)
                self._access = (now, None)
                return None
            except Forbidden:
                pass
            gate = asyncio.Semaphore(_PROBE_CONCURRENCY)

            async def allowed(namespace: str) -> bool:
                async with gate:
                    try:
                        await self.kube.list_page(APPLICATION, namespace, limit=1)
                        return True
                    except Forbidden:
                        return False

            answers = await asyncio.gather(*(allowed(ns) for ns in namespaces))
            visible = frozenset(ns for ns, ok in zip(namespaces, answers, strict=True) if ok)
            self._checked = frozenset(namespaces)
            self._access = (now, visible)
            return visible


class Sessions:
    """The signed-in sessions of one dashboard process (kept in memory: a restart signs everyone out)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._sessions: dict[str, Session] = {}
        self._bearer: dict[str, tuple[float, Session]] = {}  # sha256 of a header token -> session
        self._local_codes: set[str] = set()

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is not None and session.expires < time.monotonic():
            self._sessions.pop(session_id, None)
            return None
        return session

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def sign_in(self, token: str) -> tuple[str, Session]:
        """A new session for a bearer token; ``SignInFailed`` when the API server does not accept it."""
        user, groups = await self.review(token)
        return self._new(Session(user, groups, self.kube.impersonate(user, groups)))

    async def bearer(self, token: str) -> Session:
        """The session of an ``Authorization: Bearer`` header (reviewed once a minute, not per request)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        known = self._bearer.get(digest)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        user, groups = await self.review(token)
        session = Session(user, groups, self.kube.impersonate(user, groups))
        self._bearer[digest] = (time.monotonic() + 60.0, session)
        return session

    async def review(self, token: str) -> tuple[str, list[str]]:
        token = token.strip()
        if not token:
            raise SignInFailed("no token given: paste a bearer token (kubectl create token NAME -n NAMESPACE)")
        try:
            answer = await self.kube.create(
                TOKEN_REVIEW,
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
            )
        except (Forbidden, Unauthorized) as error:
            raise SignInFailed(
                f"the dashboard may not review tokens (it needs create on tokenreviews.authentication.k8s.io): {error}"
            ) from None
        status = answer.get("status") or {}
        if not status.get("authenticated"):
            raise SignInFailed(f"the API server did not accept the token: {status.get('error') or 'not authenticated'}")
        user = status.get("user") or {}
        if not user.get("username"):
            raise SignInFailed("the API server accepted the token but named no user")
        return str(user["username"]), [str(g) for g in user.get("groups") or []]

    def local_code(self) -> str:
        """A one-time code that signs in with the dashboard's own (kubeconfig) credentials."""
        code = secrets.token_urlsafe(24)
        self._local_codes.add(code)
        return code

    def redeem_local(self, code: str) -> tuple[str, Session] | None:
        if code not in self._local_codes:
            return None
        self._local_codes.discard(code)
        return self._new(Session("kubeconfig user", [], self.kube))

    def _new(self, session: Session) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = session
        return session_id, session
