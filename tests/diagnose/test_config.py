"""DiagnoseConfig: every option checked when made, and no NumPy needed to read its defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradprobe.diagnose.config import DiagnoseConfig
from gradprobe.errors import InvalidArgumentError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, "--epochs: got 0, expected an integer >= 1"),
        ({"seed": -1}, "--seed: got -1, expected a non-negative int"),
        ({"activation": "foo"}, "--activation: got 'foo'"),
        ({"init": "foo"}, "--init: got 'foo'"),
        ({"l2": -1.0}, "--l2: got -1.0, expected a number >= 0"),
        ({"dropout": np.float64(1.0)}, "--dropout: got 1.0, expected a number in [0, 1)"),
        ({"optimizer": "sgd"}, "--optimizer: got 'sgd'"),
        ({"lr": -1.0}, "--lr: got -1.0, expected a positive number"),
        ({"layers": ()}, "--layers: got no hidden layers"),
        ({"layers": (4, 0)}, "--layers: got 0"),
    ],
)
def test_config_is_checked_when_made(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        DiagnoseConfig(**options)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message), caught.value
    assert "np.float64" not in str(caught.value)


def test_the_defaults_are_valid_and_frozen() -> None:
    config = DiagnoseConfig()
    assert config.layers == (64, 32) and config.init == "auto" and config.epochs == 200
    with pytest.raises(AttributeError):
        config.epochs = 3  # type: ignore[misc]


def test_other_errors_keep_their_own_argument_name() -> None:
    # depth and width are not diagnose options of the network: their names stay as they are.
    with pytest.raises(InvalidArgumentError, match="^depth: got 0"):
        DiagnoseConfig(depth=0)
    with pytest.raises(InvalidArgumentError, match="^width: got -2"):
        DiagnoseConfig(width=-2)


def test_reading_the_defaults_imports_no_numpy() -> None:
    # The command line shows these defaults in --help, which must answer at once.
    code = (
        "import sys\n"
        "from gradprobe.diagnose.config import DiagnoseConfig\n"
        "print(DiagnoseConfig.epochs, 'numpy' in sys.modules)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["200", "False"]
