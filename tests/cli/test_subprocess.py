"""The command line as a real process: the console script and ``python -m gradprobe``.

Each run pays Python's start-up, so this file keeps to one run per command and
per kind of failure, and runs the failures side by side; the default ``diagnose``
runs as a process in test_browser.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
    [line] = process.stderr.splitlines()
    assert line.startswith("gradprobe: error: ") and fragment in line, process.stderr
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


def _table(first_cell: str = "1.0") -> str:
    rows = [f"{i * 0.1:.1f},{i % 2}" for i in range(1, 20)]
    return "a,y\n" + "\n".join([f"{first_cell},0", *rows]) + "\n"


# name -> (files to write into the test's folder, arguments, a fragment of the one line).
# The option errors (--epochs 0, --seed -1, --out FILE...) run through typer's runner in
# test_cli.py: each process here costs seconds of imports.
ERRORS: dict[str, tuple[dict[str, str | bytes], list[str], str]] = {
    "missing-file": ({}, ["diagnose", "--data", "nope.csv", "--target", "y"], "no such file"),
    "non-numeric-csv": (
        {"d.csv": _table("red")},
        ["diagnose", "--data", "d.csv", "--target", "y"],
        "is 'red', expected a number",
    ),
    "missing-target": (
        {"d.csv": _table()},
        ["diagnose", "--data", "d.csv", "--target", "label"],
        "no column 'label'",
    ),
    "nan-in-data": (
        {"d.csv": _table("nan")},
        ["diagnose", "--data", "d.csv", "--target", "y"],
        "missing (NaN)",
    ),
    "bad-layers": ({}, ["diagnose", "--layers", "64,,32"], "--layers: got '64,,32'"),
    "raises-on-import": (
        {"broken.py": "import no_such_module_anywhere\n"},
        ["check", "broken.py"],
        "raised ModuleNotFoundError on import",
    ),
    "lacks-the-names": ({"empty.py": "x = 1\n"}, ["check", "empty.py"], "defines no params"),
    "formula-not-allowed": ({}, ["derivative", "open('x')"], "is not allowed"),
}


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every case of ERRORS at once: each process mostly waits on its imports."""

    def one(name: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        files, args, _ = ERRORS[name]
        folder = tmp_path_factory.mktemp(name)
        for file_name, content in files.items():
            path = folder / file_name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        # --out inside the folder unless the case sets it: nothing may be written.
        out = [] if "--out" in args or args[0] != "diagnose" else ["--out", "report"]
        return gradprobe(*args, *out, cwd=folder), folder

    with ThreadPoolExecutor(max_workers=min(len(ERRORS), os.cpu_count() or 2)) as pool:
        return dict(zip(ERRORS, pool.map(one, ERRORS), strict=True))


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_are_one_line_without_traceback(error_runs: dict[str, Any], name: str) -> None:
    process, folder = error_runs[name]
    assert_clean_error(process, ERRORS[name][2])
    assert not (folder / "report").exists()


def test_usage_error_from_the_parser_exits_2() -> None:
    process = gradprobe("depth", "--depth", "many")
    assert process.returncode == 2 and "Traceback" not in process.stderr
