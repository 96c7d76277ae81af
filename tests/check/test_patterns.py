"""The error-pattern rules: each pattern is named, in order, and only where every entry agrees."""

from __future__ import annotations

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe.check.bounds import OK, WRONG
from gradprobe.check.patterns import diagnose

Params = dict[str, np.ndarray]


def _name(j: int) -> str:
    return f"W[{j}]"


def _diagnose(
    analytic: np.ndarray,
    numerical: np.ndarray,
    values: np.ndarray | None = None,
    bad: np.ndarray | None = None,
    noise: np.ndarray | None = None,
    square_shape: tuple[int, int] | None = None,
) -> str:
    k = len(analytic)
    wrong = np.abs(analytic - numerical) > 1e-9 if bad is None else bad
    return diagnose(
        "W",
        analytic,
        numerical,
        np.zeros(k) if values is None else values,
        np.where(wrong, WRONG, OK).astype(np.int8),
        _name,
        np.zeros(k) if noise is None else noise,
        square_shape,
    )


@pytest.fixture
def numerical(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=16)


def test_an_all_zero_analytic_gradient_is_a_gradient_never_written(numerical: np.ndarray) -> None:
    text = _diagnose(np.zeros(16), numerical)
    assert text.startswith("the analytic gradient of W is all zero")
    assert "unused or detached" in text


def test_a_gradient_for_a_parameter_the_loss_ignores(numerical: np.ndarray) -> None:
    tiny = 1e-12 * numerical
    text = _diagnose(numerical, tiny, noise=np.full(16, 1e-10))
    assert text.startswith("the loss does not depend on W")
    # With no noise to hide in, the same tiny values are a (huge) constant factor instead.
    assert "× numerical" in _diagnose(numerical, tiny)


def test_a_sign_flip(numerical: np.ndarray) -> None:
    assert _diagnose(-numerical, numerical).startswith("sign flipped: analytic ≈ −1 × numerical")


@pytest.mark.parametrize("factor", [0.5, 2.0, 1 / 64, -3.0])
def test_a_constant_factor_is_measured(numerical: np.ndarray, factor: float) -> None:
    text = _diagnose(factor * numerical, numerical)
    assert text.startswith(f"analytic ≈ {factor:.3f} × numerical in every entry of W")
    assert "1/m, 2 or λ" in text


def test_the_factor_rule_comes_before_the_regularization_rule(numerical: np.ndarray) -> None:
    # values ∝ numerical: n − a = −n is also "c·W". The factor is the simpler explanation.
    text = _diagnose(2 * numerical, numerical, values=numerical)
    assert text.startswith("analytic ≈ 2.000 × numerical")


def test_a_missing_l2_term_is_recognised_with_its_scale(rng: np.random.Generator) -> None:
    values = rng.normal(size=16)
    numerical = rng.normal(size=16)
    analytic = numerical - 0.0375 * values
    text = _diagnose(analytic, numerical, values=values)
    assert text.startswith("numerical − analytic ≈ 0.0375 × W itself")
    assert "(λ/m)·W" in text


def test_a_transposed_square_gradient_needs_its_shape(numerical: np.ndarray) -> None:
    transposed = numerical.reshape(4, 4).T.ravel()
    text = _diagnose(transposed, numerical, square_shape=(4, 4))
    assert text.startswith("the analytic gradient of W is the transpose of the numerical one")
    assert "transpose" not in _diagnose(transposed, numerical)


@pytest.mark.parametrize("count", [1, 3, 5])
def test_a_few_wrong_entries_are_listed_by_name(numerical: np.ndarray, count: int) -> None:
    analytic = numerical.copy()
    wrong = [2, 7, 11, 12, 15][:count]
    analytic[wrong] += 1.0
    text = _diagnose(analytic, numerical)
    lead = "a single wrong entry" if count == 1 else f"{count} wrong entries"
    assert text.startswith(f"{lead} in W, every other entry matches: ")
    for j in wrong:
        assert f"W[{j}] (analytic {analytic[j]:.6g}, numerical {numerical[j]:.6g})" in text
    assert "indexing or in-place bug" in text


def test_many_wrong_entries_without_a_pattern_report_the_correlation(
    rng: np.random.Generator, numerical: np.ndarray
) -> None:
    analytic = numerical + rng.normal(size=16)
    text = _diagnose(analytic, numerical)
    correlation = np.corrcoef(analytic, numerical)[0, 1]
    assert text.startswith("16 of 16 checked entries of W disagree with no simple pattern")
    assert f"(correlation {correlation:.2f} " in text
    assert "derive it again term by term" in text


def test_every_entry_wrong_is_not_a_few_wrong_entries(rng: np.random.Generator) -> None:
    numerical = rng.normal(size=3)
    analytic = numerical + np.array([1.0, -0.3, 2.0])
    assert _diagnose(analytic, numerical).startswith("3 of 3 checked entries")


def test_noise_widens_what_counts_as_a_fit(rng: np.random.Generator, numerical: np.ndarray) -> None:
    # A doubled gradient measured through noise of 1e-2 per entry.
    analytic = 2 * numerical + 1e-2 * rng.normal(size=16)
    assert "no simple pattern" in _diagnose(analytic, numerical)
    text = _diagnose(analytic, numerical, noise=np.full(16, 2e-2))
    assert text.startswith("analytic ≈ ") and "× numerical in every entry of W" in text
    # The factor is the least-squares fit a·n / n·n, printed to three decimals.
    fitted = float(analytic @ numerical / (numerical @ numerical))
    assert text.split()[2] == f"{fitted:.3f}" and abs(fitted - 2) < 1e-2


