"""gradprobe.torch._state.borrowed: the probe's mode in, everything restored out."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradprobe.torch._state import borrowed, kept


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5), nn.Linear(3, 1))


def test_probe_mode_inside_and_everything_back_outside_even_after_an_error():
    model = _model().eval()
    model[0].weight.grad = torch.ones(3, 3)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    rng = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="inside"), borrowed(model, True):
        assert model.training and model[1].training and not model[2].training
        assert torch.is_grad_enabled() and not torch.backends.mha.get_fastpath_enabled()
        model(torch.randn(4, 3))  # moves the running statistics, draws random numbers
        with torch.no_grad():
            model[0].weight.add_(1.0)
        torch.set_default_dtype(torch.float64)
        raise RuntimeError("inside")
    assert not any(module.training for module in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert torch.equal(model[0].weight.grad, torch.ones(3, 3))
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.get_default_dtype() == torch.float32
    assert torch.backends.mha.get_fastpath_enabled()


def test_parameters_can_be_kept_while_buffers_are_restored():
    model = _model()
    running = model[1].running_mean.clone()
    with borrowed(model, False, parameters=False):
        assert not model.training
        model.train()
        model(torch.randn(4, 3))
        with torch.no_grad():
            model[0].weight.mul_(2.0)
        kept = model[0].weight.detach().clone()
    assert torch.equal(model[0].weight, kept)
    assert torch.equal(model[1].running_mean, running)
    assert model.training


def test_kept_puts_flags_and_values_back_into_the_same_tensors():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).train()
    weight, mean = model[0].weight, model[1].running_mean
    before = (weight.detach().clone(), mean.clone(), weight._version)
    with pytest.raises(RuntimeError, match="boom"), kept(model):
        model.eval()
        with torch.no_grad():
            weight.add_(1.0)
            mean.fill_(5.0)
        raise RuntimeError("boom")
    assert model.training and model[1].training
    assert model[0].weight is weight and torch.equal(weight, before[0])
    assert torch.equal(model[1].running_mean, before[1])
    unchanged = nn.Linear(2, 2)
    version = unchanged.weight._version
    with kept(unchanged):
        pass
    assert unchanged.weight._version == version  # nothing changed, nothing copied
