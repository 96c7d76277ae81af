import numpy as np
import pytest

from gradprobe.errors import InvalidArgumentError
from gradprobe.signals.propagation import LayerStatistics, assess


def _layer(layer, name=None, dead=0.0, scale=2.0, activation=None):
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


def _assess(layers, **options):
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
    layers = [_layer(index, name) for index, name in enumerate(["a", "b", "c"], start=1)]
    assert _assess(layers).verdict == "healthy"
    report = _assess(layers, forward=np.array([1.0, 1e-3, np.nan]), backward=np.ones(3))
    assert (report.verdict, report.trouble_layer, report.trouble_name) == ("vanishing", 2, "b")
    assert "at layer b (weight layer 2)" in report.summary


def test_per_layer_recommended_scales_and_the_advised_mask():
    layers = [_layer(1, "a", scale=0.3), _layer(2, "b", scale=0.3), _layer(3, "c", scale=1.0)]
    forward = np.array([1.0, 1e-3, 1e-3])
    report = _assess(layers, forward=forward, recommended=np.array([2.0, 2.0, 1.0]))
    assert report.advice.startswith("Enlarge the initial weights: layers 1–2 have σ_w² ≈ 0.3")
    masked = _assess(
        layers,
        forward=forward,
        recommended=np.array([2.0, 2.0, 1.0]),
        advised=np.array([False, True, True]),
    )
    assert masked.advice.startswith("Enlarge the initial weights: layer 2 has")


def test_optional_fields_appear_only_when_set_and_labels_fall_back_to_numbers():
    plain, named = _layer(1), _layer(1, "features.0", activation="relu")
    assert "name" not in plain.to_dict() and plain.label == "1"
    assert named.to_dict()["name"] == "features.0"
    report = _assess([named], notes=["probed in float32"])
    assert report.names == ["features.0"] and "note: probed in float32" in str(report)
    assert np.isnan(report.column("input_moment")[0])
    with pytest.raises(InvalidArgumentError, match="name: got 'name'"):
        report.column("name")


def test_a_fully_dead_layer_is_advised_on_and_the_argument_is_named():
    layers = [_layer(1, dead=1.0), _layer(2)]
    report = _assess(layers, forward=np.array([1.0, 0.0]))
    assert report.advice.startswith("Revive the dead units: every unit after layer 1")
    with pytest.raises(InvalidArgumentError, match="x: got a batch of all zeros"):
        _assess(layers, input_values=np.zeros(3), argument="x")
