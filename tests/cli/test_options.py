"""Shared option helpers: comma lists and completion of choices."""

from __future__ import annotations

import pytest

from gradprobe.cli import _options as options
from gradprobe.cli._options import SWEEP_INITS, completer, parse_names
from gradprobe.errors import InvalidArgumentError


def test_comma_lists_and_repeats_mix() -> None:
    assert parse_names(["he,xavier", " zeros "], "--init", SWEEP_INITS) == ["he", "xavier", "zeros"]
    assert parse_names(None, "--init", SWEEP_INITS) is None


def test_an_unknown_name_is_one_clear_error() -> None:
    with pytest.raises(InvalidArgumentError, match="--init: got 'foo', expected names from zeros"):
        parse_names(["he,foo"], "--init", SWEEP_INITS)


def test_completion_continues_after_the_last_comma() -> None:
    complete = completer(["relu", "tanh", "leaky_relu"])
    assert complete("") == ["relu", "tanh", "leaky_relu"]
    assert complete("relu,t") == ["relu,tanh"]
    assert complete("x") == []


def _library_tables() -> list[tuple[str, tuple[object, ...], tuple[object, ...]]]:
    from gradprobe.check.comparison import DEFAULT_THRESHOLDS
    from gradprobe.check.setup import MODES
    from gradprobe.diagnose.tabular import DATASETS
    from gradprobe.nn.activations import ACTIVATIONS
    from gradprobe.nn.initializers import INITIALIZERS
    from gradprobe.nn.sweep import DEFAULT_INITS
    from gradprobe.nn.train import OPTIMIZERS
    from gradprobe.numdiff.rules import METHODS

    return [
        ("METHODS", options.METHODS, METHODS),
        ("MODES", options.MODES, MODES),
        ("DEFAULT_THRESHOLDS", options.DEFAULT_THRESHOLDS, DEFAULT_THRESHOLDS),
        ("ACTIVATIONS", options.ACTIVATIONS, tuple(ACTIVATIONS)),
        ("INITIALIZERS", options.INITIALIZERS, tuple(INITIALIZERS)),
        ("DEFAULT_INITS", options.DEFAULT_INITS, tuple(DEFAULT_INITS)),
        ("OPTIMIZERS", options.OPTIMIZERS, tuple(OPTIMIZERS)),
        ("DATASETS", options.DATASETS, DATASETS),
    ]


def test_the_spelled_out_choices_are_the_librarys_own() -> None:
    # The command line copies these names to answer --help without NumPy: a name added to
    # (or dropped from) a library table must be added here too, in the same order.
    tables = _library_tables()
    assert len(tables) == 8
    for name, copied, library in tables:
        assert copied == library, f"cli._options.{name} differs from the library's table"
