"""Every argument check: the working value back, or an error naming argument, got and expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradprobe._validate import (
    as_feature_matrix,
    check_count,
    check_fraction,
    check_layer_sizes,
    check_memory,
    check_positive,
    check_rate,
    check_sample,
    check_seed,
    check_thresholds,
    check_tolerance,
)
from gradprobe.errors import (
    GradprobeError,
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteError,
    ShapeMismatchError,
)


def _refused(call: Any, error: type[Exception], *fragments: str) -> str:
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert isinstance(caught.value, GradprobeError)
    for fragment in fragments:
        assert fragment in message, message
    return message


# ------------------------------------------------------------------------ thresholds


@pytest.mark.parametrize(
    ("given", "expected"),
    [([1e-6, 1e-4], (1e-6, 1e-4)), ((1, 1), (1.0, 1.0)), (np.array([1e-3, 0.5]), (1e-3, 0.5))],
)
def test_thresholds_come_back_as_two_floats(given: Any, expected: tuple[float, float]) -> None:
    result = check_thresholds(given)
    assert result == expected
    assert all(type(value) is float for value in result)


@pytest.mark.parametrize("given", [None, 1e-6, "ab", [1e-6], [1e-6, 1e-4, 1e-2], ["x", 1]])
def test_thresholds_that_are_not_two_numbers(given: Any) -> None:
    _refused(
        lambda: check_thresholds(given), InvalidArgumentError, f"thresholds: got {given!r}", "two"
    )


@pytest.mark.parametrize("given", [(1e-2, 1e-3), (0, 1e-4), (-1, 1), (1e-6, np.inf), (np.nan, 1)])
def test_thresholds_out_of_order_or_range(given: Any) -> None:
    _refused(lambda: check_thresholds(given), InvalidArgumentError, "0 < ok_below <= suspicious")


# ---------------------------------------------------------------- counts and samples


def test_sample_is_none_or_a_positive_int() -> None:
    assert check_sample(None) is None
    assert check_sample(np.int64(7)) == 7 and type(check_sample(np.int64(7))) is int
    _refused(lambda: check_sample(0), InvalidArgumentError, "sample: got 0", "at least 1")
    _refused(lambda: check_sample(2.0), InvalidTypeError, "sample: got float")
    _refused(lambda: check_sample(True), InvalidTypeError, "sample: got bool")


@pytest.mark.parametrize("argument", ["depth", "width", "batch_size"])
def test_count_names_the_argument(argument: str) -> None:
    assert check_count(np.int32(3), argument) == 3
    _refused(lambda: check_count(0, argument), InvalidArgumentError, f"{argument}: got 0", ">= 1")
    _refused(lambda: check_count(-5, argument), InvalidArgumentError, f"{argument}: got -5")
    _refused(lambda: check_count(3.0, argument), InvalidTypeError, f"{argument}: got float")
    _refused(lambda: check_count(False, argument), InvalidTypeError, f"{argument}: got bool")


def test_seed_is_a_non_negative_int_or_a_generator() -> None:
    generator = np.random.default_rng(1)
    assert check_seed(generator) is generator
    assert check_seed(0) == 0 and check_seed(np.uint8(9)) == 9
    _refused(lambda: check_seed(-1), InvalidArgumentError, "seed: got -1", "non-negative")
    _refused(lambda: check_seed("1"), InvalidTypeError, "seed: got str", "Generator")
    _refused(lambda: check_seed(np.random.RandomState(0)), InvalidTypeError, "RandomState")


def test_memory_is_a_positive_number_of_bytes() -> None:
    assert check_memory(256e6) == 256_000_000
    assert check_memory(np.int64(4096)) == 4096
    _refused(lambda: check_memory("1GB"), InvalidTypeError, "memory: got str", "256e6")
    _refused(lambda: check_memory(True), InvalidTypeError, "memory: got bool")
    for bad in (0, 0.5, -1, float("inf"), float("nan")):
        _refused(lambda bad=bad: check_memory(bad), InvalidArgumentError, "memory: got")


# --------------------------------------------------------------------- real numbers


def test_tolerance_is_a_finite_factor_above_one() -> None:
    assert check_tolerance(100) == 100.0 and check_tolerance(np.float32(1.5)) == 1.5
    for bad in (1, 0.5, np.inf, np.nan, "100", True):
        _refused(
            lambda bad=bad: check_tolerance(bad), InvalidArgumentError, "tolerance: got", "> 1"
        )


def test_positive_refuses_zero_infinity_and_non_numbers() -> None:
    assert check_positive(np.float32(0.25), "lr") == 0.25
    for bad in (0, -1e-3, np.inf, np.nan):
        _refused(
            lambda bad=bad: check_positive(bad, "lr"), InvalidArgumentError, "lr: got", "positive"
        )
    _refused(lambda: check_positive("0.1", "lr"), InvalidTypeError, "lr: got str")  # type: ignore[arg-type]


def test_rate_is_in_zero_one() -> None:
    assert check_rate(0, "beta") == 0.0
    assert check_rate(0.9, "beta") == 0.9
    _refused(lambda: check_rate(1.0, "beta"), InvalidArgumentError, "beta: got 1.0", "[0, 1)")
    _refused(lambda: check_rate(-0.5, "beta2"), InvalidArgumentError, "beta2: got -0.5")


@pytest.mark.parametrize(("upper", "shown"), [(1.0, "in [0, 1)"), (np.inf, ">= 0")])
def test_fraction_words_its_range(upper: float, shown: str) -> None:
    assert check_fraction(0, "dropout", upper) == 0.0
    assert check_fraction(np.float64(0.5), "dropout", upper) == 0.5
    message = _refused(
        lambda: check_fraction(-0.1, "dropout", upper), InvalidArgumentError, "dropout: got -0.1"
    )
    assert message.endswith(f"expected a number {shown}")
    _refused(lambda: check_fraction(np.nan, "l2", upper), InvalidArgumentError, "l2: got nan")
    _refused(lambda: check_fraction("0", "l2", upper), InvalidTypeError, "l2: got str")  # type: ignore[arg-type]


def test_fraction_excludes_its_upper_end() -> None:
    _refused(lambda: check_fraction(1.0, "dropout", 1.0), InvalidArgumentError, "in [0, 1)")
    _refused(lambda: check_fraction(np.inf, "l2", np.inf), InvalidArgumentError, ">= 0")


# --------------------------------------------------------------------- layer sizes


def test_layer_sizes_come_back_as_ints() -> None:
    assert check_layer_sizes([2, 10, 5, 1]) == [2, 10, 5, 1]
    assert check_layer_sizes((np.int64(3), 4.0)) == [3, 4]


@pytest.mark.parametrize("given", [[3], [], [2, 0], [2, -1], [2, 2.5], ["a", 2], None, 5])
def test_layer_sizes_refused(given: Any) -> None:
    _refused(
        lambda: check_layer_sizes(given),
        InvalidArgumentError,
        f"layer_sizes: got {given!r}",
        "at least two positive integers",
    )


# ------------------------------------------------------------------ feature matrix


def test_float_matrices_pass_through_and_integers_become_float64() -> None:
    X = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    assert as_feature_matrix(X) is X  # no copy: callers must not write into it
    ints = as_feature_matrix([[1, 2], [3, 4]])
    assert ints.dtype == np.float64 and ints.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert as_feature_matrix(np.array([[True], [False]])).dtype == np.float64


def test_non_real_dtypes_are_type_errors() -> None:
    _refused(lambda: as_feature_matrix(np.ones((2, 2), complex)), InvalidTypeError, "complex128")
    _refused(lambda: as_feature_matrix([["a", "b"]], "X_test"), InvalidTypeError, "X_test: got")


def test_wrong_dimensions_say_how_to_reshape() -> None:
    message = _refused(lambda: as_feature_matrix(np.ones(4)), InvalidArgumentError, "1-D array")
    assert "X.reshape(-1, 1)" in message
    message = _refused(lambda: as_feature_matrix(np.ones((2, 2, 2))), InvalidArgumentError, "3-D")
    assert "reshape" not in message
    _refused(lambda: as_feature_matrix(np.ones((0, 3))), InvalidArgumentError, "at least one")


def test_column_count_and_the_transposed_hint() -> None:
    message = _refused(
        lambda: as_feature_matrix(np.ones((5, 3)), n_features=4),
        ShapeMismatchError,
        "X: got 3 features (shape (5, 3)), expected 4",
    )
    assert "transposed" not in message
    # (n_x, m) as the course writes it: the rows match the expected feature count.
    _refused(lambda: as_feature_matrix(np.ones((4, 30)), n_features=4), ShapeMismatchError, "X.T")


def test_non_finite_values_are_located_like_numpy_finds_them(rng: np.random.Generator) -> None:
    X = rng.normal(size=(20, 6))
    X[[4, 9, 13], 3] = np.inf
    X[11, 3] = np.nan
    X[15, 5] = np.nan
    bad_columns = np.flatnonzero(~np.isfinite(X).all(axis=0))
    first_row = int(np.argmax(~np.isfinite(X[:, bad_columns[0]])))
    message = _refused(lambda: as_feature_matrix(X), NonFiniteError, "X: column 3 holds 4")
    assert f"the first infinity at row {first_row}" in message and first_row == 4
    X[4, 3] = np.nan
    _refused(lambda: as_feature_matrix(X), NonFiniteError, "the first NaN at row 4")
