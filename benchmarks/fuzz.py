"""Seeded, bounded fuzzing of gradprobe's public API and command line.

Run it as a script::

    PYTHONPATH=src python benchmarks/fuzz.py            # full run (about 4 minutes on 2 cores)
    PYTHONPATH=src python benchmarks/fuzz.py --quick    # under a minute
    PYTHONPATH=src python benchmarks/fuzz.py --only derivative --no-cli --examples 30

or import it and run a slice (what a test does)::

    import fuzz                                  # with benchmarks/ on sys.path
    result = fuzz.run(targets=["derivative"], examples=10, cap_finite=True, cli=False,
                      isolate=False)
    result.violations("P1")                      # the records that broke property 1

Every generated case is Python source: a call of one public entry point in which exactly
one argument is fuzzed (the others are valid), evaluated in a namespace of small helpers
(``HELPERS``). The source *is* the reproducer: ``reproducer(record)`` prepends the helper
definitions it uses, so each one runs on its own.

Properties (counted per entry point, violations grouped by cause):

P1  for bad input only ``GradprobeError`` subclasses escape; anything else is an
    "unexpected exception type" (recorded with type, message, entry point, argument,
    reproducer). Results are also rendered (``str``, ``to_dict``), as a caller would.
P1m the message of a refusal of a definitely invalid value names the argument.
P2  the inputs are bit-identical afterwards (arrays: dtype, shape, strides, writeable
    flag and bytes; dicts, lists, tuples recursively; MLPs, torch tensors and modules).
P3  nothing runs unbounded: each call has a budget of 10 s of CPU time (``setitimer`` with
    ``ITIMER_PROF``, so other load on a shared machine does not fake a hang) and a
    wall-clock backstop, inside a forked worker with a 3 GiB address-space limit; a
    worker stuck in C code is killed by the parent. CLI runs get ``RLIMIT_CPU`` and a
    wall-clock backstop. Running out of either counts as a hang.
P4  "ok" is never the verdict for garbage gradients (random, NaN, negated, zero, doubled).
P5  command line, in subprocesses: a usage error is one line on stderr and exit code 2,
    never a traceback; ``check`` exits 0 only with a passing report (and 1 only with a
    failing one); ``depth --plot`` never replaces a symlink or FIFO; the ``diagnose``
    report pair is replaced together or not at all.

Causes are deduplicated by property, exception type and the call site of the traceback's
last gradprobe frame; each keeps its shortest reproducer.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime
import json
import multiprocessing
import os
import platform
import queue
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import hypothesis
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

SEED = 20240601
BUDGET_S = 10.0  # per call
MEMORY_LIMIT = 3 * 2**30  # address space of a worker (and of each CLI subprocess)
HERE = Path(__file__).resolve().parent
SRC = (HERE.parent / "src").resolve()

# ------------------------------------------------------------------------------ helpers
# The namespace every case is evaluated in. Each snippet defines the names listed with it;
# a reproducer includes the snippets whose names it mentions (transitively).

PRELUDE = """\
import math, sys
import concurrent.futures
from decimal import Decimal
from fractions import Fraction
import numpy as np
import gradprobe
from gradprobe import init
"""

SNIPPETS: list[tuple[tuple[str, ...], str]] = [
    (
        ("arr",),
        '''
def arr(shape, fill="normal", dtype="float64", seed=0):
    """A seeded array: normal values, or with a NaN, an inf, huge, tiny (subnormal), zeros."""
    n = int(np.prod(shape, dtype=np.int64))
    v = np.random.default_rng(seed).normal(size=n)
    if fill == "nan" and n:
        v[-1] = np.nan
    elif fill == "inf" and n:
        v[0] = np.inf
    elif fill == "huge":
        v = np.where(v < 0, -1e308, 1e308)
    elif fill == "big":
        v = v * 1e150
    elif fill == "tiny":
        v = v * 1e-310
    elif fill == "zeros":
        v = np.zeros(n)
    with np.errstate(all="ignore"):
        return v.reshape(shape).astype(dtype)
''',
    ),
    (
        ("ro",),
        '''
def ro(a):
    """Read-only."""
    a = np.asarray(a)
    a.setflags(write=False)
    return a
''',
    ),
    (
        ("nc",),
        '''
def nc(a):
    """A non-contiguous view holding the same values."""
    a = np.asarray(a)
    return np.repeat(a[..., None], 2, axis=-1)[..., 0]
''',
    ),
    (
        ("leaves", "tmap", "sq", "grad_sq"),
        '''
def leaves(p):
    if isinstance(p, dict):
        return [x for v in p.values() for x in leaves(v)]
    if isinstance(p, (list, tuple)):
        return [x for v in p for x in leaves(v)]
    return [p]

def tmap(f, p):
    if isinstance(p, dict):
        return {k: tmap(f, v) for k, v in p.items()}
    if isinstance(p, list):
        return [tmap(f, v) for v in p]
    if isinstance(p, tuple):
        return tuple(tmap(f, v) for v in p)
    return f(p)

def sq(p):
    """Sum of squares over any structure of arrays."""
    return float(sum(np.sum(np.asarray(x, dtype=float) ** 2) for x in leaves(p)))

def grad_sq(p):
    return tmap(lambda x: 2 * np.asarray(x, dtype=float), p)
''',
    ),
    (
        ("P0", "G0"),
        """
def P0():
    return {"W": np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]), "b": np.array([0.1, -0.2, 0.3])}

def G0():
    return grad_sq(P0())
""",
    ),
    (
        ("BadFloat",),
        '''
class BadFloat:
    """A number-like object whose conversion to float raises."""
    def __float__(self):
        raise RuntimeError("no float for you")
    def __repr__(self):
        return "BadFloat()"
''',
    ),
    (
        ("raises", "exits", "exits1", "returns", "rnd", "counter", "flaky", "nan_after", "deep"),
        '''
def raises(*a, **k):
    raise RuntimeError("boom")

def exits(*a, **k):
    sys.exit(0)

def exits1(*a, **k):
    sys.exit(1)

def returns(value):
    return lambda *a, **k: value

def rnd(*a, **k):
    return float(np.random.default_rng().random())

def counter():
    calls = [0]
    def f(*a, **k):
        calls[0] += 1
        return float(calls[0])
    return f

def flaky(n, f):
    """f, until it has been called n times; then it raises."""
    calls = [0]
    def g(*a, **k):
        calls[0] += 1
        if calls[0] > n:
            raise ValueError("flaky")
        return f(*a, **k)
    return g

def nan_after(n, f):
    calls = [0]
    def g(*a, **k):
        calls[0] += 1
        return float("nan") if calls[0] > n else f(*a, **k)
    return g

def deep(*a, **k):
    return deep(*a, **k)
''',
    ),
    (
        ("mutator",),
        '''
def mutator(p):
    """A loss that writes into the arrays it is given."""
    value = sq(p)
    for x in leaves(p):
        if isinstance(x, np.ndarray) and x.flags.writeable:
            x[...] = 0.0
    return value
''',
    ),
    (
        ("BadExecutor",),
        """
class BadExecutor(concurrent.futures.Executor):
    def submit(self, fn, *args, **kwargs):
        raise RuntimeError("executor refuses work")
""",
    ),
    (
        ("X6", "Y6", "net341", "fitted"),
        """
def X6(m=6, n=3):
    return np.random.default_rng(0).normal(size=(m, n))

def Y6():
    return np.array([0, 1, 0, 1, 1, 0])

def net341(**options):
    return gradprobe.MLP([3, 4, 1], seed=0, **options)

def fitted():
    return gradprobe.Normalizer().fit(X6())
""",
    ),
    (
        ("BadOpt", "NaNOpt", "NoStep"),
        """
class BadOpt:
    def step(self, params, grads):
        raise RuntimeError("optimizer failed")

class NaNOpt:
    def step(self, params, grads):
        for value in params.values():
            value[...] = np.nan

class NoStep:
    step = 3
""",
    ),
    (
        ("true_grad", "L", "garbage"),
        '''
def _value(kind, x):
    if kind in ("sq", "offset6", "offset12"):
        return x ** 2
    if kind == "sin":
        return np.sin(x)
    if kind == "cubic":
        return x ** 3
    return np.exp(x)  # "exp"

def _slope(kind, x):
    if kind in ("sq", "offset6", "offset12"):
        return 2 * x
    if kind == "sin":
        return np.cos(x)
    if kind == "cubic":
        return 3 * x ** 2
    return np.exp(x)

_OFFSET = {"offset6": 1e6, "offset12": 1e12}

def L(kind, batched=False):
    """A loss with a known gradient: sum over every value of a fixed elementwise function."""
    def loss(p):
        axes = lambda x: tuple(range(1, np.ndim(x))) if batched else None
        total = sum(np.sum(_value(kind, np.asarray(x)), axis=axes(x)) for x in leaves(p))
        return total + _OFFSET.get(kind, 0.0)
    return loss

def true_grad(kind, p):
    return tmap(lambda x: _slope(kind, np.asarray(x, dtype=float)), p)

def garbage(how, kind, p, seed=0):
    """Wrong gradients for loss L(kind) at p: random, NaN, negated, zeros or doubled."""
    rng = np.random.default_rng(seed)
    def bad(g):
        if how == "random":
            return rng.normal(size=g.shape) * (1 + np.abs(g).max())
        if how == "nan":
            return np.where(np.arange(g.size).reshape(g.shape) == 0, np.nan, g)
        if how == "negated":
            return -g
        if how == "zeros":
            return np.zeros_like(g)
        return 2 * g  # "doubled"
    return tmap(bad, true_grad(kind, p))
''',
    ),
    (
        ("BrokenMLP",),
        '''
class BrokenMLP(gradprobe.MLP):
    """An MLP whose backward pass returns wrong gradients."""
    def __init__(self, how, *args, **kwargs):
        self.how = how
        super().__init__(*args, **kwargs)

    def backward(self, cache, y):
        good = super().backward(cache, y)
        rng = np.random.default_rng(1)
        out = {}
        for name, g in good.items():
            if self.how == "random":
                out[name] = rng.normal(size=g.shape) * (1 + np.abs(g).max())
            elif self.how == "negated":
                out[name] = -g
            elif self.how == "zeros":
                out[name] = np.zeros_like(g)
            elif self.how == "nan":
                out[name] = np.full_like(g, np.nan)
            else:
                out[name] = 2 * g
        return out
''',
    ),
]

SNIPPETS.append(
    (
        ("jsq", "jax_check", "interrupts"),
        """
def jsq(x):
    import jax.numpy as jnp
    return jnp.sum(jnp.tanh(x) * x)

def jax_check(*args, **kwargs):
    import gradprobe.jax  # imported on first use: jax takes seconds to load
    return gradprobe.jax.check_function(*args, **kwargs)

def interrupts(*a, **k):
    raise KeyboardInterrupt  # raised by the code itself, not a Ctrl-C
""",
    )
)

TORCH_SNIPPETS: list[tuple[tuple[str, ...], str]] = [
    (
        (
            "torch",
            "T",
            "Lin",
            "RaisingModule",
            "StrModule",
            "IntModule",
            "NaNModule",
            "DropModule",
            "MutatingModule",
            "FrozenModule",
            "TupleModule",
            "ExitModule",
            "BufferModule",
        ),
        """
import torch
import gradprobe.torch

def T(*shape, seed=0, dtype=torch.float64, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_(
        requires_grad)

def Lin(n_in=3, n_out=2, dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Linear(n_in, n_out).to(dtype)

class RaisingModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))
    def forward(self, x):
        raise RuntimeError("forward failed")

class StrModule(RaisingModule):
    def forward(self, x):
        return "not a tensor"

class IntModule(RaisingModule):
    def forward(self, x):
        return (x * self.w).long()

class NaNModule(RaisingModule):
    def forward(self, x):
        return x * self.w * float("nan")

class DropModule(RaisingModule):
    def forward(self, x):
        return torch.nn.functional.dropout(x * self.w, 0.5, training=True)

class MutatingModule(RaisingModule):
    def forward(self, x):
        with torch.no_grad():
            self.w.add_(1.0)
        return x * self.w

class FrozenModule(RaisingModule):
    def __init__(self):
        super().__init__()
        self.w.requires_grad_(False)
    def forward(self, x):
        return x * self.w

class TupleModule(RaisingModule):
    def forward(self, x):
        return {"a": (x * self.w,), "b": [x.sum() * 2]}

class ExitModule(RaisingModule):
    def forward(self, x):
        sys.exit(0)

class BufferModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(3)
        self.lin = torch.nn.Linear(3, 1)
    def forward(self, x):
        return self.lin(self.bn(x))
""",
    ),
    (
        ("bad_square", "BadModule"),
        '''
def bad_square(how):
    """An autograd.Function computing x**2 whose backward is wrong in the way named."""
    class BadSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2
        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            right = 2 * x * grad
            if how == "random":
                g = torch.Generator().manual_seed(1)
                return torch.randn(x.shape, generator=g, dtype=x.dtype) * (1 + right.abs().max())
            if how == "negated":
                return -right
            if how == "zeros":
                return torch.zeros_like(right)
            if how == "nan":
                return torch.full_like(right, float("nan"))
            return 2 * right
    return BadSquare

class BadModule(torch.nn.Module):
    """Linear(3, 2) followed by a square with a wrong backward."""
    def __init__(self, how):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(3, 2)
        self.square = bad_square(how)
    def forward(self, x):
        return self.square.apply(self.lin(x))
''',
    ),
]


def _namespace(with_torch: bool = False) -> dict[str, Any]:
    ns: dict[str, Any] = {"__name__": "fuzz_helpers"}
    exec(compile(PRELUDE, "<fuzz-helpers>", "exec"), ns)
    for _, code in SNIPPETS:
        exec(compile(code, "<fuzz-helpers>", "exec"), ns)
    if with_torch:
        for _, code in TORCH_SNIPPETS:
            exec(compile(code, "<fuzz-helpers>", "exec"), ns)
    return ns


def _snippets_used(sources: list[str]) -> list[str]:
    """The helper snippets the given sources need (transitively), in definition order."""
    chosen: list[str] = []
    text = "\n".join(sources)
    snippets = SNIPPETS + TORCH_SNIPPETS
    changed = True
    while changed:
        changed = False
        for names, code in snippets:
            if code not in chosen and any(
                re.search(rf"(?<![\w.]){re.escape(n)}\b", text) for n in names
            ):
                chosen.append(code)
                text += code
                changed = True
    return [code for _, code in snippets if code in chosen]


def reproducer(source: str) -> str:
    """Return a self-contained script for a case's source: imports, helpers it uses, the call."""
    ordered = [code.strip() for code in _snippets_used([source])]
    return "\n\n".join([PRELUDE.strip(), *ordered, source.strip()]) + "\n"


# -------------------------------------------------------------------------------- cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One call of a public entry point with one fuzzed argument, as Python source."""

    target: str  # the fuzz target (entry point, or entry point [garbage])
    entry: str  # the public entry point
    fuzzed: str  # the argument that was fuzzed
    func: str  # source of the callable
    args: tuple[str, ...] = ()
    kwargs: tuple[tuple[str, str], ...] = ()
    setup: str = ""  # statements run before the call (in the same namespace)
    invalid: bool = False  # the fuzzed value is definitely invalid: refusing it is expected
    expect: str = ""  # "not_ok": garbage gradients (P4); "raise": assert_gradients on garbage
    torch: bool = False

    @property
    def call(self) -> str:
        parts = list(self.args) + [f"{k}={v}" for k, v in self.kwargs]
        return f"{self.func}({', '.join(parts)})"

    @property
    def source(self) -> str:
        return (self.setup + "\n" if self.setup else "") + self.call


class CaseTimeout(BaseException):
    """Raised by the alarm inside a call that ran past its budget (a BaseException, so
    ``except Exception`` in the library cannot swallow it)."""


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout("wall clock" if signum == signal.SIGALRM else "CPU time")


def _backstop(budget: float) -> float:
    """Wall-clock seconds after which a call counts as hung even if it used little CPU."""
    return max(4 * budget, budget + 30)


