"""Fixtures for the secrets tests; the helpers live in secrets_helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from secrets_helpers import AgeKey, GpgKey, make_age_key, make_gpg_key, remove_gpg_home


@pytest.fixture
def age_key(tmp_path: Path) -> AgeKey:
    return make_age_key(tmp_path)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ambient keys: every test states which keys it uses."""
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_RECIPIENTS", "SOPS_PGP_FP"):
        monkeypatch.delenv(name, raising=False)
    for name in ("SOPS_AGE_SSH_PRIVATE_KEY_FILE", "SOPS_AGE_KEY_CMD", "SOPS_EDITOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.ssh keys or ~/.gnupg of the machine


@pytest.fixture(scope="session")
def gpg_key() -> Iterator[GpgKey]:
    key = make_gpg_key()
    yield key
    remove_gpg_home(key)
