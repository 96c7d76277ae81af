"""The course notes' pictures on the user's network: cost contours and error against ε."""

from __future__ import annotations

import numpy as np

from gradprobe.diagnose.illustrations import cost_surface, step_errors
from gradprobe.nn.mlp import MLP
from gradprobe.nn.normalization import InputNormalizer


def _data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(120, 3)) * [1000.0, 1.0, 0.01]
    return X, (X[:, 0] + 500 * X[:, 1] > 0).astype(int)


def test_raw_inputs_stretch_the_cost_and_normalized_ones_do_not(rng: np.random.Generator) -> None:
    X, y = _data(rng)
    net = MLP([3, 4, 1], activation="tanh", seed=0)
    before = {name: value.copy() for name, value in net.params.items()}
    scaled = InputNormalizer().fit_transform(X)
    surface = cost_surface(net, (X, y), scaled, ["wide", "middle", "narrow"], spread=0.5)
    assert surface.features == ("wide", "narrow")
    assert surface.weights == ("W1[0, 0]", "W1[0, 2]")
    centre = len(surface.offsets) // 2
    assert surface.raw[centre, centre] == net.loss(X, y)  # offset 0: the network itself
    assert surface.normalized[centre, centre] == net.loss(scaled, y)

    def stretch(cost: np.ndarray) -> float:
        # How much more the cost changes along the first weight than along the second.
        return float(np.ptp(cost[centre, :]) / max(np.ptp(cost[:, centre]), 1e-300))

    assert stretch(surface.raw) > 1e3 * stretch(surface.normalized)
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, before[name])


def test_errors_fall_like_the_notes_say_until_rounding(rng: np.random.Generator) -> None:
    X, y = _data(rng)
    scaled = InputNormalizer().fit_transform(X)
    net = MLP([3, 5, 1], activation="tanh", seed=1, dropout=0.5)
    errors = step_errors(net, scaled, y)
    grads = net.eval().loss_and_grads(scaled, y)[1]
    net.train()
    row, column = (int(i) for i in errors.coordinate[3:-1].split(", "))
    assert errors.derivative == grads["W1"][row, column] == np.max(np.abs(grads["W1"])) or (
        abs(errors.derivative) == np.max(np.abs(grads["W1"]))
    )
    steps = errors.steps
    truncation = (steps >= 1e-4) & (steps <= 1e-2)
    # Slopes in log-log: about 1 for one-sided, about 2 for two-sided.
    forward = np.polyfit(np.log10(steps[truncation]), np.log10(errors.forward[truncation]), 1)[0]
    central = np.polyfit(np.log10(steps[truncation]), np.log10(errors.central[truncation]), 1)[0]
    assert 0.8 < forward < 1.2 and 1.7 < central < 2.3
    # At the tiniest steps rounding of the cost dominates: the errors grow again.
    assert errors.central[0] > 100 * errors.central[np.argmin(np.abs(steps - errors.chosen))]
    assert errors.chosen == (np.finfo(float).eps ** (1 / 3)) * max(
        1.0, abs(net.params["W1"][row, column])
    )
    assert net.training
