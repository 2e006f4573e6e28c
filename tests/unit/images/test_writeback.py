"""Git write-back against a local bare repository: one commit, no push without a change, a lost race redone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tether.images.setters import ChosenImage
from tether.images.writeback import GitTarget, GitWriteBack, render_message

FILE = 'spec:\n  image: reg.local/team/api:1.0.0 # {"$imagepolicy": "ns:api"}  # keep\n'
CHOSEN = {"ns:api": ChosenImage("ns", "api", "reg.local/team/api", "1.1.0")}


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = tmp_path / "seed"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "apps").mkdir()
    (work / "apps" / "deploy.yaml").write_text(FILE)
    (work / "README").write_text("seed\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "seed")
    git(work, "push", "-q", str(bare), "main")
    return bare


def target(remote: Path) -> GitTarget:
    return GitTarget(url=str(remote), branch="main", path="apps", author_name="Bot", author_email="bot@x", name="ns/u")


def test_one_commit_with_the_change_and_nothing_pushed_when_nothing_changed(remote: Path, tmp_path: Path) -> None:
    writer = GitWriteBack(tmp_path / "work")
    result = writer.update(target(remote), CHOSEN)
    assert result.commit == git(remote, "rev-parse", "main")
    shown = git(remote, "show", "main:apps/deploy.yaml")
    assert shown + "\n" == FILE.replace("1.0.0", "1.1.0")
    assert git(remote, "log", "-1", "--format=%an") == "Bot"
    again = writer.update(target(remote), CHOSEN)
    assert again.commit == "" and again.changes == []
    assert git(remote, "rev-list", "--count", "main") == "2", "no second commit"


def test_a_push_race_is_retried_on_the_new_tip(remote: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(remote), str(other)], check=True)

    class Racing(GitWriteBack):
        moved = False

        def _reset_to_tip(self, checkout, env, target):  # type: ignore[no-untyped-def]
            base = super()._reset_to_tip(checkout, env, target)
            if not self.moved:  # someone pushes between our fetch and our push
                self.moved = True
                (other / "README").write_text("changed meanwhile\n")
                git(other, "commit", "-q", "-am", "meanwhile")
                git(other, "push", "-q", "origin", "main")
            return base

    result = Racing(tmp_path / "work").update(target(remote), CHOSEN)
    assert result.attempts == 2
    log = git(remote, "log", "--format=%s", "main").splitlines()
    assert log[1] == "meanwhile", "the other push is kept, ours on top of it"
    assert "1.1.0" in git(remote, "show", "main:apps/deploy.yaml")


def test_message_template_lists_each_change() -> None:
    from tether.images.setters import Change

    changes = [
        Change("a.yaml", 3, "ns:api", "reg/api", "reg/api:1.0.0", "reg/api:1.1.0", "marker"),
        Change("b.yaml", 9, "ns:web", "reg/web", "2.0", "2.1", "marker:tag"),
    ]
    text = render_message("", changes)
    assert text.startswith("Update 2 images\n")
    assert "- reg/api: 1.0.0 -> 1.1.0" in text and "- reg/web: 2.0 -> 2.1" in text
    custom = render_message("Bump {% for i in images %}{{ i.image }}={{ i.to }} {% endfor %}", changes)
    assert custom == "Bump reg/api=1.1.0 reg/web=2.1\n"


def test_pull_request_mode_rebuilds_the_push_branch_on_the_base(remote: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    writer = GitWriteBack(tmp_path / "work")
    pr_target = replace(target(remote), push_branch="image-updates", rebuild_push_branch=True)
    first = writer.update(pr_target, CHOSEN)
    assert first.pushed and first.commit == git(remote, "rev-parse", "image-updates")
    assert git(remote, "rev-parse", "image-updates^") == git(remote, "rev-parse", "main")
    assert "1.0.0" in git(remote, "show", "main:apps/deploy.yaml"), "the base branch is left alone"

    again = writer.update(pr_target, CHOSEN)
    assert not again.pushed and again.commit == first.commit, "the branch already holds the change"

    seed = tmp_path / "seed"
    (seed / "README").write_text("main moved\n")
    git(seed, "commit", "-q", "-am", "main moved")
    git(seed, "push", "-q", str(remote), "main")
    newer = {"ns:api": ChosenImage("ns", "api", "reg.local/team/api", "1.2.0")}
    moved = writer.update(pr_target, newer)
    assert moved.pushed
    assert git(remote, "rev-list", "--count", "main..image-updates") == "1", "one commit, force-pushed"
    assert git(remote, "rev-parse", "image-updates^") == git(remote, "rev-parse", "main")
    assert "1.2.0" in git(remote, "show", "image-updates:apps/deploy.yaml")

    with pytest.raises(Exception, match="pushBranch to name a branch other than"):
        writer.update(replace(pr_target, push_branch=""), CHOSEN)


def _verify(remote: Path, tmp_path: Path, mode: str, allowed: Path) -> str:
    from tether.source.git import GitCache, Resolved
    from tether.source.verify import verify_revision

    commit = git(remote, "rev-parse", "main")
    return verify_revision(
        GitCache(tmp_path / "cache", timeout=30),
        remote,
        str(remote),
        Resolved(commit, "branch", "main"),
        mode,
        str(allowed),
    )


def test_commits_signed_with_an_ssh_key_verify(remote: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from tether.errors import SourceError

    key = tmp_path / "signer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bot", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("bot@x " + " ".join(key.with_suffix(".pub").read_text().split()[:2]) + "\n")
    with pytest.raises(SourceError, match="not signed"):
        _verify(remote, tmp_path, "ssh", allowed)  # the seed commit is not signed
    signed = replace(target(remote), signing_format="ssh", signing_key=key.read_text())
    result = GitWriteBack(tmp_path / "work").update(signed, CHOSEN)
    assert result.pushed
    assert "Good" in _verify(remote, tmp_path, "ssh", allowed)


def test_commits_signed_with_a_gpg_key_verify(remote: Path, tmp_path: Path) -> None:
    import os
    from dataclasses import replace

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
            "Bot <bot@x>",
            "ed25519",
            "sign",
            "never",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    secret = subprocess.run(
        ["gpg", "--batch", "--armor", "--export-secret-keys", "bot@x"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    allowed = tmp_path / "allowed.asc"
    allowed.write_text(
        subprocess.run(
            ["gpg", "--armor", "--export", "bot@x"], env=env, check=True, capture_output=True, text=True
        ).stdout
    )
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    signed = replace(target(remote), signing_format="gpg", signing_key=secret)
    assert GitWriteBack(tmp_path / "work").update(signed, CHOSEN).pushed
    assert "GOODSIG" in _verify(remote, tmp_path, "gpg", allowed)

    from tether.images.errors import WriteBackError

    broken = replace(target(remote), signing_format="gpg", signing_key="not a key")
    with pytest.raises(WriteBackError, match="cannot import the GPG key"):
        GitWriteBack(tmp_path / "work2").update(
            broken, {"ns:api": ChosenImage("ns", "api", "reg.local/team/api", "1.3.0")}
        )
