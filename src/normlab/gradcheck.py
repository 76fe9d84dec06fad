"""Gradient checking: centered finite differences and the relative error used to judge them.

Conventions (CS231n's): centered differences in float64 with
h about 1e-5; relative error ``max(|a - b| / max(1e-8, |a| + |b|))``; about 1e-7 or smaller
is good, above 1e-2 is wrong.
"""

from __future__ import annotations

import numpy as np

__all__ = ["numerical_gradient", "rel_error"]


def numerical_gradient(f, x: np.ndarray, dout=None, h: float = 1e-5) -> np.ndarray:
    """Numerical gradient of ``sum(f(x) * dout)`` with respect to ``x`` (same shape as x).

    ``f`` maps an array to an array (or a scalar, then ``dout`` may be omitted). ``x`` is
    perturbed in place one entry at a time and always restored, even if ``f`` raises.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating-point array, got dtype {x.dtype}")
    if x.dtype != np.float64:
        raise TypeError(
            f"x must be float64 for a meaningful finite-difference check, got {x.dtype}"
        )
    if h <= 0:
        raise ValueError(f"h must be positive, got {h}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        try:
            x[ix] = old + h
            pos = np.asarray(f(x), dtype=np.float64).copy()
            x[ix] = old - h
            neg = np.asarray(f(x), dtype=np.float64).copy()
        finally:
            x[ix] = old
        diff = pos - neg
        if dout is None:
            if diff.size != 1:
                raise ValueError(
                    "f returned an array of shape %s; pass dout of that shape" % (diff.shape,)
                )
            grad[ix] = diff.item() / (2 * h)
        else:
            grad[ix] = np.sum(diff * dout) / (2 * h)
        it.iternext()
    return grad


def rel_error(a, b) -> float:
    """Maximum elementwise relative error ``|a - b| / max(1e-8, |a| + |b|)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
