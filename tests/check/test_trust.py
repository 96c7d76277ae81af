"""A verdict you can trust: the cases that used to be misjudged, each checked end to end.

Every case here failed before the checker measured its noise and bounded each entry:
a wrong row under an "ok" verdict, a bug hidden by a large constant, a truncation at a
minimum called a bug, noise taken for kinks, and the course's own figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from scipy.optimize import check_grad, rosen, rosen_der

from gradprobe import GradientCheckError, assert_gradients, check_gradients

Params = dict[str, np.ndarray]
UNIT = float(np.finfo(np.float64).eps)


def course_case() -> tuple[np.ndarray, np.ndarray, Params]:
    """The course's gradient_check_n_test_case: a 3-layer ReLU net, sigmoid output."""
    rng = np.random.RandomState(1)
    x = rng.randn(4, 3)
    y = np.array([1, 1, 0])
    params = {
        "W1": rng.randn(5, 4), "b1": rng.randn(5, 1), "W2": rng.randn(3, 5),
        "b2": rng.randn(3, 1), "W3": rng.randn(1, 3), "b3": rng.randn(1, 1),
    }  # fmt: skip
    return x, y, params


def course_forward(X: np.ndarray, Y: np.ndarray, p: Params) -> tuple[float, tuple]:
    m = X.shape[1]
    Z1 = p["W1"] @ X + p["b1"]
    A1 = np.maximum(0, Z1)
    Z2 = p["W2"] @ A1 + p["b2"]
    A2 = np.maximum(0, Z2)
    Z3 = p["W3"] @ A2 + p["b3"]
    A3 = 1 / (1 + np.exp(-Z3))
    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    return float(1.0 / m * np.sum(logprobs)), (A1, A2, A3)


def course_backward(X: np.ndarray, Y: np.ndarray, p: Params, buggy: bool) -> Params:
    """The course's backward_propagation_n, with its two planted bugs when ``buggy``."""
    m = X.shape[1]
    _, (A1, A2, A3) = course_forward(X, Y, p)
    dZ3 = A3 - Y
    dZ2 = (p["W3"].T @ dZ3) * (A2 > 0)
    dZ1 = (p["W2"].T @ dZ2) * (A1 > 0)
    return {
        "W1": 1.0 / m * dZ1 @ X.T,
        "b1": (4.0 if buggy else 1.0) / m * np.sum(dZ1, axis=1, keepdims=True),
        "W2": 1.0 / m * dZ2 @ A1.T * (2 if buggy else 1),
        "b2": 1.0 / m * np.sum(dZ2, axis=1, keepdims=True),
        "W3": 1.0 / m * dZ3 @ A2.T,
        "b3": 1.0 / m * np.sum(dZ3, axis=1, keepdims=True),
    }


class TestTheCoursesFigures:
    def test_the_buggy_case_reads_0_2851_at_eps_1e_7(self) -> None:
        X, Y, p = course_case()
        report = check_gradients(
            lambda q: course_forward(X, Y, q)[0], p, course_backward(X, Y, p, True), eps=1e-7
        )
        assert report.difference == pytest.approx(0.2851, abs=5e-5)
        assert report.verdict == "wrong"
        assert sorted(report.wrong_parameters) == ["W2", "b1"]

    def test_the_fixed_case_reads_1e_7_with_no_kinks(self) -> None:
        X, Y, p = course_case()
        report = check_gradients(
            lambda q: course_forward(X, Y, q)[0], p, course_backward(X, Y, p, False), eps=1e-7
        )
        # The course notebook prints 1.1885552035482147e-07.
        assert report.difference == pytest.approx(1.1886e-7, rel=5e-3)
        assert report.verdict == "ok" and report.kinks == 0
        # No pre-activation is within 0.079 of zero: no ±1e-7 move flips a ReLU.
        _, (A1, A2, _) = course_forward(X, Y, p)
        z1 = p["W1"] @ X + p["b1"]
        assert np.min(np.abs(z1)) > 0.07

    def test_the_noise_of_log_1_minus_a_is_measured_not_assumed(self) -> None:
        X, Y, p = course_case()
        loss = course_forward(X, Y, p)[0]
        report = check_gradients(
            lambda q: course_forward(X, Y, q)[0], p, course_backward(X, Y, p, False)
        )
        # The issue measured a std of 1.3e-14, 10-25× the assumed 4u·|J|/4.
        assert 5e-15 < report.noise < 5e-14
        assert report.noise > 10 * UNIT * loss
        assert any("computational noise" in note for note in report.notes)