# Aliases a message may use to name an argument.
ALIASES = {
    "f": ("f", "function"),
    "fn": ("fn",),
    "loss": ("loss",),
    "loss_fn": ("loss_fn", "loss"),
    "module": ("module", "loss"),
    "inputs": ("inputs", "input0", "input", "loss"),
    "input0": ("input0", "inputs"),
    "targets": ("targets", "loss"),
    "grads": ("grads",),
    "init": ("init", "initializer"),
    "net": ("net",),
    "rng": ("rng", "seed"),
    "include": ("include",),
    "fit": ("fit",),  # a method called before fit
}


def names_argument(message: str, argument: str) -> bool:
    for alias in ALIASES.get(argument, (argument,)):
        if re.search(rf"(?<![\w]){re.escape(alias)}(?![\w])", message):
            return True
    return False


# ----------------------------------------------------------------------------- snapshots


def snapshot(x: Any, depth: int = 0) -> Any:
    """A comparable, bit-exact picture of an input (what P2 compares before and after)."""
    if depth > 8:
        return ("deep",)
    if isinstance(x, np.ndarray):
        body = repr(x.tolist()) if x.dtype.hasobject else x.tobytes()
        return ("ndarray", x.dtype.str, x.shape, x.strides, bool(x.flags.writeable), body)
    if isinstance(x, dict):
        return ("dict", tuple((repr(k), snapshot(v, depth + 1)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(snapshot(v, depth + 1) for v in x))
    module = type(x).__module__ or ""
    if module.startswith("torch"):
        import torch

        if isinstance(x, torch.Tensor):
            flat = x.detach().cpu().clone().contiguous().reshape(-1).view(torch.uint8)
            grad = None if x.grad is None else snapshot(x.grad, depth + 1)
            return (
                "tensor",
                str(x.dtype),
                tuple(x.shape),
                x.requires_grad,
                flat.numpy().tobytes(),
                grad,
            )
    if hasattr(x, "named_parameters") and hasattr(x, "modules"):  # torch.nn.Module
        return (
            "module",
            tuple((n, snapshot(t, depth + 1)) for n, t in x.named_parameters()),
            tuple((n, snapshot(t, depth + 1)) for n, t in x.named_buffers()),
            tuple(m.training for m in x.modules()),
        )
    try:
        from gradprobe import MLP, Normalizer
    except Exception:  # noqa: BLE001
        MLP = Normalizer = ()  # type: ignore[assignment,misc]  # noqa: N806
    if MLP and isinstance(x, MLP):
        return (
            "MLP",
            snapshot(x.params, depth + 1),
            x.training,
            tuple(x.layer_sizes),
            x.activation,
            x.output,
            x.l2,
            x.dropout,
        )
    if Normalizer and isinstance(x, Normalizer):
        return ("Normalizer", snapshot(dict(vars(x)), depth + 1))
    if isinstance(x, (int, float, complex, str, bytes, bool, type(None))):
        return ("value", repr(x))
    return ("opaque", type(x).__name__)


def _describe_change(before: Any, after: Any) -> str:
    if before[0] == "ndarray" and after[0] == "ndarray":
        what = [
            name
            for name, i in (
                ("dtype", 1),
                ("shape", 2),
                ("strides", 3),
                ("writeable flag", 4),
                ("values", 5),
            )
            if before[i] != after[i]
        ]
        return ", ".join(what)
    return "contents"


# ------------------------------------------------------------------------------ running


def _gradprobe_frame(frames: list[traceback.FrameSummary]) -> str:
    marker = os.sep + "gradprobe" + os.sep
    for frame in reversed(frames):
        if marker in frame.filename:
            short = frame.filename[frame.filename.rindex(marker) + 1 :]
            return f"{short}:{frame.lineno} in {frame.name}"
    return "<no gradprobe frame>"


def _innermost(frames: list[traceback.FrameSummary]) -> str:
    frames = [f for f in frames if Path(f.filename).name != Path(__file__).name]
    if not frames:
        return "?"
    frame = frames[-1]
    name = frame.filename
    if "<fuzz" in name:
        return "user code (fuzz helper / lambda)"
    marker = os.sep + "gradprobe" + os.sep
    if marker in name:
        return "gradprobe"
    if "numpy" in name or "torch" in name:
        return "numpy/torch"
    return Path(name).name


def _render(result: Any) -> None:
    """Use a result as a caller would: print it and turn it into data."""
    if hasattr(result, "to_dict"):
        result.to_dict()
    str(result)
    if hasattr(result, "worst"):
        result.worst(3)


def execute(case: Case, budget: float = BUDGET_S, ns_cache: dict[str, Any] | None = None) -> dict:
    """Run one case and check P1-P4 on it; return a plain record."""
    cache = ns_cache if ns_cache is not None else {}
    key = "torch" if case.torch else "plain"
    if key not in cache:
        cache[key] = _namespace(with_torch=case.torch)
    ns = dict(cache[key])
    record: dict[str, Any] = {
        "target": case.target,
        "entry": case.entry,
        "fuzzed": case.fuzzed,
        "source": case.source,
        "invalid": case.invalid,
        "expect": case.expect,
        "outcome": "",
        "violations": [],
        "accepted_invalid": False,
    }
    try:
        if case.setup:
            exec(compile(case.setup, "<fuzz-case>", "exec"), ns)
        func = eval(compile(case.func, "<fuzz-case>", "eval"), ns)
        args = [eval(compile(a, "<fuzz-case>", "eval"), ns) for a in case.args]
        kwargs = {k: eval(compile(v, "<fuzz-case>", "eval"), ns) for k, v in case.kwargs}
        names = list(_positional_names(case))
        names += [f"arg{i}" for i in range(len(names), len(args))]
        inputs = {**dict(zip(names, args, strict=False)), **kwargs}
        before = {name: snapshot(value) for name, value in inputs.items()}
    except Exception as error:  # noqa: BLE001 - a broken case is the harness's bug
        record["outcome"] = "harness-error"
        record["message"] = f"{type(error).__name__}: {error}"
        return record

    result = None
    started = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _alarm)
    previous_prof = signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, budget)
    signal.setitimer(signal.ITIMER_REAL, _backstop(budget))
    error: BaseException | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = func(*args, **kwargs)
            _render(result)
    except BaseException as caught:  # noqa: BLE001 - the point of the harness
        error = caught
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        signal.signal(signal.SIGPROF, previous_prof)
    record["seconds"] = round(time.perf_counter() - started, 4)

    if error is not None:
        from gradprobe import GradprobeError

        ours = isinstance(error, GradprobeError)
        tb = error.__traceback__
        traceback.clear_frames(tb)  # frees a MemoryError's arrays before anything else
        frames = traceback.extract_tb(tb)
        site = _gradprobe_frame(frames)
        message = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        record.update(
            exc_type=type(error).__name__, message=message, site=site, origin=_innermost(frames)
        )
        del error, tb
        if record["exc_type"] == "CaseTimeout":
            # Where a loop was interrupted is arbitrary: group hangs by entry point and argument.
            record["outcome"] = "timeout"
            clock = message or "CPU time"
            limit = budget if clock == "CPU time" else _backstop(budget)
            record["message"] = f"still running after {limit:g} s of {clock}, in {site}"
            record["violations"].append(
                ("P3", f"timeout (> {budget:g} s CPU): {case.entry}, argument '{case.fuzzed}'")
            )
        elif ours and record["exc_type"] == "GradientCheckError":
            record["outcome"] = "verdict"  # assert_gradients' failing verdict, not a refusal
            if case.invalid:
                record["accepted_invalid"] = True
        elif ours:
            record["outcome"] = "refused"
            if case.invalid and not names_argument(message, case.fuzzed):
                record["violations"].append(
                    (
                        "P1m",
                        f"{record['exc_type']} at {site}: message does not name '{case.fuzzed}'",
                    )
                )
        else:
            record["outcome"] = "crashed"
            record["violations"].append(("P1", f"{record['exc_type']} at {site}"))
    else:
        record["outcome"] = "returned"
        if case.invalid:
            record["accepted_invalid"] = True
        if case.expect == "raise":
            record["violations"].append(
                (
                    "P4",
                    f"{case.entry}: returned (did not raise) for garbage gradients"
                    f"{_noise_note(result, case)}",
                )
            )
        elif case.expect == "not_ok" and getattr(result, "verdict", None) == "ok":
            record["violations"].append(
                (
                    "P4",
                    f"{case.entry}: verdict 'ok' for garbage gradients{_noise_note(result, case)}",
                )
            )
        if case.expect:
            record["verdict"] = getattr(result, "verdict", None)

    try:
        after = {name: snapshot(value) for name, value in inputs.items()}
    except Exception as snap_error:  # noqa: BLE001
        after = {name: ("unreadable", repr(snap_error)) for name in inputs}
    changed = [name for name in inputs if before[name] != after[name]]
    if changed:
        name = changed[0]
        detail = _describe_change(before[name], after[name])
        where = f" ({record['exc_type']} at {record['site']})" if "site" in record else ""
        record["violations"].append(
            ("P2", f"{case.entry}: argument '{name}' modified ({detail}){where}")
        )
    return record


def _noise_note(result: Any, case: Case) -> str:
    """Say which loss it was and how the report explains itself (the P4 cause)."""
    found = re.search(r"\b(L|BrokenMLP|BadModule|bad_square)\('(\w+)'", case.source)
    what = ""
    if found:
        what = f"; loss {found.group(2)}" if found.group(1) == "L" else f"; {found.group(1)}"
    notes = " ".join(str(n) for n in (getattr(result, "notes", ()) or ()))
    difference = getattr(result, "difference", None)
    if "rounding noise" in notes:
        return f" (excused as rounding noise{what})"
    if difference == 0:
        return f" (difference exactly 0 and no note: the loss did not move{what})"
    if difference is not None:
        return f" (difference {difference:.1e}{what})"
    return f" ({what[2:]})" if what else ""


POSITIONAL = {
    "check_gradients": ("loss", "params", "grads"),
    "assert_gradients": ("loss", "params", "grads"),
    "numerical_gradient": ("loss", "params"),
    "derivative": ("f", "x"),
    "Normalizer.fit": ("X",),
    "Normalizer.transform": ("X",),
    "Normalizer.inverse_transform": ("X",),
    "MLP": ("layer_sizes",),
    "MLP.fit": ("X", "y"),
    "MLP.predict": ("X",),
    "MLP.predict_proba": ("X",),
    "MLP.loss": ("X", "y"),
    "check_model": ("net", "X", "y"),
    "recommend_scale": ("activation",),
    "deep_linear": ("w", "depth"),
    "depth_sweep": ("depth", "width", "activation"),
    "propagation": ("net", "X"),
    "torch.check_module": ("module", "inputs"),
    "torch.check_function": ("fn",),
    "jax.check_function": ("f",),
}


def _positional_names(case: Case) -> tuple[str, ...]:
    if case.entry.startswith("init."):
        return (
            ("shape", "rng")
            if case.entry not in ("init.gain", "init.get", "init.fans", "init.default_for")
            else ("name",)
        )
    if case.entry == "torch.check_function":
        return ("fn",) + tuple(f"input{i}" for i in range(len(case.args) - 1))
    if case.entry == "jax.check_function":
        return ("f",) + tuple(f"args[{i}]" for i in range(len(case.args) - 1))
    return POSITIONAL.get(case.entry, ())


# --------------------------------------------------------------------------- strategies
# A pool is a list of source strings; a leading "!" marks a value that is definitely
# invalid for that argument (refusing it is expected, and its message must name it).


class Pool(list):  # type: ignore[type-arg]
    """A finite pool of (source, definitely invalid) values for one argument."""


def pool(*values: str) -> Pool:
    return Pool((v[1:], True) if v.startswith("!") else (v, False) for v in values)


def pick(*values: str) -> st.SearchStrategy[tuple[str, bool]]:
    """Draw one value of a pool inside a composite strategy."""
    return st.sampled_from(pool(*values))


FILLS = ["normal", "normal", "nan", "inf", "huge", "big", "tiny", "zeros"]
DTYPES = [
    "float64",
    "float64",
    "float32",
    "float16",
    "int64",
    "bool",
    "object",
    "complex128",
    "U4",
    "longdouble",
]
SHAPES = [(), (1,), (3,), (2, 3), (0,), (2, 0), (1, 2, 2)]


@st.composite
def array_src(draw: Any, shapes: list[Any] = SHAPES, purpose: str = "params") -> tuple[str, bool]:
    """An array (possibly read-only or non-contiguous) and whether it is definitely invalid."""
    shape = draw(st.sampled_from(shapes))
    fill = draw(st.sampled_from(FILLS))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.sampled_from(range(4)))
    wrap = draw(st.sampled_from(["", "", "ro", "nc", "ro(nc"]))
    src = (
        f"arr({shape!r}, {fill!r}, {dtype!r}, {seed})"
        if seed
        else (f"arr({shape!r}, {fill!r}, {dtype!r})")
    )
    if wrap == "ro(nc":
        src = f"ro(nc({src}))"
    elif wrap:
        src = f"{wrap}({src})"
    size = int(np.prod(shape))
    floating = dtype in ("float64", "float32", "float16", "longdouble")
    nonfinite = fill in ("nan", "inf") and size > 0 and dtype not in ("bool", "int64", "U4")
    if fill == "huge" and dtype in ("float32", "float16"):
        nonfinite = size > 0
    if purpose == "params":  # an empty array is fine unless every parameter is empty
        invalid = (not floating) or nonfinite
    elif purpose == "grads":
        invalid = (not floating) or nonfinite
    else:  # feature matrix
        numeric = dtype not in ("object", "complex128", "U4")
        invalid = (
            (not numeric) or nonfinite or len(shape) != 2 or (len(shape) == 2 and shape[0] == 0)
        )
    return src, invalid


@st.composite
def params_src(draw: Any) -> tuple[str, bool]:
    kind = draw(st.sampled_from(["array", "dict", "dict", "list", "tuple", "literal"]))
    if kind == "literal":
        return draw(
            pick(
                "!None",
                "!'abc'",
                "!{}",
                "![]",
                "!()",
                "!{'W': None}",
                "!{'W': 'abc'}",
                "!{'W': [[1.0, 2.0], [3.0]]}",
                "[[1.0, 2.0], [3.0, 4.0]]",
                "{'W': [[1.0, 2.0], [3.0, 4.0]]}",
                "!{'W': [10**400]}",
                "!{'W': 10**400}",
                "!{'W': BadFloat()}",
                "!{1: np.ones(2)}",
                "!{'W': {'inner': np.ones(2)}}",
                "!{'W': True}",
                "1.5",
                "np.float64(-2.0)",
                "!3",
                "!True",
                "!10**400",
                "{'W': [1e308]}",
                "!{'W': [float('nan')]}",
                "{'': np.ones(2)}",
                "{'W': np.ones(2), 'dW': np.ones(2)}",
                "!range(3)",
                "!(x for x in [1.0])",
                "{'W': np.ones(2).view(np.matrix)}",
                "{'W': np.ma.masked_array([1.0, 2.0], [0, 1])}",
                "!{'W': np.ones(2), 'b': np.ones(3, dtype=int)}",
                "[np.ones(2), [np.ones(2)]]",
            )
        )
    count = draw(st.sampled_from([1, 2, 3]))
    parts = [draw(array_src()) for _ in range(count)]
    invalid = any(bad for _, bad in parts)
    if kind == "array":
        src, invalid = parts[0]
        parts = parts[:1]
    elif kind == "dict":
        names = ["W", "b", "W2"]
        src = "{" + ", ".join(f"{names[i]!r}: {s}" for i, (s, _) in enumerate(parts)) + "}"
    elif kind == "list":
        src = "[" + ", ".join(s for s, _ in parts) + "]"
    else:
        src = "(" + ", ".join(s for s, _ in parts) + ",)"
    if all(re.search(r"arr\(\((0,|2, 0)\)", p[0]) for p in parts):
        invalid = True
    return src, invalid


