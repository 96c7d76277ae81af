"""Weight initializers: each draws a weight of shape ``(fan_out, fan_in)`` from a generator.

The course notes' rule keeps the variance of a layer's output equal to that of its input,
so signals neither vanish nor explode with depth (``n`` below is ``fan_in``,
``n^{[l-1]}``, and ``fan_out`` is ``n^{[l]}``):

============  ===========================  ====================================
name          standard deviation           for
============  ===========================  ====================================
he            √(2 / fan_in)                ReLU and leaky ReLU
xavier        √(2 / (fan_in + fan_out))    tanh, sigmoid (the course notes' formula)
lecun         √(1 / fan_in)                linear layers, SELU
============  ===========================  ====================================

``he``, ``xavier`` and ``lecun`` draw from a normal distribution; the ``_uniform``
variants draw from ``U(−√3·std, √3·std)``, which has the same variance. Every
initializer has the signature ``initializer(shape, rng, **options)``: ``shape`` is
``(fan_out, fan_in)`` (extra trailing axes, as in a convolution kernel, multiply
both fans) and ``rng`` a :class:`numpy.random.Generator` or an integer seed.
Nothing touches NumPy's global random state.

Examples
--------
>>> import numpy as np
>>> W = he((64, 256), np.random.default_rng(0))
>>> W.shape
(64, 256)
>>> bool(abs(W.std() - np.sqrt(2 / 256)) < 0.005)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from gradprobe._validate import check_choice, check_fraction, check_seed, check_shape
from gradprobe.errors import InvalidArgumentError
from gradprobe.nn.activations import LEAKY_SLOPE, get_activation
from gradprobe.nn.scale import recommend_scale

# A scale or slope beyond this overflows float64 once squared (a variance, an L2 term).
_LARGEST_SCALE = 1e150

__all__ = [
    "auto_initializer",
    "INITIALIZERS",
    "Initializer",
    "default_for",
    "fans",
    "gain",
    "GAIN_NAMES",
    "get",
    "lookup",
    "he",
    "he_normal",
    "he_uniform",
    "lecun",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "orthogonal",
    "uniform",
    "xavier",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

Array = NDArray[np.float64]
Seed = int | np.random.Generator


class Initializer(Protocol):
    """What an initializer is: ``initializer(shape, rng) -> ndarray of shape ``shape``."""

    def __call__(self, shape: Sequence[int], rng: Seed) -> Array: ...  # noqa: D102


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight of shape ``(fan_out, fan_in, *receptive)``.

    A 1-D shape ``(n,)`` has ``fan_in = fan_out = n``; trailing axes (a convolution's
    receptive field) multiply both fans.

    Examples
    --------
    >>> fans((10, 5))
    (5, 10)
    >>> fans((8, 3, 3, 3))
    (27, 72)
    """
    dims = _check_shape(shape)
    if len(dims) == 1:
        return dims[0], dims[0]
    receptive = int(np.prod(dims[2:])) if len(dims) > 2 else 1
    return dims[1] * receptive, dims[0] * receptive


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    return check_shape(shape)


def _generator(rng: Seed) -> np.random.Generator:
    return np.random.default_rng(check_seed(rng, "rng"))


def _check_scale(value: float, argument: str) -> float:
    return check_fraction(value, argument, _LARGEST_SCALE)


def zeros(shape: Sequence[int], rng: Seed = 0) -> Array:
    """Return all zeros; every unit of a layer then stays identical (symmetry never breaks).

    Examples
    --------
    >>> zeros((2, 3), 0)
    array([[0., 0., 0.],
           [0., 0., 0.]])
    """
    _generator(rng)
    return np.zeros(_check_shape(shape))


def normal(shape: Sequence[int], rng: Seed, scale: float = 0.01) -> Array:
    """Draw from ``N(0, scale²)``; ``scale=0.01`` is the course's ``randn(...) * 0.01``.

    Examples
    --------
    >>> bool(np.all(np.abs(normal((100, 100), 0, scale=0.01)) < 0.06))
    True
    """
    std = _check_scale(scale, "scale")
    return _generator(rng).normal(0.0, 1.0, _check_shape(shape)) * std


def uniform(shape: Sequence[int], rng: Seed, scale: float = 0.01) -> Array:
    """Draw from ``U(−scale, scale)`` (variance ``scale² / 3``).

    Examples
    --------
    >>> bool(np.all(np.abs(uniform((50, 50), 0, scale=0.2)) <= 0.2))
    True
    """
    bound = _check_scale(scale, "scale")
    return _generator(rng).uniform(-bound, bound, _check_shape(shape))


