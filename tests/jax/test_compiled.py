"""SharedJit: a compiled program shared only by jaxprs that compute the same thing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.core import Primitive

from gradprobe.jax import _compiled, check_function
from gradprobe.jax._compiled import SharedJit, fingerprint


def key(f: Any, *args: Any) -> Any:
    return fingerprint(jax.make_jaxpr(f)(*args))


def test_equal_computations_have_one_key_whatever_their_names_and_constants() -> None:
    x = jnp.ones(3)
    assert key(lambda a: jnp.sin(a) * 2.0, x) == key(lambda b: jnp.sin(b) * 2.0, x + 1)
    first, second = jnp.arange(3.0), jnp.arange(3.0) + 7
    # Closed-over arrays are constants: arguments of the program, not part of the key.
    assert key(lambda a: a * first, x) == key(lambda a: a * second, x)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (lambda a: a * 2.0, lambda a: a * -2.0),  # a literal's value
        (lambda a: a * 0.0, lambda a: a * -0.0),  # a literal's bits: 0.0 == -0.0 in Python
        (lambda a: jnp.sin(a), lambda a: jnp.cos(a)),  # the primitive
        (lambda a: jnp.sum(a, axis=0), lambda a: jnp.sum(a, axis=1)),  # a parameter
        (lambda a: a[:, :1], lambda a: a[:1, :]),  # another parameter
        (lambda a: a.astype(jnp.float32), lambda a: a.astype(jnp.float16)),  # a dtype
    ],
)
def test_different_computations_have_different_keys(one: Any, other: Any) -> None:
    x = jnp.ones((2, 2))
    assert key(one, x) is not None
    assert key(one, x) != key(other, x)


def test_shapes_are_part_of_the_key() -> None:
    assert key(jnp.sin, jnp.ones(3)) != key(jnp.sin, jnp.ones(4))


TAGGED = Primitive("tagged_for_test")
TAGGED.def_abstract_eval(lambda x, **_: x)


def _tagged(table: Any) -> Any:
    """The key of a jaxpr holding ``table`` as a primitive's parameter."""
    return key(lambda a: TAGGED.bind(a, table=table), jnp.ones(2))


def _inner(constant: Any) -> Any:
    """A jaxpr whose constant is ``constant``, as a parameter of another jaxpr holds it."""
    return jax.make_jaxpr(lambda v: v + constant)(1.0)


def test_small_inner_constants_are_read_by_value() -> None:
    small = jnp.arange(4.0)
    assert _tagged(_inner(small)) is not None
    assert _tagged(_inner(small)) == _tagged(_inner(small + 0))
    assert _tagged(_inner(small)) != _tagged(_inner(small + 1))

    def with_key(seed: int) -> Any:  # a typed PRNG key as the constant
        key = jax.random.key(seed)
        return jax.make_jaxpr(lambda v: v + jax.random.key_data(key)[0])(1.0)

    assert _tagged(with_key(0)) is not None
    assert _tagged(with_key(0)) == _tagged(with_key(0))
    assert _tagged(with_key(0)) != _tagged(with_key(1))


def test_large_inner_constants_are_read_by_identity_or_digest() -> None:
    size = _compiled._CONSTANT_BYTES // 4 + 1
    device = jnp.zeros(size)  # immutable: the same object always holds the same values
    assert _tagged(_inner(device)) == _tagged(_inner(device))
    assert _tagged(_inner(device)) != _tagged(_inner(jnp.zeros(size)))
    host = np.zeros(size)  # mutable: keyed by a digest of its bytes at the trace
    first = _tagged(_inner(host))
    assert first == _tagged(_inner(np.zeros(size)))
    host[3] = 1.0
    assert first != _tagged(_inner(host))


def test_nan_literals_keep_their_sign() -> None:
    def with_fill(fill: float) -> Any:
        return lambda x: jnp.signbit(jnp.where(x > 0, x, fill))

    x = jnp.array([1.0, -1.0])
    for fill in (jnp.nan, -jnp.nan, 0.0, -0.0):
        np.testing.assert_array_equal(SharedJit(with_fill(fill))(x), jax.jit(with_fill(fill))(x))


def test_a_program_is_shared_and_runs_with_the_new_constants() -> None:
    x = jnp.arange(4.0)
    first, second = jnp.full(4, 2.0), jnp.full(4, -3.0)
    one, other = SharedJit(lambda a: a * first + 1), SharedJit(lambda a: a * second + 1)
    np.testing.assert_array_equal(one(x), x * 2 + 1)
    before = len(_compiled._programs)
    np.testing.assert_array_equal(other(x), x * -3 + 1)
    assert len(_compiled._programs) == before  # compiled once, for both
    assert next(iter(one._ready.values()))[2] is next(iter(other._ready.values()))[2]


def test_python_numbers_and_globals_are_read_at_every_trace() -> None:
    scale = {"value": 2.0}

    def f(a: Any) -> Any:
        return a * scale["value"]

    x = jnp.arange(3.0)
    np.testing.assert_array_equal(SharedJit(f)(x), x * 2)
    scale["value"] = 5.0
    np.testing.assert_array_equal(SharedJit(f)(x), x * 5)


