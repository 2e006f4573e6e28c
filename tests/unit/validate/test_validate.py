from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import UsageError
from tether.model import Manifest, SourceLocation
from tether.render import RenderOptions
from tether.validate import load_policies, validate_manifests, validate_source
from tether.validate.findings import finding_from_error

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PREFIX = "tests/fixtures/"


def rules(report) -> list[tuple[str, str, int | None, str]]:
    return [(f.rule, f.file.removeprefix(PREFIX), f.line, f.field) for f in report.findings]


def test_valid_sets_pass() -> None:
    for path, options in [
        ("render/plain", RenderOptions(variables=(("REGION", "eu"),))),
        ("render/kustomize/overlays/prod", RenderOptions()),
        ("render/helm/web", RenderOptions(values_files=("values-prod.yaml",))),
        ("render/jsonnet", RenderOptions(tla_str=(("name", "x"),), ext_str=(("env", "e"),))),
    ]:
        report = validate_source(FIXTURES / path, options)
        assert report.valid, (path, [str(f) for f in report.findings])
        assert report.objects > 0


def test_schema_errors_with_field_lines() -> None:
    report = validate_source(FIXTURES / "validate/invalid", RenderOptions())
    found = rules(report)
    assert ("schema", "validate/invalid/deploy.yaml", 6, ".spec.replicas") in found
    assert (
        "unknown-field",
        "validate/invalid/deploy.yaml",
        19,
        ".spec.template.spec.containers[0].ports[0].protocoll",
    ) in found
    replicas = next(f for f in report.findings if f.field == ".spec.replicas")
    assert "'two' is not of type 'integer'" in replicas.message
    assert replicas.column == 13 and replicas.object == "Deployment.apps web"
    assert not report.valid


def test_duplicates_and_unknown_kinds() -> None:
    report = validate_source(FIXTURES / "validate/invalid", RenderOptions())
    found = {(f.rule, f.line): f for f in report.findings if f.file.endswith("more.yaml")}
    duplicate = found[("duplicate-object", 8)]
    assert "duplicate of tests/fixtures/validate/invalid/more.yaml:1 (ConfigMap settings)" in duplicate.message
    gadget = found[("unknown-kind", 15)]
    assert "unknown kind example.com/v1 Gadget; no CRD for it in this set" in gadget.message
    old = found[("unknown-kind", 20)]
    assert "Kubernetes 1.32 serves Deployment as apps/v1" in old.message


def test_crd_schema_from_the_set() -> None:
    report = validate_source(FIXTURES / "validate/crd", RenderOptions())
    # int-or-string and nullable are honoured; the minimum is not
    assert [(f.object, f.field, f.message, f.line) for f in report.findings] == [
        ("Widget.example.com bad", ".spec.size", "0 is less than the minimum of 1", 15),
    ]


def test_crd_from_cluster_callback() -> None:
    crd = next(iter(__import__("yaml").safe_load_all((FIXTURES / "validate/crd/crd.yaml").read_text())))
    widget = Manifest(
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": "big"}},
        SourceLocation("w.yaml", 1),
    )
    asked = []

    def lookup(group: str, version: str, kind: str):
        asked.append((group, version, kind))
        return crd if (group, kind) == ("example.com", "Widget") else None

    report = validate_manifests([widget], crd_lookup=lookup)
    assert asked == [("example.com", "v1", "Widget")]
    assert [(f.rule, f.field) for f in report.findings] == [("schema", ".spec.size")]
    unknown = validate_manifests([widget])
    assert [f.rule for f in unknown.findings] == ["unknown-kind"]


def test_many_objects_of_a_kind_use_the_compiled_validator_with_the_same_results() -> None:
    good = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    from tether.validate.schema import FAST_THRESHOLD, _compiled

    manifests = [Manifest({**good, "metadata": {"name": f"s{i}"}}) for i in range(FAST_THRESHOLD)]
    manifests[30].obj["spec"] = {"ports": [{"port": "eighty"}]}
    report = validate_manifests(manifests)
    assert [(f.object, f.field) for f in report.findings] == [("Service s30", ".spec.ports[0].port")]
    assert ("1.32", "io.k8s.api.core.v1.Service") in _compiled
    # once compiled, a small set uses it too and still reports the same detail
    small = validate_manifests([manifests[30], manifests[0]])
    assert [(f.object, f.field) for f in small.findings] == [("Service s30", ".spec.ports[0].port")]


