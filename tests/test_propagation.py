import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from gradprobe import deep_linear, depth_sweep, numerical_gradient, propagation
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.nn.mlp import MLP

DEPTH, WIDTH, SEEDS = 50, 256, (0, 1, 2)


# -- the seed's deep linear example ---------------------------------------------------


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
