"""Master keys: age identities and recipients (pyrage) and PGP keys (the gpg binary).

The data key (32 random bytes) is encrypted once per master key. With several key groups it
is first split with Shamir's scheme, and every key of a group encrypts that group's share.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyrage

from tether.errors import SecretsError
from tether.secrets import shamir
from tether.secrets.metadata import AgeKey, Metadata, PgpKey, now_rfc3339

GPG_TIMEOUT = 120


def parse_age_identities(text: str, source: str) -> list[object]:
    """Identities from an age key file (``AGE-SECRET-KEY-1...`` lines, ``#`` comments)."""
    identities: list[object] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                identities.append(pyrage.x25519.Identity.from_str(line))
            except Exception:  # pyrage raises its own IdentityError; never echo the key
                raise SecretsError(f"{source}:{number}: malformed age identity") from None
    return identities


def read_ssh_identity(path: Path, *, required: bool) -> list[object]:
    """An unencrypted OpenSSH ed25519/RSA private key used as an age identity (as sops allows)."""
    try:
        return [pyrage.ssh.Identity.from_buffer(path.read_bytes())]
    except OSError as error:
        if required:
            raise SecretsError(f"{path}: cannot read SSH key: {error.strerror}") from None
    except Exception:
        if required:
            raise SecretsError(f"{path}: not an unencrypted OpenSSH private key") from None
    return []


def age_recipient(text: str) -> object:
    text = text.strip()
    try:
        if text.startswith("age1"):
            return pyrage.x25519.Recipient.from_str(text)
        if text.startswith(("ssh-ed25519 ", "ssh-rsa ")):
            return pyrage.ssh.Recipient.from_str(text)
    except Exception:
        raise SecretsError(f"invalid age recipient {text!r}") from None
    raise SecretsError(f"invalid age recipient {text!r} (expected age1... or an ssh public key)")


def gpg_binary() -> str:
    found = shutil.which("gpg") or shutil.which("gpg2")
    if not found:
        raise SecretsError("PGP keys need the 'gpg' binary (install gnupg)")
    return found


def _gpg(args: list[str], data: bytes, home: str | None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ)
    if home:
        env["GNUPGHOME"] = home
    try:
        return subprocess.run(
            [gpg_binary(), "--batch", "--no-tty", "--quiet", *args],
            input=data,
            capture_output=True,
            env=env,
            timeout=GPG_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SecretsError(f"gpg did not answer within {GPG_TIMEOUT}s") from None


@dataclass
class KeyRing:
    """The decryption keys available to this process."""

    age: list[object] = field(default_factory=list)
    #: GnuPG home directories to try; None means the default ($GNUPGHOME or ~/.gnupg)
    gpg_homes: list[str | None] = field(default_factory=lambda: [None])
    use_gpg: bool = True

    def decrypt_age(self, key: AgeKey) -> bytes:
        if not self.age:
            raise SecretsError("no age identity is configured")
        try:
            return pyrage.decrypt(key.enc.encode(), self.age)  # type: ignore[arg-type]
        except Exception:
            raise SecretsError("no configured age identity matches") from None

    def decrypt_pgp(self, key: PgpKey) -> bytes:
        if not self.use_gpg or not self.gpg_homes:
            raise SecretsError("no GnuPG keyring is configured")
        errors = []
        for home in self.gpg_homes:
            result = _gpg(["--decrypt"], key.enc.encode(), home)
            if result.returncode == 0:
                return result.stdout
            errors.append(result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["gpg failed"])
        raise SecretsError(f"gpg could not decrypt for {key.fp}: {errors[-1][0]}")


def encrypt_for(key: AgeKey | PgpKey, secret: bytes, gpg_home: str | None = None) -> None:
    """Encrypt ``secret`` (data key or share) for one master key, filling ``key.enc``."""
    if isinstance(key, AgeKey):
        try:
            key.enc = pyrage.encrypt(secret, [age_recipient(key.recipient)], armored=True).decode()  # type: ignore
        except SecretsError:
            raise
        except Exception as error:
            raise SecretsError(f"age encryption for {key.recipient} failed: {error}") from None
        return
    result = _gpg(
        [
            "--no-default-recipient",
            "--yes",
            "--trust-model",
            "always",
            "--armor",
            "--encrypt",
            "--recipient",
            key.fp,
            "--no-encrypt-to",
        ],
        secret,
        gpg_home,
    )
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        raise SecretsError(f"gpg could not encrypt for {key.fp}: {detail[-1] if detail else 'failed'}")
    key.enc = result.stdout.decode().rstrip("\n")
    key.created_at = now_rfc3339()


def encrypt_data_key(meta: Metadata, data_key: bytes, gpg_home: str | None = None) -> None:
    groups = meta.key_groups
    if not groups or not any(g.keys for g in groups):
        raise SecretsError("no recipients: give --age/--pgp or a .sops.yaml creation rule")
    if len(groups) == 1:
        parts = [data_key]
    else:
        threshold = meta.shamir_threshold or len(groups)
        if threshold > len(groups):
            raise SecretsError(f"shamir_threshold {threshold} exceeds the number of key groups ({len(groups)})")
        meta.shamir_threshold = threshold
        parts = shamir.split(data_key, len(groups), threshold)
    for group, part in zip(groups, parts, strict=True):
        if not group.keys:
            raise SecretsError("a key group has no age or PGP keys")
        for key in group.keys:
            encrypt_for(key, part, gpg_home)


def decrypt_data_key(meta: Metadata, ring: KeyRing) -> bytes:
    """Recover the data key; the error lists every key tried and why it failed."""
    failures: list[str] = []
    parts: list[bytes] = []
    for group in meta.key_groups:
        part = _decrypt_group(group.keys, ring, failures)
        if part is not None:
            parts.append(part)
    if len(meta.key_groups) <= 1:
        if parts:
            return _check_key(parts[0])
    else:
        threshold = meta.shamir_threshold or len(meta.key_groups)
        if len(parts) >= threshold:
            return _check_key(shamir.combine(parts[:threshold]))
        failures.append(f"only {len(parts)} of {threshold} key groups could be decrypted")
    foreign = sorted({kind for group in meta.key_groups for kind, entries in group.foreign.items() if entries})
    if foreign:
        failures.append(f"{', '.join(foreign)} keys are not supported by tether")
    detail = "; ".join(failures) if failures else "the file lists no age or PGP keys"
    raise SecretsError(f"cannot decrypt the data key ({detail})")


def _decrypt_group(keys: Iterable[AgeKey | PgpKey], ring: KeyRing, failures: list[str]) -> bytes | None:
    ordered = sorted(keys, key=lambda k: isinstance(k, PgpKey))  # age first: no subprocess
    for key in ordered:
        try:
            return ring.decrypt_age(key) if isinstance(key, AgeKey) else ring.decrypt_pgp(key)
        except SecretsError as error:
            failures.append(f"{key.label}: {error}")
    return None


def _check_key(key: bytes) -> bytes:
    if len(key) != 32:
        raise SecretsError(f"the decrypted data key has {len(key)} bytes, expected 32")
    return key


def read_key_files(paths: Iterable[Path]) -> list[object]:
    identities: list[object] = []
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise SecretsError(f"{path}: cannot read key file: {error.strerror}") from None
        identities += parse_age_identities(text, str(path))
    return identities
