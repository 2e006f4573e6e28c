"""Property-based checks of apply: whatever sequence of configs, ownership makes the object
converge to what its appliers currently apply."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.sandbox.merge import apply_patch, builtin_type
from tether.sandbox.merge.fieldpath import difference, from_fields_v1, object_fields, to_fields_v1, union

DEPLOY = builtin_type("apps", "v1", "Deployment")
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.sampled_from(["w", "x", "y"])
small = st.sampled_from(["1", "2"])


@st.composite
def container(draw, name):
    item = {"name": name}
    if draw(st.booleans()):
        item["image"] = draw(st.sampled_from(["i1", "i2"]))
    if draw(st.booleans()):
        item["args"] = draw(st.lists(small, min_size=1, max_size=2))
    if draw(st.booleans()):
        env_names = draw(st.lists(st.sampled_from(["A", "B", "C"]), min_size=1, max_size=3, unique=True))
        item["env"] = [{"name": n, "value": draw(small)} for n in env_names]
    if draw(st.booleans()):
        ports = draw(st.lists(st.sampled_from([80, 443, 8080]), min_size=1, max_size=3, unique=True))
        item["ports"] = [{"containerPort": p} for p in ports]
    return item


@st.composite
def config(draw, label_keys=("a", "b", "c")):
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(label_keys), min_size=1, unique=True))
        body["metadata"]["labels"] = {k: draw(small) for k in keys}
    spec = {}
    if draw(st.booleans()):
        spec["replicas"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        spec["selector"] = {"matchLabels": {"app": draw(small)}}
    if draw(st.booleans()):
        chosen = draw(st.lists(names, min_size=1, max_size=3, unique=True))
        spec["template"] = {"spec": {"containers": [draw(container(n)) for n in chosen]}}
    if spec:
        body["spec"] = spec
    return body


def body_of(obj):
    out = copy.deepcopy(obj)
    out["metadata"].pop("managedFields", None)
    return out


def run(live, cfg, manager, now):
    return apply_patch(live, cfg, manager=manager, api_version="apps/v1", force=False, type_info=DEPLOY, now=now)


@SETTINGS
@given(st.lists(config(), min_size=1, max_size=4))
def test_single_applier_object_equals_its_latest_config(configs):
    live = None
    for index, cfg in enumerate(configs):
        live = run(live, cfg, "only", f"T{index}")
    assert body_of(live) == configs[-1]
    entries = live["metadata"].get("managedFields", [])
    expected = to_fields_v1(object_fields({k: v for k, v in configs[-1].items() if k == "spec"}, DEPLOY.root))
    labels = configs[-1]["metadata"].get("labels")
    if labels:
        expected = {"f:metadata": {"f:labels": {f"f:{k}": {} for k in sorted(labels)}}, **expected}
    assert (entries[0]["fieldsV1"] if entries else {}) == expected


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["A", "B"]), st.data()), min_size=1, max_size=6))
def test_two_appliers_with_disjoint_labels_converge_to_the_union(steps):
    live = None
    latest: dict[str, dict] = {"A": {}, "B": {}}
    for index, (manager, data) in enumerate(steps):
        keys = ("a", "b") if manager == "A" else ("c", "d")
        labels = data.draw(st.dictionaries(st.sampled_from(keys), small, max_size=2))
        cfg = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
        if labels:
            cfg["metadata"]["labels"] = labels
        live = run(live, cfg, manager, f"T{index}")
        latest[manager] = labels
    assert live["metadata"].get("labels", {}) == {**latest["A"], **latest["B"]}


@SETTINGS
@given(config(), config())
def test_reapplying_is_a_no_op(first, second):
    live = run(run(None, first, "m", "T1"), second, "m", "T2")
    assert run(live, second, "m", "T3") == live


@SETTINGS
@given(config(), config())
def test_field_set_algebra_and_round_trip(first, second):
    a = object_fields(first, DEPLOY.root)
    b = object_fields(second, DEPLOY.root)
    assert from_fields_v1(to_fields_v1(a)) == a
    assert difference(union(a, b), b) == difference(a, b)
    assert difference(a, a) == {}
    assert union(a, b) == union(b, a)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["A", "B"]), st.data()), min_size=1, max_size=6))
def test_two_appliers_with_disjoint_containers_converge_to_the_union(steps):
    live = None
    latest: dict[str, list] = {"A": [], "B": []}
    for index, (manager, data) in enumerate(steps):
        pool = ["w"] if manager == "A" else ["x", "y"]
        chosen = data.draw(st.lists(st.sampled_from(pool), max_size=2, unique=True))
        items = [data.draw(container(n)) for n in chosen]
        cfg = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": items}}},
        }
        live = run(live, cfg, manager, f"T{index}")
        latest[manager] = items
    current = ((live.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers", [])
    expected = {c["name"]: c for c in latest["A"] + latest["B"]}
    assert {c["name"]: c for c in current} == expected
