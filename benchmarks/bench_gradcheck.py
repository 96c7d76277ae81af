"""Benchmark: full and localizing gradient checks against the plain loop and torch.gradcheck.

Run:  python benchmarks/bench_gradcheck.py            (about 2-4 minutes on 2 cores)

Every number in the printed table is measured in this run, on this machine; the
ratios compare rows of the same run. Rows marked "extrapolated" were timed on a
deterministic subset of coordinates (every k-th one) and scaled to all of them.
The baselines run many small products, which a 2-thread BLAS (or torch) on a busy
2-core machine can slow several-fold: each is timed with 1 thread and with all
cores, and the faster setting is the one compared. (d) is the median of REPEATS runs.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from typing import Any

import numpy as np

from gradprobe import check_gradients
from gradprobe._params import ParameterLayout
from gradprobe.nn.check import check_model
from gradprobe.nn.fastcheck import MLPEvaluator, MLPLoss
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.perturbation import coordinate_steps, evaluate_differences

SUBSET = 1500  # coordinates timed for the extrapolated rows
REPEATS = 5  # runs of (d), reported as the median


def machine() -> list[str]:
    lines = []
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line
        )
    except (OSError, StopIteration, subprocess.CalledProcessError):
        model = platform.processor()
    lines.append(f"CPU: {model}, {os.cpu_count()} cores visible")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            lines.append(
                f"BLAS: {pool.get('internal_api')} {pool.get('version')} "
                f"({pool.get('architecture')}, {pool.get('num_threads')} threads)"
            )
    except ImportError:
        lines.append("BLAS: threadpoolctl not installed")
    lines.append(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    lines.append(f"numpy {np.__version__}, python {platform.python_version()}")
    return lines


def matmul_peak() -> float:
    """Best of five 1500x1500 float64 products, in GFLOP/s."""
    a = np.random.default_rng(0).normal(size=(1500, 1500))
    best = np.inf
    a @ a
    for _ in range(5):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * 1500**3 / best / 1e9


def problem(sizes: list[int], m: int, seed: int = 0) -> tuple[MLP, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    net = MLP(sizes, seed=seed).eval()
    X = rng.normal(size=(m, sizes[0]))
    y = rng.integers(0, sizes[-1], m)
    return net, X, y


def plain_loop(net: MLP, X: np.ndarray, y: np.ndarray) -> tuple[float, int, str, str]:
    """(a): the course's loop, one net.loss call per ±ε, on every k-th coordinate.

    Timed with a 1-thread BLAS and with the default threads; the faster is returned
    with the setting's name.
    """
    from threadpoolctl import threadpool_limits

    layout = ParameterLayout.from_params(net.params)
    theta = layout.flatten(net.params)
    stride = max(1, layout.size // SUBSET)
    indices = np.arange(0, layout.size, stride)
    steps = coordinate_steps("central", theta, indices, None)
    analytic = layout.align(net.loss_and_grads(X, y)[1])[indices]
    timings = {}
    for threads in (1, None):
        with threadpool_limits(threads):
            start = time.perf_counter()
            result = evaluate_differences(
                MLPLoss(net, X, y), layout, theta, indices, None, "central", steps
            )
            seconds = (time.perf_counter() - start) * layout.size / len(indices)
        timings[f"BLAS {threads or 'default'} thr"] = seconds
    setting = min(timings, key=lambda name: timings[name])
    difference = np.linalg.norm(result.gradient - analytic) / (
        np.linalg.norm(result.gradient) + np.linalg.norm(analytic)
    )
    note = ", ".join(f"{name}: {value:.1f} s" for name, value in timings.items())
    verdict = "ok" if difference < 1e-6 else "wrong"
    return timings[setting], 2 * layout.size + 1, verdict, note


def torch_model(net: MLP, X: np.ndarray, y: np.ndarray) -> tuple[Any, list[Any]]:
    import torch

    data = torch.tensor(X)
    labels = torch.tensor(y)
    tensors = [torch.tensor(v, requires_grad=True) for v in net.params.values()]
    count = net.n_layers

    def loss(*params: Any) -> Any:
        a = data
        for layer in range(count):
            z = a @ params[2 * layer].T + params[2 * layer + 1]
            a = torch.relu(z) if layer < count - 1 else z
        return torch.nn.functional.cross_entropy(a, labels)

    return loss, tensors


def torch_gradcheck(
    net: MLP, X: np.ndarray, y: np.ndarray, fast: bool
) -> tuple[float, int, str, str]:
    """(b)/(c): torch.autograd.gradcheck with the parameters (float64) as inputs.

    The slow mode is timed with only the last weight as input (the same forward pass
    per coordinate) and extrapolated to all parameters, with 1 torch thread and with
    all cores; the faster is returned.
    """
    import torch

    loss, tensors = torch_model(net, X, y)
    size = sum(t.numel() for t in tensors)
    if fast:
        start = time.perf_counter()
        ok = torch.autograd.gradcheck(loss, tuple(tensors), fast_mode=True, raise_exception=False)
        return time.perf_counter() - start, 0, "ok" if ok else "wrong", ""
    subset = len(tensors) - 2  # the last weight
    fixed = [t.detach() for t in tensors]

    def partial_loss(weight: Any) -> Any:
        params = list(fixed)
        params[subset] = weight
        return loss(*params)

    timings, cores = {}, os.cpu_count() or 1
    for threads in (1, cores):
        torch.set_num_threads(threads)
        start = time.perf_counter()
        ok = torch.autograd.gradcheck(
            partial_loss, (tensors[subset],), fast_mode=False, raise_exception=False
        )
        timings[f"torch {threads} thr"] = (
            (time.perf_counter() - start) * size / tensors[subset].numel()
        )
    torch.set_num_threads(cores)
    setting = min(timings, key=lambda name: timings[name])
    note = ", ".join(f"{name}: {value:.1f} s" for name, value in timings.items())
    return timings[setting], 2 * size, "ok" if ok else "wrong", note


def routes(net: MLP, X: np.ndarray, y: np.ndarray) -> str:
    """How (d)'s evaluator served each (perturbation, example) pair, in percent."""
    layout = ParameterLayout.from_params(net.params)
    theta = layout.flatten(net.params)
    indices = np.arange(layout.size)
    steps = coordinate_steps("central", theta, indices, None)
    evaluate = MLPEvaluator(net, X, y, theta)
    both = np.concatenate([indices, indices])
    evaluate.coordinates(theta, both, np.concatenate([theta + steps, theta - steps]))
    total = sum(evaluate.paths.values())
    return ", ".join(f"{name} {100 * n / total:.1f}%" for name, n in evaluate.paths.items())


