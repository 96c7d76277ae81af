"""Flatten a pytree of parameter arrays into one vector θ and back, naming every coordinate.

The course notes' gradient check starts by reshaping ``W1, b1, …, WL, bL`` into one big
vector θ. :class:`ParameterLayout` records how: which names, in which order, with
which shapes, and where each one starts in θ. The order is fixed and documented:

* a flat ``dict`` of arrays keeps its insertion order (``W1, b1, W2, b2, …`` for
  gradprobe's MLP) and its keys are the names;
* a flat ``list`` or ``tuple`` of arrays keeps its position order; its items are named
  ``param0, param1, …``;
* a single array is named ``theta``;
* any other nesting of dicts, lists, tuples and named tuples (a *pytree*, as Flax,
  Equinox, Haiku and optax hold a model) is flattened by :mod:`optree` in the order
  JAX uses (dict keys sorted, sequences in order), and each array is named by its
  path the way JAX prints key paths: ``params['dense_1']['kernel']``.

Each array is raveled in C order: coordinate ``W2[1, 3]`` of a ``(4, 5)`` weight sits at
``offset("W2") + 1 * 5 + 3``; a nested one is named ``params['dense_1']['kernel'][3, 1]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import optree
from numpy.typing import NDArray

from gradprobe._validate import as_array
from gradprobe.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteError,
    ShapeMismatchError,
)

__all__ = ["ParameterLayout", "Params", "TreeStructure", "format_index"]

Params = Mapping[Any, Any] | Sequence[Any] | NDArray[Any] | float
"""What gradprobe accepts as parameters: a pytree of arrays, flat or nested, or one array."""

Kind = Literal["dict", "list", "tuple", "array", "tree"]


def _as_float_array(value: object, label: str, argument: str) -> NDArray[np.floating[Any]]:
    """Return ``value`` as a real floating array, not a copy: callers copy before writing."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        raise InvalidTypeError(
            f"{argument}: {label} is a tensor, expected a NumPy array; "
            "for PyTorch code use gradprobe.torch.check_module or check_function"
        )
    array = as_array(value, f"{argument}: {label}")
    if array.dtype.kind != "f":
        hint = " (convert with .astype(float))" if array.dtype.kind in "biu" else ""
        raise InvalidTypeError(
            f"{argument}: {label} has dtype {array.dtype}, expected a real floating-point "
            f"array{hint}"
        )
    return array


def _check_finite(
    array: NDArray[np.floating[Any]], label: str, argument: str, name: str | None = None
) -> None:
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))
        where = tuple(int(i) for i in bad[0]) if array.ndim else ()
        kind = "NaN" if np.isnan(array[where]) else "infinity"
        raise NonFiniteError(
            f"{argument}: {label} holds {len(bad)} non-finite value(s), the first one {kind} "
            f"at {format_index(name or label, where)}; expected finite numbers"
        )


def format_index(name: str, index: tuple[int, ...]) -> str:
    """Name one coordinate of a parameter the way NumPy would index it.

    Parameters
    ----------
    name : str
        The parameter's name.
    index : tuple of int
        The coordinate's multi-index; empty for a 0-d parameter.

    Returns
    -------
    str
        ``"W2[1, 3]"``, ``"b1[0]"``, or ``name`` alone for a scalar parameter.

    Examples
    --------
    >>> format_index("W2", (1, 3))
    'W2[1, 3]'
    >>> format_index("params['dense_1']['kernel']", (3, 1))
    "params['dense_1']['kernel'][3, 1]"
    """
    if not index:
        return name
    return f"{name}[{', '.join(str(i) for i in index)}]"


