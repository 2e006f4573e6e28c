from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import RenderError
from tether.render import RenderOptions, render_source
from tether.render.pipeline import detect

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "render"
# fixtures live in this repository's work tree, so file names are relative to its top
PREFIX = "tests/fixtures/render/"


def by_kind(result) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for manifest in result.manifests:
        out.setdefault(manifest.obj["kind"], []).append(manifest.obj)
    return out


@pytest.mark.parametrize(
    ("name", "expected"),
    [("plain", "yaml"), ("kustomize/overlays/prod", "kustomize"), ("helm/web", "helm"), ("jsonnet", "jsonnet")],
)
def test_detection(name: str, expected: str) -> None:
    assert detect(FIXTURES / name) == expected


def test_plain_directory_in_deterministic_order_with_locations() -> None:
    options = RenderOptions(app="shop", namespace="prod", variables=(("REGION", "eu"),))
    result = render_source(FIXTURES / "plain", options)
    assert result.renderer == "yaml"
    assert [(m.source.file, m.source.line, m.obj["kind"]) for m in result.manifests] == [
        (PREFIX + "plain/" + "00-namespace.yaml", 1, "Namespace"),
        (PREFIX + "plain/" + "10-app.yaml", 2, "ConfigMap"),
        (PREFIX + "plain/" + "10-app.yaml", 11, "Deployment"),
        (PREFIX + "plain/" + "nested/clusterrole.yml", 1, "ClusterRole"),
        (PREFIX + "plain/" + "nested/service.json", 1, "Service"),
    ]
    assert result.manifests[2].source.document == 2  # the empty document still counts


def test_plain_post_processing() -> None:
    options = RenderOptions(app="shop", namespace="prod", variables=(("REGION", "eu"),))
    result = render_source(FIXTURES / "plain", options)
    kinds = by_kind(result)
    config = kinds["ConfigMap"][0]
    assert config["data"] == {"greeting": "hello world", "region": "eu"}
    assert config["metadata"]["namespace"] == "prod"
    assert "namespace" not in kinds["Namespace"][0]["metadata"]
    assert "namespace" not in kinds["ClusterRole"][0]["metadata"]
    service = kinds["Service"][0]
    assert service["metadata"]["annotations"]["note"] == "${NOT_A_VAR}"  # opted out
    for manifest in result.manifests:
        labels = manifest.obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "tether"
        assert labels["tether.dev/app"] == "shop"
    assert kinds["Deployment"][0]["metadata"]["labels"]["app"] == "shop"  # existing labels kept


def test_missing_variable_names_object_and_field() -> None:
    with pytest.raises(RenderError, match=r"plain/10-app.yaml:2 .*\$\{REGION\} at \.data\.region"):
        render_source(FIXTURES / "plain", RenderOptions(app="shop", substitute=True))


def test_kustomize_overlay_with_generators_and_patches() -> None:
    result = render_source(FIXTURES / "kustomize/overlays/prod", RenderOptions(app="api", namespace="prod"))
    assert result.renderer == "kustomize"
    kinds = by_kind(result)
    deployment = kinds["Deployment"][0]
    assert deployment["metadata"]["name"] == "prod-api"
    assert deployment["metadata"]["namespace"] == "prod"
    assert deployment["spec"]["replicas"] == 3  # strategic merge patch from a file
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/example/api:1.5.0"  # inline JSON6902 patch
    config_name = kinds["ConfigMap"][0]["metadata"]["name"]
    assert config_name.startswith("prod-api-settings-")  # generator name with content hash
    assert container["envFrom"][0]["configMapRef"]["name"] == config_name  # reference rewritten
    assert kinds["Secret"][0]["type"] == "Opaque"
    # each object points at the file it came from (generated ones at the kustomization)
    assert {m.obj["kind"]: m.source.file.removeprefix(PREFIX + "kustomize/") for m in result.manifests} == {
        "ConfigMap": "overlays/prod/kustomization.yaml",
        "Secret": "overlays/prod/kustomization.yaml",
        "Service": "base/service.yaml",
        "Deployment": "base/deployment.yaml",
    }
    assert all("annotations" not in m.obj["metadata"] for m in result.manifests)  # origin annotations stripped


