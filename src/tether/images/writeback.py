"""Git write-back: check out the branch, apply the chosen images, commit once, push; retry a lost race.

Each ImageUpdate keeps a working repository of its own under the automation's work directory. An
update fetches the branch, resets the checkout to it, edits the files under ``spec.path``
(``tether.images.setters``) and, only if a file changed, commits with the configured author and the
templated message, then pushes. A push refused because the branch moved (someone pushed in
between) is handled the way a rebase would: fetch the new tip, apply the same edit on top of it, try
again; the edit is recomputed, so a change someone else already made is not committed twice.

With ``rebuild_push_branch`` (pull-request mode) the push branch is made afresh on ``branch`` at
every update: one commit on top of the base branch, force-pushed (with a lease on the tip it
replaces), so the pull request always shows the current images against the current base. When the
push branch already holds exactly that (same parent, same tree), nothing is pushed.

Commits are signed when a signing key is given: SSH through git's ``gpg.format=ssh`` with the key in
a private temporary file, GPG with the key imported into a temporary ``GNUPGHOME``; keys with a
passphrase are not supported.

Credentials stay out of URLs and command lines visible to other processes: HTTPS basic auth goes in
an ``http.extraHeader`` passed through the environment (``GIT_CONFIG_*``), an SSH key in a private
temporary file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
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
    #: pull-request mode: the push branch is rebuilt on ``branch`` each time and force-pushed
    rebuild_push_branch: bool = False
    signing_format: str = ""  # "" (unsigned), "ssh" or "gpg"
    signing_key: str = field(default="", repr=False)  # the private key (OpenSSH, or ASCII-armored OpenPGP)

    @property
    def target_branch(self) -> str:
        return self.push_branch or self.branch


@dataclass
class PushResult:
    commit: str = ""  # "" when nothing changed (and nothing was pushed)
    changes: list[Change] = field(default_factory=list)
    attempts: int = 0
    message: str = ""
    pushed: bool = False  # False with a commit: the push branch already held this change (pull-request mode)


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
        text = (
            SandboxedEnvironment(keep_trailing_newline=True)
            .from_string(template or DEFAULT_MESSAGE)
            .render(
                images=images, changes=[vars(c) for c in changes], files=sorted({c.file for c in changes}), name=name
            )
        )
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
        if target.rebuild_push_branch and target.target_branch == target.branch:
            raise WriteBackError(
                f"ImageUpdate {target.name}: a pull request needs spec.git.pushBranch to name a "
                f"branch other than spec.git.branch ({target.branch})"
            )
        with _credentials(target) as env:
            if not (checkout / ".git").exists():
                checkout.mkdir(parents=True, exist_ok=True)
                _git(checkout, env, "init", "-q")
                _git(checkout, env, "remote", "add", "origin", target.url)
            for attempt in range(1, PUSH_ATTEMPTS + 1):
                lease = self._reset_to_tip(checkout, env, target)
                directory = (checkout / target.path).resolve()
                if not directory.is_relative_to(checkout.resolve()) or not directory.is_dir():
                    raise WriteBackError(
                        f"ImageUpdate {target.name}: spec.path {target.path!r} is not a directory "
                        f"of {target.url} at {target.branch}"
                    )
                changes = update_directory(checkout, directory, chosen)
                if not changes or not _git(checkout, env, "status", "--porcelain"):
                    return PushResult(attempts=attempt)
                message = render_message(target.message_template, changes, target.name)
                _git(checkout, env, "add", "-A")
                committed = _run(checkout, env, "commit", "-q", "-F", "-", stdin=message)
                if committed.returncode != 0:
                    hint = " (is the signing key valid and without a passphrase?)" if target.signing_format else ""
                    raise WriteBackError(
                        f"ImageUpdate {target.name}: git commit failed{hint}: {committed.stderr.strip()}"
                    )
                commit = _git(checkout, env, "rev-parse", "HEAD")
                if target.rebuild_push_branch and lease and _same_change(checkout, env, lease, commit):
                    return PushResult(lease, changes, attempt, message, pushed=False)
                pushed = _run(
                    checkout,
                    env,
                    "push",
                    "-q",
                    "origin",
                    f"HEAD:refs/heads/{target.target_branch}",
                    lease=(target.target_branch, lease),
                )
                if pushed.returncode == 0:
                    return PushResult(commit, changes, attempt, message, pushed=True)
                if not any(marker in pushed.stderr for marker in _RACE_MARKERS):
                    raise WriteBackError(
                        f"ImageUpdate {target.name}: git push to {target.url} "
                        f"{target.target_branch} failed: {pushed.stderr.strip()}"
                    )
            raise WriteBackError(
                f"ImageUpdate {target.name}: the branch {target.target_branch} of {target.url} "
                f"kept moving; gave up after {PUSH_ATTEMPTS} attempts (the next update tries again)"
            )

    @staticmethod
    def _reset_to_tip(checkout: Path, env: dict[str, str], target: GitTarget) -> str:
        """Check out the base of the edit; returns the push branch's remote tip ("" when it does not exist)."""
        refs = [f"+refs/heads/{target.branch}:refs/remotes/origin/{target.branch}"]
        fetched = _run(checkout, env, "fetch", "-q", "--prune", "origin", *refs)
        if fetched.returncode != 0:
            raise WriteBackError(
                f"ImageUpdate {target.name}: cannot fetch branch {target.branch} of {target.url}: "
                f"{fetched.stderr.strip()}"
            )
        base_ref = f"origin/{target.branch}"
        if target.push_branch and target.push_branch != target.branch:
            push_ref = f"+refs/heads/{target.push_branch}:refs/remotes/origin/{target.push_branch}"
            if _run(checkout, env, "fetch", "-q", "origin", push_ref).returncode == 0:
                if not target.rebuild_push_branch:
                    base_ref = f"origin/{target.push_branch}"
            else:  # gone on the remote (a merged pull request's branch deleted): forget the stale copy
                _run(checkout, env, "update-ref", "-d", f"refs/remotes/origin/{target.push_branch}")
        _git(checkout, env, "checkout", "-q", "-B", "tether-image-update", base_ref)
        _git(checkout, env, "reset", "-q", "--hard", base_ref)
        _git(checkout, env, "clean", "-q", "-fdx")
        remote_push = f"origin/{target.target_branch}"
        exists = _run(checkout, env, "rev-parse", "--verify", "-q", remote_push)
        return exists.stdout.strip() if exists.returncode == 0 else ""


