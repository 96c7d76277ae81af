"""Numerical derivatives: difference rules, steps, the loss on θ, batched and parallel evaluation.

The bottom layer. It knows nothing of checks or reports:

* :mod:`~gradprobe.numdiff.rules`: the difference formulas (forward, backward,
  central, complex step, Richardson) and the choice of step;
* :mod:`~gradprobe.numdiff.perturbation`: :class:`LossOnTheta`, a loss seen as a
  function of the flat vector θ, and :func:`evaluate_differences`, the one route by
  which every numerical gradient is computed;
* :mod:`~gradprobe.numdiff.noise`: the computational noise of a loss measured at θ
  (Moré & Wild's ECnoise), and the bounds made from it;
* :mod:`~gradprobe.numdiff.batched` and :mod:`~gradprobe.numdiff.parallel`: the same
  evaluations many at a time, or on any :class:`concurrent.futures.Executor`;
* :mod:`~gradprobe.numdiff.derivative`: :func:`derivative` of a scalar function and
  :func:`numerical_gradient` of a loss.
"""

from gradprobe.numdiff.derivative import METHODS, Derivative, derivative, numerical_gradient

__all__ = ["METHODS", "Derivative", "derivative", "numerical_gradient"]
