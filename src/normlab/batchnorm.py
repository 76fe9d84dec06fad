"""Batch normalization, functional API in CS231n's style (semantics of torch 2.13).

Shapes: ``x`` is (N, D) or (N, C, *spatial); statistics are per channel (axis 1), taken over
axis 0 and every axis >= 2, so ``n = N * prod(spatial)`` values per channel; ``gamma``,
``beta`` and all statistics have shape (C,); outputs keep the shape and dtype of ``x``.

Training mode uses the batch mean and the BIASED batch variance. Two backward passes are
given: ``batchnorm_backward`` walks the computational graph node by node (the derivation
the chapter teaches), ``batchnorm_backward_alt`` uses the closed form

    dx = gamma * invstd * (dout - mean(dout) - x_hat * mean(dout * x_hat)).

Implementation note (speed). ``x_hat = (x - mu) * invstd`` is the operation of
``normalize.normalize_forward`` over the axes ``(0, 2, 3, ...)``, and the closed-form
backward is ``normalize_backward`` with ``gamma * invstd`` in place of ``invstd``. The hot path
computes exactly that, but arranged for numpy's speed (tools/bench_batchnorm.py prints
both paths against torch):

- a "channel rows" view: ``x`` seen as (N, C * L), L = prod(spatial), with every per-channel
  vector repeated L times into one row, so that each elementwise step is a contiguous row
  operation (broadcasting a (1, C, 1, 1) array over (N, C, H, W) is 2-3x slower per pass);
- the cache keeps the centred input ``xc = x - mu`` (which the staged backward needs anyway)
  rather than ``x_hat``: ``out = xc * (gamma * invstd) + beta`` is then two passes, and the
  backward folds ``invstd`` into its per-channel constants;
- per-channel reductions of products use ``einsum``/``vecdot`` (no full-size temporary), and
  the means of the closed form are ``dbeta / n`` and ``dgamma / n``, computed once.

float32 input stays float32 throughout. These functions agree with torch to rounding error
(about 1e-15 relative in float64); the BatchNorm layers (``normlab.layers``) call them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .validation import (
    as_float_array,
    check_eps,
    check_min_rank,
    check_more_than_one,
    check_param_shape,
    check_rank,
)

__all__ = [
    "BatchNormCache",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_eval_forward",
    "batchnorm_eval_backward",
    "spatial_batchnorm_forward",
    "spatial_batchnorm_backward",
]


class BatchNormCache(NamedTuple):
    """What the forward pass keeps for the backward pass.

    - ``x``: the input (a reference, not a copy: do not modify it before calling backward).
    - ``xc``: the centred input ``x - mu``, shape of x (training caches; None in eval caches).
    - ``mu``, ``var``: the statistics used, shape (C,): batch mean and biased batch variance
      in training, the running statistics in eval.
    - ``invstd``: ``1 / sqrt(var + eps)``, shape (C,).
    - ``gamma``: the scale, shape (C,), in x's dtype.
    - ``eps``: the epsilon added to the variance.
    - ``training``: True for ``batchnorm_forward``, False for ``batchnorm_eval_forward``.
    """

    x: np.ndarray
    xc: np.ndarray | None
    mu: np.ndarray
    var: np.ndarray
    invstd: np.ndarray
    gamma: np.ndarray
    eps: float
    training: bool

    @property
    def x_hat(self) -> np.ndarray:
        """The normalized input ``(x - mu) * invstd``, shape of x (computed on access)."""
        keep = (1, -1) + (1,) * (self.x.ndim - 2)
        xc = self.xc if self.xc is not None else self.x - self.mu.reshape(keep)
        return xc * self.invstd.reshape(keep)


# ----------------------------------------------------------------------------- validation


def _check_input(x) -> np.ndarray:
    """x as a finite float array of rank >= 2 (N, C, *spatial)."""
    x = as_float_array(x, "x")
    check_min_rank(x, 2, "x", "(N, C, *spatial)")
    return x


def _check_channel_param(p, name: str, x: np.ndarray) -> np.ndarray:
    """A per-channel parameter of exactly shape (C,), cast to x's dtype."""
    return check_param_shape(p, (x.shape[1],), name).astype(x.dtype, copy=False)


def _values_per_channel(shape) -> int:
    return int(shape[0] * math.prod(shape[2:]))


def _check_dout(dout, cache: BatchNormCache, training: bool) -> np.ndarray:
    if not isinstance(cache, BatchNormCache):
        raise TypeError(
            f"cache must be the BatchNormCache returned by the forward pass, got "
            f"{type(cache).__name__}"
        )
    if cache.training != training:
        made_by, use = (
            ("batchnorm_forward", "batchnorm_backward or batchnorm_backward_alt")
            if cache.training
            else ("batchnorm_eval_forward", "batchnorm_eval_backward")
        )
        raise ValueError(f"this cache was made by {made_by}; use {use} with it")
    return check_param_shape(dout, cache.x.shape, "dout").astype(cache.x.dtype, copy=False)


# ------------------------------------------------------------------ channel-rows kernels


