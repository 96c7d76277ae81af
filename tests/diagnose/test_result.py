"""The diagnose options, checked when made, and the diagnosis as JSON-ready data."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from gradprobe._version import __version__
from gradprobe.diagnose.pipeline import run_diagnosis
from gradprobe.diagnose.result import DiagnoseConfig, Diagnosis, Training
from gradprobe.diagnose.tabular import bundled
from gradprobe.nn.train import History
from gradprobe.report.jsonout import to_json, validate_report

TINY = DiagnoseConfig(layers=(4,), epochs=4, depth=4, width=8, lr=0.05)


@pytest.fixture(scope="module")
def diagnosis() -> Diagnosis:
    return run_diagnosis(bundled("circles", seed=2), TINY)


def test_a_training_run_as_data() -> None:
    history = History("accuracy", loss=[0.7, 0.5], metric=[0.5, 0.8])
    run = Training("training on raw inputs", history, 0.75, None)
    assert run.to_dict() == {
        "label": "training on raw inputs",
        "loss": [0.7, 0.5],
        "train_metric": [0.5, 0.8],
        "test_metric": 0.75,
        "epochs": 2,
        "diverged_at": None,
    }


def test_the_scale_ratio_ignores_constant_features(diagnosis: Diagnosis) -> None:
    features = [
        {"name": "a", "std": 0.5},
        {"name": "b", "std": 0.0},
        {"name": "c", "std": 20.0},
    ]
    assert replace(diagnosis, features=features).scale_ratio == 40.0
    assert replace(diagnosis, features=[{"name": "a", "std": 0.0}]).scale_ratio == 1.0


def test_to_dict_is_the_schemas_report(diagnosis: Diagnosis) -> None:
    data = diagnosis.to_dict()
    validate_report(data)
    assert data["gradprobe_version"] == __version__
    assert data["data"] == {
        "name": "circles",
        "task": "classification",
        "n_train": diagnosis.dataset.X_train.shape[0],
        "n_test": diagnosis.dataset.X_test.shape[0],
        "n_features": 2,
        "classes": ["0", "1"],
    }
    assert data["network"]["layer_sizes"] == diagnosis.layer_sizes == [2, 4, 1]
    assert data["network"]["epochs"] == TINY.epochs
    normalizer = data["inputs"]["normalizer"]
    np.testing.assert_allclose(normalizer["mean"], diagnosis.dataset.X_train.mean(axis=0))
    assert normalizer["fitted_on"] == "train"
    assert data["result"]["test"] == diagnosis.test_metric == diagnosis.normalized.test_metric
    assert data["result"]["findings"] == diagnosis.findings
    assert data["gradient_check"]["at_initialization"] == diagnosis.check_initial.to_dict()
    json.loads(to_json(data))


def test_a_diverged_run_has_no_test_metric_in_the_data(diagnosis: Diagnosis) -> None:
    diverged = Training("training on raw inputs", History("accuracy", loss=[1.0]), None, 2)
    data = replace(diagnosis, raw=diverged).to_dict()
    assert data["inputs"]["raw"]["diverged_at"] == 2
    assert data["result"]["test_without_normalization"] is None
    validate_report(data)


# ------------------------------------------------------------- progress, views, layout


@pytest.fixture(scope="module")
def moons_diagnosis():  # type: ignore[no-untyped-def]
    return run_diagnosis(bundled("moons"), DiagnoseConfig(layers=(5,), epochs=10, depth=5, width=8))


def test_the_diagnosis_shows_itself_in_a_notebook(moons_diagnosis) -> None:  # type: ignore[no-untyped-def]
    text = repr(moons_diagnosis)
    assert "\n" not in text and text.startswith("Diagnosis(data='moons'")
    card = moons_diagnosis._repr_html_()
    assert card.count("<tr>") == len(moons_diagnosis.findings) + 1


def test_the_pictures_travel_with_the_diagnosis(moons_diagnosis) -> None:  # type: ignore[no-untyped-def]
    assert moons_diagnosis.surface.raw.shape == moons_diagnosis.surface.normalized.shape
    assert moons_diagnosis.step_errors.coordinate.startswith("W1[")
    assert [result.w for result in moons_diagnosis.deep_linear] == [1.5, 0.5]
    assert {result.depth for result in moons_diagnosis.deep_linear} == {5}
