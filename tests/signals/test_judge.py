"""The verdict from per-layer ratios, its wording, robust moments and the backward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradprobe.signals.judge import (
    Judgement,
    backpropagate,
    first_nonfinite,
    headline,
    judge,
    moment,
    rms,
)

torch.set_num_threads(1)


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


def test_inside_the_band_is_healthy_with_the_largest_forward_change() -> None:
    forward = np.array([2.0, 0.05, 30.0])
    judgement = judge(forward, np.array([0.5, 3.0, 1.0]), (None, "forward"), 100.0)
    assert judgement == Judgement("healthy", None, None, pytest.approx(30.0), False)
    assert headline(judgement, 100.0) == "healthy"


def test_the_forward_pass_decides_before_the_backward_pass() -> None:
    judgement = judge(np.array([1.0, 1e-3]), np.array([1e5, 1.0]), (None, "forward"), 100.0)
    assert (judgement.verdict, judgement.layer, judgement.direction) == ("vanishing", 2, "forward")
    assert judgement.factor == pytest.approx(1e-3)
    only_backward = judge(np.ones(2), np.array([1e-5, 1.0]), (None, "forward"), 100.0)
    assert (only_backward.verdict, only_backward.direction) == ("vanishing", "backward")


def test_the_tolerance_is_a_factor_either_way() -> None:
    ratios = np.array([1.0, 50.0, 1 / 50])
    assert judge(ratios, np.ones(3), (None, "forward"), 100.0).verdict == "healthy"
    tight = judge(ratios, np.ones(3), (None, "forward"), 10.0)
    assert (tight.verdict, tight.layer) == ("exploding", 2)


def test_overflow_wins_and_is_worded_by_pass() -> None:
    judgement = judge(np.ones(3), np.ones(3), (37, "forward"), 100.0)
    assert judgement == Judgement("exploding", 37, "forward", np.inf, True)
    assert headline(judgement, 100.0) == "exploding: overflow at layer 37"
    backward = judge(np.ones(3), np.ones(3), (4, "backward"), 100.0)
    assert headline(backward, 100.0) == "exploding: overflow at layer 4 in the backward pass"


def test_headlines_name_the_signal_and_the_reference() -> None:
    forward = Judgement("exploding", 3, "forward", 2.5e4, False)
    assert headline(forward, 100.0, "pre-activations") == (
        "exploding: pre-activations leave the ×100 band at layer 3; their second moment "
        "reaches ×2.5e+04 of the input's"
    )
    backward = Judgement("vanishing", 9, "backward", 1e-6, False)
    assert headline(backward, 1e3) == (
        "vanishing: gradients leave the ×1000 band at layer 9; their second moment reaches "
        "×1e-06 of the output's"
    )


def test_zero_ratios_count_as_vanishing_without_warnings() -> None:
    with np.errstate(all="raise"):
        judgement = judge(np.array([1.0, 0.0]), np.ones(2), (None, "forward"), 100.0)
    assert (judgement.verdict, judgement.layer, judgement.factor) == ("vanishing", 2, 0.0)


# ------------------------------------------------------------------------ moments


def test_rms_and_moment_agree_with_numpy_on_ordinary_values(rng: np.random.Generator) -> None:
    values = rng.normal(size=(7, 5)) * 3
    assert rms(values) == pytest.approx(np.sqrt(np.mean(values**2)), rel=1e-14)
    assert moment(values) == pytest.approx(np.mean(values**2), rel=1e-14)


def test_rms_does_not_overflow_where_squaring_would() -> None:
    values = np.array([1e200, -2e200, 3e200])
    with np.errstate(over="ignore"):
        assert np.isinf(np.sqrt(np.mean(values**2)))
    assert rms(values) == pytest.approx(np.sqrt(14 / 3) * 1e200, rel=1e-14)
    with np.errstate(over="ignore"):  # its callers run it so; it warns on overflow otherwise
        assert moment(values) == np.inf  # beyond float64, said as infinity, not NaN


@pytest.mark.parametrize(
    ("values", "expected"), [(np.zeros(3), 0.0), (np.array([1.0, np.inf]), np.inf)]
)
def test_rms_of_zeros_and_infinity(values: np.ndarray, expected: float) -> None:
    assert rms(values) == expected


def test_rms_of_nan_is_nan() -> None:
    assert np.isnan(rms(np.array([1.0, np.nan])))


def test_first_nonfinite_finds_the_first_bad_layer() -> None:
    arrays = {0: np.ones(2), 1: np.ones(2), 2: np.array([1.0, np.inf]), 3: np.array([np.nan])}
    assert first_nonfinite(arrays, 3) == 2
    assert first_nonfinite(arrays, 1) is None
    # Layer 0 (the input) is not looked at.
    assert first_nonfinite({0: np.array([np.nan]), 1: np.ones(1)}, 1) is None


# ------------------------------------------------------------------------ backward


def _network(rng: np.random.Generator, sizes: list[int], m: int):  # type: ignore[no-untyped-def]
    weights = {k: rng.normal(size=(sizes[k], sizes[k - 1])) for k in range(1, len(sizes))}
    X = rng.normal(size=(m, sizes[0]))
    probe = rng.normal(size=(m, sizes[-1]))
    return weights, X, probe


def test_backpropagate_agrees_with_torch_autograd(rng: np.random.Generator) -> None:
    sizes, m = [4, 6, 5, 3], 8
    weights, X, probe = _network(rng, sizes, m)
    depth = len(sizes) - 1
    Z, A = {}, {0: X}
    for layer in range(1, depth + 1):
        Z[layer] = A[layer - 1] @ weights[layer].T
        A[layer] = np.tanh(Z[layer]) if layer < depth else Z[layer]
    dZ, dA0, dW = backpropagate(Z, A, weights, lambda z: 1 - np.tanh(z) ** 2, probe)

    # The same network in torch; the probe loss J = (1/m)·Σ G ⊙ Z[L].
    W = {k: torch.tensor(w, requires_grad=True) for k, w in weights.items()}
    x = torch.tensor(X, requires_grad=True)
    tz, a = {}, x
    for layer in range(1, depth + 1):
        tz[layer] = a @ W[layer].T
        tz[layer].retain_grad()
        a = torch.tanh(tz[layer]) if layer < depth else tz[layer]
    (torch.tensor(probe) * tz[depth]).sum().div(m).backward()
    for layer in range(1, depth + 1):
        np.testing.assert_allclose(dW[layer], W[layer].grad.numpy(), rtol=1e-12, atol=1e-15)
        # dZ[l] is the probe's own scale: m times ∂J/∂Z[l].
        np.testing.assert_allclose(dZ[layer], m * tz[layer].grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(dA0, m * x.grad.numpy(), rtol=1e-12)


def test_linear_layers_and_masks(rng: np.random.Generator) -> None:
    sizes, m = [3, 4, 2], 5
    weights, X, probe = _network(rng, sizes, m)
    Z = {1: X @ weights[1].T}
    mask = (rng.random((m, 4)) < 0.5) / 0.5
    A = {0: X, 1: Z[1] * mask}
    Z[2] = A[1] @ weights[2].T
    dZ, dA0, dW = backpropagate(Z, A, weights, None, probe, masks={1: mask})
    # By hand: dA1 = G·W2, masked; linear, so dZ1 = dA1; dW{l} = dZ[l].T·A[l−1] / m.
    np.testing.assert_allclose(dZ[1], (probe @ weights[2]) * mask)
    np.testing.assert_allclose(dW[2], probe.T @ A[1] / m)
    np.testing.assert_allclose(dW[1], dZ[1].T @ X / m)
    np.testing.assert_allclose(dA0, dZ[1] @ weights[1])
    assert dZ[2] is probe


def test_layers_not_judged_are_skipped_in_either_direction():
    forward = np.array([1.0, np.nan, 1e-3, np.nan])
    judgement = judge(forward, np.full(4, np.nan), (None, "forward"), 100.0)
    assert (judgement.verdict, judgement.layer) == ("vanishing", 3)
    healthy = judge(np.array([np.nan, 2.0]), np.array([np.nan, 1.0]), (None, "forward"), 100.0)
    assert healthy.verdict == "healthy" and healthy.factor == 2.0
    nothing = judge(np.full(2, np.nan), np.full(2, np.nan), (None, "forward"), 100.0)
    assert nothing.verdict == "healthy" and nothing.factor == 1.0


def test_headline_names_layers_and_references():
    judgement = Judgement("vanishing", 2, "backward", 1e-4, False)
    text = headline(judgement, 100.0, "signals", ["a", "b.c"], ("input", "last hidden layer"))
    assert text == (
        "vanishing: gradients leave the ×100 band at layer b.c (weight layer 2); their second "
        "moment reaches ×0.0001 of the last hidden layer's"
    )
    overflow = Judgement("exploding", 1, "forward", np.inf, True)
    assert (
        headline(overflow, 100.0, names=["x"]) == "exploding: overflow at layer x (weight layer 1)"
    )
    assert headline(overflow, 100.0) == "exploding: overflow at layer 1"


def test_moments_do_not_overflow_early():
    values = np.array([3e200, -4e200])
    assert rms(values) == pytest.approx(np.sqrt(12.5) * 1e200)
    assert moment(np.array([1.0, 3.0])) == pytest.approx(5.0, rel=1e-15)
