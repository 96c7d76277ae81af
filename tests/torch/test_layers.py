"""gradprobe.torch._layers: weight layers, module roles and the activation read after each layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.torch._layers import (
    activation_call,
    check_model,
    following,
    read_activations,
    role,
    weight_units,
)


def _read(model, mapping=None):
    found = read_activations(model, weight_units(model), mapping)
    return {name: item.label for name, item in found.items()}


def test_weight_units_treat_attention_as_one_and_skip_its_output_projection():
    layer = nn.TransformerEncoderLayer(16, 2, 32)
    units = weight_units(layer)
    assert [(unit.name, unit.kind) for unit in units] == [
        ("self_attn", "attention"),
        ("linear1", "linear"),
        ("linear2", "linear"),
    ]
    assert [key for key, _ in units[0].weights] == ["in_proj_weight", "out_proj.weight"]


def test_weight_units_of_convolutions_embeddings_and_a_custom_matrix():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.matrix = nn.Parameter(torch.ones(3, 4))

    model = nn.Sequential(nn.Conv1d(2, 3, 5), nn.Embedding(7, 3), Custom(), nn.BatchNorm1d(3))
    kinds = [(unit.name, unit.kind) for unit in weight_units(model)]
    assert kinds == [("0", "conv"), ("1", "embedding"), ("2", "other")]
    with pytest.raises(InvalidArgumentError, match="model: got Sequential with no weight layers"):
        weight_units(nn.Sequential(nn.ReLU(), nn.LayerNorm(3)))


@pytest.mark.parametrize(
    "layer",
    [nn.Linear(7, 3), nn.Conv2d(4, 6, (3, 5)), nn.Conv3d(2, 3, 2), nn.ConvTranspose2d(4, 5, 3)],
)
def test_fan_in_is_pytorchs(layer):
    (unit,) = weight_units(nn.Sequential(layer))
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    assert unit.fan_in() == fan_in


def test_channel_dim():
    conv, linear = weight_units(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Linear(4, 4)))
    assert conv.channel_dim(torch.zeros(2, 4, 5, 5)) == 1
    assert conv.channel_dim(torch.zeros(4, 5, 5)) == 0  # unbatched
    assert linear.channel_dim(torch.zeros(2, 9, 4)) == 2


def test_roles():
    assert role(nn.BatchNorm2d(3)) == role(nn.LayerNorm(3)) == role(nn.GroupNorm(1, 3)) == "norm"
    assert role(nn.Dropout()) == role(nn.MaxPool2d(2)) == role(nn.Flatten()) == "pass"
    assert role(nn.ReLU()) == role(nn.GELU()) == role(nn.PReLU()) == "activation"
    assert role(nn.Softmax(dim=1)) == role(nn.Sequential()) == "other"

    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    assert role(Swish()) == "activation"


def test_activation_calls_carry_their_arguments():
    leaky = activation_call(F.leaky_relu, (torch.zeros(1), 0.2), {"inplace": True})
    assert isinstance(leaky, nn.LeakyReLU) and leaky.negative_slope == 0.2
    gelu = activation_call(F.gelu, (torch.zeros(1),), {"approximate": "tanh"})
    assert isinstance(gelu, nn.GELU) and gelu.approximate == "tanh"
    assert isinstance(activation_call(torch.Tensor.relu_, (), {}), nn.ReLU)
    assert activation_call(torch.add, (), {}) is None


def test_sequential_order_skips_norm_dropout_and_pooling_and_reads_nested_blocks():
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)),
        nn.MaxPool2d(2),
        nn.Tanh(),
        nn.Conv2d(4, 4, 3),
        nn.Dropout(),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    assert _read(model) == {"0.0": "tanh", "3": "leaky_relu(0.2)", "7": "linear"}


def test_blocks_and_transformer_layers(models):
    read = _read(models.resnet())
    assert read["conv1"] == read["layer1.0.conv1"] == read["layer1.0.conv2"] == "relu"
    assert read["layer2.0.downsample.0"] == read["fc"] == "linear"
    gelu = nn.TransformerEncoderLayer(16, 2, 32, activation="gelu")
    assert _read(gelu) == {"self_attn": "linear", "linear1": "gelu (erf)", "linear2": "linear"}

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.outer = nn.Linear(4, 4), nn.Linear(4, 4)
            self.act = F.silu

    model = nn.Sequential(Block(), nn.Linear(4, 2))
    assert _read(model) == {"0.inner": "silu", "0.outer": "silu", "1": "linear"}


def test_a_mapping_overrides_and_is_checked():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    read = _read(model, {"0": "gelu", "1": nn.Mish()})
    assert read == {"0": "gelu", "1": "mish"}
    assert _read(model, {"0": F.silu})["0"] == "silu"
    with pytest.raises(
        InvalidArgumentError, match="activations: got layer '5'.*expected one of 0, 1"
    ):
        _read(model, {"5": "relu"})
    with pytest.raises(InvalidArgumentError, match="activations: got 'swish'"):
        _read(model, {"0": "swish"})
    with pytest.raises(InvalidTypeError, match="activations: got int"):
        following(3, "given")


def test_following_scales_and_gains_agree_with_pytorch_where_it_has_them():
    relu, tanh, linear = following("relu", ""), following("tanh", ""), following(None, "")
    assert relu.gain() == pytest.approx(nn.init.calculate_gain("relu"))
    assert tanh.gain() == pytest.approx(nn.init.calculate_gain("tanh"))
    assert linear.gain() == 1.0 and linear.linear
    assert relu.scale() == pytest.approx(2.0, rel=1e-9)
    # No PyTorch gain for GELU: the recommended forward scale instead.
    assert following(nn.GELU(), "").gain() == pytest.approx(following(nn.GELU(), "").scale() ** 0.5)


def test_check_model():
    with pytest.raises(InvalidTypeError, match="model: got list"):
        check_model([])
