"""The result of data-dependent initialization (LSUV): the scales applied, before and after.

:func:`gradprobe.torch.rescale_` rescales each weight layer in forward order until its
output has the target standard deviation on a batch (Mishkin & Matas, "All you need is
a good init", ICLR 2016); :class:`RescaleReport` says by how much each layer was scaled,
whether it converged, and the propagation verdict before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gradprobe.signals.propagation import PropagationReport

__all__ = ["RescaleReport", "RescaledLayer"]


@dataclass(frozen=True)
class RescaledLayer:
    """One weight layer's rescaling.

    Attributes
    ----------
    name : str
        The layer's name (a module path).
    scale : float
        The factor its weights were multiplied by, in total.
    iterations : int
        How many times it was measured and scaled.
    std : float
        The standard deviation of its output on the batch afterwards.
    converged : bool
        Whether ``std`` ended within the tolerance of the target.
    """

    name: str
    scale: float
    iterations: int
    std: float
    converged: bool


@dataclass(frozen=True)
class RescaleReport:
    """What data-dependent rescaling did and the propagation verdict before and after.

    Attributes
    ----------
    target, tol : float
        The output standard deviation aimed at and the relative tolerance.
    orthogonal : bool
        Whether the weights were made orthogonal first.
    layers : tuple of RescaledLayer
        In forward order.
    skipped : tuple of str
        Layers not rescaled, each with the reason.
    before, after : PropagationReport
        The probe of the model before and after.
    """

    target: float
    tol: float
    orthogonal: bool
    layers: tuple[RescaledLayer, ...]
    skipped: tuple[str, ...]
    before: PropagationReport
    after: PropagationReport

    @property
    def scales(self) -> dict[str, float]:
        """Layer name -> the factor applied to its weights."""
        return {layer.name: layer.scale for layer in self.layers}

    @property
    def converged(self) -> bool:
        """Whether every rescaled layer reached the target within the tolerance."""
        return all(layer.converged for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """Return everything as plain Python objects."""
        return {
            "target": self.target,
            "tol": self.tol,
            "orthogonal": self.orthogonal,
            "layers": [dict(layer.__dict__) for layer in self.layers],
            "skipped": list(self.skipped),
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
        }

    def __str__(self) -> str:
        width = max(5, *(len(layer.name) for layer in self.layers)) if self.layers else 5
        lines = [
            f"rescaled to output std {self.target:g} (±{self.tol:.0%})"
            f"{' after orthogonal initialization' if self.orthogonal else ''}: "
            f"{self.before.verdict} before, {self.after.verdict} after",
            f"{'layer':<{width}} {'scale':>10} {'steps':>5} {'std':>8}",
        ]
        for layer in self.layers:
            mark = "" if layer.converged else "  (not converged)"
            lines.append(
                f"{layer.name:<{width}} {layer.scale:>10.4g} {layer.iterations:>5} "
                f"{layer.std:>8.4g}{mark}"
            )
        lines += [f"skipped: {reason}" for reason in self.skipped]
        return "\n".join([*lines, f"before: {self.before.summary}", f"after: {self.after.summary}"])
