"""Flattening parameters into θ and back, and naming every coordinate."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

import jax
import numpy as np
import optree
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from gradprobe._params import ParameterLayout, format_index
from gradprobe.check.checker import check_gradients
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, ShapeMismatchError


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


def test_tensors_and_unknown_objects_are_refused() -> None:
    class FakeTensor:
        def detach(self) -> None: ...
        def numpy(self) -> None: ...

    with pytest.raises(InvalidTypeError, match="gradprobe.torch"):
        ParameterLayout.from_params({"w": FakeTensor()})
    with pytest.raises(InvalidTypeError, match="params: got object, expected a dict of arrays"):
        ParameterLayout.from_params(object())  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"params\['a'\]\[0\] has dtype int64"):
        ParameterLayout.from_params({"a": [np.arange(3)]})


def test_align_counts_arrays_for_lists() -> None:
    layout = ParameterLayout.from_params([np.ones(2), np.ones(3)])
    with pytest.raises(InvalidArgumentError, match="got 1 arrays, expected 2"):
        layout.align([np.ones(2)])


def test_flat_dict_gradients_may_carry_the_course_prefix() -> None:
    layout = ParameterLayout.from_params({"W1": np.ones((2, 2)), "b1": np.zeros(2)})
    dtheta = layout.align({"dW1": np.full((2, 2), 3.0), "db1": np.arange(2.0)})
    np.testing.assert_array_equal(dtheta, [3.0, 3.0, 3.0, 3.0, 0.0, 1.0])


class Dense(NamedTuple):
    kernel: Any
    bias: Any


def nested(rng: np.random.Generator) -> dict[Any, Any]:
    return {
        "dense_1": {"kernel": rng.normal(size=(4, 3)), "bias": rng.normal(size=3)},
        "blocks": [Dense(rng.normal(size=(3, 2)), rng.normal(size=2)), (rng.normal(size=()),)],
        "scale": OrderedDict(b=rng.normal(size=1), a=rng.normal(size=2)),
        7: rng.normal(size=2),
        "frozen": None,
    }


def test_pytree_names_and_order_are_jax_key_paths(rng: np.random.Generator) -> None:
    tree = nested(rng)
    # jax.tree_util is the reference: same leaves in the same order, named as keystr prints.
    tree_without_int_key = {k: v for k, v in tree.items() if k != 7}
    layout = ParameterLayout.from_params(tree_without_int_key)
    paths, leaves = zip(*jax.tree_util.tree_flatten_with_path(tree_without_int_key)[0], strict=True)
    assert layout.kind == "tree"
    assert layout.names == tuple("params" + jax.tree_util.keystr(p) for p in paths)
    assert "params['blocks'][0].kernel" in layout.names
    assert "params['scale']['b']" in layout.names  # an OrderedDict keeps its order
    theta = layout.flatten(tree_without_int_key)
    np.testing.assert_array_equal(theta, np.concatenate([np.ravel(leaf) for leaf in leaves]))
    kernel = layout.names.index("params['dense_1']['kernel']")
    assert layout.coordinate_name(layout.offsets[kernel] + 3 * 3 + 1) == (
        "params['dense_1']['kernel'][3, 1]"
    )
    assert layout.coordinate_name(layout.offsets[layout.names.index("params['blocks'][1][0]")]) == (
        "params['blocks'][1][0]"
    )
    # Keys JAX cannot sort (an int among strings) are still read, named by their repr.
    assert "params[7]" in ParameterLayout.from_params(tree).names


def test_pytree_round_trip_keeps_the_structure(rng: np.random.Generator) -> None:
    tree = nested(rng)
    layout = ParameterLayout.from_params(tree)
    back = layout.unflatten(layout.flatten(tree))
    assert optree.tree_structure(back) == optree.tree_structure(tree)
    assert isinstance(back["blocks"][0], Dense)
    assert back["frozen"] is None
    np.testing.assert_array_equal(back["dense_1"]["kernel"], tree["dense_1"]["kernel"])
    batch = np.stack([layout.flatten(tree)] * 5)
    assert layout.unflatten(batch)["blocks"][0].kernel.shape == (5, 3, 2)


def test_pytree_gradients_must_match_the_structure(rng: np.random.Generator) -> None:
    tree = nested(rng)
    layout = ParameterLayout.from_params(tree)
    np.testing.assert_array_equal(layout.align(tree), layout.flatten(tree))
    wrong_structure = {**tree, "blocks": [tree["blocks"][0]]}
    with pytest.raises(InvalidArgumentError, match="grads: got the structure"):
        layout.align(wrong_structure)
    wrong_shape = {**tree, "dense_1": {"kernel": np.ones((3, 4)), "bias": np.ones(3)}}
    with pytest.raises(ShapeMismatchError, match=r"grads\['dense_1'\]\['kernel'\] has shape"):
        layout.align(wrong_shape)
    with pytest.raises(InvalidArgumentError, match="got no parameters"):
        ParameterLayout.from_params({"a": {}, "b": None})


def test_a_check_names_the_wrong_entry_of_a_nested_parameter(rng: np.random.Generator) -> None:
    params = {
        "dense_1": {"kernel": rng.normal(size=(4, 2)), "bias": rng.normal(size=2)},
        "dense_2": Dense(rng.normal(size=(2, 1)), rng.normal(size=1)),
    }
    x = rng.normal(size=(5, 4))

    def loss(p: Any) -> float:
        hidden = np.tanh(x @ p["dense_1"]["kernel"] + p["dense_1"]["bias"])
        return float(np.sum((hidden @ p["dense_2"].kernel + p["dense_2"].bias) ** 2))

    def grads(p: Any) -> Any:
        hidden = np.tanh(x @ p["dense_1"]["kernel"] + p["dense_1"]["bias"])
        out = 2 * (hidden @ p["dense_2"].kernel + p["dense_2"].bias)
        dz = (out @ p["dense_2"].kernel.T) * (1 - hidden**2)
        return {
            "dense_1": {"kernel": x.T @ dz, "bias": dz.sum(0)},
            "dense_2": Dense(hidden.T @ out, out.sum(0)),
        }

    assert check_gradients(loss, params, grads).verdict == "ok"

    def planted(p: Any) -> Any:
        result = grads(p)
        result["dense_1"]["kernel"][3, 1] *= 1.5
        return result

    report = check_gradients(loss, params, planted)
    assert report.verdict == "wrong"
    assert report.wrong_parameters == ["params['dense_1']['kernel']"]
    assert report.worst(1)[0].name == "params['dense_1']['kernel'][3, 1]"
