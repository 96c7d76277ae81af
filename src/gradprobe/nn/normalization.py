"""Input normalization: learn each feature's mean and spread on the training set, reuse them.

The course notes' advice: subtract the mean and divide by the standard deviation, so
every feature has mean 0 and variance 1 and the cost is easier to optimize. The
statistics come from the training set *only*, and the test set is transformed
with those same numbers, or the network sees test inputs on another scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._validate import as_feature_matrix
from gradprobe.errors import NotFittedError

__all__ = ["Normalizer"]


class Normalizer:
    """Standardize features to mean 0 and variance 1 with statistics learned by ``fit``.

    Follows scikit-learn's conventions: ``__init__`` takes no data, ``fit`` learns
    the attributes ending in ``_`` and returns ``self``. The statistics are computed
    in float64 by two passes (mean, then the mean squared deviation with a rounding
    correction), so features around 10⁹ with unit spread and float32 input keep full
    accuracy. The result matches :class:`sklearn.preprocessing.StandardScaler`.

    Attributes
    ----------
    mean_ : ndarray of float64, shape (n_features,)
        The per-feature mean of the training set.
    std_ : ndarray of float64, shape (n_features,)
        The per-feature population standard deviation (``ddof=0``); 0 for a constant feature.
    scale_ : ndarray of float64, shape (n_features,)
        What ``transform`` divides by: ``std_``, with 1 for constant features.
    constant_features_ : ndarray of int, shape (n_constant,)
        The columns whose variance is zero up to rounding; they are centred and left
        with scale 1 instead of being divided by zero.
    n_features_in_ : int
        The number of features seen by ``fit``.
    n_samples_seen_ : int
        The number of training examples.

    Examples
    --------
    >>> import numpy as np
    >>> X_train = np.array([[1.0, 5.0], [3.0, 5.0]])
    >>> normalizer = Normalizer().fit(X_train)
    >>> normalizer.transform(np.array([[2.0, 7.0]]))
    array([[0., 2.]])
    >>> normalizer.constant_features_
    array([1])
    """

    mean_: NDArray[np.float64]
    std_: NDArray[np.float64]
    scale_: NDArray[np.float64]
    constant_features_: NDArray[np.intp]
    n_features_in_: int
    n_samples_seen_: int

    def __init__(self) -> None:
        pass

    def __repr__(self) -> str:
        return "Normalizer()"

    def fit(self, X: Any, y: Any = None) -> Normalizer:
        """Learn the per-feature mean and standard deviation of the training set.

        Parameters
        ----------
        X : array_like of shape (m, n_features)
            The training examples; not modified.
        y : ignored
            Accepted for pipeline compatibility.

        Returns
        -------
        Normalizer
            ``self``, fitted.

        Raises
        ------
        InvalidArgumentError
            For 1-D input or an empty ``X``.
        NonFiniteError
            For NaN or infinity (the message names the column).
        """
        data = as_feature_matrix(X, bounded=True)
        m = data.shape[0]
        mean = data.sum(axis=0, dtype=np.float64) / m
        deviation = data.astype(np.float64) - mean
        # The deviations' own mean is the rounding error left in the mean: subtracting its
        # square corrects the variance (the corrected two-pass algorithm, as scikit-learn's).
        correction = deviation.sum(axis=0) / m
        variance = np.maximum(np.einsum("ij,ij->j", deviation, deviation) / m - correction**2, 0.0)
        # The variance of a constant column is pure rounding of at most this size.
        u = np.finfo(np.float64).eps
        constant = variance <= m * u * variance + (m * mean * u) ** 2
        std = np.where(constant, 0.0, np.sqrt(variance))
        # A constant column is centred on its refined mean, its value, so it becomes exactly 0.
        self.mean_ = np.where(constant, mean + correction, mean)
        self.std_ = std
        self.scale_ = np.where(constant, 1.0, std)
        self.constant_features_ = np.flatnonzero(constant)
        self.n_features_in_ = int(data.shape[1])
        self.n_samples_seen_ = int(m)
        return self

    def transform(self, X: Any) -> NDArray[np.floating[Any]]:
        """Standardize ``X`` with the statistics learned by ``fit``.

        Parameters
        ----------
        X : array_like of shape (m, n_features)
            Examples to transform (training or test); not modified.

        Returns
        -------
        ndarray of shape (m, n_features)
            ``(X − mean_) / scale_``, float32 for float32 input, float64 otherwise.

        Raises
        ------
        NotFittedError
            When ``fit`` has not been called.
        ShapeMismatchError
            When ``X`` has a different number of features than the training set.
        """
        data = self._check_input(X, "transform")
        return ((data.astype(np.float64) - self.mean_) / self.scale_).astype(data.dtype)

    def fit_transform(self, X: Any, y: Any = None) -> NDArray[np.floating[Any]]:
        """Fit on ``X`` and return ``X`` standardized; same as ``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X: Any) -> NDArray[np.floating[Any]]:
        """Map standardized values back to the original units: ``X·scale_ + mean_``.

        Parameters
        ----------
        X : array_like of shape (m, n_features)
            Standardized values; not modified.

        Returns
        -------
        ndarray of shape (m, n_features)
        """
        data = self._check_input(X, "inverse_transform")
        return (data.astype(np.float64) * self.scale_ + self.mean_).astype(data.dtype)

    def _check_input(self, X: Any, method: str) -> NDArray[np.floating[Any]]:
        if not hasattr(self, "mean_"):
            raise NotFittedError(
                f"this Normalizer is not fitted yet, so {method} has no statistics to apply; "
                "call fit(X_train) first (or fit_transform)"
            )
        return as_feature_matrix(X, n_features=self.n_features_in_, bounded=True)
