"""Thin async access to the Kubernetes API: connect, discover, apply, get/list/delete, watch."""

from tether.kube.client import FIELD_MANAGER, Kube
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
)

__all__ = [
    "FIELD_MANAGER", "RETRYABLE", "AlreadyExists", "BadRequest", "Conflict", "Discovery", "FieldConflict", "Forbidden",
    "Gone", "Invalid", "Kube", "NotFound", "ResourceInfo", "ServerError", "TooManyRequests", "Unauthorized",
    "UnknownKind", "Unreachable", "infos_from_crd",
]
