"""Initializers: statistics against their formulas, fan conventions, gains and lookups."""

from __future__ import annotations

import numpy as np
import pytest

from gradprobe import init, recommend_scale
from gradprobe.errors import InvalidArgumentError, InvalidTypeError

FAN_OUT, FAN_IN = 300, 700
SHAPE = (FAN_OUT, FAN_IN)

EXPECTED_STD = {
    "he": np.sqrt(2 / FAN_IN),
    "he_uniform": np.sqrt(2 / FAN_IN),
    "xavier": np.sqrt(2 / (FAN_IN + FAN_OUT)),
    "xavier_uniform": np.sqrt(2 / (FAN_IN + FAN_OUT)),
    "lecun": np.sqrt(1 / FAN_IN),
    "lecun_uniform": np.sqrt(1 / FAN_IN),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_STD))
def test_std_within_3_percent_of_formula(name: str) -> None:
    W = init.get(name)(SHAPE, 0)
    assert W.shape == SHAPE
    assert abs(W.std() / EXPECTED_STD[name] - 1) < 0.03
    assert abs(W.mean()) < 0.03 * EXPECTED_STD[name]


@pytest.mark.parametrize("family", ["he", "xavier", "lecun"])
def test_normal_and_uniform_variants_differ_in_shape_only(family: str) -> None:
    normal = init.get(f"{family}_normal")(SHAPE, 1)
    uniform = init.get(f"{family}_uniform")(SHAPE, 1)
    bound = np.sqrt(3) * EXPECTED_STD[family]
    assert np.abs(uniform).max() <= bound
    assert np.abs(normal).max() > bound  # a normal has tails past √3·σ
    assert abs(uniform.var() / normal.var() - 1) < 0.03
    # Excess kurtosis: 0 for a normal, −1.2 for a uniform.
    kurtosis = [np.mean(a**4) / np.mean(a**2) ** 2 - 3 for a in (normal, uniform)]
    assert abs(kurtosis[0]) < 0.1 and abs(kurtosis[1] + 1.2) < 0.1


def test_plain_normal_and_uniform_scales() -> None:
    assert abs(init.normal(SHAPE, 0, scale=0.5).std() / 0.5 - 1) < 0.03
    U = init.uniform(SHAPE, 0, scale=0.5)
    assert np.abs(U).max() <= 0.5 and abs(U.var() / (0.25 / 3) - 1) < 0.03
    assert abs(init.normal(SHAPE, 0).std() / 0.01 - 1) < 0.03


def test_fan_conventions() -> None:
    assert init.fans((FAN_OUT, FAN_IN)) == (FAN_IN, FAN_OUT)
    assert init.fans((16, 3, 5, 5)) == (75, 400)
    assert init.fans((7,)) == (7, 7)
    # He depends on fan_in only: the second axis of (fan_out, fan_in).
    wide, tall = init.he((50, 2000), 0), init.he((2000, 50), 0)
    assert abs(wide.std() / np.sqrt(2 / 2000) - 1) < 0.03
    assert abs(tall.std() / np.sqrt(2 / 50) - 1) < 0.03


def test_orthogonal() -> None:
    wide = init.orthogonal((20, 50), 0)
    np.testing.assert_allclose(wide @ wide.T, np.eye(20), atol=1e-12)
    tall = init.orthogonal((50, 20), 0, gain=2.0)
    np.testing.assert_allclose(tall.T @ tall, 4 * np.eye(20), atol=1e-12)
    # Haar-distributed: the diagonal of many square draws averages to zero.
    diagonals = [np.diag(init.orthogonal((4, 4), seed)) for seed in range(300)]
    assert abs(np.mean(diagonals)) < 0.06


def test_zeros() -> None:
    np.testing.assert_array_equal(init.zeros((3, 4), 0), np.zeros((3, 4)))


def test_gains() -> None:
    assert init.gain("relu") == pytest.approx(np.sqrt(2))
    assert init.gain("leaky_relu", slope=0.2) == pytest.approx(np.sqrt(2 / 1.04))
    assert init.gain("tanh") == pytest.approx(5 / 3)
    assert init.gain("sigmoid") == 1.0 and init.gain("linear") == 1.0
    with pytest.raises(InvalidArgumentError, match="activation: got 'swish'"):
        init.gain("swish")


def test_default_per_activation() -> None:
    assert init.default_for("relu") == init.default_for("leaky_relu") == "he"
    assert init.default_for("tanh") == init.default_for("sigmoid") == "xavier"
    assert init.default_for("linear") == "lecun"


def test_seeding_and_global_state() -> None:
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    np.testing.assert_array_equal(init.he((5, 6), 3), init.he((5, 6), 3))
    np.testing.assert_array_equal(init.he((5, 6), 3), init.he((5, 6), np.random.default_rng(3)))
    assert not np.array_equal(init.he((5, 6), 3), init.he((5, 6), 4))
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_get() -> None:
    assert init.get("he") is init.he
    W = init.get("orthogonal", gain=3.0)((4, 4), 0)
    np.testing.assert_allclose(W @ W.T, 9 * np.eye(4), atol=1e-12)
    with pytest.raises(InvalidArgumentError, match="^name: got 'kaiming', expected one of zeros"):
        init.get("kaiming")
    with pytest.raises(InvalidArgumentError, match="options: got \\['gain'\\]"):
        init.get("he", gain=2.0)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="shape: got"):
        init.he((0, 3), 0)
    with pytest.raises(InvalidArgumentError, match="shape: got"):
        init.he((2.5, 3), 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="rng: got NoneType"):
        init.he((2, 3), None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="scale: got -1"):
        init.normal((2, 3), 0, scale=-1)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "linear", "selu"])
def test_gains_match_torch_calculate_gain_where_it_has_them(name: str) -> None:
    import torch

    assert init.gain(name) == pytest.approx(torch.nn.init.calculate_gain(name), rel=1e-12)


def test_leaky_gain_matches_torch_for_its_slope() -> None:
    import torch

    assert init.gain("leaky_relu", slope=0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2), rel=1e-12
    )


@pytest.mark.parametrize("name", ["gelu", "silu", "elu", "softplus", "mish"])
def test_gains_torch_lacks_come_from_the_recommended_forward_scale(name: str) -> None:
    import torch
    import torch.nn.functional as F

    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        torch.nn.init.calculate_gain(name)  # type: ignore[arg-type]
    # The independent route: PyTorch's own function, integrated by recommend_scale through
    # autograd (gelu here is its tanh form, as in the NumPy table).
    functions = {
        "gelu": lambda z: F.gelu(z, approximate="tanh"),
        "silu": F.silu,
        "elu": F.elu,
        "softplus": F.softplus,
        "mish": F.mish,
    }
    expected = np.sqrt(recommend_scale(functions[name]).forward)
    assert init.gain(name) == pytest.approx(expected, rel=1e-9)
    assert 1.0 < init.gain(name) < 1.8


def test_gain_for_an_unknown_name_is_an_error_listing_the_names() -> None:
    with pytest.raises(InvalidArgumentError, match="expected one of relu, .*mish"):
        init.gain("swish")
    with pytest.raises(InvalidTypeError, match="activation: got 3"):
        init.gain(3)  # type: ignore[arg-type]
