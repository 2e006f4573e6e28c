"""SOPS-compatible secrets: read and write SOPS files, decrypt them in memory at render time.

``Decryptor`` is the entry point for the render stage; the CLI uses ``tether.secrets.api``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path

from tether.errors import SecretsError
from tether.secrets import api, stores
from tether.secrets.keys import KeyRing, gpg_binary, parse_age_identities, read_key_files, read_ssh_identity

__all__ = ["Decryptor", "SecretsError", "default_age_key_file"]

_MARKERS = {
    "yaml": re.compile(rb"(?m)^sops:[ \t]*(#.*)?$"),
    "json": re.compile(rb'"sops"\s*:\s*\{'),
    "binary": re.compile(rb'"sops"\s*:\s*\{'),
    "dotenv": re.compile(rb"(?m)^sops_version="),
    "ini": re.compile(rb"(?m)^\[sops\][ \t]*$"),
}


def default_age_key_file() -> Path:
    """Where sops looks for age identities when no variable is set (Linux layout)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sops" / "age" / "keys.txt"


class Decryptor:
    """Holds decryption keys; decrypts SOPS documents in memory."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    @classmethod
    def from_environment(cls, key_files: Iterable[Path] = ()) -> Decryptor:
        """Keys as sops finds them (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, the default age key file,
        SOPS_AGE_SSH_PRIVATE_KEY_FILE or ~/.ssh/id_ed25519 / id_rsa, the GnuPG keyring) plus
        ``key_files``: age identity files or armored PGP secret keys."""
        identities: list[object] = []
        if os.environ.get("SOPS_AGE_KEY"):
            identities += parse_age_identities(os.environ["SOPS_AGE_KEY"], "SOPS_AGE_KEY")
        if os.environ.get("SOPS_AGE_KEY_FILE"):
            identities += read_key_files([Path(os.environ["SOPS_AGE_KEY_FILE"])])
        default = default_age_key_file()
        if default.is_file():
            identities += read_key_files([default])
        if os.environ.get("SOPS_AGE_SSH_PRIVATE_KEY_FILE"):
            identities += read_ssh_identity(Path(os.environ["SOPS_AGE_SSH_PRIVATE_KEY_FILE"]), required=True)
        else:
            for name in ("id_ed25519", "id_rsa"):
                candidate = Path.home() / ".ssh" / name
                if candidate.is_file():
                    identities += read_ssh_identity(candidate, required=False)
        ring = KeyRing(age=identities)
        decryptor = cls(ring)
        for path in key_files:
            decryptor.add_key_file(Path(path))
        return decryptor

    @classmethod
    def from_key_material(cls, material: Mapping[str, bytes | str]) -> Decryptor:
        """Keys held in memory, e.g. the data of a Kubernetes Secret (``*.agekey`` age
        identities, ``*.asc`` armored PGP secret keys). No ambient key or keyring is used."""
        decryptor = cls(KeyRing(gpg_homes=[], use_gpg=False))
        for name, value in sorted(material.items()):
            text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
            decryptor.add_key_text(text, name)
        return decryptor

    def add_key_file(self, path: Path) -> None:
        try:
            text = path.read_text()
        except OSError as error:
            raise SecretsError(f"{path}: cannot read decryption key: {error.strerror}") from None
        self.add_key_text(text, str(path))

    def add_key_text(self, text: str, source: str) -> None:
        """Add an age identity file's text or an armored PGP secret key; ``source`` names it in errors."""
        if "-----BEGIN PGP PRIVATE KEY BLOCK-----" in text:
            self.ring.gpg_homes.insert(0, self._import_pgp(source, text))
            self.ring.use_gpg = True
            return
        found = parse_age_identities(text, source)
        if not found:
            raise SecretsError(f"{source}: no age identity (AGE-SECRET-KEY-1...) or PGP secret key found")
        self.ring.age += found

    def _import_pgp(self, source: str, text: str) -> str:
        # A private keyring, so a key given on the command line never lands in the user's own.
        home = tempfile.mkdtemp(prefix="tether-gnupg-")
        weakref.finalize(self, _remove_gnupg_home, home)
        result = subprocess.run(
            [gpg_binary(), "--batch", "--no-tty", "--quiet", "--import"],
            input=text.encode(),
            capture_output=True,
            env={**os.environ, "GNUPGHOME": home},
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise SecretsError(f"{source}: gpg could not import the secret key")
        return home

    def is_encrypted(self, data: bytes, path: Path) -> bool:
        """Cheap check for SOPS metadata, without parsing the whole document."""
        # every SOPS file carries an encrypted MAC, so this marker is always present
        if b"sops" not in data or b"ENC[AES256_GCM," not in data:
            return False
        return bool(_MARKERS[stores.format_for(path)].search(data))

    def decrypt(self, data: bytes, path: Path, *, input_type: str | None = None, ignore_mac: bool = False) -> bytes:
        """Plaintext bytes in the same format. Errors name the file and never show values."""
        fmt = stores.format_for(path, input_type)
        return api.decrypt(data, fmt, self.ring, str(path), ignore_mac=ignore_mac)


def _remove_gnupg_home(home: str) -> None:
    gpgconf = shutil.which("gpgconf")
    if gpgconf:
        subprocess.run(
            [gpgconf, "--homedir", home, "--kill", "gpg-agent"], capture_output=True, check=False, timeout=30
        )
    shutil.rmtree(home, ignore_errors=True)
