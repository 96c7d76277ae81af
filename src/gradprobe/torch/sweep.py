"""Which initialization suits the user's own architecture: :func:`init_sweep`.

Each scheme of :func:`gradprobe.torch.initialize_` is applied to a deep copy of the
model and probed with :func:`gradprobe.torch.propagation` on the same batch and probe;
the user's model is never touched. The result is a table (``str(sweep)``) and, with
:func:`gradprobe.report.plots.plot_init_sweep`, one line per scheme through the layers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from gradprobe._validate import check_tolerance
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.numdiff.progress import as_callback
from gradprobe.signals.sweep import InitSweep
from gradprobe.torch._layers import check_model, read_activations, weight_units
from gradprobe.torch.initialize import SCHEMES, initialize_
from gradprobe.torch.probe import as_inputs, check_probe, propagation

__all__ = ["DEFAULT_SCHEMES", "init_sweep"]

DEFAULT_SCHEMES = SCHEMES
"""The schemes :func:`init_sweep` compares by default: all of :data:`initialize.SCHEMES`."""


def init_sweep(
    model: nn.Module,
    x: Any,
    inits: Sequence[str] = DEFAULT_SCHEMES,
    *,
    activations: Mapping[str, Any] | None = None,
    loss_fn: Callable[..., Tensor] | None = None,
    targets: Any = None,
    seed: int = 0,
    tolerance: float = 100.0,
    training: bool = True,
    progress: Any = None,
) -> InitSweep:
    """Probe deep copies of ``model``, each re-initialized by one scheme.

    Parameters
    ----------
    model : torch.nn.Module
        The architecture; it is copied, never changed.
    x : Tensor, tuple or ndarray
        The probe batch, as for :func:`gradprobe.torch.propagation`.
    inits : sequence of str, default=DEFAULT_SCHEMES
        Schemes of :func:`gradprobe.torch.initialize_` ("default" is PyTorch's own
        initialization); ``"current"`` probes the model's weights as they are.
    activations : dict of str to activation, optional
        As for :func:`gradprobe.torch.initialize_`.
    loss_fn, targets, seed, tolerance, training
        As for :func:`gradprobe.torch.propagation`; ``seed`` also seeds the weights.
    progress : callable or tqdm-like, optional
        Told ``progress(done, total)`` after each scheme is probed: a callable or an
        object with ``update(n)`` such as ``tqdm.auto.tqdm()``.

    Returns
    -------
    InitSweep
        One :class:`~gradprobe.signals.propagation.PropagationReport` per scheme.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.ReLU()) for _ in range(20)])
    >>> x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0))
    >>> sweep = init_sweep(model, x, ["default", "he"])
    >>> [row["verdict"] for row in sweep.rows]
    ['vanishing', 'healthy']
    """
    check_model(model)
    check_tolerance(tolerance)
    check_probe(loss_fn, seed, training)
    names = (
        [inits] if isinstance(inits, str) else list(inits) if isinstance(inits, Sequence) else None
    )
    if names is None:
        raise InvalidTypeError(
            f"inits: got {type(inits).__name__}, expected a list of scheme names"
        )
    if not names:
        raise InvalidArgumentError("inits: got none, expected at least one scheme")
    allowed = (*SCHEMES, "current")
    for name in names:
        if name not in allowed:
            raise InvalidArgumentError(
                f"inits: got {name!r}, expected some of {', '.join(allowed)}"
            )
    as_inputs(x, model)
    units = weight_units(model)
    read_activations(model, units, activations)  # a bad mapping fails before any work
    report = as_callback(progress)
    options = {"loss_fn": loss_fn, "targets": targets, "seed": seed, "tolerance": tolerance}
    reports = {}
    for done, name in enumerate(names, start=1):
        candidate = model if name == "current" else copy.deepcopy(model)
        if name != "current":
            initialize_(candidate, name, activations=activations, seed=seed)
        reports[name] = propagation(candidate, x, training=training, **options)
        if report is not None:
            report(done, len(names))
    return InitSweep(f"{type(model).__name__} with {len(units)} weight layers", reports)
