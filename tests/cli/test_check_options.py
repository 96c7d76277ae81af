"""``gradprobe check`` options on a NumPy file: --mode and --workers reach the check."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gradprobe.cli.commands import app

SOURCE = """
import numpy as np

params = {"W": np.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": np.array([0.1, -0.2, 0.3])}
X = np.random.default_rng(0).normal(size=(6, 4))


def loss(p):
    return float(np.sum(np.tanh(X @ p["W"].T + p["b"]) ** 2))


def grads(p):
    hidden = np.tanh(X @ p["W"].T + p["b"])
    d = 2 * hidden * (1 - hidden**2)
    return {"W": d.T @ X, "b": d.sum(0) * FACTOR}


FACTOR = {factor}
"""


def _file(tmp_path: Path, factor: float) -> str:
    path = tmp_path / f"numpy_{int(factor * 10)}.py"
    path.write_text(SOURCE.replace("{factor}", str(factor)))
    return str(path)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"}).invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_mode_localize_and_full_reach_a_numpy_check(tmp_path: Path) -> None:
    target = _file(tmp_path, 2.0)
    for mode in ("full", "localize"):
        code, out, _ = invoke("check", target, "--json", "--mode", mode)
        report = json.loads(out)
        assert code == 1 and report["mode"] == mode and report["wrong_parameters"] == ["b"]
    code, _, err = invoke("check", target, "--mode", "fast")
    assert code == 2 and "mode: got 'fast'" in err


def test_workers_run_the_file_in_processes_with_the_serial_numbers(tmp_path: Path) -> None:
    target = _file(tmp_path, 1.0)
    code, serial, _ = invoke("check", target, "--json")
    code_parallel, parallel, err = invoke("check", target, "--json", "--workers", "2")
    assert code == code_parallel == 0, err
    numbers = [e["numerical"] for e in json.loads(serial)["worst"]]
    assert numbers == [e["numerical"] for e in json.loads(parallel)["worst"]]
    code, _, err = invoke("check", target, "--workers", "0")
    assert code == 2 and "workers: got 0" in err
