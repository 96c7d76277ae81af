"""Vanishing and exploding signals in a PyTorch model, before training: :func:`propagation`.

One forward and one backward pass on a probe batch (:mod:`gradprobe.torch._hooks`)
measure every weight layer; the verdict is gradprobe's single judge,
:func:`gradprobe.signals.propagation.assess`. What is judged is chosen so that residual
connections, normalization and attention raise no false alarm:

* **forward**: the second moment ``E[X²]`` of the signal *entering* each weight layer
  (and, for the last one, also what leaves it), against the input's. In a residual
  network the first layer of a block receives the residual stream, so the stream is
  judged, not each branch; what a layer followed by batch or layer norm outputs is
  rescaled anyway and is not judged. A plain stack's inputs are its activations.
* **backward**: each hidden layer's weight gradient ``‖dW‖²/fan_in`` (``‖dW‖²`` is how
  much one gradient step on the layer lowers the loss; per input connection it does not
  depend on the layer's width), against the last hidden layer's. Vanishing gradients
  leave the first layers with ×10⁻¹⁵ of it in a deep plain ReLU stack at PyTorch's
  default init. The output layer is not judged (its gradient is the loss's own, and a
  global pooling before it makes it larger without compounding through depth), nor is
  attention (at initialization it averages over positions, which shrinks its weights'
  gradients without harming training); both are reported.

The backward signal is the gradient of ``loss_fn(model(x), targets)`` when a loss is
given, otherwise of a fixed random probe ``J = Σ G ⊙ y / m`` with ``G`` standard normal
from ``seed``, so no labels are needed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from gradprobe._validate import check_tolerance
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.nn.scale import activation_name, recommend_scale
from gradprobe.signals.propagation import LayerStatistics, PropagationReport, assess
from gradprobe.torch._hooks import Recording, Site, record
from gradprobe.torch._layers import check_model, weight_units
from gradprobe.torch._state import borrowed

__all__ = ["TorchWording", "as_inputs", "check_probe", "propagation"]

_DEFAULT_SCALE = 1 / 3  # PyTorch's kaiming_uniform_(a=√5): Var(W) = 1/(3·fan_in)
_HE_FAMILY = frozenset({"relu", "linear"})


@dataclass(frozen=True)
class TorchWording:
    """The advice in PyTorch's words: module paths and ``torch.nn.init`` calls."""

    names: tuple[str, ...]
    activations: tuple[str, ...]
    recommended_scales: tuple[float, ...]

    def layers(self, indices: NDArray[np.intp]) -> str:  # noqa: D102
        names = [self.names[index - 1] for index in indices]
        if len(names) == 1:
            return f"layer {names[0]}"
        if len(names) <= 4:
            return f"layers {', '.join(names)}"
        return f"layers {names[0]}, {names[1]}, …, {names[-1]} ({len(names)} layers)"

    def recommended(self, indices: NDArray[np.intp]) -> str:  # noqa: D102
        pairs: dict[str, float] = {}
        for index in indices:
            pairs[self.activations[index - 1]] = self.recommended_scales[index - 1]
        words = []
        for name, value in pairs.items():
            which = "no activation" if name == "linear" else name
            he = " (He: Var(W) = 2/fan_in)" if name == "relu" else ""
            words.append(f"{value:.3g} for {which}{he}")
        return " and ".join(words)

    def fix(self, indices: NDArray[np.intp]) -> str:  # noqa: D102
        used = {self.activations[index - 1] for index in indices}
        if used <= _HE_FAMILY:
            linear = (
                " (nonlinearity='linear' where no activation follows)" if "linear" in used else ""
            )
            return (
                "re-initialize them with torch.nn.init.kaiming_normal_(layer.weight, "
                f"nonlinearity='relu'){linear} and zero biases, or call "
                "gradprobe.torch.initialize_(model, 'he')"
            )
        return (
            "draw each layer's weights from N(0, σ_w²/fan_in) with the σ_w² "
            "gradprobe.recommend_scale gives for its activation: "
            "gradprobe.torch.initialize_(model, 'auto')"
        )

    def note(self, indices: NDArray[np.intp], scales: NDArray[np.floating[Any]]) -> str:  # noqa: D102
        if np.all(np.abs(scales / _DEFAULT_SCALE - 1) < 0.2):
            return (
                ", PyTorch's default init (kaiming_uniform_ with a=√5 gives Var(W) = 1/(3·fan_in))"
            )
        return ""


