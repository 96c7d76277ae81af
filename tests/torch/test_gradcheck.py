"""The drop-in gradcheck/gradgradcheck beside torch.autograd's, case by case.

The cases are PyTorch's own: the custom Functions of its documentation ("Extending
torch.autograd", "Double backward with custom functions") and the checks of its
gradcheck tests (jacobian mismatch, complex outputs, nondeterministic backward, sparse
inputs, undefined gradients, no differentiable output). On each, both checkers must
give the same answer; only at kinks do they differ, where gradprobe gives the
subgradient answer PyTorch documents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.autograd import Function
from torch.autograd.gradcheck import GradcheckError as TorchGradcheckError

from gradprobe import GradientCheckError
from gradprobe.errors import InvalidArgumentError
from gradprobe.torch import GradcheckError, gradcheck, gradgradcheck

torch.set_num_threads(1)


def both(check: str, func: Callable[..., Any], inputs: Any, **options: Any) -> tuple[bool, bool]:
    """(gradprobe's answer, PyTorch's answer), neither raising."""
    mine = {"gradcheck": gradcheck, "gradgradcheck": gradgradcheck}[check]
    theirs = getattr(torch.autograd, check)
    return (
        mine(func, inputs, raise_exception=False, **options),
        theirs(func, inputs, raise_exception=False, **options),
    )


def double(*shape: int, low: float = -1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(sum(shape) + 3)
    values = torch.rand(*shape, generator=generator, dtype=torch.float64) * (1 - low) + low
    return values.requires_grad_(True)


# ------------------------------------------------------------- documented custom Functions


class LinearFunction(Function):
    """The "Extending torch.autograd" example, setup_context form."""

    @staticmethod
    def forward(input: Any, weight: Any, bias: Any = None) -> Any:
        output = input.mm(weight.t())
        if bias is not None:
            output += bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        input, weight, bias = inputs
        ctx.save_for_backward(input, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad_output: Any) -> Any:
        input, weight, bias = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = grad_output.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_output.t().mm(input)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(0)
        return grad_input, grad_weight, grad_bias


class MulConstant(Function):
    @staticmethod
    def forward(tensor: Any, constant: float) -> Any:
        return tensor * constant

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.constant = inputs[1]

    @staticmethod
    def backward(ctx: Any, grad_output: Any) -> Any:
        return grad_output * ctx.constant, None


class MyCube(Function):
    """The vmap-able example: returns the derivative as a second output."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Any) -> Any:
        return x**3, 3 * x**2

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.save_for_backward(inputs[0], output[1])

    @staticmethod
    def backward(ctx: Any, grad_output: Any, grad_dx: Any) -> Any:
        x, dx = ctx.saved_tensors
        return grad_output * dx + grad_dx * 6 * x


class Square(Function):
    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return x**2

    @staticmethod
    def backward(ctx: Any, grad_out: Any) -> Any:
        (x,) = ctx.saved_tensors
        return grad_out * 2 * x


class Exp(Function):
    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        result = torch.exp(x)
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx: Any, grad_out: Any) -> Any:
        (result,) = ctx.saved_tensors
        return result * grad_out


class Sinh(Function):
    """Saves intermediate results as outputs, so that double backward sees them."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        expx, expnegx = torch.exp(x), torch.exp(-x)
        ctx.save_for_backward(expx, expnegx)
        return (expx - expnegx) / 2, expx, expnegx

    @staticmethod
    def backward(ctx: Any, grad_out: Any, grad_exp: Any, grad_negexp: Any) -> Any:
        expx, expnegx = ctx.saved_tensors
        grad_input = grad_out * (expx + expnegx) / 2
        grad_input += grad_exp * expx
        grad_input -= grad_negexp * expnegx
        return grad_input


class SinhBad(Function):
    """The documentation's "what NOT to do": intermediates on ctx, so double backward is wrong."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        expx, expnegx = torch.exp(x), torch.exp(-x)
        ctx.expx, ctx.expnegx = expx, expnegx
        return (expx - expnegx) / 2

    @staticmethod
    def backward(ctx: Any, grad_out: Any) -> Any:
        return grad_out * (ctx.expx + ctx.expnegx) / 2


class CubeBackward(Function):
    @staticmethod
    def forward(ctx: Any, grad_out: Any, x: Any) -> Any:
        ctx.save_for_backward(x, grad_out)
        return grad_out * 3 * x**2

    @staticmethod
    def backward(ctx: Any, grad_out: Any) -> Any:
        x, grad_out_prev = ctx.saved_tensors
        return grad_out * 3 * x**2, grad_out * 6 * x * grad_out_prev


