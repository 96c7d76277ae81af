"""The diagnose page's own figures: what each draws, from the diagnosis's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from gradprobe.check.checker import check_gradients
from gradprobe.diagnose.illustrations import StepErrors, Surface
from gradprobe.report.figures import check_figure, step_error_figure, surface_figure


def test_the_surface_figure_draws_both_panels_on_equal_axes() -> None:
    offsets = np.linspace(-1, 1, 11)
    a, b = np.meshgrid(offsets, offsets)
    surface = Surface(
        ("W1[0, 1]", "W1[0, 0]"), ("wide", "narrow"), offsets, 1e4 * a**2 + b**2, a**2 + b**2
    )
    figure = surface_figure(surface)
    left, right = figure.axes
    assert [axis.get_title() for axis in (left, right)] == ["raw inputs", "normalized inputs"]
    assert left.get_aspect() == right.get_aspect() == 1.0
    assert "wide" in left.get_xlabel() and "narrow" in left.get_ylabel()
    assert left.collections and right.collections  # contour sets drawn


def test_the_step_figure_marks_the_chosen_step_and_both_slopes() -> None:
    steps = np.logspace(-13, -1, 49)
    errors = StepErrors(
        "W1[0, 0]", steps, 1e-16 / steps + steps, 1e-16 / steps + steps**2, 6e-6, 0.5
    )
    figure = step_error_figure(errors)
    (axis,) = figure.axes
    assert axis.get_xscale() == axis.get_yscale() == "log"
    vertical = [line for line in axis.lines if np.allclose(line.get_xdata(), 6e-6)]
    assert vertical, "the chosen ε is marked"
    texts = [text.get_text() for text in axis.texts]
    assert "O(ε)" in texts and "O(ε²)" in texts


@pytest.mark.parametrize("factor", [2.0, 2.5])
def test_the_bands_figure_puts_each_parameter_in_its_band(factor: float) -> None:
    W = np.arange(1.0, 7.0).reshape(2, 3)
    report = check_gradients(
        lambda p: float(np.sum(p["W"] ** 2) + np.sum(p["b"] ** 2)),
        {"W": W, "b": np.ones(2)},
        {"W": factor * W, "b": 2 * np.ones(2)},
    )
    figure = check_figure([("check", report)])
    (axis,) = figure.axes
    points = axis.collections[0].get_offsets()
    ok, wrong = report.thresholds
    assert [tick.get_text() for tick in axis.get_xticklabels()] == ["W", "b"]
    assert (points[0, 1] > wrong) == (factor != 2.0)
    assert points[1, 1] < ok
