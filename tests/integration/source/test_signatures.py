"""Signature verification with real keys: SSH keys from ssh-keygen, a GPG key from gpg."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tether.errors import SourceError
from tether.render import RenderOptions, render_source


def ssh_key(directory: Path, name: str) -> Path:
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def allowed_signers(directory: Path, *keys: Path) -> Path:
    path = directory / "allowed_signers"
    path.write_text(
        "".join(
            f"t@example.com {k.with_suffix('.pub').read_text().split(' ', 2)[0]} "
            f"{k.with_suffix('.pub').read_text().split(' ', 2)[1]}\n"
            for k in keys
        )
    )
    return path


def commit(run_git, repo: Path, message: str, *sign: str) -> None:
    (repo / "apps/web/cm.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: {message!r}\n"
    )
    run_git(repo, "add", "-A")
    run_git(repo, *sign, "commit", "-q", "-m", message)


def ssh_sign(key: Path) -> tuple[str, ...]:
    return (
        "-c",
        "gpg.format=ssh",
        "-c",
        f"user.signingkey={key}",
        "-c",
        "commit.gpgsign=true",
        "-c",
        "tag.gpgsign=true",
    )


def test_ssh_signed_commits(work_repo: Path, tmp_path: Path, run_git) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    trusted, stranger = ssh_key(keys, "trusted"), ssh_key(keys, "stranger")
    signers = allowed_signers(keys, trusted)
    options = RenderOptions(cache_dir=str(tmp_path / "cache"), verify="ssh", allowed_signers=str(signers))
    url = f"file://{work_repo}//apps/web"

    commit(run_git, work_repo, "signed", *ssh_sign(trusted))
    assert render_source(f"{url}?ref=main", options).manifests[0].obj["data"]["version"] == "signed"

    commit(run_git, work_repo, "unsigned")
    with pytest.raises(SourceError, match=r"is not signed by an allowed SSH key .*refusing it"):
        render_source(f"{url}?ref=main", options)

    commit(run_git, work_repo, "by a stranger", *ssh_sign(stranger))
    with pytest.raises(SourceError, match=r"is not signed by an allowed SSH key"):
        render_source(f"{url}?ref=main", options)
    # nothing was exported for refused revisions
    exported = {p.name for p in (tmp_path / "cache/trees").iterdir()}
    assert len(exported) == 1


def test_ssh_signed_tag_on_unsigned_commit(work_repo: Path, tmp_path: Path, run_git) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    trusted = ssh_key(keys, "trusted")
    options = RenderOptions(
        cache_dir=str(tmp_path / "cache"), verify="ssh", allowed_signers=str(allowed_signers(keys, trusted))
    )
    run_git(work_repo, *ssh_sign(trusted), "tag", "-s", "-m", "release", "v3.0.0")
    result = render_source(f"file://{work_repo}//apps/web?ref=v3.0.0", options)
    assert result.revision.commit == run_git(work_repo, "rev-parse", "HEAD")
    with pytest.raises(SourceError, match="not signed"):  # the lightweight tag on the same tree is not signed
        render_source(f"file://{work_repo}//apps/web?ref=v2.0.0", options)


def test_gpg_signed_commits(work_repo: Path, tmp_path: Path, run_git) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            "t <t@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    public = tmp_path / "allowed.asc"
    public.write_bytes(
        subprocess.run(["gpg", "--armor", "--export", "t@example.com"], env=env, check=True, capture_output=True).stdout
    )
    os.environ["GNUPGHOME"], saved = str(home), os.environ.get("GNUPGHOME")
    try:
        commit(
            run_git,
            work_repo,
            "gpg signed",
            "-c",
            "gpg.format=openpgp",
            "-c",
            "user.signingkey=t@example.com",
            "-c",
            "commit.gpgsign=true",
        )
    finally:
        if saved is None:
            del os.environ["GNUPGHOME"]
        else:
            os.environ["GNUPGHOME"] = saved
    options = RenderOptions(cache_dir=str(tmp_path / "cache"), verify="gpg", allowed_signers=str(public))
    assert (
        render_source(f"file://{work_repo}//apps/web?ref=main", options).manifests[0].obj["data"]["version"]
        == "gpg signed"
    )
    with pytest.raises(SourceError, match=r"not signed by an allowed GPG key"):
        render_source(f"file://{work_repo}//apps/web?ref=v1.0.0", options)


def test_verification_needs_a_keys_file(work_repo: Path, tmp_path: Path) -> None:
    from tether.errors import UsageError

    with pytest.raises(UsageError, match="needs an allowed signers"):
        render_source(f"file://{work_repo}?ref=main", RenderOptions(cache_dir=str(tmp_path / "c"), verify="ssh"))
