"""The check report's own views: summary, partial flag, short repr and notebook HTML."""

from __future__ import annotations

import numpy as np

from gradprobe.check.checker import check_gradients


def _check(factor: float):  # type: ignore[no-untyped-def]
    W = np.arange(1.0, 1001.0).reshape(50, 20) / 100
    return check_gradients(lambda p: float(np.sum(p["W"] ** 2)), {"W": W}, {"W": factor * W})


def test_repr_is_one_short_line_however_large_the_check() -> None:
    text = repr(_check(2.0))
    assert "\n" not in text and len(text) < 200
    assert text.startswith("GradCheckReport(verdict='ok'") and "total=1000" in text


def test_notebook_view_shows_the_verdict_mark_and_rows() -> None:
    good, bad = _check(2.0)._repr_html_(), _check(3.0)._repr_html_()
    assert "✓" in good and "✗" not in good
    assert "✗" in bad and "<td" in bad and ">wrong<" in bad
    assert "#1e7f46" in good and "#b42318" in bad  # colours differ with the level


def test_summary_names_the_worst_entries_of_a_failing_check() -> None:
    lines = _check(3.0).summary()
    assert lines[0].startswith("WRONG, relative difference")
    assert lines[2].startswith("Worst entries: W[")
    assert not _check(3.0).partial
