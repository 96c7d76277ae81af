"""What ``gradprobe diagnose`` produced, as an object: its notebook views and its data."""

from __future__ import annotations

import pytest

from gradprobe.diagnose.pipeline import DiagnoseConfig, run_diagnosis
from gradprobe.diagnose.tabular import bundled


@pytest.fixture(scope="module")
def diagnosis():  # type: ignore[no-untyped-def]
    return run_diagnosis(bundled("moons"), DiagnoseConfig(layers=(5,), epochs=10, depth=5, width=8))


def test_the_diagnosis_shows_itself_in_a_notebook(diagnosis) -> None:  # type: ignore[no-untyped-def]
    text = repr(diagnosis)
    assert "\n" not in text and text.startswith("Diagnosis(data='moons'")
    card = diagnosis._repr_html_()
    assert card.count("<tr>") == len(diagnosis.findings) + 1


def test_the_pictures_travel_with_the_diagnosis(diagnosis) -> None:  # type: ignore[no-untyped-def]
    assert diagnosis.surface.raw.shape == diagnosis.surface.normalized.shape
    assert diagnosis.step_errors.coordinate.startswith("W1[")
    assert [result.w for result in diagnosis.deep_linear] == [1.5, 0.5]
    assert {result.depth for result in diagnosis.deep_linear} == {5}
