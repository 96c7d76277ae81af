"""The MLP route of check_function: a dense stack in JAX checked by gradprobe's MLP evaluator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradprobe.jax._mlp as mlp_module
import gradprobe.jax.check as check_module
from gradprobe.jax import check_function, check_grads
from gradprobe.jax._evaluator import Evaluator

NOTE = "structure-aware MLP evaluator"
SIZES = (5, 7, 6, 3)


def flax_params(rng: np.random.Generator, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """``{'dense_0': {'kernel': (in, out), 'bias': (out,)}, ...}``, as Flax holds them."""
    return {
        f"dense_{i}": {
            "kernel": rng.normal(size=(a, b)) / np.sqrt(a),
            "bias": rng.normal(size=b) * 0.3,
        }
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
    }


def flax_logits(params: Any, x: Any, activation: Callable[[Any], Any]) -> Any:
    a = x
    names = sorted(params)
    for name in names[:-1]:
        a = activation(a @ params[name]["kernel"] + params[name]["bias"])
    return a @ params[names[-1]]["kernel"] + params[names[-1]]["bias"]


def list_params(rng: np.random.Generator, sizes: tuple[int, ...] = SIZES) -> list[Any]:
    """``[(W, b), ...]`` with ``W`` of shape (out, in), as PyTorch holds a Linear's weight."""
    return [
        (rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.3)
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def list_logits(params: Any, x: Any, activation: Callable[[Any], Any]) -> Any:
    a = x
    for w, b in params[:-1]:
        a = activation(a @ w.T + b)
    w, b = params[-1]
    return jnp.dot(a, w.T) + b


def cross_entropy(logits: Any, y: Any) -> Any:
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[jnp.arange(len(y)), y])


def one_hot_cross_entropy(logits: Any, y: Any) -> Any:
    labels = jax.nn.one_hot(y, logits.shape[1])
    return -jnp.mean(jnp.sum(labels * jax.nn.log_softmax(logits), axis=1))


def mse(logits: Any, y: Any) -> Any:
    return jnp.mean((logits - y) ** 2)


def bce(logits: Any, y: Any) -> Any:
    return jnp.mean(jnp.logaddexp(0.0, logits) - y * logits)


ACTIVATIONS = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "leaky_relu": jax.nn.leaky_relu,
    "linear": lambda z: z,
}


def data(rng: np.random.Generator, loss: str, outputs: int) -> tuple[Any, Any]:
    x = rng.normal(size=(11, SIZES[0]))
    if loss == "mse":
        return x, rng.normal(size=(11, outputs))
    if loss == "bce":
        return x, (rng.random((11, 1)) > 0.5).astype(float)
    return x, rng.integers(0, outputs, 11)


CASES = {
    # name: (layout, activation, loss)
    "flax_relu_ce": ("flax", "relu", "ce"),
    "flax_tanh_one_hot": ("flax", "tanh", "one_hot"),
    "list_leaky_mse": ("list", "leaky_relu", "mse"),
    "list_sigmoid_ce": ("list", "sigmoid", "ce"),
    "flax_linear_mse": ("flax", "linear", "mse"),
    "list_relu_bce": ("list", "relu", "bce"),
}
LOSSES = {"ce": cross_entropy, "one_hot": one_hot_cross_entropy, "mse": mse, "bce": bce}


def case(name: str, seed: int = 0) -> tuple[Callable[..., Any], Any, Any, Any]:
    layout, activation, loss = CASES[name]
    rng = np.random.default_rng(seed)
    sizes = (*SIZES[:-1], 1) if loss == "bce" else SIZES
    params = (flax_params if layout == "flax" else list_params)(rng, sizes)
    x, y = data(rng, loss, sizes[-1])
    logits = flax_logits if layout == "flax" else list_logits

    def f(params: Any, x: Any, y: Any) -> Any:
        return LOSSES[loss](logits(params, x, ACTIVATIONS[activation]), y)

    return f, params, x, y


