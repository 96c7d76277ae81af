"""Localization by group testing: finds planted wrong entries, never flags correct models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe.nn.check import check_model
from gradprobe.nn.fastcheck import MLPLoss
from gradprobe.nn.mlp import MLP


def _problem(
    sizes: list[int], output: str, m: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | list[int]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, sizes[0]))
    k = sizes[-1]
    if output == "softmax":
        return X, rng.integers(0, k, m)
    if output == "sigmoid":
        return X, rng.integers(0, 2, (m, k))
    return X, rng.normal(size=(m, k))


@pytest.fixture(scope="module")
def mid() -> tuple[MLP, MLPLoss, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A mid-size tanh network (about 2,500 values) at a random point, and its gradients."""
    net = MLP([24, 48, 24, 6], activation="tanh", l2=0.05, seed=3).eval()
    X, y = _problem(net.layer_sizes, "softmax", 40, seed=3)
    loss = MLPLoss(net, X, y)
    params = {name: value.copy() for name, value in net.params.items()}
    _, grads = net.loss_and_grads(X, y)
    return net, loss, params, grads


def _plant(grads: dict[str, np.ndarray], where: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    wrong = {name: value.copy() for name, value in grads.items()}
    for name, flat in where:
        wrong[name].reshape(-1)[flat] *= 2.0  # the analytic value doubled
    return wrong


def _large_entries(grads: dict[str, np.ndarray], name: str, count: int, seed: int) -> list[int]:
    """Entries of ``name`` whose gradient is at least the median magnitude."""
    magnitude = np.abs(grads[name]).ravel()
    candidates = np.flatnonzero(magnitude >= np.median(magnitude))
    picks = np.random.default_rng(seed).choice(candidates, count, replace=False)
    return [int(p) for p in picks]


def _flagged(report: object) -> set[str]:
    entries = report.entries  # type: ignore[attr-defined]
    suspicious = report.thresholds[1]  # type: ignore[attr-defined]
    return {entry.name for entry in entries if entry.relative_error > suspicious}


def test_localize_finds_one_planted_entry(mid: tuple) -> None:
    _, loss, params, grads = mid
    flat = _large_entries(grads, "W1", 1, seed=1)[0]
    report = check_gradients(loss, params, _plant(grads, [("W1", flat)]), mode="localize")
    index = np.unravel_index(flat, params["W1"].shape)
    name = f"W1[{index[0]}, {index[1]}]"
    assert report.mode == "localize"
    assert report.verdict == "wrong"
    assert report.wrong_parameters == ["W1"]
    assert _flagged(report) == {name}
    entry = next(e for e in report.entries if e.name == name)
    assert entry.analytic == pytest.approx(2 * entry.numerical, rel=1e-5)
    assert "single wrong entry" in (report.parameter("W1").diagnosis or "")
    # Far fewer evaluations than the 2N of a full check.
    size = sum(v.size for v in params.values())
    assert report.evaluations < 2 * size / 10
    assert "localized by group testing" in str(report)


def test_localize_finds_five_entries_in_different_tensors(mid: tuple) -> None:
    _, loss, params, grads = mid
    names = ["W1", "b1", "W2", "b2", "W3"]
    where = [(name, _large_entries(grads, name, 1, seed=i)[0]) for i, name in enumerate(names)]
    report = check_gradients(loss, params, _plant(grads, where), mode="localize", seed=4)
    expected = set()
    for name, flat in where:
        index = np.unravel_index(flat, params[name].shape)
        expected.add(f"{name}[{', '.join(str(int(i)) for i in index)}]")
    assert _flagged(report) == expected
    assert sorted(report.wrong_parameters) == sorted(names)
    assert report.parameter("b3").verdict == "ok"
    assert report.parameter("b3").checked == 0


def test_a_wrong_small_bias_is_not_drowned_by_a_large_weight(mid: tuple) -> None:
    _, loss, params, grads = mid
    wrong = {name: value.copy() for name, value in grads.items()}
    smallest = int(np.argmin(np.abs(grads["b3"]) + (np.abs(grads["b3"]) < 1e-8)))
    wrong["b3"][smallest] *= 1.01  # a 1 % error in one bias value
    report = check_gradients(loss, params, wrong, mode="localize")
    assert report.wrong_parameters == ["b3"]
    assert _flagged(report) == {f"b3[{smallest}]"}


def test_a_whole_wrong_tensor_stops_splitting_and_is_diagnosed(mid: tuple) -> None:
    _, loss, params, grads = mid
    wrong = {name: value.copy() for name, value in grads.items()}
    wrong["W2"] = wrong["W2"] * 2.0
    report = check_gradients(loss, params, wrong, mode="localize")
    assert report.wrong_parameters == ["W2"]
    row = report.parameter("W2")
    assert 0 < row.checked <= 32
    assert "2.000" in (row.diagnosis or "")
    assert any("most of W2 is wrong" in note for note in report.notes)
    assert report.evaluations < 200


def test_group_tests_are_recorded_with_two_draws(mid: tuple) -> None:
    _, loss, params, grads = mid
    report = check_gradients(loss, params, grads, mode="localize")
    assert report.verdict == "ok"
    assert report.checked == 0
    tops = [group for group in report.groups if group.depth == 0]
    assert [group.parameter for group in tops] == list(params)
    assert all(len(group.analytic) == 2 and not group.failed for group in tops)
    assert all(group.tolerance > 0 for group in tops)
    assert [row.name for row in report.parameters] == list(params)


def test_auto_mode_localizes_only_large_models(mid: tuple) -> None:
    _, loss, params, grads = mid
    assert check_gradients(loss, params, grads).mode == "full"


def _configs() -> list[tuple[str, str, float, float]]:
    activations = ["relu", "leaky_relu", "tanh", "sigmoid", "linear"]
    return list(
        itertools.product(activations, ["sigmoid", "softmax", "linear"], [0, 0.1], [0, 0.3])
    )


@pytest.mark.parametrize(("activation", "output", "l2", "dropout"), _configs())
def test_localize_never_flags_a_correct_model(
    activation: str, output: str, l2: float, dropout: float
) -> None:
    k = {"sigmoid": 1, "softmax": 3, "linear": 2}[output]
    sizes = [8, 16, 12, k]
    net = MLP(sizes, activation=activation, output=output, l2=l2, dropout=dropout, seed=5)
    X, y = _problem(sizes, output, 24, seed=5)
    report = check_model(net, X, y, mode="localize")
    assert report.mode == "localize"
    assert report.verdict == "ok", str(report)
    assert net.training  # the network's mode is restored


@pytest.mark.parametrize("how", ["zeros", "negated", "doubled"])
def test_a_pass_within_a_tolerance_larger_than_the_gradient_is_not_trusted(how: str) -> None:
    # Σ p² + 1e12: every group passes within a rounding floor larger than the gradient;
    # the parameter must then be sampled and checked value by value.
    p = np.array([[-1.575, -0.538, -0.589], [-1.303, 0.402, -0.657]])

    def loss(q: np.ndarray) -> float:
        return float(np.sum(q**2) + 1e12)

    garbage = {"zeros": 0 * p, "negated": -2 * p, "doubled": 4 * p}[how]
    report = check_gradients(loss, p, garbage, mode="localize")
    assert report.verdict != "ok"
    assert any("passing as a whole proved nothing" in note for note in report.notes)
    assert check_gradients(loss, p, 2 * p, mode="localize").verdict == "ok"


def test_localizing_tells_progress_per_parameter(mid, progress_log) -> None:  # type: ignore[no-untyped-def]
    _, loss, params, grads = mid
    where = [("W2", _large_entries(grads, "W2", 1, seed=4)[0])]
    report = check_gradients(
        loss, params, _plant(grads, where), mode="localize", progress=progress_log
    )
    assert report.mode == "localize" and report.verdict == "wrong"
    total = sum(value.size for value in params.values())
    progress_log.assert_complete(total)
    assert len(progress_log.calls) == len(params)  # once per parameter searched


def test_localizing_drives_a_tqdm_bar(mid) -> None:  # type: ignore[no-untyped-def]
    import io

    from tqdm import tqdm

    _, loss, params, grads = mid
    bar = tqdm(file=io.StringIO())
    check_gradients(loss, params, grads, mode="localize", progress=bar)
    assert bar.n == bar.total == sum(value.size for value in params.values())


def test_ctrl_c_during_the_search_returns_its_group_tests_as_a_partial_report() -> None:
    rng = np.random.default_rng(3)
    params = {name: rng.normal(size=(20, 10)) for name in ("W1", "W2", "W3")}
    grads = {name: 2 * value for name, value in params.items()}
    grads["W1"][4, 7] *= 3.0  # a bug in the parameter searched first
    calls = []

    def stop(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    def loss(p: dict) -> float:
        return float(sum(np.sum(v**2) for v in p.values()))

    report = check_gradients(loss, params, grads, mode="localize", progress=stop)
    assert report.partial and not report.passed
    assert report.verdict == "inconclusive"
    assert report.groups and len(report.entries) == 0
    # W1 failed as a whole and was not pinned down yet: its row must not say ok.
    assert report.parameter("W1").verdict == "inconclusive"
    assert report.parameter("W2").verdict == "ok"
    note = report.notes[-1]
    assert note.startswith("interrupted (Ctrl-C) after 2 of 3 parameters were searched")
    assert "groups of W1 failed" in note
