"""The cut graph: routes reach only what follows the tensor, untraceable code falls back.

Whatever route a value takes, check_module's numbers must be the module's: each test
compares them with the module evaluated from scratch or with the whole-module route.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import gradprobe.torch._graph as graph_module
from gradprobe.torch import check_module
from gradprobe.torch._graph import graph_for
from gradprobe.torch._trace import attention_slow_path

torch.set_num_threads(1)
F = nn.functional
CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here: the CUDA route is not run"
)
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def _numbers(report: Any) -> dict[str, float]:
    return {entry.name: entry.numerical for entry in report.entries}


def test_a_route_holds_only_the_nodes_after_the_tensor() -> None:
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), nn.Tanh())
    x = torch.randn(5, 3, dtype=torch.float64)

    def loss(output: Any) -> torch.Tensor:
        return output.sum().reshape(1)

    def scratch(overrides: dict[str, torch.Tensor]) -> torch.Tensor:
        return loss(torch.func.functional_call(module.double(), overrides, (x,)))

    plan = graph_for(module, [x], {}, loss, ["0.weight", "2.weight"], scratch, [], False)
    assert plan is not None
    assert [n.name for n in plan.route("2.weight").nodes] == ["_2", "_3", "output"]
    assert [n.name for n in plan.route("0.weight").nodes] == ["_0", "_1", "_2", "_3", "output"]


class Branchy(nn.Module):
    """Data-dependent Python control flow in forward: fx cannot trace it, its children can."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x: Any) -> Any:
        hidden = torch.tanh(self.first(x))
        if hidden.sum() > 1e9:  # never true, but only a real tensor can say so
            hidden = hidden * 0
        return self.second(hidden)


def test_untraceable_code_keeps_its_children_as_layers_and_gives_the_same_numbers() -> None:
    x, y = torch.randn(6, 3), torch.randint(0, 2, (6,))
    # Inside a Sequential, the untraceable child becomes one opaque layer.
    module = nn.Sequential(Branchy(), nn.Tanh(), nn.Linear(2, 2))
    report = check_module(module, x, F.cross_entropy, y)
    assert report.verdict == "ok"
    assert not any("could not trace" in note for note in report.notes)
    # At the top, nothing can be traced: the whole module runs, and the report says so.
    top = check_module(Branchy(), x, F.cross_entropy, y)
    assert top.verdict == "ok" and any("could not trace" in note for note in top.notes)
    # The same check with the graph switched off gives the same numbers, to rounding.
    original = graph_module.trace
    try:
        graph_module.trace = lambda module: None  # type: ignore[assignment]
        plain = check_module(module, x, F.cross_entropy, y)
    finally:
        graph_module.trace = original
    for name, value in _numbers(report).items():
        assert value == pytest.approx(_numbers(plain)[name], rel=1e-7, abs=1e-10)


def test_a_route_that_disagrees_with_the_module_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    real = graph_module.produce

    def wrong(*args: Any) -> Any:
        patch = real(*args)
        if patch is not None:
            patch.values = patch.values * 1.01  # a planted bug in a rule
        return patch

    monkeypatch.setattr(graph_module, "produce", wrong)
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.LayerNorm(4), nn.Linear(4, 2))
    x, y = torch.randn(6, 3), torch.randint(0, 2, (6,))
    report = check_module(module, x, F.cross_entropy, y, mode="full")
    assert report.verdict == "ok"  # the numbers came from the whole module instead
    assert any("did not reproduce the module's loss" in note for note in report.notes)


def test_operations_torch_cannot_batch_are_noted() -> None:
    class Distances(nn.Module):
        def __init__(self, masked: bool) -> None:
            super().__init__()
            self.layer, self.masked = nn.Linear(3, 2), masked

        def forward(self, x: Any) -> Any:
            out = torch.tanh(self.layer(x))
            if self.masked:  # a data-dependent shape: vmap cannot batch it at all
                return out[out > -2].sum()
            return torch.pdist(out).sum()  # no batching rule: torch loops inside vmap

    x = torch.randn(4, 3)
    looped = check_module(Distances(False), x)
    assert looped.verdict == "ok"
    assert any("no batching rule for aten::pdist" in note for note in looped.notes)
    serial = check_module(Distances(True), x)
    assert serial.verdict == "ok"
    assert any("could not batch" in note and "one at a time" in note for note in serial.notes)


