"""``gradprobe check FILE.py`` on a file that defines a PyTorch module, as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from gradprobe.cli.commands import app

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


# ------------------------------------------------- an ordinary PyTorch file, in process

SCRIPT = """
import torch
from torch import nn

torch.manual_seed(0)


class Scale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return x * weight

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        return grad * weight, (grad * x).sum(0) * FACTOR


class Scaled(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n) + 0.1 * torch.randn(n))

    def forward(self, x):
        return Scale.apply(x, self.weight)


FACTOR = {factor}
net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), Scaled(6), nn.Linear(6, 3))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
inputs = torch.randn(8, 4)
labels = torch.randint(0, 3, (8,))
targets = labels
"""


def _script(tmp_path: Path, factor: float, name: str = "train.py") -> str:
    path = tmp_path / name
    path.write_text(SCRIPT.format(factor=factor))
    return str(path)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"}).invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_an_ordinary_training_script_is_checked_and_says_what_it_took(tmp_path: Path) -> None:
    code, out, err = invoke("check", _script(tmp_path, 1.0))
    assert code == 0, out + err
    first = out.splitlines()[0]
    assert first == (
        "PyTorch file: took module = net (Sequential), inputs = inputs, loss = loss_fn, "
        "targets = targets"
    )
    assert "gradient check: OK" in out


def test_a_planted_bug_in_the_script_exits_1_naming_the_parameter(tmp_path: Path) -> None:
    code, out, _ = invoke("check", _script(tmp_path, 2.0), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["wrong_parameters"] == ["2.weight"]
    assert report["notes"][0].startswith("took module = net")


def test_names_include_mode_and_workers_reach_the_check(tmp_path: Path) -> None:
    script = _script(tmp_path, 2.0)
    code, out, _ = invoke(
        "check",
        script,
        "--json",
        "--targets",
        "labels",
        "--include",
        "0.*",
        "--mode",
        "full",
        "--workers",
        "1",
    )
    report = json.loads(out)
    assert code == 0 and [row["name"] for row in report["parameters"]] == ["0.weight", "0.bias"]
    assert "targets = labels" in report["notes"][0] and report["mode"] == "full"
    code, out, _ = invoke("check", script, "--json", "--mode", "localize")
    assert code == 1 and json.loads(out)["mode"] == "localize"
    code, _, err = invoke("check", script, "--module", "optimizer")
    assert code == 2 and "--module: optimizer is a SGD" in err


def test_pytorch_options_on_a_numpy_file_are_usage_errors(tmp_path: Path) -> None:
    code, _, err = invoke("check", str(ROOT / "examples" / "two_layer_net.py"), "--include", "W1")
    assert code == 2 and "--include: applies to a PyTorch file" in err


def test_a_pytorch_check_shows_a_bar_on_a_terminal_unless_quiet(tmp_path: Path) -> None:
    # FORCE_COLOR makes rich treat stderr as a terminal, as a user's shell is.
    script = _script(tmp_path, 1.0)
    runner = CliRunner(env={"COLUMNS": "100", "FORCE_COLOR": "1"})
    loud = runner.invoke(app, ["check", script])
    quiet = runner.invoke(app, ["check", script, "--quiet"])
    assert loud.exit_code == quiet.exit_code == 0
    assert "values differentiated" in loud.stderr and quiet.stderr == ""
