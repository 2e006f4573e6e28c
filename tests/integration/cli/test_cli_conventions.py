"""Conventions every ``tether`` command follows: -h/--help with an example, type words, --version."""

from __future__ import annotations

import re

import pytest
from cli_helpers import tether

from tether import __version__
from tether.cli.app import command


def _command_paths(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    paths = [prefix]
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        paths += _command_paths(sub, (*prefix, name))
    return paths


def _find(path: tuple[str, ...]):  # type: ignore[no-untyped-def]
    found = command()
    for name in path:
        found = found.commands[name]
    return found


COMMANDS = _command_paths(command())
# typer's own rendering of a type without a metavar, e.g. <str>, <bool>, <path>, <int>, <float>
_EXAMPLE = re.compile(r"^\s*Example:\s*$", re.MULTILINE)
_RAW_TYPE = re.compile(r"<(str|bool|int|float|path|file|dir|list\[[a-z]+\])>")


def test_every_command_group_is_walked() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {
        "diff",
        "apply",
        "render",
        "validate",
        "sandbox",
        "demo",
        "version",
        "secrets",
        "secrets encrypt",
        "secrets decrypt",
        "secrets edit",
        "secrets keygen",
        "secrets rotate",
        "secrets updatekeys",
    } <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "tether")
def test_help_shows_an_example_and_type_words(path: tuple[str, ...]) -> None:
    outputs = []
    for flag in ("-h", "--help"):
        result = tether(*path, flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout.lstrip().startswith(f"Usage: tether {' '.join(path)}".rstrip()), result.stdout
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    text = outputs[0]
    heading = _EXAMPLE.search(text)
    assert heading, text
    example = text[heading.end() :].strip().splitlines()[0].strip()
    assert re.match(r"^(\w+=\S+ )?tether ", example), example
    assert not _RAW_TYPE.search(text), _RAW_TYPE.search(text)
    for param in _find(path).params:
        if getattr(param, "required", False):
            assert "[required]" in text, f"{param.name} is required but not marked"


def test_types_are_shown_as_words() -> None:
    diff = tether("diff", "-h").stdout
    assert re.search(r"--kubeconfig\s+FILE", diff) and re.search(r"--context\s+TEXT", diff)
    assert re.search(r"--values\s+-f\s+FILE", diff) and re.search(r"--jpath\s+-J\s+DIRECTORY", diff)
    assert "DIRECTORY|URL" in diff
    apply = tether("apply", "-h").stdout
    assert re.search(r"--timeout\s+DURATION", apply) and re.search(r"--concurrency\s+INTEGER", apply)
    sandbox = tether("sandbox", "-h").stdout
    assert re.search(r"--data\s+DIRECTORY", sandbox) and re.search(r"--token-file\s+FILE", sandbox)
    assert re.search(r"--history\s+INTEGER", sandbox) and re.search(r"--port\s+PORT", sandbox)
    assert "FILE" in tether("secrets", "decrypt", "-h").stdout


def test_version_option_and_command() -> None:
    for args in (["--version"], ["version"]):
        result = tether(*args)
        assert result.returncode == 0 and result.stdout.strip() == __version__, result.stderr


def test_usage_errors_exit_2_without_a_traceback() -> None:
    result = tether("diff")
    assert result.returncode == 2 and "Missing argument" in result.stderr and "Traceback" not in result.stderr
    result = tether("no-such-command")
    assert result.returncode == 2 and "No such command" in result.stderr
