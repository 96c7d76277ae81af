"""The JAX evaluator: perturbed values compiled, batched leaf by leaf, in padded chunks."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradprobe.errors import LossEvaluationError
from gradprobe.jax._evaluator import Evaluator, chunk_rows
from gradprobe.jax._problem import read_problem


def loss(params: Any, x: Any) -> Any:
    hidden = jax.nn.relu(x @ params["w1"] + params["b1"])
    return jnp.mean(jnp.log1p(jnp.exp(hidden @ params["w2"])))


def make(rng: np.random.Generator) -> tuple[Any, np.ndarray]:
    params = {"w1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "w2": rng.normal(size=4)}
    return params, rng.normal(size=(6, 3))


def test_chunk_rows_respects_memory_and_count() -> None:
    assert chunk_rows(100, 1000, 1000) == 10
    assert chunk_rows(100, 5, 10**9) == 8
    assert chunk_rows(10**9, 5, 10) == 1
    assert chunk_rows(1, 10**6, 10**12) == 1024


@pytest.mark.parametrize("memory", [2**30, 1])
@pytest.mark.parametrize("split_above", [0, 2048])
def test_coordinates_match_plain_evaluations(
    rng: np.random.Generator, memory: int, split_above: int
) -> None:
    params, x = make(rng)
    with jax.enable_x64(True):
        problem = read_problem(loss, (params, x), (0,), 0)
        evaluator = Evaluator(problem, memory=memory, split_above=split_above)
        theta = problem.theta.copy()
        center = evaluator(theta)
        indices = rng.permutation(np.r_[np.arange(theta.size), np.arange(theta.size)])[:29]
        values = theta[indices] + rng.normal(size=len(indices)) * 1e-3
        got = evaluator.coordinates(theta, indices, values)
        expected = []
        for index, value in zip(indices, values, strict=True):
            moved = theta.copy()
            moved[index] = value
            expected.append(float(loss(problem.layout.unflatten(moved)[0], x)))
        at_theta = float(loss(problem.layout.unflatten(theta)[0], x))
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    assert center == pytest.approx(at_theta, rel=1e-14)
    np.testing.assert_array_equal(theta, problem.theta)  # θ itself is never moved
    assert evaluator.evaluations == len(indices) + 1
    assert evaluator.compiled
    groups = {group for group, _ in evaluator._chunks}
    # Leaf by leaf when split; otherwise one function over θ serves θ itself too.
    assert groups == ({0, 1, 2} if split_above == 0 else {-1})
    if memory == 1:  # one row per chunk
        assert {rows for _, rows in evaluator._chunks} == {1}


def test_untraceable_code_runs_one_row_at_a_time(rng: np.random.Generator) -> None:
    def branchy(x: Any) -> Any:
        return jnp.sum(x**2) if float(jnp.sum(x)) > 0 else jnp.sum(x**3)

    with jax.enable_x64(True):
        problem = read_problem(branchy, (np.abs(rng.normal(size=3)),), (0,), 0)
        evaluator = Evaluator(problem)
        theta = problem.theta.copy()
        got = evaluator.coordinates(theta, np.array([0, 2]), theta[[0, 2]] + 0.5)
        center = evaluator(theta)
    expected = [
        np.sum(np.r_[theta[0] + 0.5, theta[1:]] ** 2),
        np.sum(np.r_[theta[:2], theta[2] + 0.5] ** 2),
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    assert center == pytest.approx(np.sum(theta**2), rel=1e-14)
    assert not evaluator.compiled
    assert any("jax.jit could not trace f" in note for note in problem.notes)


def test_non_finite_values_name_the_moved_coordinate() -> None:
    with jax.enable_x64(True):
        problem = read_problem(lambda x: jnp.sum(jnp.log(x)), (np.array([1.0, 2.0]),), (0,), 0)
        evaluator = Evaluator(problem)
        with pytest.raises(LossEvaluationError, match=r"with x\[1\] moved"):
            evaluator.coordinates(problem.theta.copy(), np.array([0, 1]), np.array([1.5, -1.0]))
