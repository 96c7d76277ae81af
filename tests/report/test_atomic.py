"""Atomic writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gradprobe.report._atomic as atomic
from gradprobe.report._atomic import write_atomic


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
