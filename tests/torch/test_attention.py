"""Attention perturbations head by head: the layer's own output at every perturbed point."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.func import functional_call

from gradprobe.torch import check_module
from gradprobe.torch._attention import attention_outputs, supported
from gradprobe.torch._graph import graph_for
from gradprobe.torch._trace import attention_slow_path

torch.set_num_threads(1)
PARAMETERS = ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")


def _case(
    embed: int, heads: int, first: bool, padded: bool, cross: bool, masked: bool, seed: int = 0
) -> tuple[nn.MultiheadAttention, tuple[torch.Tensor, ...], dict[str, Any]]:
    torch.manual_seed(seed)
    layer = nn.MultiheadAttention(embed, heads, batch_first=first).double().eval()
    with torch.no_grad():
        layer.in_proj_bias.normal_()
        layer.out_proj.bias.normal_()
    batch, length, other = 3, 5, 4 if cross else 5
    shape = (batch, length, embed) if first else (length, batch, embed)
    query = torch.randn(shape, dtype=torch.float64)
    if cross:
        memory = torch.randn(
            (batch, other, embed) if first else (other, batch, embed), dtype=torch.float64
        )
        args: tuple[torch.Tensor, ...] = (query, memory, memory)
    else:
        args = (query, query, query)
    kwargs: dict[str, Any] = {"need_weights": False}
    if padded:
        padding = torch.zeros(batch, other, dtype=torch.bool)
        padding[0, -2:] = True
        padding[2, 0] = True
        # boolean, or additive beside an additive attn_mask (torch wants the same kind)
        kwargs["key_padding_mask"] = (
            padding.double().masked_fill(padding, -torch.inf) if masked else padding
        )
    if masked:
        kwargs["attn_mask"] = torch.randn(length, other, dtype=torch.float64)
    return layer, args, kwargs


CASES = [
    pytest.param(32, 4, True, False, False, False, id="embed32-4heads-batch-first"),
    pytest.param(12, 3, False, True, False, False, id="embed12-3heads-seq-first-padding"),
    pytest.param(8, 2, True, True, True, True, id="cross-attention-padding-and-mask"),
    pytest.param(6, 1, False, False, True, False, id="one-head-cross"),
]


@pytest.mark.parametrize(("embed", "heads", "first", "padded", "cross", "masked"), CASES)
def test_every_parameter_moved_gives_the_layers_own_output(
    embed: int, heads: int, first: bool, padded: bool, cross: bool, masked: bool
) -> None:
    layer, args, kwargs = _case(embed, heads, first, padded, cross, masked)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad(), attention_slow_path():
        out = layer(*args, **kwargs)[0]
        for name in PARAMETERS:
            assert supported(layer, name, args, kwargs)
            parameter = layer.get_parameter(name)
            # every entry of the bias and of the output projection, a spread of the input
            # projection's (queries, keys and values of every head)
            count = parameter.numel()
            local = torch.randperm(count, generator=generator)[: min(count, 96)]
            steps = torch.randn(len(local), generator=generator, dtype=torch.float64)
            values = parameter.reshape(-1)[local] + 1e-3 * steps
            got, coefficients, directions = attention_outputs(
                layer, name, args, kwargs, out, local, values
            )
            assert got.shape == (len(local), *out.shape)
            # the change is the stated combination of a few directions
            rank = directions.shape[1]
            assert rank == (
                1 if name != "in_proj_weight" and name != "in_proj_bias" else embed // heads
            )
            combined = out + (
                coefficients.unsqueeze(-1)
                * directions.reshape(len(local), *[1] * (out.dim() - 1), rank, -1)
            ).sum(-2)
            assert torch.allclose(combined, got, rtol=1e-13, atol=1e-14)
            for b in range(len(local)):
                moved = parameter.detach().clone().reshape(-1)
                moved[local[b]] = values[b]
                expected = functional_call(
                    layer, {name: moved.reshape(parameter.shape)}, args, kwargs
                )[0]
                assert torch.allclose(got[b], expected, rtol=1e-12, atol=1e-13), (
                    name,
                    int(local[b]),
                )


def test_a_wrong_change_is_seen_by_the_same_comparison() -> None:
    # the comparison above can fail: a value moved by a different amount differs at 1e-3
    layer, args, kwargs = _case(8, 2, True, False, False, False)
    with torch.no_grad(), attention_slow_path():
        out = layer(*args, **kwargs)[0]
        local = torch.tensor([3])
        value = layer.in_proj_weight.reshape(-1)[local] + 1e-3
        got, _, _ = attention_outputs(layer, "in_proj_weight", args, kwargs, out, local, value)
        moved = layer.in_proj_weight.detach().clone().reshape(-1)
        moved[3] += 2e-3
        expected = functional_call(layer, {"in_proj_weight": moved.reshape(24, 8)}, args, kwargs)
    assert not torch.allclose(got[0], expected[0], rtol=1e-12, atol=1e-13)


def test_layers_and_calls_it_does_not_handle_are_refused() -> None:
    layer, args, kwargs = _case(8, 2, True, False, False, False)
    assert not supported(layer, "in_proj_weight", args, {**kwargs, "is_causal": True})
    assert not supported(layer, "in_proj_weight", tuple(a[0] for a in args), kwargs)
    assert not supported(
        layer, "in_proj_weight", args, {**kwargs, "attn_mask": torch.zeros(6, 5, 5)}
    )
    assert not supported(layer, "bias_k", args, kwargs)
    with_bias = nn.MultiheadAttention(8, 2, add_bias_kv=True, batch_first=True).double()
    assert not supported(with_bias, "in_proj_weight", args, kwargs)
    separate = nn.MultiheadAttention(8, 2, kdim=4, vdim=4, batch_first=True).double()
    assert not supported(separate, "out_proj.weight", args, kwargs)
    zero = nn.MultiheadAttention(8, 2, add_zero_attn=True, batch_first=True).double()
    assert not supported(zero, "out_proj.weight", args, kwargs)
    dropping = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True).double().train()
    assert not supported(dropping, "out_proj.weight", args, kwargs)
    assert not supported(nn.Linear(8, 8), "weight", args, kwargs)


class Block(nn.Module):
    """Attention, residual, LayerNorm, MLP, residual, LayerNorm; ``wrong`` plants a bug."""

    def __init__(
        self,
        embed: int = 8,
        heads: int = 2,
        first: bool = True,
        wrong: bool = False,
        **options: Any,
    ) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(embed, heads, batch_first=first, **options)
        self.norm1 = nn.LayerNorm(embed)
        self.mlp = nn.Sequential(
            nn.Linear(embed, 2 * embed), nn.GELU(), nn.Linear(2 * embed, embed)
        )
        self.norm2 = nn.LayerNorm(embed)
        self.wrong = wrong

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        attended, _ = self.attn(x, x, x, key_padding_mask=padding, need_weights=False)
        if self.wrong:
            attended = Doubled.apply(attended)
        x = self.norm1(x + attended)
        return self.norm2(x + self.mlp(x))


class Doubled(torch.autograd.Function):
    """The identity, with a backward that doubles the gradient: a planted bug."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return 2 * grad


