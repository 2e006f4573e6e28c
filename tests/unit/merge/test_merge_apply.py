"""Server-side apply: merge, ownership, conflicts, pruning and managedFields bookkeeping."""

import copy
import json

import pytest

from tether.sandbox.merge import (
    ApplyConflictError,
    PatchError,
    apply_patch,
    builtin_type,
    crd_type,
    record_update,
)

DEPLOY = builtin_type("apps", "v1", "Deployment")


def deploy(**spec_overrides) -> dict:
    spec = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]}]},
        },
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": spec,
    }


def containers(*items) -> dict:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": list(items)}}


def apply(live, config, manager="a", force=False, now="T1", type_info=DEPLOY, **kw):
    return apply_patch(
        live, config, manager=manager, api_version="apps/v1", force=force, type_info=type_info, now=now, **kw
    )


def entries(obj) -> list[tuple]:
    return [(e["manager"], e["operation"], e.get("time")) for e in obj["metadata"].get("managedFields", [])]


def fields_of(obj, manager, operation="Apply") -> dict | None:
    for entry in obj["metadata"].get("managedFields", []):
        if entry["manager"] == manager and entry["operation"] == operation:
            return entry["fieldsV1"]
    return None


EXPECTED_DEPLOY_FIELDS = {
    "f:metadata": {"f:labels": {"f:app": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:containers": {
                    'k:{"name":"web"}': {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                    }
                }
            },
        },
    },
}


def test_apply_creates_object_with_upstream_managed_fields():
    config = deploy()
    before = copy.deepcopy(config)
    result = apply(None, config)
    assert config == before
    assert result["spec"] == config["spec"]
    assert result["metadata"]["managedFields"] == [
        {
            "manager": "a",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": "T1",
            "fieldsType": "FieldsV1",
            "fieldsV1": EXPECTED_DEPLOY_FIELDS,
        }
    ]
    # on the wire the keys come out in upstream order
    assert json.dumps(result["metadata"]["managedFields"][0]["fieldsV1"]) == json.dumps(EXPECTED_DEPLOY_FIELDS)


def test_reapply_unchanged_keeps_entry_and_time():
    live = apply(None, deploy())
    again = apply(live, deploy(), now="T2")
    assert again == live
    assert entries(again) == [("a", "Apply", "T1")]


def test_reapply_with_change_updates_value_and_time():
    live = apply(None, deploy())
    again = apply(live, deploy(replicas=5), now="T2")
    assert again["spec"]["replicas"] == 5
    assert entries(again) == [("a", "Apply", "T2")]


PRUNE_CASES = [
    (
        "dropped-scalar-removed",
        deploy(),
        {k: v for k, v in deploy()["spec"].items() if k != "replicas"},
        lambda spec, meta: "replicas" not in spec,
    ),
    (
        "dropped-label-empties-and-removes-map",
        deploy(),
        None,
        lambda spec, meta: "labels" not in meta,
    ),
    (
        "dropped-container-removed",
        deploy(template=containers({"name": "web", "image": "nginx:1"}, {"name": "side", "image": "s:1"})),
        deploy()["spec"],
        lambda spec, meta: [c["name"] for c in spec["template"]["spec"]["containers"]] == ["web"],
    ),
    (
        "dropped-port-removed",
        deploy(),
        deploy(template=containers({"name": "web", "image": "nginx:1"}))["spec"],
        lambda spec, meta: "ports" not in spec["template"]["spec"]["containers"][0],
    ),
]


@pytest.mark.parametrize(("name", "first", "second_spec", "check"), PRUNE_CASES, ids=[c[0] for c in PRUNE_CASES])
def test_fields_no_longer_applied_are_removed(name, first, second_spec, check):
    live = apply(None, first)
    second = deploy()
    if second_spec is not None:
        second["spec"] = second_spec
    else:
        del second["metadata"]["labels"]
    result = apply(live, second, now="T2")
    assert check(result["spec"], result["metadata"])
    assert entries(result) == [("a", "Apply", "T2")]


def test_shared_field_with_equal_values_is_owned_by_both():
    live = apply(None, deploy(), manager="a")
    both = apply(
        live,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}},
        manager="b",
        now="T2",
    )
    assert fields_of(both, "a")["f:spec"]["f:replicas"] == {}
    assert fields_of(both, "b") == {"f:spec": {"f:replicas": {}}}
    # a drops replicas: b still owns it, so the value stays
    config = deploy()
    del config["spec"]["replicas"]
    after = apply(both, config, manager="a", now="T3")
    assert after["spec"]["replicas"] == 2
    assert "f:replicas" not in fields_of(after, "a")["f:spec"]


