"""The Git side of ``tether app``: render two revisions of an app and diff them; revert on the branch.

Both read ``spec.source.url`` with Git credentials from the environment (``TETHER_GIT_*``, see
``tether.source.credentials``), never from the cluster: the command acts as the user who runs it.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.engine.diff import mask_secret, to_yaml
from tether.errors import SourceError, UsageError
from tether.model import Manifest, ObjectRef
from tether.render import RenderOptions
from tether.source import Credentials, GitCache
from tether.source.url import mask_url


@dataclass(frozen=True)
class RenderedRevision:
    commit: str
    objects: dict[ObjectRef, dict[str, Any]]
    manifests: tuple[Manifest, ...] = ()


#: chart repository credentials: (URL prefix, (username, password)) entries
ChartCredentials = tuple[tuple[str, tuple[str, str]], ...]


def render_options_for(
    obj: dict[str, Any], variables: dict[str, str], chart_credentials: ChartCredentials = ()
) -> RenderOptions:
    """The RenderOptions the controller uses for this Application's spec.render."""
    from tether.controller.api import parse_application
    from tether.controller.stages import render_options_for as options_of

    return options_of(parse_application(obj), tuple(sorted(variables.items())), chart_credentials)


async def render_inputs(kube: Any, obj: dict[str, Any]) -> tuple[dict[str, str], dict[str, str], ChartCredentials]:
    """(substitution variables, SOPS keys, chart repository credentials) of an Application, read
    from its namespace as the controller reads them."""
    from tether.controller.api import parse_application
    from tether.controller.app_inputs import chart_credentials, decryption_keys, substitution_variables

    app = parse_application(obj)
    variables = dict(await substitution_variables(kube, app))
    return variables, await decryption_keys(kube, app), await chart_credentials(kube, app)


def render_revision(
    cache: GitCache,
    mirror: Path,
    obj: dict[str, Any],
    revision: str,
    options: RenderOptions,
    decryption_keys: dict[str, str],
) -> RenderedRevision:
    from tether.delivery.render import render_tree
    from tether.secrets import Decryptor

    url = obj["spec"]["source"]["url"]
    path = obj["spec"]["source"].get("path") or "."
    resolved = cache.resolve(mirror, url, revision)
    root = cache.export(mirror, url, resolved.commit)
    try:
        manifests = render_tree(
            root, "" if path == "." else path, options, Decryptor.from_key_material(decryption_keys)
        )
    except SourceError as error:
        raise SourceError(f"{mask_url(url)}@{resolved.commit[:12]}: {error} (spec.source.path)") from None
    return RenderedRevision(
        resolved.commit, {m.ref: m.obj for m in manifests if isinstance(m, Manifest)}, tuple(manifests)
    )


def render_both(
    obj: dict[str, Any],
    from_rev: str,
    to_rev: str,
    variables: dict[str, str],
    decryption_keys: dict[str, str],
    cache_dir: str = "",
    chart_credentials: ChartCredentials = (),
) -> tuple[RenderedRevision, RenderedRevision]:
    url = obj["spec"]["source"]["url"]
    cache = GitCache(Path(cache_dir) if cache_dir else None)
    mirror = cache.fetch(url, Credentials.for_url(url))
    options = render_options_for(obj, variables, chart_credentials)
    return (
        render_revision(cache, mirror, obj, from_rev, options, decryption_keys),
        render_revision(cache, mirror, obj, to_rev, options, decryption_keys),
    )


def render_current(
    obj: dict[str, Any],
    variables: dict[str, str],
    decryption_keys: dict[str, str],
    cache_dir: str = "",
    *,
    applied: bool = False,
    chart_credentials: ChartCredentials = (),
) -> RenderedRevision:
    """The app rendered at the revision the controller last resolved (else the ref's head); with
    ``applied``, at the revision it last applied when there is one."""
    url = obj["spec"]["source"]["url"]
    cache = GitCache(Path(cache_dir) if cache_dir else None)
    mirror = cache.fetch(url, Credentials.for_url(url))
    status = obj.get("status") or {}
    revision = (applied and status.get("lastAppliedRevision")) or status.get("sourceRevision") or ""
    if not revision:
        from tether.controller.api import parse_application

        ref = parse_application(obj).spec.source.ref
        revision = ref.as_ref_string() if ref else ""
    options = render_options_for(obj, variables, chart_credentials)
    return render_revision(cache, mirror, obj, revision, options, decryption_keys)


