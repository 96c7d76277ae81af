"""gradprobe.torch.rescale_ (LSUV) side by side with the lsuv package, and what it leaves alone."""

from __future__ import annotations

import copy
import warnings

import lsuv
import pytest
import torch
from torch import nn

from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.torch import propagation, rescale_

torch.set_num_threads(1)


def _weights(model):
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def _output_stds(model, x):
    """The std of every weight layer's output, by forward hooks, in eval mode."""
    stds, handles = [], []
    for module in _weights(model):
        handles.append(
            module.register_forward_hook(lambda m, a, out: stds.append(float(out.std())))
        )
    model.eval()
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return stds


def _lsuv(model, x, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lsuv.lsuv_with_singlebatch(model, x, verbose=False, **options)


def test_scales_agree_with_the_lsuv_package_where_each_layer_takes_one_step(models):
    x = models.batch(128, 32)
    original = models.plain_mlp(depth=24)
    theirs = _lsuv(copy.deepcopy(original), x, needed_std=1.0, std_tol=0.05, do_orthonorm=False)
    mine = copy.deepcopy(original)
    result = rescale_(mine, x, target=1.0, tol=0.05)
    applied = [
        float(after.weight.detach().norm() / before.weight.detach().norm())
        for after, before in zip(_weights(theirs), _weights(original), strict=True)
    ]
    assert list(result.scales.values()) == pytest.approx(applied, rel=1e-5)
    for a, b in zip(_weights(mine), _weights(theirs), strict=True):
        torch.testing.assert_close(a.weight, b.weight, rtol=1e-5, atol=1e-7)
    # gradprobe's verdict on both: vanishing before, healthy after.
    assert (result.before.verdict, result.after.verdict) == ("vanishing", "healthy")
    assert propagation(theirs, x).verdict == "healthy"


def test_where_a_layer_needs_several_steps_ours_reach_the_target_and_lsuvs_first_layer_does_not(
    models,
):
    # lsuv 0.3.0 keeps its layer counter across one layer's corrections, so the second and
    # later corrections of layer k > 0 land on the first layer: its output std drifts off.
    x = models.batch(16, 3, 32, 32)
    original = models.plain_cnn(depth=20, channels=8)
    mine = copy.deepcopy(original)
    result = rescale_(mine, x, tol=0.05)
    theirs = _lsuv(copy.deepcopy(original), x, std_tol=0.05, do_orthonorm=False)
    assert any(layer.iterations > 1 for layer in result.layers)
    ours, lsuvs = _output_stds(mine, x), _output_stds(theirs, x)
    assert all(abs(std - 1) <= 0.051 for std in ours)
    assert abs(lsuvs[0] - 1) > 0.2
    assert result.converged and result.after.verdict == "healthy"


def test_orthogonal_pre_initialization_like_lsuvs_default(models):
    x = models.batch(128, 32)
    original = models.plain_mlp(depth=24)
    rng = torch.get_rng_state()
    mine = copy.deepcopy(original)
    result = rescale_(mine, x, orthogonal=True, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)
    assert result.orthogonal and result.after.verdict == "healthy"
    assert all(float(layer.bias.detach().abs().max()) == 0 for layer in _weights(mine))
    torch.manual_seed(3)
    theirs = _lsuv(copy.deepcopy(original), x, std_tol=0.05, do_orthonorm=True)
    assert propagation(theirs, x).verdict == "healthy"


def test_buffers_flags_and_rng_are_left_while_weights_change(models):
    model = models.resnet()
    model.eval()
    buffers = {key: value.clone() for key, value in model.named_buffers()}
    weight = model.fc.weight.detach().clone()
    rng = torch.get_rng_state()
    result = rescale_(model, models.batch(16, 3, 16, 16))
    for key, value in model.named_buffers():
        assert torch.equal(value, buffers[key]), key
    assert not any(module.training for module in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)
    assert not torch.equal(model.fc.weight, weight)
    assert result.scales["fc"] == pytest.approx(
        float(model.fc.weight.detach().norm() / weight.norm()), rel=1e-5
    )
    assert result.after.verdict == "healthy"


def test_report_skips_and_convergence(models):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(30, 16), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 4))
    tokens = torch.randint(0, 30, (64, 5), generator=torch.Generator().manual_seed(0))
    result = rescale_(model, tokens, max_iter=1, tol=1e-6)
    assert result.skipped == ("0 (embedding layers are not rescaled)",)
    assert [layer.name for layer in result.layers] == ["1", "3"]
    assert not result.converged and all(layer.iterations == 1 for layer in result.layers)
    text = str(result)
    assert "(not converged)" in text and "skipped: 0" in text and text.startswith("rescaled")


def test_bad_arguments(models):
    model, x = models.plain_mlp(depth=3), models.batch(8, 32)
    with pytest.raises(InvalidArgumentError, match="target"):
        rescale_(model, x, target=0.0)
    with pytest.raises(InvalidArgumentError, match="max_iter"):
        rescale_(model, x, max_iter=0)
    with pytest.raises(InvalidArgumentError, match="tol"):
        rescale_(model, x, tol=-1.0)
    with pytest.raises(InvalidTypeError, match="orthogonal: got str"):
        rescale_(model, x, orthogonal="yes")  # type: ignore[arg-type]


def test_rescaled_model_trains_far_better_on_digits(models):
    X, y = models.digits()
    original = models.plain_mlp(depth=20, width=64, inputs=64, outputs=10)
    fixed = copy.deepcopy(original)
    rescale_(fixed, X[:256])
    before, after = models.train(original, X, y), models.train(fixed, X, y)
    assert before > 2.2 and after < 0.5 * before