def test_attention_runs_batched_and_the_global_settings_are_restored() -> None:
    attention = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(2, 3, 8)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    report = check_module(
        attention, (x, x, x), lambda out: (out[0] ** 2).sum(), include="out_proj.*"
    )
    assert report.verdict == "ok"
    assert not any("batching rule" in note for note in report.notes)
    assert torch.backends.mha.get_fastpath_enabled() == fastpath
    with attention_slow_path():
        assert not torch.backends.mha.get_fastpath_enabled()
    assert torch.backends.mha.get_fastpath_enabled() == fastpath


def test_keyword_inputs_and_checked_inputs_go_through_the_graph() -> None:
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(3, 3)

        def forward(self, x: Any, gate: Any = None) -> Any:
            return torch.sigmoid(self.layer(x)) * gate

    module = Gate()
    inputs = {"x": torch.randn(4, 3), "gate": torch.rand(4, 3)}
    report = check_module(module, inputs, check_inputs=True)
    assert report.verdict == "ok", str(report)
    assert [row.name for row in report.parameters] == ["layer.weight", "layer.bias", "x", "gate"]


@pytest.mark.parametrize("device", DEVICES)
def test_module_routes_on_each_device_agree_with_the_whole_module(device: str) -> None:
    module = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)
    ).to(device)
    x = torch.randn(3, 2, 4, 4, device=device)
    y = torch.tensor([0, 1, 1], device=device)
    routed = check_module(module, x, F.cross_entropy, y, mode="full")
    original = graph_module.trace
    try:
        graph_module.trace = lambda module: None  # type: ignore[assignment]
        whole = check_module(module, x, F.cross_entropy, y, mode="full")
    finally:
        graph_module.trace = original
    assert routed.verdict == whole.verdict == "ok"
    mine, theirs = _numbers(routed), _numbers(whole)
    assert np.allclose([mine[k] for k in theirs], list(theirs.values()), rtol=1e-7, atol=1e-10)
    assert all(p.device.type == device for p in module.parameters())


def test_a_tied_weight_moves_every_layer_that_uses_it() -> None:
    shared = nn.Linear(4, 4)
    module = nn.Sequential(shared, nn.Tanh(), nn.LayerNorm(4), shared, nn.Tanh())
    x = torch.randn(5, 4)
    before = [(name, p, p.requires_grad) for name, p in module.named_parameters()]
    report = check_module(module, x, lambda out: (out**2).sum(), mode="full")
    # A module used twice is left as it was (torch's functional_call with tied weights
    # would replace its parameters by tensors that do not require grad).
    assert [(n, p, p.requires_grad) for n, p in module.named_parameters()] == before
    assert [row.name for row in report.parameters] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert report.verdict == "ok", str(report)
    assert not any("did not reproduce" in note for note in report.notes)
    original = graph_module.trace
    try:
        graph_module.trace = lambda module: None  # type: ignore[assignment]
        whole = check_module(module, x, lambda out: (out**2).sum(), mode="full")
    finally:
        graph_module.trace = original
    for name, value in _numbers(report).items():
        assert value == pytest.approx(_numbers(whole)[name], rel=1e-7, abs=1e-10)


def test_a_weight_tied_across_two_layers_is_checked_as_one() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encode, self.decode = nn.Linear(4, 4), nn.Linear(4, 4)
            self.decode.weight = self.encode.weight

        def forward(self, x: Any) -> Any:
            return self.decode(torch.tanh(self.encode(x)))

    module, x = Tied(), torch.randn(5, 4)
    report = check_module(module, x, lambda out: (out**2).sum(), mode="full")
    assert [row.name for row in report.parameters] == [
        "encode.weight",
        "encode.bias",
        "decode.bias",
    ]
    assert report.verdict == "ok", str(report)
    assert module.decode.weight is module.encode.weight and module.encode.weight.requires_grad