def _plan(block: nn.Module, inputs: tuple[Any, ...], target: torch.Tensor) -> Any:
    block = block.double().eval()
    names = [name for name, _ in block.named_parameters()]

    def loss(output: Any) -> torch.Tensor:
        return nn.functional.mse_loss(output, target).reshape(1)

    def scratch(overrides: Any) -> torch.Tensor:
        return loss(functional_call(block, dict(overrides), inputs))

    with attention_slow_path():
        plan = graph_for(block, list(inputs), {}, loss, names, scratch, [], False)
    assert plan is not None
    return plan, scratch


@pytest.mark.parametrize(
    ("embed", "heads", "first", "padded"),
    [(8, 2, True, False), (12, 3, False, True), (6, 1, True, True)],
)
def test_the_cut_graph_gives_the_blocks_loss_at_every_perturbed_point(
    embed: int, heads: int, first: bool, padded: bool
) -> None:
    torch.manual_seed(3)
    block = Block(embed, heads, first).double().eval()
    x = torch.randn((2, 4, embed) if first else (4, 2, embed), dtype=torch.float64)
    inputs: tuple[Any, ...] = (x,)
    if padded:
        inputs = (x, torch.tensor([[False, False, True, True], [False, False, False, True]]))
    target = torch.randn(x.shape, dtype=torch.float64)
    plan, scratch = _plan(block, inputs, target)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad(), attention_slow_path():
        for name in [*PARAMETERS, "norm1.weight", "mlp.0.weight"]:
            full = f"attn.{name}" if name in PARAMETERS else name
            base = plan.parameters[full].detach().reshape(-1)
            local = torch.randperm(len(base), generator=generator)[:24]
            values = base[local] + 1e-4 * torch.randn(
                len(local), generator=generator, dtype=torch.float64
            )
            got = plan.coordinates(full, local, values)
            route = plan.route(full)
            if name in PARAMETERS:
                assert route.patched >= 1, "the attention layer was run again, not head by head"
                assert plan.products, "the MLP's first layer was multiplied out again"
            for b in range(len(local)):
                moved = base.clone()
                moved[local[b]] = values[b]
                expected = scratch({full: moved.reshape(plan.parameters[full].shape)})
                assert torch.allclose(got[b], expected, rtol=1e-13, atol=0.0), (full, b)


