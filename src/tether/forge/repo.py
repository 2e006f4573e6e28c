"""Which forge and repository a Git URL points at, and where that forge's REST API lives.

A URL names its forge unambiguously only on the public hosts (github.com, gitlab.com,
bitbucket.org, codeberg.org). For a self-hosted instance the caller names the provider and,
when the API does not live at the provider's usual place on the same host, the API base URL.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from tether.errors import UsageError

PROVIDERS = ("github", "gitlab", "gitea", "bitbucket")

#: public hosts whose provider and API base are known
_PUBLIC = {
    "github.com": ("github", "https://api.github.com"),
    "gitlab.com": ("gitlab", "https://gitlab.com/api/v4"),
    "bitbucket.org": ("bitbucket", "https://api.bitbucket.org/2.0"),
    "codeberg.org": ("gitea", "https://codeberg.org/api/v1"),
}
#: where each provider serves its API on a self-hosted instance, relative to the web root
_SELF_HOSTED_API = {"github": "/api/v3", "gitlab": "/api/v4", "gitea": "/api/v1", "bitbucket": "/rest/api/1.0"}
_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?!//)(?P<path>.+)$")


@dataclass(frozen=True)
class ForgeRepo:
    """A repository on a forge: ``path`` is ``owner/name`` (GitLab: ``group/subgroup/name``)."""

    provider: str
    api_url: str  # no trailing slash
    path: str
    web_url: str = ""  # https://host/owner/name, for links to commits

    def commit_link(self, sha: str) -> str:
        if not self.web_url or not sha:
            return ""
        if self.provider == "gitlab":
            return f"{self.web_url}/-/commit/{sha}"
        if self.provider == "bitbucket":
            return f"{self.web_url}/commits/{sha}"
        return f"{self.web_url}/commit/{sha}"


def split_git_url(url: str) -> tuple[str, str, str]:
    """(scheme, host[:port], repository path without ``.git``) of an http(s), ssh or scp-like Git URL.

    A tether source location's ``//subdir`` and ``?ref=`` parts are dropped."""
    text = url.strip()
    match = _SCP_LIKE.match(text) if "://" not in text else None
    if match:
        scheme, host, path = "ssh", match["host"], match["path"]
    else:
        parts = urllib.parse.urlsplit(text)
        if not parts.hostname:
            return "", "", ""
        scheme, path = parts.scheme, parts.path
        host = parts.hostname + (f":{parts.port}" if parts.port and parts.scheme in ("http", "https") else "")
    path = path.split("//", 1)[0].strip("/")
    path = path.removesuffix(".git")
    return scheme, host.lower(), path


def forge_repo(source_url: str, *, provider: str = "", api_url: str = "", repository: str = "") -> ForgeRepo:
    """The forge repository of ``source_url``; ``provider``, ``api_url`` and ``repository`` override
    what the URL says. Raises ``UsageError`` when the provider cannot be known."""
    scheme, host, path = split_git_url(source_url)
    known = _PUBLIC.get(host)
    if provider and provider not in PROVIDERS:
        raise UsageError(f"unknown forge provider {provider!r}: use one of {', '.join(PROVIDERS)}")
    if not provider:
        if known is None:
            raise UsageError(
                f"cannot tell which forge serves {source_url!r}: name the provider ({', '.join(PROVIDERS)}) and, "
                "for a self-hosted instance, the API base URL"
            )
        provider = known[0]
    web_scheme = scheme if scheme in ("http", "https") else "https"
    web_root = f"{web_scheme}://{host}" if host else ""
    if not api_url:
        if known is not None and known[0] == provider:
            api_url = known[1]
        elif web_root:
            api_url = web_root + _SELF_HOSTED_API[provider]
        else:
            raise UsageError(f"no API base URL for {provider}: give one (the source URL {source_url!r} has no host)")
    repository = (repository or path).strip("/")
    if repository.count("/") < 1:
        raise UsageError(f"repository {repository!r} of {source_url!r} is not of the form owner/name")
    return ForgeRepo(provider, api_url.rstrip("/"), repository, f"{web_root}/{repository}" if web_root else "")


def same_repository(a: str, b: str) -> bool:
    """Do two Git URLs (or paths) name the same repository? Scheme, user, ``.git`` and case of host aside."""
    _, host_a, path_a = split_git_url(a)
    _, host_b, path_b = split_git_url(b)
    if host_a or host_b:
        return (host_a, path_a) == (host_b, path_b)
    return a.rstrip("/").removesuffix(".git") == b.rstrip("/").removesuffix(".git")


__all__ = ["PROVIDERS", "ForgeRepo", "forge_repo", "same_repository", "split_git_url"]
