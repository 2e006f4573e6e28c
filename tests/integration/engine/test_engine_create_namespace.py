"""``--create-namespace``: the destination namespace is created for the app, labelled, never pruned."""

from __future__ import annotations

import json

from engine_helpers import configmap, get, request_counts, run, tether, write_dir, writes_between


def _apply(sandbox, src, app: str, *extra: str):  # type: ignore[no-untyped-def]
    return tether("apply", str(src), "--app", app, "--kubeconfig", str(sandbox.kubeconfig), *extra)


def test_missing_destination_fails_without_the_flag(sandbox, tmp_path) -> None:
    src = write_dir(tmp_path / "src", {"cm.yaml": [configmap("settings", "cn-missing", level="1")]})
    result = _apply(sandbox, src, "cn-missing", "--namespace", "cn-missing")
    assert result.returncode == 2
    assert "namespace cn-missing does not exist" in result.stderr
    assert "--create-namespace" in result.stderr and "ConfigMap cn-missing/settings" in result.stderr
    assert run(get(sandbox.kubeconfig, "v1", "Namespace", "cn-missing")) is None


def test_create_namespace_creates_it_labelled_and_outside_the_inventory(sandbox, tmp_path) -> None:
    ns = "cn-created"
    src = write_dir(tmp_path / "src", {"cm.yaml": [configmap("settings", ns, level="1")]})
    flags = ("--namespace", ns, "--create-namespace")

    diff = tether("diff", str(src), "--app", "cn-app", "--kubeconfig", str(sandbox.kubeconfig), *flags)
    assert diff.returncode == 1, diff.stderr
    assert f"+ create Namespace {ns}  (--create-namespace)" in diff.stdout, diff.stdout
    assert f"+ create ConfigMap {ns}/settings" in diff.stdout, diff.stdout
    assert run(get(sandbox.kubeconfig, "v1", "Namespace", ns)) is None, "diff wrote the namespace"

    first = _apply(sandbox, src, "cn-app", *flags)
    assert first.returncode == 0, first.stderr
    created = run(get(sandbox.kubeconfig, "v1", "Namespace", ns))
    labels = created["metadata"]["labels"]
    assert labels["tether.dev/app"] == "cn-app" and labels["tether.dev/app-namespace"] == "tether-system"
    assert labels["app.kubernetes.io/managed-by"] == "tether"
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "settings", ns))["data"] == {"level": "1"}
    inventory = run(get(sandbox.kubeconfig, "v1", "ConfigMap", "tether-inventory-cn-app", "tether-system"))
    assert "ConfigMap" in json.dumps(inventory["data"]) and "Namespace" not in json.dumps(inventory["data"])

    before = request_counts(sandbox.url)
    again = _apply(sandbox, src, "cn-app", *flags)
    assert again.returncode == 0, again.stderr
    assert writes_between(before, request_counts(sandbox.url)) == {}

    # prune never removes it: the render empties out, the ConfigMap goes, the namespace stays
    empty = write_dir(tmp_path / "empty", {"cm.yaml": [configmap("other", ns, level="2")]})
    pruned = _apply(sandbox, empty, "cn-app", *flags, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert run(get(sandbox.kubeconfig, "v1", "ConfigMap", "settings", ns)) is None
    assert run(get(sandbox.kubeconfig, "v1", "Namespace", ns))["metadata"]["uid"] == created["metadata"]["uid"]


def test_an_existing_namespace_is_left_untouched(sandbox, tmp_path) -> None:
    ns = sandbox.create_namespace("cn-existing")
    before = run(get(sandbox.kubeconfig, "v1", "Namespace", ns))
    src = write_dir(tmp_path / "src", {"cm.yaml": [configmap("settings", ns, level="1")]})
    diff = tether(
        "diff",
        str(src),
        "--app",
        "cn-keep",
        "--kubeconfig",
        str(sandbox.kubeconfig),
        "-n",
        ns,
        "--create-namespace",
        "-o",
        "json",
    )
    assert diff.returncode == 1, diff.stderr
    assert [c["kind"] for c in json.loads(diff.stdout)["changes"]] == ["ConfigMap"]
    result = _apply(sandbox, src, "cn-keep", "--namespace", ns, "--create-namespace")
    assert result.returncode == 0, result.stderr
    after = run(get(sandbox.kubeconfig, "v1", "Namespace", ns))
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "tether.dev/app" not in (after["metadata"].get("labels") or {})
