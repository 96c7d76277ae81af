"""Fidelity benchmark: how often is gradprobe's gradient-check verdict wrong?

Run::

    PYTHONPATH=src python benchmarks/fidelity.py [--quick] [--failures PATH]

A seeded, deterministic population of adversarial cases. Each case is a loss on a dict
of NumPy arrays, a point, an analytic gradient (the exact one, or the exact one with a
planted bug), the planted truth and the check's settings (``eps``, ``method``). The exact
gradient comes from PyTorch float64 autograd on the same function: every loss here is
written once against a tiny array namespace (:class:`NumpyOps`, :class:`TorchOps`), so
the NumPy loss gradprobe differentiates and the torch function autograd differentiates
are the same code.

A planted bug is *detectable* at a setting when its largest change exceeds, by
:data:`DETECTABILITY_FACTOR`, the actual error of the numerical derivative at that entry:
``|numerical − exact|``, computed with the formula and the step gradprobe uses there
(for ``eps=None`` the documented default step, cross-checked against ``report.steps``).
For ``method="central"`` that is the central difference the brief asks for; for the other
methods it is that method's own formula, since a central difference would call bugs
detectable that the chosen formula cannot see (forward) or hide ones it can (Richardson).
Undetectable bugs are counted apart, never as misses.

Only gradprobe's stable public API is used: ``check_gradients`` and the report's
``verdict``, ``passed``, ``difference``, ``parameters``, ``wrong_parameters``,
``worst(k)`` and ``steps`` (the last only to cross-check the step, when present). A
verdict other than "ok", "suspicious" and "wrong" (such as the planned "inconclusive")
is recorded as its own outcome.

The module can be imported by file path: :func:`build_cases` returns the population,
:func:`run` the outcome of every case, :func:`summarize` and :func:`format_table` the
tables :func:`main` prints. The exit status is 0 whatever is found.
"""

import argparse
import datetime
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

import gradprobe

Array = NDArray[np.float64]
Params = dict[str, NDArray[Any]]

# ---------------------------------------------------------------------------------------
# Settings of the benchmark itself
# ---------------------------------------------------------------------------------------

DETECTABILITY_FACTOR = 10.0
"""A bug is detectable when its largest change exceeds this many numerical errors there."""
LOOP_EPS = 1e-7
"""Baseline (a): the course's step, ``θᵢ ± ε``, divided by ``2ε``."""
LOOP_CUT = 1e-6
"""Baseline (a) flags a gradient when the course's relative difference exceeds this (the
lower edge of gradprobe's default band, so both are judged by the same number)."""
EPS_SWEEP: tuple[float | None, ...] = (None, 1e-3, 1e-5, 1e-7, 1e-9)
METHOD_SWEEP: tuple[str, ...] = ("central", "forward", "richardson", "complex")
KNOWN_VERDICTS = ("ok", "suspicious", "wrong", "inconclusive")

DIAGNOSIS_KEYWORDS: dict[str, tuple[str, ...]] = {
    "factor": ("constant factor",),
    "sign": ("sign flipped",),
    "detached": ("all zero", "detached"),
    "missing_l2": ("regularization",),
    "transpose": ("transpose",),
    "entry": ("single wrong entry",),
}
"""The expected pattern of each bug kind, as words its diagnosis must contain (any one,
case-insensitive). Bug kinds without an entry here are not judged on their diagnosis."""

FAMILIES: dict[str, str] = {
    "correct": "1 correct MLPs",
    "offset": "2 +1e6 / saturation",
    "minimum": "3 near a minimum",
    "float32": "4 float32",
    "kinks": "5 ReLU kinks",
    "bugs": "6 planted bugs",
    "sweep": "7 eps/method sweep",
    "crossing": "8 loss crossing 0 / +1e10",
}
"""Family keys and the labels of their rows, in table order."""

# Full-run size of each family, and the stride of the --quick slice through it (strides
# coprime with the families' cycles, so the slice still mixes kinds).
FAMILY_SIZE = {
    "correct": 250,
    "offset": 40,
    "minimum": 40,
    "float32": 50,
    "kinks": 48,
    "bugs": 198,
    "sweep": 320,
    "crossing": 40,
}
QUICK_STRIDE = {
    "correct": 23,
    "offset": 5,
    "minimum": 5,
    "float32": 7,
    "kinks": 7,
    "bugs": 17,
    "sweep": 37,
    "crossing": 5,
}

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "softplus", "elu", "linear")
HEADS = ("bce", "softmax", "mse")
SCALES = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2)
_GELU_C = math.sqrt(2.0 / math.pi)
_FAMILY_SEED = {name: 1000 + k for k, name in enumerate(FAMILIES)}


def _rng(family: str, index: int) -> np.random.Generator:
    """The generator of case ``index`` of ``family``: fixed, independent of the others."""
    return np.random.default_rng([20240611, _FAMILY_SEED[family], index])


# ---------------------------------------------------------------------------------------
# One loss, two array libraries
# ---------------------------------------------------------------------------------------


