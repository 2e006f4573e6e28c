"""Names, generateNames and namespaces are checked by kind as kube-apiserver checks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import ValidationError
from tether.model import Manifest, SourceLocation
from tether.render import RenderOptions
from tether.validate import check_names, require_valid_names, validate_manifests, validate_source


def obj(
    kind: str,
    name: str | None = None,
    *,
    api_version: str = "v1",
    namespace: str | None = None,
    generate_name: str | None = None,
) -> Manifest:
    meta = {
        k: v for k, v in (("name", name), ("namespace", namespace), ("generateName", generate_name)) if v is not None
    }
    return Manifest({"apiVersion": api_version, "kind": kind, "metadata": meta}, SourceLocation("app.yaml", 7))


def problems(manifest: Manifest) -> list[tuple[str, str]]:
    return [(f.field, f.message) for f in check_names([manifest])]


@pytest.mark.parametrize(
    "manifest",
    [
        obj("ConfigMap", "a.b-c.d"),
        obj("ConfigMap", "x" * 253),
        obj("Namespace", "team-a"),
        obj("Service", "web-1"),
        obj("ClusterRole", "system:controller:foo", api_version="rbac.authorization.k8s.io/v1"),
        obj("RoleBinding", "Mixed_Case:ok", api_version="rbac.authorization.k8s.io/v1", namespace="ns"),
        obj("CronJob", "c" * 52, api_version="batch/v1"),
        obj("Job", "j" * 63, api_version="batch/v1"),
        obj("Widget", "w.example", api_version="example.com/v1"),
        obj("Pod", generate_name="web-"),
        obj("Service", generate_name="web-"),
        obj("ClusterRole", generate_name=".", api_version="rbac.authorization.k8s.io/v1"),
    ],
)
def test_valid_names(manifest: Manifest) -> None:
    assert problems(manifest) == []


@pytest.mark.parametrize(
    ("manifest", "field", "fragment"),
    [
        (obj("ConfigMap", "Web"), ".metadata.name", "RFC 1123 subdomain"),
        (obj("ConfigMap", "x" * 254), ".metadata.name", "no more than 253 characters (is 254)"),
        (obj("ConfigMap", "a_b"), ".metadata.name", "RFC 1123 subdomain"),
        (obj("Namespace", "a.b"), ".metadata.name", "RFC 1123 label"),
        (obj("Namespace", "n" * 64), ".metadata.name", "no more than 63 characters"),
        (obj("Service", "1web"), ".metadata.name", "RFC 1035 label"),
        (obj("Service", "web.x"), ".metadata.name", "RFC 1035 label"),
        (obj("CronJob", "c" * 53, api_version="batch/v1"), ".metadata.name", "no more than 52 characters"),
        (obj("Job", "j" * 64, api_version="batch/v1"), ".metadata.name", "no more than 63 characters"),
        (obj("Widget", "Upper", api_version="example.com/v1"), ".metadata.name", "RFC 1123 subdomain"),
        (obj("ClusterRole", "..", api_version="rbac.authorization.k8s.io/v1"), ".metadata.name", "may not be '..'"),
        (obj("ClusterRole", ".", api_version="rbac.authorization.k8s.io/v1"), ".metadata.name", "may not be '.'"),
        (obj("Role", "a/b", api_version="rbac.authorization.k8s.io/v1"), ".metadata.name", "may not contain '/'"),
        (obj("Role", "a%2Fb", api_version="rbac.authorization.k8s.io/v1"), ".metadata.name", "may not contain '%'"),
        (obj("Widget", "../etc", api_version="example.com/v1"), ".metadata.name", "may not contain '/'"),
        (
            obj("ClusterRole", "a\x1b[2Jb", api_version="rbac.authorization.k8s.io/v1"),
            ".metadata.name",
            "control characters (U+001B)",
        ),
        (obj("ConfigMap", "ok", namespace="Team"), ".metadata.namespace", "not a valid namespace"),
        (obj("ConfigMap", "ok", namespace="a.b"), ".metadata.namespace", "RFC 1123 label"),
        (obj("ConfigMap", "ok", namespace="n" * 64), ".metadata.namespace", "no more than 63"),
        (obj("ConfigMap", "ok", namespace="a\nb"), ".metadata.namespace", "control characters (U+000A)"),
        (obj("ConfigMap", generate_name="Web-"), ".metadata.generateName", "prefix of a name"),
        (obj("ConfigMap", generate_name="a/b-"), ".metadata.generateName", "may not contain '/'"),
        (obj("Service", generate_name="1web-"), ".metadata.generateName", "RFC 1035 label"),
        (obj("ConfigMap"), ".metadata.name", "needs metadata.name or metadata.generateName"),
    ],
)
def test_invalid_names(manifest: Manifest, field: str, fragment: str) -> None:
    found = problems(manifest)
    assert any(f == field and fragment in message for f, message in found), found


def test_name_must_be_a_string() -> None:
    manifest = Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 123}})
    assert ("must be a string, not int 123") in problems(manifest)[0][1]


def test_findings_escape_control_characters_in_the_object() -> None:
    manifest = obj("ClusterRole", "a\x1bb", api_version="rbac.authorization.k8s.io/v1")
    finding = check_names([manifest])[0]
    assert "\x1b" not in str(finding) and "\\x1b" in finding.object


def test_validate_manifests_reports_names_with_file_and_line() -> None:
    report = validate_manifests([obj("ConfigMap", "Bad_Name")])
    finding = next(f for f in report.findings if f.rule == "invalid-name")
    assert (finding.file, finding.line, finding.field) == ("app.yaml", 7, ".metadata.name")
    assert not report.valid


def test_validate_source_points_at_the_name_line(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n  name: Not_Valid\n"
    )
    report = validate_source(tmp_path, RenderOptions(source_root=str(tmp_path)))
    finding = next(f for f in report.findings if f.rule == "invalid-name")
    assert (finding.file, finding.line, finding.column) == ("cm.yaml", 5, 9)


def test_require_valid_names_lists_every_bad_object() -> None:
    good = obj("ConfigMap", "fine")
    bad = [
        obj("ConfigMap", "One_"),
        Manifest(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a/b"}}, SourceLocation("secrets/s.yaml", 3)
        ),
    ]
    require_valid_names([good])
    with pytest.raises(ValidationError) as raised:
        require_valid_names([good, *bad])
    message = str(raised.value)
    assert message.startswith("2 object(s) with invalid names; nothing was applied")
    assert "app.yaml:7 ConfigMap One_" in message and "secrets/s.yaml:3 Secret a/b" in message
    assert "fine" not in message
    assert raised.value.exit_code == 1