def _scaled(shape: Sequence[int], rng: Seed, std: float, distribution: str) -> Array:
    if distribution == "normal":
        return normal(shape, rng, scale=std)
    return uniform(shape, rng, scale=np.sqrt(3.0) * std)


def _he_std(shape: Sequence[int]) -> float:
    fan_in, _ = fans(shape)
    return float(np.sqrt(2.0 / fan_in))


def _xavier_std(shape: Sequence[int]) -> float:
    fan_in, fan_out = fans(shape)
    return float(np.sqrt(2.0 / (fan_in + fan_out)))


def _lecun_std(shape: Sequence[int]) -> float:
    fan_in, _ = fans(shape)
    return float(np.sqrt(1.0 / fan_in))


def he_normal(shape: Sequence[int], rng: Seed) -> Array:
    """Draw from ``N(0, 2/fan_in)``, the notes' ReLU rule ``randn(shape) * √(2/n^{[l-1]})``."""
    return _scaled(shape, rng, _he_std(shape), "normal")


def he_uniform(shape: Sequence[int], rng: Seed) -> Array:
    """Draw from ``U(−√(6/fan_in), √(6/fan_in))``, the variance of :func:`he_normal`."""
    return _scaled(shape, rng, _he_std(shape), "uniform")


def xavier_normal(shape: Sequence[int], rng: Seed) -> Array:
    """Draw from ``N(0, 2/(fan_in + fan_out))``, the course notes' tanh rule."""
    return _scaled(shape, rng, _xavier_std(shape), "normal")


def xavier_uniform(shape: Sequence[int], rng: Seed) -> Array:
    """Draw from ``U(−√(6/(fan_in+fan_out)), √(6/(fan_in+fan_out)))`` (Glorot & Bengio)."""
    return _scaled(shape, rng, _xavier_std(shape), "uniform")


def lecun_normal(shape: Sequence[int], rng: Seed) -> Array:
    """Draw from ``N(0, 1/fan_in)``."""
    return _scaled(shape, rng, _lecun_std(shape), "normal")


def lecun_uniform(shape: Sequence[int], rng: Seed) -> Array:
    """Draw from ``U(−√(3/fan_in), √(3/fan_in))``, the variance of :func:`lecun_normal`."""
    return _scaled(shape, rng, _lecun_std(shape), "uniform")


he = he_normal
xavier = xavier_normal
lecun = lecun_normal


def orthogonal(shape: Sequence[int], rng: Seed, gain: float = 1.0) -> Array:
    """Draw a (semi-)orthogonal matrix times ``gain``, uniformly over the orthogonal group.

    For ``shape = (fan_out, fan_in)`` the rows are orthonormal when ``fan_out <= fan_in``
    and the columns otherwise. Trailing axes are flattened into ``fan_in``.

    Examples
    --------
    >>> Q = orthogonal((3, 5), 0)
    >>> bool(np.allclose(Q @ Q.T, np.eye(3)))
    True
    """
    factor = _check_scale(gain, "gain")
    dims = _check_shape(shape)
    rows, cols = dims[0], int(np.prod(dims[1:])) if len(dims) > 1 else 1
    draw = _generator(rng).normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(draw)
    # The sign fix makes the distribution uniform (Haar), not biased by QR's convention.
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    if rows < cols:
        q = q.T
    return factor * q.reshape(dims)


INITIALIZERS: dict[str, Callable[..., Array]] = {
    "zeros": zeros,
    "normal": normal,
    "uniform": uniform,
    "he": he,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "xavier": xavier,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "lecun": lecun,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "orthogonal": orthogonal,
}
"""Initializer name -> function ``(shape, rng, **options) -> ndarray``."""


def get(name: str, **options: float) -> Initializer:
    """Look up an initializer by name, with its options bound.

    Parameters
    ----------
    name : str
        A key of :data:`INITIALIZERS`.
    **options
        Keyword options of that initializer (``scale`` for normal/uniform, ``gain``
        for orthogonal).

    Returns
    -------
    callable
        ``initializer(shape, rng) -> ndarray``.

    Raises
    ------
    InvalidArgumentError
        For an unknown name (the message lists the valid ones) or an unknown option.

    Examples
    --------
    >>> get("normal", scale=0.5)((1, 2), 0).shape
    (1, 2)
    """
    function = lookup(name, "name")
    allowed = {"normal": {"scale"}, "uniform": {"scale"}, "orthogonal": {"gain"}}.get(name, set())
    unknown = set(options) - allowed
    if unknown:
        raise InvalidArgumentError(
            f"options: got {sorted(unknown)} for initializer {name!r}, expected only "
            f"{sorted(allowed) or 'no options'}"
        )
    return partial(function, **options) if options else function