LOSS_POOL = pool(
    "sq",
    "!raises",
    "!exits",
    "!exits1",
    "!returns('abc')",
    "!returns('1.5')",
    "returns(True)",
    "!returns(None)",
    "!returns(10**400)",
    "!returns(-10**400)",
    "!returns(float('nan'))",
    "!returns(float('inf'))",
    "!returns(np.ones(3))",
    "returns(np.ones(1))",
    "!returns(np.ones((2, 2)))",
    "!returns([1.0])",
    "!returns(BadFloat())",
    "!returns(1 + 2j)",
    "returns(np.complex128(1.0))",
    "!rnd",
    "!counter()",
    "!deep",
    "!flaky(4, sq)",
    "!nan_after(4, sq)",
    "mutator",
    "returns(np.float16(1.0))",
    "returns(Decimal('1.5'))",
    "returns(Fraction(3, 2))",
    "!returns(np.array(['a']))",
    "!returns(object())",
    "!'sq'",
    "!None",
    "!3",
    "lambda p: sq(p) + 1e300",
    "lambda p: np.float32(sq(p))",
    "!lambda: 1.0",
    "!lambda p, q: 1.0",
)

GRADS_POOL = pool(
    "G0()",
    "grad_sq",
    "!raises",
    "!exits",
    "!None",
    "!'abc'",
    "!3",
    "![]",
    "!{'W': G0()['W']}",
    "{'dW': G0()['W'], 'db': G0()['b']}",
    "!{'W': G0()['W'], 'dW': G0()['W'], 'b': G0()['b']}",
    "!{'W': G0()['W'].T, 'b': G0()['b']}",
    "!{'W': G0()['W'][:1], 'b': G0()['b']}",
    "!{'W': G0()['W'], 'b': G0()['b'][:, None]}",
    "!{'W': G0()['W'].astype(int), 'b': G0()['b']}",
    "!{'W': G0()['W'].astype(complex), 'b': G0()['b']}",
    "!{'W': 'abc', 'b': G0()['b']}",
    "!{'W': G0()['W'], 'b': [1e308, 10**400, 1.0]}",
    "!{'W': [[1.0, 2.0], [3.0]], 'b': G0()['b']}",
    "{'W': ro(G0()['W']), 'b': nc(G0()['b'])}",
    "{'W': G0()['W'].tolist(), 'b': (1.0, 2.0, 3.0)}",
    "!{'W': G0()['W'], 'b': G0()['b'], 'extra': 1.0}",
    "!{'W': np.full((2, 3), np.nan), 'b': G0()['b']}",
    "!returns('abc')",
    "!returns(None)",
    "!returns([G0()['W'], G0()['b']])",
    "!returns({'W': G0()['W']})",
    "returns(G0())",
    "!returns({'W': BadFloat(), 'b': G0()['b']})",
    "!lambda p: {'W': p['W'][:1], 'b': p['b']}",
    "!deep",
    "!{'W': BadFloat(), 'b': G0()['b']}",
    "!{'W': G0()['W'], 'b': np.array([1.0, None, 2.0])}",
)

EPS_POOL = pool(
    "None",
    "1e-6",
    "1e-3",
    "np.float32(1e-4)",
    "2",
    "!0",
    "!0.0",
    "!-1e-6",
    "!float('nan')",
    "!float('inf')",
    "!'1e-6'",
    "!True",
    "!10**400",
    "1e-300",
    "5e-324",
    "1e300",
    "1e308",
    "![1e-6]",
    "!np.array([1e-6])",
    "!1j",
    "!Decimal('1e-6')",
    "!BadFloat()",
    "np.int8(1)",
)
METHOD_POOL = pool(
    "'central'",
    "'forward'",
    "'backward'",
    "'complex'",
    "'richardson'",
    "!'Central'",
    "!''",
    "!None",
    "!3",
    "!['central']",
    "!'central '",
    "!b'central'",
    "!'auto'",
)
THRESHOLDS_POOL = pool(
    "(1e-6, 1e-4)",
    "[1e-7, 1e-7]",
    "!(1e-4, 1e-6)",
    "!(0, 1e-4)",
    "!(-1, 1)",
    "!(1e-6,)",
    "!(1e-6, 1e-4, 1e-2)",
    "!None",
    "!'ab'",
    "!1e-6",
    "!(float('nan'), 1e-4)",
    "!(1e-6, float('inf'))",
    "(1e-6, 1e300)",
    "!(1e-6, 10**400)",
    "!(10**400, 10**401)",
    "!('1e-6', '1e-4')",
    "!(BadFloat(), 1e-4)",
    "np.array([1e-6, 1e-4])",
    "!{1e-6: 1e-4}",
)
SAMPLE_POOL = pool(
    "None",
    "1",
    "2",
    "10**400",
    "np.int64(2)",
    "!0",
    "!-1",
    "!1.5",
    "!'2'",
    "!True",
    "![2]",
    "!float('nan')",
)
SEED_POOL = pool(
    "0",
    "7",
    "np.random.default_rng(1)",
    "10**400",
    "2**64",
    "!-1",
    "!-10**400",
    "!1.5",
    "!'0'",
    "!None",
    "!True",
    "![1, 2]",
    "np.int64(3)",
    "!np.random.RandomState(0)",
)
MODE_POOL = pool("'auto'", "'full'", "'localize'", "!'fast'", "!None", "!''", "!['full']", "!1")
BATCHED_POOL = pool("False", "True", "'yes'", "1", "None", "np.bool_(True)")
WORKERS_POOL = pool("None", "1", "!0", "!-1", "!'2'", "!2.5", "!True", "![2]", "!float('nan')")
EXECUTOR_POOL = pool(
    "None",
    "!'pool'",
    "!3",
    "!object()",
    "concurrent.futures.ThreadPoolExecutor(1)",
    "BadExecutor()",
)
MEMORY_POOL = pool(
    "2**28",
    "1",
    "2**60",
    "1e6",
    "!0",
    "!-1",
    "!'1GB'",
    "!None",
    "!True",
    "!float('nan')",
    "!float('inf')",
    "!10**400",
    "!1j",
)
NOTES_POOL = pool("()", "['dropout off']", "'abc'", "!None", "![1, 2]", "![None]", "!3")

SCALAR_F_POOL = pool(
    "np.sin",
    "math.sin",
    "abs",
    "lambda x: x ** 3",
    "lambda x: np.exp(x)",
    "!raises",
    "!exits",
    "!returns('abc')",
    "!returns('1.5')",
    "returns(True)",
    "!returns(None)",
    "!returns(10**400)",
    "!returns(float('nan'))",
    "!returns(np.ones(3))",
    "returns(np.ones(1))",
    "!returns([1.0])",
    "!returns(BadFloat())",
    "!returns(1 + 2j)",
    "!rnd",
    "!counter()",
    "!deep",
    "!flaky(2, np.sin)",
    "!nan_after(2, np.sin)",
    "!'sin'",
    "!None",
    "!3",
    "lambda x: 1e308 * x",
    "lambda x: math.exp(x)",
    "lambda x: np.float16(x)",
    "!returns(object())",
    "lambda x: Decimal(x)",
    "!lambda: 1.0",
)
X_SCALAR_POOL = pool(
    "1.0",
    "0.0",
    "-2.5",
    "np.float32(0.5)",
    "np.float16(0.5)",
    "3",
    "np.array(0.5)",
    "!'1.5'",
    "!'abc'",
    "!None",
    "!True",
    "!float('nan')",
    "!float('inf')",
    "!10**400",
    "1e308",
    "-1e308",
    "5e-324",
    "2**1023",
    "!np.array([1.0])",
    "!np.array([1.0, 2.0])",
    "![1.0]",
    "!1 + 2j",
    "!BadFloat()",
    "Decimal('0.5')",
    "Fraction(1, 3)",
)
FULL_OUTPUT_POOL = pool("False", "True", "'no'", "None", "1")


class Plan(list):  # type: ignore[type-arg]
    """The parts of a target: (strategy, size); size is the number of cases of a finite part
    (Hypothesis enumerates it almost without repeats), None for a composite part."""


def plan(*parts: Any) -> Plan:
    """Join plans, bare strategies (composite parts) and (strategy, size) pairs."""
    out = Plan()
    for part in parts:
        if isinstance(part, Plan):
            out.extend(part)
        elif isinstance(part, tuple):
            out.append(part)
        else:
            out.append((part, None))
    return out


def fuzz_one(
    target: str,
    entry: str,
    func: str,
    defaults: list[tuple[str, str, bool]],
    pools: dict[str, Pool | st.SearchStrategy[tuple[str, bool]]],
    *,
    torch: bool = False,
    positional_only: Iterable[str] = (),
) -> Plan:
    """Cases calling ``func`` with the defaults and one argument drawn from its pool.

    ``defaults`` lists (name, source, positional) in call order; a pooled argument that is
    not among them is passed by keyword only when fuzzed.
    """
    # Every (argument, value) pair of the finite pools in one sampled_from, run as a part of
    # its own that Hypothesis enumerates almost without repeats; composite pools (arrays)
    # are composite parts.
    pairs = [(name, v) for name, p in pools.items() if isinstance(p, Pool) for v in p]
    composite = [
        st.tuples(st.just(name.split("#")[0]), p)
        for name, p in pools.items()
        if not isinstance(p, Pool)
    ]

    def build(chosen: tuple[str, tuple[str, bool]]) -> Case:
        name, (value, invalid) = chosen
        args, kwargs = [], []
        for arg, src, positional in defaults:
            chosen = value if arg == name else src
            if positional:
                args.append(chosen)
            else:
                kwargs.append((arg, chosen))
        if name not in [d[0] for d in defaults]:
            kwargs.append((name, value))
        return Case(
            target, entry, name, func, tuple(args), tuple(kwargs), invalid=invalid, torch=torch
        )

    parts = Plan([(st.sampled_from(pairs).map(build), len(pairs))] if pairs else [])
    return plan(parts, *(c.map(build) for c in composite))


def _grad_check_target(entry: str) -> Plan:
    func = f"gradprobe.{entry}"
    defaults = [("loss", "sq", True), ("params", "P0()", True), ("grads", "G0()", True)]
    simple = fuzz_one(
        entry,
        entry,
        func,
        defaults,
        {
            "loss": LOSS_POOL,
            "grads": GRADS_POOL,
            "eps": EPS_POOL,
            "method": METHOD_POOL,
            "thresholds": THRESHOLDS_POOL,
            "sample": SAMPLE_POOL,
            "seed": SEED_POOL,
            "mode": MODE_POOL,
            "batched": BATCHED_POOL,
            "workers": WORKERS_POOL,
            "executor": EXECUTOR_POOL,
            "memory": MEMORY_POOL,
            "notes": NOTES_POOL,
        },
    )

    @st.composite
    def with_params(draw: Any) -> Case:
        src, invalid = draw(params_src())
        return Case(entry, entry, "params", func, ("sq", src, "grad_sq"), invalid=invalid)

    return plan(simple, with_params())


# Parameter magnitudes for P4 (a fixed grid: Hypothesis mixes constants found in the source
# into integer and float draws, which would make the cases change whenever this file does).
GRID = [round(0.3 + 0.017 * k, 3) for k in range(101)]


GARBAGE_LOSSES = ["sq", "sin", "cubic", "exp", "offset6", "offset12"]
GARBAGE_KINDS = ["random", "nan", "negated", "zeros", "doubled"]
GARBAGE_OPTIONS: list[tuple[tuple[str, str], ...]] = [
    (),
    *((("method", repr(m)),) for m in ("forward", "backward", "complex", "richardson")),
    *((("eps", e),) for e in ("1e-3", "1e-5", "1e-7")),
    *((("sample", k),) for k in ("1", "2")),
    *((("mode", repr(m)),) for m in ("full", "localize")),
    (("batched", "True"),),
]


def _garbage(
    entry: str,
    kind: str,
    how: str,
    w: list[list[float]],
    b: list[float],
    structure: str,
    options: tuple[tuple[str, str], ...],
    seed: int,
) -> Case:
    if structure == "dict":
        p = f"{{'W': np.array({w!r}), 'b': np.array({b!r})}}"
    elif structure == "list":
        p = f"[np.array({w!r}), np.array({b!r})]"
    else:
        p = f"np.array({w!r})"
    batched = ("batched", "True") in options
    loss = f"L({kind!r}, batched=True)" if batched else f"L({kind!r})"
    grads = (
        f"garbage({how!r}, {kind!r}, p, seed={seed})"
        if how == "random"
        else f"garbage({how!r}, {kind!r}, p)"
    )
    return Case(
        f"{entry} [garbage]",
        entry,
        "grads",
        f"gradprobe.{entry}",
        (loss, "p", grads),
        options,
        setup=f"p = {p}",
        expect="raise" if entry == "assert_gradients" else "not_ok",
    )


def garbage_grid(entry: str) -> tuple[st.SearchStrategy[Case], int]:
    """Every (loss, garbage kind, option) combination once, at a seeded parameter point."""
    cases = []
    for n, (kind, how, options) in enumerate(
        (k, h, o) for k in GARBAGE_LOSSES for h in GARBAGE_KINDS for o in GARBAGE_OPTIONS
    ):
        rng = np.random.default_rng(n)
        values = rng.choice(GRID, size=8) * rng.choice([1, -1], size=8)
        w = [[float(v) for v in values[:3]], [float(v) for v in values[3:6]]]
        b = [float(v) for v in values[6:]]
        structure = ("dict", "list", "array")[n % 3]
        cases.append(_garbage(entry, kind, how, w, b, structure, options, n % 10))
    return st.sampled_from(cases), len(cases)


@st.composite
def garbage_case(draw: Any, entry: str) -> Case:
    """A loss with a known gradient and gradients that are wrong (P4), at a random point."""
    kind = draw(st.sampled_from(GARBAGE_LOSSES))
    how = draw(st.sampled_from(GARBAGE_KINDS))
    values = st.sampled_from(GRID)
    signs = st.sampled_from([1, -1])
    w = [[draw(values) * draw(signs) for _ in range(3)] for _ in range(2)]
    b = [draw(values) * draw(signs) for _ in range(2)]
    structure = draw(st.sampled_from(["dict", "list", "array"]))
    options = draw(st.sampled_from(GARBAGE_OPTIONS))
    seed = draw(st.sampled_from(range(10)))
    return _garbage(entry, kind, how, w, b, structure, options, seed)


@st.composite
def garbage_model_case(draw: Any) -> Case:
    how = draw(st.sampled_from(["random", "negated", "zeros", "nan", "doubled"]))
    activation = draw(st.sampled_from(["relu", "tanh", "sigmoid", "gelu", "linear"]))
    sizes = draw(st.sampled_from(["[3, 4, 1]", "[3, 5, 2]", "[3, 2, 3, 1]"]))
    l2 = draw(st.sampled_from(["0.0", "0.1"]))
    y = "Y6()" if sizes.endswith("1]") else "np.array([0, 1, 1, 0, 1, 0])"
    option = draw(
        st.sampled_from(["", "", "method='richardson'", "mode='localize'", "sample=2", "eps=1e-4"])
    )
    kwargs = tuple(tuple(option.split("=", 1)) for _ in [0] if option)
    net = f"BrokenMLP({how!r}, {sizes}, activation={activation!r}, l2={l2}, seed=0)"
    return Case(
        "check_model [garbage]",
        "check_model",
        "net",
        "gradprobe.check_model",
        (net, "X6()", y),
        kwargs,
        expect="not_ok",
    )  # type: ignore[arg-type]


def garbage_torch_grid() -> tuple[st.SearchStrategy[Case], int]:
    """Every wrong backward x entry point x option once (P4 for gradprobe.torch)."""
    cases = []
    for how in ["random", "negated", "zeros", "nan", "doubled"]:
        for option in ["", "sample=2", "mode='localize'", "eps=1e-4", "thresholds=(1e-7, 1e-5)"]:
            kwargs = tuple(tuple(option.split("=", 1)) for _ in [0] if option)
            cases.append(
                Case(
                    "torch [garbage]",
                    "torch.check_module",
                    "module",
                    "gradprobe.torch.check_module",
                    (f"BadModule({how!r})", "T(4, 3)"),
                    kwargs,
                    expect="not_ok",
                    torch=True,
                )  # type: ignore[arg-type]
            )
            cases.append(
                Case(
                    "torch [garbage]",
                    "torch.check_function",
                    "fn",
                    "gradprobe.torch.check_function",
                    (f"bad_square({how!r}).apply", "T(3, 2, requires_grad=True)"),
                    kwargs,
                    expect="not_ok",
                    torch=True,
                )  # type: ignore[arg-type]
            )
    return st.sampled_from(cases), len(cases)


