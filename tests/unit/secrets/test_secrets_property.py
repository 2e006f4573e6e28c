"""Property: any document of supported values survives encrypt then decrypt unchanged."""

from __future__ import annotations

import json
from typing import Any

import pyrage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from tether.secrets import api
from tether.secrets.config import group_from
from tether.secrets.keys import KeyRing

IDENTITY = pyrage.x25519.Identity.generate()
OPTIONS = api.EncryptOptions(key_groups=[group_from([str(IDENTITY.to_public())], [])])
RING = KeyRing(age=[IDENTITY], use_gpg=False)

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC_-.0123456789", min_size=1, max_size=12).filter(
    lambda k: k != "sops"
)
text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85\ufeff"), max_size=40
) | st.sampled_from(["", "yes", "on", "null", "1.0", "0x1F", "a\nb\n", " lead", "#x"])
scalars = (
    text
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)
documents = st.dictionaries(
    keys,
    st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=12
    ),
    min_size=1,
    max_size=6,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return a == b  # an integral JSON float comes back as an integer, as with sops
    return a == b and type(a) is type(b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_json_round_trip(document: dict[str, Any]) -> None:
    data = json.dumps(document).encode()
    encrypted = api.encrypt(data, "json", OPTIONS, "p.json")
    assert _same(json.loads(api.decrypt(encrypted, "json", RING, "p.json")), json.loads(data))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_yaml_round_trip(document: dict[str, Any]) -> None:
    import io

    out = io.StringIO()
    YAML().dump(document, out)
    data = out.getvalue().encode()
    encrypted = api.encrypt(data, "yaml", OPTIONS, "p.yaml")
    decrypted = api.decrypt(encrypted, "yaml", RING, "p.yaml")
    assert _same(YAML(typ="safe").load(decrypted), YAML(typ="safe").load(data))
