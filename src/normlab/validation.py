"""Input validation for every reference implementation: one helper per rule.

Each public function of ``normlab`` validates its arguments with these helpers (the role of
scikit-learn's ``sklearn.utils.validation``), so that the same mistake gets the same error
everywhere: one clear message that names the argument, what was wrong and what was expected.
Each helper returns the validated value (converted where it says so) or raises.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "as_float_array",
    "as_real_array",
    "as_data_matrix",
    "check_not_empty",
    "check_rank",
    "check_min_rank",
    "check_param_shape",
    "check_trailing_shape",
    "check_number",
    "check_eps",
    "check_momentum",
    "check_int",
    "check_flag",
    "check_axis",
    "check_axes",
    "check_more_than_one",
]


# ------------------------------------------------------------------------------- arrays


def as_float_array(x, name: str = "x", *, allow_nonfinite: bool = False) -> np.ndarray:
    """Return ``x`` as a floating-point ndarray, refusing integers, booleans and NaN/inf.

    Integer input is rejected rather than silently cast, as torch does for its
    normalization layers.
    """
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got an array of dtype object")
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), got dtype "
            f"{arr.dtype}; convert it first, e.g. {name}.astype(np.float64)"
        )
    if not allow_nonfinite and arr.size and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); expected finite values")
    return arr


def as_real_array(x, name: str = "X") -> np.ndarray:
    """Like :func:`as_float_array`, but data (not a layer's input): integer, boolean and other
    float widths are converted to float64 first, as scikit-learn's scalers do."""
    arr = np.asarray(x)
    other_float = arr.dtype.kind == "f" and arr.dtype not in (np.float32, np.float64)
    if arr.dtype.kind in "biu" or other_float:
        arr = arr.astype(np.float64)
    return as_float_array(arr, name)


def check_rank(x: np.ndarray, ranks, name: str = "x", what: str = "") -> None:
    """Raise ValueError unless ``x.ndim`` is one of ``ranks``."""
    ranks = tuple(ranks) if np.iterable(ranks) else (ranks,)
    if x.ndim not in ranks:
        expected = " or ".join(f"{r}D" for r in ranks)
        suffix = f" {what}" if what else ""
        raise ValueError(
            f"expected {expected} input{suffix} for {name} (got {x.ndim}D input of shape {x.shape})"
        )


def check_not_empty(arr: np.ndarray, name: str = "X") -> None:
    """A data matrix needs at least one sample (and one feature when 2-D)."""
    if arr.shape[0] == 0 or (arr.ndim == 2 and arr.shape[1] == 0):
        raise ValueError(
            f"{name} has shape {arr.shape}; expected at least 1 sample and 1 feature"
        )


def as_data_matrix(X, name: str = "X") -> np.ndarray:
    """Validate a data matrix of shape (n_samples, n_features), both >= 1 (see
    :func:`as_real_array` for the dtypes accepted)."""
    arr = as_real_array(X, name)
    try:
        check_rank(arr, 2, name, "of shape (n_samples, n_features)")
    except ValueError as err:
        if arr.ndim != 1:
            raise
        raise ValueError(
            f"{err}; use {name}.reshape(-1, 1) if it holds a single feature "
            f"or {name}.reshape(1, -1) if it holds a single sample"
        ) from None
    check_not_empty(arr, name)
    return arr


def check_min_rank(x: np.ndarray, min_ndim: int, name: str = "x", layout: str = "") -> None:
    """Raise ValueError unless ``x`` has at least ``min_ndim`` axes (``layout`` names them,
    e.g. ``"(N, C, *spatial)"``)."""
    if x.ndim < min_ndim:
        shaped = f" of shape {layout}" if layout else ""
        plural = "s" if min_ndim != 1 else ""
        raise ValueError(
            f"expected {name}{shaped} with at least {min_ndim} dimension{plural} "
            f"(got {x.ndim}D input of shape {x.shape})"
        )


def check_trailing_shape(x: np.ndarray, shape, note: str = "") -> tuple[int, ...]:
    """torch's layer/RMS norm rule: ``x`` must have shape ``(*, *shape)``. Returns the
    trailing axes of x that ``shape`` covers; ``note`` says where ``shape`` came from."""
    shape = tuple(shape)
    k = len(shape)
    if x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ValueError(
            f"Given normalized_shape={shape}{note}, expected input with shape "
            f"(*, {', '.join(map(str, shape))}), got input of shape {x.shape}"
        )
    return tuple(range(x.ndim - k, x.ndim))


def check_param_shape(p, shape, name: str) -> np.ndarray:
    """Return ``p`` (a parameter, a statistic or an upstream gradient) as a finite float array
    of exactly ``shape`` (no broadcasting)."""
    arr = as_float_array(p, name)
    shape = tuple(shape)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


def check_more_than_one(count: int, shape, what: str = "value per channel") -> None:
    """torch's ``_verify_batch_size``: training statistics over one value are refused.

    ``count`` is the number of values one statistic is taken over (values per channel for
    batch norm, spatial elements for instance norm, named by ``what``); ``shape`` the input's
    shape. Raises ValueError with torch's message when ``count == 1`` (0 is an empty input,
    allowed).
    """
    if count == 1:
        raise ValueError(
            f"Expected more than 1 {what} when training, got input size {tuple(shape)}"
        )


# ------------------------------------------------------------------------------ scalars


def check_number(value, name: str, lowest: float | None = None) -> float:
    """Return ``value`` as a finite float, at least ``lowest`` if given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or (lowest is not None and value < lowest):
        bound = "" if lowest is None else f" >= {lowest:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value}")
    return value


def check_eps(eps, name: str = "eps") -> float:
    """The epsilon added to a variance: a finite number >= 0."""
    return check_number(eps, name, 0.0)


def check_momentum(m, name: str = "momentum") -> float:
    """A momentum (either convention): a real number in [0, 1]."""
    if isinstance(m, bool) or not isinstance(m, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {type(m).__name__}")
    m = float(m)
    if not (math.isfinite(m) and 0.0 <= m <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {m}")
    return m


def check_int(value, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as an int (bools refused), at least ``minimum`` if given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_flag(value, name: str) -> bool:
    """Return ``value`` as a bool; only True and False (numpy's included) are accepted."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_axis(axis, ndim: int, name: str = "axis", what: str = "an int") -> int:
    """Return one axis index wrapped to [0, ndim); ``what`` says what else the caller accepts
    (e.g. ``"an int or None"``) in the TypeError for a non-integer."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be {what}, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(int(axis), ndim, msg_prefix=name)
    return int(axis) % ndim


def check_axes(axes, ndim: int, name: str = "axes") -> tuple[int, ...]:
    """Return ``axes`` as sorted non-negative ints; refuse duplicates and out-of-range axes."""
    try:
        raw = tuple(int(a) for a in (axes if np.iterable(axes) else (axes,)))
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {axes!r}") from None
    out = []
    for a in raw:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim, msg_prefix=name)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} contains a repeated axis: {raw}")
    return tuple(sorted(out))