def matrix_pool(fit: bool = False) -> dict[str, Any]:
    """Feature matrices (pools for the argument ``X``: literals, and generated arrays).

    ``fit``: for Normalizer.fit, where any number of features is fine.
    """
    shapes = [(6, 3), (6, 3), (1, 3), (0, 3), (3,), (6, 3, 1), (), (3, 6), (6, 2)]
    return {
        "X#arrays": array_src(shapes=shapes, purpose="X"),
        "X": pool(
            "X6()",
            "X6().tolist()",
            "X6()[:, :2]" if fit else "!X6()[:, :2]",
            "!None",
            "!'abc'",
            "![[1.0, 2.0, 3.0], [4.0, 5.0]]",
            "![[1.0, 2.0, 3.0], [4.0, 5.0, 'x']]",
            "![[10**400, 1.0, 2.0]]",
            "[[1e308, -1e308, 5e-324]] * 6",
            "X6().astype(np.float16)",
            "np.asfortranarray(X6())",
            "ro(X6())",
            "nc(X6())",
            "X6().astype(int)",
            "X6() > 0",
            "![[BadFloat(), 1.0, 2.0]]",
            "!X6() + 1j",
            "![]",
            "!X6()[None]",
            "np.ma.masked_array(X6(), X6() > 1)",
            "X6().view(np.matrix)",
            "X6() * 1e200",
        ),
    }


def labels_pool() -> Pool:
    return pool(
        "Y6()",
        "Y6().tolist()",
        "Y6()[:, None]",
        "Y6().astype(bool)",
        "Y6().astype(float)",
        "!Y6()[:5]",
        "!None",
        "!'abc'",
        "![0, 1, 0, 1, 1, 'x']",
        "![0, 1, 0, 1, 1, 2]",
        "![0, 1, 0, 1, 1, float('nan')]",
        "![[0], [1, 1], 0, 0, 0, 0]",
        "![10**400] * 6",
        "[0.5] * 6",
        "![-1] * 6",
        "!np.ones((6, 2))",
        "ro(Y6())",
        "nc(Y6())",
        "![BadFloat()] * 6",
        "!np.zeros((6, 1, 1))",
    )


def targets() -> dict[str, Callable[[], Any]]:
    """Every fuzz target: a name and a function returning its plan (or a strategy) of cases."""
    t: dict[str, Callable[[], Any]] = {}
    t["check_gradients"] = lambda: _grad_check_target("check_gradients")
    t["assert_gradients"] = lambda: _grad_check_target("assert_gradients")

    def numerical() -> Plan:
        simple = fuzz_one(
            "numerical_gradient",
            "numerical_gradient",
            "gradprobe.numerical_gradient",
            [("loss", "sq", True), ("params", "P0()", True)],
            {"loss": LOSS_POOL, "eps": EPS_POOL, "method": METHOD_POOL},
        )

        @st.composite
        def with_params(draw: Any) -> Case:
            src, invalid = draw(params_src())
            return Case(
                "numerical_gradient",
                "numerical_gradient",
                "params",
                "gradprobe.numerical_gradient",
                ("sq", src),
                invalid=invalid,
            )

        return plan(simple, with_params())

    t["numerical_gradient"] = numerical
    t["derivative"] = lambda: fuzz_one(
        "derivative",
        "derivative",
        "gradprobe.derivative",
        [("f", "np.sin", True), ("x", "1.0", True)],
        {
            "f": SCALAR_F_POOL,
            "x": X_SCALAR_POOL,
            "eps": EPS_POOL,
            "method": METHOD_POOL,
            "full_output": FULL_OUTPUT_POOL,
        },
    )

    def normalizer() -> Plan:
        m = matrix_pool()
        return plan(
            fuzz_one(
                "Normalizer",
                "Normalizer.fit",
                "gradprobe.Normalizer().fit",
                [("X", "X6()", True)],
                matrix_pool(fit=True),
            ),
            fuzz_one(
                "Normalizer",
                "Normalizer.transform",
                "fitted().transform",
                [("X", "X6()", True)],
                m,
            ),
            fuzz_one(
                "Normalizer",
                "Normalizer.inverse_transform",
                "fitted().inverse_transform",
                [("X", "X6()", True)],
                m,
            ),
            (
                st.just(
                    Case(
                        "Normalizer",
                        "Normalizer.transform",
                        "fit",
                        "gradprobe.Normalizer().transform",
                        ("X6()",),
                        invalid=True,
                    )
                ),
                1,
            ),
        )

    t["Normalizer"] = normalizer
    t["MLP"] = lambda: fuzz_one(
        "MLP",
        "MLP",
        "gradprobe.MLP",
        [("layer_sizes", "[3, 4, 1]", True)],
        {
            "layer_sizes": pool(
                "[3, 4, 1]",
                "(2, 2)",
                "np.array([3, 2])",
                "[3.0, 2.0]",
                "!'23'",
                "![3]",
                "![]",
                "!None",
                "![3, 0]",
                "![3, -1]",
                "![3, 2.5]",
                "![3, 10**400]",
                "![3, True]",
                "![3, '2']",
                "![3, None]",
                "![3, float('nan')]",
                "![3, float('inf')]",
                "!3",
                "![[3], [2]]",
                "![3, BadFloat()]",
                "[np.int64(3), np.int8(2)]",
                "[3, 2**31]",
                "[3, 10**9, 1]",
                "[10**6, 10**6]",
            ),
            "activation": pool(
                "'relu'",
                "'tanh'",
                "'gelu'",
                "'softplus'",
                "!'RELU'",
                "!'bogus'",
                "!''",
                "!None",
                "!3",
                "!['relu']",
                "!np.tanh",
                "!'relu '",
            ),
            "output": pool(
                "None",
                "'sigmoid'",
                "'linear'",
                "!'softmax'",
                "!'bogus'",
                "!3",
                "!['linear']",
                "!''",
            ),
            "init": pool(
                "'auto'",
                "'he'",
                "'orthogonal'",
                "'zeros'",
                "!'bogus'",
                "!''",
                "!None",
                "!3",
                "!['he']",
                "!raises",
                "!exits",
                "!returns('abc')",
                "!returns(np.ones((2, 2)))",
                "!returns(np.full((4, 3), np.nan))",
                "!returns([[10**400] * 3] * 4)",
                "!returns([[1.0], [2.0, 3.0]])",
                "!returns(None)",
                "!returns(BadFloat())",
                "returns(np.ones((4, 3)))",
                "returns(np.ones((4, 3), dtype=int))",
                "!returns(np.ones((4, 3), dtype=complex))",
                "init.he",
                "init.orthogonal",
                "!lambda shape: np.ones(shape)",
                "!'auto '",
            ),
            "l2": pool(
                "0.0",
                "0.5",
                "1e300",
                "np.float32(0.1)",
                "!-1",
                "!float('nan')",
                "!float('inf')",
                "!'0.1'",
                "!None",
                "!True",
                "!10**400",
                "![0.1]",
                "!1j",
                "!BadFloat()",
            ),
            "dropout": pool(
                "0.0",
                "0.5",
                "0.999",
                "!1",
                "!1.0",
                "!-0.1",
                "!float('nan')",
                "!'0.5'",
                "!None",
                "!True",
                "!10**400",
                "!1.5",
                "![0.5]",
            ),
            "seed": SEED_POOL,
        },
    )

    def mlp_use() -> Plan:
        m, y = matrix_pool(), labels_pool()
        fit = fuzz_one(
            "MLP.fit",
            "MLP.fit",
            "net341().fit",
            [("X", "X6()", True), ("y", "Y6()", True), ("epochs", "2", False)],
            {
                **m,
                "y": y,
                "epochs": pool(
                    "0",
                    "2",
                    "np.int64(2)",
                    "!-1",
                    "!1.5",
                    "!'2'",
                    "!None",
                    "!True",
                    "!10**400",
                    "!2**63",
                    "!float('nan')",
                    "![2]",
                ),
                "lr": pool(
                    "0.01",
                    "1e-300",
                    "1e300",
                    "np.float32(0.1)",
                    "!0",
                    "!-0.1",
                    "!float('nan')",
                    "!float('inf')",
                    "!'0.1'",
                    "!None",
                    "!True",
                    "!10**400",
                    "![0.1]",
                    "!BadFloat()",
                ),
                "batch_size": pool(
                    "None",
                    "1",
                    "3",
                    "10**400",
                    "!0",
                    "!-1",
                    "!1.5",
                    "!'2'",
                    "!True",
                    "!float('nan')",
                ),
                "optimizer": pool(
                    "'gd'",
                    "'momentum'",
                    "'adam'",
                    "!'sgd'",
                    "!'Adam'",
                    "!None",
                    "!3",
                    "!['adam']",
                    "!BadOpt()",
                    "NaNOpt()",
                    "!NoStep()",
                    "!object()",
                ),
            },
        )
        uses = [
            fuzz_one(f"MLP.{name}", f"MLP.{name}", f"net341().{name}", [("X", "X6()", True)], m)
            for name in ("predict", "predict_proba")
        ]
        loss = fuzz_one(
            "MLP.loss",
            "MLP.loss",
            "net341().loss",
            [("X", "X6()", True), ("y", "Y6()", True)],
            {**m, "y": y},
        )
        return plan(fit, *uses, loss)

    t["MLP.fit/predict/loss"] = mlp_use
    t["check_model"] = lambda: fuzz_one(
        "check_model",
        "check_model",
        "gradprobe.check_model",
        [("net", "net341()", True), ("X", "X6()", True), ("y", "Y6()", True)],
        {
            "net": pool(
                "net341()",
                "net341(dropout=0.5)",
                "net341(l2=0.1)",
                "gradprobe.MLP([3, 4, 3], activation='tanh', seed=0)",
                "net341().eval()",
                "!'net'",
                "!None",
                "!object()",
                "!gradprobe.Normalizer()",
            ),
            **matrix_pool(),
            "y": labels_pool(),
            "eps": EPS_POOL,
            "method": METHOD_POOL,
            "thresholds": THRESHOLDS_POOL,
            "sample": SAMPLE_POOL,
            "seed": SEED_POOL,
            "mode": MODE_POOL,
            "memory": MEMORY_POOL,
            "workers": pool("None", "!0", "!'2'", "!2.5", "!True"),
        },
    )
    t["recommend_scale"] = lambda: fuzz_one(
        "recommend_scale",
        "recommend_scale",
        "gradprobe.recommend_scale",
        [("activation", "'relu'", True)],
        {
            "activation": pool(
                "'relu'",
                "'tanh'",
                "'gelu'",
                "'silu'",
                "'elu'",
                "'softplus'",
                "'linear'",
                "np.tanh",
                "math.tanh",
                "abs",
                "lambda z: np.maximum(z, 0.2 * z)",
                "!'RELU'",
                "!'bogus'",
                "!''",
                "!None",
                "!3",
                "!['relu']",
                "!raises",
                "!exits",
                "!returns('abc')",
                "!returns(None)",
                "!returns(10**400)",
                "!returns(float('nan'))",
                "!returns(np.ones(3))",
                "!returns(BadFloat())",
                "!returns(0.0)",
                "!lambda z: z * np.nan",
                "!lambda z: np.zeros_like(z)",
                "!deep",
                "!lambda z: np.exp(z ** 2)",
                "!lambda z: np.exp(50 * z)",
                "lambda z: 1e-200 * z",
                "!lambda z: z.astype(complex)",
                "!lambda z: np.array(['a'] * np.size(z))",
                "!lambda z: z[:3]",
                "!rnd",
                "!lambda: 1.0",
                "lambda z: float(z) ** 2",
                "!lambda z: [BadFloat()] * np.size(z)",
                "init.gain",
            ),
            "rtol": pool(
                "0.05",
                "0",
                "1e300",
                "np.float64(0.1)",
                "!-1",
                "!float('nan')",
                "!'0.05'",
                "!None",
                "!True",
                "!10**400",
                "![0.05]",
            ),
        },
    )
    t["deep_linear"] = lambda: fuzz_one(
        "deep_linear",
        "deep_linear",
        "gradprobe.deep_linear",
        [("w", "1.5", True), ("depth", "10", True)],
        {
            "w": pool(
                "1.5",
                "0.5",
                "0",
                "-1.0",
                "1e308",
                "5e-324",
                "np.float32(2)",
                "3",
                "!'2'",
                "!None",
                "!True",
                "!float('nan')",
                "!float('inf')",
                "!10**400",
                "![1.5]",
                "!np.array([1.5])",
                "!1j",
                "!BadFloat()",
                "Decimal('1.5')",
                "Fraction(3, 2)",
            ),
            "depth": pool(
                "1",
                "50",
                "2000",
                "np.int64(3)",
                "!0",
                "!-1",
                "!1.5",
                "!'10'",
                "!None",
                "!True",
                "!10**400",
                "!2**63",
                "10**7",
            ),
            "width": pool(
                "1", "4", "np.int64(2)", "!0", "!-1", "!'4'", "!2.5", "!None", "!10**400", "10**5"
            ),
            "x": pool(
                "None",
                "[2.0]",
                "!'ab'",
                "![[1.0], [2.0, 3.0]]",
                "![None]",
                "![10**400]",
                "[1e308]",
                "![float('nan')]",
                "![0.0]",
                "![1.0, 2.0]",
                "!np.ones((1, 1))",
                "ro(np.ones(1))",
                "![BadFloat()]",
                "!1.0",
            ),
            "tolerance": pool(
                "100.0",
                "1.5",
                "1e300",
                "!1",
                "!0.5",
                "!-1",
                "!float('nan')",
                "!float('inf')",
                "!'100'",
                "!None",
                "!True",
                "!10**400",
            ),
        },
    )
    t["depth_sweep"] = lambda: fuzz_one(
        "depth_sweep",
        "depth_sweep",
        "gradprobe.depth_sweep",
        [
            ("depth", "3", True),
            ("width", "4", True),
            ("activation", "'relu'", True),
            ("batch_size", "8", False),
        ],
        {
            "depth": pool(
                "1",
                "3",
                "np.int64(2)",
                "!0",
                "!-1",
                "!1.5",
                "!'3'",
                "!None",
                "!True",
                "!10**400",
                "!2**63",
                "10**6",
            ),
            "width": pool("1", "4", "!0", "!-1", "!'4'", "!2.5", "!None", "!10**400", "10**5"),
            "activation": pool(
                "'relu'",
                "'tanh'",
                "'gelu'",
                "'sigmoid'",
                "!'bogus'",
                "!None",
                "!3",
                "!np.tanh",
                "!''",
                "!['relu']",
            ),
            "inits": pool(
                "None",
                "['he']",
                "'xavier'",
                "['auto', 'orthogonal']",
                "{'mine': init.he}",
                "!['bogus']",
                "![]",
                "!{}",
                "!5",
                "![['he']]",
                "![None]",
                "!{'a': None}",
                "!{'a': raises}",
                "!{'a': exits}",
                "!{'a': returns('abc')}",
                "!{'a': returns(np.ones((2, 2)))}",
                "!{'a': returns(np.full((4, 4), np.nan))}",
                "!(x for x in ['he'])",
                "!{'a': lambda shape: np.ones(shape)}",
                "!b'he'",
                "('he', 'he')",
                "{1: 'he'}",
            ),
            "seed": SEED_POOL,
            "batch_size": pool("1", "8", "!0", "!-1", "!'8'", "!2.5", "!10**400", "10**9"),
            "tolerance": pool(
                "100.0", "1.5", "!1", "!-1", "!float('nan')", "!'100'", "!None", "!10**400"
            ),
        },
    )
    t["propagation"] = lambda: fuzz_one(
        "propagation",
        "propagation",
        "gradprobe.propagation",
        [("net", "net341()", True), ("X", "X6()", True)],
        {
            "net": pool(
                "net341()",
                "net341(dropout=0.5)",
                "gradprobe.MLP([3] * 30, init='zeros', output='linear')",
                "gradprobe.MLP([3] * 30, init=init.get('normal', scale=50.0))",
                "!'net'",
                "!None",
                "!object()",
                "!gradprobe.Normalizer()",
            ),
            **matrix_pool(),
            "seed": SEED_POOL,
            "tolerance": pool(
                "100.0", "1.5", "!1", "!-1", "!float('nan')", "!'100'", "!None", "!10**400", "!True"
            ),
        },
    )

    @st.composite
    def initializers(draw: Any) -> Case:
        which = draw(
            st.sampled_from(["draw", "draw", "draw", "gain", "get", "fans", "default_for"])
        )
        if which == "draw":
            name = draw(
                st.sampled_from(
                    [
                        "zeros",
                        "normal",
                        "uniform",
                        "he",
                        "he_uniform",
                        "xavier",
                        "xavier_uniform",
                        "lecun",
                        "orthogonal",
                    ]
                )
            )
            fuzzed = draw(st.sampled_from(["shape", "rng", "option"]))
            shape, rng = ("(4, 3)", False), ("0", False)
            kwargs: tuple[tuple[str, str], ...] = ()
            if fuzzed == "shape":
                shape = draw(
                    pick(
                        "(4, 3)",
                        "(5,)",
                        "(2, 3, 3)",
                        "[4, 3]",
                        "np.array([4, 3])",
                        "(4.0, 3.0)",
                        "!(0, 3)",
                        "!(-1, 3)",
                        "!()",
                        "!(4, 3.5)",
                        "!'ab'",
                        "!None",
                        "!(4, '3')",
                        "!(4, None)",
                        "!(4, 10**400)",
                        "!((4,), 3)",
                        "(2**40, 2**40)",
                        "!(4, True)",
                        "!3",
                        "!(4, float('nan'))",
                    )
                )
            elif fuzzed == "rng":
                rng = draw(
                    pick(
                        "0",
                        "np.random.default_rng(0)",
                        "10**400",
                        "np.int64(1)",
                        "!-1",
                        "!'0'",
                        "!None",
                        "!1.5",
                        "!True",
                        "!np.random.RandomState(0)",
                        "![0]",
                    )
                )
            else:
                name = draw(st.sampled_from(["normal", "uniform", "orthogonal"]))
                option = "gain" if name == "orthogonal" else "scale"
                value, invalid = draw(
                    pick(
                        "0.5",
                        "0",
                        "1e300",
                        "1e308",
                        "np.float32(2)",
                        "!-1",
                        "!float('nan')",
                        "!float('inf')",
                        "!'0.5'",
                        "!None",
                        "!True",
                        "!10**400",
                        "![0.5]",
                        "!1j",
                    )
                )
                return Case(
                    "init.*",
                    f"init.{name}",
                    option,
                    f"init.{name}",
                    ("(4, 3)", "0"),
                    ((option, value),),
                    invalid=invalid,
                )
            value, invalid = shape if fuzzed == "shape" else rng
            return Case(
                "init.*",
                f"init.{name}",
                fuzzed,
                f"init.{name}",
                (shape[0], rng[0]),
                kwargs,
                invalid=invalid,
            )
        if which == "gain":
            fuzzed = draw(st.sampled_from(["name", "slope"]))
            if fuzzed == "name":
                value, invalid = draw(
                    pick(
                        "'relu'",
                        "'leaky_relu'",
                        "'tanh'",
                        "'sigmoid'",
                        "'linear'",
                        "'gelu'",
                        "'silu'",
                        "'elu'",
                        "'softplus'",
                        "!'bogus'",
                        "!None",
                        "!3",
                        "!''",
                        "!['relu']",
                        "!np.tanh",
                    )
                )
                return Case(
                    "init.*", "init.gain", "activation", "init.gain", (value,), invalid=invalid
                )
            value, invalid = draw(
                pick(
                    "0.2",
                    "0",
                    "1e200",
                    "1e308",
                    "!-1",
                    "!float('nan')",
                    "!'0.2'",
                    "!None",
                    "!10**400",
                    "!True",
                )
            )
            return Case(
                "init.*",
                "init.gain",
                "slope",
                "init.gain",
                ("'leaky_relu'", value),
                invalid=invalid,
            )
        if which == "get":
            value, invalid = draw(
                pick("'he'", "'normal'", "!'bogus'", "!None", "!3", "!['he']", "!'HE'", "!init.he")
            )
            options = draw(st.sampled_from(["", "scale=0.5", "gain=2.0", "scale='x'", "bogus=1"]))
            kwargs = tuple(tuple(options.split("=", 1)) for _ in [0] if options)  # type: ignore
            return Case(
                "init.*",
                "init.get",
                "name",
                "init.get",
                (value,),
                kwargs,
                invalid=invalid and not options,
            )
        if which == "fans":
            value, invalid = draw(
                pick(
                    "(4, 3)",
                    "(8, 3, 3, 3)",
                    "!()",
                    "!(0,)",
                    "!'ab'",
                    "!None",
                    "!(4, 10**400)",
                    "!(4, -3)",
                    "(10**30, 10**30)",
                )
            )
            return Case("init.*", "init.fans", "shape", "init.fans", (value,), invalid=invalid)
        value, invalid = draw(pick("'relu'", "'gelu'", "!'bogus'", "!None", "!3", "!['relu']"))
        return Case(
            "init.*",
            "init.default_for",
            "activation",
            "init.default_for",
            (value,),
            invalid=invalid,
        )

    t["init.*"] = initializers

    def torch_module() -> Plan:
        return fuzz_one(
            "torch.check_module",
            "torch.check_module",
            "gradprobe.torch.check_module",
            [("module", "Lin()", True), ("inputs", "T(4, 3, dtype=torch.float32)", True)],
            {
                "module": pool(
                    "Lin()",
                    "Lin(dtype=torch.float16)",
                    "Lin(dtype=torch.bfloat16)",
                    "Lin(dtype=torch.float64)",
                    "BufferModule().train()",
                    "torch.nn.Sequential(Lin(), torch.nn.ReLU())",
                    "TupleModule()",
                    "DropModule()",
                    "!RaisingModule()",
                    "!StrModule()",
                    "!IntModule()",
                    "!NaNModule()",
                    "!MutatingModule()",
                    "!FrozenModule()",
                    "!ExitModule()",
                    "!'module'",
                    "!None",
                    "!torch.nn.ReLU()",
                    "!Lin",
                    "!lambda x: x",
                ),
                "inputs": pool(
                    "T(4, 3, dtype=torch.float32)",
                    "(T(4, 3),)",
                    "[T(4, 3)]",
                    "T(1, 3)",
                    "T(4, 3, dtype=torch.float16)",
                    "T(4, 3, requires_grad=True)",
                    "T(4, 3).t().contiguous().t()",
                    "!T(4, 5)",
                    "T(3)",
                    "!None",
                    "!'x'",
                    "!np.ones((4, 3))",
                    "!T(4, 3).long()",
                    "!T(4, 3) * float('nan')",
                    "!T(4, 3) * float('inf')",
                    "!T(0, 3)",
                    "!(T(4, 3), T(4, 3))",
                    "!{'x': T(4, 3)}",
                    "!T(4, 3).to(torch.complex64)",
                    "T(4, 3) * 1e300",
                ),
                "loss_fn": pool(
                    "None",
                    "torch.nn.functional.mse_loss",
                    "torch.nn.MSELoss()",
                    "lambda out: out.pow(2).sum()",
                    "!raises",
                    "!exits",
                    "!returns(1.5)",
                    "!returns('abc')",
                    "!returns(10**400)",
                    "!lambda out: out",
                    "!lambda out: out.sum() * float('nan')",
                    "!lambda out: out.sum() + torch.rand(())",
                    "!'mse'",
                    "!3",
                    "!lambda out: out.sum().long()",
                    "!lambda: 1.0",
                    "lambda out: out.sum().reshape(1, 1)",
                ),
                "targets": pool(
                    "None",
                    "T(4, 2)",
                    "!T(7)",
                    "!'abc'",
                    "!T(4, 2) * float('nan')",
                    "T(4, 2).long()",
                    "3.0",
                ),
                "eps": EPS_POOL,
                "thresholds": THRESHOLDS_POOL,
                "sample": SAMPLE_POOL,
                "seed": SEED_POOL,
                "mode": MODE_POOL,
                "batch_size": pool(
                    "None", "1", "2", "10**9", "!0", "!-1", "!'4'", "!2.5", "!True", "10**400"
                ),
                "include": pool(
                    "None",
                    "'weight'",
                    "['*.bias', 'weight']",
                    "!'zzz'",
                    "!3",
                    "![3]",
                    "!b'weight'",
                    "!['weight', None]",
                ),
                "exclude": pool("None", "'bias'", "!'*'", "!'zzz'", "!3"),
                "check_inputs": pool("False", "True", "'yes'"),
            },
            torch=True,
        )

    def torch_function() -> Plan:
        base = fuzz_one(
            "torch.check_function",
            "torch.check_function",
            "gradprobe.torch.check_function",
            [("fn", "torch.sin", True), ("input0", "T(3, requires_grad=True)", True)],
            {
                "fn": pool(
                    "torch.sin",
                    "torch.tanh",
                    "lambda x: (x.sin(), x.cos())",
                    "lambda x: {'a': x * 2}",
                    "torch.relu",
                    "!raises",
                    "!exits",
                    "!returns('abc')",
                    "!returns(1.5)",
                    "!returns(None)",
                    "!lambda x: x * torch.rand(())",
                    "!lambda x: x * float('nan')",
                    "!lambda x: (x * 3).long()",
                    "!'sin'",
                    "!None",
                    "!3",
                    "!lambda: torch.ones(1)",
                    "lambda x: x[: int(x.sum() > 0) + 1]",
                    "!lambda x: x.numpy()",
                    "lambda x: x.sum()",
                    "!deep",
                ),
                "input0": pool(
                    "T(3, requires_grad=True)",
                    "T(3)",
                    "T(2, 2, dtype=torch.float16)",
                    "T(2, 2, dtype=torch.bfloat16)",
                    "T(4, 4).t()",
                    "T(3) * 1e300",
                    "!T(3).long()",
                    "!T(0)",
                    "!torch.tensor([float('nan'), 1.0])",
                    "!torch.tensor([float('inf'), 1.0])",
                    "!3.0",
                    "!None",
                    "!'x'",
                    "!np.ones(3)",
                    "!T(3).to(torch.complex64)",
                    "![T(3)]",
                ),
                "per_output": pool("False", "True", "'yes'"),
                "eps": EPS_POOL,
                "sample": SAMPLE_POOL,
                "mode": MODE_POOL,
                "seed": SEED_POOL,
                "include": pool("None", "'input0'", "!'zzz'", "!3"),
                "batch_size": pool("None", "1", "!0", "!'4'"),
            },
            torch=True,
        )
        return base

    def jax_function() -> st.SearchStrategy[Case]:
        return fuzz_one(
            "jax.check_function",
            "jax.check_function",
            "jax_check",
            [("f", "jsq", True), ("args", "np.array([0.3, -0.2, 0.9])", True)],
            {
                "f": pool(
                    "jsq",
                    "lambda x: (x**3).sum()",
                    "lambda x: {'a': x * 2}",
                    "returns(1.5)",
                    "!raises",
                    "!exits",
                    "!interrupts",
                    "!returns('abc')",
                    "!returns(None)",
                    "!returns(float('nan'))",
                    "!lambda x: x.sum() * float('nan')",
                    "!lambda x: x.sum() * np.random.default_rng().random()",
                    "!'sin'",
                    "!None",
                    "!deep",
                ),
                "args": pool(
                    "np.array([0.3, -0.2, 0.9])",
                    "np.array([[0.3, -0.2], [0.1, 0.4]], dtype=np.float32)",
                    "arr((3,), 'tiny')",
                    "ro(arr((3,)))",
                    "{'w': np.ones(2), 'b': (np.zeros(1),)}",
                    "!arr((3,), 'nan')",
                    "!arr((3,), 'inf')",
                    "!np.array(['a'])",
                    "!np.arange(3)",
                    "!None",
                    "![[1.0, 2.0], [3.0]]",
                ),
                "argnums": pool("0", "(0,)", "!1", "!-3", "!'0'", "!(0, 0)", "!1.5", "!True"),
                "eps": EPS_POOL,
                "thresholds": THRESHOLDS_POOL,
                "sample": SAMPLE_POOL,
                "seed": SEED_POOL,
                "mode": MODE_POOL,
                "memory": MEMORY_POOL,
            },
        )

    t["jax.check_function"] = jax_function
    t["torch.check_module"] = torch_module
    t["torch.check_function"] = torch_function
    t["check_gradients [garbage]"] = lambda: plan(
        garbage_grid("check_gradients"), garbage_case("check_gradients")
    )
    t["assert_gradients [garbage]"] = lambda: plan(
        garbage_grid("assert_gradients"), garbage_case("assert_gradients")
    )
    t["check_model [garbage]"] = garbage_model_case
    t["torch [garbage]"] = lambda: plan(garbage_torch_grid())
    return t


