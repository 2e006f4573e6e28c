"""PATH parsing, URL masking, semver ranges and credential plumbing (no network)."""

from __future__ import annotations

import pytest

from tether.errors import SourceError, UsageError
from tether.source import Credentials, parse_source
from tether.source.semver_range import best_match
from tether.source.url import mask_url


@pytest.mark.parametrize(
    ("argument", "url", "path", "ref"),
    [
        ("./apps/web", "", "./apps/web", ""),
        ("https://host/repo.git//apps/web?ref=v1.2.0", "https://host/repo.git", "apps/web", "v1.2.0"),
        ("https://host/repo.git", "https://host/repo.git", "", ""),
        ("file:///srv/git/repo.git?ref=main", "file:///srv/git/repo.git", "", "main"),
        ("file:///srv/git/repo.git//a/b/?ref=main", "file:///srv/git/repo.git", "a/b", "main"),
        (
            "ssh://git@host:2222/org/repo.git//deploy?ref=semver:^1.2",
            "ssh://git@host:2222/org/repo.git",
            "deploy",
            "semver:^1.2",
        ),
        ("git@host:org/repo.git//x?ref=abc1234", "git@host:org/repo.git", "x", "abc1234"),
        ("/srv/repo//apps?ref=main", "/srv/repo", "apps", "main"),
    ],
)
def test_parse_source(argument: str, url: str, path: str, ref: str) -> None:
    spec = parse_source(argument)
    assert (spec.url, spec.path, spec.ref) == (url, path, ref)
    assert spec.is_git is bool(url)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("https://host/repo.git?branch=main", "unknown source parameter"),
        ("https://host/repo.git//../etc?ref=x", "may not contain '..'"),
        ("", "must not be empty"),
    ],
)
def test_parse_source_errors(argument: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_source(argument)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://user:pa55@host/r.git", "https://user:***@host/r.git"),
        ("https://ghp_token@host/r.git", "https://***@host/r.git"),
        ("http://u:p@127.0.0.1:8080/r.git", "http://u:***@127.0.0.1:8080/r.git"),
        ("https://host/r.git", "https://host/r.git"),
        ("ssh://git@host/r.git", "ssh://git@host/r.git"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert parse_source(url + "?ref=main").masked_url == masked


TAGS = ["v1.0.0", "v1.2.0", "v1.2.5", "v1.3.0-rc.1", "v2.0.0", "latest", "0.1.2", "0.1.9", "0.2.0"]


@pytest.mark.parametrize(
    ("range_text", "expected"),
    [
        ("^1.2", "v1.2.5"),
        ("~1.2.0", "v1.2.5"),
        (">=1.0.0 <2.0.0", "v1.2.5"),
        (">=1.0.0, <1.2.1", "v1.2.0"),
        ("1.x", "v1.2.5"),
        ("*", "v2.0.0"),
        (">= 2", "v2.0.0"),
        ("^0.1.2", "0.1.9"),
        ("=1.2.0", "v1.2.0"),
        ("<1", "0.2.0"),
        (">=1.3.0-rc.0 <2", "v1.3.0-rc.1"),
        ("^3 || ~1.0", "v1.0.0"),
        ("^3", None),
    ],
)
def test_semver_ranges(range_text: str, expected: str | None) -> None:
    assert best_match(range_text, TAGS) == expected


def test_semver_range_syntax_error() -> None:
    with pytest.raises(SourceError, match="is not a version"):
        best_match(">=banana", TAGS)


def test_credentials_from_url_env_and_files(tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text("from-file\n")
    assert Credentials.for_url("https://u:p%40ss@h/r.git", {}).password == "p@ss"
    assert Credentials.for_url("https://tok@h/r.git", {}) == Credentials("git", "tok")
    env = {"TETHER_GIT_USERNAME": "bot", "TETHER_GIT_PASSWORD_FILE": str(token)}
    creds = Credentials.for_url("https://h/r.git", env)
    assert (creds.username, creds.password) == ("bot", "from-file")
    assert "from-file" not in repr(creds)
    http_env = creds.git_env("https://h/r.git")
    assert http_env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert http_env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
    ssh = Credentials.for_url(
        "ssh://git@h/r.git", {"TETHER_GIT_SSH_KEY_FILE": "/k/id", "TETHER_GIT_KNOWN_HOSTS_FILE": "/k/known"}
    )
    command = ssh.git_env("ssh://git@h/r.git")["GIT_SSH_COMMAND"]
    assert "-i /k/id" in command and "UserKnownHostsFile=/k/known" in command and "StrictHostKeyChecking=yes" in command
    with pytest.raises(SourceError, match="TETHER_GIT_PASSWORD_FILE"):
        Credentials.for_url("https://h/r.git", {"TETHER_GIT_PASSWORD_FILE": str(tmp_path / "missing")})
