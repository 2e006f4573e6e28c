"""One exception hierarchy for everything tether reports to a user.

Every message says what failed, where (file:line, object, field path) and, where it helps,
what to do about it. Callers catch ``TetherError`` at the edge (CLI, controller) and print
``str(error)``; nothing below the edge prints stack traces for expected failures.
"""

from __future__ import annotations


class TetherError(Exception):
    """Base class of every error tether raises on purpose."""

    #: process exit code the CLI uses when this error ends a command
    exit_code: int = 2


class UsageError(TetherError):
    """The command line or configuration is wrong."""


class SourceError(TetherError):
    """Fetching, resolving, verifying or exporting a source failed."""


class RenderError(TetherError):
    """A renderer (YAML, Kustomize, Helm, Jsonnet, substitution) failed."""


class ValidationError(TetherError):
    """The rendered objects are invalid; nothing was applied."""

    exit_code = 1


class SecretsError(TetherError):
    """A SOPS file could not be read, decrypted, verified or written."""


class KubeError(TetherError):
    """The Kubernetes API refused a request or could not be reached.

    Typed subclasses per HTTP failure live in ``tether.kube.errors``; these fields are set when
    the error came from an HTTP response (``code`` 0 otherwise).
    """

    code: int = 0
    reason: str = ""
    retry_after: float | None = None
    status: dict = {}  # replaced per instance


class ApplyError(TetherError):
    """Applying or pruning objects failed part-way; the message lists what was done."""


class HealthTimeout(TetherError):
    """Waiting for health ended before every object was healthy."""

    exit_code = 1
