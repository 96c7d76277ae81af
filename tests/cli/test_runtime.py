"""What every command shares: errors become one line and an exit code, writes name the option."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gradprobe.cli._runtime import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Command,
    Debug,
    Group,
    check_out,
    console,
    error_console,
    exit_codes,
    state,
    writing,
)
from gradprobe.errors import InvalidArgumentError, LossEvaluationError, NonFiniteError


def test_the_exit_codes() -> None:
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED) == (0, 1, 2, 130)


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            InvalidArgumentError("--lr: got 0.0, expected a positive number"),
            "--lr: got 0.0, expected a positive number",
        ),
        (LossEvaluationError("loss raised KeyError\nsecond line\nthird"), "loss raised KeyError"),
        (NonFiniteError(), "NonFiniteError"),
    ],
)
def test_a_gradprobe_error_is_one_line_on_stderr_and_exit_2(
    capsys: pytest.CaptureFixture[str], error: Exception, line: str
) -> None:
    with pytest.raises(typer.Exit) as caught, exit_codes(debug=False):
        raise error
    assert caught.value.exit_code == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"gradprobe: error: {line}"]


def test_markup_in_a_message_is_printed_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit), exit_codes(debug=False):
        raise InvalidArgumentError("x: got [bold]'y'[/bold], expected [1, 2]")
    assert capsys.readouterr().err == "gradprobe: error: x: got [bold]'y'[/bold], expected [1, 2]\n"


@pytest.mark.parametrize("through", ["argument", "state"])
def test_debug_adds_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, through: str
) -> None:
    if through == "state":
        monkeypatch.setitem(state, "debug", True)
    with pytest.raises(typer.Exit), exit_codes(debug=through == "argument"):
        raise InvalidArgumentError("bad")
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "InvalidArgumentError: bad" in err
    assert err.splitlines()[-1] == "gradprobe: error: bad"


def test_ctrl_c_exits_130_and_says_nothing_was_written(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as caught, exit_codes(debug=False):
        raise KeyboardInterrupt
    assert caught.value.exit_code == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "gradprobe: interrupted (Ctrl-C); nothing was written\n"


def test_other_errors_are_bugs_and_pass_through(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ZeroDivisionError), exit_codes(debug=False):
        1 / 0  # noqa: B018
    assert capsys.readouterr().err == ""
    with exit_codes(debug=False):
        pass  # and nothing happens without an error


def test_a_failed_write_names_the_option_and_the_path() -> None:
    with pytest.raises(InvalidArgumentError) as caught, writing("--plot", "a writable PNG path"):
        raise FileNotFoundError(2, "No such file or directory", "/nowhere/sweep.png")
    assert str(caught.value) == (
        "--plot: cannot write /nowhere/sweep.png (No such file or directory); expected a "
        "writable PNG path"
    )
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    with pytest.raises(InvalidArgumentError, match=r"^--out: cannot write the file \(disk full\)"):
        with writing("--out", "a folder"):
            raise OSError("disk full")
    with pytest.raises(ValueError, match="not an OSError"), writing("--out", "a folder"):
        raise ValueError("not an OSError")


def test_writing_for_real_through_a_file_in_the_way(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InvalidArgumentError, match=f"--plot: cannot write {blocker}"):
        with writing("--plot", "a PNG path"):
            (blocker / "sweep.png").write_bytes(b"")


def test_check_out_accepts_folders_still_to_be_made(tmp_path: Path) -> None:
    check_out(tmp_path / "a" / "b" / "c")
    check_out(tmp_path)
    assert list(tmp_path.iterdir()) == []  # it checks; it creates nothing


def test_check_out_refuses_a_file_anywhere_on_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "report"
    blocker.write_text("keep me")
    for folder in (blocker, blocker / "sub" / "deeper"):
        with pytest.raises(InvalidArgumentError) as caught:
            check_out(folder)
        assert str(caught.value) == (
            f"--out: cannot write {folder / 'report.html'} ({blocker} is a file, not a folder); "
            "expected a writable folder"
        )
    assert blocker.read_text() == "keep me"


def test_consoles_are_100_columns_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = console(), error_console()
    assert out.width == 100 and not out.is_terminal
    out.print("[bold]x[/]")
    err.print("to stderr")
    captured = capsys.readouterr()
    assert captured.out == "x\n" and captured.err == "to stderr\n"


def test_the_group_and_command_classes_show_no_bool_after_help() -> None:
    def build(group: type | None, command: type | None) -> typer.Typer:
        app = typer.Typer(cls=group, add_completion=False)

        @app.command(cls=command)
        def run(debug: Debug = False, x: int = 1) -> None:
            print(f"debug={debug}")

        @app.command(cls=command)
        def other() -> None: ...

        return app

    runner = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"})
    plain, ours = build(None, None), build(Group, Command)
    assert "<bool>" in runner.invoke(plain, ["run", "--help"]).stdout  # typer's default
    for args in (["--help"], ["run", "--help"]):
        result = runner.invoke(ours, args)
        assert result.exit_code == 0 and "--help" in result.stdout
        assert "<bool>" not in result.stdout, args
    assert runner.invoke(ours, ["run", "--debug"]).stdout == "debug=True\n"
