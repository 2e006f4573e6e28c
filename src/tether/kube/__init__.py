"""Thin async access to the Kubernetes API: connect, discover, apply, get/list/delete, watch.

Names are checked before they go into a URL (``UnsafeName`` otherwise, nothing sent),
transient failures are retried under a ``RetryPolicy``, and ``Kube.impersonate`` acts as
another user (``service_account_user`` gives a ServiceAccount's identity). Errors are typed,
one class per kind of failure (see ``tether.kube.errors``).
"""

from tether.kube.client import FIELD_MANAGER, Kube, service_account_user
from tether.kube.discovery import Discovery, ResourceInfo, UnknownKind, infos_from_crd
from tether.kube.errors import (
    RETRYABLE,
    AlreadyExists,
    BadRequest,
    Conflict,
    FieldConflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    Unreachable,
    UnsafeName,
)
from tether.kube.retry import RetryPolicy

__all__ = [
    "FIELD_MANAGER",
    "RETRYABLE",
    "AlreadyExists",
    "BadRequest",
    "Conflict",
    "Discovery",
    "FieldConflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "Kube",
    "NotFound",
    "ResourceInfo",
    "RetryPolicy",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "UnknownKind",
    "Unreachable",
    "UnsafeName",
    "infos_from_crd",
    "service_account_user",
]
