"""Properties of the JAX entry point: misbehaving functions and odd options, inputs untouched."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from strategies import MISBEHAVING, PROPERTY, odd_values, outcome

from gradprobe.jax import check_function

jax.config.update("jax_platforms", "cpu")


def _loss(x: Any) -> Any:
    return jnp.sum(jnp.tanh(x) * x)


@PROPERTY
@given(function=st.sampled_from(MISBEHAVING))
def test_a_misbehaving_function_is_a_gradprobe_error(function: Any) -> None:
    x = np.array([0.3, -0.2, 0.9])
    before = x.copy()
    outcome(lambda: check_function(function, x), "f", "function", "output")
    assert np.array_equal(x, before)


@PROPERTY
@given(
    argument=st.sampled_from(["argnums", "eps", "thresholds", "sample", "seed", "mode", "memory"]),
    value=odd_values,
)
def test_check_function_names_any_odd_option(argument: str, value: Any) -> None:
    x = np.array([0.3, -0.2, 0.9])
    report = outcome(lambda: check_function(_loss, x, **{argument: value}), argument, "f ")
    if report is not None:
        assert str(report) and report.to_dict()
