"""The architectures the PyTorch signal tests probe, each built from a seed (``models``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn


def plain_mlp(depth=24, width=64, inputs=32, outputs=10, activation=nn.ReLU, seed=0):
    """``depth`` Linear layers with ``activation`` between them, PyTorch's default init."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(inputs, width), activation()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), activation()]
    return nn.Sequential(*layers, nn.Linear(width, outputs))


def plain_cnn(depth=20, channels=16, outputs=10, seed=0):
    """``depth`` 3×3 convolutions with ReLU, global average pooling and a Linear head."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, outputs)
    )


def layernorm_mlp(depth=20, width=64, inputs=32, outputs=10, seed=0):
    """Linear → LayerNorm → ReLU blocks, PyTorch's default init."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    size = inputs
    for _ in range(depth - 1):
        layers += [nn.Linear(size, width), nn.LayerNorm(width), nn.ReLU()]
        size = width
    return nn.Sequential(*layers, nn.Linear(width, outputs))


def transformer(layers=6, width=64, heads=4, batch_first=False, seed=0):
    """``nn.TransformerEncoder`` with PyTorch's default init (post-norm layers)."""
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(
        width, heads, dim_feedforward=2 * width, batch_first=batch_first
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class BasicBlock(nn.Module):
    """torchvision's ResNet block: conv-BN-ReLU-conv-BN, plus the shortcut, then ReLU."""

    def __init__(self, inputs, outputs, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A small ResNet: stem, three stages of two blocks, global pooling, a Linear head."""

    def __init__(self, outputs=10, width=16):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        stages, inputs = [], width
        for stage, stride in enumerate((1, 2, 2)):
            channels = width * 2**stage
            stages.append(
                nn.Sequential(BasicBlock(inputs, channels, stride), BasicBlock(channels, channels))
            )
            inputs = channels
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inputs, outputs)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(seed=0, width=16):
    torch.manual_seed(seed)
    return ResNet(width=width)


def tanh_mlp(depth=30, width=64, factor=3.0, seed=0):
    """A tanh stack with Xavier weights (σ_w² = 1, the tanh-appropriate scale) times ``factor``."""
    model = plain_mlp(depth, width, activation=nn.Tanh, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight, generator=generator)
                module.weight.mul_(factor)
                module.bias.zero_()
    return model


def batch(*shape, seed=1):
    """A standard-normal probe batch from its own generator."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def digits():
    """scikit-learn's digits (bundled, no download), each feature standardized."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def train(model, X, y, steps=150, lr=0.01):
    """Minibatch SGD with momentum on cross-entropy; returns the loss on all of ``X``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        index = torch.randint(0, len(X), (128,), generator=generator)
        loss = nn.functional.cross_entropy(model(X[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(X), y))


@pytest.fixture(scope="session")
def models():
    """The builders above, for the tests of gradprobe.torch's signal functions."""
    names = ["plain_mlp", "plain_cnn", "layernorm_mlp", "transformer", "resnet", "tanh_mlp"]
    helpers = {"batch": batch, "digits": digits, "train": train}
    return SimpleNamespace(**{name: globals()[name] for name in names}, **helpers)
