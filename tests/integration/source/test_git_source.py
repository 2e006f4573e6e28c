from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tether.errors import SourceError
from tether.render import RenderOptions, render_source
from tether.source import GitCache, fetch_source, parse_source


def version_of(result) -> str:
    return result.manifests[0].obj["data"]["version"]


@pytest.mark.parametrize(
    ("ref", "expected", "kind"),
    [
        ("", "2.0.0", "head"),
        ("HEAD", "2.0.0", "head"),
        ("main", "2.0.0", "branch"),
        ("develop", "dev", "branch"),
        ("v1.0.0", "1.0.0", "tag"),
        ("v1.2.0", "1.2.0", "tag"),  # annotated tag peeled to its commit
        ("^1.0", "1.2.0", "semver"),
        ("semver:>=1.0.0 <2.0.0", "1.2.0", "semver"),
        ("semver:*", "2.0.0", "semver"),
        ("tag:v2.0.0", "2.0.0", "tag"),
        ("branch:develop", "dev", "branch"),
    ],
)
def test_refs_over_http(git_server, work_repo: Path, tmp_path: Path, ref: str, expected: str, kind: str) -> None:
    url = git_server.publish(work_repo, "repo.git")
    cache = tmp_path / "cache"
    result = render_source(f"{url}//apps/web?ref={ref}", RenderOptions(cache_dir=str(cache)))
    assert version_of(result) == expected
    assert result.revision is not None
    assert result.revision.path == "apps/web"
    assert len(result.revision.commit) == 40
    assert result.manifests[0].source.file == "apps/web/cm.yaml"
    checkout = GitCache(cache).resolve(GitCache(cache).mirror_path(url), url, ref)
    assert checkout.kind == kind


def test_commit_sha_and_short_sha(git_server, work_repo: Path, tmp_path: Path, run_git) -> None:
    url = git_server.publish(work_repo, "repo.git")
    first = run_git(work_repo, "rev-list", "--max-parents=0", "HEAD")
    options = RenderOptions(cache_dir=str(tmp_path / "cache"))
    assert version_of(render_source(f"{url}//apps/web?ref={first}", options)) == "1.0.0"
    assert version_of(render_source(f"{url}//apps/web?ref=commit:{first[:10]}", options)).startswith("1.0.0")
    # a full SHA already in the mirror needs no network round trip
    before = len(git_server.requests)
    result = render_source(f"{url}//apps/web?ref={first}", options)
    assert result.revision.commit == first
    assert len(git_server.requests) == before


def test_export_is_content_addressed_and_reused(git_server, work_repo: Path, tmp_path: Path) -> None:
    url = git_server.publish(work_repo, "repo.git")
    cache = tmp_path / "cache"
    spec = parse_source(f"{url}//apps/web?ref=v1.0.0")
    first = fetch_source(spec, cache_dir=cache)
    assert first.root == cache / "trees" / first.revision.commit
    marker = first.root / ".reused"
    marker.write_text("x")
    second = fetch_source(spec, cache_dir=cache)
    assert second.root == first.root and marker.exists()  # same SHA: same directory, not re-exported
    assert [p.name for p in (cache / "trees").iterdir()] == [first.revision.commit]  # no temp dirs left


def test_branch_update_is_fetched(git_server, work_repo: Path, tmp_path: Path, run_git) -> None:
    url = git_server.publish(work_repo, "repo.git")
    options = RenderOptions(cache_dir=str(tmp_path / "cache"))
    old = render_source(f"{url}//apps/web?ref=main", options)
    (work_repo / "apps/web/cm.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "3.0.0"\n'
    )
    run_git(work_repo, "commit", "-q", "-am", "3.0.0")
    git_server.publish(work_repo, "repo.git")
    new = render_source(f"{url}//apps/web?ref=main", options)
    assert version_of(new) == "3.0.0" and new.revision.commit != old.revision.commit


def test_file_url_and_local_repository_path(work_repo: Path, tmp_path: Path) -> None:
    options = RenderOptions(cache_dir=str(tmp_path / "cache"))
    assert version_of(render_source(f"file://{work_repo}//apps/web?ref=v1.0.0", options)) == "1.0.0"
    assert version_of(render_source(f"{work_repo}//apps/web?ref=develop", options)) == "dev"


def test_unknown_ref_and_missing_directory(git_server, work_repo: Path, tmp_path: Path) -> None:
    url = git_server.publish(work_repo, "repo.git")
    options = RenderOptions(cache_dir=str(tmp_path / "cache"))
    for ref in ("nope", "fix-2", "v9.9.9", "release/1.x-beta=2"):
        # names that are no range (even when they hold digits, x or =) never get a semver message
        with pytest.raises(SourceError) as raised:
            render_source(f"{url}?ref={ref}", options)
        assert str(raised.value) == f"{url}: ref {ref!r} not found: no such branch, tag or commit"
    with pytest.raises(
        SourceError,
        match=r"ref '\^9' not found: no such branch, tag or commit, and no tag matches "
        r"semver range '\^9'",
    ):
        render_source(f"{url}?ref=^9", options)
    with pytest.raises(SourceError, match=r"ref '\^9' not found: no tag matches semver range"):
        render_source(f"{url}?ref=semver:^9", options)
    with pytest.raises(SourceError, match=r"no directory or file 'apps/api' in the repository"):
        render_source(f"{url}//apps/api?ref=main", options)


