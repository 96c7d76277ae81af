"""What a PyTorch check differentiates: tensor selection, float64 copies, batched evaluation."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.torch._problem import (
    Problem,
    as_inputs,
    float64,
    numel,
    numpy_dtype,
    output_tensors,
    prepare_arguments,
    scalar_loss,
    select,
    sum_outputs,
    vmap_notes,
)

torch.set_num_threads(1)

NAMES = ["layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias", "input0"]


# ------------------------------------------------------------------------- selection


@pytest.mark.parametrize(
    ("include", "exclude", "chosen"),
    [
        (None, None, NAMES),
        ("layer1.*", None, ["layer1.weight", "layer1.bias"]),
        (["*.bias", "input*"], None, ["layer1.bias", "layer2.bias", "input0"]),
        (None, "*.bias", ["layer1.weight", "layer2.weight", "input0"]),
        ("layer?.*", ["*.weight"], ["layer1.bias", "layer2.bias"]),
    ],
)
def test_glob_patterns_choose_tensors_in_their_order(
    include: Any, exclude: Any, chosen: list[str]
) -> None:
    assert select(NAMES, include, exclude) == chosen


def test_patterns_that_match_nothing_or_leave_nothing_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="include: pattern 'conv.*' matches no tensor"):
        select(NAMES, "conv.*", None)
    with pytest.raises(InvalidArgumentError, match="exclude: pattern 'Layer1.*' matches no"):
        select(NAMES, None, "Layer1.*")  # case matters, as in PyTorch names
    with pytest.raises(InvalidArgumentError, match="which leave no tensor to check"):
        select(NAMES, "layer1.*", "layer1.*")
    with pytest.raises(InvalidTypeError, match="include: got int, expected a glob pattern"):
        select(NAMES, 3, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="exclude: got list"):
        select(NAMES, None, ["*.bias", 2])  # type: ignore[list-item]


# ------------------------------------------------------------------------- tensors


def test_float64_copies_floating_tensors_and_leaves_others() -> None:
    weight = torch.randn(3, 2, requires_grad=True)
    copy = float64(weight)
    assert copy.dtype == torch.float64 and not copy.requires_grad
    np.testing.assert_array_equal(copy.numpy(), weight.detach().double().numpy())
    copy[0, 0] = 100.0
    assert weight[0, 0] != 100.0  # a copy, not a view
    double = torch.ones(2, dtype=torch.float64)
    assert float64(double) is not double and float64(double).data_ptr() != double.data_ptr()
    labels = torch.tensor([0, 2, 1])
    assert float64(labels) is labels and float64("text") == "text"


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(torch.float16, np.float16), (torch.float32, np.float32), (torch.float64, np.float64)],
)
def test_numpy_dtypes_of_tensors(dtype: torch.dtype, expected: type) -> None:
    notes: list[str] = []
    assert numpy_dtype(torch.zeros(1, dtype=dtype), notes) == np.dtype(expected)
    assert notes == []


def test_bfloat16_has_no_numpy_dtype_and_says_so() -> None:
    notes: list[str] = []
    assert numpy_dtype(torch.zeros(1, dtype=torch.bfloat16), notes) == np.dtype(np.float32)
    assert notes == ["torch.bfloat16 tensors promoted to float64 for the check"]


def test_numel_counts_floating_values_only() -> None:
    values = (torch.zeros(3, 4), torch.arange(5), 7, torch.zeros(2, dtype=torch.float64))
    assert numel(values) == 14


def test_inputs_become_a_tuple() -> None:
    x = torch.zeros(2)
    assert as_inputs(x, "inputs") == (x,)
    assert as_inputs([x, 3], "inputs") == (x, 3)
    with pytest.raises(InvalidTypeError, match="inputs: got dict, expected a tensor or a tuple"):
        as_inputs({"x": x}, "inputs")


def test_a_loss_must_be_one_value() -> None:
    assert scalar_loss(torch.tensor(2.5), "loss_fn").shape == (1,)
    assert scalar_loss(torch.ones(1, 1), "loss_fn").shape == (1,)
    with pytest.raises(LossEvaluationError, match=r"loss_fn returned \(3,\), expected a scalar"):
        scalar_loss(torch.ones(3), "loss_fn")
    with pytest.raises(LossEvaluationError, match="loss_fn returned float, expected a scalar"):
        scalar_loss(2.5, "loss_fn")


def test_outputs_are_found_in_any_nesting_and_summed() -> None:
    a, b, c = torch.ones(2, 2), torch.full((3,), 2.0), torch.tensor(5.0)
    labels = torch.tensor([1, 2])
    output = (a, {"b": b, "skip": "text", "nested": [c, labels]})
    assert [t.shape for t in output_tensors(output)] == [a.shape, b.shape, c.shape, labels.shape]
    assert float(sum_outputs(output)) == 4 + 6 + 5  # the integer labels are left out
    with pytest.raises(LossEvaluationError, match="the module returned tuple, expected a floating"):
        sum_outputs((labels, "text"))
    assert output_tensors("text") == []


# ------------------------------------------------------------------------- Problem


def _problem(values: Any, **options: Any) -> Problem:
    base = {"w": torch.linspace(-1.0, 1.0, 4, dtype=torch.float64)}
    return Problem(base, (np.dtype(np.float64),), ("loss",), values, **options)


def _smooth(overrides: Mapping[str, Tensor]) -> Tensor:
    w = overrides.get("w", torch.linspace(-1.0, 1.0, 4, dtype=torch.float64))
    return (torch.sin(w) * torch.arange(1.0, 5.0, dtype=torch.float64)).sum().reshape(1)


def test_a_batch_is_evaluated_row_by_row_with_vmap() -> None:
    problem = _problem(_smooth)
    perturbed = torch.randn(6, 4, dtype=torch.float64)
    values = problem.batch("w", perturbed)
    expected = [float(_smooth({"w": row})) for row in perturbed]
    assert values.shape == (6, 1) and values.dtype == np.float64
    np.testing.assert_allclose(values[:, 0], expected, rtol=1e-14)
    assert problem.vectorize and problem.notes == []


def test_code_vmap_cannot_batch_falls_back_for_good_and_says_why() -> None:
    calls: list[int] = []

    def data_dependent(overrides: Mapping[str, Tensor]) -> Tensor:
        calls.append(1)
        w = overrides["w"]
        if float(w.sum()) > 0:  # .item() on a batched tensor: vmap refuses
            return (w**2).sum().reshape(1)
        return w.sum().reshape(1)

    problem = _problem(data_dependent)
    perturbed = torch.tensor([[1.0, 2.0, 0.0, 0.0], [-3.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    np.testing.assert_array_equal(problem.batch("w", perturbed)[:, 0], [5.0, -3.0])
    assert not problem.vectorize
    [note] = problem.notes
    assert (
        note.startswith("torch.vmap could not batch the evaluations (") and "one at a time" in note
    )
    calls.clear()
    problem.batch("w", perturbed)
    assert len(calls) == 2 and len(problem.notes) == 1  # no second vmap attempt, no second note


def test_an_autograd_function_without_a_vmap_rule_is_named_in_the_note() -> None:
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Tensor) -> Tensor:
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx: Any, grad: Tensor) -> Tensor:
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    problem = _problem(lambda o: Square.apply(o["w"]).sum().reshape(1))
    values = problem.batch("w", torch.ones(3, 4, dtype=torch.float64))
    np.testing.assert_array_equal(values[:, 0], [4.0, 4.0, 4.0])
    assert "an autograd.Function in it has no vmap rule" in problem.notes[0]


def test_failures_become_loss_evaluation_errors_that_say_where() -> None:
    def broken(overrides: Mapping[str, Tensor]) -> Tensor:
        raise RuntimeError("shapes do not match")

    problem = _problem(broken)
    with pytest.raises(LossEvaluationError, match="the loss raised RuntimeError at θ: shapes"):
        problem.call({}, "at θ")
    with pytest.raises(LossEvaluationError, match="with a value of w moved: shapes do not match"):
        problem.batch("w", torch.zeros(2, 4, dtype=torch.float64))

    def refusing(overrides: Mapping[str, Tensor]) -> Tensor:
        raise LossEvaluationError("loss_fn returned (3,), expected a scalar tensor")

    with pytest.raises(LossEvaluationError, match=r"^loss_fn returned \(3,\)"):
        _problem(refusing).call({}, "at θ")  # already worded: passed on as it is


def test_non_finite_losses_are_refused() -> None:
    problem = _problem(lambda o: torch.log(o["w"]).sum().reshape(1))
    with pytest.raises(LossEvaluationError, match="non-finite value with a value of w moved"):
        problem.batch("w", torch.tensor([[1.0, 1.0, 1.0, -1.0]], dtype=torch.float64))


def test_arguments_become_real_parts_and_rebuild_exactly() -> None:
    z = torch.tensor([1 + 2j, -3j], dtype=torch.complex64)
    sparse = torch.tensor([[0.0, 1.5], [2.0, 0.0]]).to_sparse()
    x = torch.ones(2, requires_grad=True)
    notes: list[str] = []
    arguments = prepare_arguments((x, z, 3), {"s": sparse}, notes)
    assert [list(a.parts) for a in arguments] == [
        ["input0"],
        ["input1.real", "input1.imag"],
        [],
        ["s.values"],
    ]
    assert [a.wanted for a in arguments] == [True, False, False, False]  # only x requires grad
    rebuilt = arguments[1].rebuild({})
    assert rebuilt.dtype == torch.complex128 and torch.equal(rebuilt, z.to(torch.complex128))
    moved = arguments[3].rebuild({"s.values": torch.tensor([5.0, 6.0], dtype=torch.float64)})
    assert torch.equal(
        moved.to_dense(), torch.tensor([[0.0, 5.0], [6.0, 0.0]], dtype=torch.float64)
    )
    assert arguments[2].rebuild({}) == 3
    assert any("complex" in n for n in notes) and any("sparse COO" in n for n in notes)
    assert z.dtype == torch.complex64 and x.dtype == torch.float32  # the caller's are untouched


def test_select_and_scalar_loss_messages() -> None:
    assert select(["a.w", "a.b", "c.w"], "*.w", None) == ["a.w", "c.w"]
    assert select(["a.w", "a.b"], None, ["*.b"]) == ["a.w"]
    with pytest.raises(InvalidArgumentError, match="leave no tensor"):
        select(["a.w"], None, "a.*")
    with pytest.raises(InvalidTypeError, match="include: got int"):
        select(["a.w"], 3, None)  # type: ignore[arg-type]
    with pytest.raises(LossEvaluationError, match="complex scalar"):
        scalar_loss(torch.tensor(1j), "loss_fn")


def test_vmap_fallback_warnings_become_notes() -> None:
    message = (
        "There is a performance drop because we have not yet implemented the batching rule "
        "for aten::_native_multi_head_attention. Please file us an issue on GitHub"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(message, UserWarning, stacklevel=1)
    (note,) = vmap_notes(caught)
    assert "aten::_native_multi_head_attention" in note and "loop" in note


def _problem(values) -> Problem:  # type: ignore[no-untyped-def]
    base = {"w": torch.linspace(-1, 1, 6, dtype=torch.float64)}
    return Problem(base, (np.dtype(np.float64),), ("loss",), values)


def test_coordinates_and_batch_agree_with_one_at_a_time() -> None:
    problem = _problem(lambda o: (torch.sin(o.get("w", torch.zeros(6)) * 2) ** 2).sum().reshape(1))
    local = torch.tensor([0, 3, 5, 3])
    moved = torch.tensor([0.5, -0.25, 2.0, 1.0], dtype=torch.float64)
    batched = problem.coordinates("w", local, moved)[:, 0]
    for row, (i, v) in enumerate(zip(local.tolist(), moved.tolist(), strict=True)):
        w = torch.linspace(-1, 1, 6, dtype=torch.float64)
        w[i] = v
        assert batched[row] == pytest.approx(float((torch.sin(w * 2) ** 2).sum()), rel=1e-15)
    assert problem.vectorize and not problem.notes


def test_a_loss_that_cannot_be_vmapped_runs_one_at_a_time_with_a_note() -> None:
    problem = _problem(lambda o: torch.tensor([float(o["w"].sum())], dtype=torch.float64))
    values = problem.batch("w", torch.ones(3, 6, dtype=torch.float64))
    assert values[:, 0].tolist() == [6.0, 6.0, 6.0]
    assert not problem.vectorize and "one at a time" in problem.notes[0]
