"""Gradient checks for PyTorch: module parameters, custom ``autograd.Function``s, any tensor code.

``torch.autograd.gradcheck`` answers pass or fail and, on failure, prints two
Jacobians without an index; it needs float64 inputs made by hand, fails at kinks
and evaluates one perturbation at a time. This module gives PyTorch code
gradprobe's report instead: the course notes' relative difference per named tensor,
the worst entries by PyTorch name (``layer1.weight[3, 7]``), a diagnosis of each
failing tensor and kinks told apart from wrong gradients.

How a check runs:

* every checked tensor is copied to float64 on its own device; the user's module
  and tensors are never modified (a module is switched to eval mode for the check,
  and its training flags, parameters and buffers are restored afterwards);
* the analytic gradient comes from one ``torch.autograd.grad`` call;
* the numerical one from central differences, the perturbed copies of one tensor
  evaluated in batches with ``torch.func.functional_call`` and ``torch.vmap`` (the
  layers before the perturbed tensor run once per batch), or one at a time when
  the code cannot be vectorized (an ``autograd.Function`` without a vmap rule,
  data-dependent control flow);
* the rest is gradprobe's: the noise floor, kink refinement and the report of
  :func:`gradprobe.check.comparison.assemble_report`.

Cost: ``2N`` forward evaluations for ``N`` checked values, in batches; ``sample=K``
checks ``K`` values of each tensor; ``mode="localize"`` finds the wrong values of a
large module by group testing (:mod:`gradprobe.check.localize`) in far fewer.

Signals before training: :func:`propagation` probes any ``nn.Module`` for vanishing and
exploding signals, :func:`init_sweep` compares initializations on copies of it,
:func:`initialize_` and :func:`rescale_` (LSUV) fix it in place.
"""

from gradprobe.torch.check import check_function, check_module, check_namespace
from gradprobe.torch.gradcheck import GradcheckError, gradcheck, gradgradcheck
from gradprobe.torch.initialize import Initialization, initialize_
from gradprobe.torch.probe import propagation
from gradprobe.torch.rescale import rescale_
from gradprobe.torch.sweep import init_sweep

__all__ = [
    "GradcheckError",
    "Initialization",
    "check_function",
    "check_module",
    "check_namespace",
    "gradcheck",
    "gradgradcheck",
    "init_sweep",
    "initialize_",
    "propagation",
    "rescale_",
]
