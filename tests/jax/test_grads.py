"""check_grads: JAX's signature, gradprobe's report, every order and mode named on failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads as jax_check_grads

from gradprobe.check.checker import GradientCheckError
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.jax import CheckGradsError, check_grads


def sine_with_rule(jvp_factor: float = 1.0, frozen_second: bool = False) -> Any:
    """sin with a custom JVP rule, wrong by ``jvp_factor`` or, second order only, when frozen."""

    @jax.custom_jvp
    def sine(x: Any) -> Any:
        return jnp.sin(x)

    @sine.defjvp
    def sine_jvp(primals: Any, tangents: Any) -> Any:
        (x,), (t,) = primals, tangents
        slope = jnp.cos(jax.lax.stop_gradient(x) if frozen_second else x)
        return sine(x), jvp_factor * slope * t

    return sine


def clipped_square(backward_factor: float = 1.0) -> Any:
    """x² with a custom VJP, its backward pass scaled by ``backward_factor``."""

    @jax.custom_vjp
    def square(x: Any) -> Any:
        return x**2

    square.defvjp(lambda x: (x**2, x), lambda x, g: (backward_factor * 2 * x * g,))
    return square


X = np.array([0.3, -1.2, 2.0])


def test_smooth_functions_pass_both_checkers_at_order_two() -> None:
    reports = check_grads(sine_with_rule(), (X,), order=2)
    assert [r.verdict for r in reports] == ["ok"] * 6
    notes = [next(n for n in r.notes if n.startswith("check_grads")) for r in reports]
    assert [n.split("the ")[1].split(" (")[0] for n in notes] == [
        "JVP",
        "JVP of JVP",
        "VJP of JVP",
        "VJP",
        "JVP of VJP",
        "VJP of VJP",
    ]
    with jax.enable_x64(True):
        jax_check_grads(sine_with_rule(), (X,), order=2)


def test_a_wrong_jvp_rule_fails_both_and_ours_names_the_check() -> None:
    with pytest.raises(CheckGradsError) as caught:
        check_grads(sine_with_rule(jvp_factor=1.5), (X,), order=1)
    error = caught.value
    assert isinstance(error, AssertionError) and isinstance(error, GradientCheckError)
    assert (error.check, error.mode, error.order) == ("JVP", "fwd", 1)
    assert error.report.wrong_parameters == ["x"]
    assert str(error).startswith("check_grads: the JVP (forward mode, jax.jvp, order 1)")
    with pytest.raises(AssertionError), jax.enable_x64(True):
        jax_check_grads(sine_with_rule(jvp_factor=1.5), (X,), order=1)


def test_a_rule_wrong_only_at_second_order_is_caught_there() -> None:
    assert len(check_grads(sine_with_rule(frozen_second=True), (X,), order=1)) == 2
    with pytest.raises(CheckGradsError) as caught:
        check_grads(sine_with_rule(frozen_second=True), (X,), order=2)
    assert (caught.value.check, caught.value.order) == ("JVP of JVP", 2)
    assert "primals[0]" in caught.value.report.wrong_parameters
    with pytest.raises(AssertionError), jax.enable_x64(True):
        jax_check_grads(sine_with_rule(frozen_second=True), (X,), order=2)


def test_a_wrong_custom_vjp_fails_in_reverse_mode() -> None:
    assert check_grads(clipped_square(), (X,), modes=["rev"], order=2)[0].verdict == "ok"
    with jax.enable_x64(True):
        jax_check_grads(clipped_square(), (X,), modes=["rev"], order=1)
    with pytest.raises(CheckGradsError) as caught:
        check_grads(clipped_square(0.5), (X,), modes=["rev"])
    assert caught.value.check == "VJP"
    assert "0.500" in (caught.value.report.parameters[0].diagnosis or "")  # the factor found
    with pytest.raises(AssertionError), jax.enable_x64(True):
        jax_check_grads(clipped_square(0.5), (X,), modes=["rev"], order=1)
    with pytest.raises(LossEvaluationError, match="custom_vjp"):
        check_grads(clipped_square(), (X,), modes=["fwd"])


def test_tolerances_and_steps() -> None:
    slightly_off = sine_with_rule(jvp_factor=1 + 1e-5)
    with pytest.raises(CheckGradsError):
        check_grads(slightly_off, (X,), modes=["fwd"])
    (report,) = check_grads(slightly_off, (X,), modes=["fwd"], rtol=1e-3, atol=1e-3)
    assert report.thresholds[0] == 1e-3
    assert any("atol=0.001 was not used" in note for note in report.notes)
    (stepped,) = check_grads(jnp.sin, (X,), modes=["rev"], eps=1e-4)
    assert stepped.eps == 1e-4 and stepped.verdict == "ok"


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="modes: got"):
        check_grads(jnp.sin, (X,), modes=["lin"])
    with pytest.raises(InvalidArgumentError, match="order: got 0"):
        check_grads(jnp.sin, (X,), order=0)
    with pytest.raises(InvalidTypeError, match="args: got ndarray"):
        check_grads(jnp.sin, X)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="rtol"):
        check_grads(jnp.sin, (X,), rtol=-1.0)
    assert not jax.config.jax_enable_x64


PLANTED_JAX = """
import jax
import jax.numpy as jnp
from gradprobe.jax import check_grads

@jax.custom_jvp
def sine(x):
    return jnp.sin(x)

@sine.defjvp
def sine_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return sine(x), 2.0 * jnp.cos(x) * t  # planted: the factor 2

def test_a_wrong_rule():
    check_grads(sine, (jnp.array([0.3, -1.2]),), order=2)

def test_bad_input():
    check_grads(sine, (jnp.array([0.3]),), modes=("sideways",))
"""


def test_a_failing_check_grads_shows_the_report_not_gradprobes_frames(
    planted_test_output: Callable[[str], str],
) -> None:
    out = planted_test_output(PLANTED_JAX)
    failed, bad_input = out.split("_ test_bad_input _")
    assert "2 failed" in bad_input
    assert "CheckGradsError" in failed and "the JVP (forward mode" in failed, failed
    assert "gradprobe/jax/" not in failed and "gradprobe/check/" not in failed, failed
    # The probe can see gradprobe's frames: a bad argument is no failed check and keeps them.
    assert "gradprobe/_validate/" in bad_input, bad_input
