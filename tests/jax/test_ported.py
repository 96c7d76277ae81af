"""Cases ported from JAX's own test suite, checked by gradprobe and by ``check_grads`` side by side.

The functions and points follow JAX's tests of lax autodiff (``lax_autodiff_test``: each
op on its domain), control flow (``lax_control_flow_test``: cond, switch, fori_loop,
while_loop, scan, map) and custom derivatives (``api_test``: custom_jvp and
custom_vjp rules), written anew here. Where the function is smooth both checkers
must give the same verdict, on the correct rule (pass) and on a planted wrong one
(fail); at kinks gradprobe must give its subgradient answer (pass, kink reported)
where JAX's single random direction sees the average of both sides and fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads as jax_check_grads

from gradprobe.jax import CheckGradsError, check_function, check_grads


def jax_passes(f: Callable[..., Any], args: tuple[Any, ...], order: int, modes: Any) -> bool:
    try:
        with jax.enable_x64(True):
            jax_check_grads(f, args, order, modes=modes)
    except AssertionError:
        return False
    return True


def ours_passes(f: Callable[..., Any], args: tuple[Any, ...], order: int, modes: Any) -> bool:
    try:
        check_grads(f, args, order, modes=modes)
    except CheckGradsError:
        return False
    return True


def points(rng: np.random.Generator, domain: tuple[float, float], *shapes: tuple[int, ...]) -> Any:
    return tuple(rng.uniform(*domain, size=shape) for shape in shapes)


# (op, number of arguments, domain) as in lax_autodiff_test's table of grad ops.
LAX_OPS = [
    (lax.exp, 1, (-1.0, 1.0)),
    (lax.expm1, 1, (-2.0, 2.0)),
    (lax.log, 1, (0.2, 3.0)),
    (lax.log1p, 1, (0.2, 3.0)),
    (lax.tanh, 1, (-2.0, 2.0)),
    (lax.sin, 1, (-3.0, 3.0)),
    (lax.tan, 1, (-1.3, 1.3)),
    (lax.asin, 1, (-0.9, 0.9)),
    (lax.atan2, 2, (0.5, 2.0)),
    (lax.erf, 1, (-1.0, 1.0)),
    (lax.erf_inv, 1, (-0.8, 0.8)),
    (lax.logistic, 1, (-3.0, 3.0)),
    (lax.pow, 2, (0.5, 2.0)),
    (lax.sqrt, 1, (0.2, 3.0)),
    (lax.rsqrt, 1, (0.2, 3.0)),
    (lax.cbrt, 1, (0.5, 3.0)),
    (lax.div, 2, (0.5, 2.0)),
    (lax.mul, 2, (-2.0, 2.0)),
    (lax.bessel_i1e, 1, (-2.0, 2.0)),
]


@pytest.mark.parametrize(
    ("op", "nargs", "domain"), LAX_OPS, ids=lambda v: getattr(v, "__name__", "")
)
def test_lax_ops_same_verdict(op: Any, nargs: int, domain: Any, rng: np.random.Generator) -> None:
    args = points(rng, domain, *[(3,)] * nargs)
    assert jax_passes(op, args, 1, ["fwd", "rev"])
    assert ours_passes(op, args, 1, ["fwd", "rev"])


def test_reductions_and_indexing_same_verdict(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 4))
    cases = [
        lambda x: jnp.cumsum(x, axis=1),
        lambda x: lax.dynamic_slice(x, (1, 1), (2, 2)),
        lambda x: x[jnp.array([2, 0, 0]), 1:3],
        lambda x: lax.reduce_window(x, 0.0, lax.add, (2, 2), (1, 1), "VALID"),
        lambda x: jnp.sort(x, axis=1),  # distinct values: a permutation, smooth
        lambda x: jnp.linalg.norm(x @ x.T + jnp.eye(3)),
        lambda x: lax.conv(x[None, None], x[None, None, :2, :2], (1, 1), "SAME"),
    ]
    for case in cases:
        assert jax_passes(case, (x,), 1, ["fwd", "rev"])
        assert ours_passes(case, (x,), 1, ["fwd", "rev"])


def cond(x: Any) -> Any:
    return lax.cond(x < 3.0, lambda x: 3.0 * x, jnp.sin, x)


def switch(x: Any) -> Any:
    return lax.switch(jnp.clip(jnp.floor(x).astype(int), 0, 2), [jnp.sin, jnp.cos, jnp.tanh], x)


def fori(x: Any) -> Any:
    return lax.fori_loop(0, 4, lambda i, c: c * jnp.sin(c) + i, x)


def while_loop(x: Any) -> Any:
    return lax.while_loop(lambda c: c[1] < 5, lambda c: (jnp.sin(c[0]) * c[0], c[1] + 1), (x, 0))[0]


def scan(c: Any, xs: Any) -> Any:
    def step(carry: Any, x: Any) -> Any:
        return 0.9 * jnp.cos(carry * jnp.sum(jnp.sin(x))), jnp.sin(carry * x)

    final, ys = lax.scan(step, c, xs)
    return final, ys


# JAX's tests check these at order 2; two of them are here, the rest at order 1 to keep
# the suite short on a small machine (each order-2 check is six checks by each checker).
CONTROL_FLOW = [
    ("cond, first branch", cond, (np.array(1.3),), ["fwd", "rev"], 2),
    ("cond, second branch", cond, (np.array(4.1),), ["fwd", "rev"], 1),
    ("switch", switch, (np.array(1.4),), ["fwd", "rev"], 1),
    ("fori_loop", fori, (np.array([0.3, 1.1]),), ["fwd", "rev"], 1),
    ("while_loop (forward mode only, as in JAX)", while_loop, (np.array(0.7),), ["fwd"], 2),
    ("scan", scan, (np.array(0.4), np.array([[0.1, 0.3], [1.2, -0.5], [0.7, 0.2]])), ["rev"], 1),
    ("map", lambda xs: lax.map(lambda x: jnp.sin(x) * x, xs), (np.array([0.2, 1.5]),), ["rev"], 1),
]


@pytest.mark.parametrize(
    ("name", "f", "args", "modes", "order"), CONTROL_FLOW, ids=[c[0] for c in CONTROL_FLOW]
)
def test_control_flow_same_verdict(name: str, f: Any, args: Any, modes: Any, order: int) -> None:
    assert jax_passes(f, args, order, modes)
    assert ours_passes(f, args, order, modes)


def log1pexp(slope: Callable[[Any], Any]) -> Any:
    """JAX's custom_jvp example: a stable log(1 + eˣ) whose rule is ``slope``."""

    @jax.custom_jvp
    def f(x: Any) -> Any:
        return jnp.log1p(jnp.exp(x))

    f.defjvp(lambda primals, tangents: (f(primals[0]), slope(primals[0]) * tangents[0]))
    return f


