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
    return EntryTable(layout, indices, analytic, numerical, relative, kink)


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


def test_ranked_entries_are_worst_first_and_stable(table: EntryTable) -> None:
    order = [entry.name for entry in table.ranked(5)]
    expected = [table.entry(int(p)).name for p in np.argsort(-table.relative_error, kind="stable")]
    assert order == expected
    # b1[1]: 0.25 / (0.5 + 0.25) = 1/3 before W1[1, 1]: 0.5 / (2 + 2.5) = 1/9.
    assert order[:2] == ["b1[1]", "W1[1, 1]"]
    # Ties (the three exact entries) keep θ order.
    assert order[2:] == ["W1[0, 0]", "W1[2, 3]", "s"]
    assert [e.name for e in table.ranked(1)] == ["b1[1]"]
    assert table.ranked(0) == [] and table.ranked(-3) == []
    assert len(table.ranked(100)) == 5


def test_entries_and_rows_are_json(table: EntryTable) -> None:
    data = json.loads(json.dumps(table.entry(0).to_dict()))
    assert data["name"] == "W1[0, 0]" and data["index"] == [0, 0] and data["kink"] is False
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
