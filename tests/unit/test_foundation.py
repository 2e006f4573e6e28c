from typer.testing import CliRunner

from tether import __version__, schemas
from tether.cli.main import app
from tether.errors import UsageError


def test_version_command_prints_version():
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == __version__


def test_schemas_index_knows_deployment_with_list_metadata():
    name = schemas.gvk_index("1.32")[("apps", "v1", "Deployment")]
    assert name == "io.k8s.api.apps.v1.Deployment"
    containers = schemas.definitions("1.32")["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-list-map-keys"] == ["name"]


def test_unknown_kube_version_is_a_usage_error():
    try:
        schemas.definitions("0.1")
    except UsageError as error:
        assert "available" in str(error)
    else:
        raise AssertionError("expected UsageError")


def test_object_ref_from_object_names_group_kind_namespace():
    from tether.model import ObjectRef

    ref = ObjectRef.of(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"}}
    )
    assert (ref.group, ref.version, ref.kind, ref.namespace, ref.name) == ("apps", "v1", "Deployment", "prod", "web")
    assert str(ref) == "Deployment.apps prod/web"
    assert ObjectRef.of({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}).api_version == "v1"
