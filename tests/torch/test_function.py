"""check_function's inputs as PyTorch users pass them: tuples, keywords, complex, sparse, hooks.

Each case is run on a correct function and on one with a planted bug; the bug must be
found and named, and torch.autograd.gradcheck on the same function must agree.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.autograd import Function

from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.torch import check_function
from gradprobe.torch._function import Projection

torch.set_num_threads(1)


def _values(*shape: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class ComplexMul(Function):
    """z·w for complex z, w; backward in PyTorch's convention, grad·conj(∂/∂·)."""

    planted = 0.0

    @staticmethod
    def forward(ctx: Any, z: Any, w: Any) -> Any:
        ctx.save_for_backward(z, w)
        return z * w

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        z, w = ctx.saved_tensors
        return grad * w.conj() + ComplexMul.planted, grad * z.conj()


@pytest.mark.parametrize("planted", [0.0, 1e-2])
def test_complex_inputs_and_outputs_are_checked_as_real_pairs(planted: float) -> None:
    # Issue 11's defect: a +1e-2 error in a complex backward used to be "ok".
    ComplexMul.planted = planted
    z = torch.complex(_values(3, seed=1), _values(3, seed=2)).requires_grad_(True)
    w = torch.complex(_values(3, seed=3), _values(3, seed=4)).requires_grad_(True)
    report = check_function(ComplexMul.apply, z, w)
    names = [row.name for row in report.parameters]
    assert names == ["input0.real", "input0.imag", "input1.real", "input1.imag"]
    assert any("Wirtinger" in note for note in report.notes)
    torch_answer = torch.autograd.gradcheck(ComplexMul.apply, (z, w), raise_exception=False)
    if planted:
        assert report.verdict == "wrong" and torch_answer is False
        assert set(report.wrong_parameters) <= {"input0.real", "input0.imag"}
        assert report.parameter("input1.real").verdict == "ok"
    else:
        assert report.verdict == "ok" and torch_answer is True


def test_complex_output_of_real_inputs() -> None:
    x = _values(4).requires_grad_(True)
    good = check_function(lambda v: torch.polar(v.abs() + 1, v), x)
    assert good.verdict == "ok"

    def hooked(v: Any) -> Any:
        y = torch.complex(v, 2 * v)
        y.register_hook(lambda grad: grad + 1e-2)
        return y

    assert check_function(hooked, x).verdict == "wrong"


def test_sparse_coo_input_is_checked_by_its_values() -> None:
    dense = torch.tensor([[0.0, 2.0, 0.0], [1.5, 0.0, -1.0]], dtype=torch.float64)
    sparse = dense.to_sparse().requires_grad_(True)
    report = check_function(lambda s: (s.to_dense() ** 3).sum(), sparse)
    assert report.verdict == "ok"
    assert [row.name for row in report.parameters] == ["input0.values"]
    assert report.checked == 3
    assert any("sparse COO" in note for note in report.notes)

    class WrongCube(Function):
        @staticmethod
        def forward(ctx: Any, v: Any) -> Any:
            ctx.save_for_backward(v)
            return v**3

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (v,) = ctx.saved_tensors
            return grad * 2 * v**2  # should be 3v²

    bad = check_function(lambda s: WrongCube.apply(s.to_dense()).sum(), sparse)
    assert bad.verdict == "wrong" and bad.wrong_parameters == ["input0.values"]


def test_other_sparse_layouts_are_refused_clearly() -> None:
    csr = _values(2, 3).to_sparse_csr()
    with pytest.raises(InvalidTypeError, match="input0: got a tensor with layout torch.sparse_csr"):
        check_function(lambda s: s.to_dense().sum(), csr)


def test_a_function_that_registers_a_hook_is_called_with_grad_on() -> None:
    x = _values(5).requires_grad_(True)

    def scaled(factor: float) -> Any:
        def fn(v: Any) -> Any:
            y = torch.tanh(v)
            y.register_hook(lambda grad: grad * factor)  # needs autograd on to register
            return y

        return fn

    good = check_function(scaled(1.0), x)
    assert good.verdict == "ok"
    assert any("grad enabled" in note for note in good.notes)
    bad = check_function(scaled(1.5), x)
    assert bad.verdict == "wrong" and "constant factor" in (bad.parameter("input0").diagnosis or "")
    assert not torch.autograd.gradcheck(scaled(1.5), (x,), raise_exception=False)


def test_a_tuple_of_inputs_is_unpacked_as_gradcheck_does() -> None:
    x, w = _values(3, 2).requires_grad_(True), _values(3, 2, seed=5).requires_grad_(True)
    as_tuple = check_function(torch.mul, (x, w))
    as_list = check_function(torch.mul, [x, w])
    spread = check_function(torch.mul, x, w)
    assert [row.name for row in as_tuple.parameters] == ["input0", "input1"]
    for report in (as_tuple, as_list):
        assert [e.numerical for e in report.entries] == [e.numerical for e in spread.entries]


def test_keyword_tensors_are_checked_by_their_names() -> None:
    x, w = _values(4, 3), _values(2, 3, seed=8)

    def layer(v: Any, *, weight: Any, scale: float) -> Any:
        return torch.tanh(v @ weight.T) * scale

    report = check_function(layer, x, kwargs={"weight": w, "scale": 2.0})
    assert report.verdict == "ok"
    assert [row.name for row in report.parameters] == ["input0", "weight"]
    only = check_function(layer, x, kwargs={"weight": w, "scale": 2.0}, include="weight")
    assert [row.name for row in only.parameters] == ["weight"]
    with pytest.raises(InvalidTypeError, match="kwargs: got list"):
        check_function(layer, x, kwargs=[w])  # type: ignore[arg-type]


def test_outputs_that_change_shape_are_named() -> None:
    def grows(v: Any) -> Any:
        return torch.cat([v, v]) if bool(v[0] > 0.5) else v

    x = torch.tensor([0.5, 1.0], dtype=torch.float64)
    with pytest.raises(LossEvaluationError, match="same shape when inputs are perturbed"):
        check_function(grows, x, eps=1e-3)


def test_projection_splits_complex_outputs_into_real_and_imaginary_columns() -> None:
    first = [torch.zeros(2, dtype=torch.complex128), torch.zeros(()), torch.zeros(3)]
    projection = Projection(first, [0, 1, 2], seed=0)
    assert projection.names == ["output0.real", "output0.imag", "output1", "output2"]
    y = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex128)
    terms = projection([y, torch.tensor(4.0), torch.ones(3)])
    weights = [column[3] for column in projection.columns]
    assert float(terms[0]) == pytest.approx(float((weights[0] * y.real).sum()))
    assert float(terms[1]) == pytest.approx(float((weights[1] * y.imag).sum()))
    assert float(terms[2]) == 4.0  # a real scalar output is taken as it is


def test_per_output_names_complex_parts() -> None:
    x = _values(3).requires_grad_(True)
    report = check_function(lambda v: (torch.complex(v, v**2), v.sum()), x, per_output=True)
    names = [row.name for row in report.parameters]
    assert names == ["output0.real/input0", "output0.imag/input0", "output1/input0"]
    assert report.verdict == "ok"


def test_no_tensor_to_differentiate_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="expected at least one floating-point"):
        check_function(lambda n: torch.ones(2) * n, 3)