# Draws per part of each target in a full run (--quick divides them): a finite part (the
# argument/value pairs of the pools) is enumerated up to this many draws, each composite
# part (generated arrays, structures, garbage gradients) gets this many.
EXAMPLES = {
    "check_gradients": 250,
    "assert_gradients": 200,
    "numerical_gradient": 120,
    "derivative": 160,
    "Normalizer": 50,
    "MLP": 170,
    "MLP.fit/predict/loss": 60,
    "check_model": 240,
    "recommend_scale": 80,
    "deep_linear": 110,
    "depth_sweep": 125,
    "propagation": 80,
    "init.*": 450,
    "torch.check_module": 250,
    "torch.check_function": 160,
    "jax.check_function": 120,
    "check_gradients [garbage]": 150,
    "assert_gradients [garbage]": 60,
    "check_model [garbage]": 100,
    "torch [garbage]": 60,
}
TARGET_SECONDS = 75.0  # a target stops generating after this long (bounded run time)


def _freeze_hypothesis_constants() -> None:
    """Keep the generated cases independent of the source code around them.

    Hypothesis mixes constants it finds in "local" modules (gradprobe's sources and this
    file) into its integer and float draws, so a change to gradprobe would change which
    cases a seeded run generates, and a before/after comparison would compare different
    cases. Generation here only needs Hypothesis's own randomness.
    """
    with contextlib.suppress(Exception):
        from hypothesis.internal.conjecture import providers

        empty = providers.Constants()
        providers._get_local_constants = lambda: empty


def run_target(
    name: str,
    examples: int,
    *,
    skip: int = 0,
    budget: float = BUDGET_S,
    sink: Callable[[dict], None] | None = None,
    heartbeat: str | None = None,
    max_seconds: float = TARGET_SECONDS,
    dry_run: bool = False,
    finite_cap: int | None = None,
) -> list[dict]:
    """Generate up to ``examples`` distinct cases of a target and execute them in-process.

    ``dry_run`` only generates them (records hold the case, for coverage statistics).
    """
    _freeze_hypothesis_constants()
    parts = plan(targets()[name]())
    records: list[dict] = []
    seen: set[str] = set()
    ordinal = [0]
    cache: dict[str, Any] = {}
    started = time.monotonic()

    def body(case: Case) -> None:
        if case.source in seen or time.monotonic() - started > max_seconds:
            return
        seen.add(case.source)
        index = ordinal[0]
        ordinal[0] += 1
        if index < skip:
            return
        if dry_run:
            records.append(
                {
                    "target": name,
                    "entry": case.entry,
                    "fuzzed": case.fuzzed,
                    "source": case.source,
                    "violations": [],
                    "outcome": "generated",
                }
            )
            return
        if heartbeat:
            Path(heartbeat).write_text(
                json.dumps({"index": index, "case": dataclasses.asdict(case), "t": time.time()})
            )
        record = execute(case, budget, cache)
        record["index"] = index
        records.append(record)
        if sink:
            sink(record)

    for k, (strategy, size) in enumerate(parts):
        # A finite part is enumerated (1.5 draws per case, at most `finite_cap`); a composite
        # part gets `examples` draws.
        count = examples if size is None else int(1.5 * size) + 5
        if size is not None and finite_cap is not None:
            count = min(count, finite_cap)
        test = given(strategy)(body)
        test = settings(
            max_examples=max(1, count),
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
            verbosity=hypothesis.Verbosity.quiet,
        )(test)
        test = hypothesis.seed(SEED + sum(map(ord, name)) + 1009 * k)(test)
        try:
            test()
        except Exception as error:  # noqa: BLE001 - a harness bug must not lose the target
            records.append(
                {
                    "target": name,
                    "entry": name,
                    "fuzzed": "-",
                    "source": "",
                    "outcome": "harness-error",
                    "message": repr(error)[:300],
                    "violations": [],
                }
            )
            if sink:
                sink(records[-1])
    return records