def test_a_diagnosis_is_never_empty(rng: np.random.Generator) -> None:
    for _ in range(50):
        k = int(rng.integers(1, 10))
        analytic, numerical = rng.normal(size=k), rng.normal(size=k)
        bad = rng.random(k) < 0.5
        text = _diagnose(analytic, numerical, rng.normal(size=k), bad, np.zeros(k))
        assert "W" in text and len(text) > 40


class TestThroughTheChecker:
    """The rules as users meet them: planted bugs in real losses, diagnosed by check_gradients."""

    def test_transposed_weight_gradient(self, rng: np.random.Generator) -> None:
        W = rng.normal(size=(4, 4))
        X = rng.normal(size=(7, 4))

        def loss(p: Params) -> float:
            return float(np.sum(np.sin(X @ p["W"].T)))

        right = np.cos(X @ W.T).T @ X
        assert check_gradients(loss, {"W": W}, {"W": right}).passed
        report = check_gradients(loss, {"W": W}, {"W": right.T})
        assert report.wrong_parameters == ["W"]
        assert "transpose" in str(report.parameter("W").diagnosis)

    def test_missing_term_without_pattern(self, rng: np.random.Generator) -> None:
        w = rng.normal(size=8)

        def loss(p: Params) -> float:
            return float(np.sum(p["w"] ** 2) + np.sum(np.sin(3 * p["w"])))

        report = check_gradients(loss, {"w": w}, {"w": 2 * w})  # the cos term is missing
        assert report.wrong_parameters == ["w"]
        assert "term" in str(report.parameter("w").diagnosis)

    def test_unused_parameter_with_zero_gradient(self, rng: np.random.Generator) -> None:
        w = rng.normal(size=5)

        def loss(p: Params) -> float:
            return float(np.sum(p["w"] ** 3))

        report = check_gradients(loss, {"w": w}, {"w": np.zeros(5)})
        assert "all zero" in str(report.parameter("w").diagnosis)

    def test_sign_flip_is_diagnosed_through_float16_noise(self, rng: np.random.Generator) -> None:
        W = rng.normal(size=(3, 4))

        def loss(p: Params) -> np.float16:
            return np.float16(np.sum(np.sin(p["W"].astype(np.float16))))

        report = check_gradients(loss, {"W": W}, {"W": -np.cos(W)})
        assert report.wrong_parameters == ["W"]
        assert "sign flipped" in str(report.parameter("W").diagnosis)


class TestNoPatternBeyondWhatTheEntriesShow:
    """Issue 11, item 6: the factor rule needs the whole parameter; few entries claim little."""

    def test_a_single_one_percent_entry_is_not_a_constant_factor(
        self, numerical: np.ndarray
    ) -> None:
        analytic = numerical.copy()
        analytic[5] *= 1.01
        text = _diagnose(analytic, numerical, noise=np.full(16, 1e-12))
        assert text.startswith("a single wrong entry in W") and "W[5]" in text
        assert "constant factor" not in text

    def test_a_missing_l2_term_with_a_small_lambda_is_not_a_factor(
        self, rng: np.random.Generator, numerical: np.ndarray
    ) -> None:
        values = rng.normal(size=16)
        analytic = numerical - 1e-4 * values
        text = _diagnose(analytic, numerical, values=values, noise=np.full(16, 1e-12))
        assert text.startswith("numerical − analytic ≈ 0.0001 × W itself")

    def test_one_entry_shows_no_pattern(self) -> None:
        text = _diagnose(np.array([3.0]), np.array([1.5]))
        assert text.startswith("the only checked entry of W is off: analytic 3 = 2.000 ×")
        assert "one value shows no pattern" in text
        flipped = _diagnose(np.array([-1.5]), np.array([1.5]))
        assert flipped.startswith("sign flipped in the only checked entry of W")

    def test_two_entries_show_at_most_one_number(self) -> None:
        doubled = _diagnose(np.array([2.0, -4.0]), np.array([1.0, -2.0]))
        assert doubled.startswith("analytic ≈ 2.000 × numerical in every entry of W")
        assert doubled.endswith("two values show no more than that")
        one = _diagnose(np.array([2.0, -2.0]), np.array([1.0, -2.0]))
        assert one.startswith("a single wrong entry in W") and "W[0]" in one

    def test_one_entry_among_vanishing_ones_cannot_tell_entry_from_factor(self) -> None:
        # The other entries are too small for a factor 2 to show in them.
        numerical = np.array([1e-14, 0.0, 0.5, -1e-14])
        analytic = np.array([2e-14, 0.0, 1.0, -2e-14])
        text = _diagnose(analytic, numerical, noise=np.full(4, 1e-12))
        assert text.startswith("only W[2] of W is large enough to show the error")
        assert "single wrong entry" in text and "constant factor" in text

    def test_an_all_zero_gradient_that_is_only_the_l2_term(self, rng: np.random.Generator) -> None:
        values = rng.normal(size=16)
        text = _diagnose(np.zeros(16), 0.01 * values, values=values, noise=np.full(16, 1e-12))
        assert "all zero" in text and "regularization term" in text
