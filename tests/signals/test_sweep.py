"""A sweep's result: one propagation report per initialization, as rows, series and text."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gradprobe import MLP, depth_sweep, propagation
from gradprobe.signals.propagation import LayerStatistics, PropagationReport, assess
from gradprobe.signals.sweep import DepthSweep, InitSweep

DEPTH = 8


@pytest.fixture(scope="module")
def sweep() -> DepthSweep:
    return depth_sweep(DEPTH, 16, "relu", seed=0, batch_size=32)


def test_sweep_rows_and_data(sweep):
    rows = sweep.rows
    assert [row["init"] for row in rows] == ["zeros", "small", "large", "xavier", "he"]
    he = next(row for row in rows if row["init"] == "he")
    report = sweep.reports["he"]
    assert he["first_std"] == pytest.approx(report.layers[0].std)
    assert he["last_std"] == pytest.approx(report.layers[-1].std)
    norms = report.column("gradient_norm")
    assert he["gradient_ratio"] == pytest.approx(norms[0] / norms[-1])
    assert sweep.data["he"]["activation_std"] == pytest.approx(report.column("std").tolist())
    assert len(sweep.data["he"]["layer"]) == DEPTH
    json.dumps(sweep.to_dict(), allow_nan=True)
    assert "xavier" in str(sweep) and "healthy" in str(sweep)


def _report(norms: list[float], stds: list[float]) -> PropagationReport:
    layers = [
        LayerStatistics(k + 1, 0.0, std, std**2, 1.0, 0.0, 0.0, norm, np.nan, 1.0, 2.0)
        for k, (norm, std) in enumerate(zip(norms, stds, strict=True))
    ]
    return assess(
        layers,
        activation="relu",
        input_values=np.ones((2, 2)),
        overflow=(None, "forward"),
        symmetric=None,
        recommended=2.0,
        weight_sizes=np.full(len(layers), 100),
        tolerance=100.0,
    )


def test_rows_are_read_from_the_first_and_last_layers() -> None:
    sweep = DepthSweep(
        depth=3,
        width=2,
        activation="relu",
        reports={"a": _report([8.0, 4.0, 2.0], [1.0, 0.5, 0.25]), "b": _report([1, 1, 0], [1] * 3)},
    )
    a, b = sweep.rows
    assert a == {
        "init": "a",
        "verdict": "healthy",
        "trouble_layer": None,
        "trouble_name": None,
        "first_std": 1.0,
        "last_std": 0.25,
        "gradient_ratio": 4.0,
    }
    # No gradient at the last layer: the ratio is NaN, not a division error.
    assert math.isnan(b["gradient_ratio"])
    assert sweep.data["a"] == {
        "layer": [1, 2, 3],
        "name": ["1", "2", "3"],
        "activation_std": [1.0, 0.5, 0.25],
        "second_moment": [1.0, 0.25, 0.0625],
        "gradient_norm": [8.0, 4.0, 2.0],
    }
    data = json.loads(json.dumps(sweep.to_dict(), allow_nan=True))
    assert (data["depth"], data["width"], data["activation"]) == (3, 2, "relu")
    assert list(data["reports"]) == ["a", "b"] and data["rows"][0]["init"] == "a"
    lines = str(sweep).splitlines()
    assert lines[0] == "depth sweep: 3 layers of 2 units, relu"
    assert lines[2].split() == ["a", "healthy", "1", "0.25", "4"]
    assert lines[3].split()[-1] == "nan"


def test_the_trouble_layer_is_shown_when_there_is_one(sweep: DepthSweep) -> None:
    for row, line in zip(sweep.rows, str(sweep).splitlines()[2:], strict=True):
        fields = line.split()
        assert fields[:2] == [row["init"], row["verdict"]]
        if row["trouble_layer"] is None:
            assert len(fields) == 5
        else:
            assert fields[2] == str(row["trouble_layer"])


def test_both_sweeps_share_rows_data_and_table():
    X = np.random.default_rng(0).standard_normal((32, 8))
    reports = {
        "he": propagation(MLP([8] * 6, init="he", output="linear"), X),
        "small": propagation(MLP([8] * 6, init="normal", output="linear"), X),
    }
    depth, init = DepthSweep(5, 8, "relu", reports), InitSweep("MLP", reports)
    assert depth.rows == init.rows and depth.data == init.data
    assert [row["trouble_name"] for row in init.rows] == [None, "1"]
    assert str(init).splitlines()[1:] == str(depth).splitlines()[1:]
    assert init.to_dict()["model"] == "MLP" and set(init.to_dict()["reports"]) == {"he", "small"}
