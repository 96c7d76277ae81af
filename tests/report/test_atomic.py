"""Atomic writes: readers see the old file or the new one, never a mix, never a leftover."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gradprobe.report._atomic as atomic
from gradprobe.cli.commands import app
from gradprobe.report._atomic import write_atomic, write_together


def test_files_are_written_in_order_with_their_folders(tmp_path: Path) -> None:
    files = {
        tmp_path / "a" / "b" / "one.txt": "héllo ✓",
        tmp_path / "two.bin": bytes(range(256)),
        str(tmp_path / "three.txt"): "",
    }
    written = write_together(files)
    assert written == [Path(path) for path in files]
    assert (tmp_path / "a" / "b" / "one.txt").read_bytes() == "héllo ✓".encode()
    assert (tmp_path / "two.bin").read_bytes() == bytes(range(256))
    assert (tmp_path / "three.txt").read_bytes() == b""
    assert write_together({}) == []


def test_a_shorter_file_replaces_a_longer_one_entirely(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("a long old version\n" * 100)
    assert write_atomic(target, "new") == target
    assert target.read_text() == "new"


def test_a_reader_of_the_old_file_keeps_reading_the_old_file(tmp_path: Path) -> None:
    # A rename swaps the directory entry; writing in place would change what the reader sees.
    target = tmp_path / "report.json"
    target.write_text("old content")
    with target.open() as reader:
        write_atomic(target, "new content, longer than the old")
        assert reader.read() == "old content"
    assert target.read_text() == "new content, longer than the old"


def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()  # a folder where a file should go: the rename fails
    with pytest.raises(OSError):
        write_together({tmp_path / "first.txt": "1", tmp_path / "taken": "2"})
    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert leftovers == [] and (tmp_path / "taken").is_dir()


def test_temporary_files_are_hidden_beside_their_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []
    real_replace = atomic.os.replace

    def spy(source: str, destination: object) -> None:
        seen.append((os.path.dirname(source), os.path.basename(source)))
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", spy)
    write_atomic(tmp_path / "sub" / "page.html", "x")
    [(folder, name)] = seen
    assert folder == str(tmp_path / "sub")  # same file system: the rename is atomic
    assert name.startswith(".page.html.") and name.endswith(".tmp")


def test_interrupt_while_writing_keeps_the_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "r"
    out_dir.mkdir()
    (out_dir / "report.html").write_text("old report")

    def interrupted(source: object, destination: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    small = ["--dataset", "circles", "--epochs", "3", "--layers", "4"]
    result = CliRunner().invoke(app, ["diagnose", *small, "--out", str(out_dir)])
    assert result.exit_code == 130
    assert sorted(os.listdir(out_dir)) == ["report.html"]
    assert (out_dir / "report.html").read_text() == "old report"


# ------------------------------------------------------------- progress, views, layout


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    write_atomic(target, "one")
    write_atomic(target, b"two")
    assert target.read_text() == "two"
    assert os.listdir(target.parent) == ["out.txt"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_atomic_write_interrupted_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def interrupted(source: object, destination: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new " * 1000)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_files_written_together_are_all_staged_before_any_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    html, data = tmp_path / "report.html", tmp_path / "report.json"
    html.write_text("old html")
    data.write_text("old json")
    real_fdopen = atomic.os.fdopen
    opened: list[int] = []

    def fdopen_then_interrupt(handle: int, mode: str) -> object:
        opened.append(handle)
        if len(opened) == 2:  # the second file's staging is interrupted
            raise KeyboardInterrupt
        return real_fdopen(handle, mode)

    monkeypatch.setattr(atomic.os, "fdopen", fdopen_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_together({html: "new html", data: "new json"})
    # The first file was fully staged but not renamed: both old files stand, no temporaries.
    assert html.read_text() == "old html" and data.read_text() == "old json"
    assert sorted(os.listdir(tmp_path)) == ["report.html", "report.json"]