class TestAVerdictNeverBetterThanItsWorstRow:
    def test_a_tiny_bias_planted_x2_fails_the_check(self) -> None:
        # The bias's gradient is 1e-7 next to weights of order 1: the overall difference
        # is ~1e-7 ("ok" by the notes' bands), the bias row is 100 % off.
        rng = np.random.default_rng(0)
        X = rng.normal(size=(10, 3))
        w = rng.normal(size=3)
        y = X @ w + 1.0
        # With the weights off by 0.3 their gradients are of order 1; the bias is set so
        # the mean residual is 5e-8: d(MSE)/db = 2·mean(r) = 1e-7.
        b = 1.0 + 5e-8 - float(np.mean(X @ np.full(3, 0.3)))

        def loss(p: Params) -> float:
            return float(np.mean((X @ p["w"] + p["b"][0] - y) ** 2))

        def grads(p: Params) -> Params:
            r = X @ p["w"] + p["b"][0] - y
            return {"w": 2 * X.T @ r / 10, "b": np.array([2 * 2 * r.mean()])}  # x2 planted

        params = {"w": w + 0.3, "b": np.array([b])}
        assert abs(grads(params)["b"][0] / 2 - 1e-7) < 1e-9
        report = check_gradients(loss, params, grads)
        assert report.difference < 1e-6
        assert report.parameter("b").verdict == "wrong"
        assert report.verdict == "wrong" and not report.passed
        with pytest.raises(GradientCheckError):
            assert_gradients(loss, params, grads)

    def test_ok_always_means_every_row_is_ok(self, rng: np.random.Generator) -> None:
        A = rng.normal(size=(6, 6))
        for trial in range(30):
            x = rng.normal(size=6)
            grads = 0.5 * (A + A.T) @ x
            grads[trial % 6] *= 1 + 10.0 ** -(trial % 8)
            report = check_gradients(lambda v: float(0.5 * v @ A @ v), x, grads)
            if report.verdict == "ok":
                assert all(row.verdict == "ok" for row in report.parameters)
            assert report.passed == (report.verdict == "ok")


def test_a_large_constant_does_not_hide_a_100_percent_wrong_entry() -> None:
    rng = np.random.default_rng(3)
    A = rng.normal(size=(8, 6))
    w = rng.normal(size=6)

    def loss(p: Params) -> float:
        return float(1e6 + np.sum(np.tanh(A @ p["w"])))

    exact = A.T @ (1 - np.tanh(A @ w) ** 2)
    wrong = exact.copy()
    wrong[2] *= 2.0
    report = check_gradients(loss, {"w": w}, {"w": wrong})
    assert report.verdict == "wrong" and report.worst(1)[0].name == "w[2]"
    assert check_gradients(loss, {"w": w}, {"w": exact}).verdict == "ok"


class TestAMinimumIsNotABug:
    def test_scipy_rosen_der_at_the_minimum(self) -> None:
        x = np.ones(4)
        report = check_gradients(lambda v: float(rosen(v)), x, rosen_der(x))
        assert report.verdict == "ok", str(report)
        # SciPy agrees the gradient is right: its check_grad error is forward-difference size.
        assert check_grad(rosen, rosen_der, x) < 1e-4
        wrong = rosen_der(x) + np.array([0.0, 1e-3, 0.0, 0.0])
        assert check_gradients(lambda v: float(rosen(v)), x, wrong).verdict == "wrong"

    @pytest.mark.parametrize("offset", [0.0, 1.0])
    def test_himmelblau_at_3_2(self, offset: float) -> None:
        def f(v: np.ndarray) -> float:
            return float((v[0] ** 2 + v[1] - 11) ** 2 + (v[0] + v[1] ** 2 - 7) ** 2 + offset)

        report = check_gradients(f, np.array([3.0, 2.0]), np.zeros(2))
        assert report.verdict == "ok", str(report)
        assert all(e.error < 1e-7 for e in report.entries)  # pure truncation, under 1e-7


def test_a_smooth_net_near_its_minimum_claims_no_kinks() -> None:
    # Softplus is smooth: slopes that differ only by noise are never a "ReLU crossing".
    rng = np.random.default_rng(4)
    X = rng.normal(size=(12, 3))
    W = rng.normal(size=(4, 3))
    v = rng.normal(size=4)
    y = np.log1p(np.exp(X @ W.T)) @ v + 1e-9 * rng.normal(size=12)

    def loss(p: Params) -> float:
        return float(np.mean((np.log1p(np.exp(X @ p["W"].T)) @ p["v"] - y) ** 2))

    def grads(p: Params) -> Params:
        hidden = np.log1p(np.exp(X @ p["W"].T))
        r = 2 * (hidden @ p["v"] - y) / 12
        slope = 1 / (1 + np.exp(-(X @ p["W"].T)))
        return {"W": ((r[:, None] * slope) * p["v"]).T @ X, "v": hidden.T @ r}

    report = check_gradients(loss, {"W": W, "v": v}, grads)
    assert report.verdict == "ok", str(report)
    assert report.kinks == 0


def test_torch_autograd_agrees_where_the_checker_says_ok() -> None:
    # An independent route for the truth: PyTorch float64 autograd on the same function.
    rng = np.random.default_rng(5)
    X = rng.normal(size=(6, 4))

    def loss(p: Params) -> float:
        return float(np.sum(np.log1p(np.exp(X @ p["w"]))) + 1e4)

    w = rng.normal(size=4)
    tw = torch.tensor(w, requires_grad=True)
    torch.log1p(torch.exp(torch.tensor(X) @ tw)).sum().backward()
    assert tw.grad is not None
    truth = tw.grad.numpy()
    assert check_gradients(loss, {"w": w}, {"w": truth}).verdict == "ok"
    off: Any = truth.copy()
    off[1] *= 1.001
    assert check_gradients(loss, {"w": w}, {"w": off}).verdict in ("suspicious", "wrong")