def test_callbacks_are_shared_only_with_themselves() -> None:
    def through(callback: Any) -> Any:
        def f(a: Any) -> Any:
            return jax.pure_callback(callback, jax.ShapeDtypeStruct(a.shape, a.dtype), a)

        return f

    x = jnp.arange(3.0)
    one = SharedJit(through(lambda a: np.asarray(a) + 1))(x)
    other = SharedJit(through(lambda a: np.asarray(a) + 2))(x)
    np.testing.assert_array_equal(one, x + 1)
    np.testing.assert_array_equal(other, x + 2)


def test_a_new_signature_traces_again() -> None:
    shared = SharedJit(lambda a: a.sum())
    assert float(shared(jnp.ones(3))) == 3.0
    assert float(shared(jnp.ones(5))) == 5.0
    assert len(shared._ready) == 2


def test_the_cache_keeps_a_bounded_number_of_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compiled, "_KEPT", 4)
    for k in range(7):
        SharedJit(lambda a, k=k: a * float(k + 1000))(jnp.ones(2))
    assert len(_compiled._programs) == 4


def test_one_instance_follows_jaxs_settings() -> None:
    shared = SharedJit(lambda x: x.astype(float))
    x = np.arange(3, dtype=np.float32)  # the same argument type under both settings
    with jax.enable_x64(False):
        assert shared(x).dtype == jnp.float32
    with jax.enable_x64(True):
        assert shared(x).dtype == jnp.float64


def test_it_runs_where_a_shared_program_cannot_as_jit_does() -> None:
    def f(a: Any) -> Any:
        return jnp.sin(a) * 2

    x = jnp.arange(3.0)
    with jax.disable_jit():
        np.testing.assert_allclose(SharedJit(f)(x), f(x))
    np.testing.assert_allclose(jax.vmap(SharedJit(f))(jnp.ones((2, 3))), f(jnp.ones((2, 3))))
    np.testing.assert_allclose(jax.grad(lambda a: SharedJit(f)(a).sum())(x), 2 * jnp.cos(x))


def test_check_function_runs_under_disable_jit() -> None:
    with jax.disable_jit():
        report = check_function(lambda p: jnp.sum(jnp.sin(p) ** 2), np.arange(3.0))
    assert report.verdict == "ok"


def test_settings_are_part_of_the_key() -> None:
    with jax.enable_x64(True):
        x64 = _compiled._settings()
    with jax.enable_x64(False):
        x32 = _compiled._settings()
    assert x64 != x32


def _dense_with(backward_scale: float) -> Any:
    """``a @ w`` as a custom VJP whose weight gradient is multiplied by ``backward_scale``."""

    @jax.custom_vjp
    def dense(w: Any, a: Any) -> Any:
        return a @ w

    def forward(w: Any, a: Any) -> Any:
        return a @ w, (w, a)

    def backward(saved: Any, g: Any) -> Any:
        w, a = saved
        return backward_scale * (a.T @ g), g @ w.T

    dense.defvjp(forward, backward)
    return dense


def _loss(dense: Any) -> Any:
    def loss(params: Any, x: Any) -> Any:
        return jnp.sum(jnp.tanh(dense(params["w"], x)) ** 2)

    return loss


def test_a_planted_rule_is_caught_before_and_after_a_correct_one_with_the_same_forward(
    rng: np.random.Generator,
) -> None:
    params, x = {"w": rng.normal(size=(4, 3))}, rng.normal(size=(6, 4))
    verdicts = [
        check_function(_loss(_dense_with(scale)), params, x).verdict
        for scale in (1.0, 1.5, 1.0, 1.5)
    ]
    assert verdicts == ["ok", "wrong", "ok", "wrong"]


def test_a_planted_jvp_rule_is_caught_after_a_correct_one_with_the_same_forward(
    rng: np.random.Generator,
) -> None:
    def softplus_with(slope_scale: float) -> Any:
        @jax.custom_jvp
        def softplus(z: Any) -> Any:
            return jnp.logaddexp(z, 0.0)

        @softplus.defjvp
        def rule(primals: Any, tangents: Any) -> Any:
            (z,), (dz,) = primals, tangents
            return softplus(z), slope_scale * jax.nn.sigmoid(z) * dz

        return softplus

    params = {"w": rng.normal(size=5)}
    verdicts = [
        check_function(lambda p, s=s: jnp.sum(softplus_with(s)(p["w"]) ** 2), params).verdict
        for s in (1.0, 0.5, 1.0)
    ]
    assert verdicts == ["ok", "wrong", "ok"]


def test_arrays_on_another_device_run_as_jit_runs_them() -> None:
    # Two host devices need an XLA flag set before JAX starts: a fresh process.
    script = """
import jax, jax.numpy as jnp, numpy as np
from gradprobe.jax._compiled import SharedJit
first, second = jax.devices()[:2]
x0, x1 = jax.device_put(jnp.arange(3.0), first), jax.device_put(jnp.arange(3.0), second)
shared = SharedJit(lambda a: jnp.sin(a) * 2)
assert np.allclose(shared(x0), jnp.sin(x0) * 2) and np.allclose(shared(x1), jnp.sin(x1) * 2)
elsewhere = jax.device_put(jnp.full(3, 3.0), second)
assert np.allclose(SharedJit(lambda a: a * elsewhere)(x0), x0 * 3)
print("fine")
"""
    source = Path(__file__).resolve().parents[2] / "src"
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", PYTHONPATH=str(source)
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "fine", result.stderr[-2000:]
