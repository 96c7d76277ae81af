"""Properties of the NumPy core under odd input: only named GradprobeErrors, inputs untouched.

Each property feeds one entry point an odd value for one argument (the others valid)
and holds whatever happens to the same rules: a result that renders, or a
:class:`~gradprobe.errors.GradprobeError` whose message names the argument; the
caller's arrays bit-identical afterwards; an "ok" verdict never for garbage gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.preprocessing import StandardScaler
from strategies import (
    PROPERTY,
    misbehaving,
    odd_arrays,
    odd_values,
    outcome,
    ragged,
    snapshot,
)

import gradprobe
from gradprobe.errors import GradprobeError, LossEvaluationError

W = np.array([[0.3, -1.2, 0.8], [1.5, 0.1, -0.7]])


def square(params: Any) -> float:
    with np.errstate(all="ignore"):  # odd values may overflow: the check then refuses them
        return float(np.sum(np.asarray(params["W"], dtype=float) ** 2))


def smooth(params: Any) -> float:
    """A loss whose gradient, ``cos(W) + 2·W/3``, has no zero entry at ``W``."""
    weights = np.asarray(params["W"], dtype=float)
    return float(np.sum(np.sin(weights) + weights**2 / 3))


def _renders(report: Any) -> None:
    assert isinstance(str(report), str)
    assert isinstance(report.to_dict(), dict)


CHECK_OPTIONS = ["eps", "method", "thresholds", "sample", "seed", "notes", "mode", "memory"]


@PROPERTY
@given(argument=st.sampled_from([*CHECK_OPTIONS, "batched"]), value=odd_values)
def test_check_gradients_names_any_odd_option(argument: str, value: Any) -> None:
    params, grads = {"W": W.copy()}, {"W": 2 * W}
    before = snapshot(params), snapshot(grads)
    report = outcome(
        lambda: gradprobe.check_gradients(square, params, grads, **{argument: value}), argument
    )
    if report is not None:
        _renders(report)
    assert (snapshot(params), snapshot(grads)) == before


@PROPERTY
@given(value=odd_arrays() | ragged, where=st.sampled_from(["params", "grads"]))
def test_check_gradients_with_odd_arrays(value: Any, where: str) -> None:
    params = {"W": value if where == "params" else W.copy()}
    grads = {"W": value if where == "grads" else 2 * W}
    before = snapshot(value)
    # Odd params also mismatch the grads; odd values may overflow the loss.
    report = outcome(
        lambda: gradprobe.check_gradients(square, params, grads), where, "grads", "loss"
    )
    if report is not None:
        _renders(report)
    assert snapshot(value) == before


@PROPERTY
@given(function=misbehaving, role=st.sampled_from(["loss", "grads"]))
def test_a_misbehaving_loss_or_grads_is_a_loss_evaluation_error(function: Any, role: str) -> None:
    loss = function if role == "loss" else square
    grads = function if role == "grads" else {"W": 2 * W}
    with pytest.raises(GradprobeError) as caught:
        gradprobe.check_gradients(loss, {"W": W.copy()}, grads)
    assert role in str(caught.value)
    if role == "loss":
        assert isinstance(caught.value, LossEvaluationError)


GARBAGE = {
    "random": lambda analytic, rng: rng.normal(size=analytic.shape),
    "negated": lambda analytic, rng: -analytic,
    "doubled": lambda analytic, rng: 2 * analytic,
    "zeros": lambda analytic, rng: np.zeros_like(analytic),
    "transposed-sign": lambda analytic, rng: analytic * np.sign(rng.normal(size=analytic.shape)),
}


@PROPERTY
@given(
    kind=st.sampled_from(sorted(GARBAGE)),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1e-2, 1.0, 10.0]),
    method=st.sampled_from(["central", "forward", "richardson"]),
)
def test_garbage_gradients_are_never_ok(kind: str, seed: int, scale: float, method: str) -> None:
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(3, 4)) * scale
    analytic = np.cos(weights) + 2 * weights / 3
    garbage = GARBAGE[kind](analytic, rng)
    if np.allclose(garbage, analytic):  # a random sign pattern that happens to be all +
        garbage = -garbage
    report = gradprobe.check_gradients(smooth, {"W": weights}, {"W": garbage}, method=method)
    assert report.verdict != "ok" and not report.passed


@PROPERTY
@given(argument=st.sampled_from(["eps", "method"]), value=odd_values)
def test_numerical_gradient_is_finite_or_refused(argument: str, value: Any) -> None:
    params = {"W": W.copy()}
    gradient = outcome(
        lambda: gradprobe.numerical_gradient(square, params, **{argument: value}), argument, "loss"
    )
    if gradient is not None:
        assert np.all(np.isfinite(gradient["W"]))
    assert snapshot(params) == snapshot({"W": W})


@PROPERTY
@given(
    argument=st.sampled_from(["x", "eps", "method", "full_output"]),
    value=odd_values,
    method=st.sampled_from(["central", "forward", "backward", "complex", "richardson"]),
)
def test_derivative_is_finite_or_refused(argument: str, value: Any, method: str) -> None:
    options: dict[str, Any] = {"x": 0.7, "method": method, argument: value}
    result = outcome(lambda: gradprobe.derivative(np.sin, **options), argument, "f ")
    if result is not None:
        number = result.value if isinstance(result, gradprobe.Derivative) else result
        assert np.isfinite(number)


@PROPERTY
@given(x=st.floats(-1e6, 1e6), eps=st.floats(1e-20, 1e-12))
def test_a_step_too_small_to_move_x_is_refused_not_nan(x: float, eps: float) -> None:
    moves = x + eps != x and x - eps != x
    value = outcome(lambda: gradprobe.derivative(np.sin, x, eps=eps), "eps")
    assert (value is None) == (not moves)
    if value is not None:
        assert np.isfinite(value)


@PROPERTY
@given(X=odd_arrays(min_dims=1, max_dims=3) | ragged)
def test_normalizer_statistics_are_finite_or_refused(X: Any) -> None:
    before = snapshot(X)
    normalizer = outcome(lambda: gradprobe.Normalizer().fit(X), "X")
    if normalizer is not None:
        assert np.all(np.isfinite(normalizer.mean_)) and np.all(np.isfinite(normalizer.std_))
        assert np.all(np.isfinite(normalizer.transform(X)))
        data = np.asarray(X, dtype=np.float64)
        np.testing.assert_allclose(normalizer.mean_, StandardScaler().fit(data).mean_, rtol=1e-9)
    assert snapshot(X) == before


@PROPERTY
@given(
    sizes=st.lists(st.sampled_from([1, 3, 0, -2, 2.5, 4.0, True, "3", 10**400, np.inf]), max_size=4)
    | st.sampled_from(["23", None, 5, np.array([3, 4, 1])]),
)
def test_mlp_layer_sizes_are_ints_or_refused(sizes: Any) -> None:
    net = outcome(lambda: gradprobe.MLP(sizes), "layer_sizes")
    if net is not None:
        assert all(type(size) is int and size >= 1 for size in net.layer_sizes)


@PROPERTY
@given(argument=st.sampled_from(["epochs", "lr", "batch_size", "optimizer"]), value=odd_values)
def test_mlp_fit_is_bounded_and_names_odd_options(argument: str, value: Any) -> None:
    X = np.random.default_rng(0).normal(size=(6, 3))
    y = np.array([0, 1, 0, 1, 1, 0])
    net = gradprobe.MLP([3, 4, 1], seed=0)
    options: dict[str, Any] = {"epochs": 2, argument: value}
    history = outcome(lambda: net.fit(X, y, **options), argument, "training loss")
    if history is not None:
        assert history.epochs <= max(2, int(value) if argument == "epochs" else 2)


@PROPERTY
@given(activation=misbehaving | odd_values)
def test_recommend_scale_for_any_activation(activation: Any) -> None:
    scale = outcome(lambda: gradprobe.recommend_scale(activation), "activation")
    if scale is not None:
        assert np.isfinite(scale.forward) and np.isfinite(scale.backward)


@PROPERTY
@given(
    argument=st.sampled_from(["w", "depth", "width", "x", "tolerance"]),
    value=odd_values | st.sampled_from([10**7, 100_001, 10**5]),
)
def test_deep_linear_is_bounded_and_names_odd_arguments(argument: str, value: Any) -> None:
    options: dict[str, Any] = {"w": 1.5, "depth": 5, "width": 2, argument: value}
    w, depth = options.pop("w"), options.pop("depth")
    if argument == "depth" and value == 10**5:
        options["width"] = 10**4  # 10**5 layers of 10**4 x 10**4 matrices cannot fit
    result = outcome(lambda: gradprobe.deep_linear(w, depth, **options), argument, "width")
    if result is not None:
        assert result.verdict in ("exploding", "vanishing", "healthy")
        assert str(result)


@PROPERTY
@given(
    argument=st.sampled_from(["seed", "inits", "depth", "width", "activation", "batch_size"]),
    value=odd_values | misbehaving | st.sampled_from([[["he"]], {"a": "he"}, ["he", 3]]),
)
def test_depth_sweep_names_odd_arguments(argument: str, value: Any) -> None:
    options: dict[str, Any] = {"depth": 3, "width": 4, "batch_size": 8, argument: value}
    sweep = outcome(lambda: gradprobe.depth_sweep(**options), argument, "init")
    if sweep is not None:
        assert sweep.rows and sweep.to_dict()
