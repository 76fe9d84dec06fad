"""The operations behind every normalization in the course: normalize over some axes, then
scale and shift.

Batch, layer, instance and group normalization all compute

    x_hat = (x - mean(x)) / sqrt(var(x) + eps)

with the mean and the BIASED variance taken over a set of axes; they differ only in which
axes (and, for group norm, after a reshape). Shapes: ``x`` has any shape; ``axes`` is a tuple
of axis indices; ``x_hat`` has the shape of ``x``; statistics keep the reduced axes as size 1.

The learned scale and shift that follow, ``gamma * x_hat + beta``, have their parameters on
some other axes (``param_axes``): :func:`scale_shift_forward` / :func:`scale_shift_backward`.
"""

from __future__ import annotations

import numpy as np

from .validation import check_param_shape

__all__ = [
    "normalize_forward",
    "normalize_backward",
    "param_view",
    "scale_shift_forward",
    "scale_shift_backward",
]


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


def param_view(p: np.ndarray, ndim: int, param_axes: tuple[int, ...]) -> np.ndarray:
    """Reshape ``p`` (shape x.shape[param_axes]) so it broadcasts along the other axes."""
    shape = [1] * ndim
    for axis, size in zip(param_axes, p.shape):
        shape[axis] = size
    return p.reshape(shape)


def scale_shift_forward(x_hat, gamma, beta, param_axes):
    """Return ``gamma * x_hat + beta`` with gamma/beta living on ``param_axes`` of x_hat.

    Shapes: ``x_hat`` any shape; ``gamma`` and ``beta`` exactly
    ``tuple(x_hat.shape[a] for a in param_axes)`` (no other broadcasting), or None.
    """
    param_axes = tuple(param_axes)
    expected = tuple(x_hat.shape[a] for a in param_axes)
    out = x_hat
    if gamma is not None:
        gamma = check_param_shape(gamma, expected, "gamma")
        out = out * param_view(gamma, x_hat.ndim, param_axes)
    if beta is not None:
        beta = check_param_shape(beta, expected, "beta")
        out = out + param_view(beta, x_hat.ndim, param_axes)
    if out is x_hat:
        out = x_hat.copy()
    return out


def scale_shift_backward(dout, x_hat, gamma, param_axes, has_beta: bool = True):
    """Gradients of ``gamma * x_hat + beta``: return ``(dx_hat, dgamma, dbeta)``.

    Shapes: ``dout`` and ``dx_hat`` like ``x_hat``; ``dgamma``/``dbeta`` like gamma (sums
    over every axis not in ``param_axes``), or None when gamma / beta is absent.
    """
    param_axes = tuple(param_axes)
    summed = tuple(a for a in range(x_hat.ndim) if a not in param_axes)
    param_shape = tuple(x_hat.shape[a] for a in param_axes)
    dbeta = dout.sum(axis=summed).reshape(param_shape) if has_beta else None
    if gamma is None:
        return dout, None, dbeta
    dgamma = (dout * x_hat).sum(axis=summed).reshape(param_shape)
    dx_hat = dout * param_view(gamma, x_hat.ndim, param_axes)
    return dx_hat, dgamma, dbeta
