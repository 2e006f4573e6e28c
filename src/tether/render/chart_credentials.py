"""Which chart repository credential, if any, goes with a URL; and the push-mode credentials file.

A credential is configured for a URL prefix: ``https://charts.example.com/private`` or
``oci://registry.example.com/charts`` (a bare ``registry.example.com`` means every path of that
OCI registry). It applies to a URL of the same scheme (``oci`` for a registry), the same host and
port, and a path equal to the prefix's or below it on a ``/`` boundary (``/private`` covers
``/private/stable``, never ``/private-other``). The longest matching prefix wins. Nothing else,
another host, port or scheme included, ever receives it.

The credentials file (``--chart-credentials FILE``) maps such prefixes to a username and a password,
each given inline or read from a file::

    https://charts.example.com/private:
      username: robot
      passwordFile: /run/secrets/charts-password
    oci://registry.example.com/charts:
      usernameFile: /run/secrets/registry-user
      password: s3cret

Like ssh with a private key, a file that holds an inline password is refused when others than its
owner may read it, and any credentials file is refused when others may write it (they could send
the referenced passwords to a host of their choosing).
"""

from __future__ import annotations

import os
import stat
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

import yaml

from tether.errors import RenderError

Credential = tuple[str, str]
Entries = Iterable[tuple[str, Credential]]

_DEFAULT_PORTS = {"http": 80, "https": 443, "oci": 443}


class CredentialsFileError(RenderError):
    """The chart credentials file cannot be used (the message names it and says why)."""


def _parts(url: str) -> tuple[str, str, str] | None:
    """(scheme, host:port, path without trailing /) of a URL or bare OCI host; None when unusable."""
    if "://" not in url:
        url = "oci://" + url
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return scheme, f"{host}:{port or _DEFAULT_PORTS[scheme]}", parts.path.rstrip("/")


def valid_prefix(url: str) -> bool:
    """Can ``url`` key a credential (http(s):// or oci:// with a host, no user, query or fragment)?"""
    parts = urllib.parse.urlsplit(url if "://" in url else "oci://" + url)
    return _parts(url) is not None and not (parts.username or parts.password or parts.query or parts.fragment)


def masked(url: object) -> str:
    """``url`` for a message: a user and password in it are replaced by ``***``."""
    text = str(url)
    try:
        parts = urllib.parse.urlsplit(text)
        if parts.username is None and parts.password is None:
            return repr(text)
        return repr(urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])))
    except ValueError:
        return "(an unparsable URL)"


def credential_for(entries: Entries, url: str) -> Credential | None:
    """The credential of the longest configured prefix that covers ``url``, or None."""
    target = _parts(url)
    if target is None:
        return None
    scheme, host, path = target
    best: tuple[int, Credential] | None = None
    for prefix, credential in entries:
        configured = _parts(prefix)
        if configured is None or configured[:2] != (scheme, host):
            continue
        base = configured[2]
        if (path == base or path.startswith(base + "/")) and (best is None or len(base) > best[0]):
            best = (len(base), credential)
    return best[1] if best else None


def same_origin(first: str, second: str) -> bool:
    """Same scheme, host and port (what a repository's credential may follow, e.g. to its archives)."""
    one, other = _parts(first), _parts(second)
    return one is not None and other is not None and one[:2] == other[:2]


# ------------------------------------------------------------------ the push-mode file


def _check_mode(path: Path, holds_password: bool) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CredentialsFileError(
            f"{path}: chart credentials file is writable by others (mode {stat.S_IMODE(mode):04o}); "
            f"refusing to use it (run: chmod 600 {path})"
        )
    if holds_password and mode & (stat.S_IRGRP | stat.S_IROTH):
        raise CredentialsFileError(
            f"{path}: chart credentials file holds a password and is readable by others "
            f"(mode {stat.S_IMODE(mode):04o}); refusing to use it (run: chmod 600 {path}, or use passwordFile)"
        )


def _field(entry: dict, key: str, where: str, base: Path) -> str:
    inline, reference = entry.get(key), entry.get(f"{key}File")
    if (inline is None) == (reference is None):
        raise CredentialsFileError(f"{where}: give exactly one of {key} or {key}File")
    if inline is not None:
        if not isinstance(inline, str):
            raise CredentialsFileError(f"{where}: {key} must be a string")
        return inline
    if not isinstance(reference, str) or not reference:
        raise CredentialsFileError(f"{where}: {key}File must be a file name")
    target = (base / os.path.expanduser(reference)).resolve()
    try:
        return target.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise CredentialsFileError(f"{where}: {key}File {reference}: cannot be read ({type(error).__name__})") from None


def load_credentials_file(path: str | Path) -> tuple[tuple[str, Credential], ...]:
    """The (prefix, (username, password)) entries of a credentials file; ``*File`` names are relative to it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CredentialsFileError(f"{path}: chart credentials file cannot be read ({error})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        # the parser's message quotes the text around the fault, which may be a password
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CredentialsFileError(f"{path}{line}: chart credentials file is not valid YAML") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CredentialsFileError(f"{path}: expected a mapping of repository URL to {{username, password}}")
    _check_mode(path, any(isinstance(e, dict) and "password" in e for e in data.values()))
    entries = []
    for url, entry in data.items():
        where = f"{path}: {url}"
        if not isinstance(url, str) or not valid_prefix(url):
            raise CredentialsFileError(
                f"{path}: {masked(url)} is not a repository URL (https://host/path, oci://host/path or a registry host,"
                " without user, query or fragment)"
            )
        if not isinstance(entry, dict):
            raise CredentialsFileError(f"{where}: expected username/usernameFile and password/passwordFile")
        username = _field(entry, "username", where, path.parent)
        entries.append((url, (username, _field(entry, "password", where, path.parent))))
    return tuple(entries)
