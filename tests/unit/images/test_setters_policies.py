"""Pure stages: semver ranges, policies, setters (markers, Kustomize, Helm), notification payloads."""

from __future__ import annotations

import json

import pytest

from tether.images import notifications
from tether.images.errors import PolicyError
from tether.images.policy import parse_policy
from tether.images.setters import ChosenImage, update_text

TAGS = ["0.9.0", "1.0.0", "1.2.0", "1.10.0", "1.11.0-rc.1", "2.0.0", "v1.3"]
API = ChosenImage("apps", "api", "reg.local:5000/team/api", "1.2.0", "sha256:" + "a" * 64)


@pytest.mark.parametrize(
    ("range_", "expected"),
    [
        (">=1.0.0 <2.0.0", "1.10.0"),
        ("^1.2", "1.10.0"),
        ("~1.2", "1.2.0"),
        ("1.x", "1.10.0"),
        ("<1.0.0", "0.9.0"),
        (">=1.11.0-0 <2", "1.11.0-rc.1"),
        (">=1.0.0", "2.0.0"),
        ("1.0 - 1.3", "v1.3"),
        ("=1.0.0 || =0.9.0", "1.0.0"),
        (">=3", None),
    ],
)
def test_semver_ranges(range_: str, expected: str | None) -> None:
    assert parse_policy({"policy": {"semver": {"range": range_}}}).latest(TAGS) == expected


def test_policy_errors_name_the_field() -> None:
    with pytest.raises(PolicyError, match=r"spec\.policy needs exactly one"):
        parse_policy({"policy": {}})
    with pytest.raises(PolicyError, match="ts2"):
        parse_policy({"policy": {"numerical": {}}, "filterTags": {"pattern": "(?P<ts>\\d+)", "extract": "$ts2"}})
    with pytest.raises(PolicyError, match="not a comparison"):
        parse_policy({"policy": {"semver": {"range": ">>1"}}})


def test_descending_orders_pick_the_first() -> None:
    assert parse_policy({"policy": {"numerical": {"order": "desc"}}}).latest(["3", "20", "100"]) == "3"
    assert parse_policy({"policy": {"alphabetical": {"order": "desc"}}}).latest(["b", "a", "c"]) == "a"


def test_markers_keep_comments_quotes_and_layout() -> None:
    text = (
        '# header\nspec:\n  containers:\n    - image: old:1 # {"$imagepolicy": "apps:api"}\n'
        '      other: \'x:1\'   # {"$imagepolicy": "apps:api:tag"}\n'
        '      name: "n" # {"$imagepolicy": "apps:api:name"}\n'
        '      digest: d # {"$imagepolicy": "apps:api:digest"}\n'
        '      skip: s # {"$imagepolicy": "other:api"}\n'
    )
    updated, changes = update_text(text, {API.key: API})
    assert updated.splitlines() == [
        "# header",
        "spec:",
        "  containers:",
        f'    - image: {API.image}:1.2.0@{API.digest} # {{"$imagepolicy": "apps:api"}}',
        '      other: \'1.2.0\'   # {"$imagepolicy": "apps:api:tag"}',
        f'      name: "{API.image}" # {{"$imagepolicy": "apps:api:name"}}',
        f'      digest: {API.digest} # {{"$imagepolicy": "apps:api:digest"}}',
        '      skip: s # {"$imagepolicy": "other:api"}',
    ]
    assert [c.setter for c in changes] == ["marker", "marker:tag", "marker:name", "marker:digest"]
    assert update_text(updated, {API.key: API}) == (updated, []), "a second run changes nothing"


def test_a_tag_that_would_read_as_a_number_is_quoted() -> None:
    chosen = ChosenImage("apps", "api", "reg/api", "1.10")
    marker = '# {"$imagepolicy": "apps:api:tag"}'
    updated, _ = update_text(f'tag: "1.0" {marker}\nt2: x {marker}\n', {chosen.key: chosen})
    assert updated == f'tag: "1.10" {marker}\nt2: "1.10" {marker}\n'


def test_kustomize_images_and_helm_values() -> None:
    kustomization = "resources: [d.yaml]\nimages:\n  # the api\n  - name: reg.local:5000/team/api\n    newTag: 1.0.0\n"
    updated, changes = update_text(kustomization, {API.key: API}, "k", "kustomization.yaml")
    assert updated == kustomization.replace("1.0.0", "1.2.0") and changes[0].setter == "kustomize"
    values = 'image:\n  registry: reg.local:5000\n  repository: team/api\n  tag: "1.0.0"  # pinned by tether\n'
    updated, changes = update_text(values, {API.key: API}, "v", "values-prod.yaml")
    assert updated == values.replace("1.0.0", "1.2.0") and changes[0].setter == "helm"
    assert update_text(values, {API.key: API}, "v", "deploy.yaml") == (values, []), "only values files"


def test_notification_payloads_and_verification() -> None:
    distribution = {
        "events": [
            {"action": "push", "target": {"repository": "team/api", "tag": "1.2.0"}, "request": {"host": "reg:5000"}},
            {"action": "pull", "target": {"repository": "team/api", "tag": "1.2.0"}},
            {"action": "push", "target": {"repository": "team/api", "digest": "sha256:x"}},
        ]
    }
    assert notifications.parse(json.dumps(distribution).encode()) == [
        notifications.PushedImage("team/api", "reg:5000", "1.2.0")
    ]
    harbor = {
        "type": "PUSH_ARTIFACT",
        "event_data": {"resources": [{"tag": "v2", "resource_url": "harbor.example.com/lib/app:v2"}]},
    }
    assert notifications.parse(json.dumps(harbor).encode()) == [
        notifications.PushedImage("lib/app", "harbor.example.com", "v2")
    ]
    hub = {"push_data": {"tag": "3"}, "repository": {"repo_name": "user/app"}}
    assert notifications.parse(json.dumps(hub).encode())[0].path == "user/app"
    ghcr = {"package": {"package_type": "CONTAINER", "package_version": {"package_url": "ghcr.io/org/app:1"}}}
    assert notifications.parse(json.dumps(ghcr).encode())[0].host == "ghcr.io"
    notifications.verify(b"tok", {"Authorization": "Bearer tok"}, {}, b"{}")
    with pytest.raises(notifications.NotificationForbidden):
        notifications.verify(b"tok", {"Authorization": "Bearer nope"}, {}, b"{}")
    with pytest.raises(notifications.NotificationUnauthenticated):
        notifications.verify(b"tok", {}, {}, b"{}")
