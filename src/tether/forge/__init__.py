"""Forges (GitHub, GitLab, Gitea, Bitbucket): commit statuses and pull-request comments over REST.

::

    repo = forge_repo("https://github.com/acme/shop.git")          # provider and API from the URL
    async with ForgeClient(repo, token_from_env(repo.provider)) as forge:
        await forge.set_status(sha, "success", "tether/shop/web", "Ready")
        comment, created = await forge.upsert_comment(42, body, marker="<!-- tether:preview -->")
        pull, created = await forge.upsert_pull_request("image-updates", "main", title, body)
"""

from tether.forge.client import Comment, ForgeClient, ForgeError, PullRequest, StatusState, token_from_env
from tether.forge.repo import PROVIDERS, ForgeRepo, forge_repo, same_repository, split_git_url

__all__ = [
    "PROVIDERS",
    "Comment",
    "ForgeClient",
    "ForgeError",
    "ForgeRepo",
    "PullRequest",
    "StatusState",
    "forge_repo",
    "same_repository",
    "split_git_url",
    "token_from_env",
]