class NumpyOps:
    """The array operations the losses use, in NumPy (complex input allowed)."""

    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    tanh = staticmethod(np.tanh)

    @staticmethod
    def real(x: Any) -> Any:
        """Return the real part (``x`` itself for real input)."""
        return np.real(x)

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        """Return ``a`` where ``condition`` holds, else ``b``."""
        return np.where(condition, a, b)

    @staticmethod
    def sum(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
        """Return the sum over ``axis`` (all axes by default)."""
        return np.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def mean(x: Any) -> Any:
        """Return the mean of all entries."""
        return np.mean(x)

    @staticmethod
    def row_max(x: Any) -> Any:
        """Return each row's largest real part, shape ``(m, 1)``, as a constant."""
        return np.max(np.real(x), axis=1, keepdims=True)


class TorchOps:
    """The array operations the losses use, in PyTorch (differentiable)."""

    exp = staticmethod(torch.exp)
    log = staticmethod(torch.log)
    log1p = staticmethod(torch.log1p)
    tanh = staticmethod(torch.tanh)

    @staticmethod
    def real(x: Any) -> Any:
        """Return the real part (``x`` itself for real input)."""
        return x.real if x.is_complex() else x

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        """Return ``a`` where ``condition`` holds, else ``b``."""
        return torch.where(condition, a, b)

    @staticmethod
    def sum(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
        """Return the sum over ``axis`` (all axes by default)."""
        return torch.sum(x) if axis is None else torch.sum(x, dim=axis, keepdim=keepdims)

    @staticmethod
    def mean(x: Any) -> Any:
        """Return the mean of all entries."""
        return torch.mean(x)

    @staticmethod
    def row_max(x: Any) -> Any:
        """Return each row's largest real part, shape ``(m, 1)``, as a constant."""
        return torch.amax(x.detach(), dim=1, keepdim=True)


NUMPY = NumpyOps()
TORCH = TorchOps()
Ops = Any  # NumpyOps or TorchOps


def _softplus(z: Any, ops: Ops) -> Any:
    """``log(1 + eᶻ)`` without overflow; both branches agree in value and slope at 0."""
    nonnegative = ops.real(z) >= 0
    absolute = ops.where(nonnegative, z, -z)
    return ops.where(nonnegative, z, 0 * z) + ops.log1p(ops.exp(-absolute))


def _sigmoid(z: Any, ops: Ops) -> Any:
    """``1 / (1 + e⁻ᶻ)`` without overflow."""
    nonnegative = ops.real(z) >= 0
    e = ops.exp(-ops.where(nonnegative, z, -z))
    return ops.where(nonnegative, 1 / (1 + e), e / (1 + e))


def activation(name: str, z: Any, ops: Ops) -> Any:
    """Apply a hidden activation; ReLU-type kinks take torch's slope (0) at exactly 0.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    z : array or tensor
        Pre-activations (complex allowed with NumPy, for the complex step).
    ops : NumpyOps or TorchOps
        The array library.

    Returns
    -------
    array or tensor
    """
    if name == "linear":
        return z
    positive = ops.real(z) > 0
    if name == "relu":
        return ops.where(positive, z, 0 * z)
    if name == "leaky_relu":
        return ops.where(positive, z, 0.01 * z)
    if name == "elu":
        return ops.where(positive, z, ops.exp(ops.where(positive, 0 * z, z)) - 1)
    if name == "tanh":
        return ops.tanh(z)
    if name == "sigmoid":
        return _sigmoid(z, ops)
    if name == "softplus":
        return _softplus(z, ops)
    if name == "gelu":
        return 0.5 * z * (1 + ops.tanh(_GELU_C * (z + 0.044715 * z**3)))
    raise ValueError(f"unknown activation {name!r}")


def head(kind: str, z: Any, y: Any, ops: Ops) -> Any:
    """The data term of a loss on the network's output ``z`` (shape ``(m, k)``).

    ``"bce"``: binary cross-entropy with a sigmoid output, from logits (stable);
    ``"saturating"``: the same written the course's way, ``−y log a − (1 − y) log(1 − a)``
    with ``a = 1 / (1 + e⁻ᶻ)``, which loses digits as ``a → 1``; ``"softmax"``: softmax
    cross-entropy (one-hot ``y``); ``"mse"``: the mean of ``(z − y)²``.
    """
    if kind == "bce":
        return ops.mean(_softplus(z, ops) - y * z)
    if kind == "saturating":
        a = 1 / (1 + ops.exp(-z))
        return -ops.mean(y * ops.log(a) + (1 - y) * ops.log(1 - a))
    if kind == "softmax":
        shift = ops.row_max(z)
        lse = ops.log(ops.sum(ops.exp(z - shift), axis=1, keepdims=True)) + shift
        return ops.mean(lse[:, 0] - ops.sum(y * z, axis=1))
    if kind == "mse":
        return ops.mean((z - y) ** 2)
    raise ValueError(f"unknown loss {kind!r}")


@dataclass(frozen=True)
class MLPFunction:
    """A fully connected network's loss: ``Z = A @ W + b`` per layer, then :func:`head`.

    Attributes
    ----------
    layers : int
        Number of weight layers (1 is linear or logistic regression).
    activation : str
        The hidden activation.
    head : str
        The loss on the output logits.
    lam : float
        L2 strength: ``λ/(2m)·Σ‖Wₗ‖²`` is added (biases are not regularized).
    offset : float
        A constant added to the loss.
    """

    layers: int
    activation: str
    head: str
    lam: float = 0.0
    offset: float = 0.0

    def __call__(self, p: dict[str, Any], data: dict[str, Any], ops: Ops) -> Any:
        """Return the loss at parameters ``p`` on ``data`` (``X``, ``Y``)."""
        a = data["X"]
        z = a
        for layer in range(1, self.layers + 1):
            z = a @ p[f"W{layer}"] + p[f"b{layer}"]
            a = activation(self.activation, z, ops) if layer < self.layers else z
        value = head(self.head, z, data["Y"], ops)
        if self.lam:
            m = data["X"].shape[0]
            squares = sum(ops.sum(p[f"W{layer}"] ** 2) for layer in range(1, self.layers + 1))
            value = value + self.lam / (2 * m) * squares
        if self.offset:
            value = value + self.offset
        return value


def rosenbrock(p: dict[str, Any], data: dict[str, Any], ops: Ops) -> Any:
    """``Σ 100(xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)²``, minimum 0 at ``x = 1``; ``data["c"]`` added."""
    x = p["x"]
    return ops.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2) + data["c"][0]


def himmelblau(p: dict[str, Any], data: dict[str, Any], ops: Ops) -> Any:
    """``(x² + y − 11)² + (x + y² − 7)²``, minimum 0 at (3, 2) and three other points."""
    x, y = p["xy"][0], p["xy"][1]
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2 + data["c"][0]


def least_squares(p: dict[str, Any], data: dict[str, Any], ops: Ops) -> Any:
    """``½·mean((X w + c − y)²)``: linear regression, nonzero at its solution."""
    residual = data["X"] @ p["w"] + p["c"] - data["y"]
    return 0.5 * ops.mean(residual**2)


@dataclass(frozen=True)
class Problem:
    """A loss written once, with its data, as NumPy loss and as torch function.

    Attributes
    ----------
    function : callable
        ``function(params, data, ops) -> scalar``, for :class:`NumpyOps` or :class:`TorchOps`.
    data : dict of str to ndarray
        Constants of the loss (inputs, targets), already in ``dtype``.
    dtype : numpy dtype
        The precision the loss computes in: float64, or float32 (the NumPy loss casts
        the parameters it is given and returns a float32 scalar).
    complex_ok : bool
        The NumPy loss accepts complex parameters (``method="complex"`` can be used).
    """

    function: Callable[[dict[str, Any], dict[str, Any], Ops], Any]
    data: dict[str, NDArray[Any]]
    dtype: Any = np.float64
    complex_ok: bool = True

    def loss(self, params: dict[str, NDArray[Any]]) -> Any:
        """The NumPy loss handed to gradprobe."""
        if self.dtype == np.float32:
            params = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
        with np.errstate(over="ignore", under="ignore"):
            return self.function(params, self.data, NUMPY)

    def torch_data(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """The data as torch tensors of ``dtype``."""
        return {
            k: torch.as_tensor(np.asarray(v, dtype=np.float64)).to(dtype)
            for k, v in self.data.items()
        }

    def exact_gradient(self, params: Params) -> dict[str, Array]:
        """The exact gradient at ``params``: torch float64 autograd on the same function."""
        leaves = {
            k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
            for k, v in params.items()
        }
        value = self.function(leaves, self.torch_data(torch.float64), TORCH)
        grads = torch.autograd.grad(value, list(leaves.values()), allow_unused=True)
        return {
            k: (np.zeros(np.shape(params[k])) if g is None else g.detach().numpy().copy())
            for k, g in zip(leaves, grads, strict=True)
        }


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bug:
    """A planted bug.

    Attributes
    ----------
    kind : str
        ``"factor"``, ``"sign"``, ``"entry"``, ``"missing_l2"``, ``"transpose"``,
        ``"detached"``, ``"dead_unit"``; keys of :data:`DIAGNOSIS_KEYWORDS` name the
        pattern the diagnosis should report.
    label : str
        What was planted, in words.
    entry : str or None
        For single-entry bugs, the coordinate's name as gradprobe writes it (``"W2[1, 3]"``).
    """

    kind: str
    label: str
    entry: str | None = None


@dataclass(frozen=True)
class Case:
    """One check to run, with the truth to judge it by.

    Attributes
    ----------
    family : str
        A key of :data:`FAMILIES`.
    case_id : str
        Unique, stable name, such as ``"bugs-017"``.
    description : str
        The problem in words.
    problem : Problem
        The loss.
    params : dict of str to ndarray
        The point of the check (float32 arrays for float32 problems).
    grads : dict of str to ndarray
        The analytic gradient handed to gradprobe.
    truth : dict of str to ndarray
        The exact gradient (float64).
    bug : Bug or None
        The planted bug; None for a correct gradient.
    eps : float or None
        The step handed to gradprobe.
    method : str
        The difference formula handed to gradprobe.
    baseline_key : str
        Cases sharing it share loss, point and gradient: the baselines (which ignore
        ``eps`` and ``method``) run once for them.
    """

    family: str
    case_id: str
    description: str
    problem: Problem
    params: Params
    grads: Params
    truth: dict[str, Array]
    bug: Bug | None = None
    eps: float | None = None
    method: str = "central"
    baseline_key: str = ""

    @property
    def settings(self) -> str:
        """``eps`` and ``method`` in words."""
        return f"eps={self.eps!r}, {self.method}"


def _entry_name(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(str(i) for i in index)}]" if index else name


def _copy(grads: dict[str, Array]) -> dict[str, Array]:
    return {k: np.array(v, dtype=np.float64, copy=True) for k, v in grads.items()}


def plant_factor(truth: dict[str, Array], names: Sequence[str], c: float) -> tuple[Params, Bug]:
    """Multiply the gradient of ``names`` by ``c`` (``c = −1`` is a sign flip)."""
    grads = _copy(truth)
    for name in names:
        grads[name] = grads[name] * c
    where = "every parameter" if len(names) == len(truth) else ", ".join(names)
    if c == -1:
        return grads, Bug("sign", f"sign flipped on {where}")
    return grads, Bug("factor", f"×{c:g} on {where}")


def plant_entry(
    truth: dict[str, Array], name: str, r: float, rng: np.random.Generator
) -> tuple[Params, Bug]:
    """Make one entry of ``name`` off by ``r`` (relative), chosen among its larger half."""
    grads = _copy(truth)
    flat = np.abs(truth[name]).ravel()
    candidates = np.flatnonzero(flat >= np.median(flat))
    position = int(rng.choice(candidates))
    index = tuple(int(i) for i in np.unravel_index(position, truth[name].shape))
    grads[name][index] *= 1 + r
    entry = _entry_name(name, index)
    return grads, Bug("entry", f"{entry} off by {r:.0%}", entry=entry)


def plant_transpose(truth: dict[str, Array], name: str) -> tuple[Params, Bug]:
    """Hand the transpose of square ``name``'s gradient."""
    grads = _copy(truth)
    grads[name] = truth[name].T.copy()
    return grads, Bug("transpose", f"{name} gradient transposed")


def plant_detached(truth: dict[str, Array], name: str) -> tuple[Params, Bug]:
    """Hand an all-zero gradient for ``name``."""
    grads = _copy(truth)
    grads[name] = np.zeros_like(truth[name])
    return grads, Bug("detached", f"{name} detached (all-zero gradient)")


def plant_missing_l2(
    truth: dict[str, Array], params: Params, lam: float, m: int
) -> tuple[Params, Bug]:
    """Leave out the L2 term ``(λ/m)·W`` of every weight's gradient."""
    grads = _copy(truth)
    for name in params:
        if name.startswith("W"):
            grads[name] = truth[name] - lam / m * np.asarray(params[name], dtype=np.float64)
    return grads, Bug("missing_l2", f"L2 term (λ={lam:g}) missing from every dW")


def _inputs(rng: np.random.Generator, m: int, n: int, raw: bool) -> Array:
    """Inputs: standardized, or raw with feature scales spread over 10⁻³…10³."""
    X = rng.normal(size=(m, n))
    if raw:
        return X * 10.0 ** rng.uniform(-3, 3, size=n) + rng.normal(size=n) * 10.0 ** rng.uniform(
            -3, 3, size=n
        )
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _targets(rng: np.random.Generator, kind: str, m: int, k: int) -> Array:
    if kind in ("bce", "saturating"):
        y = rng.integers(0, 2, size=(m, 1)).astype(np.float64)
        y[0, 0], y[-1, 0] = 0.0, 1.0
        return y
    if kind == "softmax":
        return np.eye(k)[rng.integers(0, k, size=m)]
    return rng.normal(size=(m, k))


@dataclass(frozen=True)
class Network:
    """A network problem before a bug is planted: the problem, point and exact gradient."""

    problem: Problem
    params: Params
    truth: dict[str, Array]
    spec: MLPFunction
    description: str


def make_network(
    rng: np.random.Generator,
    *,
    widths: Sequence[int],
    act: str,
    kind: str,
    lam: float = 0.0,
    scale: float = 1.0,
    raw: bool = False,
    m: int = 6,
    offset: float = 0.0,
    dtype: Any = np.float64,
    params: Params | None = None,
    X: Array | None = None,
    Y: Array | None = None,
) -> Network:
    """Build an MLP loss, its parameters and its exact gradient.

    Parameters
    ----------
    rng : numpy.random.Generator
        The case's generator.
    widths : sequence of int
        Layer widths, input first; the output width must suit ``kind``.
    act, kind : str
        Hidden activation and loss (see :func:`activation`, :func:`head`).
    lam, offset : float
        L2 strength and constant added to the loss.
    scale : float
        Entries of every W and b are ``scale``·N(0, 1).
    raw : bool
        Raw inputs (feature scales 10⁻³…10³) instead of standardized ones.
    m : int
        Number of examples.
    dtype : numpy dtype
        float64, or float32 (data and parameters rounded to float32, loss in float32).
    params, X, Y : optional
        Parameters, inputs and targets to use instead of random ones.

    Returns
    -------
    Network
    """
    layers = len(widths) - 1
    if X is None:
        X = _inputs(rng, m, widths[0], raw)
    m = X.shape[0]
    if Y is None:
        Y = _targets(rng, kind, m, widths[-1])
    if params is None:
        params = {}
        for layer in range(1, layers + 1):
            params[f"W{layer}"] = scale * rng.normal(size=(widths[layer - 1], widths[layer]))
            params[f"b{layer}"] = scale * rng.normal(size=widths[layer])
    params = {k: np.asarray(v, dtype=dtype) for k, v in params.items()}
    data = {"X": np.asarray(X, dtype=dtype), "Y": np.asarray(Y, dtype=dtype)}
    spec = MLPFunction(layers, act, kind, lam, offset)
    problem = Problem(spec, data, dtype, complex_ok=dtype == np.float64)
    shape = "-".join(str(w) for w in widths)
    words = [
        f"{layers}-layer {act if layers > 1 else 'linear'} MLP {shape}",
        kind,
        f"scale {scale:g}",
        "raw inputs" if raw else "normalized inputs",
    ]
    if lam:
        words.append(f"L2 λ={lam:g}")
    if offset:
        words.append(f"+{offset:g}")
    if dtype == np.float32:
        words.append("float32")
    return Network(problem, params, problem.exact_gradient(params), spec, ", ".join(words))


def _output_width(kind: str, rng: np.random.Generator) -> int:
    """One output for the binary losses, three classes for softmax, 1–3 for MSE."""
    if kind == "mse":
        return int(rng.integers(1, 4))
    return 3 if kind == "softmax" else 1


def _random_widths(rng: np.random.Generator, layers: int, kind: str) -> list[int]:
    return (
        [int(rng.integers(2, 6))]
        + [int(rng.integers(2, 6)) for _ in range(layers - 1)]
        + [_output_width(kind, rng)]
    )


def _given(truth: dict[str, Array], dtype: Any) -> Params:
    """The exact gradient as a backprop in ``dtype`` would hand it over."""
    return {k: np.asarray(v, dtype=dtype) for k, v in truth.items()}


def _case(
    family: str,
    index: int,
    net: Network | Problem,
    *,
    params: Params | None = None,
    truth: dict[str, Array] | None = None,
    planted: tuple[Params, Bug] | None = None,
    description: str | None = None,
    eps: float | None = None,
    method: str = "central",
    baseline_key: str | None = None,
) -> Case:
    if isinstance(net, Network):
        problem, params, truth = net.problem, net.params, net.truth
        description = description or net.description
    else:
        problem = net
    assert params is not None and truth is not None
    if planted is None:
        grads, bug = _given(truth, problem.dtype), None
    else:
        grads, bug = _given(planted[0], problem.dtype), planted[1]
    case_id = f"{family}-{index:03d}"
    return Case(
        family=family,
        case_id=case_id,
        description=description or "",
        problem=problem,
        params=params,
        grads=grads,
        truth=truth,
        bug=bug,
        eps=eps,
        method=method,
        baseline_key=baseline_key or case_id,
    )


def _weights(params: Params) -> list[str]:
    return [k for k in params if k.startswith("W")]


def _nonzero(truth: dict[str, Array], names: Sequence[str]) -> list[str]:
    return [k for k in names if np.any(truth[k])]


# --- family 1 ------------------------------------------------------------------------------


def family_correct(count: int) -> Iterator[Case]:
    """Correct gradients of MLPs: 1–6 layers, every activation and loss, scales 1e-3…1e2."""
    for i in range(count):
        rng = _rng("correct", i)
        act = ACTIVATIONS[i % len(ACTIVATIONS)]
        kind = HEADS[(i // len(ACTIVATIONS)) % len(HEADS)]
        layers = 1 + (i // (len(ACTIVATIONS) * len(HEADS))) % 6
        net = make_network(
            rng,
            widths=_random_widths(rng, layers, kind),
            act=act,
            kind=kind,
            lam=float(rng.choice([0.0, 0.0, 0.05, 0.7])),
            scale=float(SCALES[int(rng.integers(len(SCALES)))]),
            raw=bool(rng.integers(2)),
            m=int(rng.integers(4, 9)),
        )
        yield _case("correct", i, net)


# --- family 2 ------------------------------------------------------------------------------


def _smooth_bug(
    i: int, truth: dict[str, Array], rng: np.random.Generator
) -> tuple[Params, Bug] | None:
    """A cycle of bugs for families whose subject is the loss, not the bug."""
    names = _nonzero(truth, list(truth))
    weights = _nonzero(truth, _weights(truth)) or names
    choice = (i // 2) % 5
    if choice == 0:
        return plant_factor(truth, list(truth), 2.0)
    if choice == 1:
        return plant_factor(truth, [weights[-1]], 1.01)
    if choice == 2:
        return plant_factor(truth, [weights[0]], 1.0001)
    if choice == 3:
        return plant_entry(truth, weights[0], 0.1, rng)
    return plant_entry(truth, weights[-1], 0.01, rng)


def family_offset(count: int) -> Iterator[Case]:
    """A constant +1e6 added to the loss, and cross-entropy written the saturating way."""
    half = count // 2
    for i in range(count):
        rng = _rng("offset", i)
        if i < half:
            kind = HEADS[i % 3]
            net = make_network(
                rng,
                widths=_random_widths(rng, 1 + i % 3, kind),
                act=("tanh", "relu", "softplus", "gelu")[i % 4],
                kind=kind,
                lam=0.1 * (i % 2),
                scale=float(rng.choice([0.1, 1.0, 10.0])),
                offset=1e6,
            )
        else:
            a = (0.999, 0.99999, 0.9999999)[i % 3]
            layers = 1 + (i // 3) % 2
            widths = [int(rng.integers(2, 5))] + [3] * (layers - 1) + [1]
            X = _inputs(rng, 8, widths[0], raw=False)
            params: Params = {}
            for layer in range(1, layers + 1):
                params[f"W{layer}"] = 0.1 * rng.normal(size=(widths[layer - 1], widths[layer]))
                params[f"b{layer}"] = 0.1 * rng.normal(size=widths[layer])
            params[f"b{layers}"] = np.array([math.log(a / (1 - a))])
            net = make_network(
                rng, widths=widths, act="tanh", kind="saturating", params=params, X=X
            )
            net = Network(
                net.problem,
                net.params,
                net.truth,
                net.spec,
                f"{net.description}, output a≈{a} (−log(1−a) terms)",
            )
        planted = _smooth_bug(i, net.truth, rng) if i % 2 else None
        yield _case("offset", i, net, planted=planted)


# --- family 3 ------------------------------------------------------------------------------

_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286170),
    (3.584428340330492, -1.848126526964404),
)


def family_minimum(count: int) -> Iterator[Case]:
    """Points at or near a minimum, where the exact gradient is 0 or tiny."""
    offsets = (0.0, 1e-8, 1e-6, 1e-4)
    for i in range(count):
        rng = _rng("minimum", i)
        which = i % 3
        delta = offsets[(i // 3) % 4]
        c = (0.0, 1.0)[(i // 12) % 2]
        if which == 0:
            x = np.ones(4) + delta * rng.normal(size=4)
            problem = Problem(rosenbrock, {"c": np.array([c])})
            params: Params = {"x": x}
            description = f"Rosenbrock 4-d at 1 + {delta:g}·N(0,1), +{c:g}"
        elif which == 1:
            point = np.array(_HIMMELBLAU_MINIMA[(i // 3) % 4]) + delta * rng.normal(size=2)
            problem = Problem(himmelblau, {"c": np.array([c])})
            params = {"xy": point}
            description = f"Himmelblau at minimum {(i // 3) % 4} + {delta:g}·N(0,1), +{c:g}"
        else:
            X = rng.normal(size=(12, 4)) * np.array([1.0, 10.0, 0.1, 1.0])
            y = X @ rng.normal(size=4) + 0.5 * rng.normal(size=12)
            design = np.hstack([X, np.ones((12, 1))])
            solution = np.linalg.lstsq(design, y, rcond=None)[0]
            w = solution[:4] + delta * rng.normal(size=4)
            params = {"w": w, "c": np.array([solution[4]])}
            problem = Problem(least_squares, {"X": X, "y": y})
            description = f"least squares at its solution + {delta:g}·N(0,1)"
        truth = problem.exact_gradient(params)
        planted = None
        if i % 2:
            names = list(params)
            choice = (i // 2) % 4
            if choice == 0:
                planted = plant_factor(truth, names, 2.0)
            elif choice == 1:
                planted = plant_factor(truth, names, -1.0)
            elif choice == 2:
                planted = plant_factor(truth, [names[0]], 1.01)
            else:
                planted = plant_entry(truth, names[0], 0.1, rng)
        yield _case(
            "minimum",
            i,
            problem,
            params=params,
            truth=truth,
            planted=planted,
            description=description,
        )


# --- family 4 ------------------------------------------------------------------------------


def family_float32(count: int) -> Iterator[Case]:
    """Float32 parameters, data and loss; the analytic gradient handed over in float32."""
    for i in range(count):
        rng = _rng("float32", i)
        kind = HEADS[i % 3]
        act = ACTIVATIONS[(i // 3) % len(ACTIVATIONS)]
        layers = 1 + i % 4
        net = make_network(
            rng,
            widths=_random_widths(rng, layers, kind),
            act=act,
            kind=kind,
            lam=float(rng.choice([0.0, 0.1])),
            scale=float(rng.choice([0.1, 1.0, 3.0])),
            raw=bool(i % 5 == 4),
            dtype=np.float32,
        )
        planted = None
        if i % 10 >= 7:  # 3 bugs in every 10 cases, cycling through five kinds
            names = _nonzero(net.truth, _weights(net.params)) or list(net.params)
            choice = (3 * (i // 10) + i % 10 - 7) % 5
            if choice == 0:
                planted = plant_factor(net.truth, [names[-1]], 2.0)
            elif choice == 1:
                planted = plant_factor(net.truth, [names[0]], 1.01)
            elif choice == 2:
                planted = plant_factor(net.truth, list(net.truth), 1.1)
            elif choice == 3:
                planted = plant_entry(net.truth, names[0], 0.1, rng)
            else:
                planted = plant_entry(net.truth, names[-1], 1.0, rng)
        yield _case("float32", i, net, planted=planted)


# --- family 5 ------------------------------------------------------------------------------


def _dyadic(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """Multiples of 1/8 in [−1, 1]: their products and sums are exact in float64."""
    return rng.integers(-8, 9, size=shape) / 8.0


def family_kinks(count: int) -> Iterator[Case]:
    """ReLU networks with a unit exactly at its kink, or 0.1–0.3 of the step from it."""
    cbrt_u = float(np.finfo(np.float64).eps) ** (1 / 3)
    for i in range(count):
        rng = _rng("kinks", i)
        where = ("at", 0.1, 0.2, 0.3)[i % 4]
        act = "relu" if i % 6 < 5 else "leaky_relu"
        kind = ("mse", "softmax", "bce")[(i // 4) % 3]
        eps = 1e-3 if (i // 12) % 4 == 3 else None
        n, h = 4, 4
        widths = [n, h, _output_width(kind, rng)]
        X = _dyadic(rng, (6, n))
        W1 = _dyadic(rng, (n, h))
        b1 = rng.normal(size=h)
        sample, unit = int(rng.integers(6)), int(rng.integers(h))
        if not np.any(X[sample] * W1[:, unit]):
            W1[0, unit], X[sample, 0] = 0.5, 0.5
        dot = float(X[sample] @ W1[:, unit])
        b1[unit] = -dot
        if where != "at":
            fraction = float(where)
            for _ in range(3):
                step = eps if eps is not None else cbrt_u * max(1.0, abs(b1[unit]))
                b1[unit] = -dot + fraction * step
        params = {
            "W1": W1,
            "b1": b1,
            "W2": rng.normal(size=(h, widths[-1])),
            "b2": rng.normal(size=widths[-1]),
        }
        net = make_network(rng, widths=widths, act=act, kind=kind, params=params, X=X)
        label = "exactly at the kink" if where == "at" else f"kink {where}·step(b1) away"
        shape = "-".join(str(w) for w in widths)
        description = (
            f"2-layer {act} MLP {shape}, {kind}, inputs and W1 multiples of 1/8, "
            f"unit {unit} on sample {sample} {label}"
        )
        planted = None
        if i % 3 == 2:
            choice = (i // 3) % 4
            if choice == 0:
                planted = plant_factor(net.truth, ["W2"], 2.0)
            elif choice == 1:
                planted = plant_entry(net.truth, "W2", 0.1, rng)
            elif choice == 2:
                planted = plant_factor(net.truth, ["b2"], -1.0)
            else:
                grads = _copy(net.truth)
                grads["b1"][unit] = net.truth["b1"][unit] * 1.1 + 0.05
                entry = f"b1[{unit}]"
                planted = (grads, Bug("entry", f"{entry} (the kink's unit) off by ~10%", entry))
        yield _case("kinks", i, net, planted=planted, description=description, eps=eps)


# --- family 6 ------------------------------------------------------------------------------

BUG_CYCLE: tuple[str, ...] = (
    "×2 all",
    "×2 one",
    "×1.1 one",
    "×1.01 one",
    "×1.01 all",
    "×1.0001 one",
    "×1.0001 all",
    "sign one",
    "sign all",
    "entry 1%",
    "entry 10%",
    "entry 100%",
    "tiny bias ×2",
    "missing L2",
    "transposed",
    "detached",
    "dead unit",
    "dead unit (correct)",
)
"""The bugs of family 6, planted in turn."""


def _dead_unit_case(i: int, rng: np.random.Generator, buggy: bool) -> Case:
    """A 2-layer ReLU net with a unit that never fires; the bug is its ReLU slope taken as 1."""
    n, h, k = int(rng.integers(3, 6)), int(rng.integers(3, 6)), 2
    params = {
        "W1": rng.normal(size=(n, h)),
        "b1": rng.normal(size=h),
        "W2": rng.normal(size=(h, k)),
        "b2": rng.normal(size=k),
    }
    unit = int(rng.integers(h))
    params["b1"][unit] = -50.0
    net = make_network(rng, widths=[n, h, k], act="relu", kind="mse", params=params, m=6)
    description = f"{net.description}, unit {unit} dead (b1={params['b1'][unit]:g})"
    if not buggy:
        return _case("bugs", i, net, description=description + ", correct gradient")
    X, Y = net.problem.data["X"], net.problem.data["Y"]
    z1 = X @ params["W1"] + params["b1"]
    z2 = np.maximum(z1, 0) @ params["W2"] + params["b2"]
    dz2 = 2 * (z2 - Y) / Y.size
    da1 = dz2 @ params["W2"].T
    grads = _copy(net.truth)
    grads["W1"][:, unit] = X.T @ da1[:, unit]
    grads["b1"][unit] = np.sum(da1[:, unit])
    bug = Bug("dead_unit", f"dead unit {unit}: ReLU slope taken as 1 in W1[:, {unit}], b1[{unit}]")
    return _case("bugs", i, net, planted=(grads, bug), description=description)


def _tiny_bias_case(i: int, rng: np.random.Generator) -> Case:
    """An MSE net whose output bias has a gradient of about 1e-7, planted ×2."""
    layers = 2 + i % 2
    widths = _random_widths(rng, layers, "mse")
    act = ("tanh", "relu")[i % 2]
    net = make_network(rng, widths=widths, act=act, kind="mse", m=6)
    params = dict(net.params)
    X, Y = net.problem.data["X"], net.problem.data["Y"]
    bias = f"b{layers}"
    # The MSE's gradient in the output bias is (2/k)·mean residual: move the bias so that
    # the mean residual of each output is ±(k/2)·1e-7.
    z = X
    for layer in range(1, layers + 1):
        z = z @ params[f"W{layer}"] + params[f"b{layer}"]
        if layer < layers:
            z = activation(act, z, NUMPY)
    target = rng.choice([-1.0, 1.0], size=widths[-1]) * 1e-7 * widths[-1] / 2
    params[bias] = params[bias] - np.mean(z - Y, axis=0) + target
    net = make_network(rng, widths=widths, act=act, kind="mse", params=params, X=X, Y=Y)
    planted = plant_factor(net.truth, [bias], 2.0)
    largest = float(np.max(np.abs(net.truth[bias])))
    return _case(
        "bugs", i, net, planted=planted, description=f"{net.description}, |d{bias}| ≈ {largest:.1e}"
    )


def family_bugs(count: int) -> Iterator[Case]:
    """Planted bugs of every kind in MLPs of moderate size and scale."""
    for i in range(count):
        rng = _rng("bugs", i)
        bug = BUG_CYCLE[i % len(BUG_CYCLE)]
        if bug.startswith("dead unit"):
            yield _dead_unit_case(i, rng, buggy=bug == "dead unit")
            continue
        if bug == "tiny bias ×2":
            yield _tiny_bias_case(i, rng)
            continue
        kind = HEADS[(i // len(BUG_CYCLE)) % 3]
        act = ACTIVATIONS[(i // 3) % len(ACTIVATIONS)]
        layers = 2 + (i // len(BUG_CYCLE)) % 3
        if bug == "transposed":
            side = int(rng.integers(3, 6))
            layers = 3
            widths = [int(rng.integers(2, 6)), side, side, _output_width(kind, rng)]
        else:
            widths = _random_widths(rng, layers, kind)
        lam = 0.0
        if bug == "missing L2":
            lam = (1e-2, 1e-3, 1e-4)[(i // len(BUG_CYCLE)) % 3]
        net = make_network(
            rng,
            widths=widths,
            act=act,
            kind=kind,
            lam=lam,
            scale=float(rng.choice([0.3, 1.0, 3.0])),
            raw=bool(i % 7 == 3),
            m=int(rng.integers(4, 9)),
        )
        truth = net.truth
        weights = _nonzero(truth, _weights(truth)) or list(truth)
        one = weights[int(rng.integers(len(weights)))]
        everything = list(truth)
        if bug.startswith("×"):
            c = float(bug[1:].split()[0])
            planted = plant_factor(truth, everything if bug.endswith("all") else [one], c)
        elif bug.startswith("sign"):
            planted = plant_factor(truth, everything if bug.endswith("all") else [one], -1.0)
        elif bug.startswith("entry"):
            r = float(bug.split()[1].rstrip("%")) / 100
            planted = plant_entry(truth, one, r, rng)
        elif bug == "missing L2":
            planted = plant_missing_l2(truth, net.params, lam, net.problem.data["X"].shape[0])
        elif bug == "transposed":
            planted = plant_transpose(truth, "W2")
        else:
            planted = plant_detached(truth, one)
        yield _case("bugs", i, net, planted=planted)


# --- family 7 ------------------------------------------------------------------------------


def _sweep_bases() -> list[tuple[Network, tuple[Params, Bug] | None, str]]:
    bases = []
    recipes = (
        {"widths": [4, 5, 3], "act": "tanh", "kind": "softmax"},
        {"widths": [3, 4, 4, 2], "act": "gelu", "kind": "mse", "raw": True, "scale": 0.5},
        {"widths": [4, 4, 1], "act": "sigmoid", "kind": "bce", "lam": 0.1},
        {"widths": [3, 5, 2], "act": "elu", "kind": "mse", "scale": 2.0},
    )
    for k, recipe in enumerate(recipes):
        for v in range(4):
            rng = _rng("sweep", 1000 + 4 * k + v)
            net = make_network(rng, m=6, **recipe)  # type: ignore[arg-type]
            planted: tuple[Params, Bug] | None = None
            if v == 1:
                planted = plant_factor(net.truth, ["W1"], 1.01)
            elif v == 2:
                planted = plant_entry(net.truth, "W2", 0.1, rng)
            elif v == 3:
                planted = plant_factor(net.truth, list(net.truth), 1.0001)
            bases.append((net, planted, f"sweep-base-{4 * k + v:02d}"))
    return bases


def family_sweep(count: int) -> Iterator[Case]:
    """The same problems and bugs under every eps in :data:`EPS_SWEEP` and every method."""
    bases = _sweep_bases()
    settings = [(eps, method) for method in METHOD_SWEEP for eps in EPS_SWEEP]
    for i in range(count):
        net, planted, key = bases[i % len(bases)]
        eps, method = settings[(i // len(bases)) % len(settings)]
        yield _case("sweep", i, net, planted=planted, eps=eps, method=method, baseline_key=key)


# --- family 8 ------------------------------------------------------------------------------


def _shifted(net: Network, offset: float, words: str) -> Network:
    """The same network, point and gradient, with a constant added to its loss."""
    data = net.problem.data
    shifted = make_network(
        np.random.default_rng(0),
        widths=[data["X"].shape[1]]
        + [net.params[f"b{k}"].size for k in range(1, net.spec.layers + 1)],
        act=net.spec.activation,
        kind=net.spec.head,
        lam=net.spec.lam,
        offset=offset,
        params=net.params,
        X=data["X"],
        Y=data["Y"],
    )
    return Network(shifted.problem, shifted.params, shifted.truth, shifted.spec, words)


def family_crossing(count: int) -> Iterator[Case]:
    """Losses that cross 0 at θ by cancellation, and losses with a +1e10 constant.

    A loss minus its own value at θ is about 0 there, while its terms keep their
    rounding: noise scaled by ``|f(θ)|`` would excuse real bugs. A +1e10 constant
    drowns small steps: a step that does not move the loss measures nothing, so a
    garbage gradient must not be called ok. Odd cases carry a planted bug.
    """
    for i in range(count):
        rng = _rng("crossing", i)
        kind = HEADS[i % 3]
        base = make_network(
            rng,
            widths=_random_widths(rng, 1 + (i // 2) % 3, kind),
            act=("tanh", "softplus", "gelu", "sigmoid", "relu")[(i // 2) % 5],
            kind=kind,
            lam=0.1 * ((i // 4) % 2),
            scale=float(rng.choice([0.3, 1.0, 3.0])),
        )
        if (i // 2) % 4 == 3:
            net = _shifted(base, 1e10, f"{base.description}, +1e10")
        else:
            value = float(base.problem.loss(base.params))
            net = _shifted(base, -value, f"{base.description}, minus its value at θ ({value:.3g})")
        planted = _smooth_bug(i, net.truth, rng) if i % 2 else None
        yield _case("crossing", i, net, planted=planted)


FAMILY_BUILDERS: dict[str, Callable[[int], Iterator[Case]]] = {
    "correct": family_correct,
    "offset": family_offset,
    "minimum": family_minimum,
    "float32": family_float32,
    "kinks": family_kinks,
    "bugs": family_bugs,
    "sweep": family_sweep,
    "crossing": family_crossing,
}


def build_cases(quick: bool = False, families: Sequence[str] | None = None) -> list[Case]:
    """Build the seeded population of cases.

    Parameters
    ----------
    quick : bool, default=False
        Only a deterministic slice (every k-th case of each family, about 60 in all).
    families : sequence of str, optional
        Keys of :data:`FAMILIES` to build; all by default.

    Returns
    -------
    list of Case
        The same list on every call with the same arguments.
    """
    cases: list[Case] = []
    for family in families or FAMILIES:
        built = list(FAMILY_BUILDERS[family](FAMILY_SIZE[family]))
        cases.extend(built[:: QUICK_STRIDE[family]] if quick else built)
    return cases


# ---------------------------------------------------------------------------------------
# The numerical error at an entry, as gradprobe's formula and step see it
# ---------------------------------------------------------------------------------------


def _flatten(params: Params) -> Array:
    return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in params.values()])


def _unflatten(theta: NDArray[Any], params: Params) -> dict[str, NDArray[Any]]:
    out, start = {}, 0
    for name, value in params.items():
        size = int(np.size(value))
        out[name] = theta[start : start + size].reshape(np.shape(value))
        start += size
    return out


def default_steps(case: Case, theta: Array) -> Array:
    """The steps gradprobe documents for ``case``'s method and ``eps`` at every coordinate."""
    if case.eps is not None:
        return np.full(theta.shape, float(case.eps))
    unit = float(np.finfo(np.float32 if case.problem.dtype == np.float32 else np.float64).eps)
    if case.method == "richardson":  # documented: scales with |θ| below 1 too
        return unit ** (1 / 9) * np.maximum(np.abs(theta), unit ** (2 / 9))
    base = {
        "central": unit ** (1 / 3),
        "forward": unit ** (1 / 2),
        "backward": unit ** (1 / 2),
        "complex": 1e-20,
    }[case.method]
    return base * np.maximum(1.0, np.abs(theta))


def _value(case: Case, theta: NDArray[Any]) -> Any:
    return case.problem.loss(_unflatten(theta, case.params))


def numerical_entry(case: Case, theta: Array, index: int, h: float) -> float:
    """The numerical derivative along coordinate ``index`` by the case's formula and step."""

    def at(x: float) -> float:
        point = theta.copy()
        point[index] = x
        return float(np.real(_value(case, point)))

    x = float(theta[index])
    if case.method == "complex":
        point = theta.astype(np.complex128)
        point[index] += 1j * h
        return float(np.imag(_value(case, point))) / h
    if case.method == "forward":
        return (at(x + h) - at(x)) / ((x + h) - x)
    if case.method == "backward":
        return (at(x) - at(x - h)) / (x - (x - h))
    if case.method == "central":
        return (at(x + h) - at(x - h)) / ((x + h) - (x - h))
    table = []  # richardson: central differences at h/2^k, extrapolated
    for k in range(4):
        upper, lower = x + h / 2**k, x - h / 2**k
        table.append((at(upper) - at(lower)) / (upper - lower))
    for order in range(1, 4):
        factor = 4.0**order
        table = [
            (factor * b - a) / (factor - 1) for a, b in zip(table[:-1], table[1:], strict=False)
        ]
    return table[0]


@dataclass(frozen=True)
class Planted:
    """How big a planted bug is next to the numerical error, parameter by parameter.

    Attributes
    ----------
    change : dict of str to float
        The largest ``|analytic − exact|`` in each parameter the bug touches.
    error : dict of str to float
        ``|numerical − exact|`` at that entry.
    at : dict of str to str
        That entry's name.
    detectable : bool
        The largest change of all exceeds :data:`DETECTABILITY_FACTOR` errors there.
    """

    change: dict[str, float]
    error: dict[str, float]
    at: dict[str, str]
    detectable: bool

    def detectable_in(self, name: str) -> bool:
        """Whether the change in parameter ``name`` is detectable on its own."""
        return self.change[name] > DETECTABILITY_FACTOR * self.error[name]


def measure_bug(case: Case) -> Planted:
    """Measure the planted change against the actual numerical error (see module docstring)."""
    theta = _flatten(case.params)
    steps = default_steps(case, theta)
    change, error, at = {}, {}, {}
    start = 0
    best, best_name = -1.0, ""
    for name, value in case.params.items():
        size = int(np.size(value))
        # Against the exact gradient as a correct backprop in this precision hands it over,
        # so float32 rounding of a correct gradient is not counted as planted.
        correct = np.asarray(case.truth[name], dtype=case.problem.dtype).astype(np.float64)
        delta = np.abs(np.asarray(case.grads[name], dtype=np.float64).ravel() - correct.ravel())
        if np.any(delta > 0):
            j = int(np.argmax(delta))
            index = start + j
            numerical = numerical_entry(case, theta, index, float(steps[index]))
            change[name] = float(delta[j])
            error[name] = abs(numerical - float(case.truth[name].ravel()[j]))
            multi = tuple(int(t) for t in np.unravel_index(j, np.shape(value)))
            at[name] = _entry_name(name, multi)
            if delta[j] > best:
                best, best_name = float(delta[j]), name
        start += size
    detectable = bool(best_name) and change[best_name] > DETECTABILITY_FACTOR * error[best_name]
    return Planted(change, error, at, detectable)


# ---------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------


def course_loop(case: Case) -> tuple[bool, float]:
    """Baseline (a): the course's loop, ε = 1e-7, relative difference above :data:`LOOP_CUT`.

    Returns
    -------
    flagged : bool
    difference : float
    """
    theta = _flatten(case.params)
    analytic = _flatten(case.grads)
    numerical = np.empty_like(theta)
    for i in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += LOOP_EPS
        minus[i] -= LOOP_EPS
        numerical[i] = (float(_value(case, plus)) - float(_value(case, minus))) / (2 * LOOP_EPS)
    denominator = float(np.linalg.norm(analytic) + np.linalg.norm(numerical))
    difference = float(np.linalg.norm(analytic - numerical)) / denominator if denominator else 0.0
    return bool(not difference <= LOOP_CUT), difference


class _Supplied(torch.autograd.Function):
    """The case's loss with the case's (possibly buggy) analytic gradient as its backward."""

    @staticmethod
    def forward(ctx: Any, theta: torch.Tensor, fn: Any, analytic: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(analytic)
        return fn(theta)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, None, None]:
        (analytic,) = ctx.saved_tensors
        return grad_output * analytic, None, None


def torch_gradcheck(case: Case) -> bool:
    """Baseline (b): ``torch.autograd.gradcheck`` with default tolerances; True when flagged.

    The torch function runs in the case's precision (float32 cases in float32: gradcheck
    warns and checks anyway).
    """
    dtype = torch.float32 if case.problem.dtype == np.float32 else torch.float64
    data = case.problem.torch_data(dtype)
    theta = torch.tensor(_flatten(case.params), dtype=dtype, requires_grad=True)
    analytic = torch.tensor(_flatten(case.grads), dtype=dtype)

    def fn(flat: torch.Tensor) -> torch.Tensor:
        return case.problem.function(_unflatten(flat, case.params), data, TORCH)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            passed = torch.autograd.gradcheck(
                lambda t: _Supplied.apply(t, fn, analytic), (theta,), raise_exception=False
            )
        except Exception:  # noqa: BLE001 - any failure of the baseline counts as a flag
            return True
    return not passed


# ---------------------------------------------------------------------------------------
# Judging one case
# ---------------------------------------------------------------------------------------

CATEGORIES: dict[str, str] = {
    "false_alarm": "false alarms",
    "inconclusive": "inconclusive",
    "missed": "missed detectable",
    "ok_failing_row": "ok w/ failing row",
    "wrong_localization": "wrong localization",
    "wrong_diagnosis": "wrong diagnosis",
    "raised": "raised",
}
"""Outcome categories of gradprobe (keys) and their column headings."""


@dataclass
class Outcome:
    """What happened on one case.

    Attributes
    ----------
    case_id, family, description, settings : str
        From the case.
    correct : bool
        The analytic gradient handed over is the exact one.
    bug : str or None
        The planted bug in words.
    detectable : bool or None
        For bugs, whether the bug is detectable at the case's setting.
    planted_change, numerical_error : float
        For bugs, the largest change and the numerical error at its entry.
    verdict : str
        gradprobe's verdict (``"raised"`` when the check raised).
    passed : bool or None
        ``report.passed``.
    difference : float
        ``report.difference``.
    wrong_parameters : list of str
        ``report.wrong_parameters``.
    worst : str or None
        ``report.worst(1)[0].name``.
    rows : list of tuple
        ``(name, verdict, difference, diagnosis)`` per parameter row.
    categories : set of str
        Keys of :data:`CATEGORIES` that apply.
    problems : list of str
        What went wrong, in words, for the failures file.
    loop_flagged, gradcheck_flagged : bool
        The baselines' findings.
    loop_difference : float
        Baseline (a)'s relative difference.
    notes : list of str
        Remarks about the benchmark itself (a step that differs from the documented one).
    seconds : float
        Wall time of gradprobe's check.
    """

    case_id: str
    family: str
    description: str
    settings: str
    correct: bool
    bug: str | None
    detectable: bool | None
    planted_change: float
    numerical_error: float
    verdict: str
    passed: bool | None
    difference: float
    wrong_parameters: list[str]
    worst: str | None
    rows: list[tuple[str, str, float, str | None]]
    categories: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    loop_flagged: bool = False
    gradcheck_flagged: bool = False
    loop_difference: float = float("nan")
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    default_settings: bool = False


def _matches(pattern: str, diagnosis: str | None) -> bool:
    text = (diagnosis or "").lower()
    return any(word in text for word in DIAGNOSIS_KEYWORDS[pattern])


def judge(case: Case, baselines: dict[str, tuple[bool, float, bool]] | None = None) -> Outcome:
    """Run gradprobe and both baselines on ``case`` and classify what gradprobe said.

    Parameters
    ----------
    case : Case
        The case.
    baselines : dict, optional
        A cache of baseline results by ``case.baseline_key``, shared between cases.

    Returns
    -------
    Outcome
    """
    planted = measure_bug(case) if case.bug is not None else None
    started = time.perf_counter()
    try:
        report = gradprobe.check_gradients(
            case.problem.loss, case.params, case.grads, eps=case.eps, method=case.method
        )
        raised = None
    except Exception as error:  # noqa: BLE001 - a check that raises is an outcome
        report, raised = None, f"{type(error).__name__}: {str(error)[:300]}"
    seconds = time.perf_counter() - started
    best = max(planted.change, key=planted.change.__getitem__) if planted and planted.change else ""
    outcome = Outcome(
        case_id=case.case_id,
        family=case.family,
        description=case.description,
        settings=case.settings,
        correct=case.bug is None,
        bug=case.bug.label if case.bug else None,
        detectable=planted.detectable if planted else None,
        planted_change=planted.change.get(best, 0.0) if planted else 0.0,
        numerical_error=planted.error.get(best, 0.0) if planted else 0.0,
        verdict="raised" if report is None else str(report.verdict),
        passed=None if report is None else bool(getattr(report, "passed", None)),
        difference=float("nan") if report is None else float(report.difference),
        wrong_parameters=[] if report is None else list(report.wrong_parameters),
        worst=None,
        rows=[],
        seconds=seconds,
        default_settings=case.eps is None and case.method == "central",
    )
    cache = {} if baselines is None else baselines
    if case.baseline_key not in cache:
        flagged, loop_difference = course_loop(case)
        cache[case.baseline_key] = (flagged, loop_difference, torch_gradcheck(case))
    outcome.loop_flagged, outcome.loop_difference, outcome.gradcheck_flagged = cache[
        case.baseline_key
    ]
    if report is None:
        outcome.categories.add("raised")
        outcome.problems.append(f"the check raised {raised}")
        return outcome
    _classify(case, report, planted, outcome)
    return outcome


def _classify(case: Case, report: Any, planted: Planted | None, outcome: Outcome) -> None:
    rows = list(report.parameters)
    outcome.rows = [
        (
            str(row.name),
            str(row.verdict),
            float(row.difference),
            getattr(row, "diagnosis", None),
        )
        for row in rows
    ]
    worst = list(report.worst(1))
    outcome.worst = str(worst[0].name) if worst else None
    _check_steps(case, report, outcome)
    verdict = outcome.verdict
    ok = verdict == "ok" or outcome.passed is True
    if verdict not in KNOWN_VERDICTS:
        outcome.notes.append(f"unknown verdict {verdict!r}, counted as a detection")
    if verdict == "inconclusive":
        outcome.categories.add("inconclusive")
        outcome.problems.append("inconclusive")
    failing = [name for name, row_verdict, _, _ in outcome.rows if row_verdict != "ok"]
    if ok and failing:
        outcome.categories.add("ok_failing_row")
        outcome.problems.append(f"verdict ok while rows {failing} are not ok")
    if planted is None:
        if not ok and verdict != "inconclusive":
            outcome.categories.add("false_alarm")
            detail = "; ".join(
                f"{name}: {row_verdict} ({difference:.2e})"
                for name, row_verdict, difference, _ in outcome.rows
                if row_verdict != "ok"
            )
            outcome.problems.append(f"false alarm on a correct gradient — {detail}")
        return
    assert case.bug is not None
    size = (
        f"planted change {outcome.planted_change:.2e} vs numerical error "
        f"{outcome.numerical_error:.2e}"
    )
    if not planted.detectable:
        return
    if ok:
        outcome.categories.add("missed")
        outcome.problems.append(f"missed detectable bug ({case.bug.label}; {size})")
        return
    if verdict == "inconclusive":
        outcome.problems.append(f"inconclusive on a detectable bug ({case.bug.label}; {size})")
        return
    wrong = set(outcome.wrong_parameters)
    expected = {name for name in planted.change if planted.detectable_in(name)}
    clean = {name for name in case.params if name not in planted.change}
    reasons = []
    if expected - wrong:
        reasons.append(f"planted {sorted(expected - wrong)} not flagged")
    if clean & wrong:
        reasons.append(f"clean {sorted(clean & wrong)} flagged")
    if case.bug.entry is not None and outcome.worst != case.bug.entry:
        reasons.append(f"worst entry {outcome.worst}, planted {case.bug.entry}")
    if reasons:
        outcome.categories.add("wrong_localization")
        outcome.problems.append(f"wrong localization: {'; '.join(reasons)} ({case.bug.label})")
    if case.bug.kind in DIAGNOSIS_KEYWORDS:
        diagnoses = {name: diagnosis for name, _, _, diagnosis in outcome.rows}
        flagged = sorted(expected & wrong)
        off = [name for name in flagged if not _matches(case.bug.kind, diagnoses[name])]
        if off:
            outcome.categories.add("wrong_diagnosis")
            said = " | ".join(f"{name}: {diagnoses[name]}" for name in off)
            outcome.problems.append(
                f"wrong diagnosis: expected {case.bug.kind} "
                f"({'/'.join(DIAGNOSIS_KEYWORDS[case.bug.kind])}), got {said}"
            )


def _check_steps(case: Case, report: Any, outcome: Outcome) -> None:
    """Note when ``report.steps`` differs from the documented step this benchmark measured."""
    steps = getattr(report, "steps", None)
    if steps is None or len(steps) != 2:
        return
    mine = default_steps(case, _flatten(case.params))
    expected = (float(np.min(mine)), float(np.max(mine)))
    if not np.allclose(expected, [float(s) for s in steps], rtol=1e-9, atol=0):
        outcome.notes.append(f"steps {tuple(steps)} differ from the documented {expected}")


def run(
    quick: bool = False,
    families: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """Build the cases and judge every one.

    Parameters
    ----------
    quick : bool, default=False
        The small slice of :func:`build_cases`.
    families : sequence of str, optional
        Only these families.
    progress : callable, optional
        Called with a line of text after each family.

    Returns
    -------
    list of Outcome
        In case order.
    """
    torch.set_num_threads(1)
    outcomes: list[Outcome] = []
    baselines: dict[str, tuple[bool, float, bool]] = {}
    for family in families or FAMILIES:
        started = time.perf_counter()
        cases = build_cases(quick, [family])
        for case in cases:
            with np.errstate(all="ignore"):
                outcomes.append(judge(case, baselines))
        if progress is not None:
            seconds = time.perf_counter() - started
            progress(f"{FAMILIES[family]}: {len(cases)} cases, {seconds:.1f} s")
    return outcomes


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------

COLUMNS = (
    "family",
    "cases",
    "correct",
    "bugs (detectable)",
    *CATEGORIES.values(),
    "loop FA / miss",
    "gradcheck FA / miss",
)


def _row(label: str, outcomes: Sequence[Outcome]) -> list[str]:
    correct = [o for o in outcomes if o.correct]
    bugs = [o for o in outcomes if not o.correct]
    detectable = [o for o in bugs if o.detectable]
    counts = [sum(key in o.categories for o in outcomes) for key in CATEGORIES]
    loop = (sum(o.loop_flagged for o in correct), sum(not o.loop_flagged for o in detectable))
    grad = (
        sum(o.gradcheck_flagged for o in correct),
        sum(not o.gradcheck_flagged for o in detectable),
    )
    return [
        label,
        str(len(outcomes)),
        str(len(correct)),
        f"{len(bugs)} ({len(detectable)})",
        *(str(c) for c in counts),
        f"{loop[0]} / {loop[1]}",
        f"{grad[0]} / {grad[1]}",
    ]


def summarize(outcomes: Sequence[Outcome]) -> list[list[str]]:
    """Return the table's rows: one per family, the total, and the total at default settings."""
    rows = []
    for family, label in FAMILIES.items():
        mine = [o for o in outcomes if o.family == family]
        if mine:
            rows.append(_row(label, mine))
    rows.append(_row("**total**", outcomes))
    rows.append(_row("total at eps=None, central", [o for o in outcomes if o.default_settings]))
    return rows


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Format rows as a Markdown table with :data:`COLUMNS`, aligned for the terminal."""
    table = [list(COLUMNS), *[list(r) for r in rows]]
    widths = [max(len(r[k]) for r in table) for k in range(len(COLUMNS))]
    lines = []
    for n, r in enumerate(table):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append(
                "|"
                + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]])
                + "|"
            )
    return "\n".join(lines)


def legend() -> str:
    """The definitions behind the table, to print under it."""
    return "\n".join(
        [
            f"Detectable: the planted change at its largest entry exceeds {DETECTABILITY_FACTOR:g}×"
            " |numerical − exact| there (gradprobe's formula and step; exact = torch float64"
            " autograd).",
            "false alarms: correct gradient, verdict neither ok nor inconclusive. missed: "
            "detectable bug, verdict ok (or passed). ok w/ failing row: verdict ok while a "
            "row is not. wrong localization / diagnosis: among detected bugs. raised: the check "
            "raised.",
            f"Baseline (a) loop: central difference with ε={LOOP_EPS:g} on flattened θ, flagged"
            f" when ‖a−n‖/(‖a‖+‖n‖) > {LOOP_CUT:g}. Baseline (b): torch.autograd.gradcheck, "
            "default tolerances (eps=1e-6, atol=1e-5, rtol=1e-3), analytic gradient supplied "
            "by a custom autograd.Function; float32 cases in float32. FA = false alarms on the "
            "correct cases, miss = unflagged detectable bugs.",
            "Diagnosis keywords: "
            + "; ".join(f"{k}: {' / '.join(v)}" for k, v in DIAGNOSIS_KEYWORDS.items()),
        ]
    )


def write_failures(outcomes: Sequence[Outcome], path: str) -> int:
    """Write every case where gradprobe went wrong, one block each; return how many."""
    failing = [o for o in outcomes if o.problems]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"# gradprobe fidelity failures: {len(failing)} of {len(outcomes)} cases\n")
        handle.write("# family | case | what went wrong | verdict | difference\n\n")
        for o in failing:
            for problem in o.problems:
                handle.write(
                    f"{FAMILIES[o.family]} | {o.case_id} | {problem} | {o.verdict} | "
                    f"{o.difference:.3e}\n"
                )
            handle.write(f"    case: {o.description}; {o.settings}\n")
            if o.bug:
                handle.write(
                    f"    planted: {o.bug}; change {o.planted_change:.3e}, numerical error "
                    f"{o.numerical_error:.3e}, detectable {o.detectable}\n"
                )
            handle.write(f"    wrong_parameters {o.wrong_parameters}, worst {o.worst}\n")
            for name, verdict, difference, diagnosis in o.rows:
                handle.write(f"    row {name}: {verdict} {difference:.3e}")
                handle.write(f" — {diagnosis}\n" if diagnosis else "\n")
            for note in o.notes:
                handle.write(f"    benchmark note: {note}\n")
            handle.write("\n")
    return len(failing)


def machine() -> str:
    """The machine in one line."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores visible; Python {platform.python_version()}, "
        f"numpy {np.__version__}, torch {torch.__version__}, gradprobe {gradprobe.__version__}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the failures; always return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small slice (about 60 cases)")
    parser.add_argument("--failures", metavar="PATH", help="write the per-case failures here")
    args = parser.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    started = time.perf_counter()
    outcomes = run(quick=args.quick, progress=lambda line: print(line, file=sys.stderr))
    elapsed = time.perf_counter() - started
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"gradprobe fidelity benchmark ({'quick' if args.quick else 'full'}), {stamp}")
    print(machine())
    print(f"{len(outcomes)} cases in {elapsed:.1f} s\n")
    print(format_table(summarize(outcomes)))
    print()
    print(legend())
    notes = [o for o in outcomes if o.notes]
    if notes:
        first = notes[0]
        print(f"\nbenchmark notes on {len(notes)} cases, e.g. {first.case_id}: {first.notes[0]}")
    if args.failures:
        count = write_failures(outcomes, args.failures)
        print(f"\n{count} failing cases written to {args.failures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
