"""gradprobe.torch._hooks: moments, sites in forward order, the activation chain, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gradprobe.signals.judge import moment
from gradprobe.torch._hooks import moments, record
from gradprobe.torch._layers import weight_units
from gradprobe.torch._state import borrowed


def _record(model, *inputs, loss_fn=None, targets=None):
    units = weight_units(model)
    with borrowed(model, True):
        return record(model, inputs, units, loss_fn, targets, 0)


def test_moments_agree_with_numpy_and_do_not_overflow():
    values = torch.randn(50, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    measured = moments(values)
    array = values.numpy()
    assert measured.mean == pytest.approx(array.mean())
    assert measured.std == pytest.approx(array.std())
    assert measured.second == pytest.approx(np.mean(array**2))
    huge = values * 1e150  # its square overflows, the second moment does not
    assert moments(huge).second == pytest.approx(moment(huge.numpy()), rel=1e-12)
    assert moments(huge * 1e50).second == math.inf
    assert not moments(torch.tensor([1.0, math.inf])).finite


def test_sites_come_in_forward_order_and_repeated_calls_are_numbered():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.later, self.shared = nn.Linear(4, 2), nn.Linear(4, 4)

        def forward(self, x):
            return self.later(self.shared(torch.relu(self.shared(x))))

    recording = _record(Twice(), torch.randn(3, 4))
    assert [site.name for site in recording.sites] == ["shared", "shared#2", "later"]
    assert recording.sites[0].activation is not None  # torch.relu, a function


def test_the_chain_follows_norm_pooling_and_views_to_an_in_place_activation():
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.MaxPool2d(2),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(64, 3),
    )
    x = torch.randn(5, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    recording = _record(model, x)
    conv, linear = recording.sites
    assert conv.normalized and isinstance(conv.activation, nn.ReLU)
    with torch.no_grad():
        model.train()
        expected = model[3](model[2](model[1](model[0](x))))
    assert conv.active.second == pytest.approx(float(expected.double().square().mean()))
    assert not linear.normalized and linear.activation is None


def test_gradient_hooks_see_the_pre_activation_gradient_despite_in_place_relu():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(inplace=True), nn.Linear(5, 2))
    x = torch.randn(7, 3)
    recording = _record(model, x, loss_fn=lambda y: y.square().sum())
    z = model[0](x)
    z.retain_grad()
    model[2](F.relu(z)).square().sum().backward()
    first = recording.sites[0]
    assert first.output_gradient.second == pytest.approx(float(z.grad.double().square().mean()))
    model.zero_grad()


def test_output_gradient_total_is_the_gradient_at_the_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4))
    x = torch.randn(6, 3)
    recording = _record(model, x, loss_fn=lambda y: (y**2).sum() / 2)
    with torch.no_grad():
        y = model(x)
    assert recording.output_gradient_total == pytest.approx(float(y.double().square().sum()))
