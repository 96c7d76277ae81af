"""Benchmark: what fixing a deep plain ReLU model's initialization buys in training.

Run:  python benchmarks/bench_torch_init.py

scikit-learn's digits (1,797 × 64, bundled, each feature standardized); a plain
``nn.Sequential`` of 24 Linear layers of width 64 with ReLU between them, PyTorch's
default initialization; three copies of it trained with the same budget (minibatch SGD,
momentum 0.9, learning rate 0.01, batches of 128 from one seeded stream):

* the original, default init (the anchor, measured in the same run);
* after ``gradprobe.torch.initialize_(model, "he")``;
* after ``gradprobe.torch.rescale_(model, X[:256])`` (LSUV).

Printed: the propagation verdict of each before training, the training cross-entropy on
all of digits after STEPS steps, medians over SEEDS model seeds, and the ratios of the
original's loss to each fixed one's. Also the cost of one ``propagation`` call against
one training step (forward, backward and update on a batch of 128), medians.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

from gradprobe.torch import initialize_, propagation, rescale_

DEPTH, WIDTH, STEPS, SEEDS, LR = 24, 64, 400, 5, 0.003


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def plain(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(64, WIDTH), nn.ReLU()]
    for _ in range(DEPTH - 2):
        layers += [nn.Linear(WIDTH, WIDTH), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(WIDTH, 10))


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Return the loss on all of X after STEPS steps, and the median seconds per step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    seconds = []
    for _ in range(STEPS):
        start = time.perf_counter()
        index = torch.randint(0, len(X), (128,), generator=generator)
        loss = F.cross_entropy(model(X[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        return float(F.cross_entropy(model(X), y)), statistics.median(seconds)


def main() -> None:
    torch.set_num_threads(1)
    X, y = digits()
    losses: dict[str, list[float]] = {"default": [], "he": [], "rescale_": []}
    verdicts: dict[str, list[str]] = {name: [] for name in losses}
    probe_seconds, step_seconds = [], []
    for seed in range(SEEDS):
        original = plain(seed)
        he = copy.deepcopy(original)
        initialize_(he, "he", seed=seed)
        rescaled = copy.deepcopy(original)
        rescale_(rescaled, X[:256], seed=seed)
        for name, model in (("default", original), ("he", he), ("rescale_", rescaled)):
            start = time.perf_counter()
            verdicts[name].append(propagation(model, X[:256]).verdict)
            probe_seconds.append(time.perf_counter() - start)
            loss, step = train(model, X, y)
            losses[name].append(loss)
            step_seconds.append(step)
    print(
        f"digits, {DEPTH} Linear layers of width {WIDTH} with ReLU, SGD momentum 0.9, "
        f"lr {LR}, {STEPS} steps of 128; medians over {SEEDS} seeds; 1 torch thread"
    )
    print(f"{'init':<10} {'verdict before training':<26} {'training loss':>14}")
    medians = {name: statistics.median(values) for name, values in losses.items()}
    for name, values in losses.items():
        shown = ", ".join(sorted(set(verdicts[name])))
        print(
            f"{name:<10} {shown:<26} {medians[name]:>14.4f}  (all: "
            f"{', '.join(f'{value:.3f}' for value in values)})"
        )
    print(f"loss ratio default / he:       {medians['default'] / medians['he']:.1f}x")
    print(f"loss ratio default / rescale_: {medians['default'] / medians['rescale_']:.1f}x")
    probe, step = statistics.median(probe_seconds), statistics.median(step_seconds)
    print(
        f"one propagation() call: {probe * 1e3:.1f} ms = {probe / step:.1f} training steps "
        f"({step * 1e3:.2f} ms each)"
    )


if __name__ == "__main__":
    main()
