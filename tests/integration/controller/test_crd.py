"""The Application CRD against the sandbox with real kubectl: install, defaults, refusals, explain,
printer columns, and the models reading what the server stored."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import pytest
import yaml

from tether.controller.api import APPLICATION_INFO, CRD_NAME, install_crd, load_crd, parse_application
from tether.kube import Kube

KUBECTL = shutil.which("kubectl") or "kubectl"


def kubectl(sandbox, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(sandbox.kubeconfig), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def crd_installed(sandbox) -> None:
    async def install() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            info = await install_crd(kube)
            assert (info.plural, info.namespaced) == ("applications", True)
            assert await install_crd(kube) == info  # idempotent

    asyncio.run(install())


def application(name: str, namespace: str, source: dict | None = None, **spec: object) -> str:
    body = {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": {"url": "https://git.example.com/team/web.git", **(source or {})}, **spec},
    }
    return yaml.safe_dump(body)


def test_crd_is_established_with_the_pinned_names(sandbox, crd_installed) -> None:
    crd = json.loads(kubectl(sandbox, "get", "crd", CRD_NAME, "-o", "json").stdout)
    assert crd["spec"]["names"]["kind"] == "Application"
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1"]
    assert any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
    resources = kubectl(sandbox, "api-resources", "--api-group=tether.dev", "-o", "wide").stdout
    assert "applications" in resources and "tapp" in resources and "Application" in resources


def test_valid_application_is_defaulted_by_the_server(sandbox, sandbox_namespace, crd_installed) -> None:
    kubectl(sandbox, "apply", "-f", "-", stdin=application("web", sandbox_namespace, {"ref": {"branch": "main"}}))
    stored = json.loads(kubectl(sandbox, "get", "applications", "web", "-n", sandbox_namespace, "-o", "json").stdout)
    spec = stored["spec"]
    assert spec["interval"] == "1m"
    assert spec["revisionHistoryLimit"] == 10
    assert spec["syncPolicy"] == {"automated": True, "prune": False, "selfHeal": False, "allowEmpty": False}
    assert spec["retry"] == {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
    assert spec["source"]["path"] == "."
    assert (spec["suspend"], spec["wait"], spec["timeout"]) == (False, False, "5m")
    app = parse_application(stored)
    assert app.key == (sandbox_namespace, "web")
    assert app.spec.interval.total_seconds() == 60
    assert app.spec.source.ref is not None and app.spec.source.ref.as_ref_string() == "branch:main"
    assert app.generation == 1


@pytest.mark.parametrize(
    ("spec", "field", "why"),
    [
        ({"interval": "5 minutes"}, "spec.interval", "should match"),
        ({"source": {"ref": {"branch": "main", "tag": "v1"}}}, "spec.source.ref", "at most 1 properties"),
        ({"source": {"ref": {}}}, "spec.source.ref", "at least 1 properties"),
        ({"source": {"ref": {"commit": "not-a-sha"}}}, "spec.source.ref.commit", "should match"),
        ({"syncPolicy": {"prune": "yes"}}, "spec.syncPolicy.prune", "must be of type boolean"),
        (
            {"render": {"substitute": {"from": [{"kind": "Deployment", "name": "x"}]}}},
            "spec.render.substitute.from[0].kind",
            "Unsupported value",
        ),
        ({"revisionHistoryLimit": -1}, "spec.revisionHistoryLimit", "greater than or equal to 0"),
        ({"source": {"url": "ftp://example.com/repo"}}, "spec.source.url", "should match"),
        ({"dependsOn": [{"namespace": "x"}]}, "spec.dependsOn[0].name", "Required value"),
        (
            {"source": {"verify": {"mode": "x509", "secretRef": {"name": "keys"}}}},
            "spec.source.verify.mode",
            "Unsupported value",
        ),
    ],
)
def test_invalid_applications_are_refused(sandbox, sandbox_namespace, crd_installed, spec, field, why) -> None:
    result = kubectl(sandbox, "apply", "-f", "-", check=False, stdin=application("bad", sandbox_namespace, **spec))
    assert result.returncode != 0, result.stdout
    assert "is invalid" in result.stderr and field in result.stderr and why in result.stderr, result.stderr
    missing = kubectl(sandbox, "get", "applications", "bad", "-n", sandbox_namespace, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_kubectl_explain_describes_the_spec(sandbox, crd_installed) -> None:
    out = " ".join(kubectl(sandbox, "explain", "application.spec.source").stdout.split())
    for field in ("url <string> -required-", "ref <Object>", "path <string>", "secretRef <Object>", "verify <Object>"):
        assert field in out
    assert "an absolute local path, file://" in out
    out = kubectl(sandbox, "explain", "applications.spec.syncPolicy.selfHeal").stdout
    assert "boolean" in out and "drift" in out


def test_get_applications_shows_the_printer_columns(sandbox, sandbox_namespace, crd_installed) -> None:
    kubectl(sandbox, "apply", "-f", "-", stdin=application("shop", sandbox_namespace))

    async def report() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            await kube.patch(
                APPLICATION_INFO,
                "shop",
                sandbox_namespace,
                {
                    "status": {
                        "lastAppliedRevision": "0123abc",
                        "sync": {"status": "Synced"},
                        "health": {"status": "Healthy"},
                        "conditions": [
                            {
                                "type": "Ready",
                                "status": "True",
                                "reason": "ReconciliationSucceeded",
                                "message": "applied 0123abc",
                                "lastTransitionTime": "2024-01-01T00:00:00Z",
                            }
                        ],
                    }
                },
                subresource="status",
            )

    asyncio.run(report())
    lines = kubectl(sandbox, "get", "applications", "-n", sandbox_namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "REVISION", "SYNCED", "HEALTH", "AGE"]
    row = next(line.split() for line in lines[1:] if line.startswith("shop"))
    assert row[:5] == ["shop", "https://git.example.com/team/web.git", "0123abc", "Synced", "Healthy"]
    wide = kubectl(sandbox, "get", "tapp", "shop", "-n", sandbox_namespace, "-o", "wide").stdout.splitlines()
    assert "READY" in wide[0].split() and "MESSAGE" in wide[0].split()
    assert "applied 0123abc" in wide[1]


def test_status_is_a_subresource(sandbox, sandbox_namespace, crd_installed) -> None:
    body = yaml.safe_load(application("status-test", sandbox_namespace))
    body["status"] = {"lastAppliedRevision": "ffffffff"}
    kubectl(sandbox, "apply", "-f", "-", stdin=yaml.safe_dump(body))
    stored = json.loads(
        kubectl(sandbox, "get", "application", "status-test", "-n", sandbox_namespace, "-o", "json").stdout
    )
    assert "lastAppliedRevision" not in (stored.get("status") or {})  # the main resource ignores status


def test_crd_file_matches_the_loaded_data() -> None:
    crd = load_crd()
    assert crd["metadata"]["name"] == CRD_NAME
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Source", "Revision", "Synced", "Health", "Age"]
