"""A JAX MLP checked through gradprobe's structure-aware MLP evaluator.

A JAX function that computes a plain dense stack (found in its jaxpr by
:func:`gradprobe.jax._dense.read_stack`) under softmax cross-entropy, mean squared
error or binary cross-entropy with logits *is* gradprobe's
:class:`~gradprobe.nn.mlp.MLP` with that loss. Its numerical derivatives then come
from :class:`~gradprobe.nn.fastcheck.MLPEvaluator`, which answers each perturbation
from one cached forward pass instead of running the network again, as the PyTorch
adapter does for an ``nn.Sequential`` (:mod:`gradprobe.torch._mlp`; the shared part
is :mod:`gradprobe.nn._replica`). The copy is used only after its loss has been shown
to equal the function's at arbitrary logits, at θ and at perturbed points, to
rounding; the analytic gradient is still JAX's own, from ``jax.vjp`` (a wrong
``jax.custom_vjp`` rule is what the check then finds). Anything else goes through
:class:`~gradprobe.jax._evaluator.Evaluator`, compiled and batched.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout
from gradprobe.errors import GradprobeError
from gradprobe.jax._dense import DenseStack, read_stack
from gradprobe.jax._evaluator import Evaluator
from gradprobe.jax._problem import Problem
from gradprobe.nn._replica import (
    LOSSES,
    ReplicaRoute,
    agreement,
    build_mlp,
    moved_points,
    route_note,
    spot_points,
)
from gradprobe.nn.fastcheck import MLPEvaluator
from gradprobe.nn.losses import encode_targets, get_output
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.batched import DEFAULT_MEMORY

__all__ = ["ReplicaEvaluator", "evaluator_for"]

# Agreement demanded between the function's loss and gradprobe's at given logits.
_LOSS_AGREEMENT = 1e-11


class ReplicaEvaluator(ReplicaRoute, Evaluator):
    """The JAX evaluator whose values at θ and one coordinate away come from the MLP's.

    Parameters
    ----------
    problem : Problem
        The check's problem.
    memory : int
        Bytes one chunk of the generic route's evaluations may take.
    replica : MLPEvaluator
        The evaluator of the equal MLP, at the same point.
    to_full : ndarray of intp, shape (size,)
        For each value of θ, its position in the MLP's θ.
    """

    def __init__(
        self, problem: Problem, memory: int, replica: MLPEvaluator, to_full: NDArray[np.intp]
    ) -> None:
        super().__init__(problem, memory)
        self.attach(replica, problem.theta, to_full)


def evaluator_for(problem: Problem, memory: int = DEFAULT_MEMORY) -> Evaluator:
    """Return the MLP route's evaluator when ``problem`` is a plain MLP, else the generic one."""
    stack = read_stack(problem)
    routed = None if stack is None else _replica(problem, memory, stack)
    return Evaluator(problem, memory) if routed is None else routed


def _candidates(problem: Problem, stack: DenseStack) -> list[tuple[MLP, NDArray[np.float64]]]:
    """Return gradprobe's MLPs with the stack's layers, one per loss the targets allow."""
    layout = problem.layout

    def leaf(k: int) -> NDArray[np.float64]:
        values = problem.theta[layout.offsets[k] : layout.offsets[k + 1]]
        return values.reshape(layout.shapes[k])

    layers = [
        (leaf(layer.weight).T if layer.kernel else leaf(layer.weight), leaf(layer.bias))
        for layer in stack.layers
    ]
    outputs = layers[-1][1].size
    found = []
    for output in (["softmax"] if outputs >= 2 else ["sigmoid"]) + ["linear"]:
        try:
            net = build_mlp(stack.activation, output, layers)
            found.append((net, encode_targets(stack.targets, output, outputs, len(stack.inputs))))
        except GradprobeError:
            continue
    return found


def _positions(problem: Problem, stack: DenseStack, net: MLP) -> NDArray[np.intp]:
    """Return, for each value of θ, its position in the MLP's θ."""
    layout = problem.layout
    full = ParameterLayout.from_params(net.params)
    to_full = np.empty(layout.size, dtype=np.intp)
    for number, layer in enumerate(stack.layers):
        weight = net.params[f"W{number + 1}"]
        local = np.arange(weight.size).reshape(weight.shape)
        span = slice(layout.offsets[layer.weight], layout.offsets[layer.weight + 1])
        to_full[span] = full.offsets[2 * number] + (
            local.T.ravel() if layer.kernel else local.ravel()
        )
        span = slice(layout.offsets[layer.bias], layout.offsets[layer.bias + 1])
        to_full[span] = full.offsets[2 * number + 1] + np.arange(weight.shape[0])
    return to_full


def _replica(problem: Problem, memory: int, stack: DenseStack) -> ReplicaEvaluator | None:
    """Build the MLP route's evaluator, or None when no copy equals the function.

    The function's values the copy is compared with (its loss at three sets of logits,
    its value at θ and at perturbed points) are computed in the same compiled call as
    the gradient: one compilation for both.
    """
    candidates = _candidates(problem, stack)
    if not candidates or problem.gradient_and is None:
        return None
    layout = problem.layout
    _, cache = candidates[0][0].forward(stack.inputs)
    logits = np.asarray(cache.Z[len(stack.layers)], dtype=np.float64)
    rng = np.random.default_rng(0)
    trials = np.stack(
        [logits, 3.0 * logits + rng.normal(size=logits.shape), 5 * rng.normal(size=logits.shape)]
    )
    points = spot_points(layout, problem.theta)

    def also(arrays: Any, extra: Any) -> Any:
        thetas, at = extra
        values = jax.vmap(lambda t: problem.scalar(layout.unflatten(t), arrays))(thetas)
        return values, jax.vmap(stack.loss)(at)

    _, (values, losses) = problem.gradient_and(also, (moved_points(problem.theta, points), trials))
    losses = np.asarray(losses, dtype=np.float64)
    for net, encoded in candidates:
        score = get_output(net.output).loss
        expected = np.array([score(z, encoded) for z in trials])
        if np.all(np.abs(losses - expected) <= _LOSS_AGREEMENT * np.maximum(1.0, np.abs(expected))):
            break
    else:
        return None
    full = ParameterLayout.from_params(net.params)
    replica = MLPEvaluator(
        net, stack.inputs, stack.targets, full.flatten(net.params), memory=memory
    )
    evaluator = ReplicaEvaluator(problem, memory, replica, _positions(problem, stack, net))
    count = agreement(evaluator, points, np.asarray(values, dtype=np.float64))
    what = f"plain {net.activation} MLP {net.layer_sizes} under {LOSSES[net.output]}"
    if count is None:
        problem.notes.append(
            f"f looks like a {what}, but gradprobe's copy of it did not agree with f to 1e-12; "
            "the numerical values came from the compiled, batched JAX evaluator"
        )
        return None
    problem.notes.append(route_note(net, "JAX", "function", count, "JAX's own, from jax.vjp"))
    return evaluator