def test_unreachable_repository(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"git clone failed"):
        render_source(f"file://{tmp_path}/missing.git?ref=main", RenderOptions(cache_dir=str(tmp_path / "c")))


def test_credentials_from_url_and_environment_are_never_shown(
    private_git_server, work_repo: Path, tmp_path: Path, monkeypatch
) -> None:
    private_git_server.publish(work_repo, "private.git")
    options = RenderOptions(cache_dir=str(tmp_path / "cache"))
    url = private_git_server.url("private.git", "deploy:s3cret-token")
    assert version_of(render_source(f"{url}//apps/web?ref=v1.0.0", options)) == "1.0.0"
    # the mirror's config on disk holds no secret
    configs = [p.read_text() for p in (tmp_path / "cache/git").glob("*/config")]
    assert configs and not any("s3cret" in c for c in configs)
    # wrong password: the error masks the URL and does not echo the secret
    bad = private_git_server.url("private.git", "deploy:wrong-secret")
    with pytest.raises(SourceError) as info:
        render_source(f"{bad}?ref=main", RenderOptions(cache_dir=str(tmp_path / "cache2")))
    assert "wrong-secret" not in str(info.value) and "deploy:***@" in str(info.value)
    # from the environment, with the password in a file
    secret_file = tmp_path / "token"
    secret_file.write_text("s3cret-token\n")
    monkeypatch.setenv("TETHER_GIT_USERNAME", "deploy")
    monkeypatch.setenv("TETHER_GIT_PASSWORD_FILE", str(secret_file))
    plain_url = private_git_server.url("private.git")
    result = render_source(f"{plain_url}//apps/web?ref=develop", RenderOptions(cache_dir=str(tmp_path / "cache3")))
    assert version_of(result) == "dev"


def test_symlink_out_of_the_repository_is_refused(work_repo: Path, tmp_path: Path, run_git) -> None:
    os.symlink("../../../etc/passwd", work_repo / "apps/web/passwd.yaml")
    run_git(work_repo, "add", "-A")
    run_git(work_repo, "commit", "-q", "-m", "sneaky link")
    with pytest.raises(SourceError, match=r"apps/web/passwd.yaml: symlink points outside the repository"):
        render_source(f"file://{work_repo}//apps/web?ref=main", RenderOptions(cache_dir=str(tmp_path / "cache")))
    assert not (tmp_path / "cache/trees").exists() or not any((tmp_path / "cache/trees").iterdir())


def test_symlink_inside_the_repository_is_kept(work_repo: Path, tmp_path: Path, run_git) -> None:
    os.symlink("cm.yaml", work_repo / "apps/web/alias.yaml")
    run_git(work_repo, "add", "-A")
    run_git(work_repo, "commit", "-q", "-m", "inner link")
    result = render_source(f"file://{work_repo}//apps/web?ref=main", RenderOptions(cache_dir=str(tmp_path / "c")))
    assert [m.source.file for m in result.manifests] == ["apps/web/alias.yaml", "apps/web/cm.yaml"]


def test_validate_a_git_source_reports_the_revision(git_server, work_repo: Path, tmp_path: Path) -> None:
    import json

    from tether.validate import validate_source
    from tether.validate.report import render_report

    (work_repo / "apps/web/bad.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: eighty\n"
    )
    subprocess.run(["git", "-C", str(work_repo), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(work_repo), "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "bad"],
        check=True,
    )
    url = git_server.publish(work_repo, "repo.git")
    report = validate_source(f"{url}//apps/web?ref=main", RenderOptions(cache_dir=str(tmp_path / "cache")))
    sarif = json.loads(render_report(report, "sarif"))
    [run] = sarif["runs"]
    assert run["versionControlProvenance"][0]["revisionId"] == report.revision
    assert len(report.revision) == 40
    [result] = run["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "apps/web/bad.yaml"
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 7, "startColumn": 13}


def test_gc_keeps_the_most_recently_used_trees(work_repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    commits = {}
    for ref in ("v1.0.0", "v1.2.0", "v2.0.0"):
        commits[ref] = fetch_source(parse_source(f"file://{work_repo}?ref={ref}"), cache_dir=cache).revision.commit
        os.utime(cache / "trees" / commits[ref], (1_000_000 + len(commits), 1_000_000 + len(commits)))
    fetch_source(parse_source(f"file://{work_repo}?ref=v1.0.0"), cache_dir=cache)  # reuse: most recent now
    removed = GitCache(cache).gc_trees(keep=2)
    assert removed == [commits["v1.2.0"]]
    assert sorted(p.name for p in (cache / "trees").iterdir()) == sorted([commits["v1.0.0"], commits["v2.0.0"]])


def test_a_push_larger_than_git_post_buffer_is_received(private_git_server, work_repo: Path, run_git) -> None:
    """git sends a push bigger than ``http.postBuffer`` with chunked transfer encoding."""
    url = private_git_server.publish(work_repo, "repo.git")
    (work_repo / "apps/web/blob.bin").write_bytes(os.urandom(256 * 1024))  # incompressible
    run_git(work_repo, "add", "-A")
    run_git(work_repo, "commit", "-q", "-m", "a large file")
    remote = url.replace("http://", "http://deploy:s3cret-token@")
    run_git(work_repo, "-c", "http.postBuffer=4096", "push", "-q", remote, "HEAD:refs/heads/large")
    pushed = run_git(work_repo, "ls-remote", remote, "refs/heads/large").split()[0]
    assert pushed == run_git(work_repo, "rev-parse", "HEAD")
