"""Loading the user's file for ``gradprobe check``: the protocol, fresh imports, clear errors."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe.cli.usercode import UserCodeError, is_torch_file, load_problem
from gradprobe.errors import InvalidArgumentError

PROBLEM = """
import numpy as np
params = {"w": np.array([1.0, -2.0])}
def loss(p):
    return float(np.sum(p["w"] ** 2))
def grads(p):
    return {"w": 2 * p["w"]}
def make():
    return loss, {"w": np.array([3.0])}, lambda p: {"w": 2 * p["w"]}
"""


def _file(folder: Path, text: str, name: str = "problem.py") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_a_file_with_params_loss_and_grads(tmp_path: Path) -> None:
    loss, params, grads = load_problem(str(_file(tmp_path, PROBLEM)))  # type: ignore[misc]
    np.testing.assert_array_equal(params["w"], [1.0, -2.0])
    assert loss(params) == 5.0
    assert check_gradients(loss, params, grads).passed


def test_a_named_factory_gives_its_problem(tmp_path: Path) -> None:
    loss, params, grads = load_problem(f"{_file(tmp_path, PROBLEM)}:make")  # type: ignore[misc]
    np.testing.assert_array_equal(params["w"], [3.0])
    assert check_gradients(loss, params, grads).passed


def test_a_pytorch_file_gives_its_namespace(tmp_path: Path) -> None:
    source = "import torch\nmodule = torch.nn.Linear(2, 1)\ninputs = (torch.ones(1, 2),)\n"
    namespace = load_problem(str(_file(tmp_path, source)))
    assert isinstance(namespace, dict)
    assert namespace["module"].in_features == 2 and len(namespace["inputs"]) == 1


def test_the_files_folder_is_importable_only_while_it_loads(tmp_path: Path) -> None:
    _file(tmp_path, "VALUE = 41\n", "helper_for_usercode_test.py")
    source = "from helper_for_usercode_test import VALUE\n" + PROBLEM + "answer = VALUE + 1\n"
    before = list(sys.path)
    loss, params, _ = load_problem(str(_file(tmp_path, source)))  # type: ignore[misc]
    assert sys.path == before
    assert loss(params) == 5.0
    with pytest.raises(UserCodeError):
        load_problem(str(_file(tmp_path, "import no_such_module_anywhere\n", "broken.py")))
    assert sys.path == before
    sys.modules.pop("helper_for_usercode_test", None)


def test_every_load_is_a_fresh_module(tmp_path: Path) -> None:
    source = (
        PROBLEM + "calls = []\ndef make():\n    calls.append(1)\n    return loss, params, grads\n"
    )
    path = _file(tmp_path, source)
    first = load_problem(f"{path}:make")
    second = load_problem(f"{path}:make")
    assert first[1] is not second[1]  # params re-created by a second import
    first[1]["w"][0] = 100.0  # type: ignore[index]
    assert second[1]["w"][0] == 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("source", "suffix", "fragment"),
    [
        ("raise RuntimeError('boom')\n", "", "raised RuntimeError on import: boom; fix the file"),
        ("raise ValueError\n", "", "raised ValueError on import: (no message)"),
        ("import sys\nsys.exit(3)\n", "", "raised SystemExit on import: 3"),
        ("params = {}\nloss = len\n", "", "defines no grads, expected a file that defines"),
        (PROBLEM, ":missing", "defines no function 'missing'"),
        (PROBLEM + "value = 3\n", ":value", "defines no function 'value'"),
        (PROBLEM + "def bad():\n    return [1, 2, 3]\n", ":bad", "returned list, expected"),
        (PROBLEM + "def four():\n    return 1, 2, 3, 4\n", ":four", "a tuple of 4 items"),
        (PROBLEM + "def boom():\n    raise KeyError('k')\n", ":boom", "boom() in"),
        ("params = {}\nloss = 3\ngrads = None\n", "", "loss in"),
    ],
)
def test_protocol_errors_say_what_to_fix(
    tmp_path: Path, source: str, suffix: str, fragment: str
) -> None:
    target = f"{_file(tmp_path, source)}{suffix}"
    with pytest.raises(UserCodeError) as caught:
        load_problem(target)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, InvalidArgumentError)
    assert "\n" not in str(caught.value)


def test_ctrl_c_in_the_users_code_is_not_swallowed(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        load_problem(str(_file(tmp_path, "raise KeyboardInterrupt\n")))
    source = PROBLEM + "def stop():\n    raise KeyboardInterrupt\n"
    with pytest.raises(KeyboardInterrupt):
        load_problem(f"{_file(tmp_path, source, 'other.py')}:stop")


def test_missing_files_folders_and_non_python_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="nope.py: no such file"):
        load_problem(str(tmp_path / "nope.py"))
    with pytest.raises(InvalidArgumentError, match="is a folder"):
        load_problem(str(tmp_path))
    text = tmp_path / "notes.txt"
    text.write_text(PROBLEM)
    with pytest.raises(InvalidArgumentError, match="cannot be imported as Python"):
        load_problem(str(text))


def test_a_colon_is_a_name_only_when_the_whole_path_does_not_exist(tmp_path: Path) -> None:
    odd = tmp_path / "odd:make"  # a real file whose name holds a colon
    odd.write_text(PROBLEM)
    with pytest.raises(InvalidArgumentError, match="cannot be imported as Python"):
        load_problem(str(odd))  # read as the file, not as odd with a function make
    # A drive-like prefix with a path after it is a path, not FILE:NAME.
    with pytest.raises(InvalidArgumentError, match="no such file"):
        load_problem("C:model.py")


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
