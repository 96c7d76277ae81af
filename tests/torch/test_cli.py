"""``gradprobe check FILE.py`` on a file that defines a PyTorch module, as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}


def gradprobe_check(name: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gradprobe", "check", str(ROOT / "examples" / name), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )


def test_correct_module_file_exits_0() -> None:
    process = gradprobe_check("torch_module.py")
    assert process.returncode == 0, process.stdout + process.stderr
    assert "gradient check: OK" in process.stdout
    assert "hidden.weight" in process.stdout and "eval mode" in process.stdout


def test_planted_bug_exits_1_naming_the_parameter() -> None:
    process = gradprobe_check("torch_module_buggy.py", "--json")
    assert process.returncode == 1, process.stdout + process.stderr
    assert '"wrong_parameters": [\n    "hidden.bias"\n  ]' in process.stdout
    assert '"name": "hidden.bias[' in process.stdout
