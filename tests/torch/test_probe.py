"""gradprobe.torch.propagation: verdicts on real architectures, statistics against independent
recomputation, the model and PyTorch's state left alone, and bad input."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gradprobe.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    LossEvaluationError,
    ShapeMismatchError,
)
from gradprobe.torch import initialize_, propagation, rescale_

torch.set_num_threads(1)


def _snapshot(model):
    return {
        "state": {key: value.clone() for key, value in model.state_dict().items()},
        "flags": [module.training for module in model.modules()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "requires": [p.requires_grad for p in model.parameters()],
        "hooks": sum(
            len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
            for m in model.modules()
        ),
    }


def _assert_unchanged(model, snapshot):
    after = _snapshot(model)
    assert after["flags"] == snapshot["flags"]
    assert after["requires"] == snapshot["requires"]
    assert after["hooks"] == snapshot["hooks"]
    assert after["state"].keys() == snapshot["state"].keys()
    for key, value in snapshot["state"].items():
        assert torch.equal(after["state"][key], value), key
    for before, now in zip(snapshot["grads"], after["grads"], strict=True):
        assert (before is None and now is None) or torch.equal(before, now)


# -- the deep plain stacks of the issue -----------------------------------------------------


def test_default_init_relu_mlp_vanishes_early_and_the_advice_says_why(models):
    model = models.plain_mlp(depth=24)
    report = propagation(model, models.batch(128, 32))
    assert (report.verdict, report.direction) == ("vanishing", "forward")
    assert report.trouble_layer <= 6
    assert report.trouble_name == report.layers[report.trouble_layer - 1].name
    # PyTorch's default is kaiming_uniform_(a=√5): gain² = 2/(1+5), U(±gain·√(3/fan_in)).
    default = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5)) ** 2
    scales = report.column("weight_scale")
    assert np.allclose(scales, default, rtol=0.1)
    assert "1/(3·fan_in)" in report.advice and "2/fan_in" in report.advice
    assert "kaiming_normal_" in report.advice and "initialize_(model, 'he')" in report.advice
    assert report.advice.startswith("Enlarge the initial weights: layers 0, 2, …, 46 (24 layers)")


def test_he_and_rescale_make_the_relu_mlp_healthy(models):
    x = models.batch(128, 32)
    fixed = models.plain_mlp(depth=24)
    initialize_(fixed, "he")
    assert propagation(fixed, x).verdict == "healthy"
    rescaled = models.plain_mlp(depth=24)
    assert rescale_(rescaled, x).after.verdict == "healthy"
    assert propagation(rescaled, x).verdict == "healthy"


@pytest.mark.parametrize("seed", [0, 1])
def test_default_init_relu_cnn_vanishes_and_he_or_rescale_fix_it(models, seed):
    x = models.batch(16, 3, 8, 8, seed=seed)
    model = models.plain_cnn(depth=20, channels=32, seed=seed)
    report = propagation(model, x)
    assert report.verdict == "vanishing" and report.trouble_layer <= 6
    assert "1/(3·fan_in)" in report.advice
    # Convolutions: the dead-unit count is per channel, over the batch and all positions.
    assert all(0 <= layer.dead <= 1 for layer in report.layers)
    fixed = copy.deepcopy(model)
    initialize_(fixed, "he", seed=seed)
    assert propagation(fixed, x).verdict == "healthy"
    assert rescale_(copy.deepcopy(model), x).after.verdict == "healthy"


# -- healthy architectures: no false alarms -------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("transformer", (16, 8, 64)),
        ("transformer_batch_first", (8, 48, 64)),
        ("resnet", (32, 3, 16, 16)),
        ("resnet_32", (16, 3, 32, 32)),
        ("layernorm_mlp", (128, 32)),
    ],
)
def test_residual_normalized_and_attention_models_are_healthy(models, name, shape, seed):
    if name.startswith("transformer"):
        model = models.transformer(batch_first=name.endswith("first"), seed=seed)
    elif name.startswith("resnet"):
        model = models.resnet(seed=seed)
    else:
        model = models.layernorm_mlp(depth=20, seed=seed)
    report = propagation(model, models.batch(*shape, seed=seed))
    assert report.verdict == "healthy", report.summary
    assert report.advice.startswith("Nothing to change")


def test_transformer_layers_are_named_and_its_functional_relu_is_read(models):
    report = propagation(models.transformer(layers=2), models.batch(10, 4, 64))
    assert report.names == [
        "layers.0.self_attn",
        "layers.0.linear1",
        "layers.0.linear2",
        "layers.1.self_attn",
        "layers.1.linear1",
        "layers.1.linear2",
    ]
    activations = [layer.activation for layer in report.layers]
    assert activations == ["linear", "relu", "linear"] * 2


def test_resnet_convs_before_batch_norm_are_not_advised_on(models):
    report = propagation(models.resnet(), models.batch(16, 3, 16, 16))
    assert any("feed a normalization layer" in note for note in report.notes)


# -- trouble of other kinds -----------------------------------------------------------------


def test_tanh_stack_with_weights_times_three_has_exploding_gradients(models):
    report = propagation(models.tanh_mlp(depth=30, factor=3.0), models.batch(128, 32))
    assert (report.verdict, report.direction) == ("exploding", "backward")
    assert report.advice.startswith("Shrink the initial weights")
    # Independent route: the first layer's weight gradient dwarfs the last hidden one's.
    norms = report.column("gradient_norm")
    assert norms[0] > 100 * norms[-2]


def test_saturated_tanh_is_a_finding(models):
    report = propagation(models.tanh_mlp(depth=10, factor=10.0), models.batch(128, 32))
    assert any(finding.startswith("saturation:") for finding in report.findings)
    first = report.layers[0]
    assert first.saturated > 0.5 and first.activation == "tanh"


def test_a_stack_whose_relus_are_all_dead_is_flagged_dead(models):
    model = models.plain_mlp(depth=12)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.bias.fill_(-10.0)
    report = propagation(model, models.batch(64, 32))
    assert report.verdict == "vanishing"
    assert all(layer.dead == 1.0 for layer in report.layers[:-1])
    assert any("100% at layer 0" in finding for finding in report.findings)
    assert report.advice.startswith("Revive the dead units: every unit after layer 0")
    assert report.symmetric_layer is None


def test_zero_weights_are_symmetric(models):
    model = models.plain_mlp(depth=6)
    initialize_(model, "zeros")
    report = propagation(model, models.batch(64, 32))
    assert report.symmetric_layer == 1
    assert report.advice.startswith("Break the symmetry")


def test_overflow_in_float32_is_a_finding_not_a_crash(models):
    model = models.plain_mlp(depth=40)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.weight.mul_(30.0)
    # The premise: float32 overflows (30²/6 = 150 per layer, 150^20 > 3.4e38).
    with torch.no_grad():
        assert not torch.isfinite(model(models.batch(8, 32))).all()
    report = propagation(model, models.batch(8, 32))
    assert report.verdict == "exploding" and report.overflow_layer is not None
    assert report.summary.startswith("exploding: overflow at layer")
    assert any(finding.startswith("overflow:") for finding in report.findings)
    assert any("float32" in note for note in report.notes)


# -- the statistics, against an independent recomputation -----------------------------------


def test_statistics_match_a_plain_forward_and_backward(models):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 6), nn.Tanh(), nn.Linear(6, 3))
    x = models.batch(11, 5)
    report = propagation(model, x, seed=4)
    # The same probe, by hand: J = Σ G ⊙ y / m with G from seed 4.
    reference = copy.deepcopy(model)
    inputs = x.clone().requires_grad_(True)
    z1 = reference[0](inputs)
    a1 = torch.relu(z1)
    z2 = reference[2](a1)
    a2 = torch.tanh(z2)
    y = reference[4](a2)
    for tensor in (z1, z2, y):
        tensor.retain_grad()
    probe = torch.randn(y.shape, generator=torch.Generator().manual_seed(4))
    ((probe * y).sum() / 11).backward()
    rows = report.layers
    expected = [(inputs, z1, a1), (a1, z2, a2), (a2, y, y)]
    for row, (entering, z, a), linear in zip(rows, expected, reference[::2], strict=True):
        assert row.input_moment == pytest.approx(float(entering.detach().double().square().mean()))
        assert row.preactivation_moment == pytest.approx(float(z.detach().double().square().mean()))
        assert row.mean == pytest.approx(float(a.detach().double().mean()), abs=1e-7)
        assert row.std == pytest.approx(float(a.detach().double().std(unbiased=False)), rel=1e-5)
        assert row.gradient_norm == pytest.approx(float(linear.weight.grad.norm()), rel=1e-5)
        assert row.backward_moment == pytest.approx(
            float(z.grad.double().square().mean()), rel=1e-5
        )
        fan_in = linear.weight.shape[1]
        scale = fan_in * float(linear.weight.detach().double().square().mean())
        assert row.weight_scale == pytest.approx(scale)
    assert rows[0].input_gradient == pytest.approx(float(inputs.grad.double().square().mean()))
    assert rows[0].gradient_ratio == pytest.approx(rows[0].gradient_norm / rows[1].gradient_norm)
    assert [row.activation for row in rows] == ["relu", "tanh", "linear"]


def test_the_users_loss_gives_the_backward_signal(models):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x, labels = models.batch(20, 8), torch.arange(20) % 4
    report = propagation(model, x, loss_fn=F.cross_entropy, targets=labels)
    reference = copy.deepcopy(model)
    F.cross_entropy(reference(x), labels).backward()
    assert report.layers[0].gradient_norm == pytest.approx(float(reference[0].weight.grad.norm()))
    assert any("loss_fn" in note for note in report.notes)
    assert propagation(model, x, seed=1).layers[0].gradient_norm != pytest.approx(
        report.layers[0].gradient_norm
    )


def test_dead_units_are_counted_per_channel_in_a_convolution(models):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    with torch.no_grad():
        model[0].bias[:2] = -100.0  # channels 0 and 1 never fire
    report = propagation(model, models.batch(6, 3, 9, 9))
    assert report.layers[0].dead == pytest.approx(2 / 8)


def test_functional_and_custom_activations_are_read_from_the_forward_pass(models):
    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second, self.swish = nn.Linear(8, 8), nn.Linear(8, 8), Swish()
            self.norm, self.head = nn.LayerNorm(8), nn.Linear(8, 2)

        def forward(self, x):
            x = F.gelu(self.norm(self.first(x)))
            x = self.swish(F.dropout(self.second(x), 0.5, self.training))
            return self.head(x)

    report = propagation(Block(), models.batch(32, 8))
    assert [layer.activation for layer in report.layers] == ["gelu (erf)", "Swish", "linear"]


def test_token_ids_and_an_embedding(models):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 5))
    tokens = torch.randint(0, 50, (32, 6), generator=torch.Generator().manual_seed(0))
    report = propagation(model, tokens)
    assert report.names == ["0", "1", "3"]
    assert report.layers[0].input_moment is None


# -- nothing changes ------------------------------------------------------------------------


def test_model_inputs_and_pytorch_state_are_left_alone(models):
    model = models.resnet()
    model.layer2.eval()  # mixed flags
    for parameter in model.fc.parameters():
        parameter.grad = torch.ones_like(parameter)
    model.conv1.weight.requires_grad_(False)
    snapshot = _snapshot(model)
    x = models.batch(8, 3, 16, 16)
    x_before = x.clone()
    rng = torch.get_rng_state()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    with torch.no_grad():
        report = propagation(model, x)
        assert not torch.is_grad_enabled()
    assert report.verdict == "healthy"
    _assert_unchanged(model, snapshot)
    assert torch.equal(x, x_before) and not x.requires_grad
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.get_default_dtype() == torch.float32
    assert torch.backends.mha.get_fastpath_enabled() == fastpath
    assert any("training mode" in note for note in report.notes)


def test_batch_norm_running_statistics_are_restored_in_either_mode(models):
    model = models.resnet()
    snapshot = _snapshot(model)
    propagation(model, models.batch(8, 3, 16, 16), training=True)
    propagation(model, models.batch(8, 3, 16, 16), training=False)
    _assert_unchanged(model, snapshot)


def test_float64_models_are_probed_in_float64(models):
    model = models.plain_mlp(depth=4).double()
    report = propagation(model, models.batch(16, 32).double())
    assert any(note.startswith("probed in float64") for note in report.notes)


def test_report_rendering(models):
    report = propagation(models.plain_mlp(depth=6), models.batch(32, 32))
    text = str(report)
    assert "E[X²]" in text and "note: probed in float32" in text
    assert text.splitlines()[0].startswith("signal propagation through 6 layers (relu)")
    data = report.to_dict()
    assert data["layers"][0]["name"] == "0" and data["trouble_name"] == report.trouble_name
    json.dumps(data, allow_nan=True)


# -- bad input ------------------------------------------------------------------------------


def test_a_model_without_weight_layers_is_refused(models):
    with pytest.raises(InvalidArgumentError, match="model: got Sequential with no weight layers"):
        propagation(nn.Sequential(nn.ReLU(), nn.Tanh()), models.batch(4, 3))


def test_x_of_the_wrong_shape_wraps_the_models_own_error_and_names_x(models):
    model = models.plain_mlp(depth=4)
    snapshot = _snapshot(model)
    with pytest.raises(ShapeMismatchError, match=r"x: got shape \(16, 5\).*layer 0") as caught:
        propagation(model, models.batch(16, 5))
    assert "mat1 and mat2" in str(caught.value)
    assert isinstance(caught.value.__cause__, RuntimeError)
    _assert_unchanged(model, snapshot)


def test_a_forward_that_raises_is_wrapped_and_leaves_the_model_unchanged(models):
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer, self.norm = nn.Linear(4, 4), nn.BatchNorm1d(4)

        def forward(self, x):
            self.norm(self.layer(x))  # updates the running statistics, then fails
            raise ValueError("boom")

    model = Broken()
    snapshot = _snapshot(model)
    with pytest.raises(LossEvaluationError, match="model: its forward raised ValueError.*boom"):
        propagation(model, models.batch(8, 4))
    _assert_unchanged(model, snapshot)


def test_other_bad_arguments(models):
    model = models.plain_mlp(depth=3)
    x = models.batch(8, 32)
    with pytest.raises(InvalidTypeError, match="model: got dict"):
        propagation({}, x)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="x: got str"):
        propagation(model, "x")
    with pytest.raises(InvalidTypeError, match="loss_fn: got int"):
        propagation(model, x, loss_fn=3)  # type: ignore[arg-type]
    with pytest.raises(LossEvaluationError, match="loss_fn: returned Tensor of shape"):
        propagation(model, x, loss_fn=lambda y: y)
    with pytest.raises(InvalidArgumentError, match="x: got a batch of all zeros"):
        propagation(model, torch.zeros(8, 32))
    with pytest.raises(InvalidArgumentError, match="tolerance"):
        propagation(model, x, tolerance=0.5)
    # A NumPy batch is converted to the model's dtype.
    assert propagation(model, x.numpy().astype(np.float64)).depth == 3
