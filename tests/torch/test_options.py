"""The shared options of the PyTorch checks: one validation, the same messages everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.torch import check_function, check_module
from gradprobe.torch._options import CheckOptions, Settings, settings, threads


def test_defaults_and_every_option_round_trip() -> None:
    assert settings({}) == Settings()
    given = settings(
        {
            "eps": 1e-4,
            "thresholds": (1e-7, 1e-5),
            "sample": 2,
            "seed": 3,
            "mode": "full",
            "batch_size": 16,
            "nondet_tol": 1e-9,
            "workers": 1,
        }
    )
    assert (given.eps, given.thresholds, given.sample, given.seed) == (1e-4, (1e-7, 1e-5), 2, 3)
    assert (given.mode, given.batch_size, given.nondet_tol, given.workers) == ("full", 16, 1e-9, 1)
    assert set(CheckOptions.__annotations__) == set(Settings.__dataclass_fields__)


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"atol": 1e-5}, InvalidArgumentError, "belong to gradprobe.torch.gradcheck"),
        ({"epsilon": 1e-5}, InvalidArgumentError, "epsilon: got an unknown option"),
        ({"eps": -1.0}, InvalidArgumentError, "eps: got -1.0"),
        ({"mode": "fast"}, InvalidArgumentError, "mode: got 'fast'"),
        ({"nondet_tol": -1e-3}, InvalidArgumentError, "nondet_tol: got -0.001"),
        ({"batch_size": 0}, InvalidArgumentError, "batch_size: got 0"),
        ({"workers": 1.5}, InvalidTypeError, "workers: got float"),
        ({"sample": "3"}, InvalidTypeError, "sample: got str"),
        ({"seed": -2}, InvalidArgumentError, "seed: got -2"),
    ],
)
def test_bad_options_are_named_by_both_checks(options: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        check_function(torch.sin, torch.ones(2), **options)
    with pytest.raises(error, match=words):
        check_module(torch.nn.Linear(2, 1), torch.ones(3, 2), **options)


def test_workers_set_and_restore_torch_threads() -> None:
    before = torch.get_num_threads()
    with threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    report = check_function(torch.sin, torch.ones(2), workers=1)
    assert report.verdict == "ok" and torch.get_num_threads() == before


def test_a_generator_seed_is_accepted() -> None:
    report = check_function(torch.sin, torch.ones(4), seed=np.random.default_rng(1), sample=2)
    assert report.checked == 2
