"""Signal propagation, backend-neutral: per-layer statistics in, verdict and advice out.

* :mod:`~gradprobe.signals.judge`: the verdict (healthy, vanishing, exploding) from
  how second moments change through depth;
* :mod:`~gradprobe.signals.propagation`: :class:`LayerStatistics`,
  :class:`PropagationReport` and :func:`assess`, which every probe calls (the NumPy
  MLP's in :mod:`gradprobe.nn.probe`, the PyTorch one in :mod:`gradprobe.torch`);
* :mod:`~gradprobe.signals.sweep`: :class:`DepthSweep`, one report per initialization;
* :mod:`~gradprobe.signals.deep_linear`: the course's ``ŷ = w^L·x`` example.

It takes arrays, never a model.
"""

from gradprobe.signals.deep_linear import DeepLinearResult, deep_linear
from gradprobe.signals.propagation import LayerStatistics, PropagationReport, assess
from gradprobe.signals.sweep import DepthSweep

__all__ = [
    "DeepLinearResult",
    "DepthSweep",
    "LayerStatistics",
    "PropagationReport",
    "assess",
    "deep_linear",
]
