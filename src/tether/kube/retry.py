"""When and how long ``Kube`` retries a failed request.

A request is retried when the failure is transient and repeating it cannot do harm:

* 429 Too Many Requests, for every method: the server (API priority and fairness, or a
  rate limiter in front of it) turned the request away before acting on it;
* 500, 502, 503, 504 and connection failures after the request may have been sent (reset,
  remote protocol error, read timeout), for idempotent requests only: GET, PUT, DELETE and
  PATCH other than JSON patch. Server-side apply and merge patches converge on the same
  result when repeated; a PUT carrying ``metadata.resourceVersion`` may come back as 409
  Conflict when its first attempt did land, which the caller sees as it would any conflict,
  and a repeated DELETE whose first attempt landed reports the object as already gone;
* connection failures before anything was sent (connect error or timeout, no free pooled
  connection), for every method.

POST (create, used for ``generateName`` objects) is not idempotent: after a 5xx or a broken
connection the object may exist already, and a second POST would make a second one. So a
POST is repeated only when the server certainly did not act on it (429, or no connection).

Waits use exponential backoff with full jitter (uniform in ``[0, min(cap, base * 2**n)]``),
so many clients failing at once do not come back in step; a ``Retry-After`` header replaces
the backoff, capped at ``cap``. Retries stop after ``attempts`` tries or when the next wait
would pass ``budget`` seconds since the first try. Certificate errors are never retried: they
do not go away by themselves. Watches are not retried here; their callers reconnect.
"""

from __future__ import annotations

import random
import ssl
from dataclasses import dataclass

import httpx2 as httpx

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH"})
# raised before the request left this process: safe to repeat even a POST
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAYBE_SENT = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadTimeout, httpx.WriteTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; the defaults suit a command line run."""

    attempts: int = 8  # tries in all, the first included; 1 disables retries
    base: float = 0.2  # seconds: the backoff ceiling of the first retry, doubled for each further one
    cap: float = 5.0  # seconds: the longest single wait, Retry-After included
    budget: float = 60.0  # seconds from the first try after which no further try starts
    #: tries in all when no connection could be made at all: an API server that refuses or does
    #: not answer is rarely back within seconds, and a command should say so quickly
    unreachable_attempts: int = 3

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.unreachable_attempts < 1 or self.base < 0 or self.cap < 0 or self.budget < 0:
            raise ValueError(f"RetryPolicy needs attempts >= 1 and non-negative times, got {self}")

    def delay(self, retry: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        ceiling = min(self.cap, self.base * 2 ** (retry - 1))
        return (rng or random).uniform(0.0, ceiling)


def idempotent(method: str, content_type: str | None) -> bool:
    """Is repeating this request harmless? (JSON patch operations such as ``add`` to a list are not.)"""
    if method == "PATCH":
        return content_type != "application/json-patch+json"
    return method in _IDEMPOTENT


def status_retryable(status: int, method: str, content_type: str | None) -> bool:
    if status == 429:
        return True
    return status in RETRYABLE_STATUS and idempotent(method, content_type)


def never_connected(error: Exception) -> bool:
    """No connection could be made (refused, no route, connect timeout): nothing was sent."""
    return isinstance(error, _NOT_SENT)


def transport_retryable(error: Exception, method: str, content_type: str | None) -> bool:
    if _certificate_problem(error):
        return False
    if isinstance(error, _NOT_SENT):
        return True
    return isinstance(error, _MAYBE_SENT) and idempotent(method, content_type)


def _certificate_problem(error: BaseException) -> bool:
    chain: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in chain:
        if isinstance(link, ssl.SSLCertVerificationError):
            return True
        chain.add(id(link))
        link = link.__cause__ or link.__context__
    return False
