"""The registry client and policies against the real distribution registry (htpasswd, TLS, tokens)."""

from __future__ import annotations

import asyncio

import pytest
from localregistry import TAGS, LocalRegistry, PagingProxy

from tether.images import Credentials, RegistryClient, RegistryOptions, RegistryUnauthorized, parse_image_name
from tether.images.policy import parse_policy


def list_tags(image: str, **options: object) -> tuple[list[str], RegistryClient]:
    async def main() -> tuple[list[str], RegistryClient]:
        async with RegistryClient(RegistryOptions(**options)) as client:  # type: ignore[arg-type]
            return await client.list_tags(parse_image_name(image)), client

    return asyncio.run(main())


def test_every_page_of_tags_is_read_and_policies_choose(registry: LocalRegistry, paging: PagingProxy) -> None:
    tags, client = list_tags(
        f"{paging.host}/team/api",
        insecure=True,
        page_size=5,
        credentials=Credentials(registry.username, registry.password),
    )
    assert sorted(tags) == sorted(TAGS)
    assert client.stats.pages == 3  # 12 tags, 5 a page
    semver = parse_policy({"policy": {"semver": {"range": ">=1.0.0 <2.0.0"}}})
    assert semver.latest(tags) == "1.10.0"  # numeric, not string, order; v1.9.3 is a version too
    assert parse_policy({"policy": {"semver": {"range": ">=2.0.0-0"}}}).latest(tags) == "2.0.0-rc.1"
    numerical = parse_policy(
        {
            "policy": {"numerical": {"order": "asc"}},
            "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)", "extract": "$ts"},
        }
    )
    assert numerical.latest(tags) == "main-0ff0ff0-1000"  # 1000 > 100 > 99; dev-* filtered out
    alphabetical = parse_policy({"policy": {"alphabetical": {"order": "asc"}}, "filterTags": {"pattern": "^RELEASE"}})
    assert alphabetical.latest(tags) == "RELEASE.2024-03-01"


def test_a_token_challenge_is_followed_over_tls(token_registry: LocalRegistry) -> None:
    tags, client = list_tags(
        f"{token_registry.host}/team/web", ca_pem=token_registry.ca_pem, credentials=Credentials("robot", "s3cret")
    )
    assert sorted(tags) == ["0.9.0", "1.0.0", "1.1.0", "1.1.1-rc.1"]
    assert client.stats.token_requests == 1
    assert parse_policy({"policy": {"semver": {"range": "~1.1"}}}).latest(tags) == "1.1.0"


@pytest.mark.parametrize("which", ["htpasswd", "token"])
def test_wrong_credentials_are_a_clear_error(
    which: str, registry: LocalRegistry, token_registry: LocalRegistry
) -> None:
    target = registry if which == "htpasswd" else token_registry
    options = {"insecure": True} if which == "htpasswd" else {"ca_pem": target.ca_pem}
    with pytest.raises(RegistryUnauthorized) as caught:
        list_tags(f"{target.host}/team/api", credentials=Credentials(target.username, "wrong"), **options)
    message = str(caught.value)
    assert target.host in message and "spec.secretRef" in message
    assert "wrong" not in message  # the password is never shown


def test_without_credentials_the_error_says_to_set_a_secret(registry: LocalRegistry) -> None:
    with pytest.raises(RegistryUnauthorized, match=r"set spec\.secretRef"):
        list_tags(f"{registry.host}/team/api", insecure=True)


def test_manifest_digest(registry: LocalRegistry) -> None:
    async def main() -> str:
        options = RegistryOptions(insecure=True, credentials=Credentials(registry.username, registry.password))
        async with RegistryClient(options) as client:
            return await client.manifest_digest(parse_image_name(f"{registry.host}/team/api"), "1.2.0")

    digest = asyncio.run(main())
    assert digest.startswith("sha256:") and len(digest) == 71