def test_policies() -> None:
    policies = load_policies(FIXTURES / "validate/policy.yaml")
    report = validate_source(
        FIXTURES / "validate/invalid", RenderOptions(), policy_file=FIXTURES / "validate/policy.yaml"
    )
    by_policy = {(f.policy, f.object, f.severity) for f in report.findings if f.rule == "policy"}
    assert ("no-latest-images", "Deployment.apps web", "error") in by_policy
    assert ("resource-limits", "Deployment.apps web", "warning") in by_policy
    assert not any(p == "configmaps-have-data" for p, _o, _s in by_policy)
    assert len(policies) == 3
    pinned = Manifest(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "c"},
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {"name": "c", "image": "busybox:1.36", "resources": {"limits": {"cpu": "1"}}}
                                ],
                            }
                        }
                    }
                },
            },
        }
    )
    assert validate_manifests([pinned], policies=policies).findings == []
    empty = Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e"}})
    assert [f.policy for f in validate_manifests([empty], policies=policies).findings] == ["configmaps-have-data"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("policies:\n  - name: x\n    expression: 'object.('\n", "invalid CEL expression"),
        ("policies: {}\n", "needs a 'policies:' list"),
        ("policies:\n  - name: x\n", "needs an 'expression'"),
        ("policies:\n  - {name: x, expression: 'true', severity: fatal}\n", "severity must be"),
        ("policies: [\n", "invalid YAML in policy file"),
    ],
)
def test_bad_policy_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_policies(path)


def test_policy_evaluation_error_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("policies:\n  - {name: team, expression: \"object.metadata.labels.team == 'a'\"}\n")
    manifest = Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    findings = validate_manifests([manifest], policies=load_policies(path)).findings
    assert [(f.rule, f.policy) for f in findings] == [("policy-error", "team")]


@pytest.mark.parametrize(
    ("name", "content", "rule", "line", "column"),
    [
        ("bad.yaml", "a: [1\n", "yaml-syntax", 2, 1),
        ("bad.json", '{"a": }', "yaml-syntax", 1, 7),
        ("bad.yaml", b"a: \xff\n", "render", 1, 4),
        ("ok.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "render", 1, None),
    ],
)
def test_render_failures_become_located_findings(
    tmp_path: Path, name: str, content, rule: str, line: int, column: int | None
) -> None:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    report = validate_source(tmp_path, RenderOptions())
    assert not report.valid
    [finding] = report.findings
    assert (finding.rule, finding.file, finding.line, finding.column) == (rule, name, line, column)


@pytest.mark.parametrize(
    ("message", "file", "line", "column", "text"),
    [
        (
            "a/kustomization.yaml: kustomize build failed: boom",
            "a/kustomization.yaml",
            None,
            None,
            "kustomize build failed: boom",
        ),
        ("a/b.yaml:3:7: invalid YAML: x", "a/b.yaml", 3, 7, "invalid YAML: x"),
        (
            "a/b.yaml:3 (ConfigMap c): variable ${X} at .data.k has no value",
            "a/b.yaml",
            3,
            None,
            "variable ${X} at .data.k has no value",
        ),
        (
            "apps/j/main.jsonnet: lib/x.libsonnet:4:9-20: RUNTIME ERROR: boom",
            "apps/j/lib/x.libsonnet",
            4,
            9,
            "RUNTIME ERROR: boom",
        ),
        (
            "apps/web/Chart.yaml (helm chart): execution error at (web/templates/d.yaml:1:15): need x",
            "apps/web/templates/d.yaml",
            1,
            15,
            "execution error at (web/templates/d.yaml:1:15): need x",
        ),
        ("https://h/r.git: git clone failed: nope", "", None, None, "https://h/r.git: git clone failed: nope"),
    ],
)
def test_finding_from_error(message: str, file: str, line: int | None, column: int | None, text: str) -> None:
    finding = finding_from_error(message)
    assert (finding.file, finding.line, finding.column, finding.message) == (file, line, column, text)


def test_jsonnet_and_helm_errors_point_at_the_source(tmp_path: Path) -> None:
    import shutil

    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "render/jsonnet", app)
    (app / "lib/app.libsonnet").write_text("{ deployment(a, b, c):: error 'broken library', service(n):: {} }\n")
    report = validate_source(app, RenderOptions(tla_str=(("name", "x"),), ext_str=(("env", "e"),)))
    [finding] = report.findings
    assert (finding.file, finding.line) == ("lib/app.libsonnet", 1)
    chart = tmp_path / "chart"
    shutil.copytree(FIXTURES / "render/helm/web", chart)
    (chart / "templates/broken.yaml").write_text('\nkind: {{ required "need x" .Values.x }}\n')
    [finding] = validate_source(chart, RenderOptions()).findings
    assert (finding.file, finding.line) == ("templates/broken.yaml", 2)


def test_namespace_on_a_cluster_scoped_object_is_a_warning() -> None:
    manifests = [
        Manifest(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "r", "namespace": "oops"},
            },
            SourceLocation("r.yaml", 1),
        ),
        Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "fine"}}),
    ]
    report = validate_manifests(manifests)
    assert report.valid
    assert [(f.rule, f.severity, f.object) for f in report.findings] == [
        ("cluster-scoped-namespace", "warning", "ClusterRole.rbac.authorization.k8s.io oops/r")
    ]
