"""Gradient checks for JAX: any function of pytrees, custom VJP and JVP rules, ``check_grads``.

``jax.test_util.check_grads`` compares autodiff with finite differences along one
random direction per order and, on failure, asserts that the tolerances were
exceeded: no entry, no name, no kinks (at its default step it calls a correct ReLU
network wrong). This module gives JAX code gradprobe's report instead: the course
notes' relative difference per array of the pytree, the worst entries by JAX key
path (``params['dense_1']['kernel'][3, 1]``), a diagnosis of each failing array and
kinks told apart from wrong gradients.

How a check runs:

* the chosen arguments are flattened by ``jax.tree_util`` and every floating array is
  copied to float64 under ``jax.enable_x64(True)``, which is undone afterwards; the
  caller's arrays are never touched;
* the analytic gradient comes from one ``jax.vjp`` (reverse mode) or from ``jax.jvp``
  along each coordinate (forward mode, :func:`check_grads` with ``"fwd"``);
* the numerical one from central differences, compiled with ``jax.jit`` and batched
  with ``jax.vmap`` leaf by leaf in memory-bounded chunks
  (:mod:`gradprobe.jax._evaluator`); or, when :func:`check_function`'s jaxpr is a plain
  dense stack under cross-entropy, mean squared error or binary cross-entropy
  (:mod:`gradprobe.jax._dense`), from gradprobe's structure-aware MLP evaluator, after
  its copy's losses agreed with ``f``'s (:mod:`gradprobe.jax._mlp`);
* the rest is gradprobe's engine: the noise floor, kink refinement, localization and
  the report (:func:`gradprobe.check.checker.run_check`).

Cost: ``2N`` evaluations of ``f`` for ``N`` checked values, in chunks; ``sample=K``
checks ``K`` values of each array; ``mode="localize"`` finds the wrong values of a
large model in ``O(k·log N)``.
"""

from gradprobe.jax.check import check_function
from gradprobe.jax.grads import CheckGradsError, check_grads

__all__ = ["CheckGradsError", "check_function", "check_grads"]