@dataclass(frozen=True)
class TreeStructure:
    """The structure of a pytree of arrays, and the tree library that reads it.

    ``spec`` is the library's description (an ``optree.PyTreeSpec``, or a
    ``jax.tree_util.PyTreeDef`` for the JAX adapter): ``spec.unflatten(leaves)`` rebuilds
    the tree and ``==`` compares two structures. ``paths`` holds each leaf's path without
    the root, as JAX prints key paths (``"['dense_1']['kernel']"``), and ``flatten(tree) ->
    (leaves, spec)`` is the same library's reader.
    """

    spec: Any
    paths: tuple[str, ...]
    flatten: Callable[[Any], tuple[list[Any], Any]]

    @classmethod
    def of(cls, tree: Any) -> tuple[TreeStructure, list[Any]]:
        """Read a pytree with :mod:`optree`: its structure and its leaves, in JAX's order."""
        accessors, leaves, spec = optree.tree_flatten_with_accessor(tree)
        paths = tuple(accessor.codify("") for accessor in accessors)
        return cls(spec, paths, optree.tree_flatten), leaves

    def leaves(self, tree: Any, argument: str) -> list[Any]:
        """Return the leaves of ``tree``, which must have this structure."""
        try:
            leaves, spec = self.flatten(tree)
        except Exception as error:  # a tree library refusing the value says why
            raise InvalidTypeError(
                f"{argument}: got {type(tree).__name__} that cannot be read as a pytree "
                f"({error}), expected the structure {self.spec}"
            ) from error
        if spec != self.spec:
            raise InvalidArgumentError(
                f"{argument}: got the structure {spec}, expected {self.spec} like params"
            )
        return list(leaves)

    def rebuild(self, arrays: Sequence[Any]) -> Any:
        """Return the tree with ``arrays`` as its leaves, in order."""
        return self.spec.unflatten(list(arrays))


def _is_leaf(value: object) -> bool:
    """Tell an array-like value from a container of them (None counts as a container)."""
    return value is not None and optree.tree_structure(value).is_leaf()  # type: ignore[arg-type]


def _flat(params: object) -> tuple[Kind, tuple[str, ...], list[Any]] | None:
    """Kind, names and arrays of a flat container of arrays (today's layouts); None for a pytree."""
    if isinstance(params, (np.ndarray, float, np.floating)):
        return "array", ("theta",), [params]
    if isinstance(params, Mapping):
        if all(isinstance(k, str) for k in params) and all(map(_is_leaf, params.values())):
            return "dict", tuple(params), list(params.values())
    elif type(params) in (list, tuple) and all(map(_is_leaf, params)):  # type: ignore[call-overload]
        assert isinstance(params, (list, tuple))  # not a named tuple: those are pytrees
        names = tuple(f"param{i}" for i in range(len(params)))
        return ("list" if isinstance(params, list) else "tuple"), names, list(params)
    return None


