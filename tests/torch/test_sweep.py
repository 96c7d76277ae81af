"""gradprobe.torch.init_sweep: the user's architecture re-initialized each way, never touched."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.torch import init_sweep, propagation
from gradprobe.torch.initialize import SCHEMES

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def relu_sweep():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "builders", Path(__file__).with_name("conftest.py")
    )
    builders = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builders)
    model = builders.plain_mlp(depth=20)
    x = builders.batch(128, 32)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    sweep = init_sweep(model, x)
    return model, x, state, sweep


def test_every_scheme_is_probed_and_the_verdicts_are_the_known_ones(relu_sweep):
    _, _, _, sweep = relu_sweep
    verdicts = {row["init"]: row["verdict"] for row in sweep.rows}
    assert list(verdicts) == list(SCHEMES)
    assert verdicts["default"] == verdicts["zeros"] == verdicts["small"] == "vanishing"
    assert verdicts["large"] == "exploding"
    # Xavier and orthogonal carry the gain of the activation (√2 for ReLU), as PyTorch's
    # xavier_normal_(w, gain=calculate_gain("relu")) does.
    assert verdicts["he"] == verdicts["auto"] == verdicts["orthogonal"] == "healthy"
    assert verdicts["xavier"] == "healthy"
    # LeCun's σ_w² = 1 halves a ReLU stack's second moment per layer.
    assert verdicts["lecun"] == "vanishing"
    assert sweep.reports["zeros"].symmetric_layer == 1


def test_the_users_model_is_untouched_and_current_is_its_own_probe(relu_sweep):
    model, x, state, sweep = relu_sweep
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key])
    current = init_sweep(model, x, ["current"])
    assert current.reports["current"].verdict == propagation(model, x).verdict


def test_rows_data_and_rendering(relu_sweep):
    _, _, _, sweep = relu_sweep
    he = next(row for row in sweep.rows if row["init"] == "he")
    report = sweep.reports["he"]
    norms = report.column("gradient_norm")
    assert he["gradient_ratio"] == pytest.approx(norms[0] / norms[-1])
    assert sweep.data["he"]["name"][:3] == ["0", "2", "4"]
    assert np.allclose(sweep.data["he"]["activation_std"], report.column("std"))
    text = str(sweep)
    assert text.startswith("initialization sweep: Sequential with 20 weight layers")
    assert "orthogonal" in text
    json.dumps(sweep.to_dict(), allow_nan=True)


def test_bad_input(models):
    model, x = models.plain_mlp(depth=3), models.batch(8, 32)
    with pytest.raises(InvalidArgumentError, match="inits: got 'kaiming'"):
        init_sweep(model, x, ["he", "kaiming"])
    with pytest.raises(InvalidArgumentError, match="inits: got none"):
        init_sweep(model, x, [])
    with pytest.raises(InvalidTypeError, match="inits: got int"):
        init_sweep(model, x, 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="activations: got layer 'nope'"):
        init_sweep(model, x, ["he"], activations={"nope": "relu"})


def test_the_sweep_tells_progress_per_scheme(progress_log) -> None:  # type: ignore[no-untyped-def]
    import io

    from tqdm import tqdm

    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8))
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    init_sweep(model, x, ["he", "current", "xavier"], progress=progress_log)
    progress_log.assert_complete(3)
    bar = tqdm(file=io.StringIO())
    init_sweep(model, x, ["he", "zeros"], progress=bar)
    assert bar.n == bar.total == 2
