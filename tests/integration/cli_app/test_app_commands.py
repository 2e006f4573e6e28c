"""``tether app`` against the sandbox, with the test playing the controller where one is needed."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import yaml
from cli_app_helpers import call, get_app, kubectl, sha, tether, write_status

from tether.apps.ops import APPLICATION, CASCADE_FINALIZER, EVENT, REFRESH_ANNOTATION, SYNC_ANNOTATION

URL = "https://git.example.com/team/deploy.git"


def _create(kc: list[str], ns: str, name: str = "web", *extra: str) -> None:
    done = tether("app", "create", name, "--url", URL, "--path", "apps/web", "-n", ns, *kc, *extra)
    assert done.returncode == 0, done.stderr


def test_create_dry_run_prints_the_application_and_creates_nothing(kc, sandbox_namespace) -> None:
    done = tether(
        "app",
        "create",
        "web",
        "--url",
        URL,
        "--path",
        "apps/web",
        "--tag",
        "v1.2.0",
        "--dest-namespace",
        "web",
        "--create-namespace",
        "--no-auto",
        "--prune",
        "--self-heal",
        "--interval",
        "5m",
        "--service-account",
        "deployer",
        "--depends-on",
        "infra/db",
        "--depends-on",
        "cache",
        "--dry-run",
        "-n",
        sandbox_namespace,
        *kc,
    )
    assert done.returncode == 0, done.stderr
    app = yaml.safe_load(done.stdout)
    assert app["apiVersion"] == "tether.dev/v1alpha1" and app["kind"] == "Application"
    assert app["metadata"] == {"name": "web", "namespace": sandbox_namespace}
    spec = app["spec"]
    assert spec["source"] == {"url": URL, "path": "apps/web", "ref": {"tag": "v1.2.0"}}
    assert spec["destination"] == {"namespace": "web", "createNamespace": True}
    assert spec["syncPolicy"] == {"automated": False, "prune": True, "selfHeal": True}
    assert spec["interval"] == "5m" and spec["serviceAccountName"] == "deployer"
    assert spec["dependsOn"] == [{"namespace": "infra", "name": "db"}, {"name": "cache"}]
    assert get_app(Path(kc[1]), "web", sandbox_namespace) is None


def test_create_refuses_two_refs_and_bad_interval(kc, sandbox_namespace) -> None:
    two = tether("app", "create", "web", "--url", URL, "--branch", "main", "--tag", "v1", "--dry-run")
    assert two.returncode == 2 and "at most one of" in two.stderr
    bad = tether("app", "create", "web", "--url", URL, "--interval", "soon", "--dry-run")
    assert bad.returncode == 2 and "--interval" in bad.stderr


def test_create_list_get_describe(installed, kc, sandbox_namespace) -> None:
    ns = sandbox_namespace
    _create(kc, ns, "web", "--branch", "main")
    _create(kc, ns, "api")
    write_status(
        installed.kubeconfig,
        "web",
        ns,
        {
            "lastAppliedRevision": sha(10),
            "sourceRevision": sha(10),
            "sync": {"status": "Synced"},
            "health": {"status": "Degraded", "message": "Deployment web: 0/2 ready"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "HealthCheckFailed",
                    "message": "not healthy",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
            "drift": [{"object": f"ConfigMap {ns}/settings", "fields": [".data.level"], "manager": "kubectl-edit"}],
            "history": [
                {
                    "revision": sha(10),
                    "author": "Ann <ann@example.com>",
                    "subject": "bump web",
                    "deployedAt": "2026-01-02T00:00:00Z",
                    "result": "Succeeded",
                    "objects": {"total": 3},
                }
            ],
        },
    )
    app = get_app(installed.kubeconfig, "web", ns)
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.1", "namespace": ns},
        "involvedObject": {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "Application",
            "name": "web",
            "namespace": ns,
            "uid": app["metadata"]["uid"],
        },
        "type": "Warning",
        "reason": "HealthCheckFailed",
        "message": "Deployment web is not ready",
        "lastTimestamp": "2026-01-02T00:00:01Z",
        "source": {"component": "tether-controller"},
    }
    other = {
        **event,
        "metadata": {"name": "api.1", "namespace": ns},
        "involvedObject": {**event["involvedObject"], "name": "api", "uid": "x"},
        "message": "about api",
    }
    call(installed.kubeconfig, lambda kube: kube.create(EVENT, event))
    call(installed.kubeconfig, lambda kube: kube.create(EVENT, other))

    listed = tether("app", "list", "-n", ns, *kc)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "REVISION", "SYNCED", "HEALTH", "AGE"]
    assert lines[1].split()[:5] == ["api", URL, "-", "Unknown", "Unknown"]
    assert lines[2].split()[:5] == ["web", URL, sha(10)[:7], "Synced", "Degraded"]

    wide = tether("app", "list", "-A", "-o", "wide", *kc)
    row = next(line.split() for line in wide.stdout.splitlines() if line.startswith(ns) and " web " in line)
    assert row[0] == ns and row[7] == "apps/web" and "Ann" in row[9:]
    assert wide.stdout.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]

    as_json = tether("app", "list", "-n", ns, "-o", "json", *kc)
    assert [i["metadata"]["name"] for i in json.loads(as_json.stdout)["items"]] == ["api", "web"]
    got = tether("app", "get", "web", "-n", ns, "-o", "yaml", *kc)
    assert yaml.safe_load(got.stdout)["status"]["health"]["status"] == "Degraded"
    missing = tether("app", "get", "nope", "-n", ns, *kc)
    assert missing.returncode == 2 and f"Application {ns}/nope not found" in missing.stderr

    described = tether("app", "describe", "web", "-n", ns, *kc)
    assert described.returncode == 0, described.stderr
    text = described.stdout
    assert "Ref:         branch:main" in text and "Path:        apps/web" in text
    assert "Ready        False    HealthCheckFailed" in text
    assert f"ConfigMap {ns}/settings: .data.level by kubectl-edit" in text
    assert f"{sha(10)[:7]}  Succeeded" in text and "bump web" in text
    assert "Deployment web is not ready" in text and "about api" not in text


def test_suspend_resume_pin_unpin(installed, kc, sandbox_namespace) -> None:
    ns = sandbox_namespace
    _create(kc, ns)
    assert tether("app", "suspend", "web", "-n", ns, *kc).returncode == 0
    assert get_app(installed.kubeconfig, "web", ns)["spec"]["suspend"] is True
    assert tether("app", "resume", "web", "-n", ns, *kc).returncode == 0
    assert get_app(installed.kubeconfig, "web", ns)["spec"]["suspend"] is False

    write_status(
        installed.kubeconfig,
        "web",
        ns,
        {
            "lastAppliedRevision": sha(2),
            "history": [{"revision": sha(2), "result": "Succeeded"}, {"revision": sha(1), "result": "Succeeded"}],
        },
    )
    pinned = tether("app", "rollback", "web", sha(1)[:8], "-n", ns, *kc)
    assert pinned.returncode == 0, pinned.stderr
    pin = get_app(installed.kubeconfig, "web", ns)["spec"]["pin"]
    assert pin["revision"] == sha(1)  # the short sha is expanded from the history
    assert pin["reason"].startswith("rollback by ") and pin["reason"].endswith(" via tether app rollback")
    assert tether("app", "unpin", "web", "-n", ns, *kc).returncode == 0
    assert "pin" not in get_app(installed.kubeconfig, "web", ns)["spec"]
    # kubectl sees the same object
    assert (
        kubectl(installed.kubeconfig, "get", "applications.tether.dev", "web", "-n", ns, "-o", "name").stdout.strip()
        == "application.tether.dev/web"
    )


def test_delete_with_and_without_cascade(installed, kc, sandbox_namespace) -> None:
    ns = sandbox_namespace
    _create(kc, ns, "keep")
    _create(kc, ns, "gone")
    plain = tether("app", "delete", "keep", "-n", ns, *kc)
    assert plain.returncode == 0, plain.stderr
    assert get_app(installed.kubeconfig, "keep", ns) is None
    cascade = tether("app", "delete", "gone", "--cascade", "-n", ns, *kc)
    assert cascade.returncode == 0, cascade.stderr
    # no controller runs here: the finalizer holds the object, marked for deletion, until it prunes
    left = get_app(installed.kubeconfig, "gone", ns)
    assert left is not None and CASCADE_FINALIZER in left["metadata"]["finalizers"]
    assert left["metadata"].get("deletionTimestamp")
    call(installed.kubeconfig, lambda kube: kube.patch(APPLICATION, "gone", ns, {"metadata": {"finalizers": None}}))
    assert get_app(installed.kubeconfig, "gone", ns) is None


def test_sync_and_refresh_set_annotations(installed, kc, sandbox_namespace) -> None:
    ns = sandbox_namespace
    _create(kc, ns)
    done = tether("app", "sync", "web", "-n", ns, *kc)
    assert done.returncode == 0, done.stderr
    first = get_app(installed.kubeconfig, "web", ns)["metadata"]["annotations"][SYNC_ANNOTATION]
    assert first.endswith("Z") and first in done.stdout
    assert tether("app", "sync", "web", "-n", ns, *kc).returncode == 0
    second = get_app(installed.kubeconfig, "web", ns)["metadata"]["annotations"][SYNC_ANNOTATION]
    assert second > first  # a new request is a new value
    assert tether("app", "refresh", "web", "-n", ns, *kc).returncode == 0
    assert get_app(installed.kubeconfig, "web", ns)["metadata"]["annotations"][REFRESH_ANNOTATION]
    missing = tether("app", "sync", "nope", "-n", ns, *kc)
    assert missing.returncode == 2 and "not found" in missing.stderr


def _fake_controller(kubeconfig, ns: str, ready: str) -> threading.Thread:  # type: ignore[no-untyped-def]
    """Wait for the sync annotation, then record it as handled with a Ready condition."""

    def run() -> None:
        for _ in range(600):
            app = get_app(kubeconfig, "web", ns)
            value = ((app or {}).get("metadata", {}).get("annotations") or {}).get(SYNC_ANNOTATION)
            if value:
                write_status(
                    kubeconfig,
                    "web",
                    ns,
                    {
                        "lastHandledSyncAt": value,
                        "lastAppliedRevision": sha(3),
                        "conditions": [
                            {
                                "type": "Ready",
                                "status": ready,
                                "reason": "Succeeded" if ready == "True" else "ApplyFailed",
                                "message": "applied 3 objects"
                                if ready == "True"
                                else "Deployment web: spec.replicas: must be >= 0",
                                "lastTransitionTime": "2026-01-01T00:00:00Z",
                            }
                        ],
                    },
                )
                return
            time.sleep(0.1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_sync_wait_reports_ready(installed, kc, sandbox_namespace) -> None:
    ns = sandbox_namespace
    _create(kc, ns, "web", "--no-auto")
    write_status(installed.kubeconfig, "web", ns, {"lastHandledSyncAt": "2020-01-01T00:00:00Z"})  # an older request
    thread = _fake_controller(installed.kubeconfig, ns, "True")
    done = tether("app", "sync", "web", "--wait", "--timeout", "60s", "-n", ns, *kc)
    thread.join(10)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"synced at {sha(3)[:7]}: Ready" in done.stdout


def test_sync_wait_not_ready_exits_1(installed, kc, sandbox_namespace) -> None:
    ns = sandbox_namespace
    _create(kc, ns)
    thread = _fake_controller(installed.kubeconfig, ns, "False")
    done = tether("app", "sync", "web", "--wait", "--timeout", "60s", "-n", ns, *kc)
    thread.join(10)
    assert done.returncode == 1
    assert "not Ready: ApplyFailed: Deployment web: spec.replicas" in done.stderr


def test_sync_wait_times_out_when_nobody_handles_it(installed, kc, sandbox_namespace) -> None:
    ns = sandbox_namespace
    _create(kc, ns)
    done = tether("app", "sync", "web", "--wait", "--timeout", "1s", "-n", ns, *kc)
    assert done.returncode == 1
    assert "did not handle the sync request within 1s" in done.stderr


def test_history_and_default_rollback_revision(installed, kc, sandbox_namespace) -> None:
    ns = sandbox_namespace
    _create(kc, ns)
    # newest first: sha(5) failed after the current sha(4); sha(3) failed; sha(2) is the one to go back to
    write_status(
        installed.kubeconfig,
        "web",
        ns,
        {
            "lastAppliedRevision": sha(4),
            "history": [
                {"revision": sha(5), "result": "Failed", "subject": "broken"},
                {
                    "revision": sha(4),
                    "result": "Succeeded",
                    "subject": "current",
                    "author": "Bo <bo@example.com>",
                    "deployedAt": "2026-01-03T00:00:00Z",
                    "objects": {"total": 4, "updated": 1},
                },
                {"revision": sha(3), "result": "Failed", "subject": "bad"},
                {"revision": sha(2), "result": "Succeeded", "subject": "good"},
                {"revision": sha(1), "result": "Succeeded", "subject": "older"},
            ],
        },
    )
    shown = tether("app", "history", "web", "-n", ns, *kc)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:5] == ["REVISION", "RESULT", "DEPLOYED", "AUTHOR", "SUBJECT"]
    assert [line.split()[0] for line in lines[1:]] == [sha(n)[:7] for n in (5, 4, 3, 2, 1)]
    assert "current" in lines[2] and "total=4 updated=1" in lines[2]

    done = tether("app", "rollback", "web", "-n", ns, *kc)
    assert done.returncode == 0, done.stderr
    assert get_app(installed.kubeconfig, "web", ns)["spec"]["pin"]["revision"] == sha(2)

    unknown = tether("app", "rollback", "web", "abcdef0", "-n", ns, *kc)
    assert unknown.returncode == 2 and "not in status.history" in unknown.stderr
    forced = tether("app", "rollback", "web", "abcdef0", "--force", "-n", ns, *kc)
    assert forced.returncode == 0, forced.stderr
    assert get_app(installed.kubeconfig, "web", ns)["spec"]["pin"]["revision"] == "abcdef0"


def test_rollback_without_an_earlier_success_is_refused(installed, kc, sandbox_namespace) -> None:
    ns = sandbox_namespace
    _create(kc, ns)
    write_status(
        installed.kubeconfig,
        "web",
        ns,
        {
            "lastAppliedRevision": sha(7),
            "history": [{"revision": sha(7), "result": "Succeeded"}, {"revision": sha(6), "result": "Failed"}],
        },
    )
    done = tether("app", "rollback", "web", "-n", ns, *kc)
    assert done.returncode == 2 and "no earlier successful revision" in done.stderr
    assert "pin" not in get_app(installed.kubeconfig, "web", ns)["spec"]


def test_create_takes_the_ref_as_one_option() -> None:
    import subprocess
    import sys

    import yaml

    def create(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "tether.cli.main",
                "app",
                "create",
                "web",
                "-n",
                "shop",
                "--url",
                "https://git.example.com/apps.git",
                *flags,
                "--dry-run",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    for flag, expected in (
        ("tag:v1.2.0", {"tag": "v1.2.0"}),
        ("main", {"branch": "main"}),
        ("semver:>=1.0", {"semver": ">=1.0"}),
    ):
        done = create("--ref", flag)
        assert done.returncode == 0, done.stderr
        assert yaml.safe_load(done.stdout)["spec"]["source"]["ref"] == expected
    assert create("--ref", "main", "--tag", "v1").returncode == 2