@dataclass(frozen=True)
class ParameterLayout:
    """How a structure of named parameter arrays maps onto one flat vector θ.

    Attributes
    ----------
    kind : {"dict", "list", "tuple", "array", "tree"}
        The container the parameters came in; :meth:`unflatten` rebuilds the same one.
    names : tuple of str
        The parameter names in θ order.
    shapes : tuple of tuple of int
        The shape of each parameter.
    dtypes : tuple of numpy.dtype
        The dtype each parameter came in (θ itself is always float64).
    offsets : tuple of int
        ``offsets[k]`` is where parameter ``k`` starts in θ; ``offsets[-1]`` is θ's length.
    structure : TreeStructure, optional
        For ``kind="tree"``, the pytree's structure and the library that reads it.
    """

    kind: Kind
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype[Any], ...]
    offsets: tuple[int, ...]
    structure: TreeStructure | None = None

    @classmethod
    def from_params(cls, params: Params, argument: str = "params") -> ParameterLayout:
        """Read the layout of ``params`` and validate every array in it.

        Parameters
        ----------
        params : pytree of array_like
            The parameters: a flat dict of str to arrays, a list or tuple of arrays, one
            array, or any nesting of dicts, lists, tuples and named tuples of arrays;
            each array must be real floating and hold finite values.
        argument : str, default="params"
            The argument's name, used in error messages and as the root of a pytree's
            names (``params['dense_1']['kernel']``).

        Returns
        -------
        ParameterLayout

        Raises
        ------
        InvalidTypeError
            For a container or dtype gradprobe cannot check.
        InvalidArgumentError
            For empty parameters.
        NonFiniteError
            For NaN or infinity in a parameter.

        Examples
        --------
        >>> import numpy as np
        >>> tree = {"dense_1": {"kernel": np.zeros((4, 2)), "bias": np.zeros(2)}}
        >>> layout = ParameterLayout.from_params(tree)
        >>> layout.names
        ("params['dense_1']['bias']", "params['dense_1']['kernel']")
        >>> layout.coordinate_name(2 + 3 * 2 + 1)
        "params['dense_1']['kernel'][3, 1]"
        """
        flat = _flat(params)
        if flat is not None:
            kind, names, leaves = flat
            return cls.from_leaves(names, leaves, argument, kind=kind)
        structure, leaves = TreeStructure.of(params)
        if len(leaves) == 1 and leaves[0] is params:
            raise InvalidTypeError(
                f"{argument}: got {type(params).__name__}, expected a dict of arrays, a list or "
                "tuple of arrays, a single ndarray, or a nesting of dicts, lists, tuples and "
                "named tuples of arrays"
            )
        paths = tuple(argument + path for path in structure.paths)
        return cls.from_leaves(paths, leaves, argument, structure)

    @classmethod
    def from_leaves(
        cls,
        names: Sequence[str],
        leaves: Sequence[Any],
        argument: str,
        structure: TreeStructure | None = None,
        kind: Kind = "tree",
    ) -> ParameterLayout:
        """Build the layout of named arrays (real floating, finite), validating each one.

        The route of :meth:`from_params` and of adapters that read pytrees with their
        own framework's tree library (``jax.tree_util`` for :mod:`gradprobe.jax`):
        ``names`` and ``leaves`` in θ order, ``structure`` the pytree they came from
        (required for ``kind="tree"``), ``argument`` the name used in error messages.
        """
        if not leaves:
            raise InvalidArgumentError(
                f"{argument}: got no parameters, expected at least one array"
            )
        shapes: list[tuple[int, ...]] = []
        dtypes: list[np.dtype[Any]] = []
        offsets = [0]
        for name, value in zip(names, leaves, strict=True):
            label = repr(name) if kind == "dict" else name
            array = _as_float_array(value, label, argument)
            _check_finite(array, label, argument, name)
            shapes.append(tuple(int(s) for s in array.shape))
            dtypes.append(array.dtype)
            offsets.append(offsets[-1] + int(array.size))
        if offsets[-1] == 0:
            raise InvalidArgumentError(
                f"{argument}: every parameter array is empty, expected at least one value"
            )
        return cls(kind, tuple(names), tuple(shapes), tuple(dtypes), tuple(offsets), structure)

    @property
    def size(self) -> int:
        """Length of θ, the total number of parameter values."""
        return self.offsets[-1]

    def span(self, name: str) -> slice:
        """Return the slice of θ that holds parameter ``name``."""
        k = self.names.index(name)
        return slice(self.offsets[k], self.offsets[k + 1])

    def flatten(self, params: Params) -> NDArray[np.float64]:
        """Concatenate ``params`` (same layout) into a new float64 vector θ of shape ``(size,)``."""
        theta = np.empty(self.size, dtype=np.float64)
        for k, value in enumerate(self._values(params)):
            theta[self.offsets[k] : self.offsets[k + 1]] = np.asarray(value).ravel()
        return theta

    def _values(self, params: Params) -> list[Any]:
        if self.structure is not None:
            return self.structure.leaves(params, "params")
        if self.kind == "dict":
            assert isinstance(params, Mapping)
            return [params[name] for name in self.names]
        return [params] if self.kind == "array" else list(params)  # type: ignore[arg-type]

    def unflatten(self, theta: NDArray[Any]) -> Any:
        """Rebuild the parameter structure from θ, as views into ``theta`` (no copy).

        Parameters
        ----------
        theta : ndarray of shape (size,) or (batch, size)
            One parameter vector, or a batch of them; with a batch every array in
            the result carries the leading batch axis, ``(batch, *shape)``.

        Returns
        -------
        pytree, dict, list, tuple or ndarray
            The same container as the original parameters.
        """
        lead = theta.shape[:-1]
        arrays = [
            theta[..., self.offsets[k] : self.offsets[k + 1]].reshape(lead + shape)
            for k, shape in enumerate(self.shapes)
        ]
        if self.structure is not None:
            return self.structure.rebuild(arrays)
        if self.kind == "dict":
            return dict(zip(self.names, arrays, strict=True))
        if self.kind == "list":
            return arrays
        if self.kind == "tuple":
            return tuple(arrays)
        return arrays[0]

    def locate(self, flat_index: int) -> tuple[int, tuple[int, ...]]:
        """Return ``(parameter number, multi-index)`` of coordinate ``flat_index`` of θ."""
        k = int(np.searchsorted(self.offsets, flat_index, side="right")) - 1
        local = flat_index - self.offsets[k]
        shape = self.shapes[k]
        index = tuple(int(i) for i in np.unravel_index(local, shape)) if shape else ()
        return k, index

    def coordinate_name(self, flat_index: int) -> str:
        """Return the readable name of coordinate ``flat_index`` of θ, such as ``"W2[1, 3]"``."""
        k, index = self.locate(flat_index)
        return format_index(self.names[k], index)

    def align(self, grads: object, argument: str = "grads") -> NDArray[np.float64]:
        """Flatten analytic gradients given in the same structure as the parameters.

        Dict keys may be written the course's way: ``dW1`` for parameter ``W1`` (flat
        dicts); a pytree's gradients are a pytree of the same structure.

        Parameters
        ----------
        grads : pytree, dict, list, tuple or ndarray
            The gradients, one array per parameter with the parameter's shape.
        argument : str, default="grads"
            The argument's name, used in error messages.

        Returns
        -------
        ndarray of shape (size,)
            dθ as a new float64 vector.

        Raises
        ------
        InvalidArgumentError
            For a missing or extra key, a different number of arrays or another structure.
        ShapeMismatchError
            For a gradient whose shape differs from its parameter's.
        """
        values: list[object]
        labels: list[str]
        if self.structure is not None:
            values = self.structure.leaves(grads, argument)
            labels = [argument + path for path in self.structure.paths]
        elif self.kind == "dict":
            if not isinstance(grads, Mapping):
                raise InvalidTypeError(
                    f"{argument}: got {type(grads).__name__}, expected a dict keyed like params"
                )
            values, labels = self._match_keys(grads, argument)
        elif self.kind == "array":
            values, labels = [grads], [argument]
        else:
            if not isinstance(grads, (list, tuple)):
                raise InvalidTypeError(
                    f"{argument}: got {type(grads).__name__}, expected a {self.kind} of "
                    f"{len(self.names)} arrays like params"
                )
            if len(grads) != len(self.names):
                raise InvalidArgumentError(
                    f"{argument}: got {len(grads)} arrays, expected {len(self.names)}, "
                    "one per parameter"
                )
            values, labels = list(grads), [f"{argument}[{i}]" for i in range(len(grads))]
        dtheta = np.empty(self.size, dtype=np.float64)
        for k, (value, label) in enumerate(zip(values, labels, strict=True)):
            array = _as_float_array(value, label, argument)
            if array.shape != self.shapes[k]:
                raise ShapeMismatchError(
                    f"{argument}: {label} has shape {array.shape}, expected "
                    f"{self.shapes[k]} like parameter {self.names[k]!r}"
                    + _shape_hint(array.shape, self.shapes[k])
                )
            _check_finite(array, label, argument, self.names[k])
            dtheta[self.offsets[k] : self.offsets[k + 1]] = array.ravel()
        return dtheta

    def _match_keys(
        self, grads: Mapping[Any, Any], argument: str
    ) -> tuple[list[object], list[str]]:
        values: list[object] = []
        labels: list[str] = []
        if set(grads) == set(self.names):  # keyed exactly like params: no prefix guessing
            return [grads[name] for name in self.names], [repr(name) for name in self.names]
        used: set[Any] = set()
        for name in self.names:
            candidates = [key for key in (name, "d" + name) if key in grads]
            if not candidates:
                raise InvalidArgumentError(
                    f"{argument}: no gradient for parameter {name!r}, expected key {name!r} "
                    f"or {'d' + name!r}; got keys {sorted(map(str, grads))}"
                )
            if len(candidates) == 2:
                raise InvalidArgumentError(
                    f"{argument}: both {name!r} and {'d' + name!r} are present, expected one "
                    f"gradient for parameter {name!r}"
                )
            used.add(candidates[0])
            values.append(grads[candidates[0]])
            labels.append(repr(candidates[0]))
        extra = [key for key in grads if key not in used]
        if extra:
            raise InvalidArgumentError(
                f"{argument}: key(s) {sorted(map(str, extra))} match no parameter, expected only "
                f"keys for {list(self.names)} (optionally written with a 'd' prefix)"
            )
        return values, labels


def _shape_hint(got: tuple[int, ...], expected: tuple[int, ...]) -> str:
    if len(got) == 2 and got == expected[::-1]:
        return "; it looks transposed"
    if int(np.prod(got)) == int(np.prod(expected)):
        return "; same number of values in another shape: check keepdims and reshape"
    if len(expected) == 1 and len(got) == 1:
        return "; a bias gradient sums over the examples axis (axis 0 for X of shape (m, n))"
    return ""
