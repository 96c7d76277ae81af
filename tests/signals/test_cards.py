"""The signal reports' one-line reprs and notebook cards."""

from __future__ import annotations

import numpy as np

from gradprobe import MLP, depth_sweep, propagation


def test_a_propagation_report_shows_one_line_and_a_card_row_per_layer() -> None:
    report = propagation(MLP([4, 8, 8, 1], seed=0), np.random.default_rng(0).normal(size=(16, 4)))
    text = repr(report)
    assert "\n" not in text and text.startswith("PropagationReport(depth=3, activation='relu'")
    card = report._repr_html_()
    assert card.count("<tr>") == 1 + report.depth and report.summary.split(":")[0] in card


def test_a_sweep_card_names_the_healthy_initializations() -> None:
    sweep = depth_sweep(8, 16, inits=["zeros", "he"])
    card = sweep._repr_html_()
    assert "healthy: he" in card and card.count("<tr>") == 3
    assert repr(sweep).startswith("DepthSweep(depth=8, width=16") and "\n" not in repr(sweep)
