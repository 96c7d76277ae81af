"""What every command shares: exit codes, consoles, and turning errors into one line.

This is the one place where an error becomes an exit code:

* 0: the command ran and, for ``check``, the gradients are "ok";
* 1: ``check`` found gradients "suspicious" or "wrong";
* 2: a usage or input error: one line on stderr that says what is wrong and what to
  do; ``--debug`` shows the traceback instead;
* 130: interrupted with Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from gradprobe.errors import GradprobeError, InvalidArgumentError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Command",
    "Debug",
    "Group",
    "Quiet",
    "check_out",
    "console",
    "error_console",
    "exit_codes",
    "state",
    "writing",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _without_type(option: Any) -> Any:
    # typer labels every option with its type; a flag takes no value, so "<bool>" misleads.
    if option is not None:
        option.metavar = ""
    return option


# The parser's error classes: typer's own copy of click's, or click's in older typers.
_ClickException: Any = typer.BadParameter.__mro__[2]


class OneLineErrors:
    """Make the parser's own errors (an unknown option, a bad value) one line and exit 2.

    click and typer print a usage box; gradprobe prints what every other error gets,
    ``gradprobe: error: ...``, and a Ctrl-C outside a command is exit 130 too. Warnings
    (NumPy's overflow in the user's loss, say) are held back and shown after the run,
    except before a usage error, whose one line already says what went wrong.
    """

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the command line, turning parser errors and Ctrl-C into one line and a code."""
        with warnings.catch_warnings(record=True) as held:
            code = self._run(*args, **kwargs)
        if code != EXIT_USAGE:
            for warning in held:
                warnings.showwarning(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, *args: Any, **kwargs: Any) -> int:
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        except _ClickException as error:
            context = getattr(error, "ctx", None)
            where = f" (see {context.command_path} --help)" if context is not None else ""
            message = " ".join(error.format_message().split()).rstrip(".")
            if type(error).__name__ == "NoArgsIsHelpError":  # a bare `gradprobe`: its help
                error.show()
            else:
                error_console().print(f"gradprobe: error: {message}{where}", markup=False)
            code = error.exit_code
        except typer.Abort:
            error_console().print("gradprobe: interrupted", markup=False)
            code = EXIT_INTERRUPTED
        return code if isinstance(code, int) else EXIT_OK


class Group(OneLineErrors, TyperGroup):
    """The ``gradprobe`` group, whose ``--help`` shows no ``<bool>``."""

    def get_help_option(self, ctx: Any) -> Any:
        """Return the ``--help`` option without a type label."""
        return _without_type(super().get_help_option(ctx))

    def get_params(self, ctx: Any) -> Any:
        """Return the options, the shell-completion flags typer adds without a type label."""
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                _without_type(param)
        return params


class Command(TyperCommand):
    """A ``gradprobe`` command, whose ``--help`` shows no ``<bool>``."""

    def get_help_option(self, ctx: Any) -> Any:
        """Return the ``--help`` option without a type label."""
        return _without_type(super().get_help_option(ctx))


state = {"debug": False}

# metavar="" keeps typer from showing "<bool>" after a flag that takes no value.
Debug = Annotated[
    bool,
    typer.Option(
        "--debug", help="Show the full traceback of an error.", show_default=False, metavar=""
    ),
]


Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Show no progress bars (they are off anyway when stderr is not a terminal).",
        show_default=False,
        metavar="",
    ),
]


def console() -> Console:
    # Built per call so tests that swap sys.stdout (typer's runner) are honoured; 100
    # columns when piped, the width gradprobe's text reports are laid out for.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 100)


def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def exit_codes(debug: bool) -> Iterator[None]:
    """Turn gradprobe's errors into one line on stderr and exit code 2."""
    try:
        yield
    except GradprobeError as error:
        if debug or state["debug"]:
            traceback.print_exc()
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        error_console().print(f"gradprobe: error: {message}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        error_console().print("gradprobe: interrupted (Ctrl-C); nothing was written", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None


@contextmanager
def writing(option: str, expected: str) -> Iterator[None]:
    """Turn a failure to write a file into an error that names the option and the path."""
    try:
        yield
    except OSError as error:
        where = error.filename if error.filename is not None else "the file"
        raise InvalidArgumentError(
            f"{option}: cannot write {where} ({error.strerror or error}); expected {expected}"
        ) from error


def check_out(folder: Path) -> None:
    """Fail before the run, not after a minute of it, when ``--out`` cannot hold the report."""
    from gradprobe._validate import check_target  # NumPy comes with it: not for --help

    for name in ("report.html", "report.json"):
        check_target(folder / name, "--out")
    for path in (folder, *folder.parents):
        if not path.exists():
            continue
        if not path.is_dir():
            reason = f"{path} is a file, not a folder"
        elif not os.access(path, os.W_OK | os.X_OK):
            reason = f"{path} is not writable"
        else:
            return
        raise InvalidArgumentError(
            f"--out: cannot write {folder / 'report.html'} ({reason}); expected a writable folder"
        )
