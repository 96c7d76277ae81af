"""Reading a JAX function and its arguments into a problem on θ."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradprobe._validate import check_argnums
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.jax._problem import argument_names, forward_gradient, read_problem


class Dense(NamedTuple):
    kernel: Any
    bias: Any


def net(params: Any, x: Any, scale: float) -> Any:
    hidden = jnp.tanh(x @ params["dense_1"]["kernel"] + params["dense_1"]["bias"])
    return scale * (hidden @ params["out"].kernel + params["out"].bias)


def make(rng: np.random.Generator) -> tuple[Any, np.ndarray]:
    params = {
        "dense_1": {"kernel": rng.normal(size=(4, 3)).astype(np.float32), "bias": np.zeros(3)},
        "out": Dense(rng.normal(size=(3, 2)), rng.normal(size=2)),
    }
    return params, rng.normal(size=(5, 4)).astype(np.float32)


def test_names_come_from_the_signature_and_jax_key_paths(rng: np.random.Generator) -> None:
    params, x = make(rng)
    with jax.enable_x64(True):
        problem = read_problem(net, (params, x, 2.0), (0, 1), seed=0)
    assert problem.layout.names == (
        "params['dense_1']['bias']",
        "params['dense_1']['kernel']",
        "params['out'].kernel",
        "params['out'].bias",
        "x",
    )
    assert problem.layout.dtypes[1] == np.float32 and problem.layout.dtypes[0] == np.float64
    assert problem.layout.coordinate_name(3 + 3 * 3 + 1) == "params['dense_1']['kernel'][3, 1]"
    # θ holds the user's values, in float64, in the order jax.tree_util flattens them.
    reference = np.concatenate([np.ravel(leaf) for leaf in jax.tree_util.tree_leaves((params, x))])
    np.testing.assert_array_equal(problem.theta, reference.astype(np.float64))


def test_argument_names_fall_back_to_positions() -> None:
    assert argument_names(lambda a, *rest: a, 3) == ["a", "args[1]", "args[2]"]
    assert argument_names(functools.partial(net, scale=1.0), 2) == ["params", "x"]
    assert argument_names(jax.jit(net), 1) == ["params"]
    assert argument_names(max, 2) == ["args[0]", "args[1]"]


def test_gradients_match_jax_grad_both_ways(rng: np.random.Generator) -> None:
    params, x = make(rng)
    with jax.enable_x64(True):
        problem = read_problem(net, (params, x, 2.0), (0,), seed=3)
        reverse = problem.gradient()
        forward = forward_gradient(problem, rows=4)  # several chunks, the last one padded

        def projected(p: Any) -> Any:  # Σ v·f with the problem's own cotangent v
            return problem.scalar((p,), problem.dynamic)

        cast = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
        expected = jax.grad(projected)(cast)
    flat = np.concatenate([np.ravel(g) for g in jax.tree_util.tree_leaves(expected)])
    np.testing.assert_allclose(reverse, flat, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(forward, flat, rtol=1e-12, atol=1e-14)


def test_low_precision_outputs_are_detected(rng: np.random.Generator) -> None:
    with jax.enable_x64(True):
        problem = read_problem(
            lambda x: jnp.sum(jnp.sin(x.astype(jnp.float32))), (rng.normal(size=3),), (0,), 0
        )
    assert problem.value_dtype == np.float32


def test_bad_arguments_are_named(rng: np.random.Generator) -> None:
    with pytest.raises(InvalidTypeError, match=r"args: counts\['n'\] is int"):
        with jax.enable_x64(True):
            read_problem(lambda counts: counts["n"] * 1.0, ({"n": np.arange(3)},), (0,), 0)
    with pytest.raises(
        LossEvaluationError, match="f raised TypeError at args \\(as given\\): cannot reshape"
    ):
        with jax.enable_x64(True):
            read_problem(lambda x: jnp.reshape(x, (7,)), (np.ones(3),), (0,), 0)
    with pytest.raises(LossEvaluationError, match="no floating-point array"):
        with jax.enable_x64(True):
            read_problem(lambda x: jnp.argmax(x), (np.ones(3),), (0,), 0)
    assert check_argnums((0, -1), 3) == (0, 2)
    with pytest.raises(InvalidArgumentError, match="argnums: got 3 for 2 positional"):
        check_argnums(3, 2)
    with pytest.raises(InvalidArgumentError, match="distinct"):
        check_argnums((1, 1), 2)
    with pytest.raises(InvalidTypeError, match="argnums: got 'x'"):
        check_argnums("x", 2)


def test_a_non_finite_vjp_names_f_and_args() -> None:
    from gradprobe.jax import check_function

    with pytest.raises(LossEvaluationError, match=r"^jax\.vjp of f at args returned a non-finite"):
        check_function(lambda x: x.sum() * float("nan"), np.array([0.3, -0.2, 0.9]))
