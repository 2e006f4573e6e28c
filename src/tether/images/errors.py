"""Errors of image automation, all ``TetherError`` children.

::

    ImageError
    ├── RegistryError            a registry request failed (``host``, ``repository``, ``status``)
    │   ├── RegistryUnauthorized   401/403: credentials missing or wrong, token refused
    │   ├── RegistryNotFound       404: no such repository or manifest
    │   ├── RegistryRateLimited    429/503 still refused after Retry-After waits
    │   └── RegistryUnreachable    connection, TLS or timeout failure
    ├── InvalidImageReference    an image reference could not be parsed
    ├── PolicyError              a policy is invalid or no tag satisfies it
    └── WriteBackError           the Git write-back (clone, edit, commit, push) failed
"""

from __future__ import annotations

from tether.errors import TetherError


class ImageError(TetherError):
    """Base of every image automation error."""


class RegistryError(ImageError):
    """A request to an image registry failed; ``reason`` is the status condition reason."""

    reason = "RegistryError"

    def __init__(self, message: str, *, host: str = "", repository: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.host, self.repository, self.status = host, repository, status


class RegistryUnauthorized(RegistryError):
    reason = "AuthenticationFailed"


class RegistryNotFound(RegistryError):
    reason = "NotFound"


class RegistryRateLimited(RegistryError):
    reason = "RateLimited"


class RegistryUnreachable(RegistryError):
    reason = "Unreachable"


class InvalidImageReference(ImageError):
    """An image reference (``host/path:tag@digest``) is malformed."""


class PolicyError(ImageError):
    """An ImagePolicy is invalid (bad range, pattern, order) or selects nothing."""

    reason = "InvalidPolicy"


class WriteBackError(ImageError):
    """Cloning, editing, committing or pushing the Git repository of an ImageUpdate failed."""


__all__ = [
    "ImageError",
    "InvalidImageReference",
    "PolicyError",
    "RegistryError",
    "RegistryNotFound",
    "RegistryRateLimited",
    "RegistryUnauthorized",
    "RegistryUnreachable",
    "WriteBackError",
]
