"""Which chart repository credential goes with which URL, and the push-mode credentials file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.render import RenderOptions
from tether.render.chart_credentials import (
    CredentialsFileError,
    credential_for,
    load_credentials_file,
    same_origin,
    valid_prefix,
)
from tether.render.helm_fetch import FetchSettings

ENTRIES = (
    ("https://charts.example.com/private", ("team", "pw-team")),
    ("https://charts.example.com/private/stable", ("stable", "pw-stable")),
    ("oci://registry.example.com/charts", ("robot", "pw-robot")),
    ("registry.other.example:5000", ("bare", "pw-bare")),
)


@pytest.mark.parametrize(
    ("url", "user"),
    [
        ("https://charts.example.com/private", "team"),
        ("https://charts.example.com/private/", "team"),
        ("https://charts.example.com/private/team-a", "team"),
        ("https://CHARTS.example.com:443/private/x", "team"),  # host case and the default port do not matter
        ("https://charts.example.com/private/stable/x", "stable"),  # the longest prefix wins
        ("oci://registry.example.com/charts/cache", "robot"),
        ("oci://registry.other.example:5000/any/path/cache", "bare"),  # a bare host: all of that registry
    ],
)
def test_a_prefix_covers_its_own_path_and_below(url: str, user: str) -> None:
    assert credential_for(ENTRIES, url) == (user, f"pw-{user}")


@pytest.mark.parametrize(
    "url",
    [
        "https://charts.example.com/private-other",  # not on a / boundary
        "https://charts.example.com/",
        "http://charts.example.com/private",  # another scheme: never over plain HTTP
        "https://charts.example.com:8443/private",  # another port
        "https://charts.example.com.evil.example/private",
        "https://evil.example/private",
        "https://charts.example.com@evil.example/private",  # the real host is evil.example
        "oci://registry.example.com/other/cache",
        "https://registry.example.com/charts/cache",  # an OCI credential is not an HTTP one
        "oci://registry.other.example/any/cache",  # the bare entry names port 5000
        "not a url",
    ],
)
def test_nothing_else_gets_a_credential(url: str) -> None:
    assert credential_for(ENTRIES, url) is None


def test_same_origin_and_valid_prefixes() -> None:
    assert same_origin("https://h.example/a", "https://h.example:443/b")
    assert not same_origin("https://h.example/a", "http://h.example/a")
    assert not same_origin("http://127.0.0.1:8000/a", "http://127.0.0.1:8001/a")
    assert valid_prefix("oci://r.example/charts") and valid_prefix("r.example:5000")
    for bad in ("https://user:pw@h.example/", "https://h.example/?token=x", "ftp://h.example/", "https://"):
        assert not valid_prefix(bad)


def test_credentials_stay_out_of_repr_and_comparisons() -> None:
    options = RenderOptions(chart_credentials=ENTRIES)
    assert "pw-team" not in repr(options) and options == RenderOptions()
    assert "pw-team" not in repr(FetchSettings(Path("/tmp"), credentials=ENTRIES))


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_file_with_inline_and_referenced_secrets(tmp_path: Path) -> None:
    write(tmp_path / "password", "from-a-file\n", 0o644)
    credentials = write(
        tmp_path / "creds.yaml",
        "https://charts.example.com/private:\n  username: team\n  passwordFile: password\n"
        "oci://registry.example.com/charts:\n  username: robot\n  password: inline-pw\n",
    )
    assert load_credentials_file(credentials) == (
        ("https://charts.example.com/private", ("team", "from-a-file")),
        ("oci://registry.example.com/charts", ("robot", "inline-pw")),
    )


def test_a_password_readable_by_others_is_refused_like_ssh(tmp_path: Path) -> None:
    credentials = write(tmp_path / "creds.yaml", "https://h.example/:\n  username: u\n  password: hunter2\n", 0o644)
    with pytest.raises(CredentialsFileError, match=r"holds a password and is readable by others \(mode 0644\)") as e:
        load_credentials_file(credentials)
    assert "chmod 600" in str(e.value) and "hunter2" not in str(e.value)
    # only file references: the file itself is no secret, but others may still not write it
    write(tmp_path / "pw", "hunter2")
    referring = write(tmp_path / "refs.yaml", "https://h.example/:\n  username: u\n  passwordFile: pw\n", 0o644)
    assert load_credentials_file(referring) == (("https://h.example/", ("u", "hunter2")),)
    referring.chmod(0o666)
    with pytest.raises(CredentialsFileError, match=r"writable by others \(mode 0666\)"):
        load_credentials_file(referring)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list\n", "expected a mapping"),
        ("https://u:hunter2@h.example/:\n  username: u\n  password: p\n", "is not a repository URL"),
        ("https://h.example/:\n  username: u\n", "give exactly one of password or passwordFile"),
        ("https://h.example/:\n  username: u\n  password: p\n  passwordFile: f\n", "exactly one of password"),
        ("https://h.example/:\n  username: u\n  passwordFile: missing\n", "passwordFile missing: cannot be read"),
        ("https://h.example/:\n  username: u\n  password: 'hunter2\n", r"creds.yaml:\d+: .* not valid YAML"),
    ],
)
def test_bad_files_say_what_is_wrong_without_the_secret(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CredentialsFileError, match=message) as error:
        load_credentials_file(write(tmp_path / "creds.yaml", text))
    assert "hunter2" not in str(error.value)