def _worker(
    name: str,
    examples: int,
    skip: int,
    budget: float,
    out: Any,
    heartbeat: str,
    max_seconds: float,
    cap_finite: bool = False,
) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        run_target(
            name,
            examples,
            skip=skip,
            budget=budget,
            sink=out.put,
            heartbeat=heartbeat,
            max_seconds=max_seconds,
            finite_cap=examples if cap_finite else None,
        )
    finally:
        out.put({"__done__": True})
        out.close()
        out.join_thread()


def run_isolated(
    names: list[str],
    examples: dict[str, int],
    *,
    jobs: int = 2,
    budget: float = BUDGET_S,
    max_seconds: float = TARGET_SECONDS,
    log: Callable[[str], None] = print,
    cap_finite: bool = False,
) -> list[dict]:
    """Run each target in a forked worker (memory-limited); kill a worker stuck in C code."""
    ctx = multiprocessing.get_context("fork")
    pending = list(names)
    running: list[dict[str, Any]] = []
    records: list[dict] = []
    tmp = tempfile.mkdtemp(prefix="gradprobe-fuzz-")

    def start(name: str, skip: int = 0, restarts: int = 0) -> None:
        channel = ctx.Queue()
        heartbeat = os.path.join(tmp, re.sub(r"\W+", "_", name) + f".{restarts}.json")
        proc = ctx.Process(
            target=_worker,
            args=(name, examples[name], skip, budget, channel, heartbeat, max_seconds, cap_finite),
            daemon=True,
        )
        proc.start()
        running.append(
            {
                "name": name,
                "proc": proc,
                "queue": channel,
                "heartbeat": heartbeat,
                "done": False,
                "got": [],
                "skip": skip,
                "restarts": restarts,
                "started": time.monotonic(),
            }
        )

    while pending or running:
        while pending and len(running) < jobs:
            start(pending.pop(0))
        time.sleep(0.05)
        for job in list(running):
            with contextlib.suppress(queue.Empty):
                while True:
                    item = job["queue"].get_nowait()
                    if "__done__" in item:
                        job["done"] = True
                    else:
                        job["got"].append(item)
            stuck = None
            hb = Path(job["heartbeat"])
            if hb.exists() and job["proc"].is_alive():
                with contextlib.suppress(Exception):
                    beat = json.loads(hb.read_text())
                    done_index = max((r.get("index", -1) for r in job["got"]), default=-1)
                    if (
                        beat["index"] > done_index
                        and time.time() - beat["t"] > _backstop(budget) + 15
                    ):
                        stuck = beat
            if stuck is not None:
                job["proc"].kill()
            if job["proc"].is_alive():
                continue
            job["proc"].join()
            # Drain what is left.
            with contextlib.suppress(queue.Empty, OSError, EOFError):
                while True:
                    item = job["queue"].get(timeout=0.2)
                    if "__done__" in item:
                        job["done"] = True
                    else:
                        job["got"].append(item)
            records.extend(job["got"])
            running.remove(job)
            if job["done"]:
                log(
                    f"  {job['name']}: {len(job['got'])} cases "
                    f"({time.monotonic() - job['started']:.1f} s)"
                )
                continue
            # The worker died (killed when stuck, or crashed): record the case it was on.
            beat = None
            with contextlib.suppress(Exception):
                beat = json.loads(hb.read_text())
            done_index = max((r.get("index", -1) for r in job["got"]), default=job["skip"] - 1)
            if beat and beat["index"] > done_index:
                case = Case(
                    **{
                        k: tuple(tuple(x) if isinstance(x, list) else x for x in v)
                        if isinstance(v, list)
                        else v
                        for k, v in beat["case"].items()
                    }
                )
                kind = "hang" if stuck is not None else f"worker died (exit {job['proc'].exitcode})"
                prop = "P3" if stuck is not None else "P1"
                records.append(
                    {
                        "target": case.target,
                        "entry": case.entry,
                        "fuzzed": case.fuzzed,
                        "source": case.source,
                        "invalid": case.invalid,
                        "expect": case.expect,
                        "outcome": "timeout" if stuck is not None else "crashed",
                        "index": beat["index"],
                        "exc_type": kind,
                        "site": "<killed by the parent>",
                        "message": kind,
                        "violations": [(prop, f"{kind}: {case.entry}")],
                    }
                )
                next_skip = beat["index"] + 1
            else:
                next_skip = done_index + 1
            if job["restarts"] < 3:
                log(f"  {job['name']}: worker lost at case {next_skip - 1}; restarting")
                start(job["name"], skip=next_skip, restarts=job["restarts"] + 1)
    shutil.rmtree(tmp, ignore_errors=True)
    return records


# --------------------------------------------------------------------------------- CLI


@dataclasses.dataclass
class CliCase:
    """One command line run in its own temporary folder."""

    name: str
    argv: list[str]
    kind: str  # "usage": must be exit 2, one line; "ok": exit 0; "fail": exit 1; "any"
    files: dict[str, str | bytes] = dataclasses.field(default_factory=dict)
    special: str = ""  # "symlink", "dangling", "fifo", "pair-json-dir", "pair-html-dir", "pair"
    timeout: float = 30.0

    @property
    def command(self) -> str:
        known = ("derivative", "check", "depth", "diagnose")
        return self.argv[0] if self.argv and self.argv[0] in known else "(root)"


GOOD_PY = """\
import numpy as np
params = {"W": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": np.array([0.1, -0.3])}

def loss(p):
    LOSS_PRE
    return float(np.sum(p["W"] ** 2) + np.sum(np.sin(p["b"])))

def grads(p):
    GRADS_PRE
    return {"W": 2 * p["W"], "b": np.cos(p["b"])}
"""


def _user_file(
    loss_pre: str = "pass",
    grads_pre: str = "pass",
    top: str = "",
    replace: tuple[str, str] | None = None,
) -> str:
    text = GOOD_PY.replace("LOSS_PRE", loss_pre).replace("GRADS_PRE", grads_pre)
    if replace:
        text = text.replace(*replace)
    return top + text


TORCH_PY = """\
import torch
torch.manual_seed(0)
module = torch.nn.Linear(3, 2)
inputs = torch.randn(4, 3)
"""

GOOD_CSV = "a,b,label\n" + "".join(
    f"{(i * 37 % 11) / 3:.3f},{(i * 53 % 7) - 3:.3f},{i % 2}\n" for i in range(40)
)


