"""JSON patch (RFC 6902) and JSON merge patch (RFC 7386)."""

import copy

import pytest

from tether.sandbox.merge import PatchError, json_patch, merge_patch

BASE = {"a": 1, "b": {"c": [1, 2, 3], "d": "x"}, "e/f": 2, "g~h": 3}

JSON_PATCH_CASES = [
    ("add-field", [{"op": "add", "path": "/z", "value": 9}], {**BASE, "z": 9}),
    ("add-replaces-existing", [{"op": "add", "path": "/a", "value": 5}], {**BASE, "a": 5}),
    (
        "add-array-middle",
        [{"op": "add", "path": "/b/c/1", "value": 9}],
        {**BASE, "b": {"c": [1, 9, 2, 3], "d": "x"}},
    ),
    (
        "add-array-end",
        [{"op": "add", "path": "/b/c/-", "value": 4}],
        {**BASE, "b": {"c": [1, 2, 3, 4], "d": "x"}},
    ),
    ("remove-field", [{"op": "remove", "path": "/a"}], {k: v for k, v in BASE.items() if k != "a"}),
    (
        "remove-array-item",
        [{"op": "remove", "path": "/b/c/0"}],
        {**BASE, "b": {"c": [2, 3], "d": "x"}},
    ),
    ("replace", [{"op": "replace", "path": "/b/d", "value": "y"}], {**BASE, "b": {"c": [1, 2, 3], "d": "y"}}),
    ("escaped-slash", [{"op": "replace", "path": "/e~1f", "value": 0}], {**BASE, "e/f": 0}),
    ("escaped-tilde", [{"op": "remove", "path": "/g~0h"}], {k: v for k, v in BASE.items() if k != "g~h"}),
    (
        "move",
        [{"op": "move", "from": "/a", "path": "/b/moved"}],
        {"b": {"c": [1, 2, 3], "d": "x", "moved": 1}, "e/f": 2, "g~h": 3},
    ),
    (
        "copy",
        [{"op": "copy", "from": "/b/c", "path": "/copied"}],
        {**BASE, "copied": [1, 2, 3]},
    ),
    (
        "test-then-replace",
        [{"op": "test", "path": "/a", "value": 1}, {"op": "replace", "path": "/a", "value": 2}],
        {**BASE, "a": 2},
    ),
    ("test-int-equals-float", [{"op": "test", "path": "/a", "value": 1.0}], BASE),
    ("test-absent-member-is-null", [{"op": "test", "path": "/nope", "value": None}], BASE),
    (
        "negative-index-add-appends",
        [{"op": "add", "path": "/b/c/-1", "value": 4}],
        {**BASE, "b": {"c": [1, 2, 3, 4], "d": "x"}},
    ),
    ("negative-index-remove-last", [{"op": "remove", "path": "/b/c/-1"}], {**BASE, "b": {"c": [1, 2], "d": "x"}}),
    ("leading-zero-index", [{"op": "remove", "path": "/b/c/01"}], {**BASE, "b": {"c": [1, 3], "d": "x"}}),
    ("missing-value-is-null", [{"op": "add", "path": "/a"}], {**BASE, "a": None}),
    ("replace-whole-document", [{"op": "replace", "path": "", "value": {"x": 1}}], {"x": 1}),
]


@pytest.mark.parametrize(("name", "ops", "expected"), JSON_PATCH_CASES, ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch(name, ops, expected):
    before = copy.deepcopy(BASE)
    assert json_patch(BASE, ops) == expected
    assert before == BASE  # input untouched


JSON_PATCH_ERRORS = [
    ("test-fails", [{"op": "test", "path": "/a", "value": 2}], "test failed at '/a'"),
    ("test-bool-is-not-int", [{"op": "test", "path": "/a", "value": True}], "test failed"),
    ("remove-missing", [{"op": "remove", "path": "/nope"}], "does not exist"),
    ("replace-missing", [{"op": "replace", "path": "/nope", "value": 1}], "does not exist"),
    ("index-out-of-range", [{"op": "add", "path": "/b/c/7", "value": 1}], "out of range"),
    ("non-numeric-index", [{"op": "remove", "path": "/b/c/x"}], "invalid array index"),
    ("negative-index-out-of-range", [{"op": "remove", "path": "/b/c/-4"}], "out of range"),
    ("test-without-value-fails", [{"op": "test", "path": "/a"}], "test failed"),
    ("test-absent-parent", [{"op": "test", "path": "/nope/deeper", "value": None}], "does not exist"),
    ("unknown-op", [{"op": "frobnicate", "path": "/a"}], "unknown op"),
    ("bad-pointer", [{"op": "remove", "path": "a"}], "must start with '/'"),
    ("move-into-child", [{"op": "move", "from": "/b", "path": "/b/c/0"}], "into its child"),
    ("not-a-list", {"op": "add"}, "must be a list"),
]


@pytest.mark.parametrize(("name", "ops", "message"), JSON_PATCH_ERRORS, ids=[c[0] for c in JSON_PATCH_ERRORS])
def test_json_patch_errors(name, ops, message):
    with pytest.raises(PatchError, match=message.replace("[", r"\[")):
        json_patch(BASE, ops)


def test_json_patch_failure_is_atomic_for_the_input():
    before = copy.deepcopy(BASE)
    with pytest.raises(PatchError):
        json_patch(BASE, [{"op": "replace", "path": "/a", "value": 7}, {"op": "remove", "path": "/nope"}])
    assert before == BASE


MERGE_PATCH_CASES = [
    ("null-deletes", {"a": 1, "b": 2}, {"a": None}, {"b": 2}),
    ("nested-merge", {"a": {"b": 1, "c": 2}}, {"a": {"c": 3, "d": 4}}, {"a": {"b": 1, "c": 3, "d": 4}}),
    ("nested-null", {"a": {"b": 1, "c": 2}}, {"a": {"b": None}}, {"a": {"c": 2}}),
    ("list-replaced", {"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ("object-replaces-scalar", {"a": 1}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}),
    ("null-missing-is-noop", {"a": 1}, {"z": None}, {"a": 1}),
    (
        "rfc7386-example",
        {
            "title": "Goodbye!",
            "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"],
            "content": "This will be unchanged",
        },
        {"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": None}, "tags": ["example"]},
        {
            "title": "Hello!",
            "author": {"givenName": "John"},
            "tags": ["example"],
            "content": "This will be unchanged",
            "phoneNumber": "+01-123-456-7890",
        },
    ),
]


@pytest.mark.parametrize(("name", "obj", "patch", "expected"), MERGE_PATCH_CASES, ids=[c[0] for c in MERGE_PATCH_CASES])
def test_merge_patch(name, obj, patch, expected):
    before = copy.deepcopy(obj)
    assert merge_patch(obj, patch) == expected
    assert obj == before
