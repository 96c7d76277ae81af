"""gradprobe.torch.initialize_: each layer for its activation, against torch.nn.init itself, and
the training it buys on real data."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gradprobe import recommend_scale
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.torch import initialize_
from gradprobe.torch.initialize import SCHEMES

torch.set_num_threads(1)


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(30, 40), nn.ReLU(), nn.Linear(40, 50), nn.Tanh(), nn.Linear(50, 10)
    )


def test_he_is_kaiming_normal_with_the_gain_of_each_layers_activation():
    model, reference = _mlp(), _mlp()
    initialize_(model, "he", seed=7)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for index, nonlinearity in ((0, "relu"), (2, "tanh"), (4, "linear")):
            nn.init.kaiming_normal_(
                reference[index].weight, nonlinearity=nonlinearity, generator=generator
            )
            reference[index].bias.zero_()
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(mine, theirs)


@pytest.mark.parametrize("scheme", ["xavier", "orthogonal"])
def test_xavier_and_orthogonal_are_pytorchs_with_calculate_gain(scheme):
    model, reference = _mlp(), _mlp()
    initialize_(model, scheme, seed=3)
    generator = torch.Generator().manual_seed(3)
    function = nn.init.xavier_normal_ if scheme == "xavier" else nn.init.orthogonal_
    with torch.no_grad():
        for index, nonlinearity in ((0, "relu"), (2, "tanh"), (4, "linear")):
            gain = nn.init.calculate_gain(nonlinearity)
            function(reference[index].weight, gain=gain, generator=generator)
    for index in (0, 2, 4):
        assert torch.equal(model[index].weight, reference[index].weight)


def test_auto_uses_recommend_scale_even_for_activations_pytorch_has_no_gain_for():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(400, 400), nn.GELU(), nn.Linear(400, 400), nn.Mish())
    done = initialize_(model, "auto")
    for index, activation in ((0, nn.GELU()), (2, nn.Mish())):
        expected = recommend_scale(activation).forward
        measured = 400 * float(model[index].weight.detach().double().square().mean())
        assert measured == pytest.approx(expected, rel=0.03)
    assert [layer.activation for layer in done.layers] == ["gelu (erf)", "mish"]
    with pytest.raises(ValueError):
        nn.init.calculate_gain("gelu")  # type: ignore[arg-type]


def test_default_is_reset_parameters_under_the_seed_and_leaves_the_global_rng():
    model, reference = _mlp(), _mlp()
    rng = torch.get_rng_state()
    initialize_(model, "default", seed=5)
    assert torch.equal(torch.get_rng_state(), rng)
    torch.manual_seed(5)
    reference[0].reset_parameters()
    assert torch.equal(model[0].weight, reference[0].weight)
    assert torch.equal(model[0].bias, reference[0].bias)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_is_seeded_in_place_and_leaves_the_global_rng(scheme):
    first, second = _mlp(), _mlp()
    rng = torch.get_rng_state()
    done = initialize_(first, scheme, seed=1)
    initialize_(second, scheme, seed=1)
    assert torch.equal(torch.get_rng_state(), rng)
    for mine, theirs in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(mine, theirs)
    assert done.scheme == scheme and len(done.layers) == 3
    if scheme != "default":
        assert all(float(layer.bias.detach().abs().max()) == 0 for layer in first[::2])


def test_variances_for_the_simple_schemes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(500, 500), nn.ReLU(), nn.Linear(500, 500))
    expected = {"zeros": 0.0, "small": 500 * 1e-4, "large": 500 * 100.0, "lecun": 1.0}
    for scheme, scale in expected.items():
        done = initialize_(model, scheme)
        assert done.layers[0].weight_scale == pytest.approx(scale, rel=0.02, abs=1e-12)


def test_attention_projections_and_embeddings():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(20, 64), nn.TransformerEncoderLayer(64, 4, 128))
    table = model[0].weight.detach().clone()
    done = initialize_(model, "he")
    assert torch.equal(model[0].weight, table)  # a lookup table is left as it is
    attention = model[1].self_attn
    assert 64 * float(attention.in_proj_weight.detach().double().square().mean()) == pytest.approx(
        1, rel=0.05
    )
    assert float(attention.in_proj_bias.detach().abs().max()) == 0
    rows = {layer.name: layer for layer in done.layers}
    assert not rows["0"].changed and rows["1.linear1"].activation == "relu"
    assert rows["1.linear1"].weight_scale == pytest.approx(2.0, rel=0.05)
    assert "as is" in str(done)


def test_bad_input_leaves_the_model_unchanged():
    model = _mlp()
    before = [parameter.clone() for parameter in model.parameters()]
    with pytest.raises(InvalidArgumentError, match="scheme: got 'kaiming'"):
        initialize_(model, "kaiming")
    with pytest.raises(InvalidArgumentError, match="activations: got layer 'net.9'"):
        initialize_(model, "he", activations={"net.9": "relu"})
    with pytest.raises(InvalidArgumentError, match="activations: got layer '1'"):
        initialize_(model, "he", activations={"1": "relu"})  # the ReLU, not a weight layer
    with pytest.raises(InvalidTypeError, match="activations: got list"):
        initialize_(model, "he", activations=["relu"])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="no weight layers"):
        initialize_(nn.Sequential(nn.ReLU()))
    for parameter, value in zip(model.parameters(), before, strict=True):
        assert torch.equal(parameter, value)


def test_a_mapping_sets_the_activation_the_model_does_not_show():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 300), nn.Linear(300, 10))
    done = initialize_(model, "he", activations={"0": "relu"})
    assert done.layers[0].source == "given"
    assert done.layers[0].weight_scale == pytest.approx(2.0, rel=0.05)


def test_he_fixed_model_trains_far_better_on_digits(models):
    X, y = models.digits()
    original = models.plain_mlp(depth=20, width=64, inputs=64, outputs=10)
    fixed = copy.deepcopy(original)
    initialize_(fixed, "he")
    before, after = models.train(original, X, y), models.train(fixed, X, y)
    assert before > 2.2  # ln 10 = 2.30: the original barely moves from chance
    assert after < 0.5 * before