def cli_cases() -> list[CliCase]:
    """About 240 command lines: usage errors, odd values, user files, special paths."""
    c: list[CliCase] = []
    add = c.append
    # ---- root
    add(CliCase("root: unknown command", ["bogus"], "usage"))
    add(CliCase("root: unknown option", ["--bogus"], "usage"))
    add(CliCase("root: --version", ["--version"], "ok"))
    add(CliCase("root: help", ["--help"], "ok"))
    add(CliCase("root: --debug alone", ["--debug"], "any"))
    add(CliCase("root: command typo", ["diagnos"], "usage"))
    # ---- derivative
    for expr, kind in [
        ("x**3", "ok"),
        ("sin(x)", "ok"),
        ("abs(x)", "ok"),
        ("", "usage"),
        ("x**", "usage"),
        ("__import__('os').system('true')", "usage"),
        ("x.__class__", "usage"),
        ("y", "usage"),
        ("open('f')", "usage"),
        ("x @ x", "usage"),
        ("1/0", "usage"),
        ("9**9**9", "any"),
        ("x**10**10", "any"),
        ("exp(exp(exp(exp(x))))", "any"),
        ("(" * 300 + "x" + ")" * 300, "any"),
        ("+".join(["x"] * 3000), "any"),
        ("x" * 5000, "usage"),
        ("sign(x)", "usage"),
        ("x²", "usage"),
        ("x\n+1", "any"),
        ("factorial(x)", "usage"),
        ("x**0.5", "any"),
        ("1e400*x", "any"),
        ("10**400*x", "any"),
    ]:
        add(CliCase(f"derivative {expr[:30]!r}", ["derivative", expr, "--json"], kind))
    for at, kind in [
        ("nan", "usage"),
        ("inf", "usage"),
        ("1e308", "any"),
        ("1e400", "usage"),
        ("abc", "usage"),
        ("", "usage"),
        ("1e-320", "ok"),
    ]:
        add(CliCase(f"derivative --at {at}", ["derivative", "x**3", "--at", at], kind))
    for expr, at in [
        ("log(x)", "-1"),
        ("sqrt(x)", "-1"),
        ("1/x", "0"),
        ("x**0.5", "0"),
        ("exp(x)", "800"),
        ("abs(x)", "0"),
    ]:
        add(CliCase(f"derivative {expr} --at {at}", ["derivative", expr, "--at", at], "any"))
    for eps, kind in [
        ("0", "usage"),
        ("-1", "usage"),
        ("nan", "usage"),
        ("inf", "usage"),
        ("1e-320", "any"),
        ("1e300", "any"),
        ("abc", "usage"),
        ("1e400", "usage"),
    ]:
        add(CliCase(f"derivative --eps {eps}", ["derivative", "x**3", "--eps", eps], kind))
    for m, kind in [
        ("bogus", "usage"),
        ("", "usage"),
        ("CENTRAL", "usage"),
        ("complex", "ok"),
        ("richardson", "ok"),
    ]:
        add(CliCase(f"derivative -m {m!r}", ["derivative", "x**3", "-m", m], kind))
    add(CliCase("derivative abs -m complex", ["derivative", "abs(x)", "-m", "complex"], "usage"))
    for var, kind in [
        ("", "usage"),
        ("x y", "usage"),
        ("sin", "usage"),
        ("1x", "usage"),
        ("pi", "usage"),
        ("t", "ok"),
        ("__class__", "any"),
    ]:
        expr = "t**2" if var == "t" else f"{var}**2" if var else "x**2"
        add(CliCase(f"derivative --var {var!r}", ["derivative", expr, "--var", var], kind))
    add(CliCase("derivative no expression", ["derivative"], "usage"))
    add(CliCase("derivative two expressions", ["derivative", "x", "x"], "usage"))
    # ---- check: user files
    files: list[tuple[str, str | bytes, str, list[str]]] = [
        ("good", _user_file(), "ok", []),
        ("wrong sign", _user_file(replace=('2 * p["W"]', '-2 * p["W"]')), "fail", []),
        (
            "random grads",
            _user_file(replace=('2 * p["W"]', "np.random.default_rng(0).normal(size=(2, 2))")),
            "fail",
            [],
        ),
        ("nan grads", _user_file(replace=('2 * p["W"]', "np.full((2, 2), np.nan)")), "usage", []),
        ("loss sys.exit(0)", _user_file(loss_pre="import sys; sys.exit(0)"), "usage", []),
        ("loss sys.exit(1)", _user_file(loss_pre="import sys; sys.exit(1)"), "usage", []),
        ("loss sys.exit('bye')", _user_file(loss_pre="import sys; sys.exit('bye')"), "usage", []),
        ("grads sys.exit(0)", _user_file(grads_pre="import sys; sys.exit(0)"), "usage", []),
        ("loss KeyboardInterrupt", _user_file(loss_pre="raise KeyboardInterrupt"), "any", []),
        ("loss raises", _user_file(loss_pre="raise ValueError('bad loss')"), "usage", []),
        ("loss RecursionError", _user_file(loss_pre="return loss(p)"), "usage", []),
        ("loss returns 10**400", _user_file(loss_pre="return 10**400"), "usage", []),
        ("loss returns str", _user_file(loss_pre="return 'abc'"), "usage", []),
        ("loss returns '1.5'", _user_file(loss_pre="return '1.5'"), "usage", []),
        ("loss returns nan", _user_file(loss_pre="return float('nan')"), "usage", []),
        ("loss returns array", _user_file(loss_pre="return p['W']"), "usage", []),
        (
            "loss returns BadFloat",
            _user_file(loss_pre="return type('B', (), {'__float__': lambda s: 1 / 0})()"),
            "usage",
            [],
        ),
        ("loss random", _user_file(loss_pre="return float(np.random.rand())"), "usage", []),
        ("params str", _user_file(replace=("params = {", 'params = "abc"; _ = {')), "usage", []),
        ("params empty", _user_file(replace=("params = {", "params = {}; _ = {")), "usage", []),
        (
            "params ragged",
            _user_file(replace=("np.array([[1.0, -2.0], [0.5, 3.0]])", "[[1.0], [0.5, 3.0]]")),
            "usage",
            [],
        ),
        (
            "params int",
            _user_file(
                replace=("np.array([[1.0, -2.0], [0.5, 3.0]])", "np.array([[1, -2], [0, 3]])")
            ),
            "usage",
            [],
        ),
        (
            "params nan",
            _user_file(replace=("np.array([0.1, -0.3])", "np.array([0.1, np.nan])")),
            "usage",
            [],
        ),
        (
            "params 10**400",
            _user_file(replace=("np.array([0.1, -0.3])", "[10**400, 1.0]")),
            "usage",
            [],
        ),
        ("params int key", _user_file(replace=('"b": np.array', "1: np.array")), "usage", []),
        (
            "grads wrong shape",
            _user_file(replace=('"W": 2 * p["W"]', '"W": 2 * p["W"].T[:1]')),
            "usage",
            [],
        ),
        ("grads missing key", _user_file(replace=('"W": 2 * p["W"], ', "")), "usage", []),
        ("grads returns str", _user_file(grads_pre='return "abc"'), "usage", []),
        (
            "grads not callable",
            _user_file(top="", replace=("def grads(p):", "grads = 5\ndef _g(p):")),
            "usage",
            [],
        ),
        (
            "loss not callable",
            _user_file(replace=("def loss(p):", "loss = 5\ndef _l(p):")),
            "usage",
            [],
        ),
        ("import raises", "raise ValueError('nope')\n", "usage", []),
        ("import sys.exit(0)", "import sys\nsys.exit(0)\n", "usage", []),
        ("import sys.exit(3)", "import sys\nsys.exit(3)\n", "usage", []),
        ("syntax error", "def loss(p) return 1\n", "usage", []),
        ("empty file", "", "usage", []),
        ("only params", "params = {'W': [1.0]}\n", "usage", []),
        ("binary garbage", b"\x00\xff\xfe\x80garbage\x00", "usage", []),
        ("import KeyboardInterrupt", "raise KeyboardInterrupt\n", "any", []),
        ("import MemoryError", "raise MemoryError\n", "usage", []),
        (
            "factory ok",
            _user_file() + "\ndef make():\n    return loss, params, grads\n",
            "ok",
            [":make"],
        ),
        ("factory missing", _user_file(), "usage", [":nothere"]),
        ("factory not callable", _user_file() + "\nmake = 3\n", "usage", [":make"]),
        (
            "factory returns list",
            _user_file() + "\ndef make():\n    return [loss, params, grads]\n",
            "usage",
            [":make"],
        ),
        (
            "factory raises",
            _user_file() + "\ndef make():\n    raise ValueError('x')\n",
            "usage",
            [":make"],
        ),
        (
            "factory sys.exit(0)",
            _user_file() + "\ndef make():\n    import sys; sys.exit(0)\n",
            "usage",
            [":make"],
        ),
        (
            "factory loss exit",
            _user_file(loss_pre="import sys; sys.exit(0)")
            + "\ndef make():\n    return loss, params, grads\n",
            "usage",
            [":make"],
        ),
        ("torch ok", TORCH_PY, "ok", []),
        ("torch no inputs", "import torch\nmodule = torch.nn.Linear(3, 2)\n", "usage", []),
        ("torch forward raises", TORCH_PY + "module.forward = lambda x: 1 / 0\n", "usage", []),
        (
            "torch forward exits",
            TORCH_PY + "import sys\nmodule.forward = lambda x: sys.exit(0)\n",
            "usage",
            [],
        ),
        ("torch loss_fn vector", TORCH_PY + "loss_fn = lambda out: out\n", "usage", []),
        (
            "torch inputs str",
            "import torch\nmodule = torch.nn.Linear(3, 2)\ninputs = 'abc'\n",
            "usage",
            [],
        ),
        (
            "torch inputs wrong shape",
            "import torch\nmodule = torch.nn.Linear(3, 2)\ninputs = torch.randn(4, 5)\n",
            "usage",
            [],
        ),
    ]
    for label, text, kind, suffix in files:
        argv = ["check", "user.py" + (suffix[0] if suffix else ""), "--json"]
        add(CliCase(f"check file: {label}", argv, kind, files={"user.py": text}))
    add(
        CliCase(
            "check file: torch -m richardson",
            ["check", "user.py", "-m", "richardson"],
            "usage",
            files={"user.py": TORCH_PY},
        )
    )
    add(CliCase("check: missing file", ["check", "missing.py"], "usage"))
    add(CliCase("check: a folder", ["check", "."], "usage"))
    add(
        CliCase(
            "check: not .py", ["check", "notes.txt"], "usage", files={"notes.txt": _user_file()}
        )
    )
    add(CliCase("check: no argument", ["check"], "usage"))
    add(CliCase("check: file: prefix", ["check", ":make"], "usage"))
    add(
        CliCase(
            "check: text output ok", ["check", "user.py"], "ok", files={"user.py": _user_file()}
        )
    )
    for opt, values in [
        (
            "--eps",
            [
                ("0", "usage"),
                ("-1", "usage"),
                ("nan", "usage"),
                ("inf", "usage"),
                ("1e-300", "any"),
                ("1e300", "any"),
                ("abc", "usage"),
                ("1e400", "usage"),
            ],
        ),
        (
            "--method",
            [
                ("bogus", "usage"),
                ("", "usage"),
                # The user file's loss calls float(), which drops the imaginary part:
                # the complex step cannot apply and refusing it is right.
                ("complex", "usage"),
                ("richardson", "ok"),
                ("Central", "usage"),
            ],
        ),
        (
            "--sample",
            [
                ("0", "usage"),
                ("-1", "usage"),
                ("1", "ok"),
                ("abc", "usage"),
                ("1" + "0" * 30, "ok"),
            ],
        ),
        ("--seed", [("-1", "usage"), ("abc", "usage"), ("1" + "0" * 30, "ok")]),
    ]:
        for value, kind in values:
            add(
                CliCase(
                    f"check {opt} {value!r}",
                    ["check", "user.py", opt, value, "--json"],
                    kind,
                    files={"user.py": _user_file()},
                )
            )
    for pair, kind in [
        (["1e-4", "1e-6"], "usage"),
        (["nan", "nan"], "usage"),
        (["0", "1"], "usage"),
        (["1e-6"], "usage"),
        (["1", "inf"], "usage"),
        (["1e-7", "1e-5"], "ok"),
    ]:
        add(
            CliCase(
                f"check --thresholds {' '.join(pair)}",
                ["check", "user.py", "--thresholds", *pair, "--json"],
                kind,
                files={"user.py": _user_file()},
            )
        )
    # ---- depth
    fast = ["--depth", "3", "--width", "4"]
    for opt, values in [
        (
            "--depth",
            [
                ("0", "usage"),
                ("-1", "usage"),
                ("abc", "usage"),
                ("1.5", "usage"),
                ("1", "ok"),
                ("1000000", "any"),
                ("1" + "0" * 30, "any"),
                ("", "usage"),
            ],
        ),
        (
            "--width",
            [
                ("0", "usage"),
                ("-1", "usage"),
                ("abc", "usage"),
                ("100000", "any"),
                ("1" + "0" * 30, "any"),
            ],
        ),
        (
            "--activation",
            [
                ("bogus", "usage"),
                ("", "usage"),
                ("RELU", "usage"),
                ("gelu", "ok"),
                ("linear", "ok"),
            ],
        ),
        (
            "--init",
            [
                ("bogus", "usage"),
                ("", "usage"),
                ("auto", "ok"),
                ("orthogonal", "ok"),
                ("xavier_uniform", "ok"),
                ("zeros", "ok"),
            ],
        ),
        ("--seed", [("-1", "usage"), ("abc", "usage"), ("1" + "0" * 30, "any"), ("7", "ok")]),
    ]:
        for value, kind in values:
            base = list(fast)
            if opt in ("--depth", "--width"):
                i = base.index(opt)
                base[i + 1] = value
                argv = ["depth", *base, "--json"]
            else:
                argv = ["depth", *base, opt, value, "--json"]
            limit = 20.0 if value == "1000000" else 30.0  # no upper bound on --depth
            add(CliCase(f"depth {opt} {value[:12]!r}", argv, kind, timeout=limit))
    for special in ["symlink", "dangling", "fifo"]:
        add(
            CliCase(
                f"depth --plot onto a {special}",
                ["depth", *fast, "--plot", "plot.png"],
                "any",
                special=special,
            )
        )
    add(CliCase("depth --plot into a folder", ["depth", *fast, "--plot", "."], "usage"))
    add(
        CliCase(
            "depth --plot under a file",
            ["depth", *fast, "--plot", "f.txt/plot.png"],
            "usage",
            files={"f.txt": "x"},
        )
    )
    add(CliCase("depth --plot new folder", ["depth", *fast, "--plot", "a/b/plot.png"], "ok"))
    add(CliCase("depth --plot empty", ["depth", *fast, "--plot", ""], "usage"))
    add(
        CliCase(
            "depth --plot over a file",
            ["depth", *fast, "--plot", "old.png"],
            "ok",
            files={"old.png": "old"},
        )
    )
    # ---- diagnose (fast failures; a few full runs)
    quick_run = ["--epochs", "1", "--layers", "4"]
    for opt, values in [
        ("--dataset", ["bogus", "BREAST_CANCER"]),
        ("--layers", ["", "0", "a,b", "1e3", "-1"]),
        ("--activation", ["bogus", "", "RELU"]),
        ("--init", ["bogus", ""]),
        ("--l2", ["-1", "nan", "inf"]),
        ("--dropout", ["1", "-0.1", "nan"]),
        ("--epochs", ["0", "-1", "abc"]),
        ("--lr", ["0", "-1", "nan"]),
        ("--optimizer", ["bogus", "Adam"]),
        ("--seed", ["-1", "abc"]),
        ("--task", ["bogus"]),
    ]:
        for value in values:
            add(
                CliCase(
                    f"diagnose {opt} {value!r}",
                    ["diagnose", *quick_run, opt, value, "--out", "out"],
                    "usage",
                )
            )
    add(
        CliCase(
            "diagnose --layers huge",
            ["diagnose", "--epochs", "1", "--layers", "9" * 12, "--out", "out"],
            "any",
        )
    )
    add(CliCase("diagnose --target without --data", ["diagnose", "--target", "y"], "usage"))
    add(
        CliCase(
            "diagnose --data without --target",
            ["diagnose", "--data", "good.csv"],
            "usage",
            files={"good.csv": GOOD_CSV},
        )
    )
    add(
        CliCase(
            "diagnose --data missing",
            ["diagnose", "--data", "no.csv", "--target", "label"],
            "usage",
        )
    )
    add(
        CliCase("diagnose --data folder", ["diagnose", "--data", ".", "--target", "label"], "usage")
    )
    csvs: dict[str, str | bytes] = {
        "empty": "",
        "header only": "a,b,label\n",
        "text": "a,b,label\nx,y,1\nz,w,0\n",
        "nan": "a,b,label\n" + "1,nan,0\n2,3,1\n" * 10,
        "ragged": "a,b,label\n1,2\n3,4,5,6\n",
        "binary": b"\x00\xff\xfe\x80\x00\x01",
        "one row": "a,b,label\n1,2,0\n",
        "semicolons": "a;b;label\n1;2;0\n3;4;1\n",
        "inf": "a,b,label\n" + "1e999,2,0\n3,4,1\n" * 10,
        "target missing": GOOD_CSV,
        "duplicate header": "a,a,label\n" + "1,2,0\n3,4,1\n" * 10,
        "utf16": ("a,b,label\n1,2,0\n3,4,1\n").encode("utf-16"),
    }
    for label, text in csvs.items():
        target = "nope" if label == "target missing" else "label"
        add(
            CliCase(
                f"diagnose --data csv {label}",
                ["diagnose", *quick_run, "--data", "d.csv", "--target", target, "--out", "out"],
                "usage" if label not in ("one row", "inf", "duplicate header") else "any",
                files={"d.csv": text},
            )
        )
    add(
        CliCase(
            "diagnose --out is a file",
            ["diagnose", *quick_run, "--out", "f.txt"],
            "usage",
            files={"f.txt": "x"},
        )
    )
    add(
        CliCase(
            "diagnose --out under a file",
            ["diagnose", *quick_run, "--out", "f.txt/out"],
            "usage",
            files={"f.txt": "x"},
        )
    )
    add(CliCase("diagnose --out empty", ["diagnose", *quick_run, "--out", ""], "any", timeout=60))
    run_args = ["diagnose", "--dataset", "moons", *quick_run, "--out", "out"]
    add(CliCase("diagnose report pair replaced", run_args, "ok", special="pair", timeout=60))
    add(
        CliCase(
            "diagnose pair: report.json is a folder",
            run_args,
            "any",
            special="pair-json-dir",
            timeout=60,
        )
    )
    add(
        CliCase(
            "diagnose pair: report.html is a folder",
            run_args,
            "any",
            special="pair-html-dir",
            timeout=60,
        )
    )
    add(
        CliCase(
            "diagnose pair: report.json is a symlink",
            run_args,
            "any",
            special="pair-json-symlink",
            timeout=60,
        )
    )
    add(
        CliCase(
            "diagnose --data good csv",
            ["diagnose", *quick_run, "--data", "d.csv", "--target", "label", "--out", "out"],
            "ok",
            files={"d.csv": GOOD_CSV},
            timeout=60,
        )
    )
    add(
        CliCase(
            "diagnose --lr 1e6",
            ["diagnose", "--dataset", "circles", *quick_run, "--lr", "1e6", "--out", "out"],
            "any",
            timeout=60,
        )
    )
    return c


def _cli_limits(cpu_seconds: float) -> Callable[[], None]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        limit = int(cpu_seconds)
        resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 5))

    return preexec


_TB_FRAME = re.compile(r'File "([^"]*gradprobe[/\\][^"]+)", line (\d+), in (\S+)')


def run_cli_case(case: CliCase, python: str = sys.executable) -> dict:
    """Run one command line in a fresh folder and check P5 (and P3) on it."""
    folder = Path(tempfile.mkdtemp(prefix="gradprobe-cli-"))
    record: dict[str, Any] = {
        "target": f"cli {case.command}",
        "entry": f"cli {case.command}",
        "fuzzed": case.name,
        "source": _cli_source(case),
        "outcome": "",
        "violations": [],
        "kind": case.kind,
    }
    try:
        for name, content in case.files.items():
            path = folder / name
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        plot = folder / "plot.png"
        keep = folder / "keep.txt"
        if case.special in ("symlink", "dangling"):
            keep.write_text("precious")
            plot.symlink_to(keep if case.special == "symlink" else folder / "nowhere.png")
        elif case.special == "fifo":
            os.mkfifo(plot)
        elif case.special.startswith("pair"):
            out = folder / "out"
            out.mkdir()
            (out / "report.html").write_text("OLD HTML")
            (out / "report.json").write_text("OLD JSON")
            if case.special == "pair-json-dir":
                (out / "report.json").unlink()
                (out / "report.json").mkdir()
                (out / "report.json" / "x").write_text("x")
            elif case.special == "pair-html-dir":
                (out / "report.html").unlink()
                (out / "report.html").mkdir()
            elif case.special == "pair-json-symlink":
                keep.write_text("OLD JSON")
                (out / "report.json").unlink()
                (out / "report.json").symlink_to(keep)
        env = {
            **os.environ,
            "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "COLUMNS": "100",
            "OMP_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
        }
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                [python, "-m", "gradprobe", *case.argv],
                cwd=folder,
                env=env,
                capture_output=True,
                timeout=4 * case.timeout,
                preexec_fn=_cli_limits(case.timeout),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            record["seconds"] = round(time.perf_counter() - started, 2)
            record["outcome"] = "timeout"
            record["violations"].append(
                ("P3", f"cli {case.command}: no answer within {4 * case.timeout:g} s")
            )
            record["violations"].extend(_special_checks(case, folder))
            return record
        record["seconds"] = round(time.perf_counter() - started, 2)
        if proc.returncode == -signal.SIGXCPU:
            record["outcome"] = "timeout"
            record["violations"].append(
                ("P3", f"cli {case.command}: killed after {case.timeout:g} s of CPU time")
            )
            record["violations"].extend(_special_checks(case, folder))
            return record
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        rc = proc.returncode
        record.update(rc=rc, stderr=err[-600:], stdout_head=out[:200])
        record["outcome"] = f"exit {rc}"
        v = record["violations"]
        if "Traceback (most recent call last)" in out + err:
            frames = _TB_FRAME.findall(err + out)
            last = err.strip().splitlines()[-1] if err.strip() else "?"
            exc = last.split(":")[0].strip()
            site = "<no gradprobe frame>"
            if frames:
                path, line, func = frames[-1]
                marker = "gradprobe" + os.sep
                site = f"{path[path.rindex(marker) :]}:{line} in {func}"
            record.update(exc_type=exc, site=site, message=last[:300])
            v.append(("P5", f"cli: traceback ({exc} at {site})"))
        lines = [line for line in err.strip().splitlines() if line.strip()]
        if rc == 2 and len(lines) != 1:
            if "Usage:" in err:
                what = "a multi-line click/typer usage panel on stderr"
            elif any("Warning:" in line for line in lines[:-1]):
                what = "Python warnings (raised in the user's code) on stderr before the error line"
            else:
                what = f"{len(lines)} lines on stderr"
            v.append(("P5", f"cli: exit 2 with {what}"))
        if case.kind == "usage" and rc != 2 and not any("traceback" in x[1] for x in v):
            if case.command == "check" and rc == 0:
                pass  # reported below, with the reason
            else:
                v.append(("P5", f"cli {case.command}: usage/input error exited {rc}, expected 2"))
        if case.kind == "ok" and rc != 0 and not v:
            v.append(("P5", f"cli {case.command}: valid command exited {rc}"))
        if case.command == "check":
            verdict = _verdict(out)
            if rc == 0 and verdict != "ok":
                v.append(
                    (
                        "P5",
                        "cli check: exit 0 without a passing report"
                        + (" (no report printed)" if verdict is None else ""),
                    )
                )
            if rc == 1 and verdict in (None, "ok") and "Traceback" not in err:
                v.append(("P5", "cli check: exit 1 without a failing report"))
        v.extend(_special_checks(case, folder))
        return record
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _verdict(out: str) -> str | None:
    with contextlib.suppress(Exception):
        return json.loads(out).get("verdict")
    match = re.search(r"gradient check: (ok|suspicious|wrong)\b", out, re.IGNORECASE)
    return match.group(1).lower() if match else None


def _special_checks(case: CliCase, folder: Path) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    plot = folder / "plot.png"
    if case.special in ("symlink", "dangling"):
        if not plot.is_symlink():
            what = "symlink" if case.special == "symlink" else "dangling symlink"
            found.append(("P5", f"cli depth --plot: replaced a {what} with a file"))
        elif (folder / "keep.txt").read_text() != "precious":
            found.append(("P5", "cli depth --plot: wrote through a symlink"))
    elif case.special == "fifo":
        mode = os.lstat(plot).st_mode if os.path.lexists(plot) else 0
        if not stat.S_ISFIFO(mode):
            found.append(("P5", "cli depth --plot: replaced a FIFO with a file"))
    elif case.special.startswith("pair"):
        out = folder / "out"
        html, js = out / "report.html", out / "report.json"
        html_new = html.is_file() and html.read_text(errors="replace") != "OLD HTML"
        if case.special == "pair-json-symlink":
            json_new = not js.is_symlink()
            if json_new:
                found.append(("P5", "cli diagnose --out: replaced a symlinked report.json"))
            json_new = json_new or (folder / "keep.txt").read_text() != "OLD JSON"
        else:
            json_new = js.is_file() and js.read_text(errors="replace") != "OLD JSON"
        if html_new != json_new:
            found.append(
                (
                    "P5",
                    "cli diagnose --out: report pair not replaced together "
                    f"(report.html {'new' if html_new else 'old'}, report.json "
                    f"{'new' if json_new else 'old'})",
                )
            )
    return found


