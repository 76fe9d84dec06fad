"""Layer, instance and group normalization: one operation, different reduction axes.

Every normalization here is ``normalize_forward`` (normlab.normalize) over some axes,
followed by a learned scale and shift whose parameters live on some other axes::

    x_hat = (x - mean(x, axes)) / sqrt(var(x, axes) + eps)      # biased variance
    out   = gamma * x_hat + beta                                # gamma, beta on param_axes

For a 4D input (N, C, H, W):

    ============  =====================================  ==========  ==============
    layer         reduction axes                         param axes  param shape
    ============  =====================================  ==========  ==============
    batch norm    (0, 2, 3)                              (1,)        (C,)
    layer norm    (1, 2, 3)  (the trailing axes)         (1, 2, 3)   (C, H, W)
    instance norm (2, 3)                                 (1,)        (C,)
    group norm    reshape to (N, G, C/G, H, W), (2,3,4)  (1, 2)      (G, C/G) = (C,)
    ============  =====================================  ==========  ==============

``norm_over_axes_forward`` / ``norm_over_axes_backward`` are that single operation; the
layer, instance and group functions only choose the axes (group norm also reshapes).
Everything matches torch 2.13 ``F.layer_norm``, ``F.instance_norm`` (no running statistics)
and ``F.group_norm``. ``gamma`` or ``beta`` may be ``None`` (no scale / no shift); the
matching gradient is then returned as ``None``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .normalize import (
    normalize_backward,
    normalize_forward,
    scale_shift_backward,
    scale_shift_forward,
)
from .validation import (
    as_float_array,
    check_axes,
    check_eps,
    check_int,
    check_min_rank,
    check_more_than_one,
    check_param_shape,
    check_trailing_shape,
)

__all__ = [
    "norm_over_axes_forward",
    "norm_over_axes_backward",
    "layernorm_forward",
    "layernorm_backward",
    "groupnorm_forward",
    "groupnorm_backward",
    "instancenorm_forward",
    "instancenorm_backward",
]


class NormOverAxesCache(NamedTuple):
    """What ``norm_over_axes_backward`` needs from the forward pass."""

    norm_cache: tuple | None  # normalize_forward's cache; None for an empty input
    x_hat: np.ndarray  # normalized input, shape of x
    gamma: np.ndarray | None  # scale in its own shape, or None
    has_beta: bool
    param_axes: tuple[int, ...]


class GroupNormCache(NamedTuple):
    """Cache of ``groupnorm_forward``: the cache of the grouped view and the input shape."""

    inner: NormOverAxesCache
    x_shape: tuple[int, ...]


# -------------------------------------------------------------------- the one operation


def _norm_over_axes(x, gamma, beta, axes, param_axes, eps):
    """Forward of the shared operation on validated ``x``, ``axes`` and ``eps``."""
    if x.size == 0:  # nothing to normalize; avoid mean-of-empty warnings
        x_hat, norm_cache = np.empty_like(x), None
    else:
        x_hat, norm_cache = normalize_forward(x, axes, eps)
    out = scale_shift_forward(x_hat, gamma, beta, param_axes)
    gamma = None if gamma is None else np.asarray(gamma)
    return out, NormOverAxesCache(norm_cache, x_hat, gamma, beta is not None, param_axes)


def norm_over_axes_forward(x, gamma, beta, axes, param_axes, eps: float = 1e-5):
    """Normalize ``x`` over ``axes``, then scale and shift along ``param_axes``.

    Shapes: ``x`` any float array; ``gamma``/``beta`` exactly
    ``tuple(x.shape[a] for a in param_axes)`` or None; ``out`` like ``x``.
    Returns ``(out, cache)``; statistics use the biased variance.
    """
    x = as_float_array(x, "x")
    axes = check_axes(axes, x.ndim, "axes")
    param_axes = check_axes(param_axes, x.ndim, "param_axes")
    return _norm_over_axes(x, gamma, beta, axes, param_axes, check_eps(eps))


def norm_over_axes_backward(dout, cache: NormOverAxesCache):
    """Backward of ``norm_over_axes_forward``: return ``(dx, dgamma, dbeta)``.

    Shapes: ``dout`` and ``dx`` like x; ``dgamma``/``dbeta`` like gamma/beta (None if absent).
    """
    dout = check_param_shape(dout, cache.x_hat.shape, "dout")
    dx_hat, dgamma, dbeta = scale_shift_backward(
        dout, cache.x_hat, cache.gamma, cache.param_axes, cache.has_beta
    )
    if cache.norm_cache is None:
        return np.zeros_like(dx_hat), dgamma, dbeta
    return normalize_backward(dx_hat, cache.norm_cache), dgamma, dbeta


# ------------------------------------------------------------------------------ layer norm


def _normalized_shape(gamma, beta, normalized_shape) -> tuple[int, ...]:
    """Layer norm's normalized shape: given explicitly, else the shape of gamma or beta."""
    if normalized_shape is None:
        source = gamma if gamma is not None else beta
        if source is None:
            raise ValueError("normalized_shape is required when gamma and beta are both None")
        normalized_shape = np.shape(source)
    elif isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (normalized_shape,)
    shape = tuple(int(s) for s in normalized_shape)
    if not shape:
        raise ValueError("normalized_shape must have at least one dimension, got ()")
    return shape


