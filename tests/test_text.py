"""Shared words and the notebook card every result type shows."""

from __future__ import annotations

import numpy as np

import gradprobe
from gradprobe._text import MARKS, html_card, level_of, plural


def test_levels_and_marks() -> None:
    assert [level_of(v) for v in ("ok", "healthy", "suspicious", "vanishing", "wrong")] == [
        "ok",
        "ok",
        "warn",
        "warn",
        "bad",
    ]
    assert MARKS == {"ok": "✓", "warn": "!", "bad": "✗"}
    assert plural(1, "epoch") == "1 epoch" and plural(3, "epoch") == "3 epochs"


def test_the_card_escapes_everything() -> None:
    card = html_card("<t>", "warn", ["<a>"], ["<h>"], [["<c>"]])
    assert "<t>" not in card and "&lt;t&gt;" in card and "&lt;c&gt;" in card


def test_every_result_type_has_a_short_repr_and_a_notebook_view() -> None:
    net = gradprobe.MLP([4, 6, 1], seed=0)
    X = np.random.default_rng(0).normal(size=(20, 4))
    y = (X[:, 0] > 0).astype(int)
    history = net.fit(X, y, epochs=300, lr=0.05)
    results = [
        history,
        gradprobe.check_model(net, X, y),
        gradprobe.propagation(net, X),
        gradprobe.depth_sweep(6, 8),
        gradprobe.recommend_scale("tanh"),
        gradprobe.deep_linear(1.5, 20),
    ]
    for result in results:
        text = repr(result)
        assert "\n" not in text and len(text) < 250, text
        assert text.startswith(type(result).__name__ + "(")
        assert result._repr_html_().startswith("<div")
    assert "0.7" not in repr(history) or len(repr(history)) < 120  # not every loss
    assert str(history.epochs) in repr(history)
