"""Batched evaluation: the same numbers as one call per coordinate, blocks of any size."""

from __future__ import annotations

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe._params import ParameterLayout
from gradprobe.errors import InvalidArgumentError, LossEvaluationError
from gradprobe.numdiff.batched import ThetaEvaluator
from gradprobe.numdiff.perturbation import LossOnTheta, coordinate_steps, evaluate_differences

rng0 = np.random.default_rng(7)
X = rng0.normal(size=(16, 3))
Y = rng0.normal(size=(16, 2))


def net_loss(p: dict[str, np.ndarray]) -> float:
    hidden = np.tanh(X @ p["W1"].T + p["b1"])
    return float(np.mean((hidden @ p["W2"].T + p["b2"] - Y) ** 2))


def net_loss_batched(p: dict[str, np.ndarray]) -> np.ndarray:
    # Every array carries a leading batch axis: W1 (batch, 4, 3), b1 (batch, 4), ...
    hidden = np.tanh(X @ p["W1"].transpose(0, 2, 1) + p["b1"][:, None, :])
    out = hidden @ p["W2"].transpose(0, 2, 1) + p["b2"][:, None, :]
    return np.mean((out - Y) ** 2, axis=(1, 2))


def net_grads(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    hidden = np.tanh(X @ p["W1"].T + p["b1"])
    d_out = 2 * (hidden @ p["W2"].T + p["b2"] - Y) / Y.size
    d_hidden = d_out @ p["W2"] * (1 - hidden**2)
    return {
        "W1": d_hidden.T @ X,
        "b1": d_hidden.sum(0),
        "W2": d_out.T @ hidden,
        "b2": d_out.sum(0),
    }


@pytest.fixture
def params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "W1": rng.normal(size=(4, 3)),
        "b1": rng.normal(size=4),
        "W2": rng.normal(size=(2, 4)),
        "b2": rng.normal(size=2),
    }


def test_batched_loss_gives_the_plain_loss_values(params: dict[str, np.ndarray]) -> None:
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    points = theta + np.random.default_rng(1).normal(size=(5, layout.size)) * 1e-3
    evaluate = ThetaEvaluator(net_loss_batched, layout, batched=True)
    plain = [net_loss(layout.unflatten(p)) for p in points]
    np.testing.assert_allclose(evaluate.rows(points), plain, rtol=1e-14)
    assert evaluate.evaluations == 5


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
@pytest.mark.parametrize("memory", [1, 8 * 30, 10**9])  # one row per block, a few, all at once
def test_batched_differences_equal_the_loop(
    params: dict[str, np.ndarray], method: str, memory: int
) -> None:
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    indices = np.arange(layout.size)
    steps = coordinate_steps(method, theta, indices, None)
    loop = evaluate_differences(net_loss, layout, theta.copy(), indices, None, method, steps)
    evaluate = ThetaEvaluator(net_loss_batched, layout, batched=True, memory=memory)
    stacked = evaluate_differences(evaluate, layout, theta, indices, None, method, steps)
    # Same loss values up to rounding of the batched products: equal to the quotients' noise.
    noise = 8 * np.finfo(float).eps * abs(loop.center) / steps
    assert np.all(np.abs(stacked.gradient - loop.gradient) <= noise)
    assert stacked.evaluations == loop.evaluations
    if method == "central":
        assert stacked.forward is not None and loop.forward is not None
        assert np.all(np.abs(stacked.forward - loop.forward) <= 2 * noise)


def test_block_size_follows_the_memory_budget(params: dict[str, np.ndarray]) -> None:
    layout = ParameterLayout.from_params(params)
    sizes: list[int] = []

    def spy(p: dict[str, np.ndarray]) -> np.ndarray:
        sizes.append(len(p["W1"]))
        return net_loss_batched(p)

    evaluate = ThetaEvaluator(spy, layout, batched=True, memory=8 * layout.size * 7)
    theta = layout.flatten(params)
    evaluate.coordinates(theta, np.arange(20), theta[:20] + 1e-3)
    assert sizes == [7, 7, 6]


def test_check_gradients_batched_matches_plain(params: dict[str, np.ndarray]) -> None:
    plain = check_gradients(net_loss, params, net_grads)
    batched = check_gradients(net_loss_batched, params, net_grads, batched=True)
    assert batched.verdict == plain.verdict == "ok"
    assert batched.evaluations == plain.evaluations
    numerical_plain = np.array([e.numerical for e in plain.entries])
    numerical_batched = np.array([e.numerical for e in batched.entries])
    np.testing.assert_allclose(numerical_batched, numerical_plain, rtol=1e-7, atol=1e-9)


def test_batched_check_pins_a_planted_bug(params: dict[str, np.ndarray]) -> None:
    def wrong(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        grads = net_grads(p)
        grads["b1"] = grads["b1"] * 2
        return grads

    report = check_gradients(net_loss_batched, params, wrong, batched=True)
    assert report.wrong_parameters == ["b1"]
    assert "2.000" in (report.parameter("b1").diagnosis or "")


def test_a_batched_loss_must_return_one_value_per_row(params: dict[str, np.ndarray]) -> None:
    with pytest.raises(LossEvaluationError, match=r"expected \(1,\)"):
        check_gradients(lambda p: 1.0, params, net_grads, batched=True)
    with pytest.raises(LossEvaluationError, match="finite"):
        check_gradients(lambda p: np.full(len(p["W1"]), np.nan), params, net_grads, batched=True)


def test_bad_memory_and_mode_are_refused(params: dict[str, np.ndarray]) -> None:
    with pytest.raises(InvalidArgumentError, match="memory"):
        check_gradients(net_loss, params, net_grads, memory=0)
    with pytest.raises(InvalidArgumentError, match="mode"):
        check_gradients(net_loss, params, net_grads, mode="fast")
    with pytest.raises(InvalidArgumentError, match="sample"):
        check_gradients(net_loss, params, net_grads, mode="localize", sample=3)


def test_one_at_a_time_coordinates_match_direct_calls(params: dict[str, np.ndarray]) -> None:
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    before = theta.copy()
    indices = np.array([0, 3, layout.size - 1, 3])
    values = theta[indices] + np.array([1e-3, -2e-3, 5e-4, 7e-3])
    got = LossOnTheta(net_loss, layout).coordinates(theta, indices, values)
    expected = []
    for index, value in zip(indices, values, strict=True):
        moved = before.copy()
        moved[index] = value
        expected.append(net_loss(layout.unflatten(moved)))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(theta, before)  # restored bit for bit
