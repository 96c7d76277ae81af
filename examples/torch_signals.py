"""Signals in your own PyTorch model: probe → sweep → fix → probe again (the README's figure).

Run:  python examples/torch_signals.py   (writes docs/torch-signals.png)
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

from gradprobe.report.plots import plot_comparison
from gradprobe.torch import init_sweep, initialize_, propagation, rescale_

torch.set_num_threads(1)
X, _ = load_digits(return_X_y=True)
x = torch.tensor((X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8), dtype=torch.float32)[:256]

torch.manual_seed(0)
layers: list[nn.Module] = [nn.Linear(64, 64), nn.ReLU()]
for _ in range(22):
    layers += [nn.Linear(64, 64), nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(64, 10))  # PyTorch's default init

before = propagation(model, x)  # 1. probe
print(before.summary, before.advice, sep="\n")
print(init_sweep(model, x, ["default", "xavier", "he", "orthogonal", "auto"]))  # 2. sweep
fixed = copy.deepcopy(model)
initialize_(fixed, "he")  # 3. fix, in place
rescaled = copy.deepcopy(model)
lsuv = rescale_(rescaled, x)
print(propagation(fixed, x).summary, lsuv.after.summary)  # 4. probe again

figure = plot_comparison(
    {
        "PyTorch default init": before,
        "initialize_(model, 'he')": propagation(fixed, x),
        "rescale_(model, x)": lsuv.after,
    },
    Path(__file__).resolve().parents[1] / "docs" / "torch-signals.png",
    title="24 Linear+ReLU layers on digits: before and after the fix",
)