def replicas_only(value, name="web"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": value}}


def test_conflicting_apply_raises_with_upstream_message():
    live = apply(None, deploy(), manager="a")
    with pytest.raises(ApplyConflictError) as caught:
        apply(live, replicas_only(3), manager="b")
    error = caught.value
    assert str(error) == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'
    assert [(c.manager, c.api_version, c.field) for c in error.conflicts] == [("a", "apps/v1", ".spec.replicas")]


def test_conflict_with_update_manager_names_api_version():
    live = apply(None, deploy(), manager="a")
    changed = copy.deepcopy(live)
    changed["spec"]["replicas"] = 7
    updated = record_update(live, changed, manager="kubectl-edit", api_version="apps/v1", type_info=DEPLOY, now="T2")
    with pytest.raises(ApplyConflictError) as caught:
        apply(updated, deploy(), manager="a", now="T3")
    assert str(caught.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    )


def test_multiple_conflicts_listed_per_manager():
    live = apply(None, deploy(), manager="a")
    config = deploy(replicas=9, template=containers({"name": "web", "image": "nginx:2"}))
    with pytest.raises(ApplyConflictError) as caught:
        apply(live, config, manager="b")
    assert str(caught.value) == (
        'Apply failed with 2 conflicts: conflicts with "a":\n- .spec.replicas\n'
        '- .spec.template.spec.containers[name="web"].image'
    )


def test_force_moves_ownership():
    live = apply(None, deploy(), manager="a")
    forced = apply(live, replicas_only(3), manager="b", force=True, now="T2")
    assert forced["spec"]["replicas"] == 3
    assert "f:replicas" not in fields_of(forced, "a")["f:spec"]
    assert fields_of(forced, "b") == {"f:spec": {"f:replicas": {}}}
    # the previous owner may now drop it without removing b's value
    config = deploy()
    del config["spec"]["replicas"]
    assert apply(forced, config, manager="a", now="T3")["spec"]["replicas"] == 3


def test_force_drops_entry_left_empty():
    live = apply(None, replicas_only(1), manager="a")
    forced = apply(live, replicas_only(2), manager="b", force=True, now="T2")
    assert entries(forced) == [("b", "Apply", "T2")]


def test_update_takes_ownership_without_conflict():
    live = apply(None, deploy(), manager="a")
    changed = copy.deepcopy(live)
    changed["spec"]["replicas"] = 4
    changed["metadata"]["annotations"] = {"note": "x"}
    updated = record_update(live, changed, manager="hpa", api_version="apps/v1", type_info=DEPLOY, now="T2")
    assert fields_of(updated, "hpa", "Update") == {
        "f:metadata": {"f:annotations": {".": {}, "f:note": {}}},
        "f:spec": {"f:replicas": {}},
    }
    assert "f:replicas" not in fields_of(updated, "a")["f:spec"]
    assert entries(updated) == [("a", "Apply", "T1"), ("hpa", "Update", "T2")]


def test_update_without_changes_records_nothing():
    live = apply(None, deploy(), manager="a")
    same = record_update(live, copy.deepcopy(live), manager="x", api_version="apps/v1", type_info=DEPLOY, now="T2")
    assert entries(same) == [("a", "Apply", "T1")]


def test_update_removing_field_removes_it_from_every_manager():
    live = apply(None, deploy(), manager="a")
    changed = copy.deepcopy(live)
    del changed["spec"]["replicas"]
    updated = record_update(live, changed, manager="x", api_version="apps/v1", type_info=DEPLOY, now="T2")
    assert "f:replicas" not in fields_of(updated, "a")["f:spec"]
    assert fields_of(updated, "x", "Update") is None


def test_create_via_update_records_all_fields():
    obj = deploy()
    created = record_update(None, obj, manager="kubectl-create", api_version="apps/v1", type_info=DEPLOY, now="T1")
    fields = fields_of(created, "kubectl-create", "Update")
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert fields["f:spec"]["f:replicas"] == {}
    assert 'k:{"name":"web"}' in fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert "f:name" not in fields["f:metadata"]
    assert created["metadata"]["managedFields"][0]["apiVersion"] == "apps/v1"


def test_update_entries_are_per_api_version_and_apply_entries_are_not():
    live = apply(None, replicas_only(1), manager="a")
    live = apply(live, replicas_only(1), manager="a", now="T2")
    changed = copy.deepcopy(live)
    changed["spec"]["paused"] = True
    v1 = record_update(live, changed, manager="u", api_version="apps/v1", type_info=DEPLOY, now="T3")
    changed2 = copy.deepcopy(v1)
    changed2["spec"]["minReadySeconds"] = 3
    v2 = record_update(v1, changed2, manager="u", api_version="apps/v1beta2", type_info=DEPLOY, now="T4")
    assert [(e["manager"], e["operation"], e["apiVersion"]) for e in v2["metadata"]["managedFields"]] == [
        ("a", "Apply", "apps/v1"),
        ("u", "Update", "apps/v1"),
        ("u", "Update", "apps/v1beta2"),
    ]


def test_identity_metadata_is_never_tracked():
    result = apply(None, replicas_only(1))
    assert fields_of(result, "a") == {"f:spec": {"f:replicas": {}}}
    assert result["metadata"]["name"] == "web"


def test_managed_fields_in_apply_config_rejected():
    config = deploy()
    config["metadata"]["managedFields"] = [{"manager": "x"}]
    with pytest.raises(PatchError, match="managedFields must be nil"):
        apply(None, config)


def test_reset_fields_are_neither_set_nor_owned():
    live = apply(None, deploy())
    live["status"] = {"replicas": 1}
    config = deploy()
    config["status"] = {"replicas": 3}
    config["metadata"]["annotations"] = {"x": "y"}
    result = apply(live, config, reset_fields=(("status",), ("metadata", "annotations")))
    assert result["status"] == {"replicas": 1}
    assert "annotations" not in result["metadata"]
    assert "f:status" not in fields_of(result, "a")
    assert "f:annotations" not in fields_of(result, "a")["f:metadata"]
    assert config["status"] == {"replicas": 3}


def test_subresource_entries_are_separate():
    live = apply(None, deploy(), manager="a")
    status = apply(
        live,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"replicas": 2}},
        manager="a",
        subresource="status",
        now="T2",
    )
    managed = status["metadata"]["managedFields"]
    assert [(e["manager"], e.get("subresource", "")) for e in managed] == [("a", ""), ("a", "status")]
    assert status["spec"] == live["spec"]


