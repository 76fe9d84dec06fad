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

from typing import NamedTuple

import numpy as np

from .batchnorm import batchnorm_backward_alt, batchnorm_eval_forward, batchnorm_forward
from .normalize import param_view, scale_shift_backward, scale_shift_forward
from .running_stats import update_moving_stats
from .validation import (
    as_float_array,
    check_eps,
    check_int,
    check_min_rank,
    check_momentum,
    check_number,
    check_param_shape,
)

__all__ = [
    "batchrenorm_forward",
    "batchrenorm_backward",
    "update_moving_stats",  # defined in normlab.running_stats, shared with batch norm
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
    norm_cache: tuple | None = None  # batchnorm_forward's cache of x0 (training, non-empty x)
    r: np.ndarray | None = None  # (C,), training only
    d: np.ndarray | None = None  # (C,), training only
    batch_mean: np.ndarray | None = None  # (C,), training only
    batch_var: np.ndarray | None = None  # (C,), biased, training only


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
    check_min_rank(x, 2, "x", "(N, C, *spatial)")
    c = x.shape[1]
    running_mean = check_param_shape(running_mean, (c,), "running_mean")
    running_var = check_param_shape(running_var, (c,), "running_var")
    r_max = check_number(r_max, "r_max", 1.0)
    d_max = check_number(d_max, "d_max", 0.0)
    eps = check_eps(eps)
    momentum = check_momentum(momentum)
    ones, zeros = np.ones(c, x.dtype), np.zeros(c, x.dtype)
    # batch norm's eval forward with gamma = 1, beta = 0: (x - mean) * invstd, and the
    # checks of the running statistics (running_var >= 0)
    x_eval, eval_cache = batchnorm_eval_forward(x, ones, zeros, running_mean, running_var, eps)
    fixed = dict(
        gamma=None if gamma is None else np.asarray(gamma),
        has_beta=beta is not None,
        running_invstd=eval_cache.invstd,
    )
    if not training:
        x_hat = x_eval
    else:
        # batch norm's training forward with gamma = 1, beta = 0: x0 = (x - mu_B) / sigma_B,
        # and its checks (more than one value per channel)
        x0, bn_cache = batchnorm_forward(x, ones, zeros, eps)
        if x.size:
            n = x.size // c
            r = np.clip(np.sqrt(bn_cache.var + eps) * eval_cache.invstd, 1.0 / r_max, r_max)
            d = np.clip((bn_cache.mu - running_mean) * eval_cache.invstd, -d_max, d_max)
            x_hat = x0 * param_view(r, x.ndim, (1,)) + param_view(d, x.ndim, (1,))
            new_mean, new_var = update_moving_stats(
                running_mean, running_var, bn_cache.mu, bn_cache.var, n, momentum
            )
            cache = BatchRenormCache(
                True, x_hat, running_mean=new_mean, running_var=new_var, norm_cache=bn_cache,
                r=r, d=d, batch_mean=bn_cache.mu, batch_var=bn_cache.var, **fixed,
            )
            return scale_shift_forward(x_hat, gamma, beta, (1,)), cache
        x_hat = x0  # empty batch: empty output, running statistics unchanged
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
    dout = check_param_shape(dout, cache.x_hat.shape, "dout")
    dx_hat, dgamma, dbeta = scale_shift_backward(
        dout, cache.x_hat, cache.gamma, (1,), cache.has_beta
    )
    ndim = dx_hat.ndim
    if not cache.training:
        return dx_hat * param_view(cache.running_invstd, ndim, (1,)), dgamma, dbeta
    if cache.norm_cache is None:  # empty batch
        return np.zeros_like(dx_hat), dgamma, dbeta
    # batch norm's closed-form backward with gamma = 1, the upstream gradient times r
    dx, _, _ = batchnorm_backward_alt(dx_hat * param_view(cache.r, ndim, (1,)), cache.norm_cache)
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
    step = check_int(step, "step", 0)
    ends = {"r_max_reached_at": r_max_reached_at, "d_max_reached_at": d_max_reached_at}
    for name, end in ends.items():
        if end <= warmup_steps:
            raise ValueError(f"{name} ({end}) must be after warmup_steps ({warmup_steps})")

    def ramp(start_value, end_value, end_step):
        t = min(max((step - warmup_steps) / (end_step - warmup_steps), 0.0), 1.0)
        return start_value + t * (end_value - start_value)

    return ramp(1.0, r_max_final, r_max_reached_at), ramp(0.0, d_max_final, d_max_reached_at)
