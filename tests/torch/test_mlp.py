"""A plain PyTorch MLP checked through gradprobe's structure-aware evaluator.

The route is taken only for modules that are exactly gradprobe's MLP; its numerical
values must equal differences of the module itself, and a copy whose loss disagrees
with the module must be refused.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import gradprobe.torch._mlp as mlp_module
from gradprobe.torch import check_module

torch.set_num_threads(1)
F = nn.functional
NOTE = "structure-aware MLP evaluator"


def _data(outputs: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(12, 5, generator=generator)
    if kind == "labels":
        return x, torch.randint(0, outputs, (12,), generator=generator)
    if kind == "binary":
        return x, (torch.rand(12, 1, generator=generator) > 0.5).float()
    return x, torch.randn(12, outputs, generator=generator)


CASES: dict[str, tuple[nn.Module, Any, int, str]] = {
    "relu_cross_entropy": (
        nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)),
        F.cross_entropy,
        3,
        "labels",
    ),
    "tanh_module_loss": (
        nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 4)),
        nn.CrossEntropyLoss(),
        4,
        "labels",
    ),
    "gelu_mse": (
        nn.Sequential(nn.Linear(5, 4), nn.GELU("tanh"), nn.Linear(4, 2)),
        nn.MSELoss(),
        2,
        "real",
    ),
    "sigmoid_bce": (
        nn.Sequential(nn.Linear(5, 4), nn.Sigmoid(), nn.Linear(4, 1)),
        nn.BCEWithLogitsLoss(),
        1,
        "binary",
    ),
    "single_linear": (nn.Sequential(nn.Linear(5, 3)), F.cross_entropy, 3, "labels"),
}


def _scratch_differences(module: nn.Module, x: Any, loss: Any, y: Any, report: Any) -> None:
    """Every reported numerical value against central differences of the module itself."""
    twin = copy.deepcopy(module).double()
    parameters = dict(twin.named_parameters())
    target = y.double() if y.is_floating_point() else y
    for entry in report.entries[:: max(1, len(report.entries) // 25)]:
        step = 1e-6
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                parameters[entry.parameter][entry.index] += sign * step
                values.append(float(loss(twin(x.double()), target)))
                parameters[entry.parameter][entry.index] -= sign * step
        assert entry.numerical == pytest.approx(
            (values[0] - values[1]) / (2 * step), rel=1e-6, abs=1e-9
        )


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_plain_mlp_takes_the_structure_aware_route_with_the_modules_numbers(name: str) -> None:
    torch.manual_seed(0)
    module, loss, outputs, kind = CASES[name]
    x, y = _data(outputs, kind)
    report = check_module(module, x, loss, y, mode="full")
    assert report.verdict == "ok", str(report)
    assert any(NOTE in note for note in report.notes)
    assert report.checked == sum(p.numel() for p in module.parameters())
    _scratch_differences(module, x, loss, y, report)
    subset = check_module(module, x, loss, y, include="*.bias", mode="full")
    assert any(NOTE in note for note in subset.notes) and subset.verdict == "ok"


@pytest.mark.parametrize(
    "change",
    ["leaky_slope", "mixed_activations", "hook", "subclass", "label_smoothing", "train_mode"],
)
def test_anything_but_a_plain_mlp_takes_the_general_route(change: str) -> None:
    torch.manual_seed(0)
    layers: list[nn.Module] = [
        nn.Linear(5, 6),
        nn.ReLU(),
        nn.Linear(6, 6),
        nn.ReLU(),
        nn.Linear(6, 3),
    ]
    loss: Any = F.cross_entropy
    options: dict[str, Any] = {}
    if change == "leaky_slope":
        layers[1] = layers[3] = nn.LeakyReLU(0.2)
    elif change == "mixed_activations":
        layers[3] = nn.Tanh()
    elif change == "subclass":

        class Scaled(nn.Linear):
            def forward(self, x: Any) -> Any:
                return super().forward(x) * 2

        layers[2] = Scaled(6, 6)
    elif change == "label_smoothing":
        loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    elif change == "train_mode":
        options["train_mode"] = True
    module = nn.Sequential(*layers)
    if change == "hook":
        module[2].register_forward_hook(lambda m, i, o: o * 1.0)
    x, y = _data(3, "labels")
    report = check_module(module, x, loss, y, **options)
    assert report.verdict == "ok"
    assert not any(NOTE in note for note in report.notes)


def test_a_copy_that_disagrees_with_the_module_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = mlp_module.replica_for

    def off_by_a_little(*args: Any) -> Any:
        built = real(*args)
        if built is not None:
            built[0].params["W1"] = built[0].params["W1"] * (1 + 1e-9)
        return built

    monkeypatch.setattr(mlp_module, "replica_for", off_by_a_little)
    import gradprobe.torch.check as check  # the name check_module looks up

    monkeypatch.setattr(check, "replica_for", off_by_a_little)
    module, loss, outputs, kind = CASES["relu_cross_entropy"]
    x, y = _data(outputs, kind)
    report = check_module(module, x, loss, y)
    assert report.verdict == "ok"
    assert not any(NOTE in note for note in report.notes)


def test_localize_on_a_plain_mlp_is_batched_and_agrees() -> None:
    torch.manual_seed(0)
    module, loss, outputs, kind = CASES["tanh_module_loss"]
    x, y = _data(outputs, kind)
    report = check_module(module, x, loss, y, mode="localize")
    assert report.verdict == "ok" and report.mode == "localize"
    assert np.all([group.failed is False for group in report.groups])


CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here: the CUDA route is not run"
)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_an_mlp_on_a_gpu_takes_the_cut_graph_with_the_same_verdict(device: str) -> None:
    torch.manual_seed(0)
    module, loss, outputs, kind = CASES["relu_cross_entropy"]
    x, y = _data(outputs, kind)
    report = check_module(module.to(device), x.to(device), loss, y.to(device))
    assert report.verdict == "ok"
    assert any(NOTE in note for note in report.notes) == (device == "cpu")