def test_managed_fields_order_apply_first_then_time_then_name():
    live = apply(None, replicas_only(1), manager="z", now="T1")
    changed = copy.deepcopy(live)
    changed["spec"]["paused"] = True
    live = record_update(live, changed, manager="a-updater", api_version="apps/v1", type_info=DEPLOY, now="T0")
    live = apply(live, {**replicas_only(1), "metadata": {"name": "web", "labels": {"x": "y"}}}, manager="m", now="T1")
    assert entries(live) == [("m", "Apply", "T1"), ("z", "Apply", "T1"), ("a-updater", "Update", "T0")]


def test_null_in_apply_config_removes_value():
    live = apply(None, deploy())
    config = deploy()
    config["spec"]["replicas"] = None
    result = apply(live, config, now="T2")
    assert "replicas" not in result["spec"]


# ---------------------------------------------------------------------------------------------
# list and map semantics


def test_set_lists_merge_by_value_and_items_are_owned_separately():
    base = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    live = apply(None, {**base, "metadata": {"name": "web", "finalizers": ["a.io/x"]}}, manager="a")
    live = apply(live, {**base, "metadata": {"name": "web", "finalizers": ["b.io/y"]}}, manager="b", now="T2")
    assert live["metadata"]["finalizers"] == ["a.io/x", "b.io/y"]
    assert fields_of(live, "b") == {"f:metadata": {"f:finalizers": {'v:"b.io/y"': {}}}}
    dropped = apply(live, {**base, "metadata": {"name": "web", "finalizers": []}}, manager="a", now="T3")
    assert dropped["metadata"]["finalizers"] == ["b.io/y"]


def test_map_lists_merge_by_key_across_managers():
    live = apply(None, deploy(), manager="a")
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s:1"}]}}},
    }
    both = apply(live, sidecar, manager="b", now="T2")
    assert [c["name"] for c in both["spec"]["template"]["spec"]["containers"]] == ["web", "side"]
    # b withdraws its container; a's stays untouched
    sidecar_gone = copy.deepcopy(sidecar)
    sidecar_gone["spec"]["template"]["spec"]["containers"] = []
    after = apply(both, sidecar_gone, manager="b", now="T3")
    assert after["spec"]["template"]["spec"]["containers"] == live["spec"]["template"]["spec"]["containers"]


