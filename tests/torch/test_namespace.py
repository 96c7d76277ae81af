"""Finding the model, criterion, inputs and targets of an ordinary PyTorch file."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradprobe.errors import InvalidArgumentError
from gradprobe.torch import check_namespace
from gradprobe.torch._namespace import recognize


def _script() -> dict[str, object]:
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    return {
        "torch": torch,
        "nn": nn,
        "model": model,
        "criterion": nn.CrossEntropyLoss(),
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.1),
        "x": torch.randn(5, 3),
        "y": torch.tensor([0, 1, 1, 0, 1]),
        "epochs": 3,
    }


def test_a_training_script_is_recognised_by_its_usual_names() -> None:
    found = recognize(_script())
    assert found.taken == {"module": "model", "inputs": "x", "loss": "criterion", "targets": "y"}
    assert (
        found.summary
        == "took module = model (Sequential), inputs = x, loss = criterion, targets = y"
    )
    report = check_namespace(_script(), sample=2)
    assert report.verdict == "ok" and report.notes[0] == found.summary


def test_the_only_module_is_taken_whatever_its_name() -> None:
    script = _script()
    script["classifier"] = script.pop("model")
    found = recognize(script)
    assert found.taken["module"] == "classifier"  # the criterion module does not count


def test_explicit_names_win_and_bad_ones_are_named() -> None:
    script = _script()
    script["batch"], script["labels2"] = script["x"], script["y"]
    found = recognize(script, inputs="batch", targets="labels2")
    assert found.taken["inputs"] == "batch" and found.taken["targets"] == "labels2"
    with pytest.raises(InvalidArgumentError, match="--module: got 'nope'"):
        recognize(script, module="nope")
    with pytest.raises(InvalidArgumentError, match="--module: epochs is a int"):
        recognize(script, module="epochs")


def test_what_cannot_be_found_says_what_to_pass() -> None:
    script = _script()
    del script["x"]
    with pytest.raises(InvalidArgumentError, match="no input tensor named inputs, x"):
        recognize(script)
    two = _script()
    two["encoder"], two["decoder"] = two.pop("model"), nn.Linear(2, 2)
    with pytest.raises(InvalidArgumentError, match=r"2 nn.Module instances \(encoder, decoder\)"):
        recognize(two)
    no_loss = _script()
    del no_loss["criterion"]
    with pytest.raises(InvalidArgumentError, match="targets .y. but no loss"):
        recognize(no_loss)
    with pytest.raises(InvalidArgumentError, match="method: got 'forward'"):
        check_namespace(_script(), method="forward")


def test_the_old_protocol_names_still_work() -> None:
    namespace = {"module": nn.Linear(3, 2), "inputs": torch.randn(4, 3)}
    namespace |= {"loss_fn": nn.functional.cross_entropy, "targets": torch.tensor([0, 1, 1, 0])}
    assert recognize(namespace).taken == {
        "module": "module",
        "inputs": "inputs",
        "loss": "loss_fn",
        "targets": "targets",
    }
