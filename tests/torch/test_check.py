"""Tests of gradprobe.torch: custom autograd Functions, modules, kinks, and agreement with PyTorch.

Every planted bug is run through both gradprobe and ``torch.autograd.gradcheck``:
both must fail, and gradprobe must also name the tensor and entry.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from gradprobe.check.report import GradCheckReport
from gradprobe.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    LossEvaluationError,
    NondeterministicLossError,
)
from gradprobe.torch import check_function, check_module, check_namespace

nn = torch.nn
F = torch.nn.functional

# The test machines are shared: one thread avoids oversubscription stalls.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)


def _function(forward: Callable[..., Any], backward: Callable[..., Any]) -> Any:
    """Build a custom autograd.Function from a forward and a backward(inputs, grad)."""

    class Custom(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *inputs: Any) -> Any:
            ctx.save_for_backward(*inputs)
            return forward(*inputs)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return backward(*ctx.saved_tensors, grad)

    return Custom.apply


def _corrupt_entry(grad: Any, index: tuple[int, ...]) -> Any:
    grad = grad.clone()
    grad[index] += 0.5
    return grad


# name: (forward, correct backward, buggy backward or None)
CASES: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]] = {
    "cube": (
        lambda x: x**3,
        lambda x, g: (3 * x**2 * g,),
        lambda x, g: (2 * 3 * x**2 * g,),  # a factor of 2
    ),
    "matmul": (
        lambda a, b: a @ b,
        lambda a, b, g: (g @ b.T, a.T @ g),
        lambda a, b, g: ((g @ b.T).T, a.T @ g),  # transposed gradient of the first input
    ),
    "x_sin_x": (
        lambda x: x * torch.sin(x),
        lambda x, g: ((torch.sin(x) + x * torch.cos(x)) * g,),
        lambda x, g: (x * torch.cos(x) * g,),  # the product rule's sin(x) term missing
    ),
    "add_bias": (
        lambda x, b: torch.tanh(x + b),
        lambda x, b, g: (
            g * (1 - torch.tanh(x + b) ** 2),
            (g * (1 - torch.tanh(x + b) ** 2)).sum(0),
        ),
        lambda x, b, g: (
            g * (1 - torch.tanh(x + b) ** 2),
            (g * (1 - torch.tanh(x + b) ** 2)).mean(0),  # broadcast reduced with mean, not sum
        ),
    ),
    "sigmoid": (
        torch.sigmoid,
        lambda x, g: (torch.sigmoid(x) * (1 - torch.sigmoid(x)) * g,),
        lambda x, g: (_corrupt_entry(torch.sigmoid(x) * (1 - torch.sigmoid(x)) * g, (1, 2)),),
    ),
    "row_norms": (  # a reduction: (m, n) -> (m,)
        lambda x: (x**2).sum(1).sqrt(),
        lambda x, g: (x / (x**2).sum(1, keepdim=True).sqrt() * g[:, None],),
        None,
    ),
    "softplus": (
        lambda x: torch.log1p(torch.exp(x)),
        lambda x, g: (torch.sigmoid(x) * g,),
        None,
    ),
}
SHAPES = {
    "cube": [(3, 4)],
    "matmul": [(3, 3), (3, 3)],
    "x_sin_x": [(5,)],
    "add_bias": [(4, 3), (3,)],
    "sigmoid": [(3, 4)],
    "row_norms": [(4, 3)],
    "softplus": [(2, 3)],
}
# name: (the input that must fail, the entry it must be pinned to or None, diagnosis words)
BUGS = {
    "cube": ("input0", None, "constant factor"),
    "matmul": ("input0", None, "transpose"),
    "x_sin_x": ("input0", None, None),
    "add_bias": ("input1", None, "constant factor"),
    "sigmoid": ("input0", "input0[1, 2]", "entr"),
}


def _inputs(name: str) -> list[Any]:
    generator = torch.Generator().manual_seed(7)
    return [
        torch.randn(shape, generator=generator, dtype=torch.float32) + 0.1 for shape in SHAPES[name]
    ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_correct_custom_functions_pass(name: str) -> None:
    forward, backward, _ = CASES[name]
    inputs = _inputs(name)
    before = [x.clone() for x in inputs]
    report = check_function(_function(forward, backward), *inputs)
    assert isinstance(report, GradCheckReport)
    assert report.verdict == "ok", str(report)
    assert [row.name for row in report.parameters] == [f"input{i}" for i in range(len(inputs))]
    assert report.checked == sum(x.numel() for x in inputs)
    for x, y in zip(inputs, before, strict=True):  # the caller's tensors are untouched
        assert x.dtype == torch.float32 and torch.equal(x, y)
    assert "float32 parameters promoted to float64" in " ".join(report.notes)


@pytest.mark.parametrize("name", sorted(BUGS))
def test_planted_bugs_fail_pinned_and_torch_gradcheck_agrees(name: str) -> None:
    forward, _, buggy = CASES[name]
    wrong, entry, words = BUGS[name]
    inputs = _inputs(name)
    report = check_function(_function(forward, buggy), *inputs)
    assert report.verdict == "wrong", str(report)
    assert report.wrong_parameters == [wrong]
    assert report.worst(1)[0].parameter == wrong
    if entry is not None:
        assert report.worst(1)[0].name == entry
        assert report.parameter(wrong).largest_error_at == entry
        assert report.worst(2)[1].relative_error < 1e-6  # only that entry is wrong
    if words is not None:
        assert words in (report.parameter(wrong).diagnosis or "")
    doubles = tuple(x.double().requires_grad_(True) for x in inputs)
    assert not torch.autograd.gradcheck(_function(forward, buggy), doubles, raise_exception=False)
    correct = _function(forward, CASES[name][1])
    assert torch.autograd.gradcheck(correct, doubles, raise_exception=False)


def test_numerical_values_match_an_independent_difference_loop() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x, y = torch.randn(6, 3), torch.randint(0, 2, (6,))
    report = check_module(net, x, F.cross_entropy, y, batch_size=4)
    assert not any("vmap" in note for note in report.notes)  # the batched route ran
    net64 = copy.deepcopy(net).double()
    weight = dict(net64.named_parameters())["2.weight"]
    for entry in [e for e in report.entries if e.parameter == "2.weight"][:4]:
        h = 1e-6
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                weight[entry.index] += sign * h
                values.append(float(F.cross_entropy(net64(x.double()), y)))
                weight[entry.index] -= sign * h
        assert entry.numerical == pytest.approx((values[0] - values[1]) / (2 * h), rel=1e-6)


def _snapshot(module: Any) -> dict[str, Any]:
    return {
        "state": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "training": [m.training for m in module.modules()],
        "dtypes": [p.dtype for p in module.parameters()],
    }


def _assert_unchanged(module: Any, snapshot: dict[str, Any]) -> None:
    state = module.state_dict()
    assert state.keys() == snapshot["state"].keys()
    for key, value in snapshot["state"].items():
        assert torch.equal(state[key], value), key
    assert [m.training for m in module.modules()] == snapshot["training"]
    assert [p.dtype for p in module.parameters()] == snapshot["dtypes"]
    assert all(p.grad is None for p in module.parameters())


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(3 * 2 * 2, 2)

    def forward(self, x: Any) -> Any:
        return self.head(self.pool(torch.tanh(self.conv(x))).flatten(1))


def _modules() -> dict[str, tuple[Any, Any, Any]]:
    mlp = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    regularized = nn.Sequential(
        nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3)
    )
    regularized.train()
    with torch.no_grad():  # non-trivial running statistics
        regularized(torch.randn(16, 4) * 2 + 1)
    return {
        "mlp": (mlp, torch.randn(8, 4), torch.randint(0, 3, (8,))),
        "cnn": (SmallCNN(), torch.randn(2, 1, 6, 6), torch.randint(0, 2, (2,))),
        "dropout_batchnorm": (regularized, torch.randn(8, 4), torch.randint(0, 3, (8,))),
    }


@pytest.mark.parametrize("name", ["mlp", "cnn", "dropout_batchnorm"])
def test_check_module_passes_and_leaves_the_module_unchanged(name: str) -> None:
    module, x, y = _modules()[name]
    snapshot = _snapshot(module)
    report = check_module(module, x, F.cross_entropy, y)
    assert report.verdict == "ok", str(report)
    assert [row.name for row in report.parameters] == [n for n, _ in module.named_parameters()]
    assert report.checked == sum(p.numel() for p in module.parameters())
    _assert_unchanged(module, snapshot)
    assert any("eval mode" in note for note in report.notes)
    assert report.dtype == "float32"


def test_module_with_a_buggy_custom_layer_names_the_parameter() -> None:
    def buggy_backward(x: Any, w: Any, g: Any) -> Any:
        return g @ w, 2 * g.T @ x  # the weight's gradient doubled

    linear = _function(lambda x, w: x @ w.T, buggy_backward)

    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = nn.Linear(3, 4)
            self.out = nn.Parameter(torch.randn(2, 4))

        def forward(self, x: Any) -> Any:
            return linear(torch.tanh(self.hidden(x)), self.out)

    report = check_module(Custom(), torch.randn(5, 3), check_inputs=True)
    assert report.verdict == "wrong"
    assert report.wrong_parameters == ["out"]
    assert report.worst(1)[0].name.startswith("out[")
    assert "constant factor" in (report.parameter("out").diagnosis or "")
    assert report.parameter("input0").verdict == "ok"
    data = json.loads(json.dumps(report.to_dict()))
    assert data["wrong_parameters"] == ["out"] and data["worst"][0]["name"].startswith("out[")


def test_relu_exactly_at_a_kink_is_a_kink_where_torch_gradcheck_fails() -> None:
    module = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
    with torch.no_grad():
        module[0].weight.fill_(1.0)
        module[0].bias.fill_(-1.0)
    x = torch.ones(1, 1)  # pre-activation exactly 0
    report = check_module(module, x)
    assert report.verdict == "ok", str(report)
    assert report.kinks == 2
    assert all(entry.kink for entry in report.entries)

    def relu_net(w: Any, b: Any) -> Any:
        return F.relu(x.double() @ w.T + b).sum()

    params = (
        module[0].weight.detach().double().requires_grad_(True),
        module[0].bias.detach().double().requires_grad_(True),
    )
    assert not torch.autograd.gradcheck(relu_net, params, raise_exception=False)


def test_include_exclude_and_sample_choose_what_is_checked() -> None:
    net = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    x = torch.randn(3, 4)
    biases = check_module(net, x, include="*.bias")
    assert [row.name for row in biases.parameters] == ["0.bias", "2.bias"]
    first = check_module(net, x, exclude=["2.*"], sample=2)
    assert [row.name for row in first.parameters] == ["0.weight", "0.bias"]
    assert [row.checked for row in first.parameters] == [2, 2] and first.sampled
    with pytest.raises(InvalidArgumentError, match=r"include: pattern 'layer1\.\*' matches no"):
        check_module(net, x, include="layer1.*")


def test_per_output_check_names_the_output_and_input() -> None:
    def both(a: Any, b: Any) -> Any:
        return a * b, torch.exp(a)

    good = check_function(both, torch.randn(3), torch.randn(3), per_output=True)
    assert good.verdict == "ok"
    names = [row.name for row in good.parameters]
    assert names == ["output0/input0", "output0/input1", "output1/input0", "output1/input1"]

    def buggy_backward(a: Any, g: Any) -> Any:
        return g * torch.exp(a) * (1 + 0.5 * (torch.arange(3) == 1))  # entry 1 off by 50 %

    buggy_exp = _function(torch.exp, buggy_backward)
    bad = check_function(
        lambda a, b: (a * b, buggy_exp(a)), torch.randn(3), torch.randn(3), per_output=True
    )
    assert bad.wrong_parameters == ["output1/input0"]
    assert bad.worst(1)[0].name == "output1/input0[1]"


def test_localize_pins_one_wrong_entry_in_few_evaluations() -> None:
    def backward(x: Any, w: Any, g: Any) -> Any:
        grad_w = g.T @ x
        grad_w[17, 5] *= 1.5  # one wrong entry
        return g @ w, grad_w

    linear = _function(lambda x, w: x @ w.T, backward)

    class Wide(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(40, 30) / 5)

        def forward(self, x: Any) -> Any:
            return torch.tanh(linear(x, self.weight))

    module = Wide()
    report = check_module(module, torch.randn(6, 30), mode="localize")
    assert report.mode == "localize"
    assert report.wrong_parameters == ["weight"]
    assert report.worst(1)[0].name == "weight[17, 5]"
    assert report.evaluations < 2 * 1200 / 4


def test_requires_grad_chooses_the_inputs_of_a_function() -> None:
    x = torch.randn(3, requires_grad=True)
    report = check_function(torch.mul, x, torch.randn(3))
    assert [row.name for row in report.parameters] == ["input0"]


def test_random_loss_is_refused() -> None:
    net = nn.Linear(3, 2)
    with pytest.raises(NondeterministicLossError, match="same parameters"):
        check_module(net, torch.randn(4, 3), lambda out: (out + torch.randn_like(out)).sum())
    with pytest.raises(NondeterministicLossError):
        check_function(lambda x: F.dropout(x, 0.5, training=True), torch.randn(4))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(InvalidTypeError, match="module: got function"):
        check_module(lambda x: x, torch.randn(2))  # type: ignore[arg-type]
    with pytest.raises(LossEvaluationError, match=r"loss_fn returned \(4, 2\), expected a scalar"):
        check_module(nn.Linear(3, 2), torch.randn(4, 3), lambda out: out)
    with pytest.raises(InvalidArgumentError, match="mode: got 'fast'"):
        check_module(nn.Linear(3, 2), torch.randn(4, 3), mode="fast")
    with pytest.raises(InvalidArgumentError, match="defines no input tensor"):
        check_namespace({"module": nn.Linear(3, 2)})


def test_check_namespace_runs_a_files_module() -> None:
    namespace = {
        "module": nn.Linear(3, 2),
        "inputs": torch.randn(4, 3),
        "loss_fn": F.cross_entropy,
        "targets": torch.tensor([0, 1, 1, 0]),
    }
    report = check_namespace(namespace, sample=3)
    assert report.verdict == "ok" and report.checked == 5


CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here: the CUDA route is not run"
)
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


class _DeviceProbe(nn.Module):
    """A tanh network that records the device and dtype of every tensor its forward sees."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(4, 5), nn.Linear(5, 3)
        self.seen: set[tuple[str, Any]] = set()

    def forward(self, x: Any) -> Any:
        for tensor in (x, self.first.weight, self.second.bias):
            self.seen.add((tensor.device.type, tensor.dtype))
        return self.second(torch.tanh(self.first(x)))


