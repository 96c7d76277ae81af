"""check_function: JAX gradients of pytrees checked by gradprobe's engine, bugs pinned by name."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads as jax_check_grads

from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.jax import check_function


class Dense(NamedTuple):
    kernel: Any
    bias: Any


def make(rng: np.random.Generator, sizes: tuple[int, ...] = (4, 5, 3)) -> tuple[Any, Any, Any]:
    params = {
        f"dense_{i}": {
            "kernel": rng.normal(size=(a, b)) / np.sqrt(a),
            "bias": rng.normal(size=b) * 0.1,
        }
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
    }
    x = rng.normal(size=(7, sizes[0]))
    y = rng.integers(0, sizes[-1], 7)
    return params, x, y


def mlp_loss(params: Any, x: Any, y: Any, activation: Any = jnp.tanh) -> Any:
    a = x
    names = sorted(params)
    for name in names[:-1]:
        a = activation(a @ params[name]["kernel"] + params[name]["bias"])
    logits = a @ params[names[-1]]["kernel"] + params[names[-1]]["bias"]
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[jnp.arange(len(y)), y])


def planted_dense(entry: tuple[int, int], factor: float) -> Any:
    """A dense layer with a custom VJP whose kernel gradient is wrong at one entry."""

    @jax.custom_vjp
    def dense(kernel: Any, bias: Any, x: Any) -> Any:
        return x @ kernel + bias

    def forward(kernel: Any, bias: Any, x: Any) -> Any:
        return dense(kernel, bias, x), (kernel, x)

    def backward(saved: Any, g: Any) -> Any:
        kernel, x = saved
        d_kernel = (x.T @ g).at[entry].multiply(factor)
        return d_kernel, g.sum(0), g @ kernel.T

    dense.defvjp(forward, backward)
    return dense


def custom_loss(dense: Any) -> Any:
    def loss(params: Any, x: Any, y: Any) -> Any:
        hidden = jnp.tanh(dense(params["dense_0"]["kernel"], params["dense_0"]["bias"], x))
        logits = hidden @ params["dense_1"]["kernel"] + params["dense_1"]["bias"]
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[jnp.arange(len(y)), y])

    return loss


def test_a_correct_network_passes_like_jax_check_grads(rng: np.random.Generator) -> None:
    params, x, y = make(rng)
    report = check_function(mlp_loss, params, x, y)
    assert report.verdict == "ok" and report.passed
    assert [row.name for row in report.parameters] == [
        "params['dense_0']['bias']",
        "params['dense_0']['kernel']",
        "params['dense_1']['bias']",
        "params['dense_1']['kernel']",
    ]
    assert report.checked == report.total == 4 * 5 + 5 + 5 * 3 + 3
    with jax.enable_x64(True):
        jax_check_grads(lambda p: mlp_loss(p, x, y), (params,), order=1, modes=("rev",))


def test_a_planted_custom_vjp_bug_is_pinned_to_its_path_and_entry(
    rng: np.random.Generator,
) -> None:
    params, x, y = make(rng)
    good = check_function(custom_loss(planted_dense((3, 1), 1.0)), params, x, y)
    assert good.verdict == "ok"
    report = check_function(custom_loss(planted_dense((3, 1), 2.0)), params, x, y)
    assert report.verdict == "wrong"
    assert report.wrong_parameters == ["params['dense_0']['kernel']"]
    assert report.worst(1)[0].name == "params['dense_0']['kernel'][3, 1]"
    row = next(r for r in report.parameters if r.name == "params['dense_0']['kernel']")
    assert row.diagnosis is not None and "single wrong entry" in row.diagnosis
    assert "params['dense_0']['kernel'][3, 1]" in str(report)
    with pytest.raises(AssertionError), jax.enable_x64(True):  # JAX agrees, without a name
        jax_check_grads(
            lambda p: custom_loss(planted_dense((3, 1), 2.0))(p, x, y), (params,), 1, ["rev"]
        )


def test_a_planted_custom_jvp_bug_is_caught_in_reverse_mode(rng: np.random.Generator) -> None:
    @jax.custom_jvp
    def softplus(z: Any) -> Any:
        return jnp.logaddexp(z, 0.0)

    @softplus.defjvp
    def softplus_jvp(primals: Any, tangents: Any) -> Any:
        (z,), (t,) = primals, tangents
        return softplus(z), jax.nn.sigmoid(2 * z) * t  # should be sigmoid(z)

    params, x, y = make(rng)
    report = check_function(lambda params, x, y: mlp_loss(params, x, y, softplus), params, x, y)
    assert report.verdict == "wrong"
    assert "params['dense_0']['kernel']" in report.wrong_parameters
    assert "params['dense_1']['kernel']" not in report.wrong_parameters  # after the activation


def test_sample_and_argnums(rng: np.random.Generator) -> None:
    params, x, y = make(rng)
    report = check_function(mlp_loss, params, x, y, argnums=(0, 1), sample=4, seed=1)
    assert [row.checked for row in report.parameters] == [4, 4, 3, 4, 4]
    assert report.parameters[-1].name == "x"
    assert report.verdict == "ok"


def test_localize_finds_one_planted_entry_in_few_evaluations(rng: np.random.Generator) -> None:
    params, x, y = make(rng, (16, 32, 4))
    loss = custom_loss(planted_dense((9, 20), 3.0))
    report = check_function(loss, params, x, y, mode="localize")
    assert report.mode == "localize"
    assert report.verdict == "wrong"
    assert [entry.name for entry in report.worst(1)] == ["params['dense_0']['kernel'][9, 20]"]
    total = sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params))
    assert report.evaluations < 2 * total / 4


def test_kinks_get_the_subgradient_answer() -> None:
    # ReLU at exactly 0: JAX's derivative there, 0, is a valid one-sided choice; gradprobe
    # says so, where JAX's check along one direction sees the average of both sides.
    x = np.array([-1.0, 0.0, 2.0, 0.0])
    relu = lambda x: jnp.sum(jax.nn.relu(x) * jnp.arange(1.0, 5.0))  # noqa: E731
    report = check_function(relu, x)
    assert report.verdict == "ok" and report.kinks == 2
    assert {entry.name for entry in report.entries if entry.kink} == {"x[1]", "x[3]"}
    with pytest.raises(AssertionError), jax.enable_x64(True):
        jax_check_grads(relu, (x,), 1, ["rev"])
    # A tie in a maximum: JAX gives each side half, which is the central difference itself.
    ties = check_function(lambda a, b: jnp.sum(jnp.maximum(a, b)), x, x.copy(), argnums=(0, 1))
    assert ties.verdict == "ok"
    with jax.enable_x64(True):
        jax_check_grads(lambda a, b: jnp.sum(jnp.maximum(a, b)), (x, x.copy()), 1, ["rev"])


def test_outputs_of_any_shape_and_settings_restored(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 2)).astype(np.float32)
    before = x.copy()

    def several(x: Any) -> Any:
        return {"sin": jnp.sin(x), "count": jnp.argmax(x), "sum": jnp.sum(x**3)}

    report = check_function(several, x)
    assert report.verdict == "ok"
    assert any("Σ v·output" in note for note in report.notes)
    np.testing.assert_array_equal(x, before)
    assert x.dtype == np.float32
    assert not jax.config.jax_enable_x64
    assert jnp.ones(1).dtype == jnp.float32
    with pytest.raises(LossEvaluationError):
        check_function(lambda x: jnp.sum(jnp.log(x - 10.0)), x)
    assert not jax.config.jax_enable_x64


def test_untraceable_functions_are_checked_uncompiled() -> None:
    def branchy(x: Any) -> Any:  # Python control flow on a value: jax.jit cannot trace it
        return jnp.sum(jnp.sin(x)) if x[0] > 0 else jnp.sum(x**3)

    report = check_function(branchy, np.array([0.5, 1.0]))
    assert report.verdict == "ok"
    assert any("jax.jit could not trace f" in note for note in report.notes)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidTypeError, match="f: got int"):
        check_function(3, np.ones(2))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="args: got none"):
        check_function(jnp.sin)
    with pytest.raises(InvalidArgumentError, match="argnums: got 2 for 1"):
        check_function(jnp.sin, np.ones(2), argnums=2)
    with pytest.raises(InvalidArgumentError, match="mode"):
        check_function(jnp.sin, np.ones(2), mode="fast")


def test_import_gradprobe_does_not_import_jax() -> None:
    import subprocess
    import sys

    code = "import sys, gradprobe; sys.exit('jax' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Linear:
    """A pytree node registered with JAX alone, as Equinox and Flax structs are."""

    weight: Any
    bias: Any


def test_pytree_nodes_registered_with_jax_are_read_by_jax(rng: np.random.Generator) -> None:
    model = Linear(rng.normal(size=(3, 2)), rng.normal(size=2))
    x = rng.normal(size=(4, 3))

    @jax.custom_vjp
    def apply(model: Linear, x: Any) -> Any:
        return jnp.tanh(x @ model.weight + model.bias)

    def backward(saved: Any, g: Any) -> Any:
        model, x = saved
        dz = g * (1 - apply(model, x) ** 2)
        return Linear(x.T @ dz, 2 * dz.sum(0)), dz @ model.weight.T  # bias: twice too large

    apply.defvjp(lambda model, x: (apply(model, x), (model, x)), backward)
    report = check_function(lambda model, x: jnp.sum(apply(model, x) ** 2), model, x)
    assert [row.name for row in report.parameters] == ["model.weight", "model.bias"]
    assert report.wrong_parameters == ["model.bias"]


def test_check_function_tells_progress(rng: np.random.Generator, progress_log) -> None:  # type: ignore[no-untyped-def]
    import io

    from tqdm import tqdm

    params, x, y = make(rng)
    report = check_function(mlp_loss, params, x, y, progress=progress_log)
    progress_log.assert_complete(report.checked)
    bar = tqdm(file=io.StringIO())
    check_function(mlp_loss, params, x, y, progress=bar)
    assert bar.n == bar.total == report.checked
    with pytest.raises(InvalidTypeError, match="progress: got int"):
        check_function(mlp_loss, params, x, y, progress=5)
