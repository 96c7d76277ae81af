"""The gradient checker: passes good gradients, pins planted bugs, refuses bad input."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gradprobe import (
    GradCheckReport,
    GradientCheckError,
    GradprobeError,
    assert_gradients,
    check_gradients,
)
from gradprobe.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    LossEvaluationError,
    NondeterministicLossError,
    NonFiniteError,
    ShapeMismatchError,
)

Params = dict[str, np.ndarray]


class TwoLayerNet:
    """A 2-layer tanh network with a sigmoid output, backprop written by hand in the test."""

    def __init__(self, rng: np.random.Generator, m: int = 12, n: int = 3, hidden: int = 4) -> None:
        self.X = rng.normal(size=(m, n))
        self.y = rng.integers(0, 2, size=m).astype(float)
        self.lambd = 0.3
        self.params = {
            "W1": rng.normal(size=(hidden, n)),
            "b1": rng.normal(size=hidden),
            "W2": rng.normal(size=(1, hidden)),
            "b2": rng.normal(size=1),
        }

    def _forward(self, p: Params) -> tuple[np.ndarray, np.ndarray]:
        A1 = np.tanh(self.X @ p["W1"].T + p["b1"])
        z = (A1 @ p["W2"].T + p["b2"])[:, 0]
        return A1, z

    def loss(self, p: Params) -> float:
        _, z = self._forward(p)
        m = len(self.y)
        cross_entropy = np.mean(np.logaddexp(0, z) - self.y * z)
        l2 = self.lambd / (2 * m) * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        return float(cross_entropy + l2)

    def grads(self, p: Params, bug: str | None = None) -> Params:
        A1, z = self._forward(p)
        m = len(self.y)
        dz = ((1 / (1 + np.exp(-z)) - self.y) / m)[:, None]
        dW2 = dz.T @ A1 + self.lambd / m * p["W2"]
        db2 = dz.sum(axis=0)
        dZ1 = (dz @ p["W2"]) * (1 - A1**2)
        dW1 = dZ1.T @ self.X + (0 if bug == "missing-l2" else self.lambd / m) * p["W1"]
        db1 = dZ1.sum(axis=0)
        if bug == "doubled":
            dW2 = 2 * dW2
        if bug == "sign":
            db1 = -db1
        if bug == "one-entry":
            dW1 = dW1.copy()
            dW1[2, 1] += 0.05
        if bug == "bias-axis":
            db1 = dZ1.sum(axis=1)
        if bug == "bias-keepdims":
            db1 = dZ1.sum(axis=0, keepdims=True)
        return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


@pytest.fixture
def net(rng: np.random.Generator) -> TwoLayerNet:
    return TwoLayerNet(rng)


def softmax_cross_entropy(
    rng: np.random.Generator,
) -> tuple[Callable[[Params], float], Params, Params]:
    X = rng.normal(size=(10, 5))
    labels = rng.integers(0, 3, size=10)
    W = rng.normal(size=(3, 5))
    b = rng.normal(size=3)

    def loss(p: Params) -> float:
        logits = X @ p["W"].T + p["b"]
        log_norm = np.log(np.sum(np.exp(logits - logits.max(1, keepdims=True)), axis=1))
        log_probs = logits - logits.max(1, keepdims=True) - log_norm[:, None]
        return float(-np.mean(log_probs[np.arange(10), labels]))

    logits = X @ W.T + b
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    probs[np.arange(10), labels] -= 1
    probs /= 10
    return loss, {"W": W, "b": b}, {"W": probs.T @ X, "b": probs.sum(0)}


def quadratic_form(
    rng: np.random.Generator,
) -> tuple[Callable[[Params], float], Params, Params]:
    A = rng.normal(size=(6, 6))
    c = rng.normal(size=6)
    x = rng.normal(size=6)

    def loss(p: Params) -> float:
        return float(0.5 * p["x"] @ A @ p["x"] + c @ p["x"])

    return loss, {"x": x}, {"x": 0.5 * (A + A.T) @ x + c}


class TestCorrectGradientsPass:
    @pytest.mark.parametrize("problem", [quadratic_form, softmax_cross_entropy])
    def test_closed_forms(self, problem: Any, rng: np.random.Generator) -> None:
        loss, params, grads = problem(rng)
        report = check_gradients(loss, params, grads)
        assert report.verdict == "ok" and report.passed
        assert report.difference < 1e-7
        assert report.wrong_parameters == []

    def test_two_layer_network_with_l2(self, net: TwoLayerNet) -> None:
        report = check_gradients(net.loss, net.params, net.grads)
        assert report.verdict == "ok"
        assert report.difference < 1e-7
        assert [row.name for row in report.parameters] == ["W1", "b1", "W2", "b2"]
        assert all(row.difference < 1e-7 for row in report.parameters)
        assert report.checked == report.total == 12 + 4 + 4 + 1
        # 2N differences plus the repeated evaluations at θ.
        assert report.evaluations >= 2 * report.total

    def test_course_step_1e_7_reproduces_the_seed_band(self, net: TwoLayerNet) -> None:
        report = check_gradients(net.loss, net.params, net.grads, eps=1e-7)
        assert report.eps == 1e-7
        assert report.steps == (1e-7, 1e-7)
        assert report.verdict == "ok"

    def test_keys_with_or_without_d_prefix(self, net: TwoLayerNet) -> None:
        plain = {key[1:]: value for key, value in net.grads(net.params).items()}
        with_prefix = check_gradients(net.loss, net.params, net.grads(net.params))
        without_prefix = check_gradients(net.loss, net.params, plain)
        assert with_prefix.difference == without_prefix.difference

    def test_list_and_array_params(self, rng: np.random.Generator) -> None:
        A = rng.normal(size=(4, 4))
        x = rng.normal(size=4)
        report = check_gradients(lambda v: float(v @ A @ v), x, (A + A.T) @ x)
        assert report.passed
        assert report.parameters[0].name == "theta"
        listed = check_gradients(lambda p: float(p[0] @ A @ p[1]), [x, x], [A @ x, A.T @ x])
        assert listed.passed
        assert [row.name for row in listed.parameters] == ["param0", "param1"]

    @pytest.mark.parametrize("method", ["central", "complex", "richardson"])
    def test_other_methods(self, method: str, rng: np.random.Generator) -> None:
        X = rng.normal(size=(6, 3))
        w = rng.normal(size=3)

        def loss(p: Params) -> Any:  # complex-safe: no float(), abs or max
            return np.sum(np.log(1 + np.exp(X @ p["w"])))

        grads = {"w": X.T @ (1 / (1 + np.exp(-(X @ w))))}
        report = check_gradients(loss, {"w": w}, grads, method=method)
        assert report.passed and report.method == method
        assert report.difference < 1e-9


class TestPlantedBugs:
    """Each planted bug fails, is pinned to its parameter and gets the right diagnosis."""

    def test_doubled_gradient(self, net: TwoLayerNet) -> None:
        report = check_gradients(net.loss, net.params, lambda p: net.grads(p, "doubled"))
        assert report.verdict == "wrong"
        assert report.wrong_parameters == ["W2"]
        diagnosis = report.parameter("W2").diagnosis
        assert diagnosis is not None and "2.000 × numerical" in diagnosis

    def test_sign_flip(self, net: TwoLayerNet) -> None:
        report = check_gradients(net.loss, net.params, lambda p: net.grads(p, "sign"))
        assert report.wrong_parameters == ["b1"]
        assert "sign flipped" in str(report.parameter("b1").diagnosis)

    def test_missing_regularization_term(self, net: TwoLayerNet) -> None:
        report = check_gradients(net.loss, net.params, lambda p: net.grads(p, "missing-l2"))
        assert report.wrong_parameters == ["W1"]
        diagnosis = str(report.parameter("W1").diagnosis)
        assert "regularization" in diagnosis
        # The fitted scale is λ/m itself.
        assert f"{net.lambd / len(net.y):.3g}" in diagnosis

    def test_bias_summed_over_the_wrong_axis(self, net: TwoLayerNet) -> None:
        params_before = copy.deepcopy(net.params)
        with pytest.raises(ShapeMismatchError, match=r"'db1' has shape \(12,\), expected \(4,\)"):
            check_gradients(net.loss, net.params, lambda p: net.grads(p, "bias-axis"))
        with pytest.raises(ShapeMismatchError, match="examples axis"):
            check_gradients(net.loss, net.params, lambda p: net.grads(p, "bias-axis"))
        with pytest.raises(ShapeMismatchError, match=r"\(1, 4\).*keepdims"):
            check_gradients(net.loss, net.params, lambda p: net.grads(p, "bias-keepdims"))
        for key, value in params_before.items():
            assert np.array_equal(net.params[key], value)

    def test_single_wrong_entry(self, net: TwoLayerNet) -> None:
        report = check_gradients(net.loss, net.params, lambda p: net.grads(p, "one-entry"))
        assert report.wrong_parameters == ["W1"]
        assert report.worst(1)[0].name == "W1[2, 1]"
        assert report.worst(1)[0].index == (2, 1)
        diagnosis = str(report.parameter("W1").diagnosis)
        assert "single wrong entry" in diagnosis and "W1[2, 1]" in diagnosis
        assert report.parameter("W1").largest_error_at == "W1[2, 1]"

    def test_small_error_is_suspicious_not_wrong(self, rng: np.random.Generator) -> None:
        loss, params, grads = quadratic_form(rng)
        nudged = {"x": grads["x"] * (1 + 2e-5)}
        report = check_gradients(loss, params, nudged)
        assert report.verdict == "suspicious"

    def test_thresholds_override(self, rng: np.random.Generator) -> None:
        loss, params, grads = quadratic_form(rng)
        nudged = {"x": grads["x"] * (1 + 2e-5)}
        report = check_gradients(loss, params, nudged, thresholds=(1e-4, 1e-2))
        assert report.verdict == "ok"
        assert report.thresholds == (1e-4, 1e-2)

    def test_a_wrong_small_bias_is_not_drowned_by_large_weights(self, net: TwoLayerNet) -> None:
        params = {**net.params, "W1": net.params["W1"] * 50}

        def grads(p: Params) -> Params:
            result = net.grads(p)
            result["db2"] = result["db2"] * 1.5
            return result

        report = check_gradients(net.loss, params, grads)
        assert "b2" in report.wrong_parameters
        assert "W1" not in report.wrong_parameters


class TestRandomLoss:
    def test_dropout_is_refused(self, rng: np.random.Generator) -> None:
        X = rng.normal(size=(20, 4))
        W = rng.normal(size=(3, 4))
        dropout_rng = np.random.default_rng(1)

        def loss(p: Params) -> float:
            A = np.maximum(X @ p["W"].T, 0)
            mask = dropout_rng.random(A.shape) < 0.5
            return float(np.sum(A * mask / 0.5))

        with pytest.raises(NondeterministicLossError, match="dropout"):
            check_gradients(loss, {"W": W}, {"W": np.zeros_like(W)})


class TestReport:
    def test_sampling_covers_every_parameter(self, net: TwoLayerNet) -> None:
        report = check_gradients(net.loss, net.params, net.grads, sample=2, seed=3)
        assert report.sampled and report.mode == "sampled"
        assert [row.checked for row in report.parameters] == [2, 2, 2, 1]
        again = check_gradients(net.loss, net.params, net.grads, sample=2, seed=3)
        assert [e.name for e in report.entries] == [e.name for e in again.entries]
        other = check_gradients(net.loss, net.params, net.grads, sample=2, seed=4)
        assert [e.name for e in report.entries] != [e.name for e in other.entries]

    def test_sampled_check_still_finds_a_whole_wrong_tensor(self, net: TwoLayerNet) -> None:
        report = check_gradients(net.loss, net.params, lambda p: net.grads(p, "doubled"), sample=2)
        assert report.wrong_parameters == ["W2"]

    def test_float32_is_promoted_and_said(self, net: TwoLayerNet) -> None:
        params32 = {k: v.astype(np.float32) for k, v in net.params.items()}
        grads = net.grads({k: v.astype(np.float64) for k, v in params32.items()})
        report = check_gradients(net.loss, params32, grads)
        assert report.passed
        assert report.dtype == "float32"
        assert any("promoted to float64" in note for note in report.notes)
        assert all(v.dtype == np.float32 for v in params32.values())

    def test_text_fits_100_columns_and_names_the_culprit(self, net: TwoLayerNet) -> None:
        report = check_gradients(net.loss, net.params, lambda p: net.grads(p, "one-entry"))
        text = str(report)
        assert max(len(line) for line in text.splitlines()) <= 100
        assert "WRONG" in text and "W1[2, 1]" in text and "diagnosis" in text

    def test_to_dict_is_json(self, net: TwoLayerNet) -> None:
        report = check_gradients(net.loss, net.params, lambda p: net.grads(p, "sign"))
        data = json.loads(json.dumps(report.to_dict()))
        assert data["verdict"] == "wrong"
        assert data["wrong_parameters"] == ["b1"]
        assert data["parameters"][1]["name"] == "b1"
        assert data["worst"][0]["parameter"] == "b1"
        assert data["evaluations"] == report.evaluations

    def test_assert_gradients(self, net: TwoLayerNet) -> None:
        assert isinstance(assert_gradients(net.loss, net.params, net.grads), GradCheckReport)
        with pytest.raises(GradientCheckError) as caught:
            assert_gradients(net.loss, net.params, lambda p: net.grads(p, "doubled"))
        assert "W2" in str(caught.value)
        assert caught.value.report.wrong_parameters == ["W2"]


def _snapshot(params: Any) -> Any:
    return copy.deepcopy(params)


def _same(a: Any, b: Any) -> bool:
    try:
        np.testing.assert_array_equal(a, b)  # NaN equals NaN here
    except AssertionError:
        return False
    return True


def _unchanged(before: Any, after: Any) -> bool:
    if isinstance(before, dict):
        return all(_same(before[k], after[k]) for k in before)
    return all(_same(b, a) for b, a in zip(before, after, strict=True))


def square(p: Params) -> float:
    return float(np.sum(p["W"] ** 2))


BAD_INPUTS: list[tuple[str, Callable[[], Any], type[Exception], str]] = []


@pytest.fixture
def good() -> Params:
    return {"W": np.arange(6.0).reshape(2, 3), "b": np.ones(2)}


def _loss(p: Params) -> float:
    return float(np.sum(p["W"] ** 2) + np.sum(p["b"]))


def _grads(p: Params) -> Params:
    return {"W": 2 * p["W"], "b": np.ones(2)}


@pytest.mark.parametrize(
    ("case", "error", "pattern"),
    [
        ("missing key", InvalidArgumentError, r"grads: no gradient for parameter 'b'"),
        ("extra key", InvalidArgumentError, r"key\(s\) \['c'\] match no parameter"),
        ("shape", ShapeMismatchError, r"'W' has shape \(3, 2\), expected \(2, 3\).*transposed"),
        ("int params", InvalidTypeError, r"params: 'W' has dtype int64, expected a real float"),
        ("object grads", InvalidTypeError, r"grads: 'b' has dtype object"),
        (
            "nan params",
            NonFiniteError,
            r"params: 'W' holds 1 non-finite value\(s\), the first one NaN at W\[1, 1\]",
        ),
        (
            "inf grads",
            NonFiniteError,
            r"grads: 'b' holds 1 non-finite value\(s\), the first one inf",
        ),
        ("non-scalar loss", LossEvaluationError, r"shape \(2,\) at θ, expected a scalar"),
        ("nan loss", LossEvaluationError, r"returned nan at θ, expected a finite value"),
        ("raising loss", LossEvaluationError, r"loss raised KeyError at θ"),
        ("raising at a perturbation", LossEvaluationError, r"raised .* with W\[0, 1\] moved"),
        ("eps zero", InvalidArgumentError, r"eps: got 0.0, expected a positive"),
        ("eps negative", InvalidArgumentError, r"eps: got -0.001"),
        ("method", InvalidArgumentError, r"method: got 'secant'"),
        ("empty dict", InvalidArgumentError, r"params: got no parameters"),
        ("empty arrays", InvalidArgumentError, r"params: every parameter array is empty"),
        ("thresholds", InvalidArgumentError, r"thresholds: got \(0.01, 0.001\)"),
        ("sample", InvalidArgumentError, r"sample: got 0"),
        ("loss not callable", InvalidTypeError, r"loss: got int, expected a callable"),
        ("params type", InvalidTypeError, r"params: got str, expected a dict"),
        ("grads raises", LossEvaluationError, r"grads raised RuntimeError"),
        ("both keys", InvalidArgumentError, r"both 'W' and 'dW' are present"),
    ],
)
def test_bad_input_is_named_and_nothing_is_mutated(
    case: str, error: type[Exception], pattern: str, good: Params
) -> None:
    params: Any = good
    grads: Any = {"W": 2 * good["W"], "b": np.ones(2)}
    loss: Any = _loss
    options: dict[str, Any] = {}
    if case == "missing key":
        del grads["b"]
    elif case == "extra key":
        grads["c"] = np.ones(1)
    elif case == "shape":
        grads["W"] = grads["W"].T.copy()
    elif case == "int params":
        params = {"W": np.arange(6).reshape(2, 3), "b": np.ones(2)}
    elif case == "object grads":
        grads["b"] = np.array([1.0, "x"], dtype=object)
    elif case == "nan params":
        params = {"W": good["W"].copy(), "b": good["b"]}
        params["W"][1, 1] = np.nan
    elif case == "inf grads":
        grads["b"] = np.array([1.0, np.inf])
    elif case == "non-scalar loss":
        loss = lambda p: p["b"] * 2  # noqa: E731
    elif case == "nan loss":
        loss = lambda p: float("nan")  # noqa: E731
    elif case == "raising loss":
        loss = lambda p: p["missing"]  # noqa: E731
    elif case == "raising at a perturbation":

        def loss(p: Params) -> float:
            if p["W"][0, 1] != 1.0:
                raise ValueError("moved")
            return _loss(p)
    elif case == "eps zero":
        options["eps"] = 0.0
    elif case == "eps negative":
        options["eps"] = -1e-3
    elif case == "method":
        options["method"] = "secant"
    elif case == "empty dict":
        params = {}
    elif case == "empty arrays":
        params, grads = {"W": np.zeros((0, 3))}, {"W": np.zeros((0, 3))}
    elif case == "thresholds":
        options["thresholds"] = (1e-2, 1e-3)
    elif case == "sample":
        options["sample"] = 0
    elif case == "loss not callable":
        loss = 3
    elif case == "params type":
        params = "W"
    elif case == "grads raises":

        def grads(p: Params) -> Params:
            raise RuntimeError("backprop failed")
    elif case == "both keys":
        grads["dW"] = grads["W"]
    params_before, grads_before = _snapshot(params), _snapshot(grads)
    with pytest.raises(error, match=pattern) as caught:
        check_gradients(loss, params, grads, **options)
    assert isinstance(caught.value, GradprobeError)
    if isinstance(params, dict):
        assert _unchanged(params_before, params)
    if isinstance(grads, dict):
        assert _unchanged(grads_before, grads)


def test_callers_arrays_are_identical_after_a_passing_and_a_failing_check(good: Params) -> None:
    before = _snapshot(good)
    grads = _grads(good)
    grads_before = _snapshot(grads)
    check_gradients(_loss, good, grads)
    check_gradients(_loss, good, {"W": 3 * good["W"], "b": np.ones(2)})
    assert _unchanged(before, good)
    assert _unchanged(grads_before, grads)


def test_a_loss_that_writes_into_its_arguments_cannot_touch_the_callers_arrays(
    good: Params,
) -> None:
    before = _snapshot(good)

    def vandal(p: Params) -> float:
        value = _loss(p)
        p["W"] *= 1.0  # in place, but a no-op in value: the check itself must stay valid
        return value

    assert check_gradients(vandal, good, _grads).passed
    assert _unchanged(before, good)


class TestReviewRegressions:
    """Cases a review found; each failed before its fix."""

    def test_parameters_named_like_gradients(self, rng: np.random.Generator) -> None:
        W, dW = rng.normal(size=3), rng.normal(size=3)

        def loss(p: Params) -> float:
            return float(np.sum(p["W"] ** 2) + np.sum(p["dW"] ** 3))

        report = check_gradients(loss, {"W": W, "dW": dW}, {"W": 2 * W, "dW": 3 * dW**2})
        assert report.passed

    @pytest.mark.parametrize(
        ("seed", "error"), [("x", InvalidTypeError), (-1, InvalidArgumentError)]
    )
    def test_seed_is_validated(self, seed: Any, error: type[Exception]) -> None:
        with pytest.raises(error, match="seed: got"):
            check_gradients(
                _loss, {"W": np.ones((2, 3)), "b": np.ones(2)}, _grads, sample=1, seed=seed
            )

    def test_complex_loss_is_refused(self) -> None:
        with pytest.raises(LossEvaluationError, match="loss returned the complex value"):
            check_gradients(lambda p: np.sum(p) * (1 + 1j), np.ones(2), np.ones(2))


PLANTED_NUMPY = """
import numpy as np
from gradprobe import assert_gradients

def loss(params):
    return float(np.sum(params["W"] ** 3))

def test_a_wrong_gradient():
    W = np.linspace(0.5, 1.5, 6).reshape(2, 3)
    assert_gradients(loss, {"W": W}, {"W": 2 * W**2})

def test_bad_input():
    assert_gradients(loss, {"W": np.ones(3)}, {"W": np.ones(4)})
"""


def test_a_failing_assert_gradients_shows_the_report_not_gradprobes_frames(
    planted_test_output: Callable[[str], str],
) -> None:
    out = planted_test_output(PLANTED_NUMPY)
    failed, bad_input = out.split("_ test_bad_input _")
    assert "2 failed" in bad_input
    assert "GradientCheckError" in failed and "W[1, 2]" in failed  # the report is shown
    assert "gradprobe/check/checker.py" not in failed, failed
    # The probe can see gradprobe's frames: a bad argument is no failed check and keeps them.
    assert "gradprobe/check/" in bad_input, bad_input
