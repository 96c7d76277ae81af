"""Input normalization: learn each feature's mean and spread on the training set, reuse them.

The course notes' advice: subtract the mean and divide by the standard deviation, so
every feature has mean 0 and variance 1 and the cost is easier to optimize. The
statistics come from the training set *only*, and the test set is transformed
with those same numbers, or the network sees test inputs on another scale.

:class:`InputNormalizer` is a scikit-learn transformer (``BaseEstimator``,
``TransformerMixin``, ``OneToOneFeatureMixin``): it works in a ``Pipeline``, with
``clone``, ``get_params``, ``set_output`` and feature names, and passes
:func:`sklearn.utils.estimator_checks.check_estimator`. scikit-learn takes a second
to import, so the class is built on first use (``import gradprobe`` stays fast);
``Normalizer`` is its old name, kept as an alias. (scikit-learn's own ``Normalizer``
is something else: it scales each *row* to unit norm.)

>>> import numpy as np
>>> from gradprobe import InputNormalizer
>>> normalizer = InputNormalizer().fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
>>> normalizer.transform(np.array([[2.0, 7.0]]))
array([[0., 2.]])
>>> normalizer.constant_features_
array([1])
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._validate import as_feature_matrix
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, NotFittedError

# The two names are made by the module's __getattr__, on first use.
__all__ = ["InputNormalizer", "Normalizer", "standardization"]  # noqa: F822

Array = NDArray[np.float64]


def standardization(
    data: NDArray[np.floating[Any]],
) -> tuple[Array, Array, Array, NDArray[np.intp]]:
    """Return the mean, spread, divisor and constant columns of ``data``, shape (m, n).

    The statistics are computed in float64 by two passes (mean, then the mean squared
    deviation with a rounding correction), so features around 10⁹ with unit spread
    and float32 input keep full accuracy; a constant column (zero variance up to
    rounding) gets divisor 1 and is centred on its refined mean, so it becomes 0.

    Returns
    -------
    mean, std, scale : ndarray of float64, shape (n,)
    constant : ndarray of int, shape (n_constant,)
    """
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
    std: Array = np.where(constant, 0.0, np.sqrt(variance))
    centre: Array = np.where(constant, mean + correction, mean)
    scale: Array = np.where(constant, 1.0, std)
    return centre, std, scale, np.flatnonzero(constant)


@cache
def _estimator_class() -> type:
    """Build :class:`InputNormalizer` on scikit-learn's base classes (imported here)."""
    from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
    from sklearn.utils.validation import validate_data

    class InputNormalizer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
        """Standardize features to mean 0 and variance 1 with statistics learned by ``fit``.

        ``__init__`` takes no data, ``fit`` learns the attributes ending in ``_`` and
        returns ``self``. The result matches :class:`sklearn.preprocessing.StandardScaler`
        (see :func:`standardization` for how the statistics are computed).

        Attributes
        ----------
        mean_ : ndarray of float64, shape (n_features,)
            The per-feature mean of the training set.
        std_ : ndarray of float64, shape (n_features,)
            The per-feature population standard deviation (``ddof=0``); 0 for a
            constant feature.
        scale_ : ndarray of float64, shape (n_features,)
            What ``transform`` divides by: ``std_``, with 1 for constant features.
        constant_features_ : ndarray of int, shape (n_constant,)
            The columns whose variance is zero up to rounding.
        n_features_in_ : int
            The number of features seen by ``fit``.
        feature_names_in_ : ndarray of str, shape (n_features,)
            The column names, when ``fit`` was given a data frame.
        n_samples_seen_ : int
            The number of training examples.
        """

        def __init__(self) -> None:
            pass

        def fit(self, X: Any, y: Any = None) -> Any:
            """Learn the per-feature mean and standard deviation of ``X``, shape (m, n).

            ``y`` is ignored. Returns ``self``. Raises a
            :class:`~gradprobe.errors.GradprobeError` (also a ``ValueError`` or
            ``TypeError``) for 1-D, empty, complex or non-finite input; the message
            names the column.
            """
            data = self._features(X, reset=True)
            self.mean_, self.std_, self.scale_, self.constant_features_ = standardization(data)
            self.n_samples_seen_ = int(data.shape[0])
            return self

        def transform(self, X: Any) -> NDArray[np.floating[Any]]:
            """Return ``(X − mean_) / scale_``, float32 for float32 input, float64 otherwise."""
            data = self._features(X, reset=False)
            return ((data.astype(np.float64) - self.mean_) / self.scale_).astype(data.dtype)

        def inverse_transform(self, X: Any) -> NDArray[np.floating[Any]]:
            """Map standardized values back to the original units: ``X·scale_ + mean_``."""
            data = self._features(X, reset=False)
            return (data.astype(np.float64) * self.scale_ + self.mean_).astype(data.dtype)

        def _features(self, X: Any, reset: bool) -> NDArray[np.floating[Any]]:
            if not reset and not hasattr(self, "mean_"):
                raise NotFittedError(
                    f"this {type(self).__name__} is not fitted yet, so it has no statistics "
                    "to apply; call fit(X_train) first (or fit_transform), then transform"
                )
            # scikit-learn's checks keep n_features_in_ and the feature names and word
            # shape errors as its tools expect; gradprobe's then name a non-finite column.
            try:
                data = validate_data(
                    self, X, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=False
                )
            except TypeError as error:  # the same words, as a GradprobeError
                raise InvalidTypeError(f"X: {error}") from error
            except Exception as error:  # ValueError, or what a value's __float__ raised
                raise InvalidArgumentError(f"X: {error}") from error
            return as_feature_matrix(data, bounded=True)

        def __sklearn_tags__(self) -> Any:
            tags = super().__sklearn_tags__()
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
            return tags

    # Found by pickle as gradprobe.nn.normalization.InputNormalizer (the module's __getattr__).
    InputNormalizer.__module__ = __name__
    InputNormalizer.__qualname__ = "InputNormalizer"
    return InputNormalizer


def __getattr__(name: str) -> Any:
    if name in ("InputNormalizer", "Normalizer"):
        return _estimator_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
