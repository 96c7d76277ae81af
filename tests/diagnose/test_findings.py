"""The findings of diagnose in plain words, rule by rule, on real and edited diagnoses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gradprobe import check_gradients, depth_sweep
from gradprobe.check.report import GradCheckReport
from gradprobe.diagnose.findings import findings
from gradprobe.diagnose.pipeline import DiagnoseConfig, run_diagnosis
from gradprobe.diagnose.result import Diagnosis, Training
from gradprobe.diagnose.tabular import Dataset
from gradprobe.nn.train import History

TINY = DiagnoseConfig(layers=(4,), epochs=4, depth=4, width=8, lr=0.05)


def _noise(task: str) -> Dataset:
    """Features that carry nothing about the target: 70 % of the labels are class 1."""
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.7).astype(int) if task == "classification" else rng.normal(size=200)
    X = rng.normal(size=(200, 2))
    classes = ["0", "1"] if task == "classification" else []
    return Dataset("noise", task, ["a", "b"], X[:150], X[150:], y[:150], y[150:], classes)


# A learning rate too small to move the network: it stays at its random guess.
UNTRAINED = DiagnoseConfig(layers=(4,), epochs=3, depth=4, width=8, lr=1e-9)


@pytest.fixture(scope="module")
def base() -> Diagnosis:
    """A real diagnosis of a task the network can learn (noise features aside)."""
    return run_diagnosis(_noise("classification"), TINY)


def _topic(diagnosis: Diagnosis, topic: str) -> list[dict[str, str]]:
    return [f for f in findings(diagnosis) if f["topic"] == topic]


def _run(label: str, loss: list[float], metric: float | None, diverged: int | None) -> Training:
    return Training(label, History("accuracy", loss=loss), metric, diverged)


def test_findings_are_rows_in_topic_order(base: Diagnosis) -> None:
    rows = findings(base)
    assert rows == base.findings
    assert all(set(row) == {"level", "topic", "text"} for row in rows)
    assert all(row["level"] in {"ok", "warn", "bad"} for row in rows)
    topics = [row["topic"] for row in rows]
    assert topics == sorted(topics, key=["inputs", "depth", "gradients", "result"].index)


@pytest.mark.parametrize(("spreads", "level"), [((1.0, 9.0), "ok"), ((0.01, 5.0), "warn")])
def test_feature_scales(base: Diagnosis, spreads: tuple[float, float], level: str) -> None:
    features = [{"name": n, "std": s} for n, s in zip(("a", "b"), spreads, strict=True)]
    first = _topic(replace(base, features=features), "inputs")[0]
    assert first["level"] == level
    if level == "ok":
        assert first["text"] == "Feature scales are similar (within ×9)."
    else:
        assert first["text"].startswith(
            "Feature scales differ by a factor of 500 (std of a 0.01, of b 5): normalize"
        )


def test_divergence_without_normalization(base: Diagnosis) -> None:
    edited = replace(
        base,
        raw=_run("raw", [1.0, 5.0], None, 3),
        normalized=_run("normalized", [0.7, 0.6], 0.875, None),
    )
    texts = [f["text"] for f in _topic(edited, "inputs") if f["level"] == "bad"]
    assert texts == [
        "Without normalization training diverged at epoch 3; with it the test accuracy is 87.5%."
    ]


def test_divergence_with_normalization_too(base: Diagnosis) -> None:
    edited = replace(
        base, raw=_run("raw", [1.0], None, 2), normalized=_run("normalized", [1.0], None, 4)
    )
    texts = [f["text"] for f in _topic(edited, "inputs") if f["level"] == "bad"]
    assert texts == [
        "Without normalization training diverged at epoch 2.",
        "With normalization training diverged too, at epoch 4: lower the learning rate (--lr).",
    ]
    [result] = _topic(edited, "result")
    assert result["level"] == "bad" and result["text"].endswith(": none (training diverged).")


@pytest.mark.parametrize(("raw_loss", "level"), [(0.9, "ok"), (0.3, "warn")])
def test_the_final_losses_are_compared(base: Diagnosis, raw_loss: float, level: str) -> None:
    edited = replace(
        base,
        raw=_run("raw", [1.0, raw_loss], 0.5, None),
        normalized=_run("normalized", [1.0, 0.4], 0.75, None),
    )
    last = _topic(edited, "inputs")[-1]
    assert last["level"] == level
    assert last["text"] == (
        f"Final training loss 0.4 with normalization, {raw_loss:.3g} without; test accuracy "
        "75.0% vs 50.0%."
    )


def test_depth_findings_follow_the_propagation_and_the_sweep(base: Diagnosis) -> None:
    first, second = _topic(base, "depth")
    assert first["level"] == ("ok" if base.propagation.verdict == "healthy" else "bad")
    assert first["text"] == f"This network (2 layers, init 'auto'): {base.propagation.summary}."
    healthy = [r["init"] for r in base.sweep.rows if r["verdict"] == "healthy"]
    assert second["level"] == ("ok" if healthy else "warn")
    assert second["text"].startswith(f"At depth {TINY.depth} with relu: ")
    assert second["text"].endswith("Recommended weight variance: 2/fan_in.")

    none_healthy = depth_sweep(4, 8, "relu", inits={"zeros": "zeros", "big": "large"})
    [_, sweep] = _topic(replace(base, sweep=none_healthy), "depth")
    assert sweep["level"] == "warn"
    assert (
        "no initialization keeps signals healthy; zeros vanishing, big exploding." in sweep["text"]
    )


def _check(factors: dict[str, float]) -> GradCheckReport:
    """A real check of Σ sin(p): each parameter's gradient multiplied by its factor."""
    params = {name: np.linspace(-1.0, 1.0, 4) for name in factors}
    grads = {name: factor * np.cos(params[name]) for name, factor in factors.items()}
    return check_gradients(
        lambda p: float(sum(np.sum(np.sin(v)) for v in p.values())), params, grads
    )


