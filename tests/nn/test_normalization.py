"""Normalizer: against scikit-learn's StandardScaler, and on the inputs that break naive code."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer as SklearnNormalizer
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import gradprobe
from gradprobe import Normalizer
from gradprobe.errors import (
    NonFiniteError,
    NotFittedError,
)
from gradprobe.nn.normalization import InputNormalizer


@pytest.fixture
def train_test(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    scales, offsets = np.array([1.0, 1e3, 1e-3, 7.0]), np.array([0.0, -50.0, 3.0, 1e4])
    return (
        rng.normal(size=(200, 4)) * scales + offsets,
        rng.normal(size=(50, 4)) * scales + offsets,
    )


def test_matches_standard_scaler(train_test: tuple[np.ndarray, np.ndarray]) -> None:
    X_train, X_test = train_test
    ours, theirs = Normalizer().fit(X_train), StandardScaler().fit(X_train)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.std_, np.sqrt(theirs.var_), rtol=1e-12)
    np.testing.assert_allclose(ours.transform(X_test), theirs.transform(X_test), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.std_, X_train.std(axis=0, ddof=0), rtol=1e-12)
    assert ours.n_features_in_ == 4 and ours.n_samples_seen_ == 200


def test_test_set_uses_training_statistics(train_test: tuple[np.ndarray, np.ndarray]) -> None:
    X_train, X_test = train_test
    normalizer = Normalizer().fit(X_train)
    np.testing.assert_allclose(
        normalizer.transform(X_test), (X_test - X_train.mean(0)) / X_train.std(0), atol=1e-12
    )
    assert not np.allclose(normalizer.transform(X_test).mean(axis=0), 0.0, atol=1e-3)


def test_scikit_learn_conventions(train_test: tuple[np.ndarray, np.ndarray]) -> None:
    X_train, _ = train_test
    normalizer = Normalizer()
    assert not hasattr(normalizer, "mean_")
    assert normalizer.fit(X_train) is normalizer
    np.testing.assert_array_equal(
        Normalizer().fit_transform(X_train), normalizer.transform(X_train)
    )
    np.testing.assert_allclose(
        normalizer.inverse_transform(normalizer.transform(X_train)), X_train, rtol=1e-12
    )


def test_constant_feature(rng: np.random.Generator) -> None:
    X = np.column_stack([rng.normal(size=50), np.full(50, 3.7), np.full(50, 1e9)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalizer = Normalizer().fit(X)
        out = normalizer.transform(X)
    np.testing.assert_array_equal(normalizer.constant_features_, [1, 2])
    np.testing.assert_array_equal(normalizer.scale_[1:], [1.0, 1.0])
    np.testing.assert_array_equal(normalizer.std_[1:], [0.0, 0.0])
    np.testing.assert_array_equal(out[:, 1:], 0.0)
    np.testing.assert_allclose(out, StandardScaler().fit_transform(X), atol=1e-12)


def test_large_offset_keeps_full_accuracy(rng: np.random.Generator) -> None:
    spread = rng.normal(size=(1000, 1))
    X = 1e9 + spread
    out = Normalizer().fit_transform(X)
    assert abs(out.mean()) < 1e-6
    assert abs(out.std() - 1) < 1e-6
    reference = (spread - spread.mean()) / spread.std()
    np.testing.assert_allclose(out, reference, atol=1e-6)
    # The one-pass formula E[x²] − E[x]² loses everything here; the Normalizer must not.
    naive = np.mean(X**2) - np.mean(X) ** 2
    assert abs(naive - spread.var()) > 0.1


def test_float32_input(rng: np.random.Generator) -> None:
    X64 = rng.normal(size=(5000, 2)) * [1.0, 3.0] + [1e4, -2e3]
    X32 = X64.astype(np.float32)
    normalizer = Normalizer().fit(X32)
    out = normalizer.transform(X32)
    assert out.dtype == np.float32
    exact = X32.astype(np.float64)
    np.testing.assert_allclose(normalizer.mean_, exact.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(normalizer.std_, exact.std(axis=0), rtol=1e-12)
    assert np.all(np.abs(out.astype(np.float64).mean(axis=0)) < 1e-5)


def test_input_is_not_modified(train_test: tuple[np.ndarray, np.ndarray]) -> None:
    X_train, X_test = train_test
    copies = X_train.copy(), X_test.copy()
    normalizer = Normalizer().fit(X_train)
    normalizer.transform(X_test)
    normalizer.inverse_transform(X_test)
    np.testing.assert_array_equal(X_train, copies[0])
    np.testing.assert_array_equal(X_test, copies[1])


def test_integer_input_becomes_float() -> None:
    out = Normalizer().fit_transform(np.array([[1, 2], [3, 2]]))
    np.testing.assert_array_equal(out, [[-1.0, 0.0], [1.0, 0.0]])


def test_nan_names_the_column() -> None:
    X = np.ones((4, 3))
    X[2, 1] = np.nan
    with pytest.raises(NonFiniteError, match="X: column 1 holds 1 non-finite value.*NaN at row 2"):
        Normalizer().fit(X)
    X[2, 1] = np.inf
    with pytest.raises(NonFiniteError, match="column 1 .*infinity"):
        Normalizer().fit(X)
    normalizer = Normalizer().fit(np.ones((4, 3)))
    with pytest.raises(NonFiniteError, match="column 1"):
        normalizer.transform(X)


def test_transform_before_fit() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        Normalizer().transform(np.ones((2, 2)))
    with pytest.raises(NotFittedError, match="not fitted"):
        Normalizer().inverse_transform(np.ones((2, 2)))


def test_wrong_number_of_features() -> None:
    normalizer = Normalizer().fit(np.ones((5, 3)))
    with pytest.raises(ValueError, match="X has 4 features, but InputNormalizer is expecting 3"):
        normalizer.transform(np.ones((5, 4)))


def test_one_dimensional_and_other_bad_input() -> None:
    with pytest.raises(ValueError, match="Reshape your data"):
        Normalizer().fit(np.ones(5))
    with pytest.raises(ValueError, match="0 sample"):
        Normalizer().fit(np.ones((0, 3)))
    with pytest.raises(ValueError, match="could not convert"):
        Normalizer().fit(np.array([["a", "b"]]))


# ------------------------------------------------------------------ scikit-learn's API


def test_the_new_name_and_the_old_are_one_estimator_unlike_sklearns_normalizer() -> None:
    assert gradprobe.Normalizer is gradprobe.InputNormalizer is InputNormalizer
    X = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    ours = InputNormalizer().fit_transform(X)
    rows = SklearnNormalizer().fit_transform(X)  # scikit-learn's scales rows to norm 1
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0)
    np.testing.assert_allclose(ours.mean(axis=0), 0.0, atol=1e-15)
    assert not np.allclose(ours, rows)


def test_passes_scikit_learns_estimator_checks() -> None:
    results = check_estimator(InputNormalizer(), on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert len(results) > 40 and failed == []


def test_clone_get_params_and_pipelines(train_test: tuple[np.ndarray, np.ndarray]) -> None:
    X_train, X_test = train_test
    fitted = InputNormalizer().fit(X_train)
    twin = clone(fitted)
    assert twin.get_params() == {} and not hasattr(twin, "mean_")
    y = (X_train[:, 0] > 0).astype(int)
    pipe = make_pipeline(InputNormalizer(), LogisticRegression()).fit(X_train, y)
    scaled = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y)
    np.testing.assert_allclose(pipe.predict_proba(X_test), scaled.predict_proba(X_test), rtol=1e-6)


def test_set_output_and_feature_names(train_test: tuple[np.ndarray, np.ndarray]) -> None:
    X_train, _ = train_test
    frame = pd.DataFrame(X_train, columns=["age", "income", "ratio", "height"])
    normalizer = InputNormalizer().set_output(transform="pandas").fit(frame)
    out = normalizer.transform(frame)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(frame.columns)
    assert list(normalizer.feature_names_in_) == list(frame.columns)
    assert list(normalizer.get_feature_names_out()) == list(frame.columns)
    np.testing.assert_allclose(out.to_numpy(), StandardScaler().fit_transform(X_train), atol=1e-12)


def test_pickles_and_round_trips(train_test: tuple[np.ndarray, np.ndarray]) -> None:
    X_train, X_test = train_test
    normalizer = InputNormalizer().fit(X_train)
    copy = pickle.loads(pickle.dumps(normalizer))
    np.testing.assert_array_equal(copy.transform(X_test), normalizer.transform(X_test))


def test_import_gradprobe_does_not_import_scikit_learn() -> None:
    code = "import sys, gradprobe; print('sklearn' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