def test_map_list_item_order_follows_applied_order():
    live = apply(None, deploy(template=containers({"name": "a"}, {"name": "b"})))
    result = apply(live, deploy(template=containers({"name": "b"}, {"name": "a"})), now="T2")
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["b", "a"]


def test_atomic_lists_are_replaced_and_owned_whole():
    first = deploy(template=containers({"name": "web", "args": ["--a", "--b"]}))
    live = apply(None, first, manager="a")
    assert fields_of(live, "a")["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']["f:args"] == {}
    other = deploy(template=containers({"name": "web", "args": ["--c"]}))
    with pytest.raises(ApplyConflictError) as caught:
        apply(live, other, manager="b")
    assert [c.field for c in caught.value.conflicts] == ['.spec.template.spec.containers[name="web"].args']
    forced = apply(live, other, manager="b", force=True)
    assert forced["spec"]["template"]["spec"]["containers"][0]["args"] == ["--c"]


def test_granular_maps_merge_keys_from_different_managers():
    live = apply(None, deploy(), manager="a")
    extra = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"team": "x"}}}
    both = apply(live, extra, manager="b", now="T2")
    assert both["metadata"]["labels"] == {"app": "web", "team": "x"}


def test_atomic_struct_conflicts_as_a_unit():
    live = apply(None, deploy(), manager="a")
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web", "extra": "1"}}},
    }
    with pytest.raises(ApplyConflictError) as caught:
        apply(live, other, manager="b")
    assert [c.field for c in caught.value.conflicts] == [".spec.selector"]
    forced = apply(live, other, manager="b", force=True)
    assert forced["spec"]["selector"] == {"matchLabels": {"app": "web", "extra": "1"}}


CRD = crd_type(
    {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
        },
    }
)