def unified_diff(old: RenderedRevision, new: RenderedRevision) -> str:
    """A unified diff per object (Secret values masked); "" when both renders are the same."""
    chunks = []
    for ref in sorted(old.objects.keys() | new.objects.keys(), key=lambda r: (r.group, r.kind, r.namespace, r.name)):
        before, after = to_yaml(mask_secret(old.objects.get(ref))), to_yaml(mask_secret(new.objects.get(ref)))
        if before == after:
            continue
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{ref} @ {old.commit[:12]}" if before else "/dev/null",
            tofile=f"{ref} @ {new.commit[:12]}" if after else "/dev/null",
        )
        chunks.append("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return "".join(chunks)


# ------------------------------------------------------------------ revert on the branch


@dataclass(frozen=True)
class RevertResult:
    branch: str
    reverted: list[str]
    new_head: str


def _git(args: list[str], cwd: Path | None, env: dict[str, str], url: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().replace(url, mask_url(url))
        raise SourceError(f"git {args[0]} in {mask_url(url)} failed: {detail}")
    return done.stdout.strip()


def revert_branch(
    obj: dict[str, Any], revision: str, user: str, on_step: Callable[[str], None] = lambda _message: None
) -> RevertResult:
    """Clone the app's repository, revert every commit after ``revision`` on its branch (one commit), push."""
    meta, source = obj["metadata"], obj["spec"]["source"]
    ref = source.get("ref") or {}
    if ref and "branch" not in ref:
        kind = next(iter(ref))
        raise UsageError(
            f"{meta['namespace']}/{meta['name']} follows {kind} {ref[kind]!r}, not a branch: a revert "
            "has nowhere to be pushed; roll back with a pin (tether app rollback NAME REV) instead"
        )
    url = source["url"]
    env = {**os.environ, **Credentials.for_url(url).git_env(url), "GIT_TERMINAL_PROMPT": "0"}
    with tempfile.TemporaryDirectory(prefix="tether-revert-") as scratch:
        work = Path(scratch) / "work"
        on_step(f"cloning {mask_url(url)}")
        clone = ["clone", "--quiet", "--no-tags", *(["--branch", ref["branch"]] if ref else []), "--", url, str(work)]
        _git(clone, None, env, url)
        branch = ref.get("branch") or _git(["rev-parse", "--abbrev-ref", "HEAD"], work, env, url)
        try:
            full = _git(["rev-parse", "--verify", "--end-of-options", f"{revision}^{{commit}}"], work, env, url)
        except SourceError:
            raise UsageError(f"revision {revision} is not in {mask_url(url)}") from None
        if (
            subprocess.run(
                ["git", "merge-base", "--is-ancestor", full, "HEAD"], cwd=work, env=env, check=False
            ).returncode
            != 0
        ):
            raise UsageError(f"revision {full[:12]} is not an ancestor of branch {branch}: nothing to revert back to")
        reverted = _git(["rev-list", f"{full}..HEAD"], work, env, url).split()
        if not reverted:
            raise UsageError(f"branch {branch} is already at {full[:12]}: nothing to revert")
        on_step(f"reverting {len(reverted)} commit(s) on {branch}")
        done = subprocess.run(
            ["git", "revert", "--no-edit", "--no-commit", f"{full}..HEAD"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            conflicted = _git(["diff", "--name-only", "--diff-filter=U"], work, env, url).split()
            what = f"conflicts in {', '.join(conflicted)}" if conflicted else (done.stderr or done.stdout).strip()
            raise SourceError(
                f"cannot revert {branch} of {mask_url(url)} to {full[:12]}: {what}; nothing was "
                "pushed. Revert by hand, or roll back with a pin: tether app rollback "
                f"{meta['name']} {full[:12]}"
            )
        subjects = _git(["log", "--format=%h %s", f"{full}..HEAD"], work, env, url)
        message = (
            f"Revert {branch} to {full[:12]}\n\nRolled back by {user} via tether app rollback --revert "
            f"({meta['namespace']}/{meta['name']}). Reverted:\n{subjects}\n"
        )
        _git(["commit", "--quiet", "--allow-empty", "-m", message], work, env, url)
        on_step(f"pushing {branch}")
        _git(["push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"], work, env, url)
        return RevertResult(branch, reverted, _git(["rev-parse", "HEAD"], work, env, url))


__all__ = [
    "RenderedRevision",
    "RevertResult",
    "render_both",
    "render_inputs",
    "render_options_for",
    "revert_branch",
    "unified_diff",
]
