"""A JAX MLP checked through gradprobe's structure-aware MLP evaluator.

A JAX function that computes a plain dense stack (found in its jaxpr by
:func:`gradprobe.jax._dense.read_stack`) under softmax cross-entropy, mean squared
error or binary cross-entropy with logits *is* gradprobe's
:class:`~gradprobe.nn.mlp.MLP` with that loss. Its numerical derivatives then come
from :class:`~gradprobe.nn.fastcheck.MLPEvaluator`, which answers each perturbation
from one cached forward pass instead of running the network again, as the PyTorch
adapter does for an ``nn.Sequential`` (:mod:`gradprobe.torch._mlp`; the shared part
is :mod:`gradprobe.nn._replica`). The copy is used only after its loss has been shown
to equal the function's at θ, at one-coordinate perturbed points and at two far
points, to rounding (the function's values from the compiled program that gives
the gradient); the analytic gradient is still JAX's own, from ``jax.vjp`` (a wrong
``jax.custom_vjp`` rule is what the check then finds). Anything else goes through
:class:`~gradprobe.jax._evaluator.Evaluator`, compiled and batched.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout
from gradprobe.errors import GradprobeError, LossEvaluationError
from gradprobe.jax._dense import DenseStack, read_stack
from gradprobe.jax._evaluator import Evaluator
from gradprobe.jax._problem import Problem
from gradprobe.nn._replica import (
    ReplicaRoute,
    agreement,
    agrees,
    build_mlp,
    moved_points,
    route_note,
    spot_points,
)
from gradprobe.nn.fastcheck import MLPEvaluator
from gradprobe.nn.losses import encode_targets
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.batched import DEFAULT_MEMORY

__all__ = ["ReplicaEvaluator", "evaluator_for"]


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


def _candidates(problem: Problem, stack: DenseStack) -> list[MLP]:
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
            encode_targets(stack.targets, output, outputs, len(stack.inputs))
            found.append(net)
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


def _far_points(problem: Problem, stack: DenseStack) -> NDArray[np.float64]:
    """Return two points far from θ: every value moved by 10%, and the logits moved by ~3.

    Where the spot checks move one value, these move the logits far enough to tell one
    loss from another (the loss written with a branch on the logits, say).
    """
    rng = np.random.default_rng(1)
    theta = problem.theta
    scattered = theta * (1 + 0.1 * rng.standard_normal(theta.size))
    shifted = theta.copy()
    bias = stack.layers[-1].bias
    span = slice(problem.layout.offsets[bias], problem.layout.offsets[bias + 1])
    shifted[span] += 3.0 * rng.standard_normal(shifted[span].size)
    return np.stack([scattered, shifted])


def _replica(problem: Problem, memory: int, stack: DenseStack) -> ReplicaEvaluator | None:
    """Build the MLP route's evaluator, or None when no copy equals the function.

    The copy's loss is compared with ``f``'s at θ (which chooses the loss among those
    the targets allow), at two seeded values of each array moved by 1e-3 and at two
    far points; ``f``'s values come from the compiled program that gives the gradient,
    in the same call.
    """
    candidates = _candidates(problem, stack)
    if not candidates or problem.values is None:
        return None
    points = spot_points(problem.layout, problem.theta)
    far = _far_points(problem, stack)
    try:
        expected = problem.values(np.concatenate([moved_points(problem.theta, points), far]))
    except LossEvaluationError as error:  # no reverse mode (a forward-mode-only rule)
        problem.notes.append(
            f"f reads as a dense stack, but its values could not be computed with jax.vjp "
            f"({str(error)[:120]}); the numerical values came from the compiled, batched JAX "
            "evaluator"
        )
        return None
    net = next(
        (n for n in candidates if agrees(n.loss(stack.inputs, stack.targets), float(expected[0]))),
        None,
    )
    count = None
    if net is not None:
        full = ParameterLayout.from_params(net.params)
        theta = full.flatten(net.params)
        replica = MLPEvaluator(net, stack.inputs, stack.targets, theta, memory=memory)
        evaluator = ReplicaEvaluator(problem, memory, replica, _positions(problem, stack, net))
        count = agreement(evaluator, points, expected[: len(points)])
        tail = zip(far, expected[len(points) :], strict=True)
        if count is None or not all(agrees(evaluator(p), float(v)) for p, v in tail):
            count = None
    if net is None or count is None:
        problem.notes.append(
            f"f reads as a dense stack of {len(stack.layers)} layers, but no copy of it as "
            "gradprobe's MLP agreed with f to 1e-12 (at θ, at perturbed points); the numerical "
            "values came from the compiled, batched JAX evaluator"
        )
        return None
    count += len(far)
    problem.notes.append(route_note(net, "JAX", "function", count, "JAX's own, from jax.vjp"))
    return evaluator
