"""What to change, in one sentence: read from the weights' own scale against the recommended one.

The verdict says *that* signals vanish or explode; the advice says which layers to
change and how. It compares each layer's ``σ_w² = fan_in·E[W²]`` with the scale
recommended for the activation that follows it (:func:`gradprobe.recommend_scale`):
weights too large or too small are named layer by layer. Bounded activations make
the direction counter-intuitive (tanh weights ×10 too large saturate the units and
the gradients then *vanish*), so the direction comes from the weights, not from the
verdict.

:func:`advise` holds that logic once; a :class:`Wording` turns it into the words of
a frontend: :class:`NumpyWording` for gradprobe's MLP (layer numbers, ``init='auto'``),
and the PyTorch adapter's own (module paths, ``torch.nn.init`` calls).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from gradprobe.signals.judge import Array, Judgement

__all__ = ["NumpyWording", "Wording", "advise", "layer_runs", "scale_deviations"]

# How far σ_w² = fan_in·E[W²] may sit from the recommended scale and count as on it:
# 20%, or four standard deviations of a Gaussian draw's sample scale, √(2/size) relative,
# when a small layer makes that wider.
_SCALE_SLACK = 0.2
_SCALE_DEVIATIONS = 4.0

# The activations whose derivative is nearly 0 for large inputs.
_SATURATING = frozenset({"tanh", "sigmoid", "hardtanh", "softsign"})


class Wording(Protocol):
    """How a frontend names layers and remedies; indices count layers from 1."""

    def layers(self, indices: NDArray[np.intp]) -> str:
        """Name layers compactly, e.g. ``"layers 1–4, 7"``."""
        ...

    def recommended(self, indices: NDArray[np.intp]) -> str:
        """Name the recommended σ_w² of these layers, e.g. ``"2"``."""
        ...

    def fix(self, indices: NDArray[np.intp]) -> str:
        """Say how to initialize these layers instead."""
        ...

    def note(self, indices: NDArray[np.intp], scales: Array) -> str:
        """Say where weights of scale ``scales`` come from (``""`` when unknown)."""
        ...


def layer_runs(layers: NDArray[np.intp]) -> str:
    """Word layer numbers compactly: ``layer 3``, ``layers 1–4, 7``.

    Examples
    --------
    >>> import numpy as np
    >>> layer_runs(np.array([1, 2, 3, 4, 7]))
    'layers 1–4, 7'
    """
    runs: list[str] = []
    first = previous = int(layers[0])
    for layer in [*map(int, layers[1:]), None]:
        if layer is not None and layer == previous + 1:
            previous = layer
            continue
        runs.append(str(first) if first == previous else f"{first}–{previous}")
        if layer is not None:
            first = previous = layer
    return f"layer{'s' if layers.size > 1 else ''} {', '.join(runs)}"


@dataclass(frozen=True)
class NumpyWording:
    """The words of gradprobe's NumPy MLP: layer numbers and ``init='auto'``."""

    activation: str
    scale: float

    def layers(self, indices: NDArray[np.intp]) -> str:  # noqa: D102
        return layer_runs(indices)

    def recommended(self, indices: NDArray[np.intp]) -> str:  # noqa: D102
        return f"{self.scale:.3g}"

    def fix(self, indices: NDArray[np.intp]) -> str:  # noqa: D102
        return (
            f"draw every W ~ N(0, {self.scale:.3g}/fan_in), the scale "
            f"gradprobe.recommend_scale gives for {self.activation} (init='auto')"
        )

    def note(self, indices: NDArray[np.intp], scales: Array) -> str:  # noqa: D102
        return ""


