"""Benchmark: ``gradprobe.torch.check_module`` full against ``torch.autograd.gradcheck`` slow mode.

Run:  python benchmarks/bench_torch.py [--full] [--dask] [--repeats N]

Three modules, float64, CPU, one torch thread for both checkers, side by side in one run:

* the reference MLP [64, 128, 128, 10] of bench_gradcheck.py (256 examples, cross-entropy);
* a small CNN: two 3×3 convolutions (3→8, 8→16), BatchNorm in eval, ReLU, a Linear head
  (32 images of 3×8×8, cross-entropy);
* a transformer block: ``nn.MultiheadAttention`` (embed 32, 4 heads), LayerNorm, an MLP
  32→128→32 with GELU, LayerNorm (8 sequences of 16 tokens, mean squared error).

``torch.autograd.gradcheck`` slow mode gets every parameter as a float64 input requiring
grad. By default it is timed tensor by tensor on every STRIDE-th value, the rest held
as leaves that require grad too (each evaluation then builds the same autograd graph
as the full run) and scaled to all values; its verdict is the one on those values.
``--full`` runs it on every parameter instead (minutes). gradprobe's ``check_module``
runs in full, every value, the median of ``--repeats`` runs. The MLP is also timed
through the general cut-graph route (the structure-aware MLP evaluator switched off),
for comparison. ``--dask`` adds the distribution measurement of
:mod:`gradprobe.numdiff.parallel` on a local 2-worker Dask cluster.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from bench_gradcheck import machine, problem
from torch import nn
from torch.func import functional_call

import gradprobe.torch.check as torch_check
from gradprobe.nn.mlp import MLP
from gradprobe.torch import check_module

STRIDE = 17  # gradcheck is timed on every STRIDE-th coordinate of θ and scaled
Row = tuple[str, float, int, str, str]


def torch_module(net: MLP, device: str) -> nn.Module:
    """The NumPy MLP as Linear/ReLU layers (W of shape (n_l, n_{l-1}) is Linear's layout)."""
    layers: list[nn.Module] = []
    for layer in range(1, net.n_layers + 1):
        W, b = net.params[f"W{layer}"], net.params[f"b{layer}"]
        linear = nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(W))
            linear.bias.copy_(torch.tensor(b))
        layers += [linear, nn.ReLU()] if layer < net.n_layers else [linear]
    return nn.Sequential(*layers).to(device)


