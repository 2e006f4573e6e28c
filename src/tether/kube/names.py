"""Request paths built only from checked, percent-escaped segments.

Object names come from Git, from the inventory and from the cluster, so none of them is
trusted in a URL. HTTP clients and servers normalise ``.`` and ``..`` segments (escaped or
not), and a ``/`` or an escaped ``%2F`` moves the request to another path: a delete of
ConfigMap ``..`` in namespace ``team`` would otherwise become a DELETE of
``/api/v1/namespaces/team``. Every segment therefore passes :func:`check_segment` first:

* not empty, not ``.`` or ``..``;
* no ``/``, no ``%`` (so no pre-escaped text), no control character (``\\x00``-``\\x1f``,
  ``\\x7f``-``\\x9f``, which also keeps header and log injection out);
* at most 253 characters (the longest name Kubernetes accepts).

Namespaces must moreover be DNS-1123 labels (lower-case alphanumerics and ``-``, at most 63).
What passes is percent-escaped (``:`` and ``@`` stay, as in RBAC names like
``system:controller:x``), and a failure raises :class:`~tether.kube.errors.UnsafeName` before
any request is made.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from tether.kube.errors import UnsafeName

MAX_NAME = 253
MAX_NAMESPACE = 63
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _problem(value: object, limit: int) -> str:
    """Why ``value`` is not a safe path segment ("" when it is)."""
    if not isinstance(value, str):
        return "is missing" if value is None else f"is a {type(value).__name__}, not a string"
    if not value:
        return "is empty"
    if value in (".", ".."):
        return "is a relative path segment"
    if "/" in value:
        return "contains '/'"
    if "%" in value:
        return "contains '%'"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "contains a control character"
    if len(value) > limit:
        return f"is longer than {limit} characters"
    return ""


def check_segment(value: object, what: str = "name") -> str:
    """``value`` if it is safe as one path segment, else UnsafeName naming ``what`` it is."""
    problem = _problem(value, MAX_NAME)
    if problem:
        raise UnsafeName(
            f"refusing to send a request: {what} {value!r} {problem}; an object name must be a "
            "non-empty path segment without '/', '%' or control characters, at most 253 characters"
        )
    return value  # type: ignore[return-value]


def check_namespace(value: object, what: str = "namespace") -> str:
    """``value`` if it is a DNS-1123 label, else UnsafeName."""
    problem = _problem(value, MAX_NAMESPACE)
    if not problem and not _LABEL.fullmatch(value):  # type: ignore[arg-type]
        problem = "is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending alphanumeric)"
    if problem:
        raise UnsafeName(f"refusing to send a request: {what} {value!r} {problem}")
    return value  # type: ignore[return-value]


def escape(segment: str) -> str:
    """Percent-escape one checked segment (everything but unreserved characters, ':' and '@')."""
    return quote(segment, safe=":@")


def join(*segments: str) -> str:
    """``/a/b/c`` from segments already checked."""
    return "/" + "/".join(escape(s) for s in segments)


def api_prefix(group: str, version: str) -> list[str]:
    """The segments of a group-version's base path: ``api/v1`` or ``apis/GROUP/VERSION``."""
    version = check_segment(version, "API version")
    return ["apis", check_segment(group, "API group"), version] if group else ["api", version]


def check_raw_path(path: str) -> str:
    """A fixed API path such as ``/version`` or ``/apis``: absolute, every segment safe."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise UnsafeName(f"refusing to send a request: path {path!r} is not absolute")
    segments = path.strip("/").split("/") if path != "/" else []
    for segment in segments:
        check_segment(segment, f"segment of path {path!r}")
    return join(*segments) if segments else "/"
