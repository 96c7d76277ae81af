"""The parts of a check's report: entries named on demand, parameter rows, group tests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradprobe._params import ParameterLayout
from gradprobe.check.entries import Entry, EntryTable, GroupTest, ParameterResult


@pytest.fixture
def table() -> EntryTable:
    layout = ParameterLayout.from_params(
        {"W1": np.zeros((3, 4)), "b1": np.zeros(3), "s": np.zeros(())}
    )
    indices = np.array([0, 5, 11, 13, 15])
    analytic = np.array([1.0, 2.0, -1.0, 0.5, 3.0])
    numerical = analytic + np.array([0.0, 0.5, 0.0, -0.25, 0.0])
    relative = np.abs(analytic - numerical) / (np.abs(analytic) + np.abs(numerical))
    kink = np.array([False, False, True, False, False])
    bound = np.array([0.1, 0.1, 0.1, 0.01, 0.1])
    significance = np.abs(analytic - numerical) / bound
    codes = np.array([0, 3, 0, 3, 0], dtype=np.int8)
    return EntryTable(
        layout, indices, analytic, numerical, relative, kink, numerical, bound, significance, codes
    )


def test_entries_are_named_like_numpy_indexes_them(table: EntryTable) -> None:
    names = [table.entry(position).name for position in range(len(table))]
    assert names == ["W1[0, 0]", "W1[1, 1]", "W1[2, 3]", "b1[1]", "s"]
    for position, flat in enumerate(table.indices.tolist()):
        entry = table.entry(position)
        if entry.parameter == "W1":
            assert entry.index == tuple(int(i) for i in np.unravel_index(flat, (3, 4)))
    assert table.entry(4).index == () and table.entry(4).parameter == "s"


def test_an_entry_carries_its_numbers(table: EntryTable) -> None:
    entry = table.entry(1)
    assert isinstance(entry, Entry)
    assert entry.analytic == float(table.analytic[1])
    assert entry.numerical == float(table.numerical[1])
    assert entry.error == pytest.approx(0.5)
    assert entry.relative_error == float(table.relative_error[1])
    assert table.entry(2).kink and not entry.kink
    assert type(entry.analytic) is float and type(entry.kink) is bool
    assert (entry.estimate, entry.bound, entry.verdict) == (2.5, 0.1, "wrong")
    assert entry.significance == pytest.approx(5.0)


def test_ranked_entries_are_worst_by_error_over_bound_and_stable(table: EntryTable) -> None:
    order = [entry.name for entry in table.ranked(5)]
    # b1[1]: 0.25 over a bound of 0.01 = 25 before W1[1, 1]: 0.5 over 0.1 = 5, although
    # by relative error alone the order would be the same and by error the reverse.
    assert order[:2] == ["b1[1]", "W1[1, 1]"]
    # Ties (the three exact entries) keep θ order.
    assert order[2:] == ["W1[0, 0]", "W1[2, 3]", "s"]
    assert [e.name for e in table.ranked(1)] == ["b1[1]"]
    assert table.ranked(0) == [] and table.ranked(-3) == []
    assert len(table.ranked(100)) == 5


def test_the_only_wrong_entry_ranks_first_among_rounding_quanta() -> None:
    # The case: vanishing gradients whose numerical values are rounding quanta
    # have relative errors near 1, yet sit within their bounds; the one 10 % error ranks
    # first because it is far beyond its own.
    layout = ParameterLayout.from_params({"w": np.zeros(294)})
    analytic = np.full(294, 1e-13)
    numerical = analytic + 2e-13 * np.sign(np.sin(np.arange(294.0)))
    analytic[200], numerical[200] = 1.1, 1.0
    bound = np.full(294, 1e-12)
    relative = np.abs(analytic - numerical) / (np.abs(analytic) + np.abs(numerical))
    codes = np.where(np.arange(294) == 200, 3, 0).astype(np.int8)
    table = EntryTable(
        layout, np.arange(294), analytic, numerical, relative, np.zeros(294, bool),
        numerical, bound, np.abs(analytic - numerical) / bound, codes,
    )  # fmt: skip
    assert int(np.argsort(-relative, kind="stable")[0]) != 200
    assert table.ranked(1)[0].name == "w[200]"


def test_entries_and_rows_are_json(table: EntryTable) -> None:
    data = json.loads(json.dumps(table.entry(0).to_dict()))
    assert data["name"] == "W1[0, 0]" and data["index"] == [0, 0] and data["kink"] is False
    assert data["verdict"] == "ok" and data["bound"] == 0.1
    infinite = json.loads(json.dumps(Entry("x", "x", (), 1.0, 1.0, 0.0, 0.0, False).to_dict()))
    assert infinite["bound"] is None and infinite["estimate"] is None  # strict JSON
    row = ParameterResult("W1", (3, 4), 12, 1e-3, "wrong", 0.5, "W1[1, 1]", 2, "a diagnosis")
    data = json.loads(json.dumps(row.to_dict()))
    assert data == {
        "name": "W1",
        "shape": [3, 4],
        "checked": 12,
        "difference": 1e-3,
        "verdict": "wrong",
        "largest_error": 0.5,
        "largest_error_at": "W1[1, 1]",
        "kinks": 2,
        "diagnosis": "a diagnosis",
        "inconclusive": 0,
        "significance": 0.0,
    }


@pytest.mark.parametrize(("shape", "size"), [((3, 4), 12), ((5,), 5), ((), 1), ((2, 0), 0)])
def test_a_rows_size_is_the_product_of_its_shape(shape: tuple[int, ...], size: int) -> None:
    row = ParameterResult("p", shape, 0, 0.0, "ok", 0.0, "p", 0, None)
    assert row.size == size == int(np.zeros(shape).size)


def test_a_group_tests_difference_is_its_worst_draw() -> None:
    group = GroupTest("W", 4, 20, 2, (1.0, -3.0, 0.0), (1.5, -3.0, 0.0), 1e-6, True, False)
    assert group.size == 16
    # |1 − 1.5| / (1 + 1.5) = 0.2; an exact draw is 0; 0 against 0 counts as 0.
    assert group.difference == pytest.approx(0.2)
    quiet = GroupTest("b", 0, 1, 0, (0.0,), (0.0,), 0.0, False, True)
    assert quiet.difference == 0.0 and quiet.size == 1


def test_parts_are_frozen(table: EntryTable) -> None:
    entry = table.entry(0)
    with pytest.raises(AttributeError):
        entry.analytic = 2.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        table.indices = np.arange(2)  # type: ignore[misc]
