"""Paths gradprobe writes to: a regular file or a new path, never a link, FIFO or device."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gradprobe._validate import check_target, unsafe_target
from gradprobe.errors import InvalidArgumentError


def test_regular_files_and_new_paths_may_be_written(tmp_path: Path) -> None:
    existing = tmp_path / "plot.png"
    existing.write_bytes(b"old")
    assert unsafe_target(existing) is None
    assert unsafe_target(tmp_path / "new.png") is None
    assert unsafe_target(existing / "below-a-file.png") is None  # its writer reports the folder
    assert check_target(existing, "--plot") == existing


def test_links_fifos_folders_and_devices_are_not(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.png"
    link.symlink_to(tmp_path / "elsewhere.png")  # dangling: replacing it is still refused
    cases = {fifo: "a FIFO", link: "a symbolic link", tmp_path: "a folder"}
    if Path("/dev/null").exists():
        cases[Path("/dev/null")] = "a device"
    for path, what in cases.items():
        assert (unsafe_target(path) or "").startswith(what)
        with pytest.raises(InvalidArgumentError, match=f"--plot: {path} is {what}, not a regular"):
            check_target(path, "--plot")
