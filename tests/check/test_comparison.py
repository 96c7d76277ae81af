"""Comparison: the course notes' bands and ratio, rows from entries, and the one report builder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe._params import ParameterLayout
from gradprobe.check.bounds import INCONCLUSIVE, UNCLEAR, judge
from gradprobe.check.comparison import (
    DEFAULT_THRESHOLDS,
    VERDICTS,
    Judged,
    assemble_report,
    relative_difference,
    verdict_for,
)
from gradprobe.check.entries import GroupTest

Params = dict[str, np.ndarray]
UNIT = float(np.finfo(np.float64).eps)


# ---------------------------------------------------------------------------- bands


def test_the_course_notes_figures_fall_in_their_bands() -> None:
    assert [verdict_for(d) for d in (1e-7, 1e-5, 1e-3)] == ["ok", "suspicious", "wrong"]
    assert DEFAULT_THRESHOLDS == (1e-6, 1e-4)
    assert VERDICTS == ("ok", "inconclusive", "suspicious", "wrong")


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


# ------------------------------------------------------------------------- the report


def _layout() -> ParameterLayout:
    return ParameterLayout.from_params({"W": np.zeros((3, 3)), "b": np.zeros(3)})


def judged(
    analytic: np.ndarray,
    numerical: np.ndarray,
    bound: np.ndarray | float = 1e-12,
    indices: np.ndarray | None = None,
    kink: np.ndarray | None = None,
    excused: np.ndarray | None = None,
) -> Judged:
    """Entries judged against ``bound`` as a check would (unclear ones inconclusive)."""
    count = len(analytic)
    bound = np.broadcast_to(np.asarray(bound, dtype=float), (count,)).copy()
    excused = np.zeros(count, bool) if excused is None else excused
    codes, significance = judge(analytic, numerical, bound, DEFAULT_THRESHOLDS)
    codes = np.where(excused, 0, np.where(codes == UNCLEAR, INCONCLUSIVE, codes)).astype(np.int8)
    return Judged(
        indices=np.arange(count) if indices is None else indices,
        analytic=analytic,
        numerical=numerical,
        estimate=numerical,
        bound=bound,
        significance=significance,
        codes=codes,
        kink=np.zeros(count, bool) if kink is None else kink,
        excused=excused,
        at_theta=np.zeros(count, bool) if kink is None else kink,
    )


def test_a_planted_error_fails_its_parameter_only(rng: np.random.Generator) -> None:
    layout = _layout()
    numerical = rng.normal(size=12)
    analytic = numerical.copy()
    analytic[9:] *= 2.0  # b doubled
    report = assemble_report(layout, judged(analytic, numerical), theta=rng.normal(size=12))
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
    report = assemble_report(_layout(), judged(perturbed, numerical), theta=np.zeros(12))
    assert report.passed and report.difference < 1e-8
    assert all(row.diagnosis is None for row in report.parameters)


def test_a_sample_is_recorded_as_sampled_and_rows_count_their_values() -> None:
    layout = _layout()
    indices = np.array([0, 4, 8, 10])
    values = np.array([1.0, 2.0, 3.0, 4.0])
    report = assemble_report(
        layout, judged(values, values, indices=indices), theta=np.zeros(12), steps=np.ones(4)
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
        layout, judged(analytic, numerical, kink=kink, excused=kink), theta=np.zeros(3)
    )
    assert report.passed and report.kinks == 1 and report.difference == 0.0
    assert any("1 entries sit at a kink" in note and "1 of them" in note for note in report.notes)
    # The raw numerical value is kept in the table; only its relative error is zeroed.
    assert report.entries[1].numerical == 0.5 and report.entries[1].relative_error == 0.0
    unexcused = assemble_report(layout, judged(analytic, numerical, kink=kink), theta=np.zeros(3))
    assert unexcused.verdict == "wrong"


def test_errors_within_their_bounds_do_not_fail_a_parameter() -> None:
    layout = ParameterLayout.from_params({"w": np.zeros(4)})
    numerical = np.array([1e-9, -2e-9, 1e-9, 3e-9])
    analytic = np.zeros(4) + 1e-10
    quiet = assemble_report(layout, judged(analytic, numerical, 1e-8), theta=np.zeros(4))
    assert quiet.passed and any("error bound" in note for note in quiet.notes)
    loud = assemble_report(layout, judged(analytic, numerical, 1e-12), theta=np.zeros(4))
    assert loud.verdict == "wrong" and not any("error bound" in n for n in loud.notes)


def test_the_verdict_is_never_better_than_the_worst_row() -> None:
    # A tiny bias planted x2 next to large weights: the overall difference is 1e-8 ("ok"
    # by the notes' bands), but the bias row is wrong, and so is the check.
    layout = _layout()
    numerical = np.concatenate([np.linspace(1, 2, 9), np.full(3, 1e-7)])
    analytic = numerical.copy()
    analytic[9:] *= 2
    report = assemble_report(layout, judged(analytic, numerical, 1e-12), theta=np.zeros(12))
    assert verdict_for(report.difference) == "ok"
    assert report.parameter("b").verdict == "wrong"
    assert report.verdict == "wrong" and not report.passed


def test_inconclusive_rows_are_neither_ok_nor_wrong() -> None:
    layout = _layout()
    numerical = np.linspace(1, 2, 12)
    analytic = numerical.copy()
    analytic[10] += 2e-3  # two bounds off: cannot be told
    report = assemble_report(
        layout, judged(analytic, numerical, 1e-3), theta=np.zeros(12), advice=["try this"]
    )
    assert report.verdict == "inconclusive" and not report.passed
    assert report.wrong_parameters == [] and report.inconclusive_parameters == ["b"]
    assert report.parameter("b").inconclusive == 1 and report.parameter("b").diagnosis is None
    assert report.advice == ("try this",) and "what to try" in str(report)


def test_low_precision_parameters_are_said_to_be_promoted() -> None:
    layout = ParameterLayout.from_params({"w": np.zeros(2, np.float32), "v": np.zeros(2)})
    report = assemble_report(layout, judged(np.ones(4), np.ones(4)), theta=np.zeros(4))
    assert report.dtype == "float32, float64"
    assert "float32 parameters promoted to float64 for the check" in report.notes


def test_group_tests_give_rows_to_parameters_checked_only_as_a_whole() -> None:
    layout = _layout()
    group = GroupTest("W", 0, 9, 0, (1.0, -2.0), (1.0 + 1e-9, -2.0), 1e-6, False, False)
    report = assemble_report(
        layout,
        judged(np.array([4.0]), np.array([2.0]), indices=np.array([10])),
        theta=np.zeros(12),
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
        judged(np.ones(2), np.ones(2)),
        theta=np.zeros(2),
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
        assert any("rounding noise" in note and "error bound" in note for note in report.notes)