class Cube(Function):
    """Double backward through a second custom Function."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx: Any, grad_out: Any) -> Any:
        (x,) = ctx.saved_tensors
        return CubeBackward.apply(grad_out, x)


DOCUMENTED: dict[str, tuple[Callable[..., Any], Callable[[], Any], bool, bool]] = {
    # name: (function, inputs, gradcheck's answer, gradgradcheck's answer)
    "linear": (LinearFunction.apply, lambda: (double(6, 5), double(4, 5), double(4)), True, True),
    "linear_no_bias": (LinearFunction.apply, lambda: (double(6, 5), double(4, 5)), True, True),
    "mul_constant": (lambda x: MulConstant.apply(x, 2.5), lambda: (double(3, 4),), True, True),
    "my_cube": (lambda x: MyCube.apply(x)[0], lambda: (double(5),), True, True),
    "square": (Square.apply, lambda: (double(3, 3),), True, True),
    "exp": (Exp.apply, lambda: (double(3, 3),), True, True),
    "sinh": (lambda x: Sinh.apply(x)[0], lambda: (double(3, 3),), True, True),
    "sinh_bad": (SinhBad.apply, lambda: (double(3, 3),), True, False),
    "cube": (Cube.apply, lambda: (double(3, 3),), True, True),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_functions_get_pytorchs_answers(name: str) -> None:
    function, make, first, second = DOCUMENTED[name]
    assert both("gradcheck", function, make()) == (first, first)
    assert both("gradgradcheck", function, make()) == (second, second)


def test_sinh_bad_double_backward_error_names_the_input_and_carries_the_report() -> None:
    x = double(3, 3)
    with pytest.raises(GradcheckError) as caught:
        gradgradcheck(SinhBad.apply, (x,))
    error = caught.value
    assert isinstance(error, TorchGradcheckError) and isinstance(error, GradientCheckError)
    assert error.report is not None and error.report.verdict == "wrong"
    assert "input0" in error.report.wrong_parameters[0]
    assert str(error).startswith("Jacobian mismatch for output 0 with respect to input 0")
    assert "gradient check: WRONG" in str(error)


# ------------------------------------------------------------------ PyTorch's gradcheck tests


def _add_to_gradient(y: Any) -> Any:
    y.register_hook(lambda grad: grad + 1e-2)
    return y


def test_jacobian_mismatch_real_and_complex() -> None:
    # test_gradcheck_jacobian_mismatch: a hook adds 1e-2 to the gradient (R->R, C->C, R->C, C->R).
    def fn(x: Any) -> Any:
        return _add_to_gradient(x.clone())

    def r_to_c(x: Any) -> Any:
        return _add_to_gradient(torch.complex(x, x))

    def c_to_r(x: Any) -> Any:
        return _add_to_gradient(torch.real(x))

    real = torch.ones(2, 2, requires_grad=True)
    complex_ = torch.ones(2, 2, requires_grad=True, dtype=torch.complex128)
    cases = [(fn, real, ""), (fn, complex_, "imaginary"), (r_to_c, real, "imaginary")]
    cases.append((c_to_r, complex_, ""))
    for function, x, part in cases:
        assert both("gradcheck", function, (x,)) == (False, False)
        with pytest.raises(TorchGradcheckError) as caught:
            gradcheck(function, (x,))
        headline = str(caught.value).splitlines()[0]
        assert "Jacobian mismatch for output 0 with respect to input 0" in headline
        assert (f"While considering the {part} part" in headline) == bool(part)
    # Without the hook, the same functions pass both checks (in float64: PyTorch's check of
    # the float32 input fails on its own rounding, gradprobe's checks float64 copies).
    real64 = real.detach().double().requires_grad_(True)
    for function, x in [(torch.clone, real64), (torch.clone, complex_), (torch.real, complex_)]:
        assert both("gradcheck", function, (x,)) == (True, True)
    assert both("gradcheck", torch.clone, (real,)) == (True, False)


def test_complex_and_real_outputs_together() -> None:
    # test_gradcheck_complex_non_complex_outputs
    a, b = double(2, 2), double(2, 2)
    assert both("gradcheck", lambda x, y: (torch.complex(x, y), x + 1), (a, b)) == (True, True)
    c = torch.ones(2, 2, requires_grad=True, dtype=torch.complex128)
    assert both("gradcheck", lambda z: (z, torch.real(z)), (c,)) == (True, True)


class NonDetFunc(Function):
    """test_gradcheck_nondeterministic: backward jittered by a relative ``jitter``."""

    @staticmethod
    def forward(ctx: Any, x: Any, jitter: float = 0.0) -> Any:
        ctx._jitter = jitter
        return x

    @staticmethod
    def backward(ctx: Any, grad_out: Any) -> Any:
        noise = 1 + torch.rand_like(grad_out) * ctx._jitter
        return NonDetFunc.apply(grad_out, ctx._jitter) * noise, None


def test_nondeterministic_backward() -> None:
    x = double(5, 5)
    for jitter, tolerance, expected in [(0.0, 0.0, True), (1e-6, 0.0, False), (1e-6, 1e-5, True)]:

        def function(v: Any, jitter: float = jitter) -> Any:
            return NonDetFunc.apply(v, jitter)

        answers = both("gradcheck", function, (x,), nondet_tol=tolerance)
        assert answers == (expected, expected), (jitter, tolerance)
    with pytest.raises(TorchGradcheckError, match="Backward is not reentrant"):
        gradcheck(lambda v: NonDetFunc.apply(v, 1e-6), (x,))
    with pytest.raises(TorchGradcheckError, match="Backward is not reentrant"):
        gradgradcheck(lambda v: NonDetFunc.apply(v, 1e-12), (x,))
    assert gradgradcheck(lambda v: NonDetFunc.apply(v, 1e-12), (x,), nondet_tol=1e-5)


def test_sparse_inputs() -> None:
    # test_gradcheck_sparse_input, test_gradcheck_dense_and_sparse_inputs (masked semantics)
    sparse = torch.rand(10, dtype=torch.float64).to_sparse().requires_grad_(True)
    assert gradcheck(torch.sparse.sum, (sparse,), masked=True)
    assert torch.autograd.gradcheck(torch.sparse.sum, (sparse,), masked=True)
    a = double(2, 2)
    b = torch.rand(2, 2, dtype=torch.float64).to_sparse().requires_grad_(True)

    def product(x: Any, y: Any) -> Any:
        return x * y.coalesce().to_dense()

    assert gradcheck(product, (a, b), masked=True)
    assert torch.autograd.gradcheck(product, (a, b), masked=True)


def test_undefined_gradient_and_grad_output_tests_run_as_pytorchs() -> None:
    # test_gradcheck_undefined_grad
    def raises_on_undefined(x: Any) -> Any:
        def hook(grad: Any) -> None:
            if grad is None:
                raise RuntimeError("x is undefined")

        y = x.clone()
        y.register_hook(hook)
        return y

    x = torch.ones(1, dtype=torch.float64, requires_grad=True)
    with pytest.warns(UserWarning, match="Backwards compatibility"):
        with pytest.raises(TorchGradcheckError, match="handle undefined output grads"):
            gradcheck(raises_on_undefined, (x,))

    # test_gradcheck_backward_mul_by_grad_output: backward ignores its grad_output
    class Ignores(Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (saved,) = ctx.saved_tensors
            return torch.ones_like(saved)

    assert both("gradcheck", Ignores.apply, (x,)) == (False, False)


def test_no_differentiable_output() -> None:
    # test_gradcheck_check_no_differentiable_outputs
    x = torch.ones((1,), requires_grad=True)
    with pytest.raises(
        TorchGradcheckError, match="Numerical gradient for function expected to be zero"
    ):
        gradcheck(lambda v: torch.tensor([v]), (x,))
    assert both("gradcheck", lambda v: torch.tensor([v]), (x,)) == (False, False)
    assert both("gradcheck", lambda v: (), (x,)) == (True, True)


def test_custom_errors_pass_through() -> None:
    # test_gradcheck_custom_error: only gradcheck's own failures become False
    def broken(x: Any) -> Any:
        raise RuntimeError("Not a GradcheckError!")

    with pytest.raises(RuntimeError, match="Not a GradcheckError!"):
        gradcheck(broken, (double(2),), raise_exception=False)


def test_inputs_are_validated_as_pytorch_does() -> None:
    # test_gradcheck_validates_inputs: at least one input must require grad, even when
    # raise_exception=False; a float32 input is checked in float64 copies.
    with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
        gradcheck(lambda v: v, (torch.rand(10),), raise_exception=False)
    with pytest.raises(InvalidArgumentError):
        gradcheck(lambda v: v, (torch.rand(10),))
    single = torch.ones(1, dtype=torch.float32, requires_grad=True)
    assert gradcheck(lambda v: v * 3, (single,))
    assert gradcheck(lambda v: v.mul(5), double(10)) and gradgradcheck(
        lambda v: v.mul(5), double(10)
    )


# -------------------------------------------------------------------------------- kinks


def test_at_a_kink_gradprobe_gives_the_subgradient_answer() -> None:
    # relu at 0 and clamp(max=2) at 2: PyTorch's gradients there (0, and 1) are valid
    # subgradients, between the one-sided slopes 0 and 1; torch's central difference lands
    # halfway and its check fails. (abs at 0 is no such case: its central difference is
    # 0 = sign(0), and both checks pass.)
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    for function in (torch.relu, lambda v: torch.clamp(v, max=2.0)):
        assert both("gradcheck", function, (x,)) == (True, False)
    assert both("gradcheck", torch.abs, (x,)) == (True, True)
    # A wrong gradient at the kink (outside the one-sided slopes) still fails.

    class WrongRelu(Function):
        @staticmethod
        def forward(ctx: Any, v: Any) -> Any:
            ctx.save_for_backward(v)
            return v.clamp(min=0)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (v,) = ctx.saved_tensors
            return grad * ((v > 0).double() - 2 * (v == 0).double())

    assert both("gradcheck", WrongRelu.apply, (x,)) == (False, False)


def test_pytorch_tolerances_decide_when_given() -> None:
    # A relative error of 1e-4: wrong for gradprobe's bounds, within rtol=1e-3 for PyTorch's.
    class Slightly(Function):
        @staticmethod
        def forward(ctx: Any, v: Any) -> Any:
            ctx.save_for_backward(v)
            return v**2

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (v,) = ctx.saved_tensors
            return grad * 2 * v * (1 + 1e-4)

    x = double(4, low=0.5)
    assert not gradcheck(Slightly.apply, (x,), raise_exception=False)
    assert both("gradcheck", Slightly.apply, (x,), atol=1e-5, rtol=1e-3) == (True, True)
    assert both("gradcheck", Slightly.apply, (x,), atol=1e-7, rtol=1e-6) == (False, False)


class Doubled(Function):
    """2x with a backward and a forward-mode rule (jvp); the jvp is wrong when asked."""

    wrong_jvp = False

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        return x * 2

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        return grad * 2

    @staticmethod
    def jvp(ctx: Any, tangent: Any) -> Any:
        return tangent * (3 if Doubled.wrong_jvp else 2)


@pytest.mark.parametrize("wrong", [False, True])
def test_forward_mode_is_checked_like_pytorchs(wrong: bool) -> None:
    # test_gradcheck_forward_ad: a wrong jvp fails only the forward-mode check.
    Doubled.wrong_jvp = wrong
    try:
        x = double(4)
        assert both("gradcheck", Doubled.apply, (x,)) == (True, True)
        answers = both("gradcheck", Doubled.apply, (x,), check_forward_ad=True)
        assert answers == (not wrong, not wrong)
        forward_only = {"check_forward_ad": True, "check_backward_ad": False}
        assert both("gradcheck", Doubled.apply, (x,), **forward_only) == (not wrong, not wrong)
        if wrong:
            with pytest.raises(
                TorchGradcheckError, match="Jacobian computed with forward mode mismatch"
            ):
                gradcheck(Doubled.apply, (x,), check_forward_ad=True)
    finally:
        Doubled.wrong_jvp = False
    with pytest.raises(InvalidArgumentError, match="both False"):
        gradcheck(torch.sin, (x,), check_backward_ad=False)


CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here: the CUDA route is not run"
)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_drop_ins_on_each_device(device: str) -> None:
    x = double(3, 3).detach().to(device).requires_grad_(True)
    assert gradcheck(Exp.apply, (x,)) and gradgradcheck(lambda v: Sinh.apply(v)[0], (x,))
    assert not gradgradcheck(SinhBad.apply, (x,), raise_exception=False)
    assert both("gradcheck", Cube.apply, (x,)) == (True, True)


def test_a_random_function_is_told_from_a_nondeterministic_backward() -> None:
    x = double(6)
    with pytest.raises(TorchGradcheckError, match="not deterministic|not reentrant") as caught:
        gradcheck(lambda v: nn.functional.dropout(v, 0.5, training=True), (x,))
    assert "random loss" in str(caught.value)
    assert not torch.autograd.gradcheck(
        lambda v: nn.functional.dropout(v, 0.5, training=True), (x,), raise_exception=False
    )


PLANTED_TORCH = """
import torch
from gradprobe.torch import gradcheck, gradgradcheck

class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x**2  # planted: 3 x**2

X = torch.linspace(0.5, 1.5, 5, dtype=torch.float64, requires_grad=True)

def test_first_order():
    gradcheck(Cube.apply, (X,))

def test_second_order():
    gradgradcheck(lambda x: Cube.apply(x) * x, (X,))

def test_bad_input():
    gradcheck(torch.sin, (torch.ones(3, dtype=torch.float64),))
"""


def test_a_failing_check_shows_the_report_not_gradprobes_frames(
    planted_test_output: Callable[[str], str],
) -> None:
    out = planted_test_output(PLANTED_TORCH)
    first, rest = out.split("_ test_second_order _")
    second, bad_input = rest.split("_ test_bad_input _")
    assert "3 failed" in bad_input
    for shown in (first, second):
        assert "GradcheckError" in shown and "verdict" in shown, shown  # the report
        assert "gradprobe/torch/" not in shown and "gradprobe/check/" not in shown, shown
    assert "During handling" not in first + second
    # The probe can see gradprobe's frames: a bad argument is no failed check and keeps them.
    assert "gradprobe/torch/gradcheck.py" in bad_input, bad_input