def layernorm_forward(x, gamma, beta, eps: float = 1e-5, *, normalized_shape=None):
    """Layer norm over the trailing axes of shape ``normalized_shape`` (torch F.layer_norm).

    Shapes: ``x`` ``(*, *normalized_shape)``; ``gamma``/``beta`` exactly ``normalized_shape`` or
    None; ``normalized_shape`` defaults to gamma's (else beta's) shape. Returns ``(out, cache)``.
    """
    x = as_float_array(x, "x")
    axes = check_trailing_shape(x, _normalized_shape(gamma, beta, normalized_shape))
    return _norm_over_axes(x, gamma, beta, axes, axes, check_eps(eps))


def layernorm_backward(dout, cache: NormOverAxesCache):
    """Backward of ``layernorm_forward``: ``(dx, dgamma, dbeta)``, shapes as x, gamma, beta."""
    return norm_over_axes_backward(dout, cache)


# ---------------------------------------------------------------------------- group norm


def _check_num_groups(num_groups, num_channels: int) -> int:
    """Return ``num_groups`` as an int that is positive and divides ``num_channels``."""
    num_groups = check_int(num_groups, "num_groups", 1)
    if num_channels % num_groups:
        raise ValueError(
            f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
        )
    return int(num_groups)


def groupnorm_forward(x, gamma, beta, num_groups: int, eps: float = 1e-5):
    """Group norm (torch F.group_norm): statistics per (sample, group of C/G channels).

    Shapes: ``x`` (N, C, *spatial); ``gamma``/``beta`` (C,) or None, one per CHANNEL.
    Computed as ``norm_over_axes`` on the view (N, G, C/G, *spatial) over axes (2, ...),
    with gamma viewed as (G, C/G). Returns ``(out, cache)``, ``out`` of shape (N, C, *spatial).
    """
    x = as_float_array(x, "x")
    check_min_rank(x, 2, "x", "(N, C, *spatial)")
    n, c = x.shape[:2]
    groups = _check_num_groups(num_groups, c)
    # torch quirk, mirrored: F.group_norm applies batch norm's batch-size check to the view
    # (N * C/G, G, *spatial), so it refuses N * C/G * prod(spatial) == 1 but accepts other
    # one-element groups (e.g. x of shape (2, 1)), whose output is 0.
    check_more_than_one(n * (c // groups) * math.prod(x.shape[2:]), x.shape)
    eps = check_eps(eps)
    params = []
    for p, name in ((gamma, "gamma"), (beta, "beta")):
        if p is not None:
            p = check_param_shape(p, (c,), name).reshape(groups, c // groups)
        params.append(p)
    grouped = x.reshape(n, groups, c // groups, *x.shape[2:])
    axes = tuple(range(2, grouped.ndim))
    out, inner = _norm_over_axes(grouped, *params, axes, (1, 2), eps)
    return out.reshape(x.shape), GroupNormCache(inner, x.shape)


def groupnorm_backward(dout, cache: GroupNormCache):
    """Backward of ``groupnorm_forward``: ``(dx, dgamma, dbeta)``; dgamma/dbeta shape (C,)."""
    dout = check_param_shape(dout, cache.x_shape, "dout")
    dx, dgamma, dbeta = norm_over_axes_backward(dout.reshape(cache.inner.x_hat.shape), cache.inner)
    c = cache.x_shape[1]
    flat = [None if g is None else g.reshape(c) for g in (dgamma, dbeta)]
    return dx.reshape(cache.x_shape), *flat


# ------------------------------------------------------------------------- instance norm


def instancenorm_forward(x, gamma=None, beta=None, eps: float = 1e-5):
    """Instance norm with batch statistics (torch F.instance_norm, use_input_stats=True).

    Statistics per (sample, channel) over the spatial axes. Shapes: ``x`` (N, C, *spatial);
    ``gamma``/``beta`` (C,) or None (torch's default ``affine=False``). Running statistics
    (``track_running_stats=True``) are not modelled. Returns ``(out, cache)``.
    """
    x = as_float_array(x, "x")
    check_min_rank(x, 2, "x", "(N, C, *spatial)")
    check_more_than_one(math.prod(x.shape[2:]), x.shape, "spatial element")  # 0: empty output
    axes = tuple(range(2, x.ndim))
    return _norm_over_axes(x, gamma, beta, axes, (1,), check_eps(eps))


def instancenorm_backward(dout, cache: NormOverAxesCache):
    """Backward of ``instancenorm_forward``: ``(dx, dgamma, dbeta)``; dgamma/dbeta (C,) or None."""
    return norm_over_axes_backward(dout, cache)