def check_probe(loss_fn: object, seed: object, training: object) -> int:
    """Check the probe's options; return the seed."""
    if loss_fn is not None and not callable(loss_fn):
        raise InvalidTypeError(
            f"loss_fn: got {type(loss_fn).__name__}, expected a callable "
            "loss_fn(output, targets) -> scalar tensor, or None for the random probe"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidTypeError(f"seed: got {type(seed).__name__}, expected an int")
    if not isinstance(training, bool):
        raise InvalidTypeError(f"training: got {type(training).__name__}, expected True or False")
    return int(seed)


def as_inputs(x: object, model: nn.Module) -> tuple[Any, ...]:
    """Return the model's positional arguments: a tensor, a tuple of them, or an array."""
    items = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    if not items:
        raise InvalidArgumentError("x: got an empty sequence, expected a tensor")
    parameter = next((p for p in model.parameters() if p.is_floating_point()), None)
    converted = []
    for item in items:
        if isinstance(item, np.ndarray):
            dtype = parameter.dtype if parameter is not None and item.dtype.kind == "f" else None
            device = parameter.device if parameter is not None else None
            item = torch.as_tensor(item, dtype=dtype, device=device)
        converted.append(item)
    if not any(isinstance(item, Tensor) for item in converted):
        raise InvalidTypeError(
            f"x: got {type(x).__name__}, expected a torch.Tensor, a tuple of the model's "
            "positional arguments, or a NumPy array"
        )
    return tuple(converted)


def propagation(
    model: nn.Module,
    x: Any,
    *,
    loss_fn: Callable[..., Tensor] | None = None,
    targets: Any = None,
    seed: int = 0,
    tolerance: float = 100.0,
    training: bool = True,
) -> PropagationReport:
    """Measure how signals travel through a PyTorch model on a probe batch, and judge them.

    Parameters
    ----------
    model : torch.nn.Module
        Any model; it is left exactly as it was (training flags, parameters, buffers,
        ``.grad``), and so are PyTorch's random state, grad mode and default dtype.
    x : Tensor, tuple or ndarray
        The probe batch, e.g. ``(m, n_features)`` or ``(m, channels, height, width)``
        (a tuple for several positional arguments); real, normalized inputs or standard
        normal ones. The model runs in its own dtype: float32 stays float32.
    loss_fn : callable, optional
        ``loss_fn(output, targets)`` (or ``loss_fn(output)``) whose gradient is
        backpropagated; by default a fixed random probe at the output.
    targets : object, optional
        Passed to ``loss_fn``.
    seed : int, default=0
        The seed of the random probe.
    tolerance : float, default=100.0
        The factor by which a signal's second moment may change and still be "healthy".
    training : bool, default=True
        Probe in training mode (batch norm on batch statistics, as in the first steps of
        training); dropout is always off. False probes in eval mode.

    Returns
    -------
    PropagationReport
        Layers named by module path (``features.7``); ``trouble_name`` says where
        trouble starts and ``advice`` what to change, in PyTorch terms.

    Raises
    ------
    InvalidArgumentError
        For a model without weight layers.
    ShapeMismatchError
        When the first layer cannot take ``x`` (the model's own error is in the message).
    LossEvaluationError
        When the forward pass, ``loss_fn`` or the backward pass raises.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> with torch.random.fork_rng():
    ...     _ = torch.manual_seed(0)
    ...     model = nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.ReLU()) for _ in range(20)])
    ...     x = torch.randn(256, 64)
    >>> report = propagation(model, x)  # PyTorch's default init
    >>> report.verdict, report.trouble_name
    ('vanishing', '3.0')
    """
    check_model(model)
    limit = check_tolerance(tolerance)
    seed = check_probe(loss_fn, seed, training)
    inputs = as_inputs(x, model)
    units = weight_units(model)
    with borrowed(model, training):
        recording = record(model, inputs, units, loss_fn, targets, seed)
    return judge_recording(recording, limit, loss_fn is not None, training, seed)


def judge_recording(
    recording: Recording, tolerance: float, user_loss: bool, training: bool, seed: int
) -> PropagationReport:
    """Turn a recording into per-layer statistics and call the judge."""
    sites = recording.sites
    labels = [
        activation_name(site.activation) if site.activation is not None else "linear"
        for site in sites
    ]
    scales = [
        float(recommend_scale(site.activation if site.activation is not None else "linear").value)
        for site in sites
    ]
    norms = [_weight_norm(recording, site) for site in sites]
    layers = []
    for index, site in enumerate(sites):
        signal = site.active if site.active is not None else site.output
        following = norms[index + 1] if index + 1 < len(norms) else math.nan
        main = site.unit.main.detach()
        layers.append(
            LayerStatistics(
                layer=index + 1,
                mean=signal.mean,
                std=signal.std,
                second_moment=signal.second,
                preactivation_moment=site.output.second,
                dead=site.dead,
                saturated=site.saturated,
                gradient_norm=norms[index],
                gradient_ratio=norms[index] / following if following > 0 else math.nan,
                backward_moment=site.output_gradient.second if site.output_gradient else math.nan,
                weight_scale=site.unit.fan_in() * float(main.double().square().mean()),
                name=site.name,
                activation=labels[index],
                input_moment=site.input.second if site.input is not None else None,
                input_gradient=site.input_gradient.second if site.input_gradient else None,
            )
        )
    advised = np.array(
        [site.unit.kind in {"linear", "conv", "other"} and not site.normalized for site in sites]
    )
    counts = Counter(label for label in labels if label != "linear")
    return assess(
        layers,
        activation=", ".join(name for name, _ in counts.most_common(2)) or "linear",
        input_values=recording.reference_values.to("cpu", torch.float64).numpy(),
        overflow=_overflow(recording),
        symmetric=_symmetric(sites),
        recommended=np.array(scales),
        weight_sizes=np.array([site.unit.main.numel() for site in sites]),
        tolerance=tolerance,
        forward=_forward(recording),
        backward=_backward(recording, norms),
        wording=TorchWording(tuple(layer.label for layer in layers), tuple(labels), tuple(scales)),
        advised=advised,
        notes=_notes(recording, user_loss, training, seed),
        argument="x",
        references=("input", "last hidden layer"),
    )


def _symmetric(sites: Sequence[Site]) -> int | None:
    """Return the first hidden layer whose units all compute the same pre-activation.

    Not after a layer whose units are all dead: the layers after it see only biases.
    """
    hidden = sites[:-1]
    dead = next((index for index, site in enumerate(hidden) if site.dead == 1.0), len(hidden))
    return next(
        (index + 1 for index, site in enumerate(hidden[: dead + 1]) if site.symmetric), None
    )


def _weight_norm(recording: Recording, site: Site) -> float:
    key, _ = site.unit.weights[0]
    gradient = recording.weight_gradients.get(f"{site.unit.name}.{key}")
    if gradient is None:
        return math.nan
    return float(gradient.detach().double().norm())


def _forward(recording: Recording) -> NDArray[np.float64]:
    sites = recording.sites
    entering = [site.input.second if site.input is not None else math.nan for site in sites]
    if sites[0].input is None:
        entering[0] = sites[0].output.second  # token ids: the embedding's output
    reference = recording.reference.second
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.array(entering) / reference
        if not sites[-1].normalized:
            # The output leaves through the last layer: judge it there too, by the larger
            # deviation.
            leaving = sites[-1].output.second / reference if reference > 0 else np.nan
            if np.isnan(ratios[-1]) or abs(np.log10(leaving)) > abs(np.log10(ratios[-1])):
                ratios[-1] = leaving
    return ratios


def _backward(recording: Recording, norms: Sequence[float]) -> NDArray[np.float64]:
    """``‖dW‖²/fan_in`` of each weight layer against the last hidden one's; NaN where not judged.

    The output layer is the reference's neighbour, not judged itself: its gradient is
    the loss's own, and global pooling before a classifier makes it larger in a way
    that does not compound with depth. Attention averages over positions at
    initialization, which shrinks its weights' gradients without harming training.
    """
    sites = recording.sites
    values = np.array(
        [norm**2 / site.unit.fan_in() for site, norm in zip(sites, norms, strict=True)]
    )
    judged = np.array([site.unit.kind != "attention" for site in sites])
    if len(sites) > 1:
        judged[-1] = False
    candidates = np.flatnonzero(judged)
    if candidates.size == 0:
        return np.full(len(sites), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = values / values[candidates[-1]]
    return np.where(judged, ratios, np.nan)


def _overflow(recording: Recording) -> tuple[int | None, str]:
    for index, site in enumerate(recording.sites):
        if not site.output.finite:
            return index + 1, "forward"
    bad = []
    for index, site in enumerate(recording.sites):
        key, _ = site.unit.weights[0]
        gradient = recording.weight_gradients.get(f"{site.unit.name}.{key}")
        weight_bad = gradient is not None and not bool(torch.isfinite(gradient).all())
        if weight_bad or (site.output_gradient is not None and not site.output_gradient.finite):
            bad.append(index + 1)
    return (max(bad) if bad else None), "backward"


def _notes(recording: Recording, user_loss: bool, training: bool, seed: int) -> list[str]:
    dtypes = sorted(str(dtype).removeprefix("torch.") for dtype in recording.float_dtypes)
    precision = ", ".join(dtypes) or "the input's dtype"
    notes = [
        f"probed in {precision}, the model's own precision (nothing promoted to float64); "
        "values beyond its range overflow to infinity and are reported as overflow",
        f"probed in {'training' if training else 'eval'} mode"
        f"{' (batch norm on batch statistics)' if training else ''} with dropout off; the "
        "model's flags, parameters, buffers and PyTorch's random state were restored",
        "judged: the second moment of each weight layer's input against x's (the output's "
        "too at the last layer), and each hidden layer's weight gradient ‖dW‖²/fan_in against "
        "the last hidden layer's (attention's reported, not judged); gradients of "
        f"{'loss_fn' if user_loss else f'a fixed random probe, seed {seed}'}",
    ]
    normalized = [site.name for site in recording.sites if site.normalized]
    if normalized:
        notes.append(
            f"{len(normalized)} layers feed a normalization layer, which rescales their output: "
            "their weight scale is not advised on"
        )
    if any("#" in site.name for site in recording.sites):
        notes.append("a layer called more than once appears once per call (name#2, …)")
    return notes
