"""Bitbucket Cloud pull-request comments and pull requests, and ``tether preview --post bitbucket``, against
a loopback server implementing the documented API 2.0 endpoints (paged ``values`` + ``next``, 404 for a
pull request the repository does not have, 401 without a valid token)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import markdown
import pytest
import yaml
from forge_fake import BASIC_USER, TOKEN, FakeForge

from tether.cli.preview import ci_defaults, post_comment
from tether.cli.preview_output import BITBUCKET_MARKER, AppPreview, Change, PreviewResult, to_markdown
from tether.forge import ForgeClient, ForgeError, ForgeRepo

REPO = "acme/shop"
SHA = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"


@pytest.fixture
def forge() -> Iterator[FakeForge]:
    server = FakeForge("bitbucket")
    yield server
    server.shutdown()


def client(forge: FakeForge, token: str = TOKEN) -> ForgeClient:
    return ForgeClient(ForgeRepo("bitbucket", forge.api_url, REPO), token)


def test_the_first_post_creates_the_comment_and_the_second_updates_it(
    forge: FakeForge, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = forge.open_pull(REPO, "feature", "main")
    monkeypatch.setenv("BITBUCKET_TOKEN", TOKEN)
    monkeypatch.delenv("TETHER_FORGE_TOKEN", raising=False)

    def post(body: str) -> tuple[int, bool]:
        return asyncio.run(post_comment("bitbucket", body, number=number, repository=REPO, api_url=forge.api_url))

    first = post(f"{BITBUCKET_MARKER}\none")

    async def human() -> None:
        async with client(forge) as forge_client:
            await forge_client.create_comment(number, "looks fine to me")

    asyncio.run(human())
    second = post(f"{BITBUCKET_MARKER}\ntwo")
    assert first[1] is True and second == (first[0], False)
    assert [c["body"] for c in forge.comments.values()] == [f"{BITBUCKET_MARKER}\ntwo", "looks fine to me"]
    creates = [body for method, _path, body in forge.requests if method == "POST"]
    assert creates[0] == {"content": {"raw": f"{BITBUCKET_MARKER}\none"}}
    puts = [path for method, path, _body in forge.requests if method == "PUT"]
    assert puts == [f"/2.0/repositories/{REPO}/pullrequests/{number}/comments/{first[0]}"]


def test_our_comment_on_the_second_page_is_found_by_following_next(forge: FakeForge) -> None:
    forge.max_pagelen = 2  # Bitbucket caps pagelen: the client must follow next, not count items
    number = forge.open_pull(REPO, "feature", "main")

    async def scenario() -> None:
        async with client(forge) as forge_client:
            for text in ("first", "second", "third"):
                await forge_client.create_comment(number, text)
            ours = await forge_client.create_comment(number, f"{BITBUCKET_MARKER}\nold")
            forge.requests.clear()
            updated, created = await forge_client.upsert_comment(number, f"{BITBUCKET_MARKER}\nnew", BITBUCKET_MARKER)
            assert not created and updated.id == ours.id

    asyncio.run(scenario())
    assert [c["body"] for c in forge.comments.values()] == ["first", "second", "third", f"{BITBUCKET_MARKER}\nnew"]
    lists = [path for method, path, _ in forge.requests if method == "GET"]
    assert len(lists) == 2 and "page=2" in lists[1], lists
    assert [method for method, _path, _body in forge.requests].count("POST") == 0


def test_a_next_link_off_the_api_is_not_followed_with_the_token(forge: FakeForge) -> None:
    forge.max_pagelen = 1
    forge.next_root = "http://127.0.0.2:9"
    number = forge.open_pull(REPO, "feature", "main")
    forge.comments[1] = {"id": 1, "n": str(number), "body": "one"}
    forge.comments[2] = {"id": 2, "n": str(number), "body": "two"}

    async def scenario() -> ForgeError:
        async with client(forge) as forge_client:
            with pytest.raises(ForgeError) as caught:
                await forge_client.list_comments(number)
            return caught.value

    error = asyncio.run(scenario())
    assert "the next page is not on" in str(error) and "127.0.0.2:9" in str(error)
    assert len(forge.requests) == 1


def test_a_refused_token_names_the_forge_and_the_url_not_the_token(forge: FakeForge) -> None:
    number = forge.open_pull(REPO, "feature", "main")

    async def scenario() -> ForgeError:
        async with client(forge, "wrong-s3cret") as forge_client:
            with pytest.raises(ForgeError) as caught:
                await forge_client.upsert_comment(number, f"{BITBUCKET_MARKER}\nx", BITBUCKET_MARKER)
            return caught.value

    error = asyncio.run(scenario())
    url = f"{forge.api_url}/repositories/{REPO}/pullrequests/{number}/comments"
    assert error.status == 401 and not error.retryable
    assert str(error).startswith(f"bitbucket GET {url} answered 401: Token is invalid or not supported")
    assert "check the token" in str(error) and "wrong-s3cret" not in str(error)


def test_an_unknown_pull_request_is_a_404_naming_it(forge: FakeForge) -> None:
    async def scenario() -> ForgeError:
        async with client(forge) as forge_client:
            with pytest.raises(ForgeError) as caught:
                await forge_client.create_comment(404, f"{BITBUCKET_MARKER}\nx")
            return caught.value

    error = asyncio.run(scenario())
    assert error.status == 404 and "/pullrequests/404/comments answered 404: Pull request not found" in str(error)
    assert forge.comments == {}


def test_an_app_password_goes_as_basic_auth_and_statuses_follow_the_api(forge: FakeForge) -> None:
    async def scenario() -> None:
        async with client(forge, f"{BASIC_USER}:{TOKEN}") as forge_client:
            await forge_client.set_status(SHA, "pending", "tether/shop/web", "applying", "https://ci.example/1")

    asyncio.run(scenario())
    (status,) = forge.statuses
    assert (status["key"], status["state"], status["url"]) == ("tether/shop/web", "INPROGRESS", "https://ci.example/1")


def test_pull_request_upsert_finds_the_open_one_across_pages(forge: FakeForge) -> None:
    forge.max_pagelen = 1

    async def scenario() -> None:
        async with client(forge) as forge_client:
            assert await forge_client.find_pull_request("image-updates", "main") is None
            other = await forge_client.create_pull_request("feature", "main", "someone else's", "")
            first, created = await forge_client.upsert_pull_request("image-updates", "main", "Update api", "to 1.1")
            assert created and first.number != other.number
            assert (first.head, first.base, first.title) == ("image-updates", "main", "Update api")
            assert first.url == f"https://forge.test/{REPO}/pull-requests/{first.number}"
            second, created = await forge_client.upsert_pull_request("image-updates", "main", "Update api", "to 1.2")
            assert not created and second.number == first.number
            assert await forge_client.find_pull_request("image-updates", "release") is None

    asyncio.run(scenario())
    assert [(p["head"], p["body"]) for p in forge.pulls.values()] == [("feature", ""), ("image-updates", "to 1.2")]
    assert [method for method, _path, _body in forge.requests].count("PUT") == 1
    assert all("state=OPEN" in path for method, path, _ in forge.requests if method == "GET")


def test_the_bitbucket_report_shows_neither_its_marker_nor_html() -> None:
    """Bitbucket renders comments with Python-Markdown and escapes raw HTML: the marker must render as nothing."""
    result = PreviewResult(
        "a" * 40,
        "b" * 40,
        ["base/settings.yaml"],
        [AppPreview("shop", "web", "deploy", [Change("update", "ConfigMap/web", "-a\n+b")])],
    )
    body = to_markdown(result, forge="bitbucket")
    assert body.startswith(BITBUCKET_MARKER + "\n") and "<" not in body, body
    assert "<details>" not in body and "#### shop/web (deploy): 1 update" in body
    html = markdown.markdown(body, extensions=["fenced_code"])
    assert "tether:preview" not in html and "<h4>shop/web (deploy): 1 update</h4>" in html


def test_the_pull_request_and_repository_come_from_bitbucket_pipelines() -> None:
    environ = {"BITBUCKET_WORKSPACE": "acme", "BITBUCKET_REPO_SLUG": "shop", "BITBUCKET_PR_ID": "12"}
    assert ci_defaults("bitbucket", environ) == (12, "acme/shop", "https://api.bitbucket.org/2.0")
    assert ci_defaults("bitbucket", {"BITBUCKET_WORKSPACE": "acme"})[:2] == (0, "")


def test_preview_post_bitbucket_from_the_pipelines_variables(forge: FakeForge, tmp_path: Path) -> None:
    number = forge.open_pull(REPO, "feature", "main")
    work = tmp_path / "work"
    work.mkdir()
    identity = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "base"]):
        subprocess.run(["git", *args], cwd=work, env={**os.environ, **identity}, check=True)
    (work / "README.md").write_text("docs\n")
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "docs"], cwd=work, env={**os.environ, **identity}, check=True)
    apps = tmp_path / "apps.yaml"
    apps.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "tether.dev/v1alpha1",
                "kind": "Application",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"source": {"url": "https://bitbucket.org/acme/other.git", "path": "deploy"}},
            }
        )
    )
    environ = {
        **{k: v for k, v in os.environ.items() if k != "TETHER_FORGE_TOKEN"},
        "BITBUCKET_TOKEN": TOKEN,
        "BITBUCKET_WORKSPACE": "acme",
        "BITBUCKET_REPO_SLUG": "shop",
        "BITBUCKET_PR_ID": str(number),
    }
    command = [sys.executable, "-m", "tether.cli.main", "preview", "--base", "HEAD~1", "--head", "HEAD"]
    command += ["--apps", str(apps), "--no-cluster", "--post", "bitbucket", "--api-url", forge.api_url]
    for _ in range(2):
        done = subprocess.run(command, cwd=work, env=environ, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert f"updated comment 1000 on {REPO}#{number}" in done.stderr
    (comment,) = forge.comments.values()
    assert comment["body"].startswith(BITBUCKET_MARKER) and "No Application's inputs are touched" in comment["body"]
