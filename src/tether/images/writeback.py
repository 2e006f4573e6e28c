"""Git write-back: check out the branch, apply the chosen images, commit once, push; retry a lost race.

Each ImageUpdate keeps a working repository of its own under the automation's work directory. An
update fetches the branch, resets the checkout to it, edits the files under ``spec.path``
(``tether.images.setters``) and, only if a file changed, commits with the configured author and the
templated message, then pushes. A push refused because the branch moved (someone pushed in
between) is handled the way a rebase would: fetch the new tip, apply the same edit on top of it, try
again; the edit is recomputed, so a change someone else already made is not committed twice.

Credentials stay out of URLs and command lines visible to other processes: HTTPS basic auth goes in
an ``http.extraHeader`` passed through the environment (``GIT_CONFIG_*``), an SSH key in a private
temporary file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from tether.images.errors import WriteBackError
from tether.images.reference import parse_reference
from tether.images.setters import Change, ChosenImage, update_directory

DEFAULT_MESSAGE = """\
{% if images | length == 1 %}Update {{ images[0].image }} to {{ images[0].to }}\
{% else %}Update {{ images | length }} images{% endif %}

{% for i in images %}- {{ i.image }}: {{ i.from }} -> {{ i.to }}
{% endfor %}
Files:
{% for f in files %}- {{ f }}
{% endfor %}"""
PUSH_ATTEMPTS = 5
_RACE_MARKERS = ("non-fast-forward", "fetch first", "[rejected]", "stale info", "cannot lock ref")


@dataclass(frozen=True)
class GitTarget:
    url: str
    branch: str = "main"
    push_branch: str = ""  # "" = branch
    path: str = "."
    author_name: str = "tether"
    author_email: str = "tether@localhost"
    message_template: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    ssh_key: str = field(default="", repr=False)
    name: str = ""  # "namespace/name" of the ImageUpdate, for messages

    @property
    def target_branch(self) -> str:
        return self.push_branch or self.branch


@dataclass
class PushResult:
    commit: str = ""  # "" when nothing changed (and nothing was pushed)
    changes: list[Change] = field(default_factory=list)
    attempts: int = 0
    message: str = ""


def render_message(template: str, changes: list[Change], name: str = "") -> str:
    """The commit message for ``changes`` (Jinja2, sandboxed): ``images`` (image, from, to, policy),
    ``changes`` (file, line, policy, image, old, new, setter), ``files`` and ``name``."""
    images, seen = [], set()
    for change in changes:
        entry = (change.image, _tag_of(change.old), _tag_of(change.new), change.policy)
        if entry not in seen:
            seen.add(entry)
            images.append({"image": entry[0], "from": entry[1], "to": entry[2], "policy": entry[3]})
    try:
        text = SandboxedEnvironment(keep_trailing_newline=True).from_string(template or DEFAULT_MESSAGE).render(
            images=images, changes=[vars(c) for c in changes], files=sorted({c.file for c in changes}), name=name)
    except TemplateError as error:
        raise WriteBackError(f"ImageUpdate {name}: spec.commit.messageTemplate does not render: {error}") from None
    return text.strip() + "\n"


def _tag_of(value: str) -> str:
    try:
        reference = parse_reference(value)
    except Exception:  # a bare tag or digest: shown as it is
        return value
    return reference.tag + (f"@{reference.digest}" if reference.digest else "") or value


class GitWriteBack:
    """Blocking (run it in a thread): ``update(target, chosen)`` does one update window."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir

    def update(self, target: GitTarget, chosen: Mapping[str, ChosenImage]) -> PushResult:
        checkout = self.work_dir / hashlib.sha256(f"{target.url}\0{target.target_branch}".encode()).hexdigest()[:16]
        with _credentials(target) as env:
            if not (checkout / ".git").exists():
                checkout.mkdir(parents=True, exist_ok=True)
                _git(checkout, env, "init", "-q")
                _git(checkout, env, "remote", "add", "origin", target.url)
            for attempt in range(1, PUSH_ATTEMPTS + 1):
                base = self._reset_to_tip(checkout, env, target)
                directory = (checkout / target.path).resolve()
                if not directory.is_relative_to(checkout.resolve()) or not directory.is_dir():
                    raise WriteBackError(f"ImageUpdate {target.name}: spec.path {target.path!r} is not a directory "
                                         f"of {target.url} at {target.branch}")
                changes = update_directory(checkout, directory, chosen)
                if not changes or not _git(checkout, env, "status", "--porcelain"):
                    return PushResult(attempts=attempt)
                message = render_message(target.message_template, changes, target.name)
                _git(checkout, env, "add", "-A")
                _git(checkout, env, "commit", "-q", "-F", "-", stdin=message)
                commit = _git(checkout, env, "rev-parse", "HEAD")
                pushed = _run(checkout, env, "push", "-q", "origin", f"HEAD:refs/heads/{target.target_branch}",
                              lease=(target.target_branch, base))
                if pushed.returncode == 0:
                    return PushResult(commit, changes, attempt, message)
                if not any(marker in pushed.stderr for marker in _RACE_MARKERS):
                    raise WriteBackError(f"ImageUpdate {target.name}: git push to {target.url} "
                                         f"{target.target_branch} failed: {pushed.stderr.strip()}")
            raise WriteBackError(f"ImageUpdate {target.name}: the branch {target.target_branch} of {target.url} "
                                 f"kept moving; gave up after {PUSH_ATTEMPTS} attempts (the next update tries again)")

    @staticmethod
    def _reset_to_tip(checkout: Path, env: dict[str, str], target: GitTarget) -> str:
        refs = [f"+refs/heads/{target.branch}:refs/remotes/origin/{target.branch}"]
        fetched = _run(checkout, env, "fetch", "-q", "--prune", "origin", *refs)
        if fetched.returncode != 0:
            raise WriteBackError(f"ImageUpdate {target.name}: cannot fetch branch {target.branch} of {target.url}: "
                                 f"{fetched.stderr.strip()}")
        base_ref = f"origin/{target.branch}"
        if target.push_branch and target.push_branch != target.branch:
            push_ref = f"+refs/heads/{target.push_branch}:refs/remotes/origin/{target.push_branch}"
            if _run(checkout, env, "fetch", "-q", "origin", push_ref).returncode == 0:
                base_ref = f"origin/{target.push_branch}"
        _git(checkout, env, "checkout", "-q", "-B", "tether-image-update", base_ref)
        _git(checkout, env, "reset", "-q", "--hard", base_ref)
        _git(checkout, env, "clean", "-q", "-fdx")
        remote_push = f"origin/{target.target_branch}"
        exists = _run(checkout, env, "rev-parse", "--verify", "-q", remote_push)
        return exists.stdout.strip() if exists.returncode == 0 else ""


