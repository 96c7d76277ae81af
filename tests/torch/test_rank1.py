"""Column and channel patches: every rule against the module evaluated from scratch.

For each layer pattern, random entries of every parameter are moved and the loss is
computed twice: through the cut graph (where the patch rules run) and by a float64
copy of the module with the entry moved, from scratch. They must agree to rounding,
and the rules meant for that pattern must actually have run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import gradprobe.torch._graph as graph_module
from gradprobe.torch._graph import GraphPlan, graph_for
from gradprobe.torch._rank1 import Patch
from gradprobe.torch._trace import attention_slow_path

torch.set_num_threads(1)
F = nn.functional


class Residual(nn.Module):
    """A traced-through module: functional calls, methods, a constant added, get_attr weights."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(5, 5)
        self.scale = nn.Parameter(torch.ones(5) * 0.7)
        self.register_buffer("offset", torch.linspace(-1, 1, 5))

    def forward(self, x: Any) -> Any:
        h = F.gelu(self.inner(x), approximate="tanh") * 2.0
        return (h + self.offset).tanh() * self.scale + x


def _linears() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), Residual(), nn.Linear(5, 3))


def _convs() -> nn.Module:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, stride=2, dilation=1, padding=1),
        nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(5 * 2 * 2, 3),
    )
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.3, 0.3)
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(0.5, 1.5)
    return model.eval()


def _convs_1d() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(2, 3, 3, padding="same"),
        nn.SiLU(),
        nn.AvgPool1d(2),
        nn.Conv1d(3, 2, 2, dilation=2),
        nn.Flatten(1),
        nn.Linear(2 * 2, 3),
    ).eval()


class WidthLinear(nn.Module):
    """A Linear over the last (width) dimension of a conv output: the patch stays on channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.width = nn.Linear(4, 2)
        self.norm = nn.LayerNorm(2)

    def forward(self, x: Any) -> Any:
        return self.norm(self.width(torch.relu(self.conv(x)))).flatten(1)


class Skip(nn.Module):
    """A ReLU whose input is read again after it: the ReLU must not overwrite it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.norm, self.act = nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU()
        self.head = nn.Linear(3 * 2 * 2, 3)

    def forward(self, x: Any) -> Any:
        h = self.norm(self.conv(x))
        return self.head((self.act(h) + h).flatten(1))


CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], int, set[str]]] = {
    # name: (module, input shape, classes, the rule kinds that must run)
    "linears": (_linears, (7, 4), 3, {"produce", "propagate", "consume"}),
    "convs": (_convs, (2, 3, 8, 8), 3, {"produce", "propagate", "consume"}),
    "convs_1d": (_convs_1d, (3, 2, 8), 3, {"produce", "propagate", "consume"}),
    "width_linear": (WidthLinear, (2, 2, 4, 4), 3, {"produce", "propagate"}),
    "skip": (lambda: Skip().eval(), (3, 2, 4, 4), 3, {"produce", "propagate"}),
}


def _plan(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, train_mode: bool = False
) -> tuple[GraphPlan, Callable[[dict[str, torch.Tensor]], torch.Tensor]]:
    twin = copy.deepcopy(module).double().train(train_mode)
    x64 = x.double()

    def loss(output: Any) -> torch.Tensor:
        return F.cross_entropy(output.reshape(len(y), -1), y).reshape(1)

    def scratch(overrides: dict[str, torch.Tensor]) -> torch.Tensor:
        state = {k: v.detach() for k, v in twin.named_parameters()}
        state.update(overrides)
        with torch.no_grad():
            return loss(torch.func.functional_call(twin, state, (x64,)))

    names = [name for name, _ in module.named_parameters()]
    plan = graph_for(module, [x64], {}, loss, names, scratch, [], train_mode)
    assert plan is not None
    return plan, scratch


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_parameter_route_matches_the_module_from_scratch(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, shape, classes, kinds = CASES[name]
    torch.manual_seed(0)
    module = make()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=generator)
    y = torch.randint(0, classes, (shape[0],), generator=generator)
    ran: set[str] = set()
    for kind in ("produce", "propagate", "consume"):
        real = getattr(graph_module, kind)

        def spy(*args: Any, _real: Any = real, _kind: str = kind) -> Any:
            result = _real(*args)
            if result is not None:
                ran.add(_kind)
            return result

        monkeypatch.setattr(graph_module, kind, spy)
    with attention_slow_path():
        plan, scratch = _plan(module, x, y)
        for parameter, value in module.named_parameters():
            count = min(6, value.numel())
            local = torch.randperm(value.numel(), generator=generator)[:count]
            base = value.detach().double().reshape(-1)
            moved = base[local] + torch.linspace(-0.3, 0.4, count, dtype=torch.float64)
            got = plan.coordinates(parameter, local, moved)
            assert got is not None, parameter
            for row in range(count):
                tensor = base.clone()
                tensor[local[row]] = moved[row]
                expected = scratch({parameter: tensor.reshape(value.shape)})
                assert float(got[row, 0]) == pytest.approx(float(expected[0]), rel=1e-13), (
                    parameter,
                    int(local[row]),
                )
            full = base.reshape(1, -1).repeat(2, 1)
            full[1, local[0]] = moved[0]
            batch = plan.batch(parameter, full.reshape(2, *value.shape))
            assert batch is not None
            assert float(batch[1, 0]) == pytest.approx(float(got[0, 0]), rel=1e-13)
    assert kinds <= ran, f"rules that ran: {ran}"
    assert not any("did not reproduce" in note for note in plan.notes)


def test_batch_norm_in_training_mode_uses_the_perturbed_batch() -> None:
    module = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten())
    module.append(nn.Linear(3 * 2 * 2, 2))
    x, y = torch.randn(4, 2, 4, 4), torch.tensor([0, 1, 1, 0])
    plan, scratch = _plan(module, x, y, train_mode=True)
    local = torch.tensor([0, 7, 20])
    base = module[0].weight.detach().double().reshape(-1)
    moved = base[local] + 0.2
    got = plan.coordinates("0.weight", local, moved)
    assert got is not None
    for row in range(3):
        tensor = base.clone()
        tensor[local[row]] = moved[row]
        expected = scratch({"0.weight": tensor.reshape(module[0].weight.shape)})
        assert float(got[row, 0]) == pytest.approx(float(expected[0]), rel=1e-13)


def test_patch_dense_and_moved() -> None:
    base = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)
    index = torch.tensor([[1], [2]])
    values = torch.full((2, 2, 1, 4), -1.0, dtype=torch.float64)
    patch = Patch(base, 1, index, values)
    dense = patch.dense()
    assert dense.shape == (2, 2, 3, 4)
    assert torch.equal(dense[0, :, 1], values[0, :, 0]) and torch.equal(dense[0, :, 0], base[:, 0])
    assert torch.equal(dense[1, :, 2], values[1, :, 0]) and torch.equal(dense[1, :, 1], base[:, 1])
    assert torch.equal(patch.moved()[0, :, 0], -1.0 - base[:, 1])
