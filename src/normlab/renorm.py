"""Batch renormalization (Ioffe 2017): batch norm corrected towards the moving statistics.

Training forward, per channel (axis 1), statistics over every other axis::

    mu_B, var_B = batch mean and BIASED batch variance
    sigma_B     = sqrt(var_B + eps)                 # eps inside the sqrt, as in batch norm
    sigma       = sqrt(running_var + eps)           # moving sigma from torch-style running_var
    r = clip(sigma_B / sigma, 1 / r_max, r_max)     # constants in backprop (stop-gradient)
    d = clip((mu_B - running_mean) / sigma, -d_max, d_max)
    x_hat = (x - mu_B) / sigma_B * r + d
    out   = gamma * x_hat + beta

Conventions chosen (the paper leaves them open):

* the moving statistics are kept as torch's BatchNorm keeps them: ``running_mean`` and
  ``running_var`` (not a moving sigma), updated AFTER r and d are computed with
  ``running = (1 - momentum) * running + momentum * batch`` and the UNBIASED batch variance
  for ``running_var``. With r_max = 1 and d_max = 0 the layer is therefore exactly
  ``torch.nn.BatchNorm`` in training and in eval, running statistics included.
* eval uses the running statistics exactly as batch norm does (r and d play no role).

Shapes: ``x`` (N, C) or (N, C, *spatial); gamma, beta, running_mean, running_var (C,).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._checks import as_float_array, check_param_shape
from .groupwise import _check_dout, _check_eps, _check_min_rank, _param_view
from .groupwise import scale_shift_backward, scale_shift_forward
from .normalize import normalize_backward, normalize_forward

__all__ = [
    "batchrenorm_forward",
    "batchrenorm_backward",
    "update_moving_stats",
    "renorm_schedule",
]


class BatchRenormCache(NamedTuple):
    """Forward results: what backward needs, plus r, d, batch and UPDATED running stats."""

    training: bool
    x_hat: np.ndarray  # training: r * (x - mu_B) / sigma_B + d; eval: (x - mean) * invstd
    gamma: np.ndarray | None
    has_beta: bool
    running_mean: np.ndarray  # (C,), after this step's update (unchanged in eval)
    running_var: np.ndarray  # (C,), after this step's update (unchanged in eval)
    running_invstd: np.ndarray  # (C,), 1 / sqrt(running_var + eps) BEFORE the update
    norm_cache: tuple | None = None  # normalize_forward's cache (training, non-empty x)
    r: np.ndarray | None = None  # (C,), training only
    d: np.ndarray | None = None  # (C,), training only
    batch_mean: np.ndarray | None = None  # (C,), training only
    batch_var: np.ndarray | None = None  # (C,), biased, training only


def _check_number(value, name: str, lowest: float) -> float:
    """Return ``value`` as a finite float that is at least ``lowest``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < lowest:
        raise ValueError(f"{name} must be a finite number >= {lowest}, got {value}")
    return float(value)


def _check_momentum(momentum) -> float:
    """Return ``momentum`` as a float in [0, 1] (torch convention: weight of the batch)."""
    momentum = _check_number(momentum, "momentum", 0.0)
    if momentum > 1:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    return momentum


def update_moving_stats(running_mean, running_var, batch_mean, batch_var, n: int, momentum=0.1):
    """Torch BatchNorm's running-statistics update; return ``(new_mean, new_var)``.

    ``new = (1 - momentum) * running + momentum * batch`` with the UNBIASED batch variance
    ``batch_var * n / (n - 1)`` (``batch_var`` is the biased one, n values per channel).
    All arrays have shape (C,); the inputs are not modified.
    """
    momentum = _check_momentum(momentum)
    if n < 2:
        raise ValueError(f"the unbiased variance needs n >= 2 values per channel, got n={n}")
    new_mean = (1 - momentum) * running_mean + momentum * batch_mean
    new_var = (1 - momentum) * running_var + momentum * batch_var * (n / (n - 1))
    return new_mean, new_var


