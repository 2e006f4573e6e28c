"""Retries against the sandbox's fault injection: transient failures are ridden out, others are not."""

from __future__ import annotations

from typing import Any

import pytest
from kube_helpers import Cluster, run

from tether.kube import Invalid, Kube, NotFound, RetryPolicy, ServerError, TooManyRequests

WRITES = ("create", "update", "patch", "delete")
QUICK = RetryPolicy(attempts=4, base=0.01, cap=0.05)


def _flaky(seed: int) -> dict[str, Any]:
    """20% 500s on every write verb, 20% 429s (Retry-After: 1) on every other verb. The sandbox
    keeps one rule per verb, so writes see the 500s and reads the 429s."""
    errors: dict[str, Any] = {verb: {"rate": 0.2, "code": 500} for verb in WRITES}
    errors["*"] = {"rate": 0.2, "code": 429}
    return {"errors": errors, "seed": seed}


def _cm(name: str, ns: str, value: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"v": value}}


async def _namespace(kube: Kube, name: str) -> str:
    await kube.apply(
        await kube.info("v1", "Namespace"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    return name


def test_applies_gets_lists_and_deletes_ride_out_transient_failures(faults: Cluster) -> None:
    async def scenario() -> None:
        kube = await Kube.connect(kubeconfig=str(faults.kubeconfig))
        try:
            ns = await _namespace(kube, "retry-series")
            cms = await kube.info("v1", "ConfigMap")
            faults.faults(_flaky(seed=11))
            for i in range(12):
                await kube.apply(cms, _cm(f"c{i}", ns))
            for i in range(12):
                assert (await kube.get(cms, f"c{i}", ns))["data"] == {"v": "1"}
            for i in range(0, 12, 2):
                await kube.apply(cms, _cm(f"c{i}", ns, "2"))
            assert sorted(c["data"]["v"] for c in await kube.list(cms, ns)).count("2") == 6
            for i in range(6):
                assert await kube.delete(cms, f"c{i}", ns) in (True, False)
            left = sorted(c["metadata"]["name"] for c in await kube.list(cms, ns))
            assert left == sorted(f"c{i}" for i in range(6, 12))
            failed = {key: n for key, n in kube.responses.items() if key[1] >= 400}
            assert any(code == 500 for _, code in failed) and any(code == 429 for _, code in failed), failed
            assert sum(kube.responses.values()) == sum(kube.requests.values()) + sum(failed.values())
        finally:
            faults.clear_faults()
            await kube.close()

    run(scenario())


def test_a_create_is_repeated_after_429_but_never_after_500(faults: Cluster) -> None:
    generated = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-", "namespace": ""}}

    async def scenario() -> None:
        kube = await Kube.connect(kubeconfig=str(faults.kubeconfig), retry=QUICK)
        try:
            ns = await _namespace(kube, "retry-create")
            cms = await kube.info("v1", "ConfigMap")
            obj = {**generated, "metadata": {**generated["metadata"], "namespace": ns}}
            faults.faults({"errors": {"create": {"rate": 1.0, "code": 500}}})
            with pytest.raises(ServerError, match="500"):
                await kube.create(cms, obj)
            assert kube.responses[("POST", 500)] == 1
            faults.faults({"errors": {"create": {"rate": 0.5, "code": 429}}, "seed": 3})
            for _ in range(4):
                await kube.create(cms, obj)
            assert kube.responses[("POST", 429)] >= 1
            faults.clear_faults()
            made = [c for c in await kube.list(cms, ns) if c["metadata"]["name"].startswith("gen-")]
            assert len(made) == 4  # one object per create, however often it was tried
        finally:
            faults.clear_faults()
            await kube.close()

    run(scenario())


def test_persistent_failures_give_up_after_the_bounded_attempts(faults: Cluster) -> None:
    async def scenario() -> None:
        kube = await Kube.connect(kubeconfig=str(faults.kubeconfig), retry=QUICK)
        try:
            ns = await _namespace(kube, "retry-bounded")
            cms = await kube.info("v1", "ConfigMap")
            faults.faults({"errors": {"*": {"rate": 1.0, "code": 500}}})
            with pytest.raises(ServerError, match=r"injected fault.*gave up after 4 attempts"):
                await kube.get(cms, "x", ns)
            assert kube.responses[("GET", 500)] == 4
            with pytest.raises(ServerError):
                await kube.apply(cms, _cm("x", ns))
            assert kube.responses[("PATCH", 500)] == 4
            faults.faults({"errors": {"*": {"rate": 1.0, "code": 503}}})
            with pytest.raises(ServerError):
                await kube.delete(cms, "x", ns)
            assert kube.responses[("DELETE", 503)] == 4
            faults.faults({"errors": {"*": {"rate": 1.0, "code": 429}}})
            with pytest.raises(TooManyRequests) as caught:
                await kube.list(cms, ns)
            assert caught.value.retry_after == 1.0 and kube.responses[("GET", 429)] == 4

            # the time budget bounds the attempts too: waits of 0.05 s fit only a few times in 0.12 s
            budgeted = kube.impersonate("system:admin", ["system:masters"])
            budgeted.retry = RetryPolicy(attempts=1000, base=0.05, cap=0.05, budget=0.12)
            faults.faults({"errors": {"*": {"rate": 1.0, "code": 500}}})
            before = kube.responses[("GET", 500)]
            with pytest.raises(ServerError, match="gave up after"):
                await budgeted.get(cms, "x", ns)
            assert 1 < kube.responses[("GET", 500)] - before < 1000
        finally:
            faults.clear_faults()
            await kube.close()

    run(scenario())


def test_errors_that_will_not_go_away_are_not_retried(faults: Cluster) -> None:
    async def scenario() -> None:
        kube = await Kube.connect(kubeconfig=str(faults.kubeconfig), retry=QUICK)
        try:
            ns = await _namespace(kube, "retry-never")
            cms = await kube.info("v1", "ConfigMap")
            with pytest.raises(NotFound):
                await kube.patch(cms, "missing", ns, {"data": {"a": "b"}})
            assert kube.responses[("PATCH", 404)] == 1
            assert await kube.get(cms, "missing", ns) is None
            assert kube.responses[("GET", 404)] == 1
            with pytest.raises(Invalid):
                await kube.apply(cms, {**_cm("bad", ns), "data": {"k": {"not": "a string"}}})
            assert kube.responses[("PATCH", 422)] == 1
            faults.faults({"errors": {"get": {"rate": 1.0, "code": 403}}})
            with pytest.raises(Exception, match="403"):
                await kube.get(cms, "x", ns)
            assert kube.responses[("GET", 403)] == 1
        finally:
            faults.clear_faults()
            await kube.close()

    run(scenario())
