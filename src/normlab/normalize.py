"""The one operation behind every normalization in the course: normalize over some axes.

Batch, layer, instance and group normalization all compute

    x_hat = (x - mean(x)) / sqrt(var(x) + eps)

with the mean and the BIASED variance taken over a set of axes; they differ only in which
axes (and, for group norm, after a reshape). Shapes: ``x`` has any shape; ``axes`` is a tuple
of axis indices; ``x_hat`` has the shape of ``x``; statistics keep the reduced axes as size 1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["normalize_forward", "normalize_backward"]


def normalize_forward(x: np.ndarray, axes: tuple[int, ...], eps: float = 1e-5):
    """Normalize ``x`` over ``axes``; return ``(x_hat, cache)``.

    cache = (x_hat, invstd, axes), with ``invstd = 1 / sqrt(var + eps)`` of the
    keepdims shape, and ``mean``/``var`` available as ``cache_stats(cache)``.
    """
    axes = tuple(axes)
    mu = x.mean(axis=axes, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=axes, keepdims=True)
    invstd = 1.0 / np.sqrt(var + eps)
    x_hat = xc * invstd
    return x_hat, (x_hat, invstd, axes, mu, var)


def normalize_backward(dx_hat: np.ndarray, cache) -> np.ndarray:
    """Gradient through ``normalize_forward``: given dL/dx_hat, return dL/dx (closed form).

    dx = invstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)), means over axes.
    """
    x_hat, invstd, axes = cache[0], cache[1], cache[2]
    mean_d = dx_hat.mean(axis=axes, keepdims=True)
    mean_dx = np.mean(dx_hat * x_hat, axis=axes, keepdims=True)
    return invstd * (dx_hat - mean_d - x_hat * mean_dx)