def _mish(z: Array) -> Array:
    result: Array = z * np.tanh(np.logaddexp(0.0, z))
    return result


# The activations gain() knows beyond the MLP's table, as functions for recommend_scale.
_EXTRA_ACTIVATIONS = {"mish": _mish}
GAIN_NAMES = (
    *("relu", "leaky_relu", "tanh", "sigmoid", "linear", "selu"),
    *("gelu", "silu", "elu", "softplus", "mish"),
)
"""The activations :func:`gain` knows: PyTorch's table first, then those it lacks."""


def gain(activation: str, slope: float = LEAKY_SLOPE) -> float:
    """Return the factor by which an activation's output std should be scaled up.

    For the names ``torch.nn.init.calculate_gain`` knows, its values: √2 for ReLU,
    √(2/(1+slope²)) for leaky ReLU, 5/3 for tanh, 1 for sigmoid and linear, 3/4 for
    SELU (PyTorch's choice for gradient flow; self-normalizing networks want 1, i.e.
    ``"linear"``). For those it has no answer for, ``√σ_w²`` with ``σ_w²`` from
    :func:`gradprobe.recommend_scale` (the forward scale, which gives √2 for ReLU):
    ≈ 1.534 for gelu (tanh form), 1.677 for silu, 1.487 for mish, and elu and softplus.

    Parameters
    ----------
    activation : str
        One of relu, leaky_relu, tanh, sigmoid, linear, selu, gelu, silu, elu, softplus,
        mish.
    slope : float, default=0.01
        The negative slope of ``leaky_relu``; ignored otherwise.

    Raises
    ------
    InvalidArgumentError
        For another name; the message lists these.

    Examples
    --------
    >>> round(gain("relu"), 6), round(gain("gelu"), 3)
    (1.414214, 1.534)
    """
    check_choice(activation, "activation", GAIN_NAMES)
    negative = _check_scale(slope, "slope")
    tabulated = {
        "relu": float(np.sqrt(2.0)),
        "leaky_relu": float(np.sqrt(2.0 / (1.0 + negative**2))),
        "tanh": 5.0 / 3.0,
        "sigmoid": 1.0,
        "linear": 1.0,
        "selu": 3.0 / 4.0,
    }
    if activation in tabulated:
        return tabulated[activation]
    function = _EXTRA_ACTIVATIONS.get(activation)
    return float(np.sqrt(recommend_scale(function or activation).forward))


def default_for(activation: str) -> str:
    """Return the name of the initializer that suits an activation.

    He for the ReLU family, Xavier for tanh and sigmoid (the course notes' two rules), LeCun
    for linear layers (it keeps the forward variance exactly).

    Examples
    --------
    >>> default_for("relu"), default_for("tanh")
    ('he', 'xavier')
    """
    get_activation(activation)
    return {"relu": "he", "leaky_relu": "he", "tanh": "xavier", "sigmoid": "xavier"}.get(
        activation, "lecun"
    )


def auto_initializer(activation: str, layer_sizes: Sequence[int]) -> Initializer:
    """Decide the initializer that ``init="auto"`` uses; the single place this is decided.

    Draws ``W ~ N(0, σ_w²/fan_in)`` with ``σ_w²`` from :func:`gradprobe.recommend_scale`
    (the forward scale) of the hidden activation: 2 for ReLU (He), ≈ 2.54 for tanh,
    ≈ 3.41 for sigmoid, 1 for linear. ``layer_sizes`` is passed so a rule that
    depends on the architecture can replace this one without touching the MLP.

    Examples
    --------
    >>> W = auto_initializer("relu", [400, 3, 1])((300, 400), 0)
    >>> round(float(W.var() * 400), 1)
    2.0
    """
    variance = recommend_scale(activation).forward

    def auto_normal(shape: Sequence[int], rng: Seed) -> NDArray[np.float64]:
        fan_in, _ = fans(shape)
        return normal(shape, rng, scale=float(np.sqrt(variance / fan_in)))

    return auto_normal


def lookup(name: object, argument: str) -> Callable[..., Array]:
    """Return the initializer called ``name``, or refuse it naming ``argument``.

    Parameters
    ----------
    name : object
        What the caller was given.
    argument : str
        The argument it came as (``"name"`` for :func:`get`, ``"init"`` for an MLP).

    Raises
    ------
    InvalidArgumentError
        When ``name`` is not a key of :data:`INITIALIZERS`; the message lists them.
    """
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise InvalidArgumentError(
            f"{argument}: got {name!r}, expected one of {', '.join(INITIALIZERS)} or a callable "
            "(shape, rng) -> array"
        )
    return INITIALIZERS[name]
