"""The pieces of a Problem: arguments as real parts, patterns, batched evaluation and its notes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.torch._problem import (
    Problem,
    prepare_arguments,
    scalar_loss,
    select,
    vmap_notes,
)


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
