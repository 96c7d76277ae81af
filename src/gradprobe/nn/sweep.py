"""Depth sweeps: fresh deep networks under several initializations, side by side.

:func:`depth_sweep` builds the same deep network once per initialization (all
zeros, ``randn·0.01``, ``randn·10``, Xavier, He by default), runs
:func:`gradprobe.propagation` on one shared probe batch and collects the verdicts,
so one table shows which initialization keeps signals alive through depth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from gradprobe._validate import check_count, check_fits, check_seed
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.nn import initializers
from gradprobe.nn.activations import get_activation
from gradprobe.nn.mlp import MLP
from gradprobe.nn.probe import propagation
from gradprobe.signals.judge import Array
from gradprobe.signals.sweep import DepthSweep

__all__ = ["DEFAULT_INITS", "DepthSweep", "depth_sweep"]

DEFAULT_INITS: dict[str, Callable[..., Array]] = {
    "zeros": initializers.zeros,
    "small": partial(initializers.normal, scale=0.01),
    "large": partial(initializers.normal, scale=10.0),
    "xavier": initializers.xavier,
    "he": initializers.he,
}
"""The initializations :func:`depth_sweep` compares by default: all zeros, ``randn·0.01``,
``randn·10`` (the course's initialization exercise), Xavier and He."""


def _initializers(inits: Any) -> dict[str, Callable[..., Any]]:
    if inits is None:
        return dict(DEFAULT_INITS)
    if isinstance(inits, str):
        inits = [inits]
    if isinstance(inits, Mapping):
        items = list(inits.items())
    elif isinstance(inits, Sequence):
        items = [(name, name) for name in inits]
    else:
        raise InvalidTypeError(
            f"inits: got {type(inits).__name__}, expected None, a list of names or a dict of "
            "name -> initializer"
        )
    if not items:
        raise InvalidArgumentError("inits: got none, expected at least one initialization")
    resolved: dict[str, Callable[..., Any]] = {}
    for name, init in items:
        if callable(init):
            resolved[str(name)] = init
        elif isinstance(init, str) and init in DEFAULT_INITS:
            resolved[str(name)] = DEFAULT_INITS[init]
        elif isinstance(init, str) and init == "auto":
            resolved[str(name)] = "auto"  # type: ignore[assignment]
        elif isinstance(init, str) and init in initializers.INITIALIZERS:
            resolved[str(name)] = initializers.get(init)
        else:
            raise InvalidArgumentError(
                f"inits: got {init!r}, expected a callable (shape, rng) -> array or one of "
                f"{', '.join([*DEFAULT_INITS, 'auto', *initializers.INITIALIZERS])}"
            )
    return resolved


def depth_sweep(
    depth: int,
    width: int,
    activation: str = "relu",
    inits: Sequence[str] | Mapping[str, Any] | None = None,
    seed: int = 0,
    *,
    batch_size: int = 256,
    tolerance: float = 100.0,
) -> DepthSweep:
    """Measure signal propagation in fresh networks under several initializations.

    Each network is ``MLP([width] * (depth + 1), activation, output="linear")``: ``depth``
    weight layers of ``width`` units, the activation after every layer but the last.
    All share one standard-normal probe batch ``X`` of shape ``(batch_size, width)``
    and one probe gradient, both drawn from ``seed``, as are the weights.

    Parameters
    ----------
    depth, width : int
        The number of weight layers and of units per layer, each ``>= 1``.
    activation : str, default="relu"
        A hidden activation of :data:`gradprobe.nn.activations.ACTIVATIONS`.
    inits : list of str or dict of str to initializer, optional
        Initializations to compare; names may be those of :data:`DEFAULT_INITS`,
        ``"auto"`` or any of :mod:`gradprobe.init`. Default: :data:`DEFAULT_INITS`
        (zeros, small ×0.01, large ×10, Xavier, He).
    seed : int, default=0
        The seed of the probe batch, the probe gradient and the weights.
    batch_size : int, default=256
        The number of probe examples.
    tolerance : float, default=100.0
        As in :func:`propagation`.

    Returns
    -------
    DepthSweep

    Examples
    --------
    >>> sweep = depth_sweep(20, 64, "relu", inits=["xavier", "he"])
    >>> [row["verdict"] for row in sweep.rows]
    ['vanishing', 'healthy']
    """
    depth = check_count(depth, "depth")
    width = check_count(width, "width")
    batch_size = check_count(batch_size, "batch_size")
    name = get_activation(activation).name
    chosen = _initializers(inits)
    sizes = {"depth": depth, "width": width, "batch_size": batch_size}
    check_fits(24 * batch_size * width * (depth + 1), ", ".join(sizes), sizes, "the activations")
    rng = np.random.default_rng(check_seed(seed))
    X = rng.standard_normal((batch_size, width))
    probe_seed, weight_seed = (int(value) for value in rng.integers(0, 2**63, size=2))
    reports = {}
    for label, init in chosen.items():
        try:
            net = MLP(
                [width] * (depth + 1), activation=name, output="linear", init=init, seed=weight_seed
            )
        except InvalidArgumentError as error:
            # The MLP speaks of its `init`; here it is one entry of `inits`.
            message = str(error).removeprefix("init: ")
            raise InvalidArgumentError(f"inits[{label!r}]: {message}") from error
        reports[label] = propagation(net, X, seed=probe_seed, tolerance=tolerance)
    return DepthSweep(depth=depth, width=width, activation=name, reports=reports)