def _rows(x: np.ndarray):
    """View x (N, C, *spatial) as (N, C * L); return (view, C, L)."""
    n, c = x.shape[:2]
    return x.reshape(n, -1), c, x.size // (n * c)


def _per_channel(v: np.ndarray, length: int) -> np.ndarray:
    """Repeat a (C,) vector into one (C * L,) row matching the channel-rows view."""
    return v if length == 1 else np.repeat(v, length)


def _channel_sum(a2: np.ndarray, c: int, length: int) -> np.ndarray:
    """Per-channel sum of a channel-rows array (N, C * L) -> (C,)."""
    s = a2.sum(axis=0)
    return s if length == 1 else s.reshape(c, length).sum(axis=1)


def _channel_dot(a2: np.ndarray, b2: np.ndarray, c: int, length: int) -> np.ndarray:
    """Per-channel sum of a2 * b2 without a full-size temporary -> (C,)."""
    if length == 1:
        return np.einsum("nk,nk->k", a2, b2)
    a3, b3 = a2.reshape(a2.shape[0], c, length), b2.reshape(a2.shape[0], c, length)
    if hasattr(np, "vecdot"):  # numpy >= 2: a dot product per (n, c) row, the fastest here
        return np.vecdot(a3, b3).sum(axis=0)
    return np.einsum("ncl,ncl->nc", a3, b3).sum(axis=0)  # pragma: no cover - numpy 1.26


def _empty_grads(dout: np.ndarray, cache: BatchNormCache):
    c = cache.gamma.shape[0]
    return np.empty_like(dout), np.zeros(c, dout.dtype), np.zeros(c, dout.dtype)


# ----------------------------------------------------------------------------- training


def batchnorm_forward(x, gamma, beta, eps: float = 1e-5):
    """Training-mode batch normalization: ``out = gamma * (x - mu) / sqrt(var + eps) + beta``.

    x: (N, D) or (N, C, *spatial), float. gamma, beta: exactly (C,). mu and var are the
    batch mean and biased batch variance per channel (over axis 0 and axes >= 2).
    Returns ``(out, cache)``: out has x's shape and dtype; cache is a ``BatchNormCache``.
    Raises TypeError for non-float input, ValueError for NaN/inf, rank < 2, a parameter not
    of shape (C,), and for one value per channel (n == 1), like torch. An empty batch gives
    an empty output.
    """
    x = _check_input(x)
    gamma = _check_channel_param(gamma, "gamma", x)
    beta = _check_channel_param(beta, "beta", x)
    eps = check_eps(eps)
    check_more_than_one(_values_per_channel(x.shape), x.shape)
    if x.size == 0:
        nan = np.full(x.shape[1], np.nan, x.dtype)
        cache = BatchNormCache(x, np.empty_like(x), nan, nan, nan, gamma, eps, True)
        return np.empty_like(x), cache

    x2, c, length = _rows(x)
    n = x2.shape[0] * length
    mu = _channel_sum(x2, c, length) / n
    xc = x2 - _per_channel(mu, length)
    var = _channel_dot(xc, xc, c, length) / n  # biased, two-pass
    invstd = 1.0 / np.sqrt(var + eps)
    out = xc * _per_channel(gamma * invstd, length)  # = gamma * x_hat
    out += _per_channel(beta, length)
    cache = BatchNormCache(x, xc.reshape(x.shape), mu, var, invstd, gamma, eps, True)
    return out.reshape(x.shape), cache