def sine_vjp(backward: Callable[[Any, Any], Any]) -> Any:
    """api_test's custom_vjp sin: the forward saves cos x, ``backward(saved, g)`` is the rule."""

    @jax.custom_vjp
    def f(x: Any) -> Any:
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), jnp.cos(x)), lambda saved, g: (backward(saved, g),))
    return f


CUSTOM = [
    ("custom_jvp log1pexp", log1pexp(lambda x: 1 - 1 / (1 + jnp.exp(x))), ["fwd", "rev"], True),
    ("custom_jvp log1pexp, wrong", log1pexp(lambda x: 1 / (1 + jnp.exp(x))), ["fwd", "rev"], False),
    ("custom_vjp sin", sine_vjp(lambda saved, g: saved * g), ["rev"], True),
    ("custom_vjp sin, wrong sign", sine_vjp(lambda saved, g: -saved * g), ["rev"], False),
]


@pytest.mark.parametrize(("name", "f", "modes", "right"), CUSTOM, ids=[c[0] for c in CUSTOM])
def test_custom_rules_same_verdict(name: str, f: Any, modes: Any, right: bool) -> None:
    args = (np.array([-2.0, 0.5, 3.0]),)
    assert jax_passes(f, args, 1, modes) is right
    assert ours_passes(f, args, 1, modes) is right


KINKS = [
    ("relu at 0", jax.nn.relu, np.array([0.0, 1.5, -2.0])),
    ("leaky relu at 0", lambda x: jnp.where(x > 0, x, 0.1 * x), np.array([0.0, 0.7])),
    ("abs by cases at 0", lambda x: jnp.where(x >= 0, x, -x), np.array([0.0, -1.0])),
    ("clamp at its bound", lambda x: lax.clamp(-1.0, x, 1.0), np.array([1.0, 0.2])),
]


@pytest.mark.parametrize(("name", "f", "x"), KINKS, ids=[c[0] for c in KINKS])
def test_kinks_get_the_subgradient_answer(name: str, f: Any, x: Any) -> None:
    report = check_function(f, x)
    assert report.verdict == "ok"
    assert [entry.name for entry in report.entries if entry.kink] == ["x[0]"]
    assert not jax_passes(f, (x,), 1, ["rev"])


def test_jax_default_step_crosses_a_relu_kink_that_gradprobe_does_not_blame(
    rng: np.random.Generator,
) -> None:
    x = rng.normal(size=(4, 3))
    kernel = rng.normal(size=(3, 5))
    bias = -(x[0] @ kernel) + np.r_[1e-5, np.ones(4)]  # one pre-activation 1e-5 from its kink
    weights = rng.normal(size=(4, 5))

    def net(kernel: Any, bias: Any) -> Any:
        return jnp.sum(jax.nn.relu(x @ kernel + bias) * weights + jnp.tanh(x @ kernel))

    assert not jax_passes(net, (kernel, bias), 1, ["rev"])
    report = check_function(net, kernel, bias, argnums=(0, 1))
    assert report.verdict == "ok"
