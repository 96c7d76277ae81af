import numpy as np
import pytest

from gradprobe.signals.advice import NumpyWording, advise, layer_runs, scale_deviations
from gradprobe.signals.judge import Judgement

SIZES = np.array([4096] * 4)


def _advise(verdict, scales, recommended=2.0, *, symmetric=None, dead=None, activation="relu"):
    judgement = Judgement(verdict, None if verdict == "healthy" else 1, "forward", 1e3, False)
    return advise(
        judgement,
        symmetric=symmetric,
        dead=dead,
        activations=[activation] * len(scales),
        weight_scale=np.asarray(scales, dtype=float),
        weight_size=SIZES[: len(scales)],
        recommended=np.full(len(scales), recommended),
        wording=NumpyWording(activation, recommended),
    )


def test_layer_runs():
    assert layer_runs(np.array([3])) == "layer 3"
    assert layer_runs(np.array([1, 2, 3, 5, 7, 8])) == "layers 1–3, 5, 7–8"


def test_deviations_use_the_slack_and_skip_nan():
    large, small = scale_deviations(
        np.array([2.3, 2.5, 1.7, 1.5, np.nan]), np.array([4096] * 5), np.full(5, 2.0)
    )
    assert large.tolist() == [2] and small.tolist() == [4]
    # A tiny layer's measured scale is noisy: four standard deviations widen the band.
    large, small = scale_deviations(np.array([3.0]), np.array([8]), np.array([2.0]))
    assert large.size == small.size == 0


def test_direction_comes_from_the_weights_not_the_verdict():
    text = _advise("vanishing", [20.0] * 4, 2.54, activation="tanh")
    assert text.startswith("Shrink the initial weights: layers 1–4 have σ_w² ≈ 20 per fan-in")
    assert "saturate tanh" in text
    assert _advise("vanishing", [0.33] * 4).startswith("Enlarge the initial weights")


def test_mixed_scales_and_the_healthy_and_symmetric_cases():
    mixed = _advise("exploding", [9.0, 9.0, 0.1, 0.1])
    assert mixed.startswith("Rescale the initial weights: σ_w² per fan-in is above 2 at layers")
    assert "below it at layers 3–4" in mixed
    assert _advise("healthy", [2.0] * 4).startswith("Nothing to change")
    assert _advise("vanishing", [0.0] * 4, symmetric=1).startswith("Break the symmetry")


def test_dead_layers_are_named_before_scales_and_on_scale_weights_blame_the_activation():
    assert _advise("vanishing", [2.0] * 4, dead=2).startswith(
        "Revive the dead units: every unit after layer 2"
    )
    text = _advise("vanishing", [2.54] * 4, 2.54, activation="tanh")
    assert "tanh itself shrinks the signal" in text


@pytest.mark.parametrize("verdict", ["vanishing", "exploding"])
def test_every_unhealthy_branch_names_a_remedy(verdict):
    assert "N(0, 2/fan_in)" in _advise(verdict, [0.1, 0.1, 0.1, 0.1])