def test_kustomization_asking_for_origins_keeps_them(fixture_copy) -> None:
    overlay = fixture_copy("kustomize") / "overlays/prod"
    with open(overlay / "kustomization.yaml", "a") as handle:
        handle.write("buildMetadata: [originAnnotations]\n")
    # the overlay's ../../base is inside the copied tree, which is the source root here
    result = render_source(overlay, RenderOptions(source_root=str(overlay.parent.parent)))
    assert all("config.kubernetes.io/origin" in m.obj["metadata"]["annotations"] for m in result.manifests)


def test_kustomize_error_names_the_kustomization(fixture_copy) -> None:
    overlay = fixture_copy("kustomize") / "overlays/prod"
    (overlay / "replicas.yaml").unlink()
    with pytest.raises(RenderError, match=r"kustomization.yaml: kustomize build failed: .*replicas.yaml"):
        render_source(overlay, RenderOptions(source_root=str(overlay.parent.parent)))


def test_helm_chart_with_values_files_and_set(tmp_path: Path) -> None:
    chart = FIXTURES / "helm/web"
    options = RenderOptions(
        app="shop",
        namespace="web",
        values_files=(str(chart / "values-prod.yaml"),),
        set_values=("image.tag=1.28.0,service.port=8080",),
        release_name="front",
    )
    result = render_source(chart, options)
    assert result.renderer == "helm"
    kinds = by_kind(result)
    assert list(kinds) == ["CustomResourceDefinition", "Deployment", "Ingress", "Service"]
    deployment = kinds["Deployment"][0]
    assert deployment["metadata"]["name"] == "front-web"
    assert deployment["spec"]["replicas"] == 4  # values-prod.yaml over values.yaml
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28.0"  # --set
    assert kinds["Service"][0]["spec"]["ports"][0]["port"] == 8080
    assert kinds["Service"][0]["metadata"]["namespace"] == "web"  # .Release.Namespace
    assert kinds["Ingress"][0]["metadata"]["namespace"] == "web"  # defaulted
    assert "namespace" not in kinds["CustomResourceDefinition"][0]["metadata"]
    files = {m.source.file.removeprefix(PREFIX + "helm/web/") for m in result.manifests}
    assert files == {
        "crds/widgets.yaml",
        "templates/deployment.yaml",
        "templates/ingress.yaml",
        "templates/service.yaml",
    }


def test_helm_values_file_relative_to_source_and_set_string() -> None:
    options = RenderOptions(values_files=("values-prod.yaml",), set_string_values=("replicaCount=7",))
    result = render_source(FIXTURES / "helm/web", options)
    assert by_kind(result)["Deployment"][0]["spec"]["replicas"] == 7


def test_helm_release_defaults() -> None:
    result = render_source(FIXTURES / "helm/web", RenderOptions(app="shop"))
    kinds = by_kind(result)
    assert kinds["Deployment"][0]["metadata"]["name"] == "shop-web"
    assert kinds["Service"][0]["metadata"]["namespace"] == "default"
    assert "Ingress" not in kinds


def test_helm_template_error_names_the_template(fixture_copy) -> None:
    chart = fixture_copy("helm") / "web"
    (chart / "templates/broken.yaml").write_text('kind: {{ required "set image.digest" .Values.image.digest }}\n')
    with pytest.raises(RenderError, match=r"^Chart.yaml \(helm chart\): .*templates/broken.yaml:1:.*set image.digest"):
        render_source(chart, RenderOptions())


def test_helm_missing_chart(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"Chart.yaml: chart not found"):
        render_source(tmp_path, RenderOptions(renderer="helm"))


def test_helm_missing_dependency(fixture_copy) -> None:
    chart = fixture_copy("helm") / "web"
    with open(chart / "Chart.yaml", "a") as handle:
        handle.write("dependencies:\n  - name: redis\n    version: 18.0.0\n")
    with pytest.raises(RenderError, match=r"Chart.yaml: dependency redis is not under charts/ and names no repository"):
        render_source(chart, RenderOptions())