def planted(net: MLP, X: np.ndarray, y: np.ndarray, names: list[str], seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    _, grads = net.loss_and_grads(X, y)
    wrong = {k: v.copy() for k, v in grads.items()}
    expected = set()
    for name in names:
        magnitude = np.abs(grads[name]).ravel()
        flat = int(rng.choice(np.flatnonzero(magnitude >= np.median(magnitude))))
        wrong[name].reshape(-1)[flat] *= 2.0
        index = np.unravel_index(flat, grads[name].shape)
        expected.add(f"{name}[{', '.join(str(int(i)) for i in index)}]")
    start = time.perf_counter()
    params = {k: v.copy() for k, v in net.params.items()}
    report = check_gradients(MLPLoss(net, X, y), params, wrong, mode="localize")
    seconds = time.perf_counter() - start
    found = {e.name for e in report.entries if e.relative_error > report.thresholds[1]}
    return seconds, report.evaluations, report.verdict, found == expected, found, expected


def main() -> None:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    print("\n".join(machine()))
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    peak = matmul_peak()
    print(f"measured float64 matmul peak: {peak:.1f} GFLOP/s")
    sizes, m = [64, 128, 128, 10], 256
    net, X, y = problem(sizes, m)
    size = sum(v.size for v in net.params.values())
    print(f"\nreference network {sizes}, {m} examples, float64, softmax: {size:,} parameters")
    rows: list[tuple[str, float, int, str, str]] = []
    a = plain_loop(net, X, y)
    rows.append(("(a) plain NumPy loop [extrapolated]", a[0], a[1], a[2], a[3]))
    b = torch_gradcheck(net, X, y, fast=False)
    rows.append(("(b) torch gradcheck slow [extrapolated]", b[0], b[1], b[2], b[3]))
    c = torch_gradcheck(net, X, y, fast=True)
    rows.append(("(c) torch gradcheck fast_mode", c[0], c[1], c[2], "one random direction"))
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        d = check_model(net, X, y, mode="full")
        times.append(time.perf_counter() - start)
    d_seconds = float(np.median(times))
    spread = f"median of {REPEATS}: {min(times):.2f}-{max(times):.2f} s"
    rows.append(("(d) gradprobe full", d_seconds, d.evaluations, d.verdict, spread))
    start = time.perf_counter()
    e = check_model(net, X, y, mode="localize")
    rows.append(
        ("(e) gradprobe localize", time.perf_counter() - start, e.evaluations, e.verdict, "")
    )
    print(f"\n{'check':<42} {'seconds':>9} {'evaluations':>12}  {'verdict':<8} note")
    for name, seconds, evaluations, verdict, note in rows:
        print(f"{name:<42} {seconds:>9.2f} {evaluations:>12,}  {verdict:<8} {note}")
    print(f"\n(d) vs (a): {a[0] / d_seconds:.1f}x faster   (target >= 20x)")
    print(f"(d) vs (b): {b[0] / d_seconds:.1f}x faster   (target >= 100x)")
    print(f"(d) routes of the (perturbation, example) pairs: {routes(net, X, y)}")
    # (d) avoids the forward passes a plain check runs, so its own arithmetic is not the
    # measure: rate it by the work it replaces, two full forward passes per parameter.
    forward = 2 * m * sum(n_in * n_out for n_in, n_out in zip(sizes, sizes[1:], strict=False))
    replaced = 2 * size * forward / 1e9
    print(
        f"(d) FLOP rate: the {replaced:.0f} GFLOP of forward passes a plain full check runs, "
        f"done in {d_seconds:.2f} s = {replaced / d_seconds:,.0f} GFLOP/s effective, "
        f"{replaced / d_seconds / peak:.0f}x the measured matmul peak of {peak:.1f} GFLOP/s"
    )
    from bench_torch import print_rows, torch_module_rows  # PyTorch modules: gradprobe.torch

    print_rows(torch_module_rows(net, X, y))

    big_sizes, big_m = [784, 1024, 256, 10], 64
    big, bX, by = problem(big_sizes, big_m, seed=1)
    big_size = sum(v.size for v in big.params.values())
    print(f"\nlarge network {big_sizes}, {big_m} examples: {big_size:,} parameters")
    print(f"{'check':<42} {'seconds':>9} {'evaluations':>12}  {'verdict':<8} found exactly")
    one = planted(big, bX, by, ["W1"], seed=2)
    label = "gradprobe localize, 1 planted entry"
    print(f"{label:<42} {one[0]:>9.2f} {one[1]:>12,}  {one[2]:<8} {one[3]}")
    five = planted(big, bX, by, ["W1", "b1", "W2", "b2", "W3"], seed=3)
    label = "gradprobe localize, 5 planted entries"
    print(f"{label:<42} {five[0]:>9.2f} {five[1]:>12,}  {five[2]:<8} {five[3]}")
    bc = torch_gradcheck(big, bX, by, fast=True)
    print(f"{'(c) torch gradcheck fast_mode (correct)':<42} {bc[0]:>9.2f} {'':>12}  {bc[2]:<8} n/a")
    print(
        f"\ntargets: 1 entry <= 200 evaluations and < 5 s: {one[1] <= 200 and one[0] < 5}; "
        f"5 entries <= 1000 evaluations: {five[1] <= 1000}"
    )


if __name__ == "__main__":
    main()
