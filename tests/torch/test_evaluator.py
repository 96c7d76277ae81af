"""A PyTorch problem through gradprobe's engine: autograd's side, vmap'd differences, the report."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from gradprobe._params import ParameterLayout
from gradprobe.errors import InvalidArgumentError, LossEvaluationError
from gradprobe.numdiff.perturbation import evaluate_differences
from gradprobe.torch._evaluator import Evaluator, _block, analytic_gradients, check_problem
from gradprobe.torch._problem import Problem

torch.set_num_threads(1)
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
F64 = np.dtype(np.float64)


def _base(device: str = "cpu") -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "W": torch.randn(3, 2, generator=generator, dtype=torch.float64).to(device),
        "b": torch.randn(3, generator=generator, dtype=torch.float64).to(device),
    }


def _x(device: str) -> Tensor:
    return torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=torch.float64, device=device)


def _problem(device: str = "cpu", columns: tuple[str, ...] = ("loss",)) -> Problem:
    """Loss columns of tanh(x Wᵀ + b): their sum (one column) or one per example."""
    base = _base(device)
    x = _x(device)

    def values(overrides: Mapping[str, Tensor]) -> Tensor:
        W, b = overrides.get("W", base["W"]), overrides.get("b", base["b"])
        per_example = torch.tanh(x @ W.T + b).pow(2).sum(-1)
        return per_example if len(columns) > 1 else per_example.sum().reshape(1)

    return Problem(base, (F64, F64), columns, values)


def _layout(problem: Problem) -> ParameterLayout:
    return ParameterLayout.from_params({name: t.cpu().numpy() for name, t in problem.base.items()})


def _closed_form(problem: Problem) -> dict[str, np.ndarray]:
    """∂/∂W and ∂/∂b of Σ tanh(z)², z = x Wᵀ + b, by hand."""
    W, b = (problem.base[n].cpu().numpy() for n in ("W", "b"))
    x = _x("cpu").numpy()
    a = np.tanh(x @ W.T + b)
    dz = 2 * a * (1 - a**2)
    return {"W": dz.T @ x, "b": dz.sum(0)}


@pytest.mark.parametrize("device", DEVICES)
def test_analytic_gradients_are_autograds_and_the_closed_form(device: str) -> None:
    problem = _problem(device)
    layout = _layout(problem)
    [dtheta] = analytic_gradients(problem, layout)
    expected = _closed_form(problem)
    np.testing.assert_allclose(dtheta, np.concatenate([expected["W"].ravel(), expected["b"]]))
    assert dtheta.shape == (layout.size,)
    # The base tensors are not turned into leaves of a graph.
    assert not any(t.requires_grad for t in problem.base.values())


def test_one_gradient_per_column_and_zeros_where_unused() -> None:
    base = {"a": torch.tensor([1.0, 2.0], dtype=torch.float64), "u": torch.zeros(2)}

    def values(overrides: Mapping[str, Tensor]) -> Tensor:
        a = overrides.get("a", base["a"])
        return torch.stack([(a**2).sum(), (3 * a).sum()])

    problem = Problem(base, (F64, F64), ("square", "linear"), values)
    layout = ParameterLayout.from_params({"a": np.zeros(2), "u": np.zeros(2)})
    square, linear = analytic_gradients(problem, layout)
    np.testing.assert_array_equal(square, [2.0, 4.0, 0.0, 0.0])
    np.testing.assert_array_equal(linear, [3.0, 3.0, 0.0, 0.0])


def test_a_constant_loss_has_a_zero_gradient() -> None:
    problem = Problem(
        {"a": torch.ones(3, dtype=torch.float64)}, (F64,), ("loss",), lambda o: torch.ones(1)
    )
    [dtheta] = analytic_gradients(problem, ParameterLayout.from_params(np.zeros(3)))
    np.testing.assert_array_equal(dtheta, np.zeros(3))


def test_non_finite_and_failing_backward_passes_are_named() -> None:
    base = {"a": torch.tensor([1.0, 0.0], dtype=torch.float64)}
    layout = ParameterLayout.from_params({"a": np.zeros(2)})
    sqrt = Problem(base, (F64,), ("loss",), lambda o: o.get("a", base["a"]).sqrt().sum().reshape(1))
    with pytest.raises(LossEvaluationError, match=r"non-finite gradient at a\[1\]"):
        analytic_gradients(sqrt, layout)

    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Tensor) -> Tensor:
            return x * 2

        @staticmethod
        def backward(ctx: Any, grad: Tensor) -> Tensor:
            raise RuntimeError("no backward here")

    broken = Problem(base, (F64,), ("loss",), lambda o: Broken.apply(o["a"]).sum().reshape(1))
    with pytest.raises(LossEvaluationError, match="backward raised RuntimeError: no backward"):
        analytic_gradients(broken, layout)


def test_the_block_size_follows_batch_size_or_the_memory_guess() -> None:
    problem = _problem()
    assert _block(problem, 1000) == 512  # small tensors: the cap
    assert _block(problem, 10**8) == 2  # huge ones: never below two
    problem.inputs = 10**4  # activations guessed at eight times the inputs
    assert _block(problem, 10) == 32 * 2**20 // (8 * (10 + 8 * 10**4)) == 52
    problem.batch_size = 1
    assert _block(problem, 10) == 2
    problem.batch_size = 7
    assert _block(problem, 10**8) == 7
    problem.batch_size = 0
    with pytest.raises(InvalidArgumentError, match="batch_size: got 0"):
        _block(problem, 10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_size", [None, 2, 5])
def test_coordinates_are_the_loss_with_one_value_replaced(device: str, batch_size: Any) -> None:
    problem = _problem(device)
    problem.batch_size = batch_size
    layout = _layout(problem)
    evaluate = Evaluator(problem, layout)
    theta = np.concatenate([t.cpu().numpy().ravel() for t in problem.base.values()])
    before = theta.copy()
    indices = np.array([0, 5, 6, 8, 2])
    values = theta[indices] + np.array([0.1, -0.2, 0.3, 1.0, -0.5])
    got = evaluate.coordinates(theta, indices, values)
    expected = []
    for index, value in zip(indices.tolist(), values.tolist(), strict=True):
        moved = before.copy()
        moved[index] = value
        W = torch.as_tensor(moved[:6].reshape(3, 2), device=device)
        b = torch.as_tensor(moved[6:], device=device)
        expected.append(float(problem.values({"W": W, "b": b})[0]))
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    np.testing.assert_array_equal(theta, before)
    assert evaluate.evaluations == len(indices)


def test_columns_are_differentiated_by_their_own_copy() -> None:
    problem = _problem(columns=("example0", "example1"))
    names = ("W", "b")
    shapes = ((3, 2), (3,)) * 2
    offsets = (0, 6, 9, 15, 18)
    labels = tuple(f"{c}/{n}" for c in problem.columns for n in names)
    layout = ParameterLayout("list", labels, shapes, (F64,) * 4, offsets)
    evaluate = Evaluator(problem, layout)
    single = np.concatenate([t.numpy().ravel() for t in problem.base.values()])
    theta = np.tile(single, 2)
    total = float(problem.values({}).sum())
    assert evaluate(theta) == pytest.approx(total, rel=1e-15)
    # Moving a value of copy 1 changes column 1 only; column 0 stays at θ.
    moved = evaluate.coordinates(theta, np.array([9 + 6]), np.array([single[6] + 0.5]))
    b = problem.base["b"].clone()
    b[0] += 0.5
    expected = float(problem.values({})[0]) + float(problem.values({"b": b})[1])
    assert moved[0] == pytest.approx(expected, rel=1e-14)
    # Central differences on θ give each column's own gradient.
    differences = evaluate_differences(evaluate, layout, theta, np.arange(18), None, "central")
    per_column = analytic_gradients(problem, _layout(problem))
    np.testing.assert_allclose(differences.gradient[:9], per_column[0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(differences.gradient[9:], per_column[1], rtol=1e-7, atol=1e-9)


def _report(problem: Problem, **options: Any):  # type: ignore[no-untyped-def]
    settings: dict[str, Any] = {
        "eps": None,
        "thresholds": (1e-6, 1e-4),
        "sample": None,
        "seed": 0,
        "mode": "auto",
        "started": time.perf_counter(),
    }
    return check_problem(problem, **{**settings, **options})


@pytest.mark.parametrize("device", DEVICES)
def test_check_problem_passes_a_correct_gradient(device: str) -> None:
    report = _report(_problem(device))
    assert report.verdict == "ok" and report.checked == report.total == 9
    assert [row.name for row in report.parameters] == ["W", "b"]
    assert report.method == "central" and report.difference < 1e-8


def test_check_problem_pins_a_wrong_backward_like_torch_gradcheck() -> None:
    class HalfGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, z: Tensor) -> Tensor:
            ctx.save_for_backward(z)
            return torch.tanh(z)

        @staticmethod
        def backward(ctx: Any, grad: Tensor) -> Tensor:
            (z,) = ctx.saved_tensors
            return grad * (1 - torch.tanh(z) ** 2) / 2  # planted bug: half the derivative

    base = _base()
    x = _x("cpu")

    def values(overrides: Mapping[str, Tensor]) -> Tensor:
        W, b = overrides.get("W", base["W"]), overrides.get("b", base["b"])
        return HalfGradient.apply(x @ W.T + b).sum().reshape(1)

    problem = Problem(base, (F64, F64), ("loss",), values)
    report = _report(problem)
    assert report.verdict == "wrong" and report.wrong_parameters == ["W", "b"]
    assert "0.500 × numerical" in str(report.parameter("b").diagnosis)
    W = base["W"].clone().requires_grad_(True)
    layer = lambda w: HalfGradient.apply(x @ w.T + base["b"])  # noqa: E731
    assert not torch.autograd.gradcheck(layer, (W,), raise_exception=False)
    assert torch.autograd.gradcheck(lambda w: torch.tanh(x @ w.T + base["b"]), (W,))


def test_several_columns_are_named_column_slash_tensor() -> None:
    report = _report(_problem(columns=("example0", "example1")), sample=2)
    assert [row.name for row in report.parameters] == [
        "example0/W",
        "example0/b",
        "example1/W",
        "example1/b",
    ]
    assert report.verdict == "ok" and report.checked == 8 and report.total == 18


def test_arguments_are_checked_and_empty_tensors_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="thresholds: got"):
        _report(_problem(), thresholds=(1e-2, 1e-3))
    with pytest.raises(InvalidArgumentError, match="sample: got 0"):
        _report(_problem(), sample=0)
    with pytest.raises(InvalidArgumentError, match="seed: got -1"):
        _report(_problem(), seed=-1)
    empty = Problem({"e": torch.zeros(0, dtype=torch.float64)}, (F64,), ("loss",), None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"inputs: the tensors chosen \(\['e'\]\)"):
        _report(empty)