def generic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send check_function down the compiled, batched JAX evaluator."""
    monkeypatch.setattr(check_module, "evaluator_for", Evaluator)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_reference_mlps_take_the_route_with_the_generic_routes_entries(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    f, params, x, y = case(name)
    fast = check_function(f, params, x, y, mode="full")
    assert any(NOTE in note for note in fast.notes), fast.notes
    generic(monkeypatch)
    slow = check_function(f, params, x, y, mode="full")
    assert not any(NOTE in note for note in slow.notes)
    assert fast.verdict == slow.verdict == "ok"
    assert [row.name for row in fast.parameters] == [row.name for row in slow.parameters]
    assert [row.verdict for row in fast.parameters] == [row.verdict for row in slow.parameters]
    pairs = list(zip(fast.entries, slow.entries, strict=True))
    assert all(a.name == b.name and a.analytic == b.analytic for a, b in pairs)
    numerical = np.array([[a.numerical, b.numerical] for a, b in pairs])
    np.testing.assert_allclose(numerical[:, 0], numerical[:, 1], rtol=1e-6, atol=1e-9)


def test_the_route_reports_the_functions_own_central_differences() -> None:
    f, params, x, y = case("flax_tanh_one_hot")
    report = check_function(f, params, x, y, mode="full")
    assert any(NOTE in note for note in report.notes)
    jitted = jax.jit(f)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    paths = {"params" + jax.tree_util.keystr(path): k for k, (path, _) in enumerate(leaves)}
    with jax.enable_x64(True):
        for entry in report.entries[::9]:
            arrays = [np.array(leaf, dtype=np.float64) for _, leaf in leaves]
            values = []
            for sign in (1.0, -1.0):
                moved = [a.copy() for a in arrays]
                moved[paths[entry.parameter]][entry.index] += sign * 1e-6
                tree = jax.tree_util.tree_unflatten(treedef, moved)
                values.append(float(jitted(tree, x, y)))
            assert entry.numerical == pytest.approx((values[0] - values[1]) / 2e-6, rel=1e-5)


def planted_dense(entry: tuple[int, int], factor: float) -> Any:
    """``a @ kernel + bias`` as a custom VJP whose kernel gradient is wrong at ``entry``."""

    @jax.custom_vjp
    def dense(kernel: Any, bias: Any, a: Any) -> Any:
        return a @ kernel + bias

    def backward(saved: Any, g: Any) -> Any:
        kernel, a = saved
        return (a.T @ g).at[entry].multiply(factor), g.sum(0), g @ kernel.T

    dense.defvjp(lambda kernel, bias, a: (a @ kernel + bias, (kernel, a)), backward)
    return dense


def test_a_wrong_custom_vjp_entry_is_pinned_through_the_route() -> None:
    _, params, x, y = case("flax_relu_ce")
    dense = planted_dense((3, 2), 1.5)

    def f(params: Any, x: Any, y: Any) -> Any:
        a = jax.nn.relu(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"])
        a = jax.nn.relu(dense(params["dense_1"]["kernel"], params["dense_1"]["bias"], a))
        return cross_entropy(a @ params["dense_2"]["kernel"] + params["dense_2"]["bias"], y)

    report = check_function(f, params, x, y, mode="full")
    assert any(NOTE in note for note in report.notes), report.notes
    assert report.verdict == "wrong"
    wrong = [entry.name for entry in report.entries if entry.verdict == "wrong"]
    assert wrong == ["params['dense_1']['kernel'][3, 2]"]
    rows = {row.name: row.verdict for row in report.parameters}
    assert rows["params['dense_1']['kernel']"] == "wrong"
    assert rows["params['dense_0']['kernel']"] == "ok"


def test_a_wrongly_scaled_bias_gradient_is_caught_on_that_bias_alone() -> None:
    f0, params, x, y = case("list_leaky_mse")

    @jax.custom_vjp
    def scaled(b: Any) -> Any:
        return b

    scaled.defvjp(lambda b: (b, None), lambda _, g: (0.5 * g,))

    def f(params: Any, x: Any, y: Any) -> Any:
        (w0, b0), rest = params[0], params[1:]
        return f0([(w0, scaled(b0)), *rest], x, y)

    report = check_function(f, params, x, y, mode="full")
    assert any(NOTE in note for note in report.notes), report.notes
    rows = {row.name: row.verdict for row in report.parameters}
    assert rows == {
        "params[0][0]": "ok",
        "params[0][1]": "wrong",
        "params[1][0]": "ok",
        "params[1][1]": "ok",
        "params[2][0]": "ok",
        "params[2][1]": "ok",
    }


def _layer_norm(z: Any) -> Any:
    return (z - z.mean(1, keepdims=True)) / jnp.sqrt(z.var(1, keepdims=True) + 1e-5)


VARIANTS: dict[str, Callable[[Any, Any], Any]] = {
    "extra_nonlinearity": lambda z, a: jnp.tanh(jax.nn.relu(z)),
    "layer_norm": lambda z, a: jax.nn.relu(_layer_norm(z)),
    "residual": lambda z, a: jax.nn.relu(z) + a if z.shape == a.shape else jax.nn.relu(z),
    "softplus": lambda z, a: jax.nn.softplus(z),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("planted", [False, True])
def test_other_functions_take_the_generic_route_with_the_right_verdict(
    variant: str, planted: bool
) -> None:
    _, _, x, y = case("flax_relu_ce")
    params = flax_params(np.random.default_rng(1), (5, 7, 7, 3))
    layer = VARIANTS[variant]

    def network(dense: Callable[..., Any]) -> Callable[..., Any]:
        def f(params: Any, x: Any, y: Any) -> Any:
            a = jax.nn.relu(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"])
            a = layer(dense(params["dense_1"]["kernel"], params["dense_1"]["bias"], a), a)
            return cross_entropy(a @ params["dense_2"]["kernel"] + params["dense_2"]["bias"], y)

        return f

    f = network(lambda k, b, a: a @ k + b)
    with jax.enable_x64(True):
        slopes = np.abs(np.asarray(jax.grad(f)(params, x, y)["dense_1"]["kernel"]))
    entry = tuple(int(i) for i in np.unravel_index(np.argmax(slopes), slopes.shape))
    if planted:
        f = network(planted_dense(entry, 3.0))
    report = check_function(f, params, x, y, mode="full")
    assert not any(NOTE in note for note in report.notes)
    assert report.verdict == ("wrong" if planted else "ok")
    if planted:
        assert report.worst(1)[0].name == f"params['dense_1']['kernel'][{entry[0]}, {entry[1]}]"


def test_an_l2_term_or_a_summed_loss_is_not_taken_for_the_mlp() -> None:
    f, params, x, y = case("flax_relu_ce")

    def penalized(params: Any, x: Any, y: Any) -> Any:
        return f(params, x, y) + 1e-2 * jnp.sum(params["dense_0"]["kernel"] ** 2)

    def summed(params: Any, x: Any, y: Any) -> Any:
        return f(params, x, y) * len(y)

    for g in (penalized, summed):
        report = check_function(g, params, x, y, mode="full")
        assert not any(NOTE in note for note in report.notes)
        assert report.verdict == "ok"


def test_a_copy_that_disagrees_with_the_function_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = mlp_module.build_mlp

    def off_by_a_little(activation: str, output: str, layers: Any) -> Any:
        net = real(activation, output, layers)
        net.params["W1"][0, 0] += 1e-6
        return net

    monkeypatch.setattr(mlp_module, "build_mlp", off_by_a_little)
    f, params, x, y = case("flax_relu_ce")
    report = check_function(f, params, x, y, mode="full")
    assert not any(NOTE in note for note in report.notes)
    assert any("no copy of it as gradprobe's MLP agreed with f" in note for note in report.notes)
    assert report.verdict == "ok"


def test_localize_through_the_route_finds_the_planted_entry() -> None:
    _, params, x, y = case("flax_relu_ce")
    dense = planted_dense((4, 1), 2.0)

    def f(params: Any, x: Any, y: Any) -> Any:
        a = jax.nn.relu(dense(params["dense_0"]["kernel"], params["dense_0"]["bias"], x))
        a = jax.nn.relu(a @ params["dense_1"]["kernel"] + params["dense_1"]["bias"])
        return cross_entropy(a @ params["dense_2"]["kernel"] + params["dense_2"]["bias"], y)

    report = check_function(f, params, x, y, mode="localize")
    assert any(NOTE in note for note in report.notes)
    assert report.verdict == "wrong"
    assert report.worst(1)[0].name == "params['dense_0']['kernel'][4, 1]"


def test_a_copy_mapped_wrongly_agrees_at_theta_and_is_refused_at_the_perturbed_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = mlp_module._positions
    monkeypatch.setattr(mlp_module, "_positions", lambda *args: real(*args)[::-1])
    f, params, x, y = case("list_sigmoid_ce")
    report = check_function(f, params, x, y, mode="full")
    assert not any(NOTE in note for note in report.notes)
    assert any("no copy of it as gradprobe's MLP agreed with f" in note for note in report.notes)
    assert report.verdict == "ok"


def test_check_grads_takes_the_mlp_route_in_both_modes(rng: np.random.Generator) -> None:
    params, x = flax_params(rng), rng.normal(size=(12, SIZES[0]))
    y = rng.integers(0, SIZES[-1], 12)
    calls: list[tuple[int, int]] = []
    reports = check_grads(
        lambda p: cross_entropy(flax_logits(p, x, jax.nn.relu), y),
        (params,),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert [r.verdict for r in reports] == ["ok", "ok"]
    assert all(any(NOTE in note for note in r.notes) for r in reports)
    assert calls and calls[-1][0] == calls[-1][1]


def test_forward_mode_without_a_reverse_rule_falls_back_to_the_generic_route(
    rng: np.random.Generator,
) -> None:
    @jax.custom_jvp
    def relu(z: Any) -> Any:
        return jnp.maximum(z, 0.0)

    @relu.defjvp
    def rule(primals: Any, tangents: Any) -> Any:
        (z,), (dz,) = primals, tangents
        # Right in value, but not linear in dz as written: jax.vjp cannot transpose it.
        return relu(z), jnp.where(z > 0, dz, 0.0) + 0.0 * dz**2

    params, x = flax_params(rng), rng.normal(size=(12, SIZES[0]))
    y = rng.integers(0, SIZES[-1], 12)
    (report,) = check_grads(
        lambda p: cross_entropy(flax_logits(p, x, relu), y), (params,), modes=("fwd",)
    )
    assert report.verdict == "ok"
    assert any("could not be computed with jax.vjp" in note for note in report.notes)
    assert not any(NOTE in note for note in report.notes)
