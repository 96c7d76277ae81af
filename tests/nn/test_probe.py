import json

import numpy as np
import pytest

from gradprobe import numerical_gradient, propagation
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.nn.mlp import MLP

# -- propagation on a given network -----------------------------------------------------


def test_probe_gradients_match_numerical_gradient_of_the_probe_loss(rng):
    net = MLP([3, 5, 4, 2], activation="tanh", output="softmax", seed=1)
    X = rng.standard_normal((6, 3))
    report = propagation(net, X, seed=7)
    probe = np.random.default_rng(7).standard_normal((6, 2))

    def probe_loss(params):
        _, cache = net.forward(X, params)
        return float(np.sum(probe * cache.Z[3]) / 6)

    grads = numerical_gradient(probe_loss, net.params)
    expected = [np.linalg.norm(grads[f"W{layer}"]) for layer in (1, 2, 3)]
    np.testing.assert_allclose(report.column("gradient_norm"), expected, rtol=1e-7)
    ratios = report.column("gradient_ratio")
    assert ratios[0] == pytest.approx(expected[0] / expected[1], rel=1e-7)
    assert np.isnan(ratios[-1])


def test_propagation_changes_neither_the_network_nor_the_input(rng):
    net = MLP([4, 8, 8, 1], dropout=0.5, seed=0)
    before = {name: value.copy() for name, value in net.params.items()}
    X = rng.standard_normal((32, 4))
    X_copy = X.copy()
    first = propagation(net, X)
    assert net.training
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, before[name])
    np.testing.assert_array_equal(X, X_copy)
    # Evaluation mode: no dropout noise, so a second pass is identical.
    assert propagation(net, X).rows == first.rows


def test_overflow_in_a_real_network_is_reported(rng):
    def large(shape, generator):
        return generator.standard_normal(shape) * 100

    net = MLP([32] * 151, init=large, output="linear", seed=0)
    X = rng.standard_normal((16, 32))
    with np.errstate(all="ignore"):
        _, cache = net.forward(X)
    first_bad = next(layer for layer in range(1, 151) if not np.all(np.isfinite(cache.A[layer])))
    report = propagation(net, X)
    assert report.verdict == "exploding"
    assert report.summary == f"exploding: overflow at layer {first_bad}"
    assert report.overflow_layer == first_bad
    assert "Shrink" in report.advice


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_saturation_is_measured(rng, activation):
    X = rng.standard_normal((64, 16))
    net = MLP([16] * 6, activation=activation, init="normal", output="linear", seed=0)
    net.params.update({f"W{k}": net.params[f"W{k}"] * 1000 for k in range(1, 6)})
    report = propagation(net, X)
    for layer in report.layers[:-1]:
        A = net.forward(X)[1].A[layer.layer]
        expected = np.abs(A) > 0.99 if activation == "tanh" else (A < 0.01) | (A > 0.99)
        assert layer.saturated == pytest.approx(expected.mean())
        assert layer.saturated > 0.5
    relu = propagation(MLP([16] * 6, init="he", output="linear"), X)
    assert all(layer.saturated == 0 for layer in relu.layers)


def test_dead_units_are_counted(rng):
    X = rng.standard_normal((50, 6))
    net = MLP([6, 4, 3], init="he", output="linear", seed=0)
    net.params["b1"][:2] = -100.0  # units 0 and 1 of layer 1 never fire
    report = propagation(net, X)
    assert report.layers[0].dead == pytest.approx(0.5)


def test_report_rendering(rng):
    report = propagation(MLP([8] * 5, output="linear"), rng.standard_normal((20, 8)))
    text = str(report)
    assert report.verdict in text.splitlines()[0]
    assert len(report.rows) == 4 and set(report.rows[0]) >= {"mean", "std", "dead", "gradient_norm"}
    json.dumps(report.to_dict(), allow_nan=True)
    with pytest.raises(InvalidArgumentError, match="name: got 'nope'"):
        report.column("nope")


def test_propagation_bad_input(rng):
    with pytest.raises(InvalidTypeError, match="net: got dict"):
        propagation({}, np.ones((2, 2)))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="X: got a batch of all zeros"):
        propagation(MLP([3, 2, 1]), np.zeros((4, 3)))


# -- which way the weights are off, and where trouble starts -----------------------------


def _times_ten(shape, generator):
    return generator.normal(size=shape) * 10


