"""Object names checked as kube-apiserver checks them, before anything is sent to it.

A name is also a path segment of the object's URL, and a file name in some tools, so a bad one
is refused up front rather than left to the server (which would reject it part-way through an
apply) or to anything that builds a path from it. The rules, by field:

- ``metadata.namespace``: a DNS-1123 label (``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63).
- ``metadata.name`` by kind: a DNS-1123 label for Namespace; a DNS-1035 label (starts with a
  letter) for Service; a DNS-1123 subdomain of at most 52 for CronJob (its Jobs get an 11
  character suffix) and of at most 63 for Job (the name becomes a label value on its Pods);
  only the path-segment rules for the RBAC kinds (``system:controller:x`` is a valid Role),
  CertificateSigningRequest, ClusterTrustBundle and IPAddress; a DNS-1123 subdomain (at most 253)
  for every other kind, custom resources included (the apiextensions server checks them so).
- every kind: not ``.`` or ``..``, no ``/`` or ``%`` (the path-segment rules).
- ``metadata.generateName``: the same rule as the name with one trailing ``-`` ignored (as the
  server masks it); ``.`` and ``..`` are fine as a prefix.
- no control characters in any of them, strings only, and a name or a generateName present.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from tether.errors import ValidationError
from tether.model import Manifest
from tether.validate.findings import Finding

RULE = "invalid-name"

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

LABEL_MAX = 63
SUBDOMAIN_MAX = 253

_RBAC = "rbac.authorization.k8s.io"
#: (group, kind) whose names only need to be valid path segments
_PATH_SEGMENT_ONLY = frozenset(
    {
        (_RBAC, "Role"),
        (_RBAC, "ClusterRole"),
        (_RBAC, "RoleBinding"),
        (_RBAC, "ClusterRoleBinding"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("networking.k8s.io", "IPAddress"),
    }
)


def _label(value: str, max_len: int = LABEL_MAX) -> list[str]:
    problems = []
    if len(value) > max_len:
        problems.append(f"must be no more than {max_len} characters (is {len(value)})")
    if not _LABEL.fullmatch(value):
        problems.append(
            "must be a lowercase RFC 1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return problems


def _dns1035(value: str) -> list[str]:
    problems = []
    if len(value) > LABEL_MAX:
        problems.append(f"must be no more than {LABEL_MAX} characters (is {len(value)})")
    if not _DNS1035.fullmatch(value):
        problems.append(
            "must be a lowercase RFC 1035 label: lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    return problems


def _subdomain(value: str, max_len: int = SUBDOMAIN_MAX) -> list[str]:
    problems = []
    if len(value) > max_len:
        problems.append(f"must be no more than {max_len} characters (is {len(value)})")
    if not _SUBDOMAIN.fullmatch(value):
        problems.append(
            "must be a lowercase RFC 1123 subdomain: lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return problems


def _none(value: str) -> list[str]:
    return []


def _path_segment(value: str, prefix: bool) -> list[str]:
    problems = []
    if not prefix and value in (".", ".."):
        problems.append(f"may not be {value!r}")
    for bad in ("/", "%"):
        if bad in value:
            problems.append(f"may not contain {bad!r}")
    return problems


def _control_characters(value: str) -> list[str]:
    found = sorted({f"U+{ord(c):04X}" for c in value if unicodedata.category(c) == "Cc"})
    return [f"may not contain control characters ({', '.join(found)})"] if found else []


def _name_rule(obj: dict[str, Any]) -> tuple[str, Any]:
    """(description, check) of ``metadata.name`` for the object's kind."""
    api_version = obj.get("apiVersion") if isinstance(obj.get("apiVersion"), str) else ""
    group = api_version.rpartition("/")[0]
    kind = obj.get("kind") or ""
    if (group, kind) == ("", "Namespace"):
        return "a Namespace name", _label
    if (group, kind) == ("", "Service"):
        return "a Service name", _dns1035
    if (group, kind) == ("batch", "CronJob"):
        return "a CronJob name", lambda v: _subdomain(v, 52)
    if (group, kind) == ("batch", "Job"):
        return "a Job name", lambda v: _subdomain(v, LABEL_MAX)
    if (group, kind) in _PATH_SEGMENT_ONLY:
        return f"a {kind} name", _none
    return "a name", _subdomain


def _mask_trailing_dash(prefix: str) -> str:
    return prefix[:-1] if len(prefix) > 1 and prefix.endswith("-") else prefix


def name_problems(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field, problem)`` for every naming rule ``obj`` breaks (empty when all is well)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [(".metadata", "the object has no metadata, so no name")]
    problems: list[tuple[str, str]] = []
    name, generate_name, namespace = meta.get("name"), meta.get("generateName"), meta.get("namespace")
    what, rule = _name_rule(obj)
    for field, value in (
        (".metadata.name", name),
        (".metadata.generateName", generate_name),
        (".metadata.namespace", namespace),
    ):
        if value is not None and not isinstance(value, str):
            problems.append((field, f"must be a string, not {type(value).__name__} {value!r}"))
    if not (isinstance(name, str) and name) and not (isinstance(generate_name, str) and generate_name):
        problems.append((".metadata.name", "the object needs metadata.name or metadata.generateName"))
    if isinstance(name, str) and name:
        found = _control_characters(name) or _path_segment(name, prefix=False) + rule(name)
        problems.extend((".metadata.name", f"{name!r} is not valid as {what}: {p}") for p in found)
    if isinstance(generate_name, str) and generate_name:
        masked = _mask_trailing_dash(generate_name)
        found = _control_characters(generate_name) or _path_segment(masked, prefix=True) + rule(masked)
        problems.extend(
            (".metadata.generateName", f"{generate_name!r} is not valid as the prefix of {what}: {p}") for p in found
        )
    if isinstance(namespace, str) and namespace:
        found = _control_characters(namespace) or _label(namespace)
        problems.extend((".metadata.namespace", f"{namespace!r} is not a valid namespace: {p}") for p in found)
    return problems


def check_names(manifests: list[Manifest]) -> list[Finding]:
    """One ``invalid-name`` finding per rule an object's name, generateName or namespace breaks."""
    findings = []
    for manifest in manifests:
        obj = manifest.obj if isinstance(manifest.obj, dict) else {}
        problems = name_problems(obj)
        if not problems:
            continue
        source = manifest.source
        # the object's identity is printed too: escape what a terminal would interpret
        shown = str(manifest.ref).encode("unicode_escape").decode("ascii")
        for field, problem in problems:
            findings.append(
                Finding(
                    RULE,
                    problem,
                    file=source.file if source else "",
                    line=source.line if source else None,
                    object=shown,
                    field=field,
                )
            )
    return findings


def require_valid_names(manifests: list[Manifest]) -> None:
    """Raise one ValidationError listing every object with a bad name (file:line each); nothing to apply then."""
    findings = check_names(manifests)
    if findings:
        lines = "\n".join(f"  {finding}" for finding in findings)
        objects = len({(f.file, f.line, f.object) for f in findings})
        raise ValidationError(f"{objects} object(s) with invalid names; nothing was applied:\n{lines}")


__all__ = ["RULE", "check_names", "name_problems", "require_valid_names"]