@pytest.mark.parametrize("device", DEVICES)
def test_module_is_checked_on_its_own_device(device: str) -> None:
    net = _DeviceProbe().to(device)
    x, y = torch.randn(8, 4, device=device), torch.randint(0, 3, (8,), device=device)
    snapshot = _snapshot(net)
    report = check_module(net, x, F.cross_entropy, y)
    assert report.verdict == "ok", str(report)
    assert [row.name for row in report.parameters] == [
        "first.weight",
        "first.bias",
        "second.weight",
        "second.bias",
    ]
    assert report.checked == report.total == 4 * 5 + 5 + 5 * 3 + 3
    assert np.isfinite(report.difference)
    # Every evaluation ran on float64 copies on the module's own device.
    assert net.seen == {(device, torch.float64)}
    _assert_unchanged(net, snapshot)
    assert all(p.device.type == device for p in net.parameters())
    assert x.device.type == device and x.dtype == torch.float32


@pytest.mark.parametrize("device", DEVICES)
def test_wrong_backward_is_named_on_its_own_device(device: str) -> None:
    forward, _, buggy = CASES["matmul"]
    a = torch.randn(3, 3, device=device, requires_grad=True)
    b = torch.randn(3, 3, device=device, requires_grad=True)
    report = check_function(_function(forward, buggy), a, b)
    assert report.verdict == "wrong", str(report)
    assert report.wrong_parameters == ["input0"]
    assert report.parameter("input1").verdict == "ok"
    assert a.device.type == b.device.type == device and a.dtype == torch.float32


