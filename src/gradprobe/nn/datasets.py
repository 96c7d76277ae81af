"""Data to train and check networks on, each returned as a seeded train/test split.

Real data comes from scikit-learn, which ships it inside the package (nothing is
downloaded at run time): the Wisconsin breast-cancer set (569 examples, 30
features on very different scales: the case for normalizing inputs) and the 8×8
handwritten digits (1,797 examples, 64 features, 10 classes). The synthetic sets
(circles, moons, spirals) are drawn from a generator seeded by ``seed``.

Every function returns a :class:`Split` ``(X_train, y_train, X_test, y_test)``,
with ``X`` of shape ``(m, n_features)`` in float64 and integer labels ``y`` of shape
``(m,)``. Splits are stratified: each class keeps its share in both parts.

Examples
--------
>>> X_train, y_train, X_test, y_test = circles(n_train=300, n_test=100, seed=0)
>>> X_train.shape, X_test.shape, int(y_train.sum())
((300, 2), (100, 2), 150)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from gradprobe.errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "Split",
    "breast_cancer",
    "circles",
    "digits",
    "feature_names",
    "moons",
    "spirals",
]


class Split(NamedTuple):
    """A train/test split; unpacks as ``X_train, y_train, X_test, y_test``.

    Attributes
    ----------
    X_train : ndarray of float64, shape (m_train, n_features)
    y_train : ndarray of int64, shape (m_train,)
    X_test : ndarray of float64, shape (m_test, n_features)
    y_test : ndarray of int64, shape (m_test,)
    """

    X_train: NDArray[np.float64]
    y_train: NDArray[np.int64]
    X_test: NDArray[np.float64]
    y_test: NDArray[np.int64]


def _seed(seed: int | np.random.Generator) -> int:
    """Return an integer seed for scikit-learn's ``random_state`` from an int or a Generator."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**31 - 1))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidTypeError(
            f"seed: got {type(seed).__name__}, expected an integer or a numpy.random.Generator"
        )
    return int(seed)


def _count(value: int, argument: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgumentError(f"{argument}: got {value!r}, expected an integer >= {minimum}")
    return int(value)


def _noise(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"noise: got {type(value).__name__}, expected a number")
    if not (np.isfinite(value) and value >= 0):
        raise InvalidArgumentError(f"noise: got {value!r}, expected a finite number >= 0")
    return float(value)


def _split(X: NDArray[Any], y: NDArray[Any], test: float | int, seed: int) -> Split:
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        np.asarray(X, dtype=np.float64),
        np.asarray(y, dtype=np.int64),
        test_size=test,
        random_state=seed,
        stratify=y,
    )
    return Split(X_train, y_train, X_test, y_test)


def _test_size(test_size: float) -> float:
    if not (isinstance(test_size, (float, int)) and 0 < test_size < 1):
        raise InvalidArgumentError(
            f"test_size: got {test_size!r}, expected a fraction strictly between 0 and 1"
        )
    return float(test_size)


def feature_names(name: str) -> list[str]:
    """Return the names of a bundled data set's features, in column order.

    Parameters
    ----------
    name : {"breast_cancer", "digits", "circles", "moons", "spirals"}
        The data set.

    Returns
    -------
    list of str
        scikit-learn's names for the real sets (``"mean radius"``, …), ``"pixel r,c"``
        for the digits, ``"x0"`` and ``"x1"`` for the synthetic ones.

    Examples
    --------
    >>> feature_names("breast_cancer")[:2]
    ['mean radius', 'mean texture']
    """
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        return [str(feature) for feature in load_breast_cancer().feature_names]
    if name == "digits":
        return [f"pixel {row},{column}" for row in range(8) for column in range(8)]
    if name in ("circles", "moons", "spirals"):
        return ["x0", "x1"]
    raise InvalidArgumentError(
        f"name: got {name!r}, expected one of breast_cancer, digits, circles, moons, spirals"
    )