@contextlib.contextmanager
def _credentials(target: GitTarget) -> Iterator[dict[str, str]]:
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": target.author_name, "GIT_AUTHOR_EMAIL": target.author_email,
           "GIT_COMMITTER_NAME": target.author_name, "GIT_COMMITTER_EMAIL": target.author_email,
           "GIT_CONFIG_NOSYSTEM": "1"}
    config: list[tuple[str, str]] = [("commit.gpgsign", "false")]
    if target.username or target.password:
        token = base64.b64encode(f"{target.username}:{target.password}".encode()).decode()
        config.append(("http.extraHeader", f"Authorization: Basic {token}"))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"], env[f"GIT_CONFIG_VALUE_{index}"] = key, value
    if not target.ssh_key:
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="tether-ssh-") as directory:
        key = Path(directory) / "identity"
        key.write_text(target.ssh_key if target.ssh_key.endswith("\n") else target.ssh_key + "\n")
        key.chmod(0o600)
        env["GIT_SSH_COMMAND"] = f"ssh -i {key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
        yield env


def _git(cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = _run(cwd, env, *args, stdin=stdin)
    if done.returncode != 0:
        raise WriteBackError(f"git {' '.join(args[:2])} in {cwd} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _run(cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None,
         lease: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = ["git", *args]
    if lease is not None:
        branch, expected = lease
        # the push only lands on the tip we edited; anything newer is a race, retried from the new tip
        command.insert(2, f"--force-with-lease=refs/heads/{branch}:{expected}")
    return subprocess.run(command, cwd=cwd, env={**os.environ, **env}, input=stdin, capture_output=True, text=True,
                          check=False)


__all__ = ["DEFAULT_MESSAGE", "GitTarget", "GitWriteBack", "PushResult", "render_message"]