def _cli_source(case: CliCase) -> str:
    lines = []
    for name, content in case.files.items():
        if isinstance(content, bytes):
            lines.append(f"printf {content!r} > {name}  # bytes")
        else:
            lines.append(f"cat > {name} <<'EOF'\n{content.rstrip()}\nEOF")
    if case.special in ("symlink", "dangling"):
        target = "keep.txt" if case.special == "symlink" else "nowhere.png"
        lines.append(
            ("echo precious > keep.txt; " if case.special == "symlink" else "")
            + f"ln -s {target} plot.png"
        )
    elif case.special == "fifo":
        lines.append("mkfifo plot.png")
    elif case.special.startswith("pair"):
        lines.append("mkdir out; echo OLD > out/report.html; echo OLD > out/report.json")
        if case.special == "pair-json-dir":
            lines.append("rm out/report.json; mkdir -p out/report.json/x")
        elif case.special == "pair-html-dir":
            lines.append("rm out/report.html; mkdir out/report.html")
        elif case.special == "pair-json-symlink":
            lines.append("echo OLD > keep.txt; ln -sf ../keep.txt out/report.json")
    quoted = " ".join(_shell_quote(a) for a in case.argv)
    lines.append(f'PYTHONPATH=src python -m gradprobe {quoted}; echo "exit $?"')
    return "\n".join(lines)


def _shell_quote(arg: str) -> str:
    if arg and re.fullmatch(r"[\w@%+=:,./-]+", arg):
        return arg
    if len(arg) > 80:
        return f"'{arg[:24]}…'  # ({len(arg)} characters in all)"
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def run_cli(cases: list[CliCase], jobs: int = 2, log: Callable[[str], None] = print) -> list[dict]:
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(run_cli_case, cases))
    log(f"  cli: {len(results)} command lines")
    return results


# ------------------------------------------------------------------------------ results

PROPS = ["P1", "P1m", "P2", "P3", "P4", "P5"]
PROP_TITLES = {
    "P1": "P1 exception type",
    "P1m": "P1 message names arg",
    "P2": "P2 inputs unchanged",
    "P3": "P3 bounded",
    "P4": "P4 no ok for garbage",
    "P5": "P5 CLI contract",
}


@dataclasses.dataclass
class Result:
    records: list[dict]
    seconds: float
    api_seconds: float = 0.0
    cli_seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at the start and the end

    def violations(self, prop: str | None = None) -> list[dict]:
        return [r for r in self.records if any(prop in (None, p) for p, _ in r["violations"])]

    def applicable(self, record: dict, prop: str) -> bool:
        cli = record["entry"].startswith("cli")
        if prop == "P5":
            return cli
        if prop == "P3":
            return True
        if cli:
            return False
        if prop == "P4":
            return bool(record.get("expect"))
        if prop == "P1m":
            return bool(record.get("invalid")) and record["outcome"] == "refused"
        return record["outcome"] != "harness-error"

    def table(self) -> list[list[str]]:
        entries = sorted({r["entry"] for r in self.records}, key=lambda e: (e.startswith("cli"), e))
        rows = [["entry point", "cases", *[PROP_TITLES[p] for p in PROPS], "accepted invalid"]]
        for entry in entries:
            mine = [r for r in self.records if r["entry"] == entry]
            row = [entry, str(len(mine))]
            for prop in PROPS:
                ran = [r for r in mine if self.applicable(r, prop)]
                bad = [r for r in ran if any(p == prop for p, _ in r["violations"])]
                row.append("–" if not ran else f"{len(bad)}/{len(ran)}")
            invalid = [r for r in mine if r.get("invalid")]
            accepted = [r for r in invalid if r.get("accepted_invalid")]
            row.append("–" if not invalid else f"{len(accepted)}/{len(invalid)}")
            rows.append(row)
        total = ["**all**", str(len(self.records))]
        for prop in PROPS:
            ran = [r for r in self.records if self.applicable(r, prop)]
            bad = [r for r in ran if any(p == prop for p, _ in r["violations"])]
            total.append(f"{len(bad)}/{len(ran)}")
        invalid = [r for r in self.records if r.get("invalid")]
        total.append(f"{sum(bool(r.get('accepted_invalid')) for r in invalid)}/{len(invalid)}")
        rows.append(total)
        return rows

    def causes(self) -> list[dict]:
        groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for record in self.records:
            for prop, key in record["violations"]:
                groups[(prop, key)].append(record)
        out = []
        for (prop, key), records in groups.items():
            best = min(records, key=lambda r: (len(r["source"]), r["source"]))
            out.append(
                {
                    "property": prop,
                    "cause": key,
                    "count": len(records),
                    "entries": sorted(Counter(r["entry"] for r in records)),
                    "arguments": sorted(Counter(str(r["fuzzed"]) for r in records))
                    if not best["entry"].startswith("cli")
                    else [],
                    "example": best,
                    "origins": sorted({r.get("origin", "") for r in records} - {""}),
                }
            )
        out.sort(key=lambda c: (PROPS.index(c["property"]), -c["count"], c["cause"]))
        return out

    def harness_errors(self) -> list[dict]:
        return [r for r in self.records if r["outcome"] == "harness-error"]


def format_table(rows: list[list[str]], markdown: bool = False) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(("| " + " | ".join(cells) + " |") if markdown else "  ".join(cells))
        if n == 0:
            if markdown:
                lines.append(
                    "|"
                    + "|".join(
                        ("-" * (w + 1) + ":") if i else ("-" * (w + 2))
                        for i, w in enumerate(widths)
                    )
                    + "|"
                )
            else:
                lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe_cause(n: int, cause: dict, full: bool = True) -> str:
    ex = cause["example"]
    head = (
        f"{n}. [{cause['property']}] {cause['cause']} — {cause['count']} case(s); "
        f"entry points: {', '.join(cause['entries'])}"
    )
    if cause["arguments"]:
        head += f"; arguments: {', '.join(cause['arguments'])}"
    if cause["origins"]:
        head += f"; raised in: {', '.join(cause['origins'])}"
    parts = [head]
    if ex.get("message"):
        parts.append(f"   message: {ex['message'][:240]}")
    if ex["entry"].startswith("cli"):
        parts.append(f"   case: {ex['fuzzed']}; {ex.get('outcome', '')}")
        if ex.get("stderr"):
            tail = [line for line in ex["stderr"].strip().splitlines() if line.strip()][-2:]
            parts.append("   stderr ends: " + " / ".join(t.strip()[:160] for t in tail))
    if full:
        body = ex["source"] if ex["entry"].startswith("cli") else ex["source"]
        parts.append(
            textwrap.indent(body, "   >>> " if not ex["entry"].startswith("cli") else "   $ ")
        )
    return "\n".join(parts)


def run(
    targets: list[str] | None = None,
    examples: int | dict[str, int] | None = None,
    cli: bool = True,
    cli_limit: int | None = None,
    isolate: bool = True,
    jobs: int = 2,
    budget: float = BUDGET_S,
    max_seconds: float = TARGET_SECONDS,
    log: Callable[[str], None] = print,
    cap_finite: bool = False,
) -> Result:
    """Run the harness (or a slice of it) and return every record.

    Parameters
    ----------
    targets : list of str, optional
        Fuzz target names (keys of :func:`targets`); default all.
    examples : int or dict, optional
        Examples per target; default :data:`EXAMPLES`.
    cli : bool
        Also run the command-line cases; ``cli_limit`` takes every k-th to keep that many.
    isolate : bool
        Run each target in a forked, memory-limited worker (default); False runs in-process.
    cap_finite : bool
        Also limit the enumeration of finite parts to ``examples`` draws (``--quick``).
    """
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    names = list(targets_names() if targets is None else targets)
    if isinstance(examples, int):
        counts = dict.fromkeys(names, examples)
    else:
        counts = {n: (examples or {}).get(n, EXAMPLES.get(n, 50)) for n in names}
    records: list[dict] = []
    if names:
        log(
            f"API: {len(names)} targets, {sum(counts.values())} examples at most, budget "
            f"{budget:g} s per call, {jobs} worker(s)"
        )
        if isolate:
            records += run_isolated(
                names,
                counts,
                jobs=jobs,
                budget=budget,
                max_seconds=max_seconds,
                log=log,
                cap_finite=cap_finite,
            )
        else:
            for name in names:
                records += run_target(
                    name,
                    counts[name],
                    budget=budget,
                    max_seconds=max_seconds,
                    finite_cap=counts[name] if cap_finite else None,
                )
    api_seconds = time.perf_counter() - started
    cli_seconds = 0.0
    if cli:
        cases = cli_cases()
        if cli_limit is not None and cli_limit < len(cases):
            step = len(cases) / cli_limit
            cases = [cases[int(i * step)] for i in range(cli_limit)]
        log(f"CLI: {len(cases)} command lines, {jobs} at a time")
        t0 = time.perf_counter()
        records += run_cli(cases, jobs=jobs, log=log)
        cli_seconds = time.perf_counter() - t0
    result = Result(records, time.perf_counter() - started, api_seconds, cli_seconds)
    result.load = (load_before, os.getloadavg()[0])
    return result


def targets_names() -> list[str]:
    return list(targets())


PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def report_markdown(result: Result, argv: list[str], budget: float = BUDGET_S) -> str:
    import gradprobe

    causes = result.causes()
    lines = [
        "# Fuzzing gradprobe: before fixes",
        "",
        f"Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}. "
        f"Command: `PYTHONPATH=src python benchmarks/fuzz.py {' '.join(argv)}`.",
        f"Runtime: {result.seconds:.0f} s wall ({result.api_seconds:.0f} s API targets, "
        f"{result.cli_seconds:.0f} s command lines), on {os.cpu_count()} cores "
        f"({platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"hypothesis {hypothesis.__version__}, gradprobe {gradprobe.__version__}); "
        f"1-minute load average {result.load[0]:.1f} at the start, {result.load[1]:.1f} at "
        "the end.",
        "",
        f"Hypothesis seed {SEED} (+ a per-target offset), `derandomize=True`, generation phase "
        f"only, no database; every call had a budget of {budget:g} s of CPU time (wall-clock "
        f"backstop {_backstop(budget):g} s) in a forked worker limited "
        f"to {MEMORY_LIMIT / 2**30:g} GiB of address space; CLI runs in subprocesses with the "
        "same memory limit, a CPU-time limit (RLIMIT_CPU) of 30 s (60 s for full diagnose "
        "runs, 20 s for --depth 1000000) and a wall-clock backstop of 4 times that. "
        "Counts are violations/cases where the property applies. "
        '"accepted invalid" is informational: values marked definitely invalid that were '
        "accepted without an error.",
        "",
        format_table(result.table(), markdown=True),
        "",
        f"Total: {len(result.records)} cases, {len(result.violations())} with at least one "
        f"violation, {len(causes)} distinct causes.",
        "",
        "## Distinct causes",
        "",
        "Grouped by property, exception type and the last gradprobe frame of the traceback "
        "(or, without an exception, by what went wrong); each with its shortest reproducer. "
        "API reproducers are complete scripts (helpers included); CLI ones are shell lines "
        "run in an empty folder at the repository root level (`src` on `PYTHONPATH`).",
        "",
    ]
    shown: list[str] = []
    for n, cause in enumerate(causes, 1):
        ex = cause["example"]
        lines.append(f"### {n}. [{cause['property']}] {cause['cause']}")
        lines.append("")
        meta = f"{cause['count']} case(s); entry points: {', '.join(cause['entries'])}"
        if cause["arguments"]:
            meta += f"; fuzzed arguments: {', '.join(cause['arguments'])}"
        if cause["origins"]:
            meta += f"; innermost frame: {', '.join(cause['origins'])}"
        lines.append(meta + ".")
        if ex.get("message"):
            lines.append("")
            lines.append(f"Message: `{ex['message'][:300]}`")
        if ex.get("stderr") and ex["entry"].startswith("cli"):
            tail = [t.strip() for t in ex["stderr"].strip().splitlines() if t.strip()][-3:]
            lines.append("")
            lines.append("stderr (last lines): `" + " / ".join(t[:200] for t in tail) + "`")
        lines.append("")
        if ex["entry"].startswith("cli"):
            lines.append(f"Case: {ex['fuzzed']} ({ex.get('outcome')})")
            lines.append("")
            lines.append("```sh")
            lines.append(ex["source"])
            lines.append("```")
        else:
            lines.append("```python")
            lines.append(ex["source"].rstrip())
            lines.append("```")
            shown.append(ex["source"])
        lines.append("")
    used = [code.strip() for code in _snippets_used(shown)]
    lines += [
        "## Helpers used by the reproducers",
        "",
        "Each API reproducer above runs after these lines (`fuzz.reproducer(source)` prints a",
        "self-contained script with only the helpers a case uses).",
        "",
        "```python",
        PRELUDE.strip(),
        "",
        "\n\n".join(used),
        "```",
        "",
    ]
    errors = result.harness_errors()
    if errors:
        lines.append("## Harness errors")
        lines.append("")
        for r in errors[:20]:
            lines.append(f"- {r['target']}: `{r.get('message', '')}` in `{r['source'][:120]}`")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small slice, under a minute")
    parser.add_argument("--only", action="append", help="run only this target (repeatable)")
    parser.add_argument("--examples", type=int, help="examples per target")
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--cli-only", action="store_true")
    parser.add_argument("--cli-limit", type=int)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--budget", type=float, help=f"seconds per call (default {BUDGET_S:g}; --quick: 3)"
    )
    parser.add_argument("--in-process", action="store_true", help="no forked workers")
    parser.add_argument("--markdown", type=Path, help="write the report to this file")
    parser.add_argument("--json", type=Path, help="write every record to this file")
    parser.add_argument("--list", action="store_true", help="list the targets")
    options = parser.parse_args(argv)
    if options.list:
        print("\n".join(targets_names()))
        return 0
    names = options.only or targets_names()
    if options.cli_only:
        names = []
    examples: int | dict[str, int] | None = options.examples
    max_seconds = TARGET_SECONDS
    cli_limit = options.cli_limit
    budget = options.budget or BUDGET_S
    if options.quick:
        examples = examples or {n: max(8, EXAMPLES.get(n, 50) // 12) for n in names}
        cli_limit = cli_limit or 16
        max_seconds = 12.0
        budget = options.budget or 3.0
    result = run(
        names,
        examples,
        cli=not options.no_cli,
        cli_limit=cli_limit,
        isolate=not options.in_process,
        jobs=options.jobs,
        budget=budget,
        max_seconds=max_seconds,
        cap_finite=options.quick,
    )
    print()
    print(format_table(result.table()))
    causes = result.causes()
    print(
        f"\n{len(result.records)} cases, {len(result.violations())} with a violation, "
        f"{len(causes)} distinct causes; {result.seconds:.0f} s "
        f"(API {result.api_seconds:.0f} s, CLI {result.cli_seconds:.0f} s)\n"
    )
    for n, cause in enumerate(causes, 1):
        print(describe_cause(n, cause))
        print()
    for r in result.harness_errors()[:10]:
        print(f"HARNESS ERROR {r['target']}: {r.get('message')} :: {r['source'][:160]}")
    if options.markdown:
        shown = [
            a
            for a in (argv if argv is not None else sys.argv[1:])
            if not a.startswith("--markdown") and a != str(options.markdown)
        ]
        options.markdown.write_text(report_markdown(result, shown, budget))
        # The project's CI formats Python blocks in Markdown too: write them as ruff would.
        formatted = subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--quiet", "--config", str(PYPROJECT)]
            + [str(options.markdown)],
            check=False,
            capture_output=True,
            text=True,
        )
        if formatted.returncode != 0:
            print(f"ruff could not format {options.markdown}: {formatted.stderr.strip()[:200]}")
    if options.json:
        options.json.write_text(json.dumps(result.records, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