def batchrenorm_forward(
    x,
    gamma,
    beta,
    running_mean,
    running_var,
    r_max: float,
    d_max: float,
    eps: float = 1e-5,
    momentum: float = 0.1,
    training: bool = True,
):
    """Batch renormalization forward; return ``(out, cache)`` (cache: ``BatchRenormCache``).

    Shapes: ``x`` (N, C) or (N, C, *spatial); ``gamma``/``beta`` (C,) or None;
    ``running_mean``/``running_var`` (C,), not modified: the updated values are
    ``cache.running_mean`` / ``cache.running_var``. ``r_max >= 1``, ``d_max >= 0``.
    ``training=False`` normalizes with the running statistics, as batch norm's eval.
    """
    x = as_float_array(x, "x")
    _check_min_rank(x, 2, "(N, C, *spatial)")
    c = x.shape[1]
    running_mean = check_param_shape(running_mean, (c,), "running_mean")
    running_var = check_param_shape(running_var, (c,), "running_var")
    if np.any(running_var < 0):
        raise ValueError("running_var must be >= 0 everywhere")
    r_max = _check_number(r_max, "r_max", 1.0)
    d_max = _check_number(d_max, "d_max", 0.0)
    eps = _check_eps(eps)
    _check_momentum(momentum)
    running_invstd = 1.0 / np.sqrt(running_var + eps)
    fixed = dict(
        gamma=None if gamma is None else np.asarray(gamma),
        has_beta=beta is not None,
        running_invstd=running_invstd,
    )

    def per_channel(p):  # (C,) -> broadcastable against x
        return _param_view(p, x.ndim, (1,))

    n = x.size // c if c else 0
    if not training:
        x_hat = (x - per_channel(running_mean)) * per_channel(running_invstd)
    elif n == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {x.shape}"
        )
    elif x.size == 0:  # empty batch: empty output, running statistics unchanged
        x_hat = np.empty_like(x)
    else:
        x0, norm_cache = normalize_forward(x, (0, *range(2, x.ndim)), eps)  # (x - mu_B) / sigma_B
        batch_mean, batch_var = norm_cache[3].reshape(c), norm_cache[4].reshape(c)
        r = np.clip(np.sqrt(batch_var + eps) * running_invstd, 1.0 / r_max, r_max)
        d = np.clip((batch_mean - running_mean) * running_invstd, -d_max, d_max)
        x_hat = x0 * per_channel(r) + per_channel(d)
        new_mean, new_var = update_moving_stats(
            running_mean, running_var, batch_mean, batch_var, n, momentum
        )
        cache = BatchRenormCache(
            True, x_hat, running_mean=new_mean, running_var=new_var, norm_cache=norm_cache,
            r=r, d=d, batch_mean=batch_mean, batch_var=batch_var, **fixed,
        )
        return scale_shift_forward(x_hat, gamma, beta, (1,)), cache
    cache = BatchRenormCache(
        training, x_hat, running_mean=running_mean, running_var=running_var, **fixed
    )
    return scale_shift_forward(x_hat, gamma, beta, (1,)), cache


def batchrenorm_backward(dout, cache: BatchRenormCache):
    """Backward of ``batchrenorm_forward``: ``(dx, dgamma, dbeta)``, r and d held constant.

    Training: ``dx = r * gamma / sigma_B * (dout - mean(dout) - x0 * mean(dout * x0))`` with
    ``x0 = (x - mu_B) / sigma_B``; eval: ``dx = dout * gamma / sqrt(running_var + eps)``.
    Shapes: ``dout``/``dx`` like x; ``dgamma``/``dbeta`` (C,) or None.
    """
    dout = _check_dout(dout, cache.x_hat.shape)
    dx_hat, dgamma, dbeta = scale_shift_backward(
        dout, cache.x_hat, cache.gamma, (1,), cache.has_beta
    )
    ndim = dx_hat.ndim
    if not cache.training:
        return dx_hat * _param_view(cache.running_invstd, ndim, (1,)), dgamma, dbeta
    if cache.norm_cache is None:  # empty batch
        return np.zeros_like(dx_hat), dgamma, dbeta
    dx = normalize_backward(dx_hat * _param_view(cache.r, ndim, (1,)), cache.norm_cache)
    return dx, dgamma, dbeta


def renorm_schedule(
    step: int,
    *,
    warmup_steps: int = 5000,
    r_max_final: float = 3.0,
    r_max_reached_at: int = 40000,
    d_max_final: float = 5.0,
    d_max_reached_at: int = 25000,
):
    """Return ``(r_max, d_max)`` for training step ``step`` (0-based), the paper's schedule.

    ``(1, 0)`` (plain batch norm) for ``step <= warmup_steps``; then r_max rises LINEARLY to
    ``r_max_final`` at ``r_max_reached_at`` and d_max linearly to ``d_max_final`` at
    ``d_max_reached_at``; constant afterwards. (The paper says only "gradually relaxed";
    linear ramps are our choice.)
    """
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step must be an int, got {type(step).__name__}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    ends = {"r_max_reached_at": r_max_reached_at, "d_max_reached_at": d_max_reached_at}
    for name, end in ends.items():
        if end <= warmup_steps:
            raise ValueError(f"{name} ({end}) must be after warmup_steps ({warmup_steps})")

    def ramp(start_value, end_value, end_step):
        t = min(max((step - warmup_steps) / (end_step - warmup_steps), 0.0), 1.0)
        return start_value + t * (end_value - start_value)

    return ramp(1.0, r_max_final, r_max_reached_at), ramp(0.0, d_max_final, d_max_reached_at)
