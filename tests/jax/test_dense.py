"""read_stack: a dense stack found in a JAX function's jaxpr, or None for anything else."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradprobe.jax._dense import DenseLayer, read_stack
from gradprobe.jax._problem import read_problem

sys.path.insert(0, str(Path(__file__).parent))
from test_mlp import case, cross_entropy, flax_params  # noqa: E402


def stack_of(f: Any, *args: Any, argnums: tuple[int, ...] = (0,)) -> Any:
    with jax.enable_x64(True):
        return read_stack(read_problem(f, args, argnums, 0))


def test_a_flax_layout_is_read_layer_by_layer_with_x_and_y() -> None:
    f, params, x, y = case("flax_relu_ce")
    stack = stack_of(f, params, x, y)
    # Leaves in the layout's order: dense_0/bias, dense_0/kernel, dense_1/bias, ...
    assert stack.layers == [DenseLayer(1, 0, True), DenseLayer(3, 2, True), DenseLayer(5, 4, True)]
    assert stack.activation == "relu"
    np.testing.assert_array_equal(stack.inputs, x)
    np.testing.assert_array_equal(stack.targets, y)


def test_a_list_of_out_in_weights_is_read_untransposed() -> None:
    f, params, x, y = case("list_leaky_mse")
    stack = stack_of(f, params, x, y)
    assert stack.layers == [
        DenseLayer(0, 1, False),
        DenseLayer(2, 3, False),
        DenseLayer(4, 5, False),
    ]
    assert stack.activation == "leaky_relu"


def test_closed_over_data_is_found_too() -> None:
    f, params, x, y = case("flax_relu_ce")
    stack = stack_of(lambda params: f(params, x, y), params)
    assert stack is not None and len(stack.layers) == 3
    np.testing.assert_array_equal(stack.targets, y)


def _extra(params: Any, x: Any, y: Any, change: str) -> Any:
    a = x
    names = sorted(params)
    for k, name in enumerate(names[:-1]):
        z = a @ params[name]["kernel"] + params[name]["bias"]
        if change == "second_nonlinearity" and k == 1:
            z = jnp.sin(z)
        if change == "scaled_input" and k == 0:
            z = (2 * a) @ params[name]["kernel"] + params[name]["bias"]
        a = jax.nn.relu(z)
        if change == "mixed_activations" and k == 1:
            a = jnp.tanh(z)
    logits = a @ params[names[-1]]["kernel"] + params[names[-1]]["bias"]
    if change == "l2":
        return cross_entropy(logits, y) + jnp.sum(params["dense_0"]["kernel"] ** 2)
    if change == "input_in_loss":
        return cross_entropy(logits, y) + jnp.mean(x)
    if change == "branch":
        return jax.lax.cond(logits.sum() > 0, lambda: cross_entropy(logits, y), lambda: 0.0)
    return cross_entropy(logits, y)


@pytest.mark.parametrize(
    "change",
    ["second_nonlinearity", "scaled_input", "mixed_activations", "l2", "input_in_loss", "branch"],
)
def test_anything_else_is_not_a_dense_stack(change: str) -> None:
    rng = np.random.default_rng(0)
    params = flax_params(rng, (5, 7, 7, 3))
    x, y = rng.normal(size=(11, 5)), rng.integers(0, 3, 11)
    assert stack_of(lambda p, x, y: _extra(p, x, y, "none"), params, x, y) is not None
    assert stack_of(lambda p, x, y: _extra(p, x, y, change), params, x, y) is None


def test_a_differentiated_input_or_an_unused_leaf_is_not_a_dense_stack() -> None:
    f, params, x, y = case("flax_relu_ce")
    assert stack_of(f, params, x, y, argnums=(0, 1)) is None
    assert stack_of(lambda p, x, y: f(p[0], x, y), (params, np.ones(3)), x, y) is None


def test_a_bias_broadcast_along_the_examples_is_not_a_bias() -> None:
    rng = np.random.default_rng(5)
    params = flax_params(rng, (5, 11, 3))  # 11 hidden units for 11 examples
    x, y = rng.normal(size=(11, 5)), rng.integers(0, 3, 11)

    def f(params: Any, x: Any, y: Any, per_example: bool) -> Any:
        first = params["dense_0"]
        bias = first["bias"][:, None] if per_example else first["bias"]
        a = jax.nn.relu(x @ first["kernel"] + bias)
        return cross_entropy(a @ params["dense_1"]["kernel"] + params["dense_1"]["bias"], y)

    assert stack_of(lambda p, x, y: f(p, x, y, False), params, x, y) is not None
    assert stack_of(lambda p, x, y: f(p, x, y, True), params, x, y) is None
