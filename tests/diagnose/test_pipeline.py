"""The diagnose pipeline as a library: data loading, the four steps, findings, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradprobe.diagnose.pipeline import DiagnoseConfig, parse_layers, run_diagnosis
from gradprobe.diagnose.tabular import Dataset
from gradprobe.errors import InvalidArgumentError
from gradprobe.report.jsonout import validate_report

SMALL = DiagnoseConfig(layers=(6,), epochs=20, depth=6, width=16, lr=0.05)


def _scaled_blobs(seed: int = 0) -> Dataset:
    """Two classes separable along a feature whose spread is 1000× the other's."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=200)
    X = np.column_stack([rng.normal(size=200), 1000 * (labels + 0.3 * rng.normal(size=200))])
    return Dataset(
        "blobs",
        "classification",
        ["small", "large"],
        X[:150],
        X[150:],
        labels[:150],
        labels[150:],
        ["0", "1"],
    )


@pytest.fixture(scope="module")
def diagnosis():  # type: ignore[no-untyped-def]
    seen: list[tuple[str, int, int]] = []
    result = run_diagnosis(_scaled_blobs(), SMALL, lambda *event: seen.append(event))
    result.progress_events = seen  # type: ignore[attr-defined]
    return result


def test_normalizer_is_fitted_on_the_training_split_only(diagnosis) -> None:  # type: ignore[no-untyped-def]
    data = diagnosis.dataset
    np.testing.assert_allclose(diagnosis.normalizer.mean_, data.X_train.mean(axis=0))
    assert not np.allclose(diagnosis.normalizer.mean_, data.X_test.mean(axis=0))
    stds = {f["name"]: f["std"] for f in diagnosis.features}
    assert stds["large"] / stds["small"] == pytest.approx(diagnosis.scale_ratio)
    assert diagnosis.scale_ratio > 100


def test_findings_cover_every_topic_and_name_the_scale_problem(diagnosis) -> None:  # type: ignore[no-untyped-def]
    topics = {f["topic"] for f in diagnosis.findings}
    assert topics == {"inputs", "depth", "gradients", "result"}
    inputs = [f for f in diagnosis.findings if f["topic"] == "inputs"]
    assert inputs[0]["level"] == "warn" and "normalize" in inputs[0]["text"]
    assert diagnosis.check_initial.verdict == "ok" and diagnosis.check_trained.verdict == "ok"


def test_progress_reaches_every_stage(diagnosis) -> None:  # type: ignore[no-untyped-def]
    finished = {stage for stage, done, total in diagnosis.progress_events if done == total}
    assert {"training on raw inputs", "training on normalized inputs", "gradient check"} <= finished
    # The depth sweep reports once per initialization it measures.
    sweep = [
        (done, total) for stage, done, total in diagnosis.progress_events if stage == "depth sweep"
    ]
    assert sweep[1:] == [
        (k, len(diagnosis.sweep.reports)) for k in range(1, len(diagnosis.sweep.reports) + 1)
    ]


def test_json_matches_the_schema(diagnosis) -> None:  # type: ignore[no-untyped-def]
    from gradprobe.report.jsonout import to_json

    data = json.loads(to_json(diagnosis.to_dict()))
    validate_report(data)
    assert data["inputs"]["raw"]["epochs"] == SMALL.epochs


def test_a_learned_task_is_an_ok_result(diagnosis) -> None:  # type: ignore[no-untyped-def]
    [result] = [f for f in diagnosis.findings if f["topic"] == "result"]
    assert result["level"] == "ok" and "Test accuracy on 50 held-out examples" in result["text"]


def test_divergence_is_a_finding_not_a_crash() -> None:
    config = DiagnoseConfig(layers=(6,), epochs=60, depth=4, width=8, lr=10.0, optimizer="gd")
    result = run_diagnosis(_scaled_blobs(), config)
    assert result.raw.diverged_at is not None and result.raw.test_metric is None
    assert result.raw.history.epochs == result.raw.diverged_at - 1  # the curve up to it
    assert result.normalized.diverged_at is None
    assert any(f["level"] == "bad" and "diverged" in f["text"] for f in result.findings)


def test_divergence_with_normalized_inputs_too_is_a_finding() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=200)
    X = 1e-3 * np.column_stack([rng.normal(size=200), labels + 0.3 * rng.normal(size=200)])
    data = Dataset("tiny", "classification", ["a", "b"], X[:150], X[150:], labels[:150],
                   labels[150:], ["0", "1"])  # fmt: skip
    config = DiagnoseConfig(layers=(6,), epochs=5, depth=4, width=8, lr=1e100, optimizer="gd")
    with np.errstate(all="ignore"):
        result = run_diagnosis(data, config)
    assert result.normalized.diverged_at is not None and result.normalized.test_metric is None
    # The check after training runs at the last parameters with a finite loss: weights
    # blown up by lr=1e100 saturate every unit, so the correct backprop is not called wrong,
    # and the checker may honestly say it cannot resolve the tiny gradients there.
    assert result.check_trained.verdict in ("ok", "inconclusive")
    assert not result.check_trained.wrong_parameters
    texts = [f["text"] for f in result.findings if f["level"] == "bad"]
    assert any("With normalization training diverged too" in text for text in texts)


def test_dropout_is_switched_off_for_the_check() -> None:
    config = DiagnoseConfig(layers=(6,), epochs=3, depth=4, width=8, dropout=0.5)
    result = run_diagnosis(_scaled_blobs(), config)
    assert result.check_initial.verdict == "ok"
    assert any("dropout" in note for note in result.check_initial.notes)


def test_parse_layers() -> None:
    assert parse_layers("64,32") == (64, 32)
    assert parse_layers(" 8 ") == (8,)
    with pytest.raises(InvalidArgumentError, match="--layers: got '8;4'"):
        parse_layers("8;4")
