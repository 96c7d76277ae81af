"""Benchmark: gradprobe.jax on the reference MLP in JAX, against a per-coordinate loop.

Run:  python benchmarks/bench_jax.py          (a few minutes on 2 cores)

The reference network of bench_gradcheck.py (MLP [64, 128, 128, 10], ReLU, 256
examples, softmax cross-entropy, 26,122 parameters) written in JAX with Flax-style
parameters ``{"dense_0": {"kernel", "bias"}, ...}``, float64. Rows, all measured in
this run:

(j1) the per-coordinate Python loop a JAX user writes: the same jitted loss called
     twice per coordinate with that coordinate moved by ±h; timed on every k-th
     coordinate and extrapolated;
(j2) ``gradprobe.jax.check_function(mode="full")``: all 52,244 perturbed losses. The
     function is read from its jaxpr as a plain dense stack under cross-entropy, so
     they come from gradprobe's structure-aware MLP evaluator (one cached forward
     pass, rank-1 updates) once its copy's losses agreed with the function's; the
     analytic side is ``jax.vjp``. Timed twice: the first check of the process (it
     traces f, compiles the VJP, runs everything), and the median of 5 more checks
     of the same function at new weights (each leaf moved by 1%), each from scratch
     (f traced again, its arrays read afresh) but with the compiled program shared
     (``gradprobe.jax._compiled``), as a user who checks at initialization and again
     after training gets it;
     (the generic route, compiled once per leaf and batched with ``jax.vmap``, ran
     at 0.9x (j1): see RESULTS.md, issue 14);
(j3) ``mode="localize"`` with one wrong entry planted in a ``jax.custom_vjp`` layer;
(j4) ``jax.test_util.check_grads`` (one random direction) on the correct network, at
     its default step and at gradprobe's;
(j5) a small function (631 values, tanh layer and a sine term) on the generic route:
     its first check, and later ones that reuse the compiled programs.

It also prints the FLOP bound: a full check that runs every perturbed forward pass
does 2N passes of the network, so it cannot beat the loop by more than the loop's
per-call overhead allows (the generic route); the XLA matmul rate measured here
gives the floor. Only an evaluator that skips work (j2) can.
"""

from __future__ import annotations

import os

# One thread for NumPy's BLAS and for XLA, as the house runs benchmarks (torch too runs on
# one thread): on this shared 2-core machine two BLAS threads made (j2) 1.7x slower, and
# the loop (j1) is no slower on one XLA thread. Set before NumPy and JAX are imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import time  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from bench_gradcheck import machine, problem  # noqa: E402
from jax.test_util import check_grads as jax_check_grads  # noqa: E402

from gradprobe.jax import check_function  # noqa: E402

SUBSET = 1537  # coordinates timed for the extrapolated loop (every 17th)
SIZES = [64, 128, 128, 10]
M = 256


def reference() -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The NumPy reference network's weights as a JAX pytree (kernel = W.T)."""
    net, X, y = problem(SIZES, M)
    params = {
        f"dense_{layer - 1}": {
            "kernel": np.ascontiguousarray(net.params[f"W{layer}"].T),
            "bias": net.params[f"b{layer}"].copy(),
        }
        for layer in range(1, len(SIZES))
    }
    return params, X, y


def _dense(kernel: Any, bias: Any, a: Any) -> Any:
    return a @ kernel + bias


def forward(params: Any, X: Any, first: Any = _dense) -> Any:
    """Logits of shape (m, 10); ``first`` computes the first layer's pre-activations."""
    a = X
    for layer in range(len(SIZES) - 1):
        p = params[f"dense_{layer}"]
        z = (first if layer == 0 else _dense)(p["kernel"], p["bias"], a)
        a = jax.nn.relu(z) if layer < len(SIZES) - 2 else z
    return a


def loss(params: Any, X: Any, y: Any, first: Any = _dense) -> Any:
    logits = forward(params, X, first)
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[jnp.arange(len(y)), y])


def planted_dense(entry: tuple[int, int]) -> Any:
    """The first layer as a custom VJP whose kernel gradient is doubled at ``entry``."""

    @jax.custom_vjp
    def dense(kernel: Any, bias: Any, a: Any) -> Any:
        return a @ kernel + bias

    def backward(saved: Any, g: Any) -> Any:
        kernel, a = saved
        return (a.T @ g).at[entry].multiply(2.0), g.sum(0), g @ kernel.T

    dense.defvjp(lambda kernel, bias, a: (a @ kernel + bias, (kernel, a)), backward)
    return dense


