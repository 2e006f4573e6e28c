"""An ImageUpdate's Git target: repository, branches, path, author, credentials and signing key."""

from __future__ import annotations

from typing import Any

from tether.images import scanner
from tether.images.api import key_of
from tether.images.errors import ImageError
from tether.images.writeback import GitTarget
from tether.kube import Kube

#: the Secret keys a signing key is read from, by spec.commit.signingKey.type (git.asc as Flux names it)
_SIGNING_KEYS = {"gpg": ("git.asc",), "ssh": ("identity", "ssh-privatekey")}


async def git_target(kube: Kube, update: dict[str, Any]) -> GitTarget:
    """Where and how an ImageUpdate commits: its spec with the Secrets it names read."""
    key, spec = key_of(update), update.get("spec") or {}
    git, commit = spec.get("git") or {}, spec.get("commit") or {}
    author, where = commit.get("author") or {}, f"ImageUpdate {key[0]}/{key[1]}"
    username = password = ssh_key = ""
    if (git.get("secretRef") or {}).get("name"):
        secret = await scanner.read_secret(kube, key[0], git["secretRef"]["name"], f"{where} spec.git.secretRef")
        username = (scanner._secret_value(secret, "username") or b"").decode()
        password = (scanner._secret_value(secret, "password") or b"").decode()
        ssh_key = (scanner._secret_value(secret, "identity") or b"").decode()
    signing_format, signing_key = await _signing_key(kube, key, commit.get("signingKey") or {})
    return GitTarget(
        url=str(git.get("url") or ""),
        branch=str(git.get("branch") or "main"),
        push_branch=str(git.get("pushBranch") or ""),
        path=str(spec.get("path") or "."),
        author_name=str(author.get("name") or "tether"),
        author_email=str(author.get("email") or "tether@localhost"),
        message_template=str(commit.get("messageTemplate") or ""),
        username=username,
        password=password,
        ssh_key=ssh_key,
        name=f"{key[0]}/{key[1]}",
        rebuild_push_branch=bool(spec.get("pullRequest")),
        signing_format=signing_format,
        signing_key=signing_key,
    )


async def _signing_key(kube: Kube, key: tuple[str, str], signing: dict[str, Any]) -> tuple[str, str]:
    """(format, private key) of ``spec.commit.signingKey``; ("", "") when commits are not signed."""
    name = str((signing.get("secretRef") or {}).get("name") or "")
    if not name:
        return "", ""
    kind, where = str(signing.get("type") or "gpg"), f"ImageUpdate {key[0]}/{key[1]} spec.commit.signingKey"
    secret = await scanner.read_secret(kube, key[0], name, f"{where}.secretRef")
    keys = _SIGNING_KEYS.get(kind)
    if keys is None:
        raise ImageError(f"{where}.type must be ssh or gpg, not {kind!r}")
    value = next((v for v in (scanner._secret_value(secret, k) for k in keys) if v), None)
    if value is None:
        raise ImageError(
            f"{where}: Secret {key[0]}/{name} has none of the keys {', '.join(keys)} (the {kind} private key)"
        )
    return kind, value.decode()


__all__ = ["git_target"]