def widget(spec):
    return {"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def test_crd_preserve_unknown_fields_deduces_granular_maps_and_atomic_lists():
    live = apply(None, widget({"config": {"a": {"x": 1}, "list": [1, 2]}, "tags": ["t1"]}), type_info=CRD)
    assert fields_of(live, "a") == {
        # "a" is an element of a deduced map, so (as upstream) a member besides its children
        "f:spec": {"f:config": {"f:a": {".": {}, "f:x": {}}, "f:list": {}}, "f:tags": {'v:"t1"': {}}}
    }
    other = apply(live, widget({"config": {"a": {"y": 2}}, "tags": ["t2"]}), manager="b", type_info=CRD)
    assert other["spec"] == {"config": {"a": {"x": 1, "y": 2}, "list": [1, 2]}, "tags": ["t1", "t2"]}
    with pytest.raises(ApplyConflictError, match=r"\.spec\.config\.list"):
        apply(live, widget({"config": {"list": [3]}}), manager="b", type_info=CRD)


def test_untyped_crd_everything_deduced():
    untyped = crd_type(None)
    live = apply(None, widget({"x": {"y": 1}, "l": [{"a": 1}]}), type_info=untyped)
    assert fields_of(live, "a") == {"f:spec": {".": {}, "f:l": {}, "f:x": {".": {}, "f:y": {}}}}


ORDER_CASES = [
    ("applied-order-wins", ["a", "b"], ["b", "a"], ["b", "a"]),
    ("live-only-keeps-relative-slot", ["a", "x", "b"], ["b", "a"], ["x", "b", "a"]),
    ("new-items-follow-applied-neighbours", ["a", "b"], ["a", "n", "b"], ["a", "n", "b"]),
    ("live-only-at-end", ["a", "b", "z"], ["a", "b"], ["a", "b", "z"]),
    ("new-item-appended", ["a"], ["a", "n"], ["a", "n"]),
]


@pytest.mark.parametrize(
    ("name", "live_names", "applied_names", "expected"), ORDER_CASES, ids=[c[0] for c in ORDER_CASES]
)
def test_map_list_merge_order(name, live_names, applied_names, expected):
    # live-only items belong to another manager so they survive
    live = apply(None, deploy(template=containers(*({"name": n} for n in live_names))), manager="other")
    result = apply(
        live, deploy(template=containers(*({"name": n} for n in applied_names))), manager="a", force=True, now="T2"
    )
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == expected


INVALID_CONFIGS = [
    (
        "map-list-item-without-key",
        deploy(template=containers({"image": "x"})),
        r"\.spec\.template\.spec\.containers: element 0: associative list with keys has an element that omits key "
        r'field "name"',
    ),
    (
        "duplicate-map-list-items",
        deploy(template=containers({"name": "a"}, {"name": "a"})),
        r'\.spec\.template\.spec\.containers: element 1: duplicate entries for key \[name="a"\]',
    ),
    (
        "duplicate-set-items",
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": ["x", "x"]}},
        r'\.metadata\.finalizers: element 1: duplicate entries for key \[="x"\]',
    ),
    (
        "port-key-defaults-protocol",
        deploy(
            template=containers(
                {"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]}
            )
        ),
        r"\.ports: element 1: duplicate entries",
    ),
]


@pytest.mark.parametrize(("name", "config", "message"), INVALID_CONFIGS, ids=[c[0] for c in INVALID_CONFIGS])
def test_invalid_apply_configs_rejected(name, config, message):
    with pytest.raises(PatchError, match=message):
        apply(None, config)


def test_untracked_live_object_is_owned_by_before_first_apply():
    untracked = deploy()
    with pytest.raises(ApplyConflictError, match=r'conflict with "before-first-apply" using apps/v1: \.spec\.replicas'):
        apply(untracked, replicas_only(5))
    same = apply(untracked, replicas_only(2))  # equal value: shared, no conflict
    assert [e[0] for e in entries(same)] == ["a", "before-first-apply"]


def test_client_sent_empty_managed_fields_reset_tracking():
    live = apply(None, deploy(), manager="a")
    reset = copy.deepcopy(live)
    reset["metadata"]["managedFields"] = []
    reset["spec"]["replicas"] = 3
    updated = record_update(live, reset, manager="edit", api_version="apps/v1", type_info=DEPLOY, now="T2")
    assert entries(updated) == [("edit", "Update", "T2")]
    assert fields_of(updated, "edit", "Update") == {"f:spec": {"f:replicas": {}}}


def test_update_on_status_subresource_is_its_own_entry():
    live = apply(None, deploy(), manager="a")
    with_status = copy.deepcopy(live)
    with_status["status"] = {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    updated = record_update(
        live, with_status, manager="controller", api_version="apps/v1", type_info=DEPLOY, now="T2", subresource="status"
    )
    entry = updated["metadata"]["managedFields"][-1]
    assert (entry["manager"], entry["subresource"]) == ("controller", "status")
    # status is a struct: unlike maps it is not itself a member (as for upstream's non-pointer structs);
    # the list the update created is (upstream's managedFields show `f:conditions: {.: {}}`)
    assert entry["fieldsV1"] == {
        "f:status": {
            "f:conditions": {".": {}, 'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}},
            "f:replicas": {},
        }
    }


def test_record_update_does_not_mutate_inputs():
    live = apply(None, deploy(), manager="a")
    changed = copy.deepcopy(live)
    changed["spec"]["replicas"] = 9
    snapshot = (copy.deepcopy(live), copy.deepcopy(changed))
    result = record_update(live, changed, manager="x", api_version="apps/v1", type_info=DEPLOY, now="T2")
    assert (live, changed) == snapshot
    result["spec"]["template"]["spec"]["containers"][0]["image"] = "mutated"
    assert changed["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"


def test_apply_result_shares_nothing_with_inputs():
    live = apply(None, deploy(), manager="a")
    config = deploy(replicas=3)
    result = apply(live, config, now="T2")
    result["spec"]["template"]["spec"]["containers"][0]["ports"].append({"containerPort": 1})
    result["metadata"]["labels"]["new"] = "x"
    assert live["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]
    assert config["metadata"]["labels"] == {"app": "web"}
    assert live["metadata"]["labels"] == {"app": "web"}


CRD_WITH_KEY_DEFAULT = crd_type(
    {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "routes": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["host", "port"],
                        "items": {
                            "type": "object",
                            "properties": {
                                "host": {"type": "string"},
                                "port": {"type": "integer", "default": 80},
                                "to": {"type": "string"},
                            },
                        },
                    }
                },
            }
        },
    }
)


def test_crd_map_list_keys_use_schema_defaults():
    live = apply(None, widget({"routes": [{"host": "a", "to": "x"}]}), type_info=CRD_WITH_KEY_DEFAULT)
    assert fields_of(live, "a") == {
        "f:spec": {"f:routes": {'k:{"host":"a","port":80}': {".": {}, "f:host": {}, "f:to": {}}}}
    }
    other = apply(
        live,
        widget({"routes": [{"host": "a", "port": 80, "to": "y"}]}),
        manager="b",
        type_info=CRD_WITH_KEY_DEFAULT,
        force=True,
    )
    assert other["spec"]["routes"] == [{"host": "a", "to": "y", "port": 80}]
    assert fields_of(other, "a") == {"f:spec": {"f:routes": {'k:{"host":"a","port":80}': {".": {}, "f:host": {}}}}}


def test_dropped_item_goes_even_with_a_field_another_manager_set_inside():
    live = apply(None, deploy(template=containers({"name": "web", "image": "nginx:1", "args": ["-v"]})), manager="a")
    changed = copy.deepcopy(live)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    live = record_update(live, changed, manager="edit", api_version="apps/v1", type_info=DEPLOY, now="T2")
    result = apply(live, deploy(template=containers()), manager="a", now="T3")
    # upstream removes the whole item: the other manager owned a field in it, not the item itself
    assert not result["spec"]["template"].get("spec", {}).get("containers")
    edit = [e for e in result["metadata"]["managedFields"] if e["manager"] == "edit"]
    assert not edit or "f:spec" not in edit[0]["fieldsV1"]


def test_more_than_ten_update_managers_fold_into_ancient_changes():
    live = apply(None, deploy(), manager="a")
    for index in range(12):
        changed = copy.deepcopy(live)
        changed["metadata"].setdefault("annotations", {})[f"k{index}"] = "v"
        live = record_update(
            live, changed, manager=f"u{index:02d}", api_version="apps/v1", type_info=DEPLOY, now=f"T{index:02d}"
        )
    updates = [e for e in live["metadata"]["managedFields"] if e["operation"] == "Update"]
    assert len(updates) == 10
    ancient = [e for e in updates if e["manager"] == "ancient-changes"]
    assert len(ancient) == 1
    # the three oldest changes are folded together, keeping the newest of their times
    assert set(ancient[0]["fieldsV1"]["f:metadata"]["f:annotations"]) == {".", "f:k0", "f:k1", "f:k2"}
    assert ancient[0]["time"] == "T02"
    assert [e["manager"] for e in updates if e["manager"] != "ancient-changes"] == [f"u{i:02d}" for i in range(3, 12)]


def test_undecodable_client_managed_fields_fall_back_to_stored_ones():
    live = apply(None, deploy(), manager="a")
    changed = copy.deepcopy(live)
    changed["metadata"]["managedFields"] = [{"manager": "x", "fieldsType": "FieldsV2"}]
    changed["spec"]["replicas"] = 4
    updated = record_update(live, changed, manager="edit", api_version="apps/v1", type_info=DEPLOY, now="T2")
    assert entries(updated) == [("a", "Apply", "T1"), ("edit", "Update", "T2")]


def test_conflict_cause_messages_follow_upstream():
    from tether.sandbox.merge import Conflict

    assert Conflict("m1", "v1", ".data.a", "Apply").message == 'conflict with "m1"'
    assert Conflict("m1", "v1", ".data.a", "Update").message == 'conflict with "m1" using v1'
    assert Conflict("c", "apps/v1", ".status", "Update", "status").message == (
        'conflict with "c" with subresource "status" using apps/v1'
    )


ATOMIC_MAP_CRD = crd_type(
    {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "settings": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "x-kubernetes-map-type": "atomic",
                    },
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            }
        },
    }
)


@pytest.mark.parametrize(
    ("field", "conflicts"),
    [("settings", [".spec.settings"]), ("labels", [])],
    ids=["atomic-map-conflicts-as-a-unit", "granular-map-shares-keys"],
)
def test_atomic_versus_granular_maps(field, conflicts):
    live = apply(None, widget({field: {"a": "1"}}), manager="a", type_info=ATOMIC_MAP_CRD)
    other = widget({field: {"b": "2"}})
    if conflicts:
        with pytest.raises(ApplyConflictError) as caught:
            apply(live, other, manager="b", type_info=ATOMIC_MAP_CRD)
        assert [c.field for c in caught.value.conflicts] == conflicts
        forced = apply(live, other, manager="b", force=True, type_info=ATOMIC_MAP_CRD)
        assert forced["spec"][field] == {"b": "2"}
        assert fields_of(forced, "a") is None  # a's only field moved to b
    else:
        both = apply(live, other, manager="b", type_info=ATOMIC_MAP_CRD)
        assert both["spec"][field] == {"a": "1", "b": "2"}
