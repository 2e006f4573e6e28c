"""Pull-request mode of an ImageUpdate: the pushed branch gets one open pull request on the forge.

``spec.pullRequest`` names the forge (``provider``: github, gitlab, gitea or bitbucket, i.e. Bitbucket
Cloud), optionally its API base
(``apiURL``; default: the provider's usual place for the host of ``spec.git.url``) and repository
(``repository``, ``owner/name``; default: the path of ``spec.git.url``), and the Secret with the
API token (``tokenSecretRef``, key ``token``). The pull request is found by its head and base
branches, so an update window after the first one updates the same pull request (title and
description) instead of opening another.

Bitbucket escapes raw HTML in Markdown, so its descriptions carry the marker as a link reference
definition (which renders as nothing) instead of an HTML comment.
"""

from __future__ import annotations

from typing import Any

from tether.errors import UsageError
from tether.forge import ForgeClient, PullRequest, forge_repo
from tether.forge.bitbucket import hidden_marker
from tether.images import scanner
from tether.images.errors import ImageError
from tether.images.writeback import GitTarget, PushResult
from tether.kube import Kube

#: in every description, so people (and tools) can tell whose pull request this is
MARKER = "<!-- tether:image-update -->"
BITBUCKET_MARKER = hidden_marker("tether:image-update")


def title_and_body(result: PushResult, target: GitTarget, provider: str = "") -> tuple[str, str]:
    """The commit message's first line as the title, the rest (and who keeps it current) as the body."""
    title, _, rest = result.message.strip().partition("\n")
    marker = BITBUCKET_MARKER if provider == "bitbucket" else MARKER
    body = (f"{rest.strip()}\n\n" if rest.strip() else "") + (
        f"Kept current by the ImageUpdate {target.name}: later image changes are force-pushed to "
        f"`{target.target_branch}` and update this pull request.\n\n{marker}\n"
    )
    return title.strip() or f"Update images in {target.path}", body


async def open_or_update(
    kube: Kube, update: dict[str, Any], target: GitTarget, result: PushResult
) -> tuple[PullRequest, bool]:
    """Open the pull request from ``target.target_branch`` into ``target.branch`` or update the open one;
    returns it and whether it was opened now."""
    meta, spec = update.get("metadata") or {}, (update.get("spec") or {}).get("pullRequest") or {}
    namespace, where = str(meta.get("namespace") or ""), f"ImageUpdate {target.name} spec.pullRequest"
    secret_name = str((spec.get("tokenSecretRef") or {}).get("name") or "")
    if not secret_name:
        raise ImageError(f"{where}.tokenSecretRef: name the Secret whose 'token' key is the forge API token")
    secret = await scanner.read_secret(kube, namespace, secret_name, f"{where}.tokenSecretRef")
    token = (scanner._secret_value(secret, "token") or b"").decode().strip()
    if not token:
        raise ImageError(f"{where}.tokenSecretRef: Secret {namespace}/{secret_name} has no 'token' key")
    try:
        repo = forge_repo(
            target.url,
            provider=str(spec.get("provider") or ""),
            api_url=str(spec.get("apiURL") or ""),
            repository=str(spec.get("repository") or ""),
        )
    except UsageError as error:
        raise ImageError(f"{where}: {error} (set provider, apiURL and repository)") from None
    title, body = title_and_body(result, target, repo.provider)
    async with ForgeClient(repo, token) as forge:
        return await forge.upsert_pull_request(target.target_branch, target.branch, title, body)


__all__ = ["BITBUCKET_MARKER", "MARKER", "open_or_update", "title_and_body"]
