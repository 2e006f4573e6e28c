"""The render / validate commands as a user runs them (a real process: exit codes matter)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import typer
import yaml

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def tether(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_render_helm_with_values_and_set() -> None:
    done = tether(
        "render",
        str(FIXTURES / "render/helm/web"),
        "-f",
        "values-prod.yaml",
        "--set",
        "image.tag=1.28.0",
        "--app",
        "shop",
        "-n",
        "web",
    )
    assert done.returncode == 0, done.stderr
    objects = list(yaml.safe_load_all(done.stdout))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 4
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28.0"
    assert deployment["metadata"]["labels"]["tether.dev/app"] == "shop"


def test_render_jsonnet_as_json() -> None:
    done = tether(
        "render",
        str(FIXTURES / "render/jsonnet"),
        "--tla-str",
        "name=api",
        "--tla-code",
        "replicas=2",
        "--ext-str",
        "env=prod",
        "-o",
        "json",
    )
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)["items"]
    assert [i["kind"] for i in items] == ["Deployment", "Service"]


def test_render_error_exit_2() -> None:
    done = tether("render", str(FIXTURES / "render/plain"), "--substitute")
    assert done.returncode == 2
    assert "variable ${REGION}" in done.stderr and "10-app.yaml:2" in done.stderr
    # substitution is opt-in: without --var or --substitute a ${VAR} is text like any other
    plain = tether("render", str(FIXTURES / "render/plain"))
    assert plain.returncode == 0 and "${REGION}" in plain.stdout
    bad = tether("render", str(FIXTURES / "render/jsonnet"), "--tla-str", "novalue")
    assert bad.returncode == 2 and "expected KEY=VALUE" in bad.stderr


def test_validate_exit_codes_and_formats(tmp_path: Path) -> None:
    valid = tether("validate", str(FIXTURES / "render/kustomize/overlays/prod"))
    assert valid.returncode == 0 and "valid" in valid.stdout
    invalid = tether("validate", str(FIXTURES / "validate/invalid"), "--format", "sarif")
    assert invalid.returncode == 1
    assert json.loads(invalid.stdout)["version"] == "2.1.0"
    junit = tether(
        "validate",
        str(FIXTURES / "validate/invalid"),
        "--format",
        "junit",
        "--policy",
        str(FIXTURES / "validate/policy.yaml"),
    )
    assert junit.returncode == 1 and ET.fromstring(junit.stdout).tag == "testsuites"
    usage = tether("validate", str(FIXTURES / "validate/invalid"), "--format", "html")
    assert usage.returncode == 2
    version = tether("validate", str(FIXTURES / "validate/invalid"), "--kube-version", "1.2")
    assert version.returncode == 2 and "no Kubernetes schemas" in version.stderr
    (tmp_path / "p.yaml").write_text("policies: [{name: x, expression: 'object.('}]\n")
    policy = tether("validate", str(FIXTURES / "validate/invalid"), "--policy", str(tmp_path / "p.yaml"))
    assert policy.returncode == 2 and "invalid CEL expression" in policy.stderr


def test_with_render_options_decorator_for_other_commands() -> None:
    from typer.testing import CliRunner

    from tether.cli.render import with_render_options
    from tether.render import RenderOptions

    app = typer.Typer()
    seen: list[RenderOptions] = []

    @app.command()
    @with_render_options
    def diff(path: str, prune: bool = False, *, render_options: RenderOptions) -> None:
        seen.append(render_options)
        typer.echo(f"{path} {prune}")

    @app.command()
    @with_render_options
    def apply(path: str, app: str = typer.Option(..., "--app"), *, render_options: RenderOptions) -> None:
        seen.append(render_options)
        typer.echo(f"{path} {app}")

    result = CliRunner().invoke(
        app,
        [
            "diff",
            "x",
            "--prune",
            "--app",
            "web",
            "-n",
            "prod",
            "-f",
            "a.yaml",
            "-f",
            "b.yaml",
            "--set",
            "a=1",
            "--var",
            "K=V",
            "--tla-code",
            "n=1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "x True"
    assert seen == [
        RenderOptions(
            app="web",
            namespace="prod",
            values_files=("a.yaml", "b.yaml"),
            set_values=("a=1",),
            variables=(("K", "V"),),
            tla_code=(("n", "1"),),
        )
    ]

    result = CliRunner().invoke(app, ["apply", "y", "--app", "shop", "-n", "x"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "y shop"
    assert seen[-1] == RenderOptions(app="shop", namespace="x")


def test_validate_missing_path_exits_2(tmp_path: Path) -> None:
    done = tether("validate", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert "nope: no such file or directory" in done.stderr


def test_validate_reports_every_file_despite_a_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "a-broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n")
    (tmp_path / "b-schema.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: two\n"
    )
    (tmp_path / "c-name.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n")
    done = tether("validate", str(tmp_path), "--format", "json")
    assert done.returncode == 1, done.stderr
    findings = json.loads(done.stdout)["findings"]
    by_file = {(f["file"].rsplit("/", 1)[-1], f["rule"]) for f in findings}
    assert {("a-broken.yaml", "yaml-syntax"), ("b-schema.yaml", "schema"), ("c-name.yaml", "invalid-name")} <= by_file


def test_empty_directory_warns_in_render_and_validate(tmp_path: Path) -> None:
    rendered = tether("render", str(tmp_path))
    assert rendered.returncode == 0
    assert f"warning: 0 objects rendered from {tmp_path}" in rendered.stderr
    validated = tether("validate", str(tmp_path))
    assert validated.returncode == 0
    assert f"warning: 0 objects rendered from {tmp_path}" in validated.stderr
    assert "0 objects rendered" in validated.stdout and "[no-objects]" in validated.stdout


def test_render_and_validate_one_file(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n")
    (tmp_path / "two.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Two_Bad\n")
    rendered = tether("render", str(tmp_path / "one.yaml"))
    assert rendered.returncode == 0 and [o["metadata"]["name"] for o in yaml.safe_load_all(rendered.stdout)] == ["one"]
    assert tether("validate", str(tmp_path / "one.yaml")).returncode == 0
    assert tether("validate", str(tmp_path / "two.yaml")).returncode == 1
