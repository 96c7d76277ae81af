"""Report JSON: strictly valid (no NaN), and checked against the schema shipped in the package."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import jsonschema
import pytest

from gradprobe.diagnose.pipeline import DiagnoseConfig, run_diagnosis
from gradprobe.diagnose.tabular import bundled
from gradprobe.numdiff.derivative import derivative
from gradprobe.report.jsonout import (
    SCHEMA_NAME,
    derivative_data,
    load_schema,
    to_json,
    validate_report,
)


def strict(text: str) -> Any:
    """Parse standard JSON only: NaN and Infinity fail."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def report_data() -> dict[str, Any]:
    config = DiagnoseConfig(layers=(4,), epochs=3, depth=4, width=8)
    return run_diagnosis(bundled("moons"), config).to_dict()


def test_nan_and_infinity_become_null_at_any_depth() -> None:
    data = {
        "a": float("nan"),
        "b": {"c": [1.0, float("-inf"), {"d": (float("inf"), 2)}]},
        "e": "NaN",
        "f": 0,
        "g": None,
        "h": True,
    }
    assert strict(to_json(data)) == {
        "a": None,
        "b": {"c": [1.0, None, {"d": [None, 2]}]},
        "e": "NaN",
        "f": 0,
        "g": None,
        "h": True,
    }


def test_the_callers_data_is_not_changed() -> None:
    data = {"x": [float("nan"), 1.0]}
    to_json(data)
    assert math.isnan(data["x"][0])


def test_text_is_indented_unicode_with_a_final_newline() -> None:
    text = to_json({"R²": "σ_w² ≈ 2", "n": [1]})
    assert text == '{\n  "R²": "σ_w² ≈ 2",\n  "n": [\n    1\n  ]\n}\n'


def test_values_json_cannot_hold_are_refused_not_mangled() -> None:
    with pytest.raises(TypeError):
        to_json({"x": object()})


def test_the_schema_is_draft_2020_12_and_loaded_once() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA_NAME == "report.schema.json"
    assert load_schema() is schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["required"]) == {
        "gradprobe_version",
        "seconds",
        "data",
        "network",
        "inputs",
        "depth",
        "gradient_check",
        "result",
    }


def test_a_real_report_validates(report_data: dict[str, Any]) -> None:
    validate_report(report_data)
    assert strict(to_json(report_data))["data"]["name"] == "moons"


@pytest.mark.parametrize(
    "breakage",
    ["missing section", "wrong type", "unknown key", "bad verdict"],
)
def test_broken_reports_are_rejected(report_data: dict[str, Any], breakage: str) -> None:
    broken = copy.deepcopy(report_data)
    if breakage == "missing section":
        del broken["gradient_check"]
    elif breakage == "wrong type":
        broken["data"]["n_train"] = "many"
    elif breakage == "unknown key":
        broken["surprise"] = 1
    else:
        broken["gradient_check"]["at_initialization"]["verdict"] = "great"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(broken)


# ------------------------------------------------------------- progress, views, layout


def test_json_has_no_nan() -> None:
    assert to_json({"a": [float("nan"), float("inf"), 1.5]}) == (
        '{\n  "a": [\n    null,\n    null,\n    1.5\n  ]\n}\n'
    )


def test_derivative_rows_carry_the_error_against_the_exact_value() -> None:
    result = derivative(lambda x: x**3, 1.0, eps=0.01, method="forward", full_output=True)
    row = derivative_data("forward", result, 3.0)
    assert row["error"] == abs(result.value - 3.0) and row["step"] == result.step
    assert json.loads(to_json(row))["method"] == "forward"
    assert derivative_data("complex", "not analytic", 3.0)["not_available"] == "not analytic"