def test_jsonnet_with_tlas_and_ext_vars() -> None:
    options = RenderOptions(
        app="api",
        namespace="apps",
        tla_str=(("name", "api"),),
        tla_code=(("replicas", "1 + 2"),),
        ext_str=(("env", "staging"),),
    )
    result = render_source(FIXTURES / "jsonnet", options)
    assert result.renderer == "jsonnet"
    kinds = by_kind(result)
    deployment = kinds["Deployment"][0]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["annotations"]["example.com/env"] == "staging"
    assert deployment["metadata"]["namespace"] == "apps"
    assert kinds["Service"][0]["metadata"]["name"] == "api"
    assert {m.source.file for m in result.manifests} == {PREFIX + "jsonnet/main.jsonnet"}


def test_jsonnet_error_names_file_and_position(fixture_copy) -> None:
    app = fixture_copy("jsonnet")
    (app / "main.jsonnet").write_text("function(name) { a: error 'boom ' + name }\n")
    with pytest.raises(RenderError, match=r"main.jsonnet:1:.*boom x"):
        render_source(app, RenderOptions(tla_str=(("name", "x"),)))


def test_jsonnet_missing_tla_is_an_error() -> None:
    with pytest.raises(RenderError, match=r"main\.jsonnet"):
        render_source(FIXTURES / "jsonnet", RenderOptions(ext_str=(("env", "x"),)))


def test_jsonnet_import_outside_the_tree_is_refused(fixture_copy) -> None:
    app = fixture_copy("jsonnet")
    (app / "main.jsonnet").write_text("{ data: importstr '/etc/hostname' }\n")
    with pytest.raises(RenderError, match="outside the source tree"):
        render_source(app, RenderOptions())


def test_jsonnet_library_path(fixture_copy, tmp_path: Path) -> None:
    app = fixture_copy("jsonnet")
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "k.libsonnet").write_text("{ cm(n):: {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: n}} }")
    (app / "main.jsonnet").write_text("local k = import 'k.libsonnet'; [k.cm('a'), k.cm('b')]\n")
    result = render_source(app, RenderOptions(jsonnet_paths=(str(vendor),)))
    assert [m.obj["metadata"]["name"] for m in result.manifests] == ["a", "b"]


def test_jsonnet_endless_evaluation_hits_the_time_limit(fixture_copy) -> None:
    app = fixture_copy("jsonnet")
    (app / "main.jsonnet").write_text("local f(n) = if n == 0 then 0 else 1 + f(n - 1) + f(n - 1); { a: f(200) }\n")
    with pytest.raises(RenderError, match="longer than 2s"):
        render_source(app, RenderOptions(timeout=2))


def test_helm_values_schema_is_enforced(fixture_copy) -> None:
    chart = fixture_copy("helm") / "web"
    (chart / "values.schema.json").write_text(
        '{"type": "object", "properties": {"replicaCount": {"type": "integer", "minimum": 1}}}'
    )
    with pytest.raises(RenderError, match=r"(?s)Chart.yaml \(helm chart\): values don't meet .*/replicaCount"):
        render_source(chart, RenderOptions(set_values=("replicaCount=0",)))
    assert render_source(chart, RenderOptions(set_values=("replicaCount=2",))).manifests


@pytest.mark.parametrize(
    ("base", "sets", "expected"),
    [
        ({"a": {"b": 1, "c": 2}}, ["a.b=3"], {"a": {"b": 3, "c": 2}}),
        ({"l": [{"x": 1}, {"y": 2}]}, ["l[1].z=3"], {"l": [{"x": 1}, {"y": 2, "z": 3}]}),  # into the list
        ({"l": [1, 2, 3]}, ["l={9}"], {"l": [9]}),  # a list literal replaces
        ({"l": ["a"]}, ["l[2]=c"], {"l": ["a", None, "c"]}),
        ({"a": 1}, ["a=null"], {"a": None}),  # null removes a chart default, as in Helm
        ({}, ["a=1", "a=2"], {"a": 2}),  # later wins
    ],
)
def test_helm_set_semantics(tmp_path: Path, base: dict, sets: list[str], expected: dict) -> None:
    import yaml

    from tether.render.helm import user_values

    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    assert user_values(tmp_path, tmp_path, ("base.yaml",), tuple(sets), (), 1 << 20) == expected
