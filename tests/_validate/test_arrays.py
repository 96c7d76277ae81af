"""Arrays and sizes: rectangular and numeric, and small enough for this machine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from gradprobe import Normalizer
from gradprobe._validate import (
    as_array,
    as_feature_matrix,
    as_real_array,
    available_memory,
    check_fits,
    check_layer_sizes,
    check_magnitude,
    check_memory,
    check_shape,
    check_unique,
)
from gradprobe.errors import InvalidArgumentError, InvalidTypeError


@pytest.mark.parametrize("ragged", [[[1.0, 2.0], [3.0]], [1.0, [2.0]], [[[1.0]], [2.0]]])
def test_ragged_lists_are_refused_by_name(ragged: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="X: got .* not a rectangular array"):
        as_array(ragged, "X")
    with pytest.raises(InvalidArgumentError, match="rectangular"):
        as_feature_matrix(ragged)


def test_real_arrays_are_new_float64_arrays() -> None:
    given = np.array([1, 2, 3], dtype=np.int8)
    result = as_real_array(given, "x")
    assert result.dtype == np.float64 and result.tolist() == [1.0, 2.0, 3.0]
    assert not np.shares_memory(result, given)
    for bad in (["a"], [1j], np.array([None])):
        with pytest.raises(InvalidTypeError, match="x: got dtype"):
            as_real_array(bad, "x")


def test_available_memory_follows_an_address_space_limit() -> None:
    assert available_memory() > 2**20
    script = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
        from gradprobe._validate import available_memory
        print(available_memory())
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(run.stdout) == 3 * 2**30


def test_work_beyond_half_the_memory_names_the_limit() -> None:
    check_fits(available_memory() // 4, "width", 10, "the weights")
    with pytest.raises(InvalidArgumentError) as caught:
        check_fits(available_memory(), "width", 10**6, "the weights")
    message = str(caught.value)
    assert message.startswith("width: got 1000000, which needs about ")
    assert "half of this machine's memory" in message
    with pytest.raises(InvalidArgumentError, match="more than 1e\\+21 bytes"):
        check_fits(8 * 10**400, "width", 10**400, "the weights")


def test_memory_budgets_are_bounded_by_the_machine() -> None:
    assert check_memory(4096) == 4096
    with pytest.raises(InvalidArgumentError, match="memory: got 1.18e\\+21"):
        check_memory(2**70)
    with pytest.raises(InvalidArgumentError, match="too large for a float"):
        check_memory(10**400)


def test_layer_sizes_refuse_strings_bools_and_sizes_beyond_memory() -> None:
    assert check_layer_sizes(np.array([3, 4, 1])) == [3, 4, 1]
    for bad in ("23", [2, True], [2, np.inf], [2, 10**400]):
        with pytest.raises(InvalidArgumentError, match="layer_sizes: got"):
            check_layer_sizes(bad)
    with pytest.raises(InvalidArgumentError, match="at most 100,001"):
        check_layer_sizes([1] * 100_002)


def test_shapes_are_positive_integers_that_fit() -> None:
    assert check_shape(np.array([4, 3])) == (4, 3)
    assert check_shape((4.0, 3)) == (4, 3)
    for bad in ((), (0, 3), (4, 10**400), "43", (2, 2.5)):
        with pytest.raises(InvalidArgumentError, match="shape: got"):
            check_shape(bad)
    with pytest.raises(InvalidArgumentError, match="needs about"):
        check_shape((2**40, 2**40))


def test_magnitude_limit_depends_on_the_rows_and_names_the_column() -> None:
    X = np.zeros((100, 2))
    X[7, 1] = 1e300
    with pytest.raises(InvalidArgumentError) as caught:
        check_magnitude(X, "--data: a.csv", ["height", "weight"], first_line=2)
    assert "column 'weight' holds 1e+300 (line 9)" in str(caught.value)
    X[7, 1] = 1e150  # its square, summed over 100 rows, fits in float64
    check_magnitude(X, "X")


def test_huge_but_finite_features_give_the_reference_statistics() -> None:
    # Values near 1e150 overflow no sum; the statistics match scikit-learn's.
    X = np.random.default_rng(0).normal(size=(50, 3)) * np.array([1e150, 1.0, 1e-150])
    normalizer = Normalizer().fit(X)
    reference = StandardScaler().fit(X)
    np.testing.assert_allclose(normalizer.mean_, reference.mean_, rtol=1e-12)
    np.testing.assert_allclose(normalizer.std_, reference.scale_, rtol=1e-12)
    assert np.all(np.isfinite(normalizer.transform(X)))


def test_values_near_the_float_limit_are_refused_before_the_statistics_overflow() -> None:
    X = np.array([[1e308, 1.0], [-1e308, 2.0], [0.0, 3.0]])
    with pytest.raises(InvalidArgumentError, match="X: column 0 holds 1e\\+308"):
        Normalizer().fit(X)


def test_duplicate_names_are_refused() -> None:
    check_unique(["a", "b", "label"], "--data: f.csv")
    with pytest.raises(InvalidArgumentError, match="'a' appears twice \\(columns 1 and 3\\)"):
        check_unique(["a", "b", "a"], "--data: f.csv")
