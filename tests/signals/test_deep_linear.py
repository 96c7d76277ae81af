"""The course notes' deep linear network: powers of w, the verdict, overflow, bad input."""

import json
import math

import numpy as np
import pytest

from gradprobe import deep_linear
from gradprobe.errors import InvalidArgumentError, InvalidTypeError

DEPTH = 50


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


@pytest.mark.parametrize("w", [1.5, 0.5, 0.9, 2.0, -1.3, 1.04])
def test_the_trouble_layer_is_where_w_to_the_2l_leaves_the_band(w: float) -> None:
    # Second moments scale as w^(2l): the first l with |2l·log10|w|| > log10(100).
    result = deep_linear(w, DEPTH)
    beyond = [layer for layer in range(1, DEPTH + 1) if abs(2 * layer * math.log10(abs(w))) > 2]
    expected = beyond[0] if beyond else None
    assert result.trouble_layer == expected
    if expected is None:
        assert result.verdict == "healthy" and result.summary == "healthy"
    else:
        assert result.verdict == ("exploding" if abs(w) > 1 else "vanishing")
        assert result.summary.startswith(f"{result.verdict}: activations leave the ×100 band")
        assert f"at layer {expected};" in result.summary


def test_the_tolerance_widens_the_band() -> None:
    # 1.05^100 ≈ 131: outside ×100, inside ×1000.
    assert deep_linear(1.05, DEPTH).verdict == "exploding"
    assert deep_linear(1.05, DEPTH, tolerance=1000).verdict == "healthy"


def test_the_weight_gradient_is_the_same_in_every_layer() -> None:
    # ∂ŷ/∂W{l} = w^(L−l)·w^(l−1)·x = w^(L−1)·x for every l.
    result = deep_linear(1.2, 10, width=2, x=[3.0, -1.0])
    expected = 1.2**9 * np.sqrt(np.mean(np.array([3.0, -1.0]) ** 2))
    np.testing.assert_allclose(result.weight_gradient, expected, rtol=1e-12)


def test_rows_dict_and_text() -> None:
    result = deep_linear(0.5, 6)
    assert [row["layer"] for row in result.rows] == list(range(7))
    assert result.rows[3] == {"layer": 3, "activation": 0.125, "gradient": 0.125}
    data = json.loads(json.dumps(result.to_dict()))
    assert data["activation"] == result.activation.tolist() and data["verdict"] == "vanishing"
    text = str(result)
    assert text.splitlines()[0] == "deep linear network: w = 0.5, depth 6, width 1"
    assert result.summary in text and text.endswith(result.advice)
    assert "Scale w toward 1: the output is |w|^6 = 0.0156 times the input" in result.advice
    assert deep_linear(1.0, 6).advice.startswith("Nothing to change: |w| = 1 keeps signals")


def test_the_input_is_neither_changed_nor_allowed_to_be_zero() -> None:
    x = np.array([1.0, 2.0])
    before = x.copy()
    deep_linear(3.0, 4, width=2, x=x)
    np.testing.assert_array_equal(x, before)
    with pytest.raises(
        InvalidArgumentError, match=r"x: got shape \(2,\), expected a finite, nonzero"
    ):
        deep_linear(3.0, 4, width=2, x=[0.0, 0.0])
    with pytest.raises(InvalidArgumentError, match="x: got shape"):
        deep_linear(3.0, 4, width=2, x=[1.0, np.inf])
    with pytest.raises(InvalidTypeError, match="w: got str"):
        deep_linear("2", 4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("w", "verdict"), [(1.5, "exploding"), (0.5, "vanishing"), (1.0, "healthy")]
)
def test_powers_of_w(w, verdict):
    result = deep_linear(w, 30)
    assert result.verdict == verdict
    assert result.activation[-1] == pytest.approx(abs(w) ** 30)
    assert np.allclose(result.weight_gradient, abs(w) ** 29)
