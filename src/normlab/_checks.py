"""Input validation shared by every reference implementation.

Every public function validates its inputs with these helpers so that bad input gets one
clear error that names the argument, what was wrong, and what was expected.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_float_array", "check_rank", "check_param_shape"]


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


def check_rank(x: np.ndarray, ranks, name: str = "x", what: str = "") -> None:
    """Raise ValueError unless ``x.ndim`` is one of ``ranks``."""
    ranks = tuple(ranks) if np.iterable(ranks) else (ranks,)
    if x.ndim not in ranks:
        expected = " or ".join(f"{r}D" for r in ranks)
        suffix = f" {what}" if what else ""
        raise ValueError(
            f"expected {expected} input{suffix} for {name} (got {x.ndim}D input of shape {x.shape})"
        )


def check_param_shape(p, shape, name: str, x_dtype=None) -> np.ndarray:
    """Return parameter ``p`` as a float array of exactly ``shape`` (no broadcasting)."""
    arr = as_float_array(p, name)
    shape = tuple(shape)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr
