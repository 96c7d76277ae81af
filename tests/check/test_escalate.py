"""Re-checks: kinks resolved at any distance, batched requests, honest inconclusive verdicts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe._params import ParameterLayout
from gradprobe.check.checker import run_check
from gradprobe.check.escalate import ROUNDS
from gradprobe.nn.check import check_model
from gradprobe.nn.fastcheck import MLPEvaluator
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.batched import ThetaEvaluator
from gradprobe.numdiff.rules import default_step

# Distances of a kink from θ, in steps: at θ, inside ±ε at every fraction (the old
# refinement's gap was 0.12-0.25), and beyond the step.
DISTANCES = np.array([0.0, 0.05, 0.12, 0.2, 0.25, 0.33, 0.5, 0.7, 0.95, 1.3])


def kinked_loss() -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Σ wᵢ·relu(θᵢ − cᵢ) + ½θᵢ², each kink cᵢ at DISTANCES[i] steps above θᵢ."""
    theta = np.linspace(0.3, 2.0, len(DISTANCES))
    h = default_step("central", theta)
    corners = theta + DISTANCES * h
    weights = np.linspace(1.0, 3.0, len(DISTANCES))

    def loss(p: dict) -> float:
        x = p["x"]
        return float(np.sum(weights * np.maximum(x - corners, 0.0)) + 0.5 * np.sum(x**2))

    # θ sits at or below each kink: the piece through θ has slope θ (relu'(0) = 0).
    return loss, theta, theta.copy(), weights


def test_a_correct_gradient_is_ok_whatever_the_kink_distance() -> None:
    loss, theta, right, _ = kinked_loss()
    report = check_gradients(loss, {"x": theta}, {"x": right})
    assert report.verdict == "ok", str(report)
    kinked = np.array([entry.kink for entry in report.entries])
    # At θ and within half a step, two steps see the kink: it is reported.
    assert kinked[DISTANCES < 0.5].all()
    assert not kinked[DISTANCES > 1].any()


def test_the_other_side_of_a_nearby_kink_is_wrong() -> None:
    # The slope beyond the kink is a valid subgradient only when the kink is at θ.
    loss, theta, right, weights = kinked_loss()
    wrong = right + weights
    report = check_gradients(loss, {"x": theta}, {"x": wrong})
    verdicts = [entry.verdict for entry in report.entries]
    assert verdicts[0] == "ok"
    assert all(v == "wrong" for v in verdicts[1:]), verdicts
    assert report.verdict == "wrong"


class CountingEvaluator(ThetaEvaluator):
    """A batched evaluator that records the size of every coordinates request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[int] = []

    def coordinates(self, theta: np.ndarray, indices: np.ndarray, values: np.ndarray) -> Any:
        self.requests.append(len(indices))
        return super().coordinates(theta, indices, values)


def test_re_checks_are_batched_requests() -> None:
    loss, theta, right, _ = kinked_loss()

    def batched(p: dict) -> np.ndarray:
        return np.array([loss({"x": row}) for row in p["x"]])

    layout = ParameterLayout.from_params({"x": theta})
    evaluate = CountingEvaluator(batched, layout, batched=True)
    report = run_check(evaluate, theta.copy(), {"x": right})
    assert report.verdict == "ok"
    # One request for the first step, then one per round of re-checks, each for all
    # the open entries at once.
    assert 2 <= len(evaluate.requests) <= ROUNDS + 2
    assert evaluate.requests[0] == 2 * len(theta)
    assert evaluate.requests[1] >= 2 * int(np.count_nonzero(DISTANCES < 1))


def test_kink_re_checks_of_an_mlp_go_through_its_structure_aware_evaluator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 5))
    y = rng.integers(0, 3, 8)
    net = MLP([5, 7, 6, 3], activation="relu", seed=1).eval()
    z1 = net.forward(X)[1].Z[1]
    net.params["b1"][2] -= z1[4, 2] - 2e-6  # example 4 crosses unit 2 within the step
    requests: list[int] = []
    forwards: list[int] = []
    original = MLPEvaluator.coordinates
    plain = MLP.loss

    def counted(self: MLPEvaluator, theta: Any, indices: Any, values: Any) -> Any:
        requests.append(len(indices))
        return original(self, theta, indices, values)

    def loss(self: MLP, *args: Any, **kwargs: Any) -> Any:
        forwards.append(1)
        return plain(self, *args, **kwargs)

    monkeypatch.setattr(MLPEvaluator, "coordinates", counted)
    monkeypatch.setattr(MLP, "loss", loss)
    report = check_model(net, X, y, mode="full")
    assert report.verdict == "ok", str(report)
    assert report.kinks >= 1
    assert len(requests) >= 2  # the first step and the kink's re-checks
    # Whole forward passes only for the loss at θ, the randomness test and the noise tables.
    assert len(forwards) <= 4 + 3 * 4 * 8


def test_a_float16_loss_is_inconclusive_with_what_to_try() -> None:
    W = np.random.default_rng(0).normal(size=6)

    def loss(p: dict) -> np.float16:
        return np.float16(np.sum(np.sin(p["w"].astype(np.float16))))

    report = check_gradients(loss, {"w": W}, {"w": np.cos(W)})
    assert report.verdict == "inconclusive"
    assert not report.passed
    assert report.wrong_parameters == [] and report.inconclusive_parameters == ["w"]
    advice = " ".join(report.advice)
    assert "float64" in advice and "larger eps" in advice
    assert "what to try" in str(report)
    # ... while a wrong gradient is still wrong through the same noise.
    assert check_gradients(loss, {"w": W}, {"w": -np.cos(W)}).verdict == "wrong"
