"""The command line as a real process: the console script and ``python -m gradprobe``.

Each run pays Python's start-up, so this file keeps to one run per command and
per kind of failure; the default ``diagnose`` runs as a process in test_browser.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "two_layer_net.py"
ENV = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}


def gradprobe(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gradprobe", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )


def assert_clean_error(process: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert process.returncode == 2, process.stdout + process.stderr
    assert process.stderr.count("\n") == 1 and fragment in process.stderr
    assert "Traceback" not in process.stdout + process.stderr


@pytest.mark.skipif(shutil.which("gradprobe") is None, reason="console script not installed")
def test_console_script_derivative() -> None:
    process = subprocess.run(
        ["gradprobe", "derivative", "x**3", "--at", "1", "--eps", "0.01"],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert process.returncode == 0, process.stderr
    assert "3.0301" in process.stdout and "3.0001" in process.stdout


def test_check_exit_codes() -> None:
    ok = gradprobe("check", str(EXAMPLE), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["verdict"] == "ok"
    bug = gradprobe("check", f"{EXAMPLE}:with_planted_bug")
    assert bug.returncode == 1
    assert "WRONG" in bug.stdout and "W1" in bug.stdout


def test_depth_runs() -> None:
    process = gradprobe("depth", "--activation", "tanh", "--depth", "8", "--width", "32")
    assert process.returncode == 0, process.stderr
    assert "xavier" in process.stdout and "recommended for tanh" in process.stdout


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text("import no_such_module_anywhere\n")
    assert_clean_error(gradprobe("check", str(bad)), "raised ModuleNotFoundError on import")
    assert_clean_error(
        gradprobe("diagnose", "--layers", "64,,32", "--out", str(tmp_path / "r")), "--layers"
    )
    assert_clean_error(gradprobe("derivative", "open('x')"), "is not allowed")
    assert not (tmp_path / "r").exists()


def test_usage_error_from_the_parser_exits_2() -> None:
    process = gradprobe("depth", "--depth", "many")
    assert process.returncode == 2 and "Traceback" not in process.stderr
