"""Words for counts: the noun agrees with the number, and large counts are grouped."""

from __future__ import annotations

import pytest

from gradprobe._text import WIDTH, plural


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
