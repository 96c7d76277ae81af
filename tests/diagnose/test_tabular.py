"""CSV loading: sniffed delimiters, NumPy's loader, precise errors, stratified splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from gradprobe.diagnose.tabular import load_csv
from gradprobe.errors import InvalidArgumentError, NonFiniteError


def _write(path: Path, header: list[str], rows: list[list[object]], delimiter: str = ",") -> Path:
    lines = [delimiter.join(header)] + [delimiter.join(str(cell) for cell in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(count: int, seed: int = 0) -> list[list[object]]:
    rng = np.random.default_rng(seed)
    return [[f"{a:.5f}", f"{b:.5f}", int(a > 0)] for a, b in rng.normal(size=(count, 2))]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    rows = _rows(40)
    path = _write(tmp_path / "data.csv", ["a", "b", "label"], rows, delimiter)
    data = load_csv(path, "label")
    assert data.feature_names == ["a", "b"] and data.task == "classification"
    X = np.vstack([data.X_train, data.X_test])
    np.testing.assert_allclose(np.sort(X[:, 0]), np.sort([float(r[0]) for r in rows]))  # type: ignore[arg-type]


def test_a_semicolon_file_no_longer_hides_its_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "data.csv", ["a", "b", "label"], _rows(20), ";")
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
    path = _write(tmp_path / "rare.csv", ["a", "b", "label"], rows)
    data = load_csv(path, "label", seed=7)
    assert np.bincount(data.y_test).tolist() == [9, 1]  # 10 % of each class held out
    _, test = train_test_split(np.arange(50), test_size=10, random_state=7, stratify=labels)
    np.testing.assert_array_equal(np.sort(data.y_test), np.sort(labels[test]))


def test_precise_errors_name_the_line_and_the_column(tmp_path: Path) -> None:
    rows = _rows(20)
    rows[4][1] = "oops"
    path = _write(tmp_path / "bad.csv", ["a", "b", "label"], rows)
    with pytest.raises(InvalidArgumentError, match="column 'b' on line 6 of .* is 'oops'"):
        load_csv(path, "label")
    rows[4][1] = ""
    _write(path, ["a", "b", "label"], rows)
    with pytest.raises(NonFiniteError, match="column 'b' is missing .* on line 6"):
        load_csv(path, "label")
    rows[4][1] = "inf"
    _write(path, ["a", "b", "label"], rows)
    with pytest.raises(NonFiniteError, match="line 6 .* expected a finite number"):
        load_csv(path, "label")
    rows[4] = rows[4][:2]
    _write(path, ["a", "b", "label"], rows)
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
    path = _write(tmp_path / "data.csv", ["a", "b", "label"], _rows(30))
    assert load_csv(path, "label").task_reason == "inferred: 'label' has 2 distinct integer values"
    assert load_csv(path, "label", task="classification").task_reason == "as given by --task"
    continuous = _write(tmp_path / "y.csv", ["a", "b", "y"], [[i, -i, 0.1 * i] for i in range(30)])
    data = load_csv(continuous, "y")
    assert data.task == "regression" and data.task_reason == "inferred: 'y' has 30 distinct values"


def test_classification_of_a_continuous_target_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "y.csv", ["a", "b", "y"], [[i, 2 * i, 0.37 * i] for i in range(300)])
    with pytest.raises(InvalidArgumentError, match="300 distinct continuous values in 300 rows"):
        load_csv(path, "y", task="classification")
    ids = _write(tmp_path / "ids.csv", ["a", "b", "y"], [[i, -i, i] for i in range(300)])
    with pytest.raises(InvalidArgumentError, match="300 distinct integer values"):
        load_csv(ids, "y", task="classification")
