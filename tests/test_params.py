"""Flattening parameters into θ and back, and naming every coordinate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from gradprobe._params import ParameterLayout, format_index
from gradprobe.errors import InvalidArgumentError, InvalidTypeError


def test_documented_order_and_names() -> None:
    params = {"W1": np.zeros((2, 3)), "b1": np.zeros(2), "W2": np.zeros((1, 2))}
    layout = ParameterLayout.from_params(params)
    assert layout.names == ("W1", "b1", "W2")
    assert layout.offsets == (0, 6, 8, 10)
    assert layout.coordinate_name(0) == "W1[0, 0]"
    assert layout.coordinate_name(5) == "W1[1, 2]"
    assert layout.coordinate_name(7) == "b1[1]"
    assert layout.coordinate_name(9) == "W2[0, 1]"
    assert layout.span("b1") == slice(6, 8)


def test_scalar_parameter_is_named_without_index() -> None:
    layout = ParameterLayout.from_params({"scale": np.float64(2.0)})
    assert layout.coordinate_name(0) == "scale"
    assert format_index("W", ()) == "W"


@given(
    st.lists(
        arrays(
            np.float64,
            array_shapes(min_dims=0, max_dims=3, max_side=4),
            elements=st.floats(-1e6, 1e6),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_flatten_unflatten_round_trip(arrays_: list[np.ndarray]) -> None:
    if sum(a.size for a in arrays_) == 0:
        return
    params = {f"p{i}": a for i, a in enumerate(arrays_)}
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    back = layout.unflatten(theta)
    for key, value in params.items():
        np.testing.assert_array_equal(back[key], value)
    for flat in range(layout.size):
        k, index = layout.locate(flat)
        assert theta[flat] == params[layout.names[k]][index]


def test_batched_unflatten_adds_a_leading_axis() -> None:
    params = [np.arange(6.0).reshape(2, 3), np.arange(2.0)]
    layout = ParameterLayout.from_params(params)
    batch = np.stack([layout.flatten(params), 2 * layout.flatten(params)])
    first, second = layout.unflatten(batch)
    assert first.shape == (2, 2, 3) and second.shape == (2, 2)
    np.testing.assert_array_equal(first[1], 2 * params[0])


def test_flatten_copies() -> None:
    params = {"w": np.ones(3)}
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    theta[0] = 5.0
    assert params["w"][0] == 1.0


def test_non_string_keys_and_tensors_are_refused() -> None:
    with pytest.raises(InvalidTypeError, match="key 1 is a int"):
        ParameterLayout.from_params({1: np.ones(2)})  # type: ignore[dict-item]

    class FakeTensor:
        def detach(self) -> None: ...
        def numpy(self) -> None: ...

    with pytest.raises(InvalidTypeError, match="gradprobe.torch"):
        ParameterLayout.from_params({"w": FakeTensor()})


def test_align_counts_arrays_for_lists() -> None:
    layout = ParameterLayout.from_params([np.ones(2), np.ones(3)])
    with pytest.raises(InvalidArgumentError, match="got 1 arrays, expected 2"):
        layout.align([np.ones(2)])