def batchnorm_backward(dout, cache: BatchNormCache):
    """Training-mode backward, staged node by node through the computational graph.

    dout: upstream gradient, shape of x. cache: from ``batchnorm_forward``.
    Returns ``(dx, dgamma, dbeta)`` with shapes x, (C,), (C,). The graph, per channel over
    the reduced axes (n values each):

        mu = mean(x); xc = x - mu; var = mean(xc**2); std = sqrt(var + eps);
        invstd = 1 / std; x_hat = xc * invstd; out = gamma * x_hat + beta

    Written for reading, not speed: see ``batchnorm_backward_alt`` for the closed form.
    """
    dout = _check_dout(dout, cache, training=True)
    if dout.size == 0:
        return _empty_grads(dout, cache)
    xc = cache.xc
    axes = (0,) + tuple(range(2, xc.ndim))
    n = _values_per_channel(xc.shape)
    keep = (1, -1) + (1,) * (xc.ndim - 2)  # a (C,) vector as (1, C, 1, ...)
    var, gamma = cache.var.reshape(keep), cache.gamma.reshape(keep)

    # Forward values of the nodes after xc (cached): std, invstd and x_hat, recomputed.
    std = np.sqrt(var + cache.eps)
    invstd = 1.0 / std
    x_hat = xc * invstd

    # Node "affine": out = gamma * x_hat + beta.
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * x_hat).sum(axis=axes)
    dx_hat = dout * gamma
    # Node "x_hat": x_hat = xc * invstd. xc also feeds var, so dxc collects two branches.
    dxc = dx_hat * invstd
    dinvstd = np.sum(dx_hat * xc, axis=axes, keepdims=True)
    # Node "invstd": invstd = 1 / std.
    dstd = -dinvstd / (std * std)
    # Node "std": std = sqrt(var + eps).
    dvar = dstd * 0.5 / std
    # Node "var": var = mean(xc**2) -> each xc gets 2 * xc / n of dvar (second branch).
    dxc += (2.0 / n) * xc * dvar
    # Node "xc": xc = x - mu -> dx gets dxc directly; mu gets minus its sum.
    dmu = -np.sum(dxc, axis=axes, keepdims=True)
    # Node "mu": mu = mean(x) -> every x gets dmu / n.
    dx = dxc + dmu / n
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache: BatchNormCache):
    """Training-mode backward in closed form.

    dout: shape of x; cache: from ``batchnorm_forward``. Returns ``(dx, dgamma, dbeta)``,
    shapes x, (C,), (C,), with ``dbeta = sum(dout)``, ``dgamma = sum(dout * x_hat)`` and
    ``dx = gamma * invstd * (dout - mean(dout) - x_hat * mean(dout * x_hat))``
    (sums and means per channel over the reduced axes; the two means are dbeta / n and
    dgamma / n, so they are computed once).
    """
    dout = _check_dout(dout, cache, training=True)
    if dout.size == 0:
        return _empty_grads(dout, cache)
    d2, c, length = _rows(dout)
    xc2 = cache.xc.reshape(d2.shape)  # x_hat = xc * invstd, invstd folded into constants
    n = d2.shape[0] * length
    invstd = cache.invstd
    dbeta = _channel_sum(d2, c, length)
    dgamma = _channel_dot(d2, xc2, c, length) * invstd
    scale = cache.gamma * invstd
    dx = d2 * _per_channel(scale, length)
    correction = xc2 * _per_channel(scale * invstd * (dgamma / n), length)
    correction += _per_channel(scale * (dbeta / n), length)
    dx -= correction
    return dx.reshape(dout.shape), dgamma, dbeta


# ------------------------------------------------------------------------ eval mode


def batchnorm_eval_forward(x, gamma, beta, running_mean, running_var, eps: float = 1e-5):
    """Eval-mode batch normalization with fixed statistics.

    ``out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta``.
    x: (N, C, *spatial) or (N, D); gamma, beta, running_mean, running_var: exactly (C,).
    Any N works, including 1 (no batch statistics are taken). Returns ``(out, cache)``.
    """
    x = _check_input(x)
    gamma = _check_channel_param(gamma, "gamma", x)
    beta = _check_channel_param(beta, "beta", x)
    mean = check_param_shape(running_mean, (x.shape[1],), "running_mean")
    var = check_param_shape(running_var, (x.shape[1],), "running_var")
    if np.any(var < 0):
        raise ValueError("running_var must be >= 0")
    eps = check_eps(eps)
    invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    cache = BatchNormCache(x, None, mean, var, invstd, gamma, eps, False)
    if x.size == 0:
        return np.empty_like(x), cache
    x2, _, length = _rows(x)
    scale = gamma * invstd
    out = x2 * _per_channel(scale, length)
    out += _per_channel((beta - mean * scale).astype(x.dtype, copy=False), length)
    return out.reshape(x.shape), cache


def batchnorm_eval_backward(dout, cache: BatchNormCache):
    """Eval-mode backward: the statistics are constants, so ``dx = dout * gamma * invstd``.

    dout: shape of x; cache: from ``batchnorm_eval_forward``. Returns ``(dx, dgamma, dbeta)``
    with ``dgamma = sum(dout * x_hat)``, ``x_hat = (x - running_mean) * invstd``,
    ``dbeta = sum(dout)``; shapes x, (C,), (C,).
    """
    dout = _check_dout(dout, cache, training=False)
    if dout.size == 0:
        return _empty_grads(dout, cache)
    d2, c, length = _rows(dout)
    x2 = cache.x.reshape(d2.shape)
    mean = cache.mu.astype(dout.dtype, copy=False)
    dbeta = _channel_sum(d2, c, length)
    dgamma = _channel_dot(d2, x2 - _per_channel(mean, length), c, length) * cache.invstd
    dx = d2 * _per_channel(cache.gamma * cache.invstd, length)
    return dx.reshape(dout.shape), dgamma, dbeta


# ------------------------------------------------------------- spatial (CS231n names)


def spatial_batchnorm_forward(x, gamma, beta, eps: float = 1e-5):
    """``batchnorm_forward`` for images: x is (N, C, H, W), gamma and beta (C,).

    Statistics per channel over N, H and W. Kept under CS231n's name for the graded
    notebook; ``batchnorm_forward`` itself handles every rank.
    """
    check_rank(np.asarray(x), 4, "x", "(N, C, H, W)")
    return batchnorm_forward(x, gamma, beta, eps)


def spatial_batchnorm_backward(dout, cache: BatchNormCache):
    """Closed-form backward for ``spatial_batchnorm_forward``: dout (N, C, H, W).

    Returns ``(dx, dgamma, dbeta)`` with shapes (N, C, H, W), (C,), (C,).
    """
    check_rank(np.asarray(dout), 4, "dout", "(N, C, H, W)")
    return batchnorm_backward_alt(dout, cache)