def breast_cancer(test_size: float = 0.25, seed: int | np.random.Generator = 0) -> Split:
    """Return the Wisconsin diagnostic breast-cancer data: 569 × 30, labels 0/1.

    Label 1 is benign (357 examples), 0 malignant (212). The features range from
    about 10⁻³ to 10³, so an unnormalized network trains slowly.

    Parameters
    ----------
    test_size : float, default=0.25
        The fraction held out for testing.
    seed : int or numpy.random.Generator, default=0
        Seeds the split.

    Returns
    -------
    Split

    Examples
    --------
    >>> data = breast_cancer(seed=0)
    >>> data.X_train.shape, data.X_test.shape
    ((426, 30), (143, 30))
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return _split(bunch.data, bunch.target, _test_size(test_size), _seed(seed))


def digits(test_size: float = 0.25, seed: int | np.random.Generator = 0) -> Split:
    """Return the 8×8 handwritten digits: 1,797 × 64 pixel intensities 0–16, labels 0–9.

    Examples
    --------
    >>> data = digits(seed=0)
    >>> data.X_train.shape, sorted(set(data.y_train.tolist())) == list(range(10))
    ((1347, 64), True)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _split(bunch.data, bunch.target, _test_size(test_size), _seed(seed))


def circles(
    n_train: int = 300,
    n_test: int = 100,
    noise: float = 0.05,
    factor: float = 0.8,
    seed: int | np.random.Generator = 0,
) -> Split:
    """Return two concentric circles, the course's initialization example; labels 0/1.

    Parameters
    ----------
    n_train, n_test : int, default=300, 100
        Examples in each part; both are balanced between the two circles (±1 for
        an odd count).
    noise : float, default=0.05
        The standard deviation of Gaussian noise added to each coordinate.
    factor : float, default=0.8
        The inner circle's radius relative to the outer one's (1).
    seed : int or numpy.random.Generator, default=0
        Seeds the points and the split.

    Returns
    -------
    Split
        Label 1 is the inner circle.
    """
    from sklearn.datasets import make_circles

    if not (isinstance(factor, (float, int)) and 0 < factor < 1):
        raise InvalidArgumentError(f"factor: got {factor!r}, expected a number in (0, 1)")
    train, test = _count(n_train, "n_train", 2), _count(n_test, "n_test", 2)
    state = _seed(seed)
    X, y = make_circles(
        n_samples=train + test, noise=_noise(noise), factor=factor, random_state=state
    )
    return _split(X, y, test, state)


def moons(
    n_train: int = 300,
    n_test: int = 100,
    noise: float = 0.2,
    seed: int | np.random.Generator = 0,
) -> Split:
    """Return two interleaving half circles; labels 0/1.

    Parameters are as for :func:`circles`.

    Examples
    --------
    >>> moons(n_train=40, n_test=10, seed=1).X_train.shape
    (40, 2)
    """
    from sklearn.datasets import make_moons

    train, test = _count(n_train, "n_train", 2), _count(n_test, "n_test", 2)
    state = _seed(seed)
    X, y = make_moons(n_samples=train + test, noise=_noise(noise), random_state=state)
    return _split(X, y, test, state)


def spirals(
    n_train: int = 300,
    n_test: int = 100,
    n_classes: int = 3,
    noise: float = 0.2,
    seed: int | np.random.Generator = 0,
) -> Split:
    """Return ``n_classes`` interleaved spiral arms, the classic non-linear toy problem.

    Arm ``k`` has points at radius ``r ∈ [0, 1]`` and angle ``4r + 2πk/n_classes``
    (plus Gaussian noise of std ``noise`` on the angle); labels are ``0..n_classes-1``.

    Parameters
    ----------
    n_train, n_test : int, default=300, 100
        Examples in each part, split as evenly as possible between the arms.
    n_classes : int, default=3
        The number of arms, at least 2.
    noise : float, default=0.2
        The standard deviation of the angular noise, in radians.
    seed : int or numpy.random.Generator, default=0
        Seeds the points and the split.

    Examples
    --------
    >>> data = spirals(n_train=90, n_test=30, n_classes=3, seed=0)
    >>> np.bincount(data.y_train).tolist()
    [30, 30, 30]
    """
    classes = _count(n_classes, "n_classes", 2)
    train, test = _count(n_train, "n_train", classes), _count(n_test, "n_test", classes)
    spread = _noise(noise)
    state = _seed(seed)
    rng = np.random.default_rng(state)
    total = train + test
    labels = np.arange(total) % classes
    radius = rng.uniform(0.0, 1.0, total)
    angle = 4.0 * radius + 2 * np.pi * labels / classes + rng.normal(0.0, spread, total)
    X = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
    return _split(X, labels, test, state)
