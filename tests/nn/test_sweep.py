"""Depth sweeps of fresh MLPs: He keeps signals, Xavier with ReLU halves them, bad init fails."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from gradprobe import depth_sweep, propagation
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.nn.mlp import MLP
from gradprobe.nn.sweep import DEFAULT_INITS

DEPTH, WIDTH, SEEDS = 50, 256, (0, 1, 2)

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


def test_tanh_sweep_trouble_layers():
    with threadpool_limits(1):
        sweep = depth_sweep(DEPTH, WIDTH, "tanh", seed=0, batch_size=64)
    starts = {row["init"]: (row["verdict"], row["trouble_layer"]) for row in sweep.rows}
    assert starts["large"] == ("exploding", 1)  # saturated from the first layer on
    assert starts["small"] == ("vanishing", 2)
    assert starts["zeros"] == ("vanishing", 1)
    assert starts["xavier"] == ("healthy", None)
    assert "Shrink" in sweep.reports["large"].advice


# -- how the sweep is built ------------------------------------------------------------


def test_the_default_inits_are_the_course_exercise_plus_xavier_and_he() -> None:
    assert list(DEFAULT_INITS) == ["zeros", "small", "large", "xavier", "he"]
    sweep = depth_sweep(3, 8, "tanh", seed=1, batch_size=16)
    assert list(sweep.reports) == list(DEFAULT_INITS)
    assert (sweep.depth, sweep.width, sweep.activation) == (3, 8, "tanh")
    assert all(report.depth == 3 for report in sweep.reports.values())


def test_every_network_sees_the_same_probe_batch_and_seed() -> None:
    sweep = depth_sweep(4, 8, inits={"first": "he", "second": "he"}, seed=3, batch_size=16)
    first, second = sweep.reports["first"], sweep.reports["second"]
    assert first.rows == second.rows
    moments = {report.input_second_moment for report in sweep.reports.values()}
    assert len(moments) == 1
    again = depth_sweep(4, 8, inits=["he"], seed=3, batch_size=16)
    assert again.reports["he"].rows == first.rows
    other = depth_sweep(4, 8, inits=["he"], seed=4, batch_size=16)
    assert other.reports["he"].rows != first.rows


def test_each_report_is_propagation_of_the_network_it_describes() -> None:
    # Rebuild the sweep's He network and probe from the documented seeding and compare.
    sweep = depth_sweep(3, 8, "relu", inits=["he"], seed=5, batch_size=16, tolerance=50.0)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((16, 8))
    probe_seed, weight_seed = (int(v) for v in rng.integers(0, 2**63, size=2))
    net = MLP([8] * 4, activation="relu", output="linear", init="he", seed=weight_seed)
    expected = propagation(net, X, seed=probe_seed, tolerance=50.0)
    assert sweep.reports["he"].rows == expected.rows
    assert sweep.reports["he"].tolerance == 50.0


def test_a_single_name_is_one_init_and_other_types_are_refused() -> None:
    assert list(depth_sweep(2, 4, inits="xavier").reports) == ["xavier"]
    with pytest.raises(InvalidTypeError, match="inits: got int"):
        depth_sweep(2, 4, inits=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="batch_size: got 0"):
        depth_sweep(2, 4, batch_size=0)


def test_a_bad_initializer_in_inits_is_named_by_its_key() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^inits\['a'\]: the initializer returned"):
        depth_sweep(3, 4, "relu", batch_size=8, inits={"a": lambda shape, rng: np.ones((2, 2))})