def _same_change(checkout: Path, env: dict[str, str], tip: str, commit: str) -> bool:
    """Does ``tip`` already carry ``commit``'s change: the same parent and the same tree?"""

    def show(revision: str) -> str:
        done = _run(checkout, env, "show", "-s", "--format=%T %P", revision)
        return done.stdout.strip() if done.returncode == 0 else ""

    return bool(show(tip)) and show(tip) == show(commit)


@contextlib.contextmanager
def _credentials(target: GitTarget) -> Iterator[dict[str, str]]:
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": target.author_name,
        "GIT_AUTHOR_EMAIL": target.author_email,
        "GIT_COMMITTER_NAME": target.author_name,
        "GIT_COMMITTER_EMAIL": target.author_email,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    config: list[tuple[str, str]] = []
    if target.username or target.password:
        token = base64.b64encode(f"{target.username}:{target.password}".encode()).decode()
        config.append(("http.extraHeader", f"Authorization: Basic {token}"))
    with contextlib.ExitStack() as stack:
        if target.ssh_key:
            key = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tether-ssh-"))) / "identity"
            _write_private(key, target.ssh_key)
            env["GIT_SSH_COMMAND"] = f"ssh -i {key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
        config.extend(stack.enter_context(_signing(target, env)))
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (name, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"], env[f"GIT_CONFIG_VALUE_{index}"] = name, value
        yield env


@contextlib.contextmanager
def _signing(target: GitTarget, env: dict[str, str]) -> Iterator[list[tuple[str, str]]]:
    """The git configuration that signs (or, without a key, does not sign) the commits; sets GNUPGHOME."""
    if not target.signing_format:
        yield [("commit.gpgsign", "false")]
        return
    if not target.signing_key.strip():
        raise WriteBackError(f"ImageUpdate {target.name}: spec.commit.signingKey: the Secret holds no key")
    directory = Path(tempfile.mkdtemp(prefix="tether-sign-"))
    try:
        if target.signing_format == "ssh":
            key = directory / "signing-key"
            _write_private(key, target.signing_key)
            yield [("commit.gpgsign", "true"), ("gpg.format", "ssh"), ("user.signingkey", str(key))]
        elif target.signing_format == "gpg":
            directory.chmod(0o700)
            env["GNUPGHOME"] = str(directory)
            yield [
                ("commit.gpgsign", "true"),
                ("gpg.format", "openpgp"),
                ("user.signingkey", _import_gpg_key(target, env)),
            ]
        else:
            raise WriteBackError(
                f"ImageUpdate {target.name}: spec.commit.signingKey.type must be ssh or gpg, not "
                f"{target.signing_format!r}"
            )
    finally:
        if target.signing_format == "gpg" and shutil.which("gpgconf"):
            # the agent gpg started for this home would otherwise outlive it
            subprocess.run(
                ["gpgconf", "--homedir", str(directory), "--kill", "gpg-agent"], capture_output=True, check=False
            )
        shutil.rmtree(directory, ignore_errors=True)


def _import_gpg_key(target: GitTarget, env: dict[str, str]) -> str:
    """Import the armored secret key into ``env``'s GNUPGHOME; returns its fingerprint."""
    full_env = {**os.environ, **env}
    imported = subprocess.run(
        ["gpg", "--batch", "--quiet", "--import"],
        input=target.signing_key.encode(),
        env=full_env,
        capture_output=True,
        check=False,
    )
    listed = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = listed.stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("sec:"):
            fingerprint = next((row.split(":")[9] for row in lines[index + 1 :] if row.startswith("fpr:")), "")
            if fingerprint:
                return fingerprint
    reason = imported.stderr.decode("utf-8", "replace").strip() or "no secret key in it"
    raise WriteBackError(
        f"ImageUpdate {target.name}: spec.commit.signingKey: cannot import the GPG key: {reason} "
        f"(the Secret's git.asc must be an ASCII-armored secret key)"
    )


def _write_private(path: Path, text: str) -> None:
    path.write_text(text if text.endswith("\n") else text + "\n")
    path.chmod(0o600)


def _git(cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = _run(cwd, env, *args, stdin=stdin)
    if done.returncode != 0:
        raise WriteBackError(f"git {' '.join(args[:2])} in {cwd} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _run(
    cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None, lease: tuple[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = ["git", *args]
    if lease is not None:
        branch, expected = lease
        # the push only lands on the tip we edited; anything newer is a race, retried from the new tip
        command.insert(2, f"--force-with-lease=refs/heads/{branch}:{expected}")
    return subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, input=stdin, capture_output=True, text=True, check=False
    )


__all__ = ["DEFAULT_MESSAGE", "GitTarget", "GitWriteBack", "PushResult", "render_message"]
