"""Path segments are checked and escaped; which failures are retried and how long to wait."""

from __future__ import annotations

import asyncio
import random
import ssl

import httpx2 as httpx
import pytest

from tether.kube import ResourceInfo, RetryPolicy, UnsafeName, service_account_user
from tether.kube import retry as retry_rules
from tether.kube.discovery import Discovery, UnknownKind
from tether.kube.names import check_namespace, check_raw_path, check_segment

CONFIGMAPS = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
NAMESPACES = ResourceInfo("", "v1", "Namespace", "namespaces", False)
ROLES = ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False)

UNSAFE_NAMES = [
    "",
    ".",
    "..",
    "a/b",
    "x/../../namespaces/other",
    "%2e%2e",
    "a%2Fb",
    "nul\x00",
    "line\nfeed",
    "del\x7f",
    "c1\x85",
    "x" * 254,
    None,
]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_object_names_are_refused_for_every_object_path(name: object) -> None:
    with pytest.raises(UnsafeName, match="refusing to send a request"):
        CONFIGMAPS.object_path("team", name)  # type: ignore[arg-type]
    with pytest.raises(UnsafeName):
        NAMESPACES.object_path(None, name)  # type: ignore[arg-type]
    if name is not None:  # path(ns, None) is the collection; any other name must be one safe segment
        with pytest.raises(UnsafeName):
            NAMESPACES.path(None, name)  # type: ignore[arg-type]
    with pytest.raises(UnsafeName):
        CONFIGMAPS.object_path("team", "ok", name if name else "..")  # type: ignore[arg-type]


@pytest.mark.parametrize("namespace", ["", None, ".", "..", "a/b", "A", "-a", "a-", "a_b", "a.b", "x" * 64, "n\x00"])
def test_object_paths_of_namespaced_kinds_need_a_dns_label_namespace(namespace: object) -> None:
    with pytest.raises(UnsafeName):
        CONFIGMAPS.object_path(namespace, "settings")  # type: ignore[arg-type]


def test_collection_paths_check_the_namespace_and_span_all_namespaces_without_one() -> None:
    assert CONFIGMAPS.collection_path(None) == "/api/v1/configmaps"
    assert CONFIGMAPS.collection_path("") == "/api/v1/configmaps"
    assert CONFIGMAPS.collection_path("team") == "/api/v1/namespaces/team/configmaps"
    for namespace in ("..", "a/b", "Team"):
        with pytest.raises(UnsafeName):
            CONFIGMAPS.collection_path(namespace)
    with pytest.raises(UnsafeName):  # a plural from a CRD manifest is no more trusted than a name
        ResourceInfo("example.com", "v1", "Widget", "../../namespaces", True).collection_path("team")


def test_safe_names_are_escaped_into_one_segment() -> None:
    assert CONFIGMAPS.object_path("team", "settings") == "/api/v1/namespaces/team/configmaps/settings"
    assert NAMESPACES.path("ignored", "team") == "/api/v1/namespaces/team"
    assert ROLES.object_path(None, "system:controller:x@y") == (
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:controller:x@y"
    )
    assert ROLES.object_path(None, "a b?c#d") == "/apis/rbac.authorization.k8s.io/v1/clusterroles/a%20b%3Fc%23d"
    assert CONFIGMAPS.object_path("team", "s", "status") == "/api/v1/namespaces/team/configmaps/s/status"
    assert check_segment("x" * 253) == "x" * 253 and check_namespace("a" * 63) == "a" * 63
    assert check_raw_path("/version") == "/version" and check_raw_path("/apis") == "/apis"
    with pytest.raises(UnsafeName):
        check_raw_path("/api/v1/namespaces/../x")


def test_discovery_refuses_an_api_version_that_is_not_a_group_version() -> None:
    fetched: list[str] = []

    async def get_json(path: str) -> None:
        fetched.append(path)

    with pytest.raises(UnknownKind, match="cannot be served"):
        asyncio.run(Discovery(get_json).resolve("v1/../../x", "ConfigMap"))
    assert fetched == []


def test_service_account_user() -> None:
    assert service_account_user("team", "bot") == (
        "system:serviceaccount:team:bot",
        ["system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"],
    )
    with pytest.raises(UnsafeName):
        service_account_user("a/b", "bot")


def test_full_jitter_backoff_is_bounded_and_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=8, base=0.5, cap=4.0, budget=60)
    rng = random.Random(7)
    for retry in range(1, 9):
        ceiling = min(4.0, 0.5 * 2 ** (retry - 1))
        delays = [policy.delay(retry, None, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # full jitter spreads over the whole range
    assert policy.delay(1, 2.5, rng) == 2.5
    assert policy.delay(1, 30.0, rng) == 4.0
    assert RetryPolicy() == RetryPolicy(attempts=8, base=0.2, cap=5.0, budget=60.0)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_which_failures_are_retried() -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        for status in (429, 500, 502, 503, 504):
            assert retry_rules.status_retryable(status, method, "application/apply-patch+yaml")
        for status in (400, 401, 403, 404, 409, 410, 422, 501):
            assert not retry_rules.status_retryable(status, method, None)
    # a POST may have created its object before a 5xx: repeated only after a 429
    assert retry_rules.status_retryable(429, "POST", "application/json")
    assert not any(retry_rules.status_retryable(s, "POST", "application/json") for s in (500, 502, 503, 504))
    assert not retry_rules.status_retryable(500, "PATCH", "application/json-patch+json")

    request = httpx.Request("GET", "http://x")
    refused = httpx.ConnectError("refused", request=request)
    reset = httpx.ReadError("reset", request=request)
    read_timeout = httpx.ReadTimeout("slow", request=request)
    assert retry_rules.transport_retryable(refused, "POST", "application/json")
    assert retry_rules.transport_retryable(httpx.ConnectTimeout("t", request=request), "POST", "application/json")
    assert not retry_rules.transport_retryable(reset, "POST", "application/json")
    assert not retry_rules.transport_retryable(read_timeout, "POST", "application/json")
    assert retry_rules.transport_retryable(reset, "GET", None)
    assert retry_rules.transport_retryable(read_timeout, "DELETE", None)
    assert retry_rules.transport_retryable(httpx.RemoteProtocolError("eof", request=request), "PUT", None)


def test_certificate_errors_are_not_retried() -> None:
    request = httpx.Request("GET", "https://x")
    try:
        try:
            raise ssl.SSLCertVerificationError("certificate verify failed")
        except ssl.SSLError as cause:
            raise httpx.ConnectError("certificate verify failed", request=request) from cause
    except httpx.ConnectError as error:
        assert not retry_rules.transport_retryable(error, "GET", None)