def test_gradprobe_imports_torch_only_when_used() -> None:
    code = (
        "import sys, gradprobe, gradprobe.cli.commands; assert 'torch' not in sys.modules; "
        "import gradprobe.torch; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class BatchCentering(nn.Module):
    """Subtracts the batch mean in training mode (identity in eval), with its own backward."""

    def __init__(self, planted: bool) -> None:
        super().__init__()
        self.planted = planted

    def forward(self, x: Any) -> Any:
        if not self.training:
            return x
        planted = self.planted

        class Center(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, v: Any) -> Any:
                return v - v.mean(0, keepdim=True)

            @staticmethod
            def backward(ctx: Any, grad: Any) -> Any:
                # The mean's own gradient, −mean(grad), forgotten when planted.
                return grad if planted else grad - grad.mean(0, keepdim=True)

        return Center.apply(x)


@pytest.mark.parametrize("planted", [False, True])
def test_train_mode_checks_a_layer_that_only_exists_with_batch_statistics(planted: bool) -> None:
    module = nn.Sequential(nn.Linear(3, 4), BatchCentering(planted), nn.Tanh(), nn.Linear(4, 2))
    module.eval()
    x, y = torch.randn(6, 3), torch.randint(0, 2, (6,))
    snapshot = _snapshot(module)
    evaluated = check_module(module, x, F.cross_entropy, y)
    assert evaluated.verdict == "ok"  # in eval mode the layer is the identity: nothing to see
    trained = check_module(module, x, F.cross_entropy, y, train_mode=True)
    assert trained.verdict == ("wrong" if planted else "ok"), str(trained)
    if planted:
        assert trained.wrong_parameters == ["0.weight", "0.bias"]  # the layers before it
        assert trained.parameter("3.weight").verdict == "ok"
    assert any("depend on the whole batch" in note for note in trained.notes)
    _assert_unchanged(module, snapshot)
    with_batchnorm = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in with_batchnorm.state_dict().items()}
    assert check_module(with_batchnorm, x, F.cross_entropy, y, train_mode=True).verdict == "ok"
    assert all(torch.equal(before[k], v) for k, v in with_batchnorm.state_dict().items())


def test_check_module_and_check_function_tell_progress(progress_log) -> None:  # type: ignore[no-untyped-def]
    import io

    from tqdm import tqdm

    module, x, y = _modules()["mlp"]
    report = check_module(module, x, F.cross_entropy, y, progress=progress_log)
    progress_log.assert_complete(report.checked)
    bar = tqdm(file=io.StringIO())
    w = torch.linspace(0.5, 1.5, 30, dtype=torch.float64, requires_grad=True)
    report = check_function(torch.sin, w, progress=bar)
    assert report.passed and bar.n == bar.total == 30
    with pytest.raises(InvalidTypeError, match="progress: got str"):
        check_function(torch.sin, w, progress="bar")