@pytest.mark.parametrize(
    ("factors", "level", "tail"),
    [
        ({"W1": 1.0, "b1": 1.0}, "ok", ""),
        ({"W1": 1.0, "b1": 1 + 4e-5}, "warn", " (check b1)"),
        ({"W1": 2.0, "W2": -1.0, "b2": 1.0}, "bad", " (check W1, W2)"),
    ],
)
def test_gradient_check_levels(
    base: Diagnosis, factors: dict[str, float], level: str, tail: str
) -> None:
    check = _check(factors)
    assert check.verdict == {"ok": "ok", "warn": "suspicious", "bad": "wrong"}[level]
    first, second = _topic(replace(base, check_trained=check), "gradients")
    assert second == {
        "level": level,
        "topic": "gradients",
        "text": f"Backprop after training: {check.verdict}, relative difference "
        f"{check.difference:.1e}{tail}.",
    }
    assert first["text"].startswith("Backprop at initialization: ok")


def test_an_inconclusive_check_is_a_warning_not_a_failure(base: Diagnosis) -> None:
    params = {"W1": np.linspace(-1.0, 1.0, 40)}

    def stop(done: int, total: int) -> None:
        if done >= 10:
            raise KeyboardInterrupt  # Ctrl-C: a partial report, verdict inconclusive

    check = check_gradients(
        lambda p: float(np.sum(np.sin(p["W1"]))), params, {"W1": np.cos(params["W1"])},
        progress=stop,
    )  # fmt: skip
    assert check.verdict == "inconclusive"
    _, second = _topic(replace(base, check_trained=check), "gradients")
    assert second["level"] == "warn"
    assert "inconclusive" in second["text"]


def test_the_chance_level_is_the_training_majority_share_of_the_test_split() -> None:
    # Class 1 is the training split's majority; it is 60% of the test split.
    X = np.random.default_rng(0).normal(size=(30, 2))
    y_train, y_test = np.array([1] * 15 + [0] * 5), np.array([1] * 6 + [0] * 4)
    data = Dataset("d", "classification", ["a", "b"], X[:20], X[20:], y_train, y_test, ["0", "1"])
    diagnosis = run_diagnosis(data, TINY)
    for metric, level in ((0.6, "warn"), (0.7, "ok")):
        run = replace(diagnosis.normalized, test_metric=metric)
        [result] = _topic(replace(diagnosis, normalized=run), "result")
        assert result["level"] == level, (metric, result)
        if level == "warn":
            assert (
                "no better than always predicting the most common class (60.0%)" in result["text"]
            )
        assert result["text"].startswith(f"Test accuracy on 10 held-out examples: {metric:.1%}")


@pytest.mark.parametrize(
    ("task", "fragments"),
    [
        ("classification", ["no better than always predicting the most common class", "--epochs"]),
        ("regression", ["no better than predicting the mean (R² 0)", "--epochs"]),
    ],
)
def test_a_chance_result_is_a_warning(task: str, fragments: list[str]) -> None:
    result = run_diagnosis(_noise(task), UNTRAINED)
    [finding] = [f for f in result.findings if f["topic"] == "result"]
    assert finding["level"] == "warn", finding
    for fragment in fragments:
        assert fragment in finding["text"]


def test_regression_findings_name_the_metric_once() -> None:
    result = run_diagnosis(_noise("regression"), UNTRAINED)
    text = " ".join(f["text"] for f in result.findings)
    assert "test R² " in text and "r2" not in text and "R² R²" not in text
