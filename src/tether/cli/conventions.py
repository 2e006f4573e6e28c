"""What every ``tether`` command shares: exit codes, metavars and how errors reach the terminal.

Exit codes (docs/cli.md):

- 0: success; for ``diff``, no changes;
- 1: ``diff`` found changes, or the input is invalid / an object is unhealthy;
- 2: an error (usage, render, cluster, file system, anything unexpected);
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import sys
import traceback
import types
import typing
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typer import _click as click_like

OK = 0
CHANGES_OR_INVALID = 1
ERROR = 2
INTERRUPTED = 130

#: every command takes both
HELP_OPTION_NAMES = ["-h", "--help"]

#: environment variable that adds the traceback to an unexpected error
DEBUG_VARIABLE = "TETHER_DEBUG"

# Metavars: how a value's type is shown in --help.
TEXT = "TEXT"
FILE = "FILE"
DIRECTORY = "DIRECTORY"
INTEGER = "INTEGER"
SECONDS = "SECONDS"
HOST = "HOST"
PORT = "PORT"


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters and undecodable bytes shown as escapes.

    File names, object names and arguments end up in error messages; an ESC or BEL in one must not
    reach the terminal raw (it could recolour or clear it). Newlines and tabs stay: messages list
    findings one per line.
    """
    out: list[str] = []
    for char in text:
        if char in "\n\t":
            out.append(char)
        elif 0xDC80 <= ord(char) <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif unicodedata.category(char) in ("Cc", "Cs"):
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def print_error(message: str) -> None:
    """One ``error: ...`` message on stderr (the message may hold several lines of findings)."""
    _write_stderr(f"error: {printable(message)}\n")


def print_warning(message: str) -> None:
    _write_stderr(f"warning: {printable(message)}\n")


def print_interrupted() -> None:
    _write_stderr("interrupted\n")


def describe_os_error(error: OSError) -> str:
    """``PATH: reason`` as the shell says it, e.g. ``/x: Permission denied``."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.filename is not None:
        where = os.fsdecode(error.filename)
        if error.filename2 is not None:
            where += f" -> {os.fsdecode(error.filename2)}"
        return f"{where}: {reason}"
    return reason


def describe_unexpected(error: BaseException) -> str:
    """One line naming an error nothing anticipated; the traceback follows only when debugging."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    text = f"unexpected {type(error).__name__}" + (f": {first}" if first else "")
    if not debugging():
        text += f" (set {DEBUG_VARIABLE}=1 to see the traceback)"
    return text


def print_traceback(error: BaseException) -> None:
    if debugging():
        _write_stderr("".join(traceback.format_exception(error)))


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or a broken pipe: nowhere left to report to
        pass


# -- help conventions ----------------------------------------------------------------------------

_WORDS: dict[type, str] = {str: TEXT, int: INTEGER, float: "NUMBER", Path: "PATH"}


def _word_for(annotation: Any) -> str:
    """The metavar word of a parameter's type: ``str`` -> TEXT, ``list[Path]`` -> PATH, ..."""
    origin = typing.get_origin(annotation)
    if origin is list or origin in (types.UnionType, typing.Union):
        for inner in typing.get_args(annotation):
            if inner is not type(None):
                return _word_for(inner)
    return _WORDS.get(annotation, TEXT) if isinstance(annotation, type) else TEXT


def _hide_type_column(ctx: click_like.Context | None = None) -> None:
    return None


def apply_help_conventions(command: click_like.Command) -> None:
    """Show every value's type as a word in ``--help``, for ``command`` and all its subcommands.

    Declarations give the words that say more than the type (FILE, DIRECTORY, DURATION, URL) as
    metavars; every other value gets the word of its Python type here, and flags show none. An
    argument's metavar is its name in the help, so its separate type column is left empty.
    """
    import typer
    from typer.core import TyperArgument, TyperOption

    for param in command.params:
        if isinstance(param, TyperOption):
            if param.is_flag:
                param.metavar = ""
            elif param.metavar is None:
                param.metavar = _word_for(param.type_descriptor.annotation)
        elif isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = _word_for(param.type_descriptor.annotation)
            # typer shows an argument's type after its name; the name already is the type word
            param.display_type_rich = _hide_type_column  # type: ignore[method-assign]
    # click makes the help option when help is first shown; made now, it gets the same treatment
    help_option = command.get_help_option(typer.Context(command, help_option_names=HELP_OPTION_NAMES))
    if help_option is not None:
        help_option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        apply_help_conventions(sub)
