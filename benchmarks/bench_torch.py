"""Benchmark: ``gradprobe.torch.check_module`` against ``torch.autograd.gradcheck`` slow mode.

Run:  python benchmarks/bench_torch.py     (also part of bench_gradcheck.py)

The reference network of bench_gradcheck.py (MLP [64, 128, 128, 10], ReLU, 256
examples, float64, softmax cross-entropy) as a ``torch.nn.Sequential``. Both full
checks are timed on a subset and extrapolated, as bench_gradcheck.py does: torch's
slow mode on the last weight (the whole forward pass runs for each of its values),
check_module on up to SUBSET seeded values of each tensor, scaled tensor by tensor
(earlier tensors cost more per value: more layers run batched after them). With a
CUDA device the same rows are measured there too.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch
from bench_gradcheck import machine, problem
from torch import nn
from torch.func import functional_call

from gradprobe.nn.mlp import MLP
from gradprobe.torch import check_module

SUBSET = 1024  # values per tensor timed for the extrapolated check_module row

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


def gradcheck_slow(module: nn.Module, X: Any, y: Any) -> tuple[float, int, str]:
    """torch.autograd.gradcheck slow mode on the last weight, scaled to every parameter."""
    params = dict(module.named_parameters())
    name = list(params)[-2]
    fixed = {k: v.detach() for k, v in params.items()}

    def loss(weight: Any) -> Any:
        output = functional_call(module, {**fixed, name: weight}, (X,))
        return nn.functional.cross_entropy(output, y)

    weight = params[name].detach().clone().requires_grad_(True)
    start = time.perf_counter()
    ok = torch.autograd.gradcheck(loss, (weight,), fast_mode=False, raise_exception=False)
    size = sum(p.numel() for p in params.values())
    seconds = (time.perf_counter() - start) * size / weight.numel()
    return seconds, 2 * size, "ok" if ok else "wrong"


def check_module_full(module: nn.Module, X: Any, y: Any) -> tuple[float, int, str]:
    """check_module, mode "full", timed on SUBSET values per tensor and scaled per tensor."""
    seconds, evaluations, verdicts = 0.0, 0, set()
    loss = nn.functional.cross_entropy
    for name, value in module.named_parameters():
        count = min(SUBSET, value.numel())
        start = time.perf_counter()
        report = check_module(module, X, loss, y, include=name, sample=count, mode="full")
        seconds += (time.perf_counter() - start) * value.numel() / count
        evaluations += 2 * value.numel()
        verdicts.add(report.verdict)
    return seconds, evaluations, max(verdicts, key=("ok", "suspicious", "wrong").index)


def torch_module_rows(net: MLP, X: np.ndarray, y: np.ndarray, device: str = "cpu") -> list[Row]:
    """Rows for the table of bench_gradcheck.py, measured on ``device``."""
    module = torch_module(net, device)
    data, labels = torch.tensor(X, device=device), torch.tensor(y, device=device)
    slow = gradcheck_slow(module, data, labels)
    full = check_module_full(module, data, labels)
    start = time.perf_counter()
    localized = check_module(module, data, nn.functional.cross_entropy, labels, mode="localize")
    local_seconds = time.perf_counter() - start
    ratio = f"{slow[0] / full[0]:.1f}x faster than (t1)"
    return [
        (f"(t1) torch gradcheck slow, {device} [extrapolated]", *slow, ""),
        (f"(t2) gradprobe.torch check_module full, {device} [extr.]", *full, ratio),
        (
            f"(t3) gradprobe.torch check_module localize, {device}",
            local_seconds,
            localized.evaluations,
            localized.verdict,
            f"{slow[0] / local_seconds:.0f}x faster than (t1)",
        ),
    ]


def print_rows(rows: list[Row]) -> None:
    print(f"\n{'check':<56} {'seconds':>9} {'evaluations':>12}  {'verdict':<8} note")
    for name, seconds, evaluations, verdict, note in rows:
        print(f"{name:<56} {seconds:>9.2f} {evaluations:>12,}  {verdict:<8} {note}")


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    print("\n".join(machine()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sizes, m = [64, 128, 128, 10], 256
    net, X, y = problem(sizes, m)
    print(f"reference network {sizes}, {m} examples, float64, softmax cross-entropy")
    rows = torch_module_rows(net, X, y, "cpu")
    if torch.cuda.is_available():
        print(f"CUDA device: {torch.cuda.get_device_name()}")
        rows += torch_module_rows(net, X, y, "cuda")
    print_rows(rows)


if __name__ == "__main__":
    main()
