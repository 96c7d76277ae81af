"""Datasets: shapes, seeded and stratified splits, no download, no global state."""

from __future__ import annotations

import numpy as np
import pytest

from gradprobe import datasets
from gradprobe.errors import InvalidArgumentError, InvalidTypeError


def test_breast_cancer() -> None:
    data = datasets.breast_cancer(seed=0)
    assert data.X_train.shape[1] == 30
    assert len(data.X_train) + len(data.X_test) == 569
    assert data.X_train.dtype == np.float64 and data.y_train.dtype == np.int64
    assert set(np.unique(data.y_train)) == {0, 1}
    # Stratified: the benign share (357 / 569) is kept in both parts.
    for labels in (data.y_train, data.y_test):
        assert abs(labels.mean() - 357 / 569) < 0.01
    # The scale spread that makes normalization pay.
    assert data.X_train.max(axis=0).max() / data.X_train.max(axis=0).min() > 1e4


def test_digits() -> None:
    data = datasets.digits(test_size=0.2, seed=0)
    assert data.X_train.shape[1] == 64 and len(data.X_train) + len(data.X_test) == 1797
    assert len(data.X_test) == 360
    assert sorted(np.unique(data.y_test).tolist()) == list(range(10))


@pytest.mark.parametrize("make", [datasets.circles, datasets.moons, datasets.spirals])
def test_synthetic_sets_are_seeded(make: object) -> None:
    first, again, other = make(seed=3), make(seed=3), make(seed=4)  # type: ignore[operator]
    np.testing.assert_array_equal(first.X_train, again.X_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.X_train, other.X_train)
    assert first.X_train.shape == (300, 2) and first.X_test.shape == (100, 2)


def test_generator_seed_accepted() -> None:
    a = datasets.moons(seed=np.random.default_rng(5))
    b = datasets.moons(seed=np.random.default_rng(5))
    np.testing.assert_array_equal(a.X_train, b.X_train)


def test_circles_geometry() -> None:
    data = datasets.circles(n_train=300, n_test=100, noise=0.0, factor=0.5, seed=0)
    radius = np.hypot(*data.X_train.T)
    np.testing.assert_allclose(radius[data.y_train == 0], 1.0)
    np.testing.assert_allclose(radius[data.y_train == 1], 0.5)
    assert np.bincount(data.y_train).tolist() == [150, 150]


def test_spirals_classes_balanced() -> None:
    data = datasets.spirals(n_train=120, n_test=30, n_classes=4, noise=0.0, seed=0)
    assert np.bincount(data.y_train).tolist() == [30] * 4
    assert np.all(np.hypot(*data.X_train.T) <= 1.0)


def test_global_state_untouched() -> None:
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    datasets.spirals(seed=1)
    datasets.circles(seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="test_size: got 1.5"):
        datasets.breast_cancer(test_size=1.5)
    with pytest.raises(InvalidArgumentError, match="n_train: got 1"):
        datasets.circles(n_train=1)
    with pytest.raises(InvalidArgumentError, match="noise: got -1"):
        datasets.moons(noise=-1)
    with pytest.raises(InvalidArgumentError, match="n_classes: got 1"):
        datasets.spirals(n_classes=1)
    with pytest.raises(InvalidTypeError, match="seed: got str"):
        datasets.circles(seed="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="factor"):
        datasets.circles(factor=1.0)


def test_feature_names_line_up_with_the_columns() -> None:
    from gradprobe import datasets

    assert len(datasets.feature_names("breast_cancer")) == datasets.breast_cancer().X_train.shape[1]
    assert datasets.feature_names("breast_cancer")[0] == "mean radius"
    assert len(datasets.feature_names("digits")) == 64
    assert datasets.feature_names("moons") == ["x0", "x1"]
    with pytest.raises(InvalidArgumentError, match="name: got 'iris'"):
        datasets.feature_names("iris")
