"""Tracing helpers: opaque children when the top cannot be traced, attention's composite path."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gradprobe.torch._trace import attention_slow_path, clone, fetch, in_place, numel, trace


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x: Any) -> Any:
        y = self.layer(x)
        return y if float(y.sum()) > -1e9 else -y  # data-dependent: fx cannot follow it


def test_an_untraceable_child_becomes_one_layer_and_an_untraceable_top_no_graph() -> None:
    graph = trace(nn.Sequential(Untraceable(), nn.ReLU()))
    assert graph is not None
    assert [n.op for n in graph.graph.nodes] == [
        "placeholder",
        "call_module",
        "call_module",
        "output",
    ]
    assert trace(Untraceable()) is None


def test_attention_runs_its_composite_path_and_the_setting_comes_back() -> None:
    before = torch.backends.mha.get_fastpath_enabled()
    attention = nn.MultiheadAttention(4, 2, batch_first=True).eval()
    x = torch.randn(3, 5, 4)
    with torch.no_grad(), attention_slow_path():
        assert not torch.backends.mha.get_fastpath_enabled()
        batched = torch.vmap(lambda q: attention(q, q, q, need_weights=False)[0])(x.unsqueeze(1))
    assert torch.backends.mha.get_fastpath_enabled() == before
    with torch.no_grad():
        direct = attention(x, x, x, need_weights=False)[0]
    assert torch.allclose(batched.squeeze(1), direct, atol=1e-6)


def test_node_helpers() -> None:
    module = nn.Sequential(nn.Linear(2, 2), nn.ReLU(inplace=True))
    graph = trace(module)
    assert graph is not None
    flags = {n.name: in_place(n, graph) for n in graph.graph.nodes}
    assert flags == {"input_1": False, "_0": False, "_1": True, "output": False}
    assert fetch(module, "0.weight") is module[0].weight
    nested = (torch.ones(2, 3), [torch.zeros(4), 7])
    assert numel(nested) == 10
    copied = clone(nested)
    assert copied[0] is not nested[0] and torch.equal(copied[0], nested[0]) and copied[1][1] == 7


def test_traced_keeps_every_value_and_runs_a_node_with_a_moved_parameter() -> None:
    from gradprobe.torch._trace import Traced

    module = nn.Sequential(nn.Linear(3, 2), nn.Tanh()).double()
    graph = trace(module)
    assert graph is not None
    x = torch.randn(4, 3, dtype=torch.float64)
    traced = Traced(graph, [x], {}, lambda out: out.sum().reshape(1))
    with torch.no_grad():
        assert torch.allclose(traced.loss, module(x).sum().reshape(1))
        linear = next(n for n in graph.graph.nodes if n.op == "call_module")
        weight = torch.zeros(2, 3, dtype=torch.float64)
        moved = traced._execute(linear, traced._resolve(linear, {}), (("0.weight",), weight))
        assert torch.allclose(moved, module[0].bias.expand(4, 2))
    assert traced.aliases("0.weight") == ("0.weight",)