def scale_deviations(
    weight_scale: Array, weight_size: NDArray[np.intp], recommended: Array
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Return the layers (from 1) whose ``σ_w²`` is clearly above, and clearly below, target.

    Layers with a NaN scale (nothing to advise on) are in neither.

    Examples
    --------
    >>> import numpy as np
    >>> scale_deviations(np.array([2.0, 8.0, 0.3]), np.array([4096] * 3), np.array([2.0] * 3))
    (array([2]), array([3]))
    """
    slack = np.maximum(_SCALE_SLACK, _SCALE_DEVIATIONS * np.sqrt(2 / weight_size))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = weight_scale / recommended
    return np.flatnonzero(ratio > 1 + slack) + 1, np.flatnonzero(ratio < 1 - slack) + 1


def advise(
    judgement: Judgement,
    *,
    symmetric: int | None,
    dead: int | None,
    activations: Sequence[str],
    weight_scale: Array,
    weight_size: NDArray[np.intp],
    recommended: Array,
    wording: Wording,
) -> str:
    """Say in one sentence what to change.

    Parameters
    ----------
    judgement : Judgement
        The verdict from :func:`gradprobe.signals.judge.judge`.
    symmetric, dead : int or None
        The first layer whose units all compute the same value, and the first hidden
        layer whose units are all 0 for the whole batch.
    activations : sequence of str
        The activation after each layer ``1..L``.
    weight_scale, recommended : ndarray of shape (L,)
        Each layer's ``σ_w²`` (NaN: not to be advised on, e.g. scale-invariant layers)
        and the one recommended for its activation.
    weight_size : ndarray of int, shape (L,)
        The number of weights per layer (how noisy its measured scale is).
    wording : Wording
        The frontend's words.
    """
    if symmetric is not None:
        return (
            f"Break the symmetry: every unit of {wording.layers(np.array([symmetric]))} "
            f"computes the same value, so initialize the weights randomly: "
            f"{wording.fix(np.arange(1, len(activations) + 1))}."
        )
    if judgement.verdict == "healthy":
        return "Nothing to change: activations and gradients keep their scale through depth."
    large, small = scale_deviations(weight_scale, weight_size, recommended)
    if dead is not None:
        where = np.array([dead])
        return (
            f"Revive the dead units: every unit after {wording.layers(where)} outputs 0 for the "
            "whole batch, so no gradient passes through it; its biases or weights push every "
            f"pre-activation below 0: {wording.fix(where)}."
        )
    if large.size == small.size == 0:
        layer = judgement.layer if judgement.layer is not None else 1
        layer = min(layer, len(activations))
        return (
            f"The weights already have the recommended scale (σ_w² ≈ "
            f"{weight_scale[layer - 1]:.3g}), so {activations[layer - 1]} itself "
            f"{'shrinks' if judgement.verdict == 'vanishing' else 'grows'} the signal: use a "
            "non-saturating activation such as relu, add normalization layers, or use fewer "
            "layers."
        )
    if large.size and small.size:
        both = np.union1d(large, small)
        above, below = wording.recommended(large), wording.recommended(small)
        return (
            f"Rescale the initial weights: σ_w² per fan-in is above {above} at "
            f"{wording.layers(large)} and below {'it' if below == above else below} at "
            f"{wording.layers(small)}; {wording.fix(both)}."
        )
    change, off = ("Shrink", large) if large.size else ("Enlarge", small)
    scales = weight_scale[off - 1]
    lowest, highest = float(np.min(scales)), float(np.max(scales))
    spread = f"{lowest:.3g}" if highest <= 1.05 * lowest else f"{lowest:.3g} to {highest:.3g}"
    why = ""
    saturating = sorted({activations[layer - 1] for layer in off} & _SATURATING)
    if change == "Shrink" and judgement.verdict == "vanishing" and saturating:
        why = (
            f" The signal vanishes because the weights are too large, not too small: they "
            f"saturate {', '.join(saturating)}, where its derivative is nearly 0."
        )
    return (
        f"{change} the initial weights: {wording.layers(off)} "
        f"{'has' if off.size == 1 else 'have'} σ_w² ≈ {spread} per fan-in"
        f"{wording.note(off, scales)}, {'above' if change == 'Shrink' else 'below'} the "
        f"recommended {wording.recommended(off)}; {wording.fix(off)}.{why}"
    )
