"""The forge client, the commit status reporter and ``tether preview --post`` against a loopback
forge implementing the documented GitHub, GitLab and Gitea endpoints."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import pytest
from forge_fake import TOKEN, FakeForge
from prometheus_client import CollectorRegistry

from tether.cli.preview import post_comment
from tether.cli.preview_output import MARKER
from tether.controller.reports import AppReport
from tether.forge import ForgeClient, ForgeError, ForgeRepo, forge_repo
from tether.kube import Kube
from tether.notify.delivery import NotifyMetrics
from tether.notify.status import CommitStatusReporter

SHA = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
PROVIDERS = ["github", "gitlab", "gitea"]


@pytest.fixture(params=PROVIDERS)
def forge(request: pytest.FixtureRequest) -> Iterator[FakeForge]:
    server = FakeForge(request.param)
    yield server
    server.shutdown()


def test_status_and_comment_upsert_follow_each_api(forge: FakeForge) -> None:
    repo = ForgeRepo(forge.provider, forge.api_url, "acme/shop")

    async def scenario() -> None:
        async with ForgeClient(repo, TOKEN) as client:
            await client.set_status(SHA, "pending", "tether/shop/web", "applying", "https://ci.example/1")
            await client.set_status(SHA, "failure", "tether/shop/web", "x" * 300)
            first, created = await client.upsert_comment(7, f"{MARKER}\nfirst", MARKER)
            assert created
            await client.create_comment(7, "a human's comment")
            second, created = await client.upsert_comment(7, f"{MARKER}\nsecond", MARKER)
            assert not created and second.id == first.id
            comments = await client.list_comments(7)
            assert [c.body for c in comments] == [f"{MARKER}\nsecond", "a human's comment"]

    asyncio.run(scenario())
    pending, failure = forge.statuses
    name = "name" if forge.provider == "gitlab" else "context"
    assert pending[name] == failure[name] == "tether/shop/web"
    assert pending["state"] == ("running" if forge.provider == "gitlab" else "pending")
    assert failure["state"] == ("failed" if forge.provider == "gitlab" else "failure")
    assert pending["target_url"] == "https://ci.example/1" and "target_url" not in failure
    assert len(failure["description"]) == 140
    assert pending["repo"] == ("acme%2Fshop" if forge.provider == "gitlab" else "acme/shop")
    methods = [method for method, _path, _body in forge.requests]
    assert methods.count("PUT" if forge.provider == "gitlab" else "PATCH") == 1


def test_pull_request_upsert_finds_the_open_one_of_its_branch(forge: FakeForge) -> None:
    repo = ForgeRepo(forge.provider, forge.api_url, "acme/shop")

    async def scenario() -> None:
        async with ForgeClient(repo, TOKEN) as client:
            assert await client.find_pull_request("image-updates", "main") is None
            other = await client.create_pull_request("feature", "main", "someone else's", "")
            first, created = await client.upsert_pull_request("image-updates", "main", "Update api", "to 1.1.0")
            assert created and first.number != other.number
            assert (first.head, first.base, first.title) == ("image-updates", "main", "Update api")
            second, created = await client.upsert_pull_request("image-updates", "main", "Update api", "to 1.2.0")
            assert not created and second.number == first.number and second.url == first.url
            found = await client.find_pull_request("image-updates", "main")
            assert found is not None and found.number == first.number
            assert await client.find_pull_request("image-updates", "release") is None

    asyncio.run(scenario())
    pulls = sorted(forge.pulls.values(), key=lambda p: p["number"])
    assert [(p["head"], p["body"]) for p in pulls] == [("feature", ""), ("image-updates", "to 1.2.0")]
    assert {p["repo"] for p in pulls} == {"acme%2Fshop" if forge.provider == "gitlab" else "acme/shop"}
    methods = [method for method, _path, _body in forge.requests]
    assert methods.count("PUT" if forge.provider == "gitlab" else "PATCH") == 1
    assert methods.count("POST") == 2


def test_a_refused_token_names_the_request_not_the_token(forge: FakeForge) -> None:
    repo = ForgeRepo(forge.provider, forge.api_url, "acme/shop")

    async def scenario() -> ForgeError:
        async with ForgeClient(repo, "wrong-token") as client:
            with pytest.raises(ForgeError) as caught:
                await client.set_status(SHA, "success", "tether/shop/web")
            return caught.value

    error = asyncio.run(scenario())
    assert error.status == 401 and not error.retryable
    assert "answered 401: Bad credentials (check the token" in str(error)
    assert "/statuses/" in str(error) and "wrong-token" not in str(error)


def test_forge_and_repository_from_source_urls() -> None:
    github = forge_repo("git@github.com:acme/shop.git")
    assert (github.provider, github.api_url, github.path) == ("github", "https://api.github.com", "acme/shop")
    gitlab = forge_repo("https://gitlab.com/acme/platform/shop.git//deploy?ref=main")
    assert (gitlab.provider, gitlab.path) == ("gitlab", "acme/platform/shop")
    assert gitlab.commit_link(SHA) == f"https://gitlab.com/acme/platform/shop/-/commit/{SHA}"
    hosted = forge_repo("https://git.example.com/acme/shop", provider="gitea")
    assert hosted.api_url == "https://git.example.com/api/v1"
    with pytest.raises(Exception, match="cannot tell which forge serves"):
        forge_repo("https://git.example.com/acme/shop.git")


def test_commit_status_reporter_posts_pending_success_and_failure(sandbox, sandbox_namespace) -> None:
    forge = FakeForge("gitea")
    ns = sandbox_namespace
    source = f"http://127.0.0.1:{forge.server_address[1]}/acme/shop.git"
    app = {
        "metadata": {
            "name": "web",
            "namespace": ns,
            "annotations": {
                "tether.dev/commit-status": "gitea",
                "tether.dev/commit-status-secret": "forge-token",
                "tether.dev/commit-status-api-url": forge.api_url,
            },
        }
    }

    def report(phase: str, revision: str = SHA, **fields: object) -> AppReport:
        return AppReport(ns, "web", phase, revision=revision, source_url=source, **fields)  # type: ignore[arg-type]

    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            await kube.create(
                await kube.info("v1", "Secret"),
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "forge-token", "namespace": ns},
                    "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
                },
            )
            metrics = NotifyMetrics(CollectorRegistry())
            reporter = CommitStatusReporter(
                kube, lambda n, name: app if (n, name) == (ns, "web") else None, metrics, environ={}
            )
            await reporter.on_report(report("started"))
            await reporter.on_report(report("finished", kinds=("Deployed",), ready=True, message="3 objects"))
            await reporter.on_report(report("finished", ready=True, message="3 objects"))  # a resync: no post
            await reporter.on_report(report("finished", kinds=("Progressing",), ready=False))  # nothing to say
            other = "b" * 40
            await reporter.on_report(report("started", revision=other))
            await reporter.on_report(
                report(
                    "finished",
                    revision=other,
                    kinds=("SyncFailed",),
                    ready=False,
                    reason="ApplyFailed",
                    message="Deployment web: replicas < 0",
                )
            )
            await reporter.on_report(AppReport(ns, "unannotated", "started", revision=SHA, source_url=source))
            assert metrics.statuses.labels("gitea", "failure", "success")._value.get() == 1

    try:
        asyncio.run(scenario())
    finally:
        forge.shutdown()
    assert [(s["sha"][:1], s["state"], s["description"]) for s in forge.statuses] == [
        ("a", "pending", f"applying {SHA[:12]}"),
        ("a", "success", "Ready: 3 objects"),
        ("b", "pending", "applying bbbbbbbbbbbb"),
        ("b", "failure", "ApplyFailed: Deployment web: replicas < 0"),
    ]
    assert {s["context"] for s in forge.statuses} == {f"tether/{ns}/web"}
    assert {s["repo"] for s in forge.statuses} == {"acme/shop"}


def test_preview_post_creates_then_updates_one_comment(monkeypatch: pytest.MonkeyPatch) -> None:
    forge = FakeForge("github")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("TETHER_FORGE_TOKEN", raising=False)
    try:
        first = asyncio.run(
            post_comment("github", f"{MARKER}\none", number=3, repository="acme/shop", api_url=forge.api_url)
        )
        second = asyncio.run(
            post_comment("github", f"{MARKER}\ntwo", number=3, repository="acme/shop", api_url=forge.api_url)
        )
    finally:
        forge.shutdown()
    assert first == (second[0], True) and second[1] is False
    assert [c["body"] for c in forge.comments.values()] == [f"{MARKER}\ntwo"]
