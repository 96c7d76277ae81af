import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from gradprobe import deep_linear, depth_sweep, numerical_gradient, propagation
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.nn.mlp import MLP
from gradprobe.signals.judge import judge

DEPTH, WIDTH, SEEDS = 50, 256, (0, 1, 2)


# -- the course notes' deep linear example ---------------------------------------------------


@pytest.mark.parametrize("w", [1.5, 0.5])
def test_deep_linear_matches_powers_of_w(w):
    result = deep_linear(w, DEPTH)
    layers = np.arange(DEPTH + 1)
    np.testing.assert_allclose(result.activation, w**layers, rtol=1e-9)
    np.testing.assert_allclose(result.gradient, w ** (DEPTH - layers), rtol=1e-9)
    assert result.output == pytest.approx(w**DEPTH, rel=1e-9)


def test_deep_linear_seed_figures_and_verdicts():
    exploding, vanishing = deep_linear(1.5, 50), deep_linear(0.5, 50)
    assert exploding.output == pytest.approx(6.376e8, rel=1e-3)
    assert exploding.gradient[0] == pytest.approx(6.376e8, rel=1e-3)
    assert vanishing.output == pytest.approx(8.882e-16, rel=1e-3)
    assert (exploding.verdict, vanishing.verdict) == ("exploding", "vanishing")
    assert deep_linear(1.0, 50).verdict == "healthy"


def test_deep_linear_matrix_route_with_width_and_input():
    x = np.array([1.0, -2.0, 0.5])
    w, depth = -1.2, 7
    result = deep_linear(w, depth, width=3, x=x)
    for layer in range(depth + 1):
        a = np.linalg.matrix_power(w * np.eye(3), layer) @ x
        assert result.activation[layer] == pytest.approx(np.sqrt(np.mean(a**2)), rel=1e-12)
    # ∂ŷ/∂W{l} for a probe of ones is the outer product of w^(L−l)·1 and a[l−1].
    expected = [
        np.sqrt(np.mean(np.outer(np.full(3, w ** (depth - layer)), w ** (layer - 1) * x) ** 2))
        for layer in range(1, depth + 1)
    ]
    np.testing.assert_allclose(result.weight_gradient, expected, rtol=1e-12)


def test_deep_linear_overflow_is_a_finding_not_a_crash():
    result = deep_linear(1e10, 50)
    largest = np.log10(np.finfo(np.float64).max)
    first_infinite = next(layer for layer in range(1, 51) if 10 * layer > largest)
    assert result.summary == f"exploding: overflow at layer {first_infinite}"
    assert result.trouble_layer == first_infinite == 31
    assert np.isfinite(result.activation[30]) and np.isinf(result.activation[31])
    json.dumps(result.to_dict(), allow_nan=True)
    assert "overflow at layer 31" in str(result)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"w": 1.5, "depth": 0}, InvalidArgumentError, "depth: got 0, expected an integer >= 1"),
        ({"w": 1.5, "depth": 3, "width": 0}, InvalidArgumentError, "width: got 0"),
        ({"w": 1.5, "depth": 2.0}, InvalidTypeError, "depth: got float"),
        ({"w": float("nan"), "depth": 3}, InvalidArgumentError, "w: got nan"),
        ({"w": 1.5, "depth": 3, "width": 2, "x": [1.0]}, InvalidArgumentError, "x: got shape"),
        ({"w": 1.5, "depth": 3, "tolerance": 0.5}, InvalidArgumentError, "tolerance"),
    ],
)
def test_deep_linear_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        deep_linear(**kwargs)


# -- depth 50, width 256, ReLU, several seeds ------------------------------------------


@pytest.fixture(scope="module")
def sweeps():
    # One BLAS thread: on a shared machine OpenBLAS threads oversubscribe the cores and
    # run these small products many times slower.
    with threadpool_limits(1):
        return [depth_sweep(DEPTH, WIDTH, "relu", seed=seed, batch_size=64) for seed in SEEDS]


def _median_moment_ratio(sweeps, init):
    """Median over seeds of E[A[l]²] / E[X²], per hidden layer 1..L−1."""
    ratios = [
        sweep.reports[init].column("second_moment")[:-1] / sweep.reports[init].input_second_moment
        for sweep in sweeps
    ]
    return np.median(ratios, axis=0)


def _majority(sweeps, init):
    verdicts = [sweep.reports[init].verdict for sweep in sweeps]
    return max(set(verdicts), key=verdicts.count)


def test_he_keeps_the_second_moment_within_a_factor_ten_and_is_healthy(sweeps):
    ratio = _median_moment_ratio(sweeps, "he")
    assert np.all((ratio > 0.1) & (ratio < 10)), ratio
    assert _majority(sweeps, "he") == "healthy"


