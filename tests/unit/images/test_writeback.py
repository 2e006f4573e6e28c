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
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x",
           "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
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

    changes = [Change("a.yaml", 3, "ns:api", "reg/api", "reg/api:1.0.0", "reg/api:1.1.0", "marker"),
               Change("b.yaml", 9, "ns:web", "reg/web", "2.0", "2.1", "marker:tag")]
    text = render_message("", changes)
    assert text.startswith("Update 2 images\n")
    assert "- reg/api: 1.0.0 -> 1.1.0" in text and "- reg/web: 2.0 -> 2.1" in text
    custom = render_message("Bump {% for i in images %}{{ i.image }}={{ i.to }} {% endfor %}", changes)
    assert custom == "Bump reg/api=1.1.0 reg/web=2.1\n"
