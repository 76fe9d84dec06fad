"""RMS normalization (Zhang & Sennrich 2019), as torch.nn.RMSNorm / F.rms_norm (torch 2.13).

RMSNorm (均方根归一化) is layer norm without the centring and without beta: it divides by the
root mean square over the trailing axes of shape ``gamma.shape`` and scales by ``gamma``::

    rms   = sqrt(mean(x**2 over the trailing axes) + eps)
    x_hat = x / rms
    out   = gamma * x_hat

``eps=None`` means torch's default, ``np.finfo(x.dtype).eps`` (2.2e-16 in float64, 1.2e-7 in
float32). The backward, with ``g = dout * gamma`` and means over the same axes::

    dgamma = sum(dout * x_hat over the leading axes)
    dx     = (g - x_hat * mean(g * x_hat)) / rms

(``layernorm_backward`` without its ``- mean(g)`` term: no mean was subtracted).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .normalize import scale_shift_backward, scale_shift_forward
from .validation import (
    as_float_array,
    check_eps,
    check_min_rank,
    check_param_shape,
    check_trailing_shape,
)

__all__ = ["RMSNormCache", "rmsnorm_forward", "rmsnorm_backward"]


class RMSNormCache(NamedTuple):
    """What ``rmsnorm_backward`` needs from the forward pass.

    - ``x_hat``: ``x / rms``, shape of x.
    - ``inv_rms``: ``1 / rms``, shape of x with the normalized axes kept as size 1.
    - ``gamma``: the scale, shape ``normalized_shape``, in x's dtype.
    - ``axes``: the normalized (trailing) axes of x.
    - ``eps``: the epsilon used.
    """

    x_hat: np.ndarray
    inv_rms: np.ndarray
    gamma: np.ndarray
    axes: tuple[int, ...]
    eps: float


def rmsnorm_forward(x, gamma, eps: float | None = None):
    """RMS normalization over the trailing axes of shape ``gamma.shape``.

    Inputs:

    - x: float array of shape ``(*, *normalized_shape)``, any number of leading axes.
    - gamma: scale of shape ``normalized_shape`` (at least one axis), e.g. ``(D,)`` to
      normalize each row of an (N, D) input, ``(H, W)`` for the last two axes.
    - eps: added to the mean square; None for torch's default ``np.finfo(x.dtype).eps``.

    Returns a tuple of:

    - out: ``gamma * x / sqrt(mean(x**2) + eps)``, shape and dtype of x.
    - cache: an ``RMSNormCache`` for ``rmsnorm_backward``.

    Raises TypeError for non-float input, ValueError for NaN/inf, a gamma without axes, an x
    whose trailing shape is not gamma's, and a negative or non-finite eps.
    """
    x = as_float_array(x, "x")
    gamma = as_float_array(gamma, "gamma")
    check_min_rank(gamma, 1, "gamma")
    axes = check_trailing_shape(x, gamma.shape, " (gamma's shape)")
    eps = float(np.finfo(x.dtype).eps) if eps is None else check_eps(eps)
    gamma = gamma.astype(x.dtype, copy=False)
    if x.size == 0:  # nothing to normalize; avoid mean-of-empty warnings
        keep = tuple(1 if a in axes else s for a, s in enumerate(x.shape))
        x_hat, inv_rms = np.empty_like(x), np.empty(keep, x.dtype)
    else:
        inv_rms = 1.0 / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + eps)
        x_hat = x * inv_rms
    out = scale_shift_forward(x_hat, gamma, None, axes)
    return out, RMSNormCache(x_hat, inv_rms, gamma, axes, eps)


def rmsnorm_backward(dout, cache: RMSNormCache):
    """Backward pass of ``rmsnorm_forward``.

    Inputs:

    - dout: upstream gradient, shape of x.
    - cache: the ``RMSNormCache`` from ``rmsnorm_forward``.

    Returns a tuple of:

    - dx: gradient with respect to x, shape of x.
    - dgamma: gradient with respect to gamma, shape ``normalized_shape`` (sums over the
      leading axes).
    """
    if not isinstance(cache, RMSNormCache):
        raise TypeError(
            f"cache must be the RMSNormCache returned by rmsnorm_forward, got "
            f"{type(cache).__name__}"
        )
    dout = check_param_shape(dout, cache.x_hat.shape, "dout").astype(cache.x_hat.dtype,
                                                                      copy=False)
    g, dgamma, _ = scale_shift_backward(dout, cache.x_hat, cache.gamma, cache.axes,
                                        has_beta=False)
    if dout.size == 0:
        return np.zeros_like(dout), dgamma
    mean_gx = np.mean(g * cache.x_hat, axis=cache.axes, keepdims=True)
    dx = (g - cache.x_hat * mean_gx) * cache.inv_rms
    return dx, dgamma
