"""Feature scaling (chapter 1) and z-score normalization (chapter 2), column by column.

Shapes: ``X`` is ``(n_samples, n_features)``; every statistic is per feature, shape
``(n_features,)``. The functions ``min_max_scale`` and ``zscore`` also take a 1-D array as
one feature and then return a 1-D array; the estimators take 2-D input only.

Conventions, chosen to match scikit-learn (the ground truth in the tests):

- Input dtype: float32 and float64 are kept; integer, boolean and other real input is
  converted to float64, as scikit-learn's scalers do. Object, string and complex input raise
  TypeError. NaN and infinity raise ValueError (scikit-learn's scalers let NaN through;
  the course's reference refuses it so that a silent NaN cannot reach a grade).
- Min-max: ``X_scaled = X * scale_ + min_`` with ``scale_ = (b - a) / data_range`` and
  ``min_ = a - data_min * scale_`` for ``feature_range=(a, b)``. A column whose range is below
  ``10 * eps`` of its dtype counts as constant: its range is replaced by 1, so it maps to ``a``.
- Standardization: ``(X - mean) / std`` with the population variance (``ddof=0``) computed
  in float64 by the corrected two-pass algorithm (Chan, Golub and LeVeque 1983). A column
  is constant when its variance is within the rounding error of that algorithm,
  ``var <= n * eps * var + (n * mean * eps) ** 2`` with float64 ``eps``; its scale is then 1,
  so it maps to ``X - mean``, i.e. 0 up to the rounding of the mean.
"""

from __future__ import annotations

import numbers

import numpy as np

from .validation import (
    as_data_matrix,
    as_real_array,
    check_eps,
    check_flag,
    check_not_empty,
    check_rank,
)

__all__ = ["NotFittedError", "min_max_scale", "zscore", "MinMaxScaler", "StandardScaler"]

_EPS64 = np.finfo(np.float64).eps


class NotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit`` (like scikit-learn's NotFittedError)."""


# ----------------------------------------------------------------------------- validation
def _as_features(X, name: str = "X") -> tuple[np.ndarray, bool]:
    """Validate 1-D (one feature) or 2-D input; return the 2-D view and whether it was 1-D."""
    arr = as_real_array(X, name)
    check_rank(arr, (1, 2), name, "(one feature, or (n_samples, n_features))")
    check_not_empty(arr, name)
    return (arr[:, None], True) if arr.ndim == 1 else (arr, False)


def _check_feature_range(feature_range) -> tuple[float, float]:
    """Return ``feature_range`` as two floats ``a < b``, or raise ValueError."""
    try:
        lo, hi = feature_range
    except (TypeError, ValueError):
        raise ValueError(
            f"feature_range must be a pair (min, max), got {feature_range!r}"
        ) from None
    if not all(isinstance(v, numbers.Real) and np.isfinite(v) for v in (lo, hi)):
        raise ValueError(f"feature_range must hold two finite numbers, got {feature_range!r}")
    if lo >= hi:
        raise ValueError(
            "Minimum of desired feature range must be smaller than maximum; "
            f"got feature_range={feature_range!r}"
        )
    return float(lo), float(hi)


# ----------------------------------------------------------------------------- statistics
def _mean_and_sum_sq(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and sums of squared deviations, shapes (n_features,), in float64.

    Corrected two-pass algorithm: ``sum((x - m)^2) - (sum(x - m))^2 / n``.
    """
    X64 = X.astype(np.float64, copy=False)
    n = X64.shape[0]
    mean = X64.sum(axis=0) / n
    dev = X64 - mean
    correction = dev.sum(axis=0)
    sum_sq = (dev * dev).sum(axis=0) - correction**2 / n
    return mean, np.maximum(sum_sq, 0.0)


def _is_constant(var_pop: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    """True where a column's population variance is within the two-pass rounding error."""
    return var_pop <= n * _EPS64 * var_pop + (n * mean * _EPS64) ** 2


def _safe_std(var: np.ndarray, var_pop: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    """``sqrt(var)``, with 1 for constant columns (detected on the population variance)."""
    return np.sqrt(np.where(_is_constant(var_pop, mean, n), 1.0, var))


def _center_and_divide(X: np.ndarray, mean, scale) -> np.ndarray:
    """Return ``(X - mean) / scale`` in X's dtype; ``mean`` or ``scale`` may be None (skipped)."""
    out = np.array(X, copy=True)
    if mean is not None:
        out -= mean.astype(out.dtype)
    if scale is not None:
        out /= scale.astype(out.dtype)
    return out


# ----------------------------------------------------------------------------- estimators
class _FeatureScaler:
    """Shared plumbing: parameter repr, fitted check, feature count, fit_transform."""

    _param_names: tuple[str, ...] = ()

    def __repr__(self) -> str:
        params = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._param_names)
        return f"{type(self).__name__}({params})"

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit to ``X`` (n_samples, n_features), then transform it; same shape as ``X``."""
        return self.fit(X, y).transform(X)

    def _fitted_input(self, X, method: str) -> np.ndarray:
        """Validate ``X`` for ``method`` of a fitted scaler: 2-D with n_features_in_ columns."""
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call fit(X_train) "
                f"before {method}"
            )
        X = as_data_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        return X

    def _set_shape_attributes(self, X: np.ndarray) -> None:
        self.n_features_in_ = int(X.shape[1])
        self.n_samples_seen_ = int(X.shape[0])


class MinMaxScaler(_FeatureScaler):
    """Scale each feature to ``feature_range`` using the training minimum and maximum.

    Learned attributes (shape (n_features,), X's float dtype): ``data_min_``, ``data_max_``,
    ``data_range_`` (max - min, 0 for a constant column), ``scale_``, ``min_``; plus
    ``n_features_in_`` and ``n_samples_seen_`` (ints). Values of new data outside the training
    range map outside ``feature_range`` (no clipping).
    """

    _param_names = ("feature_range",)

    def __init__(self, feature_range=(0.0, 1.0)):
        self.feature_range = feature_range

    def fit(self, X, y=None) -> "MinMaxScaler":
        """Learn per-feature min and max from ``X`` (n_samples, n_features); ``y`` is ignored."""
        lo, hi = _check_feature_range(self.feature_range)
        X = as_data_matrix(X)
        lo, hi = X.dtype.type(lo), X.dtype.type(hi)
        data_min = X.min(axis=0)
        data_max = X.max(axis=0)
        data_range = data_max - data_min
        constant = data_range < 10 * np.finfo(X.dtype).eps
        safe_range = np.where(constant, X.dtype.type(1), data_range)
        self.scale_ = (hi - lo) / safe_range
        self.min_ = lo - data_min * self.scale_
        self.data_min_, self.data_max_, self.data_range_ = data_min, data_max, data_range
        self._set_shape_attributes(X)
        return self

    def transform(self, X) -> np.ndarray:
        """Return ``X * scale_ + min_``, shape (n_samples, n_features), in X's float dtype."""
        out = np.array(self._fitted_input(X, "transform"), copy=True)
        out *= self.scale_
        out += self.min_
        return out

    def inverse_transform(self, X) -> np.ndarray:
        """Return ``(X - min_) / scale_``, undoing ``transform``; shape (n_samples, n_features)."""
        out = np.array(self._fitted_input(X, "inverse_transform"), copy=True)
        out -= self.min_
        out /= self.scale_
        return out


class StandardScaler(_FeatureScaler):
    """Standardize each feature: ``(X - mean_) / scale_`` with training statistics.

    Learned attributes, float64 of shape (n_features,): ``mean_`` (None if both flags are
    False), ``var_`` (population variance, ddof=0; None if ``with_std=False``), ``scale_``
    (``sqrt(var_)``, 1 for constant columns; None if ``with_std=False``); plus
    ``n_features_in_`` and ``n_samples_seen_`` (ints). Output keeps X's float dtype.
    """

    _param_names = ("with_mean", "with_std")

    def __init__(self, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    def fit(self, X, y=None) -> "StandardScaler":
        """Learn per-feature mean and variance from ``X`` (n_samples, n_features); ``y`` ignored."""
        check_flag(self.with_mean, "with_mean")
        check_flag(self.with_std, "with_std")
        X = as_data_matrix(X)
        n = X.shape[0]
        self.mean_ = self.var_ = self.scale_ = None
        if self.with_mean or self.with_std:
            self.mean_, sum_sq = _mean_and_sum_sq(X)
        if self.with_std:
            self.var_ = sum_sq / n
            self.scale_ = _safe_std(self.var_, self.var_, self.mean_, n)
        self._set_shape_attributes(X)
        return self

    def transform(self, X) -> np.ndarray:
        """Return ``(X - mean_) / scale_`` (steps skipped per the flags); shape of ``X``."""
        X = self._fitted_input(X, "transform")
        return _center_and_divide(
            X, self.mean_ if self.with_mean else None, self.scale_ if self.with_std else None
        )

    def inverse_transform(self, X) -> np.ndarray:
        """Return ``X * scale_ + mean_``, undoing ``transform``; shape (n_samples, n_features)."""
        out = np.array(self._fitted_input(X, "inverse_transform"), copy=True)
        if self.with_std:
            out *= self.scale_.astype(out.dtype)
        if self.with_mean:
            out += self.mean_.astype(out.dtype)
        return out


# ----------------------------------------------------------------------------- functions
def min_max_scale(X, feature_range=(0.0, 1.0)) -> np.ndarray:
    """Min-max scale each column of ``X`` to ``feature_range``; output has X's shape.

    ``X``: (n_samples, n_features), or (n_samples,) for one feature. Same as
    ``MinMaxScaler(feature_range).fit_transform(X)``: constant columns map to
    ``feature_range[0]``.
    """
    X2, was_1d = _as_features(X)
    out = MinMaxScaler(feature_range).fit_transform(X2)
    return out[:, 0] if was_1d else out


def zscore(X, ddof: int = 0, eps: float = 0.0) -> np.ndarray:
    """Z-score each column: ``(X - mean) / sqrt(var_ddof + eps)``; output has X's shape.

    ``X``: (n_samples, n_features), or (n_samples,) for one feature. ``var_ddof`` is
    ``sum((x - mean)^2) / (n - ddof)``: ``ddof=0`` gives the population standard deviation
    (numpy's and batch norm's), ``ddof=1`` the sample one (pandas', R's). ``eps >= 0`` is
    added to the variance inside the square root, as in batch norm.

    With ``eps=0`` a constant column (same rule as StandardScaler) gets scale 1, so its
    output is 0 up to the rounding of its mean instead of NaN; this is scikit-learn's
    convention. With ``eps > 0`` no special case is needed: the scale is ``sqrt(var + eps)``.
    ``zscore(X)`` equals ``StandardScaler().fit_transform(X)``.
    Raises ValueError if ``n_samples < ddof + 1``.
    """
    if not isinstance(ddof, numbers.Integral) or isinstance(ddof, (bool, np.bool_)) or ddof < 0:
        raise ValueError(f"ddof must be a non-negative integer, got {ddof!r}")
    eps = check_eps(eps)
    X2, was_1d = _as_features(X)
    n = X2.shape[0]
    if n < ddof + 1:
        raise ValueError(
            f"zscore with ddof={ddof} needs at least {ddof + 1} samples (n - ddof must be "
            f"positive), got {n}"
        )
    mean, sum_sq = _mean_and_sum_sq(X2)
    var = sum_sq / (n - ddof)
    scale = np.sqrt(var + eps) if eps > 0 else _safe_std(var, sum_sq / n, mean, n)
    out = _center_and_divide(X2, mean, scale)
    return out[:, 0] if was_1d else out
