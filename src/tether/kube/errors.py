"""Typed errors of the Kubernetes API, one class per kind of failure.

::

    KubeError (tether.errors)            any failed request; .code .reason .retry_after .status
     ├── Unreachable                     no HTTP response (connect error, reset, timeout)
     ├── UnsafeName                      refused before sending: a name or namespace that could
     │                                   address something other than the one object meant
     ├── BadRequest        400
     ├── Unauthorized      401
     ├── Forbidden         403
     ├── NotFound          404
     ├── Conflict          409           reason Conflict (resourceVersion precondition, ...)
     │    ├── FieldConflict              server-side apply: fields owned by another manager
     │    └── AlreadyExists              reason AlreadyExists
     ├── Gone              410           watch/list resourceVersion too old: relist
     ├── Invalid           422
     ├── TooManyRequests   429           retryable; honour .retry_after
     └── ServerError       5xx           retryable

Callers catch the narrowest class they can act on; ``str(error)`` names the request and the
server's message.
"""

from __future__ import annotations

from typing import Any

from tether.errors import KubeError


class Unreachable(KubeError):
    """No HTTP response: the API server could not be reached, or the connection broke."""


class UnsafeName(KubeError):
    """A name, namespace or path segment that is not safe in a request path; nothing was sent."""


class BadRequest(KubeError):
    """400: the request was malformed."""


class Unauthorized(KubeError):
    """401: no or wrong credentials."""


class Forbidden(KubeError):
    """403: RBAC (or admission) denied the request."""


class NotFound(KubeError):
    """404: the object (or its kind) does not exist."""


class Conflict(KubeError):
    """409: a precondition (resourceVersion, uid) failed or the object changed meanwhile."""


class FieldConflict(Conflict):
    """409 from server-side apply: fields are owned by another field manager (force takes them)."""


class AlreadyExists(Conflict):
    """409 AlreadyExists: a create of an object that exists."""


class Gone(KubeError):
    """410: the resourceVersion asked for is too old (a watch must relist)."""


class Invalid(KubeError):
    """422: the object failed the server's validation."""


class TooManyRequests(KubeError):
    """429: throttled; retry after ``retry_after`` seconds."""


class ServerError(KubeError):
    """5xx: the server failed; usually transient."""


_BY_CODE: dict[int, type[KubeError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}

RETRYABLE: tuple[type[KubeError], ...] = (TooManyRequests, ServerError, Unreachable)


def error_for(
    message: str,
    code: int,
    reason: str = "",
    status: dict[str, Any] | None = None,
    retry_after: float | None = None,
) -> KubeError:
    """The typed error for an HTTP status code and Status reason."""
    cls: type[KubeError]
    if code == 409 and reason == "AlreadyExists":
        cls = AlreadyExists
    elif code == 409 and _is_field_conflict(status, message):
        cls = FieldConflict
    elif code >= 500:
        cls = ServerError
    else:
        cls = _BY_CODE.get(code, KubeError)
    error = cls(message)
    error.code, error.reason, error.status, error.retry_after = code, reason, status or {}, retry_after
    return error


def _is_field_conflict(status: dict[str, Any] | None, message: str) -> bool:
    causes = ((status or {}).get("details") or {}).get("causes") or []
    if any((c or {}).get("reason") == "FieldManagerConflict" for c in causes):
        return True
    return "conflict" in message.lower() and "manager" in message.lower()


__all__ = [
    "RETRYABLE",
    "AlreadyExists",
    "BadRequest",
    "Conflict",
    "FieldConflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "NotFound",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "Unreachable",
    "UnsafeName",
    "error_for",
]
