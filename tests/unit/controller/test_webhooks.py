"""Webhook verification and parsing for every provider, with payloads shaped like the providers' own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from tether.controller.webhooks import (
    MAX_BODY,
    BadPayload,
    BadSignature,
    NotConfigured,
    PushEvent,
    ReplayCache,
    Replayed,
    TooLarge,
    Unauthenticated,
    WebhookSecrets,
    WebhookVerifier,
    matches,
    normalize_repo_url,
)

SECRET = b"It's a Secret to Everybody"
SHA = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"


def hexmac(body: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def github_push(ref: str = "refs/heads/main", after: str = SHA, **extra: object) -> bytes:
    return json.dumps(
        {
            "ref": ref,
            "before": "0" * 40,
            "after": after,
            "created": False,
            "deleted": False,
            "repository": {
                "full_name": "octo/web",
                "html_url": "https://github.com/Octo/web",
                "clone_url": "https://github.com/Octo/web.git",
                "ssh_url": "git@github.com:Octo/web.git",
                "git_url": "git://github.com/Octo/web.git",
            },
            "head_commit": {"id": after},
            **extra,
        }
    ).encode()


def gitlab_push(kind: str = "push", ref: str = "refs/heads/main") -> bytes:
    return json.dumps(
        {
            "object_kind": kind,
            "event_name": kind,
            "ref": ref,
            "before": "1" * 40,
            "after": SHA,
            "checkout_sha": SHA,
            "project": {
                "path_with_namespace": "team/web",
                "web_url": "https://gitlab.example.com/team/web",
                "git_http_url": "https://gitlab.example.com/team/web.git",
                "git_ssh_url": "git@gitlab.example.com:team/web.git",
            },
            "repository": {"homepage": "https://gitlab.example.com/team/web"},
        }
    ).encode()


def bitbucket_cloud_push(kind: str = "branch", name: str = "main") -> bytes:
    return json.dumps(
        {
            "repository": {"full_name": "team/web", "links": {"html": {"href": "https://bitbucket.org/team/web"}}},
            "push": {"changes": [{"new": {"type": kind, "name": name, "target": {"hash": SHA}}, "old": None}]},
        }
    ).encode()


def bitbucket_server_push() -> bytes:
    return json.dumps(
        {
            "eventKey": "repo:refs_changed",
            "repository": {
                "slug": "web",
                "links": {
                    "clone": [
                        {"href": "ssh://git@bitbucket.example.com:7999/team/web.git", "name": "ssh"},
                        {"href": "https://bitbucket.example.com/scm/team/web.git", "name": "http"},
                    ]
                },
            },
            "changes": [
                {
                    "ref": {"id": "refs/heads/release", "displayId": "release", "type": "BRANCH"},
                    "fromHash": "1" * 40,
                    "toHash": SHA,
                    "type": "UPDATE",
                }
            ],
        }
    ).encode()


def verifier(**secrets: bytes) -> WebhookVerifier:
    defaults = dict.fromkeys(("github", "gitlab", "gitea", "bitbucket", "generic"), SECRET)
    return WebhookVerifier(WebhookSecrets(**{**defaults, **secrets}))


def test_github_push() -> None:
    body = github_push()
    event = verifier().verify(
        "github",
        {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": "sha256=" + hexmac(body)},
        body,
    )
    assert event == PushEvent(
        urls=frozenset({"github.com/octo/web"}), ref="main", commit=SHA, delivery="d-1", provider="github", is_tag=False
    )


def test_github_tag_push_and_header_case() -> None:
    body = github_push(ref="refs/tags/v1.2.0")
    event = verifier().verify(
        "github",
        {"x-github-event": "push", "x-github-delivery": "d-2", "x-hub-signature-256": "sha256=" + hexmac(body).upper()},
        body,
    )
    assert event is not None and (event.ref, event.is_tag) == ("v1.2.0", True)


@pytest.mark.parametrize("headers", [{"X-GitHub-Event": "ping"}, {"X-GitHub-Event": "pull_request"}])
def test_github_non_push_events_are_acknowledged_without_refresh(headers) -> None:
    body = json.dumps({"zen": "Keep it logically awesome."}).encode()
    signed = {**headers, "X-GitHub-Delivery": "p-1", "X-Hub-Signature-256": "sha256=" + hexmac(body)}
    assert verifier().verify("github", signed, body) is None


def test_github_branch_deletion_is_not_a_refresh() -> None:
    body = github_push(after="0" * 40, deleted=True)
    signed = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "del", "X-Hub-Signature-256": "sha256=" + hexmac(body)}
    assert verifier().verify("github", signed, body) is None


def test_gitea_push() -> None:
    body = json.dumps(
        {
            "ref": "refs/heads/develop",
            "after": SHA,
            "repository": {
                "clone_url": "http://gitea.local:3000/org/web.git",
                "ssh_url": "ssh://git@gitea.local:2222/org/web.git",
                "html_url": "http://gitea.local:3000/org/web",
            },
        }
    ).encode()
    event = verifier().verify(
        "gitea", {"X-Gitea-Event": "push", "X-Gitea-Delivery": "g-1", "X-Gitea-Signature": hexmac(body)}, body
    )
    assert event is not None and event.urls == {"gitea.local/org/web"} and event.ref == "develop"


@pytest.mark.parametrize(
    ("kind", "ref", "expected"),
    [("push", "refs/heads/main", ("main", False)), ("tag_push", "refs/tags/v2", ("v2", True))],
)
def test_gitlab_push_and_tag_push(kind, ref, expected) -> None:
    body = gitlab_push(kind, ref)
    event = verifier().verify(
        "gitlab",
        {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET.decode(), "X-Gitlab-Event-UUID": f"uuid-{kind}"},
        body,
    )
    assert event is not None and (event.ref, event.is_tag) == expected
    assert event.urls == {"gitlab.example.com/team/web"} and event.commit == SHA


def test_bitbucket_cloud_and_server() -> None:
    body = bitbucket_cloud_push()
    event = verifier().verify(
        "bitbucket",
        {"X-Event-Key": "repo:push", "X-Request-UUID": "b-1", "X-Hub-Signature": "sha256=" + hexmac(body)},
        body,
    )
    assert event is not None and event.urls == {"bitbucket.org/team/web"} and (event.ref, event.commit) == ("main", SHA)
    body = bitbucket_server_push()
    event = verifier().verify(
        "bitbucket",
        {"X-Event-Key": "repo:refs_changed", "X-Request-Id": "b-2", "X-Hub-Signature": "sha256=" + hexmac(body)},
        body,
    )
    assert event is not None and event.ref == "release"
    assert "bitbucket.example.com/team/web" in event.urls


def test_generic() -> None:
    body = json.dumps(
        {"url": "ssh://git@git.example.com/org/app.git", "ref": "refs/heads/main", "commit": SHA}
    ).encode()
    event = verifier().verify(
        "generic", {"X-Tether-Delivery": "x-1", "X-Tether-Signature": "sha256=" + hexmac(body)}, body
    )
    assert event is not None and event.urls == {"git.example.com/org/app"} and event.ref == "main"


def test_generic_requires_a_delivery_id_and_a_url() -> None:
    body = json.dumps({"url": "https://h/o/r"}).encode()
    with pytest.raises(BadPayload, match="X-Tether-Delivery"):
        verifier().verify("generic", {"X-Tether-Signature": "sha256=" + hexmac(body)}, body)
    body = json.dumps({"ref": "main"}).encode()
    with pytest.raises(BadPayload, match="'url'"):
        verifier().verify("generic", {"X-Tether-Delivery": "x", "X-Tether-Signature": "sha256=" + hexmac(body)}, body)


# -- refusals ---------------------------------------------------------------------------------------

FORGERIES = [
    ("github", {"X-GitHub-Delivery": "f"}, Unauthenticated),
    ("github", {"X-GitHub-Delivery": "f", "X-Hub-Signature-256": "sha256=" + "0" * 64}, BadSignature),
    ("github", {"X-GitHub-Delivery": "f", "X-Hub-Signature-256": "sha1=abc"}, BadSignature),
    ("gitea", {"X-Gitea-Delivery": "f", "X-Gitea-Signature": "deadbeef"}, BadSignature),
    ("gitlab", {"X-Gitlab-Event-UUID": "f", "X-Gitlab-Token": "guess"}, BadSignature),
    ("gitlab", {"X-Gitlab-Event-UUID": "f"}, Unauthenticated),
    ("bitbucket", {"X-Request-UUID": "f", "X-Hub-Signature": "sha256=00"}, BadSignature),
    ("generic", {"X-Tether-Delivery": "f", "X-Tether-Signature": "sha256=11"}, BadSignature),
]


@pytest.mark.parametrize(("provider", "headers", "error"), FORGERIES)
def test_forged_requests_are_refused_and_counted(provider, headers, error) -> None:
    checker = verifier()
    with pytest.raises(error):
        checker.verify(provider, headers, github_push())
    assert checker.rejections[error.reason] == 1
    assert len(checker.replay) == 0  # a forgery never records its delivery id


def test_signature_with_another_secret_is_refused() -> None:
    body = github_push()
    with pytest.raises(BadSignature):
        verifier().verify(
            "github", {"X-GitHub-Delivery": "a", "X-Hub-Signature-256": "sha256=" + hexmac(body, b"other secret")}, body
        )


def test_tampered_body_is_refused() -> None:
    body = github_push()
    signature = "sha256=" + hexmac(body)
    with pytest.raises(BadSignature):
        verifier().verify(
            "github", {"X-GitHub-Delivery": "a", "X-Hub-Signature-256": signature}, body.replace(b"main", b"evil")
        )


def test_replays_are_refused() -> None:
    checker = verifier()
    body = github_push()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "same", "X-Hub-Signature-256": "sha256=" + hexmac(body)}
    assert checker.verify("github", headers, body) is not None
    with pytest.raises(Replayed):
        checker.verify("github", headers, body)
    assert checker.rejections == {"replayed": 1}
    # the same id from another provider is another delivery
    gitea_headers = {"X-Gitea-Delivery": "same", "X-Gitea-Signature": hexmac(body)}
    assert checker.verify("gitea", gitea_headers, body) is not None


def test_replay_window_and_capacity() -> None:
    now = [0.0]
    cache = ReplayCache(window=60, capacity=3, clock=lambda: now[0])
    assert not cache.seen_before("a")
    assert cache.seen_before("a")
    now[0] = 61
    assert not cache.seen_before("a")  # outside the window: accepted again
    for key in ("b", "c", "d"):
        cache.seen_before(key)
    assert len(cache) == 3 and not cache.seen_before("a")  # "a" was evicted as the oldest


def test_oversized_body_is_refused_before_checking_anything() -> None:
    checker = verifier()
    with pytest.raises(TooLarge):
        checker.verify("github", {}, b"x" * (MAX_BODY + 1))
    assert checker.rejections == {"too-large": 1}


def test_provider_without_a_secret_refuses_everything() -> None:
    checker = WebhookVerifier(WebhookSecrets(github=SECRET))
    body = gitlab_push()
    with pytest.raises(NotConfigured, match="gitlab webhooks are not enabled"):
        checker.verify("gitlab", {"X-Gitlab-Token": ""}, body)


def test_non_json_body_is_a_bad_payload() -> None:
    body = b"payload=%7B%7D"
    with pytest.raises(BadPayload, match="not JSON"):
        verifier().verify(
            "github", {"X-GitHub-Delivery": "form", "X-Hub-Signature-256": "sha256=" + hexmac(body)}, body
        )


def test_secrets_from_a_secret_object() -> None:
    obj = {
        "data": {"github": base64.b64encode(b"gh-secret\n").decode(), "gitlab": base64.b64encode(b"gl").decode()},
        "stringData": {"generic": "gen"},
    }
    secrets = WebhookSecrets.from_secret(obj)
    assert (secrets.github, secrets.gitlab, secrets.generic, secrets.gitea) == (b"gh-secret", b"gl", b"gen", None)
    assert "gh-secret" not in repr(secrets)
    assert WebhookSecrets.from_secret({}) == WebhookSecrets()


# -- URL matching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo",
        "https://github.com/org/repo.git",
        "https://github.com/org/repo/",
        "ssh://git@github.com/org/repo.git",
        "ssh://git@github.com:22/org/repo.git",
        "git@github.com:org/repo.git",
        "git@github.com:org/repo",
        "https://user@GitHub.com/Org/Repo.git",
        "http://github.com:80/org/repo.git",
    ],
)
def test_normalize_repo_url_spellings_match(url: str) -> None:
    assert normalize_repo_url(url) == "github.com/org/repo"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///srv/git/Repo.git", "/srv/git/Repo"),
        ("/srv/git/Repo/", "/srv/git/Repo"),
        ("https://gitlab.example.com/group/sub/project.git", "gitlab.example.com/group/sub/project"),
    ],
)
def test_normalize_repo_url_other_forms(url: str, expected: str) -> None:
    assert normalize_repo_url(url) == expected


def test_other_repositories_do_not_match() -> None:
    assert normalize_repo_url("https://github.com/org/repo2") != normalize_repo_url("https://github.com/org/repo")
    assert normalize_repo_url("https://gitlab.com/org/repo") != normalize_repo_url("https://github.com/org/repo")


@pytest.mark.parametrize(
    ("ref_kind", "ref_value", "event_ref", "is_tag", "expected"),
    [
        ("branch", "main", "main", False, True),
        ("branch", "main", "dev", False, False),
        ("branch", "v1", "v1", True, False),
        ("tag", "v1", "v1", True, True),
        ("semver", ">=1", "v2", True, True),
        ("semver", ">=1", "main", False, False),
        (None, None, "anything", False, True),
        ("commit", "abc1234", "main", False, True),
    ],
)
def test_matches(ref_kind, ref_value, event_ref, is_tag, expected) -> None:
    event = PushEvent(urls=frozenset({"github.com/org/repo"}), ref=event_ref, commit=SHA, delivery="d", is_tag=is_tag)
    assert matches(event, "git@github.com:org/repo.git", ref_kind, ref_value) is expected
    assert not matches(event, "https://github.com/org/other", ref_kind, ref_value)
