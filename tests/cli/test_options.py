"""Shared option helpers: comma lists and completion of choices."""

from __future__ import annotations

import pytest

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
