"""The shared preamble of every check: validated arguments, θ, and mode="auto"."""

from __future__ import annotations

import numpy as np
import pytest

from gradprobe.check.setup import LOCALIZE_ABOVE, choose_mode, prepare_check
from gradprobe.errors import InvalidArgumentError, InvalidTypeError


def test_theta_follows_the_insertion_order_and_is_a_copy() -> None:
    params = {"W": np.arange(6.0).reshape(2, 3), "b": np.array([7.0, 8.0])}
    setup = prepare_check(
        params, thresholds=(1e-6, 1e-4), sample=None, seed=0, memory=2**20, mode="auto"
    )
    np.testing.assert_array_equal(setup.theta, [0, 1, 2, 3, 4, 5, 7, 8])
    setup.theta[0] = 99.0
    assert params["W"][0, 0] == 0.0
    assert (setup.mode, setup.sample, setup.thresholds, setup.memory) == (
        "full",
        None,
        (1e-6, 1e-4),
        2**20,
    )


def test_auto_localizes_only_large_unsampled_checks() -> None:
    assert choose_mode("auto", LOCALIZE_ABOVE, None) == "full"
    assert choose_mode("auto", LOCALIZE_ABOVE + 1, None) == "localize"
    assert choose_mode("auto", LOCALIZE_ABOVE + 1, 10) == "full"
    assert choose_mode("localize", 5, None) == "localize"


def test_bad_arguments_are_named() -> None:
    with pytest.raises(InvalidArgumentError, match="sample: got 3 with mode='localize'"):
        choose_mode("localize", 10, 3)
    with pytest.raises((InvalidArgumentError, InvalidTypeError), match="mode"):
        choose_mode("everything", 10, None)
    with pytest.raises((InvalidArgumentError, InvalidTypeError), match="thresholds"):
        prepare_check(
            np.ones(2), thresholds=(1e-3, 1e-6), sample=None, seed=0, memory=2**20, mode="full"
        )