def test_a_planted_bug_inside_the_block_is_caught_and_localized_through_the_fast_route() -> None:
    torch.manual_seed(4)
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    target = torch.randn(2, 4, 8, dtype=torch.float64)
    good = Block().double()
    bad = Block(wrong=True).double()
    bad.load_state_dict(good.state_dict())
    assert check_module(good, x, nn.functional.mse_loss, target, mode="full").verdict == "ok"
    report = check_module(bad, x, nn.functional.mse_loss, target, mode="full")
    assert report.verdict == "wrong"
    verdicts = {row.name: row.verdict for row in report.parameters}
    assert all(
        verdicts[name] == "wrong" for name in ("attn.in_proj_weight", "attn.out_proj.weight")
    )
    assert all(verdicts[name] == "ok" for name in ("mlp.0.weight", "mlp.2.weight", "norm2.weight"))
    assert not any("did not reproduce" in note or "one at a time" in note for note in report.notes)
    located = check_module(bad, x, nn.functional.mse_loss, target, mode="localize")
    assert located.verdict == "wrong"
    assert {row.name for row in located.parameters if row.verdict == "wrong"} >= {
        "attn.out_proj.weight"
    }


@pytest.mark.parametrize("options", [{"add_bias_kv": True}, {"add_zero_attn": True}])
def test_attention_the_fast_route_does_not_handle_runs_the_layer_again(
    options: dict[str, Any],
) -> None:
    torch.manual_seed(5)
    block = Block(**options).double().eval()
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    target = torch.randn(2, 4, 8, dtype=torch.float64)
    plan, scratch = _plan(block, (x,), target)
    with torch.no_grad(), attention_slow_path():
        local = torch.tensor([0, 17, 150])
        base = plan.parameters["attn.in_proj_weight"].detach().reshape(-1)
        got = plan.coordinates("attn.in_proj_weight", local, base[local] + 1e-4)
        assert plan.route("attn.in_proj_weight").patched == 0
        for b in range(3):
            moved = base.clone()
            moved[local[b]] += 1e-4
            expected = scratch({"attn.in_proj_weight": moved.reshape(24, 8)})
            assert torch.allclose(got[b], expected, rtol=1e-12, atol=0.0)
    report = check_module(block, x, nn.functional.mse_loss, target, mode="full")
    assert report.verdict == "ok"


class Weighted(nn.Module):
    """Attention whose weights are returned (``use``) or computed and dropped."""

    def __init__(self, use: bool) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)
        self.use = use

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, weights = self.attn(x, x, x)  # need_weights defaults to True
        result = self.head(out)
        return result + weights.sum() if self.use else result


@pytest.mark.parametrize("use", [False, True])
def test_attention_weights_that_are_used_send_the_layer_back_to_torch(use: bool) -> None:
    torch.manual_seed(6)
    block = Weighted(use).double().eval()
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    target = torch.randn(2, 4, 3, dtype=torch.float64)
    plan, scratch = _plan(block, (x,), target)
    with torch.no_grad(), attention_slow_path():
        base = plan.parameters["attn.out_proj.weight"].detach().reshape(-1)
        local = torch.tensor([1, 30, 63])
        got = plan.coordinates("attn.out_proj.weight", local, base[local] - 1e-4)
        assert (plan.route("attn.out_proj.weight").patched >= 1) is not use
        for b in range(3):
            moved = base.clone()
            moved[local[b]] -= 1e-4
            expected = scratch({"attn.out_proj.weight": moved.reshape(8, 8)})
            assert torch.allclose(got[b], expected, rtol=1e-13, atol=0.0)


class Twice(nn.Module):
    """One Linear after one LayerNorm, called twice on the same value and summed."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = x + self.attn(x, x, x, need_weights=False)[0]
        return torch.tanh(self.fc(self.norm(value))) * self.fc(self.norm(value))


def test_a_layer_called_twice_keeps_each_calls_values() -> None:
    torch.manual_seed(7)
    block = Twice().double().eval()
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    target = torch.randn(2, 4, 8, dtype=torch.float64)
    plan, scratch = _plan(block, (x,), target)
    with torch.no_grad(), attention_slow_path():
        base = plan.parameters["attn.in_proj_weight"].detach().reshape(-1)
        local = torch.arange(0, 192, 5)
        got = plan.coordinates("attn.in_proj_weight", local, base[local] + 1e-4)
        assert plan.route("attn.in_proj_weight").patched >= 1
        assert sum(1 for key in plan.products if key[0] == "linear") == 2
        for b in range(len(local)):
            moved = base.clone()
            moved[local[b]] += 1e-4
            expected = scratch({"attn.in_proj_weight": moved.reshape(24, 8)})
            assert torch.allclose(got[b], expected, rtol=1e-13, atol=0.0)