def test_exploding_relu_with_a_saturated_sigmoid_output_is_exploding():
    X = np.random.default_rng(0).standard_normal((64, 8))
    net = MLP([8] + [32] * 60 + [1], init=_times_ten, seed=0)
    # The premise: the sigmoid output is squashed to exactly 0, so E[A[L]²] = 0.
    assert np.all(net.forward(X)[1].A[61] == 0)
    report = propagation(net, X)
    assert (report.verdict, report.trouble_layer, report.direction) == ("exploding", 1, "forward")
    assert report.advice.startswith("Shrink the initial weights: layers 1–61")
    assert "Enlarge" not in report.advice


def test_tanh_ten_times_too_large_is_told_to_shrink_from_layer_one():
    X = np.random.default_rng(0).standard_normal((64, 8))
    net = MLP([8] + [32] * 60 + [1], activation="tanh", init=_times_ten, seed=0)
    report = propagation(net, X)
    # |tanh| <= 1 hides the weights; the pre-activations show them from layer 1 on.
    assert all(layer.second_moment <= 1 for layer in report.layers[:-1])
    assert (report.verdict, report.trouble_layer, report.direction) == ("exploding", 1, "forward")
    assert report.summary.startswith("exploding: pre-activations leave the ×100 band at layer 1")
    assert report.advice.startswith("Shrink the initial weights")
    assert "above the recommended 2.54" in report.advice
    assert any(finding.startswith("saturation: 60 hidden layers") for finding in report.findings)


def test_saturation_that_vanishes_gradients_still_says_shrink():
    # With a wide band the forward pass stays inside it and the gradients decide: they
    # vanish through the saturated units, but the cure is smaller weights, not larger.
    X = np.random.default_rng(0).standard_normal((64, 8))
    net = MLP([8] + [32] * 60 + [1], activation="tanh", init=_times_ten, seed=0)
    report = propagation(net, X, tolerance=1e5)
    assert (report.verdict, report.direction) == ("vanishing", "backward")
    assert report.advice.startswith("Shrink the initial weights")
    assert "too large, not too small: they saturate tanh" in report.advice
    assert "Enlarge" not in report.advice


def test_the_output_pre_activation_is_judged_not_the_output_probability(rng):
    X = rng.standard_normal((64, 16))
    net = MLP([16] * 6 + [1], init="he", seed=0)  # sigmoid output
    net.params["W6"] = net.params["W6"] * 1e4
    report = propagation(net, X)
    _, cache = net.forward(X)
    for layer in report.layers:
        assert layer.preactivation_moment == pytest.approx(np.mean(cache.Z[layer.layer] ** 2))
    # The hidden layers are healthy; only Z[6] leaves the band (A[6] stays within [0, 1]).
    assert (report.verdict, report.trouble_layer, report.direction) == ("exploding", 6, "forward")
    assert report.advice.startswith("Shrink the initial weights: layer 6 has σ_w²")


def test_mixed_weight_scales_are_told_which_layers_to_shrink_and_enlarge(rng):
    net = MLP([16] * 11, init="he", output="linear", seed=0)
    for layer in range(1, 11):
        net.params[f"W{layer}"] = net.params[f"W{layer}"] * (30.0 if layer <= 5 else 1 / 30)
    report = propagation(net, rng.standard_normal((32, 16)))
    assert report.verdict == "exploding"
    assert report.advice.startswith(
        "Rescale the initial weights: σ_w² per fan-in is above 2 at layers 1–5 and below it "
        "at layers 6–10"
    )


def test_overflow_hidden_by_the_output_sigmoid_is_reported(rng):
    X = rng.standard_normal((16, 8))
    net = MLP([8, 8, 8, 1], init="he", seed=0)  # sigmoid output
    net.params["W3"] = np.full((1, 8), 1e308)
    with np.errstate(over="ignore"):
        _, cache = net.forward(X)
    # Z[3] overflows to infinity, and sigmoid(inf) = 1 hides it in A[3].
    assert np.any(np.isinf(cache.Z[3])) and np.all(np.isfinite(cache.A[3]))
    report = propagation(net, X)
    assert report.overflow_layer == 3
    assert report.summary == "exploding: overflow at layer 3"


def test_a_torch_model_is_sent_to_the_torch_probe() -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    with pytest.raises(InvalidTypeError, match=r"gradprobe\.torch\.propagation\(model, x\)"):
        propagation(model, np.zeros((5, 3)))  # type: ignore[arg-type]
