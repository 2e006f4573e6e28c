"""``tether secrets``: SOPS-compatible keygen, encrypt, decrypt, edit, rotate and updatekeys.

Flags are named as sops names them. The format comes from the file extension unless
``--input-type`` / ``--output-type`` say otherwise; output goes to stdout unless
``--in-place``. Without ``--age`` / ``--pgp`` the nearest ``.sops.yaml`` chooses recipients.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import pyrage
import typer

from tether.errors import SecretsError, UsageError
from tether.secrets import Decryptor, api, stores
from tether.secrets.config import CreationRule, group_from, rule_for
from tether.secrets.convert import convert
from tether.secrets.metadata import AgeKey, MasterKey, PgpKey, now_rfc3339
from tether.secrets.tree import Rules

_HELP = """Encrypt and decrypt SOPS files (age and PGP keys).

Example:

    tether secrets encrypt --age "$AGE_RECIPIENT" secret.yaml > secret.enc.yaml
"""
secrets_app = typer.Typer(help=_HELP, no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(metavar="FILE", help="The file to operate on.")]
InPlace = Annotated[bool, typer.Option("--in-place", "-i", help="Write the result back to FILE.")]
InputType = Annotated[str | None, typer.Option("--input-type", help="yaml, json, dotenv, ini or binary.")]
OutputType = Annotated[str | None, typer.Option("--output-type", help="yaml, json, dotenv, ini or binary.")]
KeyFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--decryption-key",
        metavar="FILE",
        help="age identity file or armored PGP secret key (repeatable), besides SOPS_AGE_KEY(_FILE).",
    ),
]
IgnoreMac = Annotated[bool, typer.Option("--ignore-mac", help="Do not refuse a file whose MAC does not match.")]
AgeOpt = Annotated[list[str] | None, typer.Option("--age", "-a", help="age recipient (repeatable, or comma list).")]
PgpOpt = Annotated[list[str] | None, typer.Option("--pgp", "-p", help="PGP fingerprint (repeatable, or comma list).")]
EncRegex = Annotated[str | None, typer.Option("--encrypted-regex", help="Encrypt only values under matching keys.")]
UnencRegex = Annotated[str | None, typer.Option("--unencrypted-regex", help="Leave values under matching keys.")]
EncSuffix = Annotated[str | None, typer.Option("--encrypted-suffix", help="Encrypt only keys with this suffix.")]
UnencSuffix = Annotated[str | None, typer.Option("--unencrypted-suffix", help="Leave keys with this suffix plain.")]
MacOnly = Annotated[bool, typer.Option("--mac-only-encrypted", help="MAC covers encrypted values only.")]
Shamir = Annotated[int, typer.Option("--shamir-secret-sharing-threshold", help="Key groups needed to decrypt.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", metavar="FILE", help="Path of .sops.yaml (default: nearest one).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise SecretsError(f"{path}: cannot read: {error.strerror}") from None


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` without a window where it is half written; keeps its permissions."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o600
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _emit(data: bytes, path: Path, in_place: bool) -> None:
    if in_place:
        _write_atomic(path, data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def _decryptor(key_files: list[Path] | None) -> Decryptor:
    return Decryptor.from_environment(key_files or [])


def _selector_rules(
    enc_regex: str | None, unenc_regex: str | None, enc_suffix: str | None, unenc_suffix: str | None, mac_only: bool
) -> Rules:
    return Rules(
        unencrypted_suffix=unenc_suffix,
        encrypted_suffix=enc_suffix,
        unencrypted_regex=unenc_regex,
        encrypted_regex=enc_regex,
        mac_only_encrypted=mac_only,
    )


def _creation(
    path: Path, age: list[str] | None, pgp: list[str] | None, rules: Rules, shamir: int, config: Path | None
) -> api.EncryptOptions:
    """Recipients and selectors: flags first, then SOPS_AGE_RECIPIENTS / SOPS_PGP_FP, then .sops.yaml."""
    ages = _split(age) or _split([os.environ.get("SOPS_AGE_RECIPIENTS", "")])
    pgps = _split(pgp) or _split([os.environ.get("SOPS_PGP_FP", "")])
    rule: CreationRule | None = None
    if not ages and not pgps:
        rule = rule_for(path, config)
        if rule is None or not rule.key_groups:
            raise UsageError(f"{path}: no recipients: give --age/--pgp or add a creation rule to .sops.yaml")
        groups = rule.key_groups
    else:
        groups = [group_from(ages, pgps)]
        try:  # recipients come from the flags; a matching rule still supplies the selectors
            rule = rule_for(path, config)
        except SecretsError:
            rule = None
    if rule and rules.is_empty():
        rules = dataclasses.replace(
            rule.rules, mac_only_encrypted=rule.rules.mac_only_encrypted or rules.mac_only_encrypted
        )
    threshold = shamir or (rule.shamir_threshold if rule and len(rule.key_groups) == len(groups) else 0)
    return api.EncryptOptions(key_groups=groups, shamir_threshold=threshold, rules=rules)


@secrets_app.command()
def keygen(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the identity to FILE (mode 0600) instead of stdout."
        ),
    ] = None,
) -> None:
    """Generate an age identity (X25519); the public key is the recipient to encrypt for.

    Example:

        tether secrets keygen -o ~/.config/sops/age/keys.txt
    """
    identity = pyrage.x25519.Identity.generate()
    public = str(identity.to_public())
    text = f"# created: {now_rfc3339()}\n# public key: {public}\n{identity}\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{output}: already exists; not overwriting an identity file") from None
    except OSError as error:
        raise UsageError(f"{output}: cannot create: {error.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    typer.echo(f"Public key: {public}", err=True)


@secrets_app.command()
def encrypt(
    file: FileArg,
    age: AgeOpt = None,
    pgp: PgpOpt = None,
    in_place: InPlace = False,
    encrypted_regex: EncRegex = None,
    unencrypted_regex: UnencRegex = None,
    encrypted_suffix: EncSuffix = None,
    unencrypted_suffix: UnencSuffix = None,
    mac_only_encrypted: MacOnly = False,
    shamir_secret_sharing_threshold: Shamir = 0,
    input_type: InputType = None,
    output_type: OutputType = None,
    config: ConfigOpt = None,
) -> None:
    """Encrypt FILE for the given recipients (or those of the matching .sops.yaml rule).

    Example:

        tether secrets encrypt --age "$AGE_RECIPIENT" -i secret.yaml
    """
    fmt_in = stores.format_for(file, input_type)
    fmt_out = stores.format_for(file, output_type or input_type)
    rules = _selector_rules(
        encrypted_regex, unencrypted_regex, encrypted_suffix, unencrypted_suffix, mac_only_encrypted
    )
    options = _creation(file, age, pgp, rules, shamir_secret_sharing_threshold, config)
    plain = convert(_read(file), fmt_in, fmt_out, str(file))
    _emit(api.encrypt(plain, fmt_out, options, str(file)), file, in_place)


@secrets_app.command()
def decrypt(
    file: FileArg,
    in_place: InPlace = False,
    decryption_key: KeyFiles = None,
    ignore_mac: IgnoreMac = False,
    input_type: InputType = None,
    output_type: OutputType = None,
) -> None:
    """Decrypt FILE (MAC verified) to stdout, or in place.

    Example:

        tether secrets decrypt --decryption-key keys.txt secret.yaml
    """
    fmt_in = stores.format_for(file, input_type)
    fmt_out = stores.format_for(file, output_type or input_type)
    plain = _decryptor(decryption_key).decrypt(_read(file), file, input_type=fmt_in, ignore_mac=ignore_mac)
    _emit(convert(plain, fmt_in, fmt_out, str(file)), file, in_place)


@secrets_app.command()
def edit(
    file: FileArg,
    decryption_key: KeyFiles = None,
    ignore_mac: IgnoreMac = False,
    age: AgeOpt = None,
    pgp: PgpOpt = None,
    encrypted_regex: EncRegex = None,
    unencrypted_regex: UnencRegex = None,
    encrypted_suffix: EncSuffix = None,
    unencrypted_suffix: UnencSuffix = None,
    input_type: InputType = None,
    config: ConfigOpt = None,
) -> None:
    """Open a decrypted copy of FILE in $SOPS_EDITOR / $EDITOR; re-encrypt it when saved.

    The copy lives in a private temporary directory that is removed afterwards. A new FILE is
    created with the recipients of the flags or of .sops.yaml.

    Example:

        EDITOR=nano tether secrets edit secret.yaml
    """
    fmt = stores.format_for(file, input_type)
    opened: api.Opened | None = None
    if file.exists():
        opened = api.open_file(_read(file), fmt, _decryptor(decryption_key).ring, str(file), ignore_mac=ignore_mac)
        plain = opened.document.dump()
    else:
        rules = _selector_rules(encrypted_regex, unencrypted_regex, encrypted_suffix, unencrypted_suffix, False)
        options = _creation(file, age, pgp, rules, 0, config)
        plain = b""
    text = plain
    while True:
        edited = _run_editor(text, file.name)
        if edited == plain:
            typer.echo(f"{file}: not changed", err=True)
            return
        try:
            if opened is not None:
                result = api.reseal(edited, fmt, opened, str(file))
            else:
                result = api.encrypt(edited, fmt, options, str(file))
            break
        except SecretsError as error:
            # on a terminal, give the edit back instead of losing it (the message holds no values)
            if not sys.stdin.isatty():
                raise
            typer.echo(f"error: {error}", err=True)
            if not typer.confirm("Edit again?", default=True):
                raise typer.Exit(1) from None
            text = edited
    _write_atomic(file, result)


def _run_editor(plain: bytes, name: str) -> bytes:
    command = os.environ.get("SOPS_EDITOR") or os.environ.get("EDITOR") or "vi"
    argv = shlex.split(command)
    if not argv or not shutil.which(argv[0]):
        raise UsageError(f"editor {command!r} not found; set EDITOR")
    directory = tempfile.mkdtemp(prefix="tether-edit-")  # mode 0700: plaintext stays private
    try:
        path = Path(directory) / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(plain)
        result = subprocess.run([*argv, str(path)], check=False)
        if result.returncode != 0:
            raise UsageError(f"editor exited with status {result.returncode}; file left unchanged")
        return path.read_bytes()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _keys(age: list[str] | None, pgp: list[str] | None) -> list[MasterKey]:
    return [AgeKey(r) for r in _split(age)] + [PgpKey(fp) for fp in _split(pgp)]


@secrets_app.command()
def rotate(
    file: FileArg,
    in_place: InPlace = False,
    decryption_key: KeyFiles = None,
    add_age: Annotated[list[str] | None, typer.Option("--add-age", help="age recipient to add.")] = None,
    rm_age: Annotated[list[str] | None, typer.Option("--rm-age", help="age recipient to remove.")] = None,
    add_pgp: Annotated[list[str] | None, typer.Option("--add-pgp", help="PGP fingerprint to add.")] = None,
    rm_pgp: Annotated[list[str] | None, typer.Option("--rm-pgp", help="PGP fingerprint to remove.")] = None,
    input_type: InputType = None,
) -> None:
    """Re-encrypt FILE with a new data key, optionally adding or removing recipients.

    Example:

        tether secrets rotate -i --add-age "$AGE_RECIPIENT" secret.yaml
    """
    fmt = stores.format_for(file, input_type)
    removed = [k.label for k in _keys(rm_age, rm_pgp)]
    result = api.rotate(
        _read(file), fmt, _decryptor(decryption_key).ring, str(file), add=_keys(add_age, add_pgp), remove=removed
    )
    _emit(result, file, in_place)


@secrets_app.command()
def updatekeys(
    file: FileArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    decryption_key: KeyFiles = None,
    input_type: InputType = None,
    config: ConfigOpt = None,
) -> None:
    """Make FILE's recipients match its .sops.yaml creation rule (the data key is kept).

    Example:

        tether secrets updatekeys --yes secret.yaml
    """
    rule = rule_for(file, config)
    if rule is None or not rule.key_groups:
        raise UsageError(f"{file}: no .sops.yaml creation rule with recipients applies")
    fmt = stores.format_for(file, input_type)
    data, added, removed = api.update_keys(
        _read(file), fmt, _decryptor(decryption_key).ring, str(file), rule.key_groups, rule.shamir_threshold
    )
    if not added and not removed:
        typer.echo(f"{file}: keys already up to date", err=True)
        return
    for label in added:
        typer.echo(f"+++ {label}", err=True)
    for label in removed:
        typer.echo(f"--- {label}", err=True)
    if not yes and sys.stdin.isatty() and not typer.confirm("Apply these changes?"):
        raise typer.Exit(1)
    _write_atomic(file, data)
    typer.echo(f"{file}: keys updated", err=True)
