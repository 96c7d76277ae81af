"""Loading the user's file: NumPy protocol or an ordinary PyTorch file, importable by workers."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest

from gradprobe.cli.usercode import UserCodeError, is_torch_file, load_problem


def test_a_pytorch_file_gives_its_namespace_and_a_numpy_file_its_protocol(tmp_path: Path) -> None:
    torch_file = tmp_path / "train.py"
    torch_file.write_text(
        "import torch\nmodel = torch.nn.Linear(2, 1)\nx = torch.ones(3, 2)\nloss = 1.0\n"
    )
    namespace = load_problem(str(torch_file))
    assert isinstance(namespace, dict) and "model" in namespace
    numpy_file = tmp_path / "hand.py"
    numpy_file.write_text(
        "import numpy as np\nimport torch\nparams = {'w': np.ones(2)}\n"
        "net = torch.nn.Linear(2, 1)\n"
        "def loss(p):\n    return float((p['w'] ** 2).sum())\n"
        "def grads(p):\n    return {'w': 2 * p['w']}\n"
    )
    loss, params, grads = load_problem(str(numpy_file))  # type: ignore[misc]
    assert loss(params) == 2.0 and list(grads(params)) == ["w"]


def test_is_torch_file_needs_a_module_instance() -> None:
    import torch

    assert is_torch_file({"model": torch.nn.Linear(1, 1)})
    assert not is_torch_file({"model": torch.nn.Linear, "x": 1})  # a class, not an instance
    assert not is_torch_file({"params": 1, "loss": 2, "grads": 3, "net": torch.nn.Linear(1, 1)})


def test_the_files_functions_can_be_pickled_for_worker_processes(tmp_path: Path) -> None:
    path = tmp_path / "picklable.py"
    path.write_text(
        "params = {'w': 1.0}\ndef loss(p):\n    return p['w'] ** 2\n"
        "def grads(p):\n    return {'w': 2 * p['w']}\n"
    )
    loss, _, _ = load_problem(str(path))  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(loss))
    assert again({"w": 3.0}) == 9.0
    assert loss.__module__ in sys.modules


def test_a_file_that_fails_to_import_is_not_left_registered(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("raise ValueError('no')\n")
    with pytest.raises(UserCodeError, match="raised ValueError on import"):
        load_problem(str(path))
    assert "_gradprobe_user_broken" not in sys.modules
