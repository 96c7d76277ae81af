"""Tabular data for diagnose: CSV files and bundled sets as seeded train/test splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

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
    # A value per row is no set of classes; 30 classes of two rows each are.
    with pytest.raises(InvalidArgumentError, match="30 distinct integer values in 30 rows"):
        load_csv(path, "y", task="classification")
    pairs = _write(tmp_path, ["x,y", *[f"{i},{i // 2}" for i in range(60)]])
    assert load_csv(pairs, "y", task="classification").classes[:3] == ["0", "1", "2"]


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


# ------------------------------------------------------------- progress, views, layout


def _write_rows(
    path: Path, header: list[str], rows: list[list[object]], delimiter: str = ","
) -> Path:
    lines = [delimiter.join(header)] + [delimiter.join(str(cell) for cell in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _random_rows(count: int, seed: int = 0) -> list[list[object]]:
    rng = np.random.default_rng(seed)
    return [[f"{a:.5f}", f"{b:.5f}", int(a > 0)] for a, b in rng.normal(size=(count, 2))]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    rows = _random_rows(40)
    path = _write_rows(tmp_path / "data.csv", ["a", "b", "label"], rows, delimiter)
    data = load_csv(path, "label")
    assert data.feature_names == ["a", "b"] and data.task == "classification"
    X = np.vstack([data.X_train, data.X_test])
    np.testing.assert_allclose(np.sort(X[:, 0]), np.sort([float(r[0]) for r in rows]))  # type: ignore[arg-type]


def test_a_semicolon_file_no_longer_hides_its_columns(tmp_path: Path) -> None:
    path = _write_rows(tmp_path / "data.csv", ["a", "b", "label"], _random_rows(20), ";")
    with pytest.raises(
        InvalidArgumentError, match="no column 'target' in .*; its columns are a, b, label"
    ):
        load_csv(path, "target")


def test_the_split_is_stratified_as_scikit_learn_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    labels = np.array([1] * 5 + [0] * 45)
    rows = [
        [f"{v:.4f}", f"{w:.4f}", int(t)]
        for (v, w), t in zip(rng.normal(size=(50, 2)), labels, strict=True)
    ]
    path = _write_rows(tmp_path / "rare.csv", ["a", "b", "label"], rows)
    data = load_csv(path, "label", seed=7)
    assert np.bincount(data.y_test).tolist() == [9, 1]  # 10 % of each class held out
    _, test = train_test_split(np.arange(50), test_size=10, random_state=7, stratify=labels)
    np.testing.assert_array_equal(np.sort(data.y_test), np.sort(labels[test]))


def test_precise_errors_name_the_line_and_the_column(tmp_path: Path) -> None:
    rows = _random_rows(20)
    rows[4][1] = "oops"
    path = _write_rows(tmp_path / "bad.csv", ["a", "b", "label"], rows)
    with pytest.raises(InvalidArgumentError, match="column 'b' on line 6 of .* is 'oops'"):
        load_csv(path, "label")
    rows[4][1] = ""
    _write_rows(path, ["a", "b", "label"], rows)
    with pytest.raises(NonFiniteError, match="column 'b' is missing .* on line 6"):
        load_csv(path, "label")
    rows[4][1] = "inf"
    _write_rows(path, ["a", "b", "label"], rows)
    with pytest.raises(NonFiniteError, match="line 6 .* expected a finite number"):
        load_csv(path, "label")
    rows[4] = rows[4][:2]
    _write_rows(path, ["a", "b", "label"], rows)
    with pytest.raises(InvalidArgumentError, match="line 6 of .* has 2 fields, expected 3"):
        load_csv(path, "label")


def test_blank_lines_and_quoted_fields_are_read(tmp_path: Path) -> None:
    text = 'a,b,label\n"1.5",2,1\n\n' + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(12))
    path = tmp_path / "quoted.csv"
    path.write_text(text)
    data = load_csv(path, "label")
    assert data.X_train.shape[0] + data.X_test.shape[0] == 13
    assert 1.5 in np.vstack([data.X_train, data.X_test])[:, 0]


def test_the_task_is_explained(tmp_path: Path) -> None:
    path = _write_rows(tmp_path / "data.csv", ["a", "b", "label"], _random_rows(30))
    assert load_csv(path, "label").task_reason == "inferred: 'label' has 2 distinct integer values"
    assert load_csv(path, "label", task="classification").task_reason == "as given by --task"
    continuous = _write_rows(
        tmp_path / "y.csv", ["a", "b", "y"], [[i, -i, 0.1 * i] for i in range(30)]
    )
    data = load_csv(continuous, "y")
    assert data.task == "regression" and data.task_reason == "inferred: 'y' has 30 distinct values"


def test_classification_of_a_continuous_target_is_refused(tmp_path: Path) -> None:
    path = _write_rows(
        tmp_path / "y.csv", ["a", "b", "y"], [[i, 2 * i, 0.37 * i] for i in range(300)]
    )
    with pytest.raises(InvalidArgumentError, match="300 distinct continuous values in 300 rows"):
        load_csv(path, "y", task="classification")
    ids = _write_rows(tmp_path / "ids.csv", ["a", "b", "y"], [[i, -i, i] for i in range(300)])
    with pytest.raises(InvalidArgumentError, match="300 distinct integer values"):
        load_csv(ids, "y", task="classification")