class Block(nn.Module):
    """A transformer block: attention, residual, LayerNorm, MLP, residual, LayerNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.norm1 = nn.LayerNorm(32)
        self.mlp = nn.Sequential(nn.Linear(32, 128), nn.GELU(), nn.Linear(128, 32))
        self.norm2 = nn.LayerNorm(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attn(x, x, x, need_weights=False)
        x = self.norm1(x + attended)
        return self.norm2(x + self.mlp(x))


def models(device: str) -> dict[str, tuple[nn.Module, torch.Tensor, Any, torch.Tensor]]:
    """name -> (module in eval mode, inputs, loss, targets), float64 on ``device``."""
    net, X, y = problem([64, 128, 128, 10], 256)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 10),
    ).double()
    with torch.no_grad():
        cnn[3].running_mean.normal_(0, 0.1, generator=generator)
        cnn[3].running_var.uniform_(0.5, 2.0, generator=generator)
    block = Block().double()
    cross_entropy = nn.functional.cross_entropy
    built = {
        "MLP [64, 128, 128, 10]": (
            torch_module(net, "cpu"),
            torch.tensor(X),
            cross_entropy,
            torch.tensor(y),
        ),
        "CNN 2 conv + BN + head": (
            cnn,
            torch.randn(32, 3, 8, 8, dtype=torch.float64, generator=generator),
            cross_entropy,
            torch.randint(0, 10, (32,), generator=generator),
        ),
        "transformer block": (
            block,
            torch.randn(8, 16, 32, dtype=torch.float64, generator=generator),
            nn.functional.mse_loss,
            torch.randn(8, 16, 32, dtype=torch.float64, generator=generator),
        ),
    }
    return {
        name: (module.eval().to(device), x.to(device), loss, t.to(device))
        for name, (module, x, loss, t) in built.items()
    }


def gradcheck_slow(
    module: nn.Module, x: torch.Tensor, loss: Any, y: torch.Tensor, full: bool
) -> tuple[float, int, str, str]:
    """torch.autograd.gradcheck(fast_mode=False) with the parameters as float64 inputs."""
    names = [name for name, _ in module.named_parameters()]
    leaves = [p.detach().clone().requires_grad_(True) for p in module.parameters()]
    buffers = dict(module.named_buffers())
    size = sum(p.numel() for p in leaves)
    if full:

        def every(*tensors: torch.Tensor) -> torch.Tensor:
            state = {**buffers, **dict(zip(names, tensors, strict=True))}
            return loss(functional_call(module, state, (x,)), y)

        start = time.perf_counter()
        ok = torch.autograd.gradcheck(every, tuple(leaves), raise_exception=False)
        return time.perf_counter() - start, 2 * size, "ok" if ok else "wrong", "every parameter"
    seconds, verdicts = 0.0, []
    for k, leaf in enumerate(leaves):
        # Every STRIDE-th value of this tensor is the input; the rest of the tensor and every
        # other tensor are leaves that require grad, so each evaluation builds the same
        # autograd graph as the full run (plus one index_put into this tensor).
        chosen = torch.arange(k % STRIDE, leaf.numel(), STRIDE, device=x.device)
        if not len(chosen):
            chosen = torch.arange(min(1, leaf.numel()), device=x.device)

        def strided(subset: torch.Tensor, k: int = k, chosen: torch.Tensor = chosen) -> Any:
            moved = leaves[k].reshape(-1).index_put((chosen,), subset).reshape(leaves[k].shape)
            tensors = [moved if i == k else other for i, other in enumerate(leaves)]
            state = {**buffers, **dict(zip(names, tensors, strict=True))}
            return loss(functional_call(module, state, (x,)), y)

        subset = leaf.detach().reshape(-1)[chosen].clone().requires_grad_(True)
        start = time.perf_counter()
        verdicts.append(torch.autograd.gradcheck(strided, (subset,), raise_exception=False))
        seconds += (time.perf_counter() - start) * leaf.numel() / len(chosen)
    verdict = "ok" if all(verdicts) else "wrong"
    return seconds, 2 * size, verdict, f"[extrapolated from 1/{STRIDE}]"


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def module_rows(device: str, full: bool, repeats: int) -> list[Row]:
    rows: list[Row] = []
    for name, (module, x, loss, y) in models(device).items():
        slow = gradcheck_slow(module, x, loss, y, full)
        seconds, report = timed(partial(check_module, module, x, loss, y, mode="full"), repeats)
        ratio = f"{slow[0] / seconds:.1f}x; same verdict: {report.verdict == slow[2]}"
        rows.append((f"{name}: torch gradcheck slow, {device} {slow[3]}", *slow[:3], ""))
        rows.append(
            (f"{name}: gradprobe check_module full, {device}", seconds, report.evaluations,
             report.verdict, ratio)
        )  # fmt: skip
        if name.startswith("MLP"):
            original = torch_check.replica_for
            torch_check.replica_for = lambda *args: None  # type: ignore[assignment]
            try:
                general, other = timed(partial(check_module, module, x, loss, y, mode="full"), 1)
            finally:
                torch_check.replica_for = original
            rows.append(
                (f"{name}: check_module full, cut graph only, {device}", general,
                 other.evaluations, other.verdict, f"{slow[0] / general:.1f}x")
            )  # fmt: skip
        local, located = timed(partial(check_module, module, x, loss, y, mode="localize"), 1)
        rows.append(
            (f"{name}: gradprobe check_module localize, {device}", local, located.evaluations,
             located.verdict, f"{slow[0] / local:.0f}x")
        )  # fmt: skip
    return rows


def torch_module_rows(net: MLP, X: np.ndarray, y: np.ndarray, device: str = "cpu") -> list[Row]:
    """Rows for the table of bench_gradcheck.py: the reference MLP only, measured on ``device``."""
    module = torch_module(net, device)
    data, labels = torch.tensor(X, device=device), torch.tensor(y, device=device)
    loss = nn.functional.cross_entropy
    slow = gradcheck_slow(module, data, loss, labels, full=False)
    seconds, report = timed(partial(check_module, module, data, loss, labels, mode="full"), 1)
    local, located = timed(partial(check_module, module, data, loss, labels, mode="localize"), 1)
    return [
        (f"(t1) torch gradcheck slow, {device} {slow[3]}", *slow[:3], ""),
        (f"(t2) gradprobe.torch check_module full, {device}", seconds, report.evaluations,
         report.verdict, f"{slow[0] / seconds:.1f}x faster than (t1)"),
        (f"(t3) gradprobe.torch check_module localize, {device}", local, located.evaluations,
         located.verdict, f"{slow[0] / local:.0f}x faster than (t1)"),
    ]  # fmt: skip


def print_rows(rows: list[Row]) -> None:
    print(f"\n{'check':<72} {'seconds':>9} {'evaluations':>12}  {'verdict':<8} note")
    for name, seconds, evaluations, verdict, note in rows:
        print(f"{name:<72} {seconds:>9.2f} {evaluations:>12,}  {verdict:<8} {note}")


def _work(params: dict[str, np.ndarray], data: np.ndarray, repeat: int) -> float:
    """A NumPy loss of about a millisecond: a tanh layer applied ``repeat`` times."""
    hidden = data
    for _ in range(repeat):
        hidden = np.tanh(hidden @ params["W"].T + params["b"])
    return float(np.sum(hidden**2))


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def dask_rows() -> list[str]:
    """check_gradients serially and on a local 2-worker Dask cluster; overhead per task.

    One BLAS thread everywhere (main process and workers), so that the workers' speed-up
    is not eaten by oversubscribed threads. The overhead per task is the empty loss's
    parallel time over its task count.
    """
    import distributed
    from threadpoolctl import threadpool_limits

    from gradprobe import check_gradients
    from gradprobe.numdiff.parallel import executor_capacity, task_count

    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(64, 64)) / 8, "b": np.zeros(64)}
    data = rng.normal(size=(128, 64))
    grads = {"W": np.zeros((64, 64)), "b": np.zeros(64)}
    lines = []
    with (
        threadpool_limits(1),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(_one_thread)
        executor = client.get_executor()
        capacity = executor_capacity(executor)
        for repeat, label in ((4, "a loss of about 1 ms"), (0, "an empty loss")):
            loss = partial(_work, data=data, repeat=repeat)
            serial, _ = timed(partial(check_gradients, loss, params, grads, sample=256), 3)
            run = partial(check_gradients, loss, params, grads, sample=256, executor=executor)
            parallel, report = timed(run, 3)
            tasks = task_count(executor, 2 * (256 + 64))
            lines.append(
                f"dask, {label}: {report.evaluations} evaluations, serial {serial:.3f} s, "
                f"{capacity} worker threads {parallel:.3f} s ({serial / parallel:.2f}x), "
                f"{tasks} tasks"
                + (f", {parallel / tasks * 1e3:.1f} ms per task" if repeat == 0 else "")
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="gradcheck on every parameter")
    parser.add_argument("--dask", action="store_true", help="add the Dask measurement")
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    print("\n".join(machine()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread for both checkers")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = module_rows("cpu", arguments.full, arguments.repeats)
    if torch.cuda.is_available():
        print(f"CUDA device: {torch.cuda.get_device_name()}")
        rows += module_rows("cuda", arguments.full, arguments.repeats)
    print_rows(rows)
    if arguments.dask:
        print("\n" + "\n".join(dask_rows()))
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