def test_xavier_with_relu_halves_the_second_moment_per_layer_and_vanishes(sweeps):
    ratio = _median_moment_ratio(sweeps, "xavier")
    assert ratio[-1] < 1e-6
    # Mean-field: σ_w² = 1 for square layers and E[relu(z)²] = ½, so the ratio is 0.5^l.
    layers = np.arange(1, DEPTH)
    assert np.all(np.abs(np.log10(ratio) - layers * np.log10(0.5)) < 1.0)
    assert _majority(sweeps, "xavier") == "vanishing"


def test_large_random_explodes_and_small_random_vanishes(sweeps):
    assert _majority(sweeps, "large") == "exploding"
    assert _majority(sweeps, "small") == "vanishing"
    for sweep in sweeps:
        assert sweep.reports["large"].trouble_layer == 1


def test_zeros_are_flagged_dead_and_symmetric(sweeps):
    for sweep in sweeps:
        report = sweep.reports["zeros"]
        assert report.symmetric_layer == 1
        assert all(layer.dead == 1.0 for layer in report.layers[:-1])
        assert report.verdict == "vanishing"
        assert any(finding.startswith("symmetric") for finding in report.findings)
        assert "symmetry" in report.advice


def test_sweep_rows_and_data(sweeps):
    sweep = sweeps[0]
    rows = sweep.rows
    assert [row["init"] for row in rows] == ["zeros", "small", "large", "xavier", "he"]
    he = next(row for row in rows if row["init"] == "he")
    report = sweep.reports["he"]
    assert he["first_std"] == pytest.approx(report.layers[0].std)
    assert he["last_std"] == pytest.approx(report.layers[-1].std)
    norms = report.column("gradient_norm")
    assert he["gradient_ratio"] == pytest.approx(norms[0] / norms[-1])
    assert sweep.data["he"]["activation_std"] == pytest.approx(report.column("std").tolist())
    assert len(sweep.data["he"]["layer"]) == DEPTH
    json.dumps(sweep.to_dict(), allow_nan=True)
    assert "xavier" in str(sweep) and "healthy" in str(sweep)


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


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"depth": 0, "width": 8}, InvalidArgumentError, "depth: got 0"),
        ({"depth": 3, "width": 0}, InvalidArgumentError, "width: got 0"),
        (
            {"depth": 3, "width": 8, "activation": "swish"},
            InvalidArgumentError,
            "activation: got 'swish'",
        ),
        ({"depth": 3, "width": 8, "inits": ["bogus"]}, InvalidArgumentError, "inits: got 'bogus'"),
        ({"depth": 3, "width": 8, "inits": []}, InvalidArgumentError, "inits: got none"),
    ],
)
def test_depth_sweep_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        depth_sweep(**kwargs)


def test_propagation_bad_input(rng):
    with pytest.raises(InvalidTypeError, match="net: got dict"):
        propagation({}, np.ones((2, 2)))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="X: got a batch of all zeros"):
        propagation(MLP([3, 2, 1]), np.zeros((4, 3)))


def test_sweep_accepts_named_and_callable_inits():
    sweep = depth_sweep(
        4,
        8,
        "tanh",
        inits={
            "mine": lambda shape, rng: rng.standard_normal(shape) * 0.3,
            "auto": "auto",
            "lecun": "lecun",
        },
    )
    assert list(sweep.reports) == ["mine", "auto", "lecun"]


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


def test_trouble_starts_at_the_first_layer_out_of_the_band_not_the_most_extreme():
    # Up by 10³ at layer 1, then squashed to 0: exploding from layer 1, not vanishing at 3.
    forward = np.array([1e3, 1e6, 0.0])
    judgement = judge(forward, np.ones(3), (None, "forward"), 100.0)
    assert (judgement.verdict, judgement.layer, judgement.factor) == ("exploding", 1, 1e6)
    # Gradients start at the output: ×10⁴ at layer 3 comes before ×10⁻³⁰ at layer 1.
    backward = np.array([1e-30, 1e-5, 1e4, 1.0])
    judgement = judge(np.ones(4), backward, (None, "forward"), 100.0)
    assert (judgement.verdict, judgement.layer, judgement.direction) == (
        "exploding",
        3,
        "backward",
    )


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


def test_tanh_sweep_trouble_layers():
    with threadpool_limits(1):
        sweep = depth_sweep(DEPTH, WIDTH, "tanh", seed=0, batch_size=64)
    starts = {row["init"]: (row["verdict"], row["trouble_layer"]) for row in sweep.rows}
    assert starts["large"] == ("exploding", 1)  # saturated from the first layer on
    assert starts["small"] == ("vanishing", 2)
    assert starts["zeros"] == ("vanishing", 1)
    assert starts["xavier"] == ("healthy", None)
    assert "Shrink" in sweep.reports["large"].advice


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
