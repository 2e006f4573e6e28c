"""PATH arguments: a local directory, or a Git source ``URL[//sub/dir][?ref=REF]``.

Examples::

    ./apps/web                                        a directory
    https://host/repo.git//apps/web?ref=v1.2.0        a tag (or branch / sha / semver range)
    file:///srv/git/repo.git?ref=main                 a branch
    ssh://git@host/org/repo.git//deploy?ref=semver:^1.2
    /srv/git/repo//apps?ref=main                      a local repository (``//`` or ``?ref=`` make it Git)

``ref`` may carry an explicit kind: ``branch:``, ``tag:``, ``semver:`` or ``commit:``.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from tether.errors import UsageError

_SCHEMES = ("file://", "http://", "https://", "ssh://", "git://")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:(?!//)")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed PATH argument. For a directory only ``path`` is set."""

    url: str = ""  # repository URL (may contain credentials: show it only through ``masked_url``)
    path: str = ""  # sub directory inside the repository, or the local directory
    ref: str = ""

    @property
    def is_git(self) -> bool:
        return bool(self.url)

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)


def mask_url(url: str) -> str:
    """Replace any password or token in a URL with ``***`` (user names are kept)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None and not (parts.username and "://" in url and parts.scheme in ("http", "https")):
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    userinfo = f"{user}:***@" if parts.password is not None else "***@"
    return urllib.parse.urlunsplit((parts.scheme, userinfo + host, parts.path, parts.query, parts.fragment))


def _split_subdir(location: str) -> tuple[str, str]:
    """Split ``repo//sub/dir``; the ``//`` of ``scheme://`` does not count."""
    start = location.index("://") + 3 if "://" in location else 0
    if location.startswith("file://"):
        start = len("file://") + 1  # file:///abs/path: skip the root slash too
    head, sep, tail = location[start:].partition("//")
    if not sep:
        return location, ""
    return location[:start] + head, tail.strip("/")


def parse_source(argument: str) -> SourceSpec:
    if not argument:
        raise UsageError("PATH must not be empty")
    location, _, query = argument.partition("?")
    ref = ""
    if query:
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        unknown = set(params) - {"ref"}
        if unknown:
            raise UsageError(
                f"{mask_url(argument)}: unknown source parameter(s) {', '.join(sorted(unknown))}; "
                "only ?ref= is supported"
            )
        ref = params.get("ref", [""])[-1]
    remote = location.startswith(_SCHEMES) or bool(_SCP_LIKE.match(location))
    repo, subdir = _split_subdir(location)
    if not remote and not query and not subdir:
        return SourceSpec(path=location)
    if not remote:
        repo = str(Path(repo).resolve())
    if ".." in Path(subdir).parts:
        raise UsageError(f"{mask_url(argument)}: the sub directory may not contain '..'")
    return SourceSpec(url=repo, path=subdir, ref=ref)
