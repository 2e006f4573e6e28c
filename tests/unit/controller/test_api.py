"""The Application models: defaults, Go durations, field-path errors, and agreement with the CRD schema."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tether.controller.api import (
    MAX_DRIFT_ENTRIES,
    ApplicationSpec,
    InvalidApplication,
    crd_schema,
    format_duration,
    parse_application,
    parse_duration,
)
from tether.sandbox import validation


def app(spec: dict, name: str = "web", namespace: str = "team-a") -> dict:
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "generation": 3},
        "spec": {"source": {"url": "https://git.example.com/org/repo.git"}, **spec},
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m", 60),
        ("90s", 90),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("300ms", 0.3),
        ("0", 0),
        ("2h0m0s", 7200),
        ("1m30.5s", 90.5),
        ("100us", 0.0001),
        ("1µs", 0.000001),
        (".5s", 0.5),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "x", "5", "1 m", "-1m", "1d", "m", "1m5", "1.2.3s"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=1), "1m"),
        (timedelta(seconds=5400), "1h30m"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(0), "0s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(hours=2), "2h"),
    ],
)
def test_format_duration_round_trips(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_defaults_match_the_brief() -> None:
    parsed = parse_application(app({}))
    spec = parsed.spec
    assert parsed.key == ("team-a", "web") and parsed.generation == 3
    assert spec.interval == timedelta(minutes=1)
    assert spec.revision_history_limit == 10
    assert (
        spec.sync_policy.automated,
        spec.sync_policy.prune,
        spec.sync_policy.self_heal,
        spec.sync_policy.allow_empty,
    ) == (True, False, False, False)
    assert spec.source.ref is None and spec.source.path == "."
    assert (spec.suspend, spec.wait, spec.timeout) == (False, False, timedelta(minutes=5))
    assert spec.retry.limit == 5 and spec.retry.delay(1) == timedelta(seconds=5)
    assert spec.retry.delay(3) == timedelta(seconds=20) and spec.retry.delay(20) == timedelta(minutes=3)
    assert parsed.status.sync.status == "Unknown" and parsed.status.health.status == "Unknown"
    assert str(parsed) == "Application team-a/web"


def test_full_spec_reads_every_field() -> None:
    parsed = parse_application(
        app(
            {
                "source": {
                    "url": "git@git.example.com:org/repo.git",
                    "ref": {"semver": ">=1.2.0 <2"},
                    "path": "deploy",
                    "secretRef": {"name": "git-creds"},
                    "verify": {"mode": "ssh", "secretRef": {"name": "signers"}},
                },
                "render": {
                    "helm": {
                        "valuesFiles": ["values-prod.yaml"],
                        "values": {"replicas": 3, "image": {"tag": "v1"}},
                        "releaseName": "web",
                    },
                    "jsonnet": {"tlaStr": {"env": "prod"}, "extCode": {"debug": "false"}},
                    "substitute": {
                        "vars": {"CLUSTER": "eu-1"},
                        "from": [
                            {"kind": "ConfigMap", "name": "vars"},
                            {"kind": "Secret", "name": "more", "optional": True},
                        ],
                    },
                },
                "destination": {"namespace": "web", "createNamespace": True},
                "decryption": {"secretRef": {"name": "sops-keys"}},
                "serviceAccountName": "deployer",
                "interval": "10m",
                "syncPolicy": {"automated": False, "prune": True, "selfHeal": True},
                "retry": {"limit": 2, "backoff": {"duration": "1s", "factor": 3, "maxDuration": "1m"}},
                "wait": True,
                "timeout": "2m30s",
                "dependsOn": [{"name": "infra"}, {"name": "db", "namespace": "data"}],
                "ignoreDifferences": [
                    {
                        "group": "apps",
                        "kind": "Deployment",
                        "jsonPointers": ["/spec/replicas"],
                        "managedFieldsManagers": ["hpa-controller"],
                    }
                ],
                "suspend": True,
                "revisionHistoryLimit": 3,
                "pin": {"revision": "0123456789abcdef", "reason": "rollback"},
            }
        )
    )
    spec = parsed.spec
    assert spec.source.ref is not None and spec.source.ref.as_ref_string() == "semver:>=1.2.0 <2"
    assert spec.source.verify is not None and spec.source.verify.secret_ref.name == "signers"
    assert spec.render.helm is not None and spec.render.helm.values["image"] == {"tag": "v1"}
    assert spec.render.jsonnet is not None and spec.render.jsonnet.ext_code == {"debug": "false"}
    assert spec.render.substitute is not None and [f.optional for f in spec.render.substitute.from_] == [False, True]
    assert spec.destination.create_namespace and spec.decryption is not None
    assert spec.timeout == timedelta(seconds=150) and spec.retry.delay(2) == timedelta(seconds=3)
    assert [(d.name, d.namespace) for d in spec.depends_on] == [("infra", None), ("db", "data")]
    assert spec.ignore_differences[0].managed_fields_managers == ["hpa-controller"]
    assert spec.pin is not None and spec.pin.reason == "rollback"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"interval": "x"}, "Application team-a/web: spec.interval: invalid duration 'x'"),
        ({"interval": "0"}, "spec.interval: interval must be longer than 0s"),
        (
            {"source": {"url": "https://user:hunter2@git.example.com/r.git"}},
            "spec.source.url: the URL carries a password",
        ),
        ({"source": {"url": "relative/dir"}}, "spec.source.url: unsupported URL"),
        ({"source": {"url": "/srv/git/r", "path": "../etc"}}, "spec.source.path: path '../etc' must be relative"),
        (
            {"source": {"url": "/srv/git/r", "ref": {"branch": "a", "tag": "b"}}},
            "spec.source.ref: give exactly one of branch, tag, semver or commit (got branch, tag)",
        ),
        ({"retry": {"backoff": {"maxDuration": "soon"}}}, "spec.retry.backoff.maxDuration: invalid duration 'soon'"),
        ({"dependsOn": [{"name": "a"}, {}]}, "spec.dependsOn[1].name: required field is missing"),
        (
            {"ignoreDifferences": [{"kind": "Service", "jsonPointers": ["spec/ports"]}]},
            "spec.ignoreDifferences[0].jsonPointers: JSON pointer 'spec/ports' must start with '/'",
        ),
        ({"syncPolicy": {"prune": "maybe"}}, "spec.syncPolicy.prune: Input should be a valid boolean"),
        (
            {"render": {"substitute": {"from": [{"kind": "Pod", "name": "x"}]}}},
            "spec.render.substitute.from[0].kind: Input should be 'ConfigMap' or 'Secret'",
        ),
        (
            {"healthCheckExprs": [{"apiVersion": "example.com/v1", "kind": "Widget", "current": "status.x =="}]},
            "spec.healthCheckExprs[0]: current is not a valid CEL expression: 'status.x =='",
        ),
        (
            {"healthCheckExprs": [{"apiVersion": "example.com/v1", "kind": "Widget"}]},
            "spec.healthCheckExprs[0].current: required field is missing",
        ),
    ],
)
def test_errors_name_object_and_field(spec: dict, message: str) -> None:
    with pytest.raises(InvalidApplication) as caught:
        parse_application(app(spec))
    assert message in str(caught.value)
    assert str(caught.value).startswith("Application team-a/web: ")
    assert caught.value.key == ("team-a", "web")


def test_secret_values_are_not_echoed_in_errors() -> None:
    with pytest.raises(InvalidApplication) as caught:
        parse_application(app({"source": {"url": "https://user:hunter2@git.example.com/r.git"}}))
    assert "hunter2" not in str(caught.value)


def test_missing_spec_is_reported() -> None:
    with pytest.raises(InvalidApplication, match=r"Application team-a/web: spec: required field is missing"):
        parse_application({"metadata": {"name": "web", "namespace": "team-a"}})


def test_status_round_trips_without_changes() -> None:
    status = {
        "observedGeneration": 2,
        "sourceRevision": "abc1234",
        "sync": {"status": "Synced"},
        "health": {"status": "Healthy"},
        "inventory": {"count": 4},
        "drift": [],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "ReconciliationSucceeded",
                "message": "ok",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
                "observedGeneration": 2,
            }
        ],
        "history": [
            {
                "revision": "abc1234",
                "result": "Succeeded",
                "deployedAt": "2024-01-01T00:00:00Z",
                "objects": {"total": 4, "created": 4, "updated": 0, "unchanged": 0, "pruned": 0},
            }
        ],
    }
    parsed = parse_application({**app({}), "status": status})
    assert parsed.status.to_dict() == status


# -- agreement between the models and the CRD schema (the server's view) --------------------------


def _server_defaults(spec: dict) -> dict:
    obj = app(spec)
    report = validation.validate(validation.crd_validator(crd_schema()), obj, defaulting=True)
    assert report.errors == [] and report.unknown == []
    return obj


def test_server_defaults_equal_model_defaults() -> None:
    defaulted = _server_defaults({})
    from_server = ApplicationSpec.model_validate(defaulted["spec"])
    from_model = ApplicationSpec.model_validate(app({})["spec"])
    assert from_server == from_model


def test_every_model_field_is_in_the_schema() -> None:
    schema = crd_schema()["properties"]

    def walk(model: type, node: dict, path: str) -> None:
        props = node.get("properties") or {}
        for field_name, info in model.model_fields.items():
            if field_name == "raw":
                continue
            alias = info.alias or field_name
            assert alias in props, f"{path}.{alias} is not in the CRD schema"
            annotation = info.annotation
            for candidate in getattr(annotation, "__args__", (annotation,)):
                inner = candidate.__args__[-1] if hasattr(candidate, "__args__") else candidate  # list[X] -> X
                if isinstance(inner, type) and hasattr(inner, "model_fields"):
                    child = props[alias]
                    walk(inner, child.get("items", child) if child.get("type") == "array" else child, f"{path}.{alias}")

    from tether.controller.api import ApplicationStatus

    walk(ApplicationSpec, schema["spec"], "spec")
    walk(ApplicationStatus, schema["status"], "status")


def test_drift_bound_agrees_with_schema() -> None:
    assert crd_schema()["properties"]["status"]["properties"]["drift"]["maxItems"] == MAX_DRIFT_ENTRIES


def test_health_check_exprs_become_the_apps_health_rules() -> None:
    from tether.engine.health import Status, compute

    entry = {"apiVersion": "example.com/v1", "kind": "Widget", "current": "status.phase == 'Ready'"}
    parsed = parse_application(app({"healthCheckExprs": [entry]}))
    rules = parsed.spec.health_rules()
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "status": {"phase": "Ready"}}
    assert compute(widget, rules).status is Status.CURRENT
    assert "spec: healthCheckExprs[0] (Widget)" in compute({**widget, "status": {"phase": "New"}}, rules).message


def test_helm_repositories_parse_and_both_sides_refuse_a_url_with_a_password() -> None:
    repositories = [
        {"url": "https://charts.example.com/private", "secretRef": {"name": "charts"}},
        {"url": "oci://registry.example.com/charts", "secretRef": {"name": "registry"}},
    ]
    parsed = parse_application(app({"render": {"helm": {"repositories": repositories}}}))
    assert [(r.url, r.secret_ref.name) for r in parsed.spec.render.helm.repositories] == [
        ("https://charts.example.com/private", "charts"),
        ("oci://registry.example.com/charts", "registry"),
    ]
    _server_defaults({"render": {"helm": {"repositories": repositories}}})
    bad = {"render": {"helm": {"repositories": [{"url": "https://u:hunter2@h.example/", "secretRef": {"name": "s"}}]}}}
    with pytest.raises(InvalidApplication, match=r"spec.render.helm.repositories\[0\].url: .*unsupported URL") as e:
        parse_application(app(bad))
    assert "hunter2" not in str(e.value)
    report = validation.validate(validation.crd_validator(crd_schema()), app(bad), defaulting=True)
    assert report.errors  # the API server refuses it too
