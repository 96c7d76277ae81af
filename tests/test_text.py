"""Words for counts: the noun agrees with the number, and large counts are grouped."""

from __future__ import annotations

import numpy as np
import pytest

import gradprobe
from gradprobe._text import MARKS, WIDTH, html_card, level_of, plural


@pytest.mark.parametrize(
    ("count", "noun", "expected"),
    [
        (1, "kink", "1 kink"),
        (0, "kink", "0 kinks"),
        (2, "value", "2 values"),
        (2_500, "value", "2,500 values"),
        (1_000_000, "loss evaluation", "1,000,000 loss evaluations"),
    ],
)
def test_plural_agrees_with_the_count(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun) == expected


def test_only_exactly_one_is_singular() -> None:
    # -1 and 0 are not "one" thing: the noun takes an s.
    assert plural(-1, "layer") == "-1 layers"
    singular = [count for count in range(-3, 4) if not plural(count, "x").endswith("xs")]
    assert singular == [1]


def test_the_count_reads_back_as_the_number() -> None:
    for count in (0, 7, 12_345, 9_876_543):
        number, _, noun = plural(count, "entry").partition(" ")
        assert int(number.replace(",", "")) == count
        assert noun.startswith("entry")


def test_width_is_the_column_count_the_text_tables_keep() -> None:
    import numpy as np

    from gradprobe import check_gradients

    assert WIDTH == 100
    # A long parameter name and a failing check: every line of the table stays within WIDTH.
    params = {"a_parameter_with_a_rather_long_name": np.linspace(-1.0, 1.0, 5)}
    report = check_gradients(
        lambda p: float(np.sum(np.sin(p["a_parameter_with_a_rather_long_name"]))),
        params,
        {"a_parameter_with_a_rather_long_name": np.zeros(5)},
    )
    assert not report.passed
    assert max(len(line) for line in str(report).splitlines()) <= WIDTH


# ------------------------------------------------------------- progress, views, layout


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
