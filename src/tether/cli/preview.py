"""``tether preview``: what a pull request would change in the live cluster, per affected app.

1. the files the change touches (``git diff BASE...HEAD``, what the pull request shows);
2. the Applications whose inputs (source path, Kustomize bases, chart and values files) those
   files fall under: from the cluster, or from ``--apps FILE`` when CI cannot list them;
3. per app: render base and head, validate the head (and check the ``--policy`` files), and plan
   it against the live cluster with a server-side dry-run (``make_plan(exact=True)``): nothing
   is written;
4. a Markdown (for a PR comment) or JSON report; ``--post`` creates or updates one comment.

Exit codes: 0 no change, 1 changes, 2 error, 3 invalid (an app's head fails validation or render,
or an error-severity policy does not hold).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from tether.cli.conventions import print_error
from tether.cli.preview_output import AppPreview, Change, PreviewResult, Violation, marker_for, to_json, to_markdown
from tether.errors import SourceError, TetherError, UsageError

EXIT_CHANGES, EXIT_ERROR, EXIT_INVALID = 1, 2, 3
POST_FORGES = ("github", "gitlab", "gitea", "bitbucket")


# ------------------------------------------------------------------ the repository


class Repository:
    """Base and head of the change: a local clone (PATH), or a URL fetched into the mirror cache."""

    def __init__(self, location: str, cache_dir: str = "") -> None:
        self.location = location
        self.local = Path(location).exists()
        self._scratch = Path(tempfile.mkdtemp(prefix="tether-preview-"))
        if self.local:
            self.git_dir = Path(self._git("rev-parse", "--absolute-git-dir", cwd=Path(location)))
        else:
            from tether.source import Credentials, GitCache

            self._cache = GitCache(Path(cache_dir) if cache_dir else None)
            self.git_dir = self._cache.fetch(location, Credentials.for_url(location))

    @property
    def url(self) -> str:
        """What Applications name this repository by (a local clone: its ``origin``)."""
        if not self.local:
            return self.location
        try:
            return self._git("config", "--get", "remote.origin.url")
        except SourceError:
            return str(Path(self.location).resolve())

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        command = ["git", *([] if cwd else ["--git-dir", str(self.git_dir)]), *args]
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)
        if done.returncode != 0:
            raise SourceError(f"git {args[0]} in {self.location}: {(done.stderr or done.stdout).strip()}")
        return done.stdout.strip()

    def resolve(self, ref: str) -> str:
        try:
            return self._git("rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}")
        except SourceError:
            raise UsageError(f"{ref!r} is not a commit, branch or tag of {self.location}") from None

    def changed(self, base: str, head: str) -> list[str]:
        out = self._git("diff", "--name-only", "--no-renames", f"{base}...{head}")
        return [line for line in out.splitlines() if line]

    def export(self, commit: str) -> Path:
        target = self._scratch / commit
        if not target.is_dir():
            target.mkdir()
            archive = subprocess.run(
                ["git", "--git-dir", str(self.git_dir), "archive", "--format=tar", commit],
                capture_output=True,
                check=False,
                timeout=300,
            )
            if archive.returncode != 0:
                raise SourceError(f"git archive {commit[:12]} in {self.location}: {archive.stderr.decode().strip()}")
            subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True, timeout=300)
        return target

    def close(self) -> None:
        import shutil

        shutil.rmtree(self._scratch, ignore_errors=True)


# ------------------------------------------------------------------ which apps


def load_apps_file(path: str) -> list[dict[str, Any]]:
    try:
        documents = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"--apps {path}: {error}") from None
    apps = []
    for index, document in enumerate(documents):
        items = document.get("items") if document.get("kind") == "ApplicationList" else [document]
        for item in items or []:
            if not isinstance(item, dict) or item.get("kind") != "Application":
                raise UsageError(f"--apps {path}: document {index + 1} is not an Application")
            item.setdefault("metadata", {}).setdefault("namespace", "default")
            apps.append(item)
    return apps


def affected(apps: list[dict[str, Any]], repo_url: str, changed: list[str], roots: list[Path]) -> list[dict]:
    """The apps of this repository whose inputs (at base or head) a changed path falls under."""
    from tether.delivery.inputs import app_inputs, touches
    from tether.forge import same_repository

    found = []
    for app in apps:
        source = (app.get("spec") or {}).get("source") or {}
        if not same_repository(str(source.get("url") or ""), repo_url):
            continue
        path = str(source.get("path") or "")
        values = tuple((((app.get("spec") or {}).get("render") or {}).get("helm") or {}).get("valuesFiles") or ())
        inputs = frozenset().union(*(app_inputs(root, path, values) for root in roots if (root / path).is_dir()))
        if not inputs or touches(changed, inputs):
            found.append(app)
    return sorted(found, key=lambda a: (a["metadata"]["namespace"], a["metadata"]["name"]))


# ------------------------------------------------------------------ one app


def _render(
    app: dict[str, Any], root: Path, variables: dict[str, str], keys: dict[str, str], credentials: Any = ()
) -> list[Any]:
    from tether.apps.revisions import render_options_for
    from tether.delivery.render import render_tree
    from tether.secrets import Decryptor

    options = render_options_for(app, variables, credentials)
    path = str(((app.get("spec") or {}).get("source") or {}).get("path") or "")
    return render_tree(root, path, options, Decryptor.from_key_material(keys))


async def _validate(kube: Any, manifests: list[Any], kube_version: str) -> list[str]:
    from tether.delivery.plan import validation_report

    if not manifests:
        return []
    report = await validation_report(kube, manifests, kube_version)
    return [f"{'error' if f in report.errors else 'warning'}: {f}" for f in report.findings]


def _violations(policies: list[Any], manifests: list[Any]) -> list[Violation]:
    from tether.validate.policy import evaluate

    return [
        Violation(f.policy, f.severity, f.object, f.message.removeprefix(f"policy {f.policy}: "))
        for manifest in manifests
        for f in evaluate(policies, manifest)
    ]


async def preview_app(
    app: dict[str, Any],
    kube: Any,
    base_root: Path,
    head_root: Path,
    kube_version: str,
    policies: list[Any] | None = None,
) -> AppPreview:
    """``policies``: checked on the objects validated (those the change would apply; without a cluster,
    all of the head's)."""
    from tether.apps.revisions import RenderedRevision, render_inputs, unified_diff
    from tether.controller.api import parse_application
    from tether.controller.stages import ignore_rule
    from tether.engine import Action, AppIdentity, make_plan
    from tether.model import Manifest

    meta = app["metadata"]
    result = AppPreview(meta["namespace"], meta["name"], str(app["spec"]["source"].get("path") or ""))
    try:
        typed = parse_application(app)
        variables = dict(((app["spec"].get("render") or {}).get("substitute") or {}).get("vars") or {})
        keys: dict[str, str] = {}
        credentials: tuple[tuple[str, tuple[str, str]], ...] = ()
        if kube is not None:
            variables, keys, credentials = await render_inputs(kube, app)
        try:
            head = await asyncio.to_thread(_render, app, head_root, variables, keys, credentials)
        except TetherError as error:
            result.invalid, result.error = True, f"head does not render: {error}"
            return result
        try:
            base = await asyncio.to_thread(_render, app, base_root, variables, keys, credentials)
        except TetherError:
            base = []  # the app is new (or was broken) at base: everything is new
        manifests = [m for m in head if isinstance(m, Manifest)]
        if kube is None:
            old = RenderedRevision("base", {m.ref: m.obj for m in base if isinstance(m, Manifest)})
            new = RenderedRevision("head", {m.ref: m.obj for m in manifests})
            result.render_diff = unified_diff(old, new)
            result.findings = await _validate(None, manifests, kube_version)
            result.violations = _violations(policies or [], manifests)
        else:
            identity = AppIdentity(typed.namespace, typed.name)
            plan = await make_plan(
                kube,
                manifests,
                identity,
                exact=True,
                ignore_rules=[ignore_rule(r) for r in typed.spec.ignore_differences],
                default_namespace=typed.spec.destination.namespace or typed.namespace,
            )
            for change in plan.changes:
                if change.action is Action.UNCHANGED:
                    continue
                target = result.prune if change.action is Action.DELETE else result.changes
                target.append(Change(str(change.action), change.label(), "\n".join(change.diff_lines()), change.owner))
            result.skipped = [str(s) for s in plan.skipped]
            result.prune_enabled = bool(typed.spec.sync_policy.prune)
            result.findings = await _validate(kube, plan.changed_manifests(), kube_version)
            result.violations = _violations(policies or [], plan.changed_manifests())
        result.invalid = any(f.startswith("error:") for f in result.findings) or any(
            v.severity == "error" for v in result.violations
        )
    except TetherError as error:
        result.error = str(error)
    return result


# ------------------------------------------------------------------ the whole preview


async def run_preview(
    *,
    base: str,
    head: str,
    repo: str = ".",
    kubeconfig: str | None = None,
    context: str | None = None,
    apps_file: str = "",
    namespace: str | None = None,
    kube_version: str = "1.32",
    cache_dir: str = "",
    use_cluster: bool = True,
    policies: list[Any] | None = None,
) -> PreviewResult:
    from tether.controller.api import APPLICATION_INFO
    from tether.kube import Kube

    repository = await asyncio.to_thread(Repository, repo, cache_dir)
    kube = None
    try:
        base_sha, head_sha = repository.resolve(base), repository.resolve(head)
        changed = repository.changed(base_sha, head_sha)
        base_root, head_root = repository.export(base_sha), repository.export(head_sha)
        if use_cluster:
            kube = await Kube.connect(kubeconfig=kubeconfig, context=context)
        if apps_file:
            apps = load_apps_file(apps_file)
        else:
            if kube is None:
                raise UsageError("give --apps FILE when there is no cluster to read the Applications from")
            apps = await kube.list(APPLICATION_INFO, namespace)
        if namespace:
            apps = [a for a in apps if a["metadata"]["namespace"] == namespace]
        chosen = affected(apps, repository.url, changed, [base_root, head_root])
        previews = [await preview_app(app, kube, base_root, head_root, kube_version, policies) for app in chosen]
        return PreviewResult(
            base_sha,
            head_sha,
            changed,
            previews,
            cluster=kube is not None,
            requests=dict(kube.requests) if kube is not None else {},
        )
    finally:
        if kube is not None:
            await kube.close()
        repository.close()


def exit_code(result: PreviewResult) -> int:
    if any(app.invalid for app in result.apps):
        return EXIT_INVALID
    if any(app.error for app in result.apps):
        return EXIT_ERROR
    return EXIT_CHANGES if any(app.has_changes() for app in result.apps) else 0


async def post_comment(provider: str, body: str, *, number: int, repository: str, api_url: str) -> tuple[int, bool]:
    from tether.forge import ForgeClient, ForgeRepo, token_from_env

    repo = ForgeRepo(provider, api_url.rstrip("/"), repository)
    async with ForgeClient(repo, token_from_env(provider)) as forge:
        comment, created = await forge.upsert_comment(number, body, marker_for(provider))
    return comment.id, created


def ci_defaults(provider: str, environ: dict[str, str]) -> tuple[int, str, str]:
    """(pull request number, repository, API base URL) from the CI job's environment, where it says them."""
    import json

    if provider == "gitlab":
        return (
            int(environ.get("CI_MERGE_REQUEST_IID") or 0),
            environ.get("CI_PROJECT_PATH", ""),
            environ.get("CI_API_V4_URL", ""),
        )
    if provider == "bitbucket":
        # Bitbucket Pipelines: BITBUCKET_PR_ID is set only in a pipeline a pull request runs
        workspace, slug = environ.get("BITBUCKET_WORKSPACE", ""), environ.get("BITBUCKET_REPO_SLUG", "")
        pr_id = environ.get("BITBUCKET_PR_ID", "")
        return (
            int(pr_id) if pr_id.isdigit() else 0,
            f"{workspace}/{slug}" if workspace and slug else "",
            "https://api.bitbucket.org/2.0",
        )
    number = 0
    event = environ.get("GITHUB_EVENT_PATH", "")
    if event and Path(event).is_file():
        data = json.loads(Path(event).read_text())
        number = int((data.get("pull_request") or {}).get("number") or data.get("number") or 0)
    default_api = "https://api.github.com" if provider == "github" else ""
    return number, environ.get("GITHUB_REPOSITORY", ""), environ.get("GITHUB_API_URL", default_api)


def preview_command(
    base: Annotated[str, typer.Option("--base", metavar="REF", help="The pull request's base (branch or SHA).")],
    head: Annotated[str, typer.Option("--head", metavar="REF", help="The pull request's head (branch or SHA).")],
    repo: Annotated[str, typer.Option("--repo", metavar="URL|PATH", help="The repository (default: here).")] = ".",
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", metavar="FILE", help="Kubeconfig file.")] = None,
    context: Annotated[str | None, typer.Option("--context", metavar="TEXT", help="Kubeconfig context.")] = None,
    apps_file: Annotated[
        str, typer.Option("--apps", metavar="FILE", help="Applications from this YAML file, not from the cluster.")
    ] = "",
    no_cluster: Annotated[
        bool, typer.Option("--no-cluster", help="With --apps: render diff only, no dry-run.")
    ] = False,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", metavar="TEXT", help="Only Applications of this namespace.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", metavar="markdown|json")] = "markdown",
    post: Annotated[
        str,
        typer.Option(
            "--post",
            metavar="github|gitlab|gitea|bitbucket",
            help="Create or update the preview comment on the pull request.",
        ),
    ] = "",
    pr: Annotated[int, typer.Option("--pr", metavar="NUMBER", help="Pull request (default: from the CI job).")] = 0,
    forge_repository: Annotated[
        str,
        typer.Option(
            "--forge-repository", metavar="OWNER/NAME", help="Repository on the forge (default: from the CI job)."
        ),
    ] = "",
    api_url: Annotated[str, typer.Option("--api-url", metavar="URL", help="Forge API base URL.")] = "",
    max_chars: Annotated[int, typer.Option("--max-chars", help="Bound of the Markdown report.")] = 60000,
    kube_version: Annotated[str, typer.Option("--kube-version", metavar="X.Y")] = "1.32",
    cache_dir: Annotated[str, typer.Option("--cache-dir", metavar="DIRECTORY", help="Git mirror cache.")] = "",
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", metavar="FILE", help="CEL policy file, as for tether validate (repeatable)."),
    ] = None,
) -> None:
    """Preview a pull request against the live cluster (server-side dry-run; writes nothing).

    Exit codes: 0 no change, 1 changes, 2 error, 3 invalid (validation, or a --policy of severity error).

    Example:

        tether preview --base origin/main --head HEAD --kubeconfig ./kubeconfig --post github
    """
    try:
        if output_format not in ("markdown", "json"):
            raise UsageError(f"--format must be markdown or json (got {output_format!r})")
        if post and post not in POST_FORGES:
            raise UsageError(f"--post must be one of {', '.join(POST_FORGES)} (got {post!r})")
        if no_cluster and not apps_file:
            raise UsageError("--no-cluster needs --apps FILE")
        from tether.validate.policy import load_policies

        policies = [p for file in policy or () for p in load_policies(file)]
        result = asyncio.run(
            run_preview(
                base=base,
                head=head,
                repo=repo,
                kubeconfig=kubeconfig,
                context=context,
                apps_file=apps_file,
                namespace=namespace,
                kube_version=kube_version,
                cache_dir=cache_dir,
                use_cluster=not no_cluster,
                policies=policies,
            )
        )
        markdown = to_markdown(result, max_chars=max_chars, forge=post)
        sys.stdout.write(to_json(result) if output_format == "json" else markdown)
        if post:
            number, repository, api = ci_defaults(post, dict(os.environ))
            number, repository, api = pr or number, forge_repository or repository, api_url or api
            if not (number and repository and api):
                raise UsageError(
                    f"--post {post}: give --pr, --forge-repository and --api-url (not all of them are "
                    "in the CI job's environment)"
                )
            comment, created = asyncio.run(
                post_comment(post, markdown, number=number, repository=repository, api_url=api)
            )
            print(f"{'created' if created else 'updated'} comment {comment} on {repository}#{number}", file=sys.stderr)
    except TetherError as error:
        print_error(str(error))
        raise typer.Exit(EXIT_ERROR) from None
    raise typer.Exit(exit_code(result))


def register(app: typer.Typer) -> None:
    app.command("preview")(preview_command)
