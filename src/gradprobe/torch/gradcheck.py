"""Drop-in ``gradcheck`` and ``gradgradcheck``: PyTorch's signatures, gradprobe's report.

Replace ``from torch.autograd import gradcheck`` with
``from gradprobe.torch import gradcheck`` and the calls keep working: the same
arguments, ``True`` on success, and on failure :class:`GradcheckError` (a subclass of
``torch.autograd.gradcheck.GradcheckError``, so existing ``except`` clauses catch it)
or ``False`` with ``raise_exception=False``. What changes is what a failure says: the
error carries gradprobe's report, which input and entry is wrong, analytic beside
numerical, a diagnosis, and kinks told apart from bugs (at a ReLU's zero PyTorch's
subgradient passes, where ``torch.autograd.gradcheck`` fails).

The numerical comparison is gradprobe's: each output projected on a fixed random
vector (the vector-Jacobian product backward computes), every input entry
differentiated, judged by gradprobe's error bounds, or by PyTorch's
``|analytic − numerical| ≤ atol + rtol·|numerical|`` per entry when ``atol`` or
``rtol`` is given. PyTorch's structural tests run as PyTorch runs them (backward
multiplied by the output gradient, undefined output gradients, batched gradients).
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from gradprobe.check.checker import GradientCheckError, hides_failed_check
from gradprobe.check.report import GradCheckReport
from gradprobe.errors import InvalidArgumentError, NondeterministicLossError
from gradprobe.torch._evaluator import check_problem
from gradprobe.torch._function import function_problem
from gradprobe.torch._options import settings
from gradprobe.torch._problem import as_inputs, output_tensors

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]

# The module itself: ``torch.autograd.gradcheck`` is also the name of the function.
_torch: Any = importlib.import_module("torch.autograd.gradcheck")
_TORCH_ATOL, _TORCH_RTOL = 1e-5, 1e-3


class GradcheckError(_torch.GradcheckError, GradientCheckError):  # type: ignore[misc]
    """A drop-in check failed; ``error.report`` is gradprobe's report (None for a structural test).

    Subclasses ``torch.autograd.gradcheck.GradcheckError`` (so code that catches
    PyTorch's error keeps working) and :class:`gradprobe.GradientCheckError`.

    Parameters
    ----------
    headline : str
        The first line: what failed, in PyTorch's words where PyTorch has them.
    report : GradCheckReport or None
        The check's report; ``str(error)`` shows it below the headline.
    """

    def __init__(self, headline: str, report: GradCheckReport | None = None) -> None:
        RuntimeError.__init__(self, headline if report is None else f"{headline}\n\n{report}")
        self.report = report  # type: ignore[assignment]
        self.headline = headline


def _differentiable_outputs(
    func: Callable[..., Any], inputs: tuple[Any, ...]
) -> tuple[int, list[int]]:
    """How many tensors ``func`` returns, and the positions of those that require grad."""
    tensors = output_tensors(func(*inputs))
    if any(t.layout != torch.strided for t in tensors):
        raise ValueError(
            "Sparse output is not supported at gradcheck yet. Please call "
            "to_dense(masked_grad=...) on the output of fn for gradcheck."
        )
    return len(tensors), [i for i, t in enumerate(tensors) if t.requires_grad]


def _failures(report: GradCheckReport, atol: float | None, rtol: float | None) -> list[Any]:
    """Return the failing entries: by gradprobe's verdict, or PyTorch's tolerances if given.

    Ordered as PyTorch reports them: the imaginary parts of complex outputs first, then
    the largest error.
    """
    if atol is None and rtol is None:
        if report.passed:
            return []
        bad = {row.name for row in report.parameters if row.verdict != "ok"}
        failing = [e for e in report.worst(len(report.entries)) if e.parameter in bad]
        return sorted(failing or report.worst(1), key=lambda e: ".imag/" not in e.name)
    atol = _TORCH_ATOL if atol is None else atol
    rtol = _TORCH_RTOL if rtol is None else rtol
    failing = [
        entry
        for entry in report.entries
        if not entry.kink or entry.relative_error > 0  # a kink's subgradient passes
        if abs(entry.analytic - entry.numerical) > atol + rtol * abs(entry.numerical)
    ]
    return sorted(failing, key=lambda e: (".imag/" not in e.name, -abs(e.analytic - e.numerical)))


def _headline(name: str, analytic: float, numerical: float, column: str, none: bool) -> str:
    """PyTorch's words for a mismatch, then the entry: ``…output 0 with respect to input 1``."""
    output, _, entry = name.rpartition("/")
    output = output or column
    found = re.match(r"output(\d+)(?:\.(real|imag))?", output)
    which = re.match(r"input(\d+)", entry)
    where = f"input {which.group(1)}" if which else entry.split("[")[0]
    numbers = f"({entry}: analytic {analytic:.6g}, numerical {numerical:.6g})"
    if none:
        return f"Numerical gradient for function expected to be zero {numbers}"
    prefix = ""
    if found and found.group(2):
        part = {"real": "real", "imag": "imaginary"}[found.group(2)]
        prefix = f"While considering the {part} part of complex outputs only, "
    index = found.group(1) if found else "0"
    return f"{prefix}Jacobian mismatch for output {index} with respect to {where} {numbers}"


def _structural_tests(
    func: Callable[..., Any],
    inputs: tuple[Any, ...],
    check_undefined_grad: bool,
    check_batched_grad: bool,
    check_grad_dtypes: bool,
    masked: bool | None,
) -> None:
    """PyTorch's own tests of a backward's structure, run exactly as PyTorch runs them."""
    outputs = tuple(t for t in output_tensors(func(*inputs)) if t.requires_grad)
    if check_grad_dtypes:
        differentiable = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
        grads = torch.autograd.grad(
            outputs, differentiable, [torch.ones_like(o) for o in outputs], allow_unused=True
        )
        for grad, x in zip(grads, differentiable, strict=True):
            if grad is not None and grad.dtype != x.dtype:
                raise GradcheckError("Gradient has dtype mismatch")
    if check_batched_grad:
        for i, output in enumerate(outputs):
            _convert(_torch._test_batched_grad, inputs, output, i)
    _convert(_torch._test_backward_mul_by_grad_output, outputs, inputs, masked)
    if check_undefined_grad:
        _convert(_torch._test_undefined_backward_mode, func, outputs, inputs)


def _check(
    func: Callable[..., Any],
    inputs: Any,
    *,
    eps: float | None,
    atol: float | None,
    rtol: float | None,
    raise_exception: bool,
    nondet_tol: float,
    order: int,
    grad_outputs: Any = None,
    structure: Callable[[tuple[Any, ...]], None] | None = None,
    modes: tuple[bool, ...] = (False,),
    **options: Any,
) -> bool:
    """Run the check once per mode (False: backward, True: forward-mode AD)."""
    __tracebackhide__ = hides_failed_check
    started = time.perf_counter()
    tupled = as_inputs(inputs, "inputs") if isinstance(inputs, (list, tuple, Tensor)) else (inputs,)
    if not any(isinstance(x, Tensor) and x.requires_grad for x in tupled):
        raise InvalidArgumentError(
            "inputs: got no tensor with requires_grad=True, gradcheck expects at least one "
            "input tensor to require gradient; set requires_grad on the inputs to check"
        )
    config = settings({"eps": eps, "nondet_tol": nondet_tol, **options})
    outputs = None
    if order == 1:
        count, outputs = _differentiable_outputs(func, tupled)
        if not count:
            return True  # nothing to check, as torch.autograd.gradcheck answers
    for forward in modes:
        try:
            problem = function_problem(
                func,
                tupled,
                None,
                per_output=True,
                order=order,
                grad_outputs=grad_outputs,
                seed=config.seed,
                batch_size=config.batch_size,
                outputs=outputs or None,
            )
            problem.forward_ad = forward
            report = check_problem(problem, config, started)
        except NondeterministicLossError as error:
            what = (
                "Backward is not reentrant"
                if str(error).startswith("backward")
                else ("The function is not deterministic")
            )
            return _fail(raise_exception, f"{what}: {error}")
        failing = _failures(report, atol, rtol)
        if failing:
            worst = failing[0]
            headline = _headline(
                worst.name, worst.analytic, worst.numerical, problem.columns[0], outputs == []
            )
            if forward:
                headline = headline.replace(
                    "Jacobian mismatch", "Jacobian computed with forward mode mismatch"
                )
            return _fail(raise_exception, headline, report)
    if structure is not None:
        try:
            structure(tupled)
        except GradcheckError as error:
            return _fail(raise_exception, error.headline, error.report)
    return True


def _convert(test: Callable[..., Any], *args: Any) -> None:
    """Run one of PyTorch's own tests, its failure raised as this module's error."""
    try:
        test(*args)
    except _torch.GradcheckError as error:
        if isinstance(error, GradcheckError):
            raise
        raise GradcheckError(str(error)) from error


def _fail(raise_exception: bool, headline: str, report: GradCheckReport | None = None) -> bool:
    __tracebackhide__ = hides_failed_check
    if raise_exception:
        # from None: the headline says what the caught error said; pytest shows one error.
        raise GradcheckError(headline, report) from None
    return False


def gradcheck(
    func: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    *,
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
) -> bool:
    """Check the gradients of ``func`` at ``inputs``, as ``torch.autograd.gradcheck`` does.

    Parameters
    ----------
    func : callable
        Takes the tensors of ``inputs`` and returns a tensor or a tuple of tensors.
    inputs : Tensor or tuple of Tensor
        The inputs; those with ``requires_grad`` are checked (at least one must), as
        float64 copies whatever their dtype.
    eps : float, optional
        The step of the differences, used exactly; by default gradprobe's own per value
        (PyTorch's default is a fixed 1e-6).
    atol, rtol : float, optional
        When either is given the verdict is PyTorch's ``|a − n| ≤ atol + rtol·|n|`` on
        every checked entry (PyTorch's default for the other, 1e-5 or 1e-3), kinks passing
        at a valid subgradient; otherwise gradprobe's error bounds decide.
    raise_exception : bool, default=True
        Raise :class:`GradcheckError` on failure; otherwise return False.
    nondet_tol : float, default=0.0
        How much two identical backward passes may differ per entry.
    check_undefined_grad, check_batched_grad, check_grad_dtypes, masked
        PyTorch's structural tests, run as PyTorch runs them.
    check_forward_ad : bool, default=False
        Also check the gradient forward-mode AD gives (one tangent per input value)
        against the same numerical derivatives.
    check_batched_forward_grad : bool, default=False
        PyTorch's test of batched forward-mode gradients, run as PyTorch runs it.
    check_backward_ad : bool, default=True
        Check the backward; False (with ``check_forward_ad``) checks forward mode only.
    fast_mode : bool, default=False
        Accepted for compatibility; gradprobe's full check runs either way (it is
        batched and says which entry is wrong, so a projection-only mode is not needed).

    Returns
    -------
    bool
        True when every check passes; False on failure with ``raise_exception=False``.

    Raises
    ------
    GradcheckError
        On failure, carrying gradprobe's report as ``error.report``.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    >>> gradcheck(torch.sin, (x,))
    True
    """
    __tracebackhide__ = True  # pytest shows the report, not gradprobe's frames
    del fast_mode  # the full check is the only mode
    if not (check_forward_ad or check_backward_ad):
        raise InvalidArgumentError(
            "check_forward_ad/check_backward_ad: got both False, expected at least one True"
        )

    def structure(tupled: tuple[Any, ...]) -> None:
        __tracebackhide__ = hides_failed_check
        if check_batched_forward_grad:
            _convert(_torch._test_batched_grad_forward_ad, func, tupled)
        if check_backward_ad:
            _structural_tests(
                func, tupled, check_undefined_grad, check_batched_grad, check_grad_dtypes, masked
            )

    return _check(
        func,
        inputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        nondet_tol=nondet_tol,
        order=1,
        structure=structure,
        modes=tuple(
            mode
            for mode, wanted in ((False, check_backward_ad), (True, check_forward_ad))
            if wanted
        ),
    )


def gradgradcheck(
    func: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    grad_outputs: Tensor | Sequence[Tensor] | None = None,
    *,
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
) -> bool:
    """Check second-order gradients, as ``torch.autograd.gradgradcheck`` does.

    The function checked is ``(x, v) ↦ autograd.grad(func(x), x, v, create_graph=True)``,
    differentiated by ``x`` and by ``v`` (``grad_outputs``, seeded random ones when None),
    with the report and error of :func:`gradcheck`.

    Parameters
    ----------
    func, inputs, eps, atol, rtol, raise_exception, nondet_tol
        As for :func:`gradcheck`.
    grad_outputs : Tensor or tuple of Tensor, optional
        The vectors ``v``, one per output of ``func`` that requires grad.
    gen_non_contig_grad_outputs, check_undefined_grad, check_grad_dtypes, check_batched_grad,
    masked, fast_mode
        Accepted for compatibility; the second-order check is the full one.
    check_fwd_over_rev : bool, default=False
        True raises NotImplementedError (forward mode is not part of gradprobe).
    check_rev_over_rev : bool, default=True
        Must be True.

    Returns
    -------
    bool

    Raises
    ------
    GradcheckError
        On failure, carrying gradprobe's report.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    >>> gradgradcheck(torch.tanh, (x,))
    True
    """
    __tracebackhide__ = True  # pytest shows the report, not gradprobe's frames
    del gen_non_contig_grad_outputs, check_undefined_grad, check_grad_dtypes
    del check_batched_grad, fast_mode, masked
    if check_fwd_over_rev or not check_rev_over_rev:
        raise NotImplementedError(
            "check_fwd_over_rev/check_rev_over_rev=False: gradprobe checks reverse over "
            "reverse only; use torch.autograd.gradgradcheck for forward over reverse"
        )
    return _check(
        func,
        inputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        nondet_tol=nondet_tol,
        order=2,
        grad_outputs=grad_outputs,
    )
