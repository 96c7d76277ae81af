"""The signal judge on any network: layer statistics in, a report with verdict and advice out."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from gradprobe.errors import InvalidArgumentError
from gradprobe.signals.propagation import (
    LayerStatistics,
    PropagationReport,
    assess,
    is_symmetric,
    layer_statistics,
)


def _layer(layer: int, **changes: float) -> LayerStatistics:
    """A layer that kept its signal: unit moments, recommended weight scale 2."""
    values: dict[str, Any] = {
        "layer": layer,
        "mean": 0.4,
        "std": 0.8,
        "second_moment": 1.0,
        "preactivation_moment": 1.0,
        "dead": 0.0,
        "saturated": 0.0,
        "gradient_norm": 1.0,
        "gradient_ratio": 1.0,
        "backward_moment": 1.0,
        "weight_scale": 2.0,
    }
    return LayerStatistics(**{**values, **changes})


def _assess(layers: list[LayerStatistics], **options: Any) -> PropagationReport:
    settings: dict[str, Any] = {
        "activation": "relu",
        "input_values": np.ones((4, 3)),
        "overflow": (None, "forward"),
        "symmetric": None,
        "recommended": 2.0,
        "weight_sizes": np.full(len(layers), 10_000),
        "tolerance": 100.0,
    }
    return assess(layers, **{**settings, **options})


# --------------------------------------------------------------------------- verdicts


def test_layers_that_keep_their_scale_are_healthy() -> None:
    report = _assess([_layer(k) for k in (1, 2, 3)])
    assert (report.verdict, report.trouble_layer, report.direction) == ("healthy", None, None)
    assert report.summary == "healthy" and report.findings == ()
    assert report.advice.startswith("Nothing to change")
    assert report.depth == 3 and report.tolerance == 100.0


def test_the_forward_ratio_is_taken_against_the_input() -> None:
    # Input E[x²] = 4: a layer with E[Z²] = 1000 is ×250 the input, beyond ×100.
    layers = [_layer(1, preactivation_moment=8.0), _layer(2, preactivation_moment=1000.0)]
    report = _assess(layers, input_values=np.full((5, 2), 2.0))
    assert (report.verdict, report.trouble_layer, report.direction) == ("exploding", 2, "forward")
    assert "×2.5e+02 of the input's" in report.summary
    assert report.input_second_moment == 4.0 and report.input_std == 0.0
    assert "pre-activations leave the ×100 band at layer 2" in report.summary


def test_the_backward_ratio_is_taken_against_the_last_layer() -> None:
    layers = [_layer(1, backward_moment=1e-8), _layer(2, backward_moment=1e-3), _layer(3)]
    report = _assess(layers)
    assert (report.verdict, report.trouble_layer, report.direction) == (
        "vanishing",
        2,
        "backward",
    )
    assert "gradients leave the ×100 band at layer 2" in report.summary


def test_an_all_zero_probe_batch_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="X: got a batch of all zeros"):
        _assess([_layer(1)], input_values=np.zeros((3, 2)))


# ----------------------------------------------------------------------------- advice


def test_weights_too_large_are_told_to_shrink() -> None:
    layers = [_layer(1, weight_scale=20.0, preactivation_moment=1e4), _layer(2)]
    report = _assess(layers)
    assert report.advice.startswith(
        "Shrink the initial weights: layer 1 has σ_w² ≈ 20 per fan-in, above the recommended 2"
    )
    assert "init='auto'" in report.advice


def test_weights_too_small_are_told_to_enlarge_and_layers_are_worded_as_runs() -> None:
    small = {"weight_scale": 0.1, "preactivation_moment": 1e-4}
    layers = [_layer(k, **small) if k in (1, 2, 3, 5) else _layer(k) for k in range(1, 7)]
    report = _assess(layers)
    assert report.advice.startswith("Enlarge the initial weights: layers 1–3, 5 have σ_w² ≈ 0.1")


def test_mixed_scales_are_told_which_way_each_is_off() -> None:
    layers = [_layer(1, weight_scale=9.0, preactivation_moment=1e4), _layer(2, weight_scale=0.2)]
    report = _assess(layers)
    assert report.advice.startswith(
        "Rescale the initial weights: σ_w² per fan-in is above 2 at layer 1 and below it at layer 2"
    )


def test_on_scale_weights_blame_the_activation() -> None:
    layers = [_layer(1), _layer(2, preactivation_moment=1e-3)]
    report = _assess(layers, activation="sigmoid")
    assert report.advice.startswith(
        "The weights already have the recommended scale (σ_w² ≈ 2), so sigmoid itself shrinks"
    )


def test_a_small_layers_scale_is_allowed_its_sampling_noise() -> None:
    # 30% above the recommended scale: off for a large layer, within 4·√(2/8) for 8 weights.
    layers = [_layer(1, weight_scale=2.6, preactivation_moment=1e4)]
    assert _assess(layers).advice.startswith("Shrink")
    assert _assess(layers, weight_sizes=np.array([8])).advice.startswith("The weights already have")


def test_saturating_activations_explain_why_shrinking_helps_a_vanishing_signal() -> None:
    layers = [_layer(1, weight_scale=50.0, backward_moment=1e-6), _layer(2)]
    report = _assess(layers, activation="tanh")
    assert report.verdict == "vanishing" and report.advice.startswith("Shrink")
    assert "too large, not too small: they saturate tanh" in report.advice
    assert "saturate" not in _assess(layers, activation="relu").advice


def test_symmetry_is_advised_first_and_found() -> None:
    layers = [_layer(1, dead=1.0), _layer(2)]
    report = _assess(layers, symmetric=1)
    assert report.symmetric_layer == 1
    assert report.advice.startswith("Break the symmetry: every unit of layer 1")
    assert report.findings[0].startswith("symmetric: all units of layer 1")
    assert report.findings[1] == (
        "dead units: 1 hidden layers have units that are 0 for the whole batch (most: 100% at "
        "layer 1)"
    )


def test_findings_name_overflow_and_saturation_but_not_the_output_layer() -> None:
    layers = [_layer(1, saturated=0.9), _layer(2, saturated=0.7), _layer(3, saturated=1.0)]
    report = _assess(layers, overflow=(2, "backward"))
    assert report.verdict == "exploding" and report.overflow_layer == 2
    assert report.summary == "exploding: overflow at layer 2 in the backward pass"
    assert report.findings == (
        "overflow: gradients reach infinity or NaN at layer 2",
        "saturation: 2 hidden layers have over half their values saturated (first: layer 1), "
        "where the derivative is nearly 0",
    )


# --------------------------------------------------------------------- measurements


def test_layer_statistics_are_the_numpy_moments(rng: np.random.Generator) -> None:
    Z = rng.normal(size=(64, 5)) * 3
    A = np.tanh(Z)
    A[:, 2] = 0.0  # one dead unit
    A[:10, 0] = 0.0  # and one that is 0 for some examples only: not dead
    dZ, dW, following = rng.normal(size=(64, 5)), rng.normal(size=(5, 7)), rng.normal(size=(2, 5))
    W = rng.normal(size=(5, 7)) * 0.4
    stats = layer_statistics(2, Z, A, dZ, dW, following, W, "tanh")
    assert stats.layer == 2
    assert stats.mean == pytest.approx(A.mean())
    assert stats.std == pytest.approx(A.std())
    assert stats.second_moment == pytest.approx(np.mean(A**2))
    assert stats.preactivation_moment == pytest.approx(np.mean(Z**2))
    assert stats.dead == pytest.approx(1 / 5)
    assert stats.saturated == pytest.approx(np.mean(np.abs(A) > 0.99))
    assert stats.gradient_norm == pytest.approx(np.linalg.norm(dW))
    assert stats.gradient_ratio == pytest.approx(np.linalg.norm(dW) / np.linalg.norm(following))
    assert stats.backward_moment == pytest.approx(np.mean(dZ**2))
    assert stats.weight_scale == pytest.approx(7 * np.mean(W**2))


def test_saturation_by_activation_and_the_last_layers_ratio(rng: np.random.Generator) -> None:
    Z = rng.normal(size=(50, 4)) * 10
    sigmoid = 1 / (1 + np.exp(-Z))
    args = (Z, rng.normal(size=(50, 4)), rng.normal(size=(4, 3)), None, np.ones((4, 3)))
    stats = layer_statistics(1, args[0], sigmoid, *args[1:], "sigmoid")
    assert stats.saturated == pytest.approx(np.mean((sigmoid < 0.01) | (sigmoid > 0.99)))
    assert np.isnan(stats.gradient_ratio)
    relu = layer_statistics(1, Z, np.maximum(Z, 0), *args[1:], "relu")
    assert relu.saturated == 0.0


def test_is_symmetric_needs_two_identical_columns() -> None:
    assert is_symmetric(np.ones((3, 4)) * np.arange(3)[:, None])
    assert not is_symmetric(np.arange(12.0).reshape(3, 4))
    assert not is_symmetric(np.ones((3, 1)))


# ---------------------------------------------------------------------- the report


def test_report_columns_rows_dict_and_text() -> None:
    layers = [_layer(1, std=0.5), _layer(2, std=0.25, gradient_ratio=np.nan)]
    report = _assess(layers)
    np.testing.assert_array_equal(report.column("std"), [0.5, 0.25])
    assert report.column("std").dtype == np.float64
    assert report.rows == [layer.to_dict() for layer in layers]
    assert report.rows[0]["weight_scale"] == 2.0
    with pytest.raises(InvalidArgumentError, match="name: got 'sd', expected one of mean, std"):
        report.column("sd")
    data = json.loads(json.dumps(report.to_dict(), allow_nan=True))
    assert data["verdict"] == "healthy" and len(data["layers"]) == 2
    lines = str(report).splitlines()
    assert lines[0] == "signal propagation through 2 layers (relu): healthy"
    assert lines[2].split() == ["input", "0", "1"]
    assert lines[3].split()[:3] == ["1", "0.4", "0.5"] and lines[-1] == report.advice


def test_the_report_keeps_the_layers_it_was_given() -> None:
    layers = (_layer(1), _layer(2))
    report = _assess(list(layers))
    assert report.layers == layers
    changed = replace(report, verdict="exploding")
    assert changed.verdict == "exploding" and report.verdict == "healthy"


def _named_layer(layer, name=None, dead=0.0, scale=2.0, activation=None):
    return LayerStatistics(
        layer=layer,
        mean=0.0,
        std=1.0,
        second_moment=1.0,
        preactivation_moment=1.0,
        dead=dead,
        saturated=0.0,
        gradient_norm=1.0,
        gradient_ratio=1.0,
        backward_moment=1.0,
        weight_scale=scale,
        name=name,
        activation=activation,
    )


def _assess_named(layers, **options):
    defaults = {
        "activation": "relu",
        "input_values": np.ones(4),
        "overflow": (None, "forward"),
        "symmetric": None,
        "recommended": 2.0,
        "weight_sizes": np.full(len(layers), 4096),
        "tolerance": 100.0,
    }
    return assess(layers, **{**defaults, **options})


def test_given_signals_are_judged_instead_of_the_pre_activations():
    layers = [_named_layer(index, name) for index, name in enumerate(["a", "b", "c"], start=1)]
    assert _assess_named(layers).verdict == "healthy"
    report = _assess_named(layers, forward=np.array([1.0, 1e-3, np.nan]), backward=np.ones(3))
    assert (report.verdict, report.trouble_layer, report.trouble_name) == ("vanishing", 2, "b")
    assert "at layer b (weight layer 2)" in report.summary


def test_per_layer_recommended_scales_and_the_advised_mask():
    layers = [
        _named_layer(1, "a", scale=0.3),
        _named_layer(2, "b", scale=0.3),
        _named_layer(3, "c", scale=1.0),
    ]
    forward = np.array([1.0, 1e-3, 1e-3])
    report = _assess_named(layers, forward=forward, recommended=np.array([2.0, 2.0, 1.0]))
    assert report.advice.startswith("Enlarge the initial weights: layers 1–2 have σ_w² ≈ 0.3")
    masked = _assess_named(
        layers,
        forward=forward,
        recommended=np.array([2.0, 2.0, 1.0]),
        advised=np.array([False, True, True]),
    )
    assert masked.advice.startswith("Enlarge the initial weights: layer 2 has")


def test_optional_fields_appear_only_when_set_and_labels_fall_back_to_numbers():
    plain, named = _named_layer(1), _named_layer(1, "features.0", activation="relu")
    assert "name" not in plain.to_dict() and plain.label == "1"
    assert named.to_dict()["name"] == "features.0"
    report = _assess_named([named], notes=["probed in float32"])
    assert report.names == ["features.0"] and "note: probed in float32" in str(report)
    assert np.isnan(report.column("input_moment")[0])
    with pytest.raises(InvalidArgumentError, match="name: got 'name'"):
        report.column("name")


def test_a_fully_dead_layer_is_advised_on_and_the_argument_is_named():
    layers = [_named_layer(1, dead=1.0), _named_layer(2)]
    report = _assess_named(layers, forward=np.array([1.0, 0.0]))
    assert report.advice.startswith("Revive the dead units: every unit after layer 1")
    with pytest.raises(InvalidArgumentError, match="x: got a batch of all zeros"):
        _assess_named(layers, input_values=np.zeros(3), argument="x")
