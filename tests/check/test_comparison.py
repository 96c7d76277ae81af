"""Comparison: the course notes' bands and ratio, the noise floor, and the one report builder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe._params import ParameterLayout
from gradprobe.check.comparison import (
    DEFAULT_THRESHOLDS,
    VERDICTS,
    assemble_report,
    relative_difference,
    rounding_noise,
    verdict_for,
)
from gradprobe.check.entries import GroupTest

Params = dict[str, np.ndarray]
UNIT = float(np.finfo(np.float64).eps)


# ---------------------------------------------------------------------------- bands


def test_the_course_notes_figures_fall_in_their_bands() -> None:
    assert [verdict_for(d) for d in (1e-7, 1e-5, 1e-3)] == ["ok", "suspicious", "wrong"]
    assert DEFAULT_THRESHOLDS == (1e-6, 1e-4)
    assert VERDICTS == ("ok", "suspicious", "wrong")


def test_band_edges_belong_to_the_worse_band() -> None:
    ok, suspicious = DEFAULT_THRESHOLDS
    assert verdict_for(np.nextafter(ok, 0)) == "ok"
    assert verdict_for(ok) == "suspicious"
    assert verdict_for(np.nextafter(suspicious, 0)) == "suspicious"
    assert verdict_for(suspicious) == "wrong"
    assert verdict_for(0.0) == "ok"


@pytest.mark.parametrize("difference", [float("nan"), float("inf"), 1.0])
def test_nan_and_huge_differences_are_wrong(difference: float) -> None:
    assert verdict_for(difference) == "wrong"


def test_thresholds_move_the_bands() -> None:
    assert verdict_for(1e-3, (1e-2, 1e-1)) == "ok"
    assert verdict_for(5e-2, (1e-2, 1e-1)) == "suspicious"
    assert verdict_for(1e-7, (1e-9, 1e-8)) == "wrong"


# --------------------------------------------------------------------------- the ratio


def test_relative_difference_is_the_course_notes_formula(rng: np.random.Generator) -> None:
    numerical, analytic = rng.normal(size=20), rng.normal(size=20)
    expected = np.sqrt(np.sum((numerical - analytic) ** 2)) / (
        np.sqrt(np.sum(numerical**2)) + np.sqrt(np.sum(analytic**2))
    )
    assert relative_difference(numerical, analytic) == pytest.approx(expected, rel=1e-14)
    assert relative_difference(numerical, analytic) == relative_difference(analytic, numerical)


@pytest.mark.parametrize(
    ("factor", "expected"), [(1.0, 0.0), (2.0, 1 / 3), (0.0, 1.0), (-1.0, 1.0), (1.001, 0.0005)]
)
def test_relative_difference_of_scaled_gradients(factor: float, expected: float) -> None:
    # ‖n − c·n‖ / (‖n‖ + |c|·‖n‖) = |1 − c| / (1 + |c|): a closed form for every c.
    n = np.array([0.3, -1.2, 2.0])
    assert relative_difference(n, factor * n) == pytest.approx(expected, rel=1e-3, abs=1e-15)


def test_zero_against_zero_is_no_difference() -> None:
    assert relative_difference(np.zeros(4), np.zeros(4)) == 0.0


def test_rounding_noise_is_four_units_of_the_loss_over_the_width() -> None:
    steps = np.array([1e-6, 1e-3])
    np.testing.assert_allclose(rounding_noise(10.0, steps, "central"), 4 * UNIT * 10 / (2 * steps))
    for method in ("forward", "backward"):
        np.testing.assert_allclose(rounding_noise(-10.0, steps, method), 4 * UNIT * 10 / steps)
    np.testing.assert_array_equal(rounding_noise(10.0, steps, "complex"), [0.0, 0.0])
    # A loss of exactly zero still has a (tiny, positive) floor.
    assert np.all(rounding_noise(0.0, steps, "central") > 0)


# ------------------------------------------------------------------------- the report


def _layout() -> ParameterLayout:
    return ParameterLayout.from_params({"W": np.zeros((3, 3)), "b": np.zeros(3)})


def test_a_planted_error_fails_its_parameter_only(rng: np.random.Generator) -> None:
    layout = _layout()
    numerical = rng.normal(size=12)
    analytic = numerical.copy()
    analytic[9:] *= 2.0  # b doubled
    report = assemble_report(
        layout,
        np.arange(12),
        analytic,
        numerical,
        theta=rng.normal(size=12),
        noise=np.zeros(12),
    )
    assert report.verdict == "wrong" and report.wrong_parameters == ["b"]
    assert report.difference == pytest.approx(relative_difference(numerical, analytic))
    w, b = report.parameters
    assert (w.verdict, w.difference, w.diagnosis) == ("ok", 0.0, None)
    assert b.difference == pytest.approx(1 / 3)
    assert b.diagnosis is not None and "2.000 × numerical" in b.diagnosis
    worst = int(np.argmax(np.abs(numerical[9:])))
    assert b.largest_error == pytest.approx(abs(numerical[9 + worst]))
    assert b.largest_error_at == f"b[{worst}]"
    assert report.mode == "full" and report.checked == report.total == 12


def test_the_same_numbers_pass_when_the_analytic_side_matches(rng: np.random.Generator) -> None:
    numerical = rng.normal(size=12)
    perturbed = numerical * (1 + 1e-9 * rng.normal(size=12))
    report = assemble_report(
        _layout(), np.arange(12), perturbed, numerical, theta=np.zeros(12), noise=np.zeros(12)
    )
    assert report.passed and report.difference < 1e-8
    assert all(row.diagnosis is None for row in report.parameters)


def test_a_sample_is_recorded_as_sampled_and_rows_count_their_values() -> None:
    layout = _layout()
    indices = np.array([0, 4, 8, 10])
    values = np.array([1.0, 2.0, 3.0, 4.0])
    report = assemble_report(
        layout, indices, values, values, theta=np.zeros(12), noise=np.zeros(4), steps=np.ones(4)
    )
    assert report.mode == "sampled" and report.sampled
    assert [row.checked for row in report.parameters] == [3, 1]
    assert report.checked == 4 and report.total == 12


def test_excused_kinks_count_as_matching_and_are_said() -> None:
    layout = ParameterLayout.from_params({"w": np.zeros(3)})
    analytic = np.array([1.0, 0.0, -2.0])
    numerical = np.array([1.0, 0.5, -2.0])  # entry 1 sits at a kink of |·|
    kink = np.array([False, True, False])
    report = assemble_report(
        layout,
        np.arange(3),
        analytic,
        numerical,
        theta=np.zeros(3),
        noise=np.zeros(3),
        kink=kink,
        excused=kink,
    )
    assert report.passed and report.kinks == 1 and report.difference == 0.0
    assert any("1 entries sit at a kink" in note and "1 of them" in note for note in report.notes)
    # The raw numerical value is kept in the table; only its relative error is zeroed.
    assert report.entries[1].numerical == 0.5 and report.entries[1].relative_error == 0.0
    unexcused = assemble_report(
        layout,
        np.arange(3),
        analytic,
        numerical,
        theta=np.zeros(3),
        noise=np.zeros(3),
        kink=kink,
        excused=np.zeros(3, dtype=bool),
    )
    assert unexcused.verdict == "wrong"


def test_errors_within_the_noise_do_not_fail_a_parameter() -> None:
    layout = ParameterLayout.from_params({"w": np.zeros(4)})
    numerical = np.array([1e-9, -2e-9, 1e-9, 3e-9])
    analytic = np.zeros(4) + 1e-10
    quiet = assemble_report(
        layout, np.arange(4), analytic, numerical, theta=np.zeros(4), noise=np.full(4, 1e-8)
    )
    assert quiet.passed and any("rounding noise" in note for note in quiet.notes)
    loud = assemble_report(
        layout, np.arange(4), analytic, numerical, theta=np.zeros(4), noise=np.full(4, 1e-12)
    )
    assert loud.verdict == "wrong" and not any("rounding noise" in n for n in loud.notes)


def test_low_precision_parameters_are_said_to_be_promoted() -> None:
    layout = ParameterLayout.from_params({"w": np.zeros(2, np.float32), "v": np.zeros(2)})
    report = assemble_report(
        layout, np.arange(4), np.ones(4), np.ones(4), theta=np.zeros(4), noise=np.zeros(4)
    )
    assert report.dtype == "float32, float64"
    assert "float32 parameters promoted to float64 for the check" in report.notes


def test_group_tests_give_rows_to_parameters_checked_only_as_a_whole() -> None:
    layout = _layout()
    group = GroupTest("W", 0, 9, 0, (1.0, -2.0), (1.0 + 1e-9, -2.0), 1e-6, False, False)
    report = assemble_report(
        layout,
        np.array([10]),
        np.array([4.0]),
        np.array([2.0]),
        theta=np.zeros(12),
        noise=np.zeros(1),
        mode="localize",
        groups=[group],
    )
    assert [row.name for row in report.parameters] == ["W", "b"]
    w, b = report.parameters
    assert (w.checked, w.verdict, w.largest_error_at) == (0, "ok", "random-sign direction")
    assert w.difference == pytest.approx(group.difference)
    assert report.difference == max(w.difference, b.difference) and report.verdict == "wrong"
    assert report.groups == (group,) and report.mode == "localize"


def test_the_report_records_how_it_was_made() -> None:
    layout = ParameterLayout.from_params({"w": np.zeros(2)})
    report = assemble_report(
        layout,
        np.arange(2),
        np.ones(2),
        np.ones(2),
        theta=np.zeros(2),
        noise=np.zeros(2),
        method="forward",
        eps=1e-5,
        steps=np.array([1e-5, 3e-5]),
        evaluations=7,
        seconds=0.25,
        notes=["prepared by the caller"],
        thresholds=(1e-3, 1e-2),
    )
    assert (report.method, report.eps, report.steps) == ("forward", 1e-5, (1e-5, 3e-5))
    assert (report.evaluations, report.seconds, report.thresholds) == (7, 0.25, (1e-3, 1e-2))
    assert report.notes[0] == "prepared by the caller"
    json.dumps(report.to_dict())


class TestNoiseFloor:
    def test_converged_gradient_at_the_noise_floor_is_not_wrong(self) -> None:
        # Near a minimum, gradients (2e-9) sit below the rounding noise of the difference
        # quotient; the course notes' ratio alone would read ~1 ("wrong").
        target = np.linspace(-1, 1, 6)
        w = target + 1e-9

        def loss(p: Params) -> float:
            return float(1e3 + np.sum((p["w"] - target) ** 2))

        report = check_gradients(loss, {"w": w}, {"w": 2 * (w - target)})
        assert report.difference > 1e-4  # the raw ratio is dominated by rounding
        assert report.verdict == "ok"
        # ... but a real error at the same point is still caught.
        assert check_gradients(loss, {"w": w}, {"w": 2 * (w - target) + 1e-3}).verdict == "wrong"

    def test_large_constant_in_the_loss_does_not_hide_a_wrong_gradient(self) -> None:
        p = np.array([1e-5, 2e-5, -1e-5])
        report = check_gradients(lambda v: float(1e5 + np.sum(v**2)), p, np.zeros(3))
        assert report.verdict == "wrong"
        assert check_gradients(lambda v: float(1e5 + np.sum(v**2)), p, 2 * p).verdict == "ok"

    def test_noise_floor_relief_is_said(self) -> None:
        target = np.linspace(-1, 1, 6)
        w = target + 1e-9

        def loss(p: Params) -> float:
            return float(1e3 + np.sum((p["w"] - target) ** 2))

        report = check_gradients(loss, {"w": w}, {"w": 2 * (w - target)})
        assert report.verdict == "ok"
        assert any("rounding noise" in note for note in report.notes)