def loop(params: Any, X: Any, y: Any) -> tuple[float, int, float]:
    """(j1): the same jitted loss, two calls per coordinate, on every 17th coordinate."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    shapes = [leaf.shape for leaf in leaves]
    offsets = np.cumsum([0] + [leaf.size for leaf in leaves])
    theta = np.concatenate([leaf.ravel() for leaf in leaves])
    jitted = jax.jit(loss)

    def at(vector: np.ndarray) -> float:
        arrays = [vector[offsets[k] : offsets[k + 1]].reshape(s) for k, s in enumerate(shapes)]
        return float(jitted(jax.tree_util.tree_unflatten(treedef, arrays), X, y))

    at(theta)
    indices = np.arange(0, theta.size, max(1, theta.size // SUBSET))
    start = time.perf_counter()
    for index in indices:
        h = np.cbrt(np.finfo(float).eps) * max(1.0, abs(theta[index]))
        original = theta[index]
        theta[index] = original + h
        above = at(theta)
        theta[index] = original - h
        below = at(theta)
        theta[index] = original
        _ = (above - below) / (2 * h)
    seconds = (time.perf_counter() - start) * theta.size / len(indices)
    return seconds, 2 * theta.size, (time.perf_counter() - start) / (2 * len(indices))


def xla_matmul_rate() -> float:
    """Best of five 1500x1500 float64 products under jax.jit, in GFLOP/s."""
    a = jnp.asarray(np.random.default_rng(0).normal(size=(1500, 1500)))
    product = jax.jit(lambda a: a @ a)
    product(a).block_until_ready()
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        product(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * 1500**3 / best / 1e9


def small_route() -> None:
    """(j5): a small function on the generic route, its first check and later ones."""
    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(size=(20, 30)), "b1": np.zeros(30), "w2": rng.normal(size=(30, 1))}
    x = rng.normal(size=(50, 20))

    def small(p: Any, x: Any) -> Any:
        hidden = jnp.tanh(x @ p["w1"] + p["b1"])
        return jnp.mean((hidden @ p["w2"]) ** 2) + jnp.sum(jnp.sin(p["w1"]))

    times = []
    for _ in range(4):
        start = time.perf_counter()
        report = check_function(small, params, x)
        times.append(time.perf_counter() - start)
    print(
        f"(j5) generic route, {report.evaluations:,} evaluations of a 631-value function: "
        f"first check {times[0]:.2f} s, later checks {float(np.median(times[1:])):.2f} s "
        f"(compiled programs shared), {report.verdict}"
    )


def main() -> None:
    for line in machine():
        print(line)
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    with jax.enable_x64(True):
        rate = xla_matmul_rate()
        params, X, y = reference()
        j1, j1_evaluations, per_call = loop(params, X, y)
    size = sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params))
    flops = 2 * M * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:], strict=True))
    floor = 2 * size * flops / (rate * 1e9)
    print(f"XLA float64 matmul rate {rate:.1f} GFLOP/s; one forward pass {flops / 1e6:.1f} MFLOP")
    print(
        f"(j1) loop, extrapolated: {j1:.1f} s for {j1_evaluations:,} evaluations "
        f"({per_call * 1e3:.2f} ms per call)"
    )
    print(f"     the 2N forward passes alone need >= {floor:.1f} s at that rate")

    times = []
    moved = np.random.default_rng(7)
    for k in range(6):
        # Checks after the first are at new weights (each leaf moved by a seeded 1%), as
        # after some training: the same computation, so the compiled program is shared.
        at = jax.tree_util.tree_map(
            lambda a, k=k: a * (1 + 0.01 * moved.standard_normal(a.shape)) if k else a, params
        )
        start = time.perf_counter()
        full = check_function(loss, at, X, y, mode="full")
        times.append(time.perf_counter() - start)
    first, j2 = times[0], float(np.median(times[1:]))
    routed = any("structure-aware MLP evaluator" in note for note in full.notes)
    print(
        f"(j2) gradprobe.jax full: {full.evaluations:,} evaluations, {full.verdict}, "
        f"route: {'MLP evaluator' if routed else 'generic'}"
    )
    print(f"     first check of the process (VJP compiled): {first:.2f} s, {j1 / first:.1f}x (j1)")
    print(
        f"     later checks, new weights (compiled VJP shared): {j2:.2f} s (median of "
        f"{', '.join(f'{t:.2f}' for t in times[1:])}), {j1 / j2:.1f}x (j1)   (target >= 100x)"
    )

    start = time.perf_counter()
    bugged = check_function(
        lambda params, X, y: loss(params, X, y, planted_dense((37, 91))),
        params,
        X,
        y,
        mode="localize",
    )
    j3 = time.perf_counter() - start
    found = [entry.name for entry in bugged.worst(1)]
    print(
        f"(j3) gradprobe.jax localize, 1 planted entry: {j3:.1f} s, {bugged.evaluations} "
        f"evaluations (target <= 200), {bugged.verdict}, found {found}"
    )

    small_route()

    for label, eps in (("default step 1e-4", None), ("gradprobe's step 6e-6", 6e-6)):
        with jax.enable_x64(True):
            start = time.perf_counter()
            try:
                jax_check_grads(lambda p: loss(p, X, y), (params,), 1, modes=["rev"], eps=eps)
                verdict = "pass"
            except AssertionError as error:
                verdict = "FAIL: " + " ".join(str(error).split())[:160]
        print(f"(j4) jax check_grads, {label}: {time.perf_counter() - start:.1f} s, {verdict}")


if __name__ == "__main__":
    main()
