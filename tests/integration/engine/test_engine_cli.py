"""``tether diff`` / ``tether apply`` as a user runs them, against the sandbox."""

from __future__ import annotations

import json

from engine_helpers import configmap, deployment, get, namespace, run, tether, write_dir


def _files(ns: str, value: str = "1") -> dict:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token", "namespace": ns},
        "stringData": {"token": f"s3cr3t-{value}"},
    }
    return {
        "00-ns.yaml": [namespace(ns)],
        "app/config.yaml": [configmap("settings", ns, level=value)],
        "app/extra.yaml": [configmap("extra", ns)],
        "app/secret.yaml": [secret],
    }


def test_diff_exit_codes_and_output(sandbox, tmp_path) -> None:
    ns = "cli-diff"
    src = write_dir(tmp_path / "src", _files(ns))
    kc = ["--kubeconfig", str(sandbox.kubeconfig)]

    first = tether("diff", str(src), "--app", "cli-diff", *kc)
    assert first.returncode == 1, first.stderr
    assert f"+ create ConfigMap {ns}/settings" in first.stdout

    applied = tether("apply", str(src), "--app", "cli-diff", *kc)
    assert applied.returncode == 0, applied.stderr
    assert "4 created" in applied.stdout

    same = tether("diff", str(src), "--app", "cli-diff", *kc)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "0 to create, 0 to adopt, 0 to update, 0 to delete, 4 unchanged" in same.stdout

    write_dir(src, _files(ns, value="2"))
    changed = tether("diff", str(src), "--app", "cli-diff", *kc)
    assert changed.returncode == 1
    assert "-  level: '1'" in changed.stdout and "+  level: '2'" in changed.stdout
    assert "s3cr3t" not in changed.stdout and "<masked sha256:" in changed.stdout
    as_json = tether("diff", str(src), "--app", "cli-diff", "-o", "json", *kc)
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["summary"] == {"create": 0, "adopt": 0, "update": 2, "unchanged": 2, "delete": 0, "conflict": 0}

    # the diff wrote nothing
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "settings", ns))["data"] == {"level": "1"}


def test_diff_error_exit_code(sandbox, tmp_path) -> None:
    src = write_dir(tmp_path / "src", {"bad.yaml": "kind: [unclosed\n"})
    result = tether("diff", str(src), "--app", "cli-bad", "--kubeconfig", str(sandbox.kubeconfig))
    assert result.returncode == 2
    assert "bad.yaml" in result.stderr


def test_bad_input_applies_and_prunes_nothing(sandbox, tmp_path) -> None:
    ns = "cli-bad-input"
    kc = ["--kubeconfig", str(sandbox.kubeconfig)]
    src = write_dir(tmp_path / "src", _files(ns))
    assert tether("apply", str(src), "--app", "cli-bad-input", "--prune", *kc).returncode == 0

    files = _files(ns, value="2")
    del files["app/extra.yaml"]  # left Git ...
    files["broken.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n"  # ... but the render fails
    write_dir(src, files)
    result = tether("apply", str(src), "--app", "cli-bad-input", "--prune", *kc)
    assert result.returncode == 2
    assert "broken.yaml" in result.stderr
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "extra", ns)) is not None
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "settings", ns))["data"] == {"level": "1"}

    files["broken.yaml"] = [{"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w", "namespace": ns}}]
    write_dir(src, files)
    result = tether("apply", str(src), "--app", "cli-bad-input", "--prune", *kc)
    assert result.returncode == 1
    assert "unknown kind Widget in apiVersion v1" in result.stderr and "broken.yaml" in result.stderr
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "extra", ns)) is not None

    files["broken.yaml"] = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typed\n  namespace: cli-bad-input\n"
        "data:\n  n: 5\n"
    )  # schema error: ConfigMap data values are strings
    write_dir(src, files)
    result = tether("apply", str(src), "--app", "cli-bad-input", "--prune", *kc)
    assert result.returncode == 1
    assert "broken.yaml:7" in result.stderr and "nothing was applied" in result.stderr
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "typed", ns)) is None
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "extra", ns)) is not None
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "settings", ns))["data"] == {"level": "1"}

    del files["broken.yaml"]
    write_dir(src, files)
    result = tether("apply", str(src), "--app", "cli-bad-input", "--prune", "-o", "json", *kc)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary == {"created": 0, "adopted": 0, "updated": 2, "deleted": 1, "unchanged": 1, "failed": 0}
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "extra", ns)) is None


def test_apply_dry_run_and_wait(sandbox, tmp_path) -> None:
    ns = "cli-dry"
    kc = ["--kubeconfig", str(sandbox.kubeconfig)]
    src = write_dir(tmp_path / "src", {"all.yaml": [namespace(ns), configmap("c", ns)]})
    result = tether("apply", str(src), "--app", "cli-dry", "--dry-run", *kc)
    assert result.returncode == 0, result.stderr
    assert "(dry run)" in result.stdout
    assert run(get(sandbox.kubeconfig, "v1", "Namespace", ns)) is None
    result = tether("apply", str(src), "--app", "cli-dry", "--wait", "--timeout", "2m", *kc)
    assert result.returncode == 0, result.stderr
    assert "all 2 objects healthy" in result.stdout


def test_unreachable_cluster(tmp_path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    src = write_dir(tmp_path / "src", {"a.yaml": [configmap("a", "default")]})
    result = tether("apply", str(src), "--app", "x", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 2
    assert "cannot reach the API server at http://127.0.0.1:9" in result.stderr


def test_wait_failure_prints_what_was_done_and_why(sandbox, tmp_path) -> None:
    ns = sandbox.create_namespace("cli-wait-fail")
    src = write_dir(
        tmp_path / "src",
        {"app.yaml": [configmap("cfg", ns), deployment("broken", ns, image="registry.example/fail:1")]},
    )
    done = tether(
        "apply",
        str(src),
        "--kubeconfig",
        str(sandbox.kubeconfig),
        "--app",
        "waitfail",
        "--inventory-namespace",
        ns,
        "--wait",
        "--timeout",
        "20s",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "waitfail: 2 created, 0 adopted, 0 updated, 0 deleted, 0 unchanged" in done.stdout
    assert f"not healthy: Deployment.apps {ns}/broken" in done.stdout
    # the Deployment's own status only counts replicas; its Pods say why (a regression test)
    assert "ImagePullBackOff" in done.stdout + done.stderr, done.stdout + done.stderr
