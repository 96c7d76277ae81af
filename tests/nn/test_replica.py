"""The shared MLP route: the copy built from weight arrays, its values mapped, its trust earned."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradprobe._params import ParameterLayout
from gradprobe.nn._replica import (
    ReplicaRoute,
    agreement,
    build_mlp,
    moved_points,
    route_note,
    spot_points,
)
from gradprobe.nn.fastcheck import MLPEvaluator
from gradprobe.numdiff.batched import ThetaEvaluator
from gradprobe.numdiff.perturbation import coordinate_steps, evaluate_differences

RNG = np.random.default_rng(7)
KERNELS = [RNG.normal(size=(4, 6)) / 2, RNG.normal(size=(6, 3)) / 2]  # (in, out), as in Flax
BIASES = [RNG.normal(size=6) * 0.1, RNG.normal(size=3) * 0.1]
X = RNG.normal(size=(9, 4))
Y = RNG.integers(0, 3, 9)


def framework_loss(params: dict[str, Any]) -> float:
    """The same network written another way: kernels (in, out), tanh, cross-entropy."""
    z = np.tanh(X @ params["k0"] + params["b0"]) @ params["k1"] + params["b1"]
    top = z.max(axis=1, keepdims=True)
    log_softmax = z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    return float(-log_softmax[np.arange(len(Y)), Y].mean())


class Route(ReplicaRoute, ThetaEvaluator):
    """A framework's evaluator (a plain one over ``framework_loss``) routed to the copy."""


def route() -> Route:
    params = {"b0": BIASES[0], "k0": KERNELS[0], "b1": BIASES[1], "k1": KERNELS[1]}
    layout = ParameterLayout.from_params(params)
    net = build_mlp("tanh", "softmax", [(k.T, b) for k, b in zip(KERNELS, BIASES, strict=True)])
    full = ParameterLayout.from_params(net.params)
    replica = MLPEvaluator(net, X, Y, full.flatten(net.params))
    to_full = np.empty(layout.size, dtype=np.intp)
    for k, name in enumerate(layout.names):
        span = slice(layout.offsets[k], layout.offsets[k + 1])
        layer = int(name[1])
        if name.startswith("k"):
            out, inputs = net.params[f"W{layer + 1}"].shape
            local = np.arange(out * inputs).reshape(out, inputs).T.ravel()
            to_full[span] = full.offsets[2 * layer] + local
        else:
            to_full[span] = full.offsets[2 * layer + 1] + np.arange(layout.shapes[k][0])
    evaluator = Route(framework_loss, layout)
    evaluator.attach(replica, layout.flatten(params), to_full)
    return evaluator


def test_build_mlp_copies_the_layers_into_an_evaluation_mode_network() -> None:
    weight = KERNELS[0].T.copy()
    net = build_mlp("relu", "softmax", [(weight, BIASES[0]), (KERNELS[1].T, BIASES[1])])
    assert net.layer_sizes == [4, 6, 3] and not net.training and net.activation == "relu"
    weight[0, 0] = 99.0
    assert net.params["W1"][0, 0] == KERNELS[0][0, 0]
    assert net.params["b2"].dtype == np.float64


def test_the_routed_values_are_the_frameworks_at_mapped_coordinates() -> None:
    evaluator = route()
    theta = evaluator.theta
    indices = np.arange(theta.size)
    values = theta + 1e-3
    routed = evaluator.coordinates(theta.copy(), indices, values)
    direct = []
    for index, value in zip(indices, values, strict=True):
        moved = theta.copy()
        moved[index] = value
        direct.append(framework_loss(evaluator.layout.unflatten(moved)))
    np.testing.assert_allclose(routed, direct, rtol=1e-12)
    assert evaluator.evaluations == theta.size


def test_points_moved_in_several_coordinates_and_rows_go_to_the_copy() -> None:
    evaluator = route()
    moved = evaluator.theta + RNG.normal(size=evaluator.theta.size) * 1e-2
    expected = framework_loss(evaluator.layout.unflatten(moved))
    assert evaluator(moved) == pytest.approx(expected, rel=1e-12)
    rows = evaluator.rows(np.stack([moved, evaluator.theta]))
    np.testing.assert_allclose(
        rows, [expected, framework_loss(evaluator.layout.unflatten(evaluator.theta))], rtol=1e-12
    )


def test_the_points_told_ahead_are_computed_at_once_and_serve_the_chunks() -> None:
    evaluator = route()
    theta = evaluator.theta
    every = np.arange(theta.size)
    steps = coordinate_steps("central", theta, every, None)
    upper, lower = theta + steps, theta - steps
    evaluator.ahead(theta.copy(), every, [upper, lower])
    assert len(evaluator._ahead) == 2  # the whole table was computed
    asked = np.concatenate([every[5:], every[5:], [3]])
    wanted = np.concatenate([upper[5:], lower[5:], [theta[3] + 0.5]])  # the last is not in it
    served = evaluator.coordinates(theta.copy(), asked, wanted)
    fresh = route()
    np.testing.assert_array_equal(served, fresh.replica_values(asked, wanted))


def test_a_sample_told_ahead_is_served_too_and_another_theta_clears_the_table() -> None:
    evaluator = route()
    theta = evaluator.theta
    sample = np.array([2, 7, 11])
    columns = [theta[sample] + 1e-3, theta[sample] - 1e-3]
    evaluator.ahead(theta.copy(), sample, columns)
    served = evaluator.coordinates(theta.copy(), np.tile(sample, 2), np.concatenate(columns))
    fresh = route()
    expected = fresh.replica_values(np.tile(sample, 2), np.concatenate(columns))
    np.testing.assert_array_equal(served, expected)
    evaluator.ahead(theta + 1.0, sample, columns)
    assert evaluator._ahead == []


def test_evaluate_differences_tells_the_route_ahead() -> None:
    evaluator = route()
    theta = evaluator.theta.copy()
    indices = np.arange(theta.size)
    differences = evaluate_differences(evaluator, evaluator.layout, theta, indices, None, "central")
    assert len(evaluator._ahead) == 2
    fresh = route()
    above = fresh.replica_values(indices, differences.upper[:, 0])
    below = fresh.replica_values(indices, differences.lower[:, 0])
    np.testing.assert_array_equal(differences.above[:, 0], above)
    np.testing.assert_array_equal(differences.below[:, 0], below)


def test_agreement_counts_the_points_and_refuses_a_copy_off_by_a_little() -> None:
    evaluator = route()
    layout = evaluator.layout
    points = spot_points(layout, evaluator.theta)
    assert len(points) == 1 + 2 * len(layout.names) and points[0] == (None, 0.0)
    thetas = moved_points(evaluator.theta, points)
    assert np.count_nonzero(thetas != evaluator.theta) == 2 * len(layout.names)
    framework = np.array([framework_loss(layout.unflatten(theta)) for theta in thetas])
    assert agreement(evaluator, points, framework) == 2 * len(layout.names)
    assert agreement(evaluator, points, framework * (1 + 1e-9)) is None
    framework[-1] *= 1 + 1e-9  # one perturbed point off is enough
    assert agreement(evaluator, points, framework) is None


def test_the_note_names_the_network_the_framework_and_the_gradient() -> None:
    net = build_mlp("tanh", "linear", [(KERNELS[0].T, BIASES[0])])
    note = route_note(net, "JAX", "function", 12, "JAX's own")
    assert "plain tanh MLP [4, 6] under mean squared error" in note
    assert "agreed with JAX's to 1e-12 at θ and at 12 perturbed points" in note
