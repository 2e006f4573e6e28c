"""Property: generated documents go both ways between tether and sops unchanged."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pyrage
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from secrets_helpers import sops

from tether.secrets import api
from tether.secrets.config import group_from
from tether.secrets.keys import KeyRing

# no shrinking: every example runs sops twice, and a failing example is small enough as found
PHASES = (Phase.explicit, Phase.reuse, Phase.generate)
IDENTITY = pyrage.x25519.Identity.generate()
RECIPIENT = str(IDENTITY.to_public())
OPTIONS = api.EncryptOptions(key_groups=[group_from([RECIPIENT], [])])
RING = KeyRing(age=[IDENTITY], use_gpg=False)

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789", min_size=1, max_size=10).filter(lambda k: k != "sops")
text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85\ufeff"), max_size=30
) | st.sampled_from(["", "yes", "null", "1.5", "a\nb\n", "#x", "x: y"])
scalars = (
    text
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)
documents = st.dictionaries(
    keys,
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, min_size=1, max_size=3) | st.dictionaries(keys, inner, min_size=1, max_size=3),
        max_leaves=8,
    ),
    min_size=1,
    max_size=5,
)


def _normal(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _normal(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_normal(v) for v in node]
    if isinstance(node, int | float) and not isinstance(node, bool):
        return float(node)  # sops reads JSON numbers as floats and writes integral ones as integers
    return node


def _both_ways(fmt: str, data: bytes, load: Any) -> None:
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        key = work / "key.txt"
        key.write_text(f"{IDENTITY}\n")
        (work / f"plain.{fmt}").write_bytes(data)
        (work / f"t.{fmt}").write_bytes(api.encrypt(data, fmt, OPTIONS, f"plain.{fmt}"))
        env = {"SOPS_AGE_KEY_FILE": str(key)}
        assert _normal(load(sops("decrypt", f"t.{fmt}", cwd=work, env=env).stdout)) == _normal(load(data))
        by_sops = sops("encrypt", "--age", RECIPIENT, f"plain.{fmt}", cwd=work).stdout
        assert _normal(load(api.decrypt(by_sops, fmt, RING, f"o.{fmt}"))) == _normal(load(data))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=PHASES)
@given(documents)
def test_json_documents_both_ways(document: dict[str, Any]) -> None:
    _both_ways("json", json.dumps(document).encode(), json.loads)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=PHASES)
@given(documents)
def test_yaml_documents_both_ways(document: dict[str, Any]) -> None:
    out = io.StringIO()
    YAML().dump(document, out)
    _both_ways("yaml", out.getvalue().encode(), YAML(typ="safe").load)
