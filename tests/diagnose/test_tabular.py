"""Tabular data for diagnose: CSV files and bundled sets as seeded train/test splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradprobe.diagnose.tabular import DATASETS, bundled, feature_statistics, load_csv
from gradprobe.errors import InvalidArgumentError, NonFiniteError
from gradprobe.nn import datasets


def test_data_loaders_refuse_a_negative_seed(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="seed: got -1"):
        bundled("circles", seed=-1)
    path = _write(tmp_path, ["a,y", *[f"{i},{i % 2}" for i in range(12)]])
    with pytest.raises(InvalidArgumentError, match="seed: got -1"):
        load_csv(path, "y", seed=-1)


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_task_inference(tmp_path: Path) -> None:
    rows = [f"{i},{i % 3},{i * 0.37}" for i in range(30)]
    path = _write(tmp_path, ["a,b,value", *rows])
    three = load_csv(path, "b", seed=1)
    assert three.task == "classification" and three.classes == ["0", "1", "2"]
    assert three.feature_names == ["a", "value"]
    assert len(three.y_train) + len(three.y_test) == 30
    assert load_csv(path, "value").task == "regression"
    assert load_csv(path, "b", task="regression").task == "regression"


def test_csv_string_labels(tmp_path: Path) -> None:
    path = _write(tmp_path, ["x,label", *[f"{i},{'yes' if i % 2 else 'no'}" for i in range(12)]])
    data = load_csv(path, "label")
    assert data.task == "classification" and data.classes == ["no", "yes"]
    with pytest.raises(InvalidArgumentError, match="is not numeric"):
        load_csv(path, "label", task="regression")


def test_csv_nan_is_a_non_finite_error(tmp_path: Path) -> None:
    path = _write(tmp_path, ["a,y", *[f"{i},{i % 2}" for i in range(11)], "NaN,1"])
    with pytest.raises(NonFiniteError, match="line 13"):
        load_csv(path, "y")


def test_the_split_is_seeded_and_keeps_every_row_once(tmp_path: Path) -> None:
    rows = [f"{i},{(i * 7) % 5},{i % 2}" for i in range(40)]
    path = _write(tmp_path, ["a,b,y", *rows])
    first, again, other = (
        load_csv(path, "y", seed=3),
        load_csv(path, "y", seed=3),
        load_csv(path, "y", seed=4),
    )
    np.testing.assert_array_equal(first.X_test, again.X_test)
    assert not np.array_equal(first.X_test, other.X_test)
    assert first.X_test.shape == (8, 2) and first.X_train.shape == (32, 2)
    together = np.concatenate([first.X_train[:, 0], first.X_test[:, 0]])
    assert sorted(together.tolist()) == list(range(40))
    # Labels travel with their rows: y = a mod 2.
    assert np.all(first.y_train == first.X_train[:, 0] % 2)
    assert load_csv(path, "y", test_fraction=0.5).X_test.shape[0] == 20


def test_numeric_labels_are_ordered_as_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path, ["x,y", *[f"{i},{[10, 2, 1][i % 3]}" for i in range(15)]])
    data = load_csv(path, "y")
    assert data.classes == ["1", "2", "10"]  # not "1", "10", "2"
    labels = np.concatenate([data.y_train, data.y_test])
    values = np.concatenate([data.X_train[:, 0], data.X_test[:, 0]]).astype(int)
    assert [data.classes[k] for k in labels] == [str([10, 2, 1][v % 3]) for v in values]


def test_many_integer_values_are_a_regression_target(tmp_path: Path) -> None:
    path = _write(tmp_path, ["x,y", *[f"{i},{i}" for i in range(30)]])
    assert load_csv(path, "y").task == "regression"
    assert load_csv(path, "y", task="classification").classes[:3] == ["0", "1", "2"]


def test_header_spaces_blank_lines_and_a_byte_order_mark_are_tolerated(tmp_path: Path) -> None:
    lines = [" a , y ", *[f"{i},{i % 2}" for i in range(12)], "", "  "]
    path = tmp_path / "bom.csv"
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    data = load_csv(path, "y")
    assert data.feature_names == ["a"] and len(data.y_train) + len(data.y_test) == 12


@pytest.mark.parametrize(
    ("lines", "error", "fragment"),
    [
        (["y", *[str(i % 2) for i in range(12)]], InvalidArgumentError, "no feature columns"),
        (["a,y", *[f"{i},1" for i in range(12)]], InvalidArgumentError, "has one class"),
        (["a,y", *[f"{i},{i % 2}" for i in range(11)], "2,"], NonFiniteError, "missing values"),
        (["a,y"], InvalidArgumentError, "has 0 data rows"),
    ],
)
def test_unusable_files_say_why(
    tmp_path: Path, lines: list[str], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        load_csv(_write(tmp_path, lines), "y")


def test_feature_statistics_are_those_of_the_training_split(tmp_path: Path) -> None:
    path = _write(tmp_path, ["a,b,y", *[f"{i},{i * i},{i % 2}" for i in range(20)]])
    data = load_csv(path, "y", seed=1)
    stats = feature_statistics(data)
    assert [s["name"] for s in stats] == ["a", "b"]
    column = data.X_train[:, 1]
    assert stats[1] == {
        "name": "b",
        "mean": pytest.approx(column.mean()),
        "std": pytest.approx(column.std()),
        "min": column.min(),
        "max": column.max(),
    }


@pytest.mark.parametrize("name", DATASETS)
def test_bundled_sets_are_the_nn_datasets_with_names(name: str) -> None:
    data = bundled(name, seed=1)
    split = getattr(datasets, name)(seed=1)
    np.testing.assert_array_equal(data.X_train, split.X_train)
    np.testing.assert_array_equal(data.y_test, split.y_test)
    assert data.task == "classification" and data.name == name
    assert data.feature_names == datasets.feature_names(name)
    assert len(data.feature_names) == data.X_train.shape[1]
    labels = np.union1d(split.y_train, split.y_test)
    assert data.classes == [str(int(label)) for label in labels]


def test_bundled_refuses_unknown_names_and_regression() -> None:
    with pytest.raises(InvalidArgumentError, match="--dataset: got 'mnist', expected one of"):
        bundled("mnist")
    with pytest.raises(InvalidArgumentError, match="--task: got 'regression', but circles is"):
        bundled("circles", task="regression")
    assert bundled("moons", task="classification").task == "classification"
