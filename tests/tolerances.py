"""Tolerances for comparing two float64 implementations of a normalization (ours, torch's).

Two correct implementations differ only by rounding, and rounding errors scale with the
*magnitudes the computation goes through*, not with the result: a gradient that is exactly
0 in exact arithmetic (layer norm over one element) comes out of torch as 1e-12 at input
scale 30. A fixed ``atol`` is then either too tight (flaky, issue 11) or, to be safe at
large scales, too loose everywhere else. The helpers below bound the rounding error from
the inputs, element by element, with a fixed safety factor; a wrong formula (a sign, a
missing term, the wrong axis) errs by the size of the gradient itself, many orders of
magnitude above these bounds, so the tests keep failing on real mistakes.

Also ``budget(n)``: a test's Hypothesis example count, scaled by the loaded profile.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import settings

#: unit roundoff of float64 (2**-53); eps-machine is 2u.
U = np.finfo(np.float64).eps / 2
#: safety factor on the worst-case bounds below (their constants are not tracked exactly,
#: and the two implementations err independently).
SAFETY = 32.0


def budget(n: int) -> int:
    """``n`` examples under the "ci" profile (40 examples), proportionally more under "explore"."""
    return max(1, round(n * settings.default.max_examples / 40))


def normalization_tolerances(x, dout, *, axes, eps, gamma=None, beta=None, param_axes=(),
                             center=True, safety=SAFETY):
    """Per-element atol arrays ``{"out", "dx", "dgamma", "dbeta"}`` for a normalization.

    The operation: ``x_hat = (x - mean) / sigma`` over ``axes`` (one group = one slice over
    them, of ``n`` elements), ``sigma = sqrt(var + eps)`` (biased variance), then
    ``out = gamma * x_hat + beta`` with gamma/beta living on ``param_axes`` of x (shape
    ``x.shape[param_axes]``; None = absent), and its gradients for ``dout``.

    The bound, with ``u`` the unit roundoff and, per group, ``kappa = max|x| / sigma``, the
    condition number of ``x -> x_hat`` (a relative change ``u`` of the inputs moves
    ``x_hat`` by ``u * kappa``; large when the data have a large offset relative to their
    spread or when ``sigma ~ sqrt(eps)``, e.g. a group of one element):

    * ``x_hat`` is off by at most ``d = u (n + 2)(kappa + 1)`` (the mean's n-term sum, the
      cancellation ``x - mean``, the division);
    * ``out``:    ``|gamma| d + u (|gamma x_hat| + |beta|)``;
    * ``dbeta``:  sum over the ``m`` elements of each parameter of ``u m |dout|``;
    * ``dgamma``: sum of ``|dout| (u m |x_hat| + d)``;
    * ``dx = (dy - mean dy - x_hat mean(dy x_hat)) / sigma`` with ``dy = gamma dout``: each
      of its terms is at most ``a_i (|dy_i| + mean(|dy| a))`` with ``a = 1 + |x_hat| + d``
      and carries a relative error up to ``u (n + 2) + d`` (the two means, the error of
      x_hat, and sigma's relative error, which is below ``d``).

    ``center=False`` is the same without the mean (``sigma = sqrt(mean(x**2) + eps)``, RMS
    norm; weight norm ``g v / ||v||`` is that with ``eps = 0`` and scale ``g / sqrt(n)``):
    the backward then lacks the ``mean dy`` term, so the same bound holds.

    Each bound is multiplied by ``safety``. For comparisons use ``assert_close``, which adds
    an ``rtol`` for the result's own rounding.
    """
    x = np.asarray(x, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    ndim = x.ndim
    axes = tuple(sorted(a % ndim for a in axes))
    param_axes = tuple(sorted(a % ndim for a in param_axes))
    other = tuple(a for a in range(ndim) if a not in param_axes)
    n = math.prod(x.shape[a] for a in axes)
    m = math.prod(x.shape[a] for a in other)

    def view(p):
        if p is None:
            return None
        shape = [1] * ndim
        for a, size in zip(param_axes, np.shape(p)):
            shape[a] = size
        return np.abs(np.asarray(p, dtype=np.float64)).reshape(shape)

    if x.size == 0:
        zero = np.zeros(x.shape)
        p_shape = tuple(x.shape[a] for a in param_axes)
        return {"out": zero, "dx": zero, "dgamma": np.zeros(p_shape), "dbeta": np.zeros(p_shape)}

    g = view(gamma) if gamma is not None else np.ones([1] * ndim)
    b = view(beta) if beta is not None else np.zeros([1] * ndim)
    mean = x.mean(axis=axes, keepdims=True) if center else 0.0
    sigma = np.sqrt(np.mean((x - mean) ** 2, axis=axes, keepdims=True) + eps)
    x_hat = np.abs(x - mean) / sigma
    kappa = np.abs(x).max(axis=axes, keepdims=True) / sigma
    d = U * (n + 2) * (kappa + 1)

    out = g * d + U * (g * x_hat + b)
    dbeta = U * m * np.abs(dout).sum(axis=other)
    dgamma = (np.abs(dout) * (U * m * x_hat + d)).sum(axis=other)
    dy = g * np.abs(dout)
    a = 1 + x_hat + d
    terms = a * (dy + (dy * a).mean(axis=axes, keepdims=True))
    dx = (U * (n + 2) + d) * terms / sigma
    tol = {"out": out, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}
    return {k: safety * np.broadcast_to(v, x.shape if k in ("out", "dx") else v.shape)
            for k, v in tol.items()}



def batchnorm_eval_tolerances(x, dout, running_mean, running_var, eps, gamma=None, beta=None,
                              *, mean_error=0.0, var_error=0.0, safety=SAFETY):
    """Per-element atol arrays ``{"out", "dx", "dgamma", "dbeta"}`` for eval-mode batch norm.

    The operation: ``x_hat = (x - running_mean) * invstd``, ``invstd = 1 / sqrt(running_var
    + eps)``, per channel (axis 1); ``out = gamma * x_hat + beta``; ``dx = dout * gamma *
    invstd``. No reduction feeds the normalization, so every step is a few roundings of
    its operands: ``x_hat`` is off by at most ``d = 3 u (|x| + |running_mean|) invstd``
    (the difference, the square root and the product; torch folds ``invstd * gamma`` and
    ``beta - mean * invstd * gamma`` first, which has the same bound), ``out`` by
    ``|gamma| d + u (|gamma x_hat| + |beta|)``, ``dx`` by ``3 u |dout gamma invstd|``, and the
    parameter gradients as in :func:`normalization_tolerances` (sums over ``m`` elements).

    ``mean_error`` / ``var_error`` (scalars or (C,)): how far the two implementations' running
    statistics may already differ (see :func:`running_stats_tolerances`); they move ``x_hat``
    by ``mean_error * invstd`` and, relatively, ``invstd`` by ``var_error / (2 (running_var +
    eps))`` -- large when a batch of (nearly) equal values left a running variance of pure
    rounding noise next to a small eps.
    """
    x = np.asarray(x, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    c = x.shape[1]
    keep = (1, c) + (1,) * (x.ndim - 2)
    other = (0,) + tuple(range(2, x.ndim))
    m = x.size // c if c else 0

    def view(p, default):
        p = np.full(c, default) if p is None else np.asarray(p, dtype=np.float64)
        return np.abs(p).reshape(keep)

    g, b = view(gamma, 1.0), view(beta, 0.0)
    mean = np.asarray(running_mean, dtype=np.float64).reshape(keep)
    invstd = 1.0 / np.sqrt(np.asarray(running_var, dtype=np.float64).reshape(keep) + eps)
    rel_invstd = 0.5 * np.asarray(var_error, dtype=np.float64).reshape(-1)[None] * invstd**2
    rel_invstd = rel_invstd.reshape(keep) if rel_invstd.size == c else rel_invstd.max()
    e_mean = np.abs(np.asarray(mean_error, dtype=np.float64))
    e_mean = e_mean.reshape(keep) if e_mean.size == c else e_mean.max()
    x_hat = np.abs(x - mean) * invstd
    d = (3 * U * (np.abs(x) + np.abs(mean)) + e_mean) * invstd + x_hat * rel_invstd
    tol = {
        "out": g * d + U * (g * x_hat + b),
        "dx": (3 * U + rel_invstd) * np.abs(dout) * g * invstd,
        "dgamma": (np.abs(dout) * (U * m * x_hat + d)).sum(axis=other),
        "dbeta": U * m * np.abs(dout).sum(axis=other),
    }
    return {k: safety * np.broadcast_to(v, x.shape if k in ("out", "dx") else (c,))
            for k, v in tol.items()}


def running_stats_tolerances(x, running_mean, running_var, factor, safety=SAFETY):
    """atol arrays ``(mean, var)``, shape (C,), for ONE running-statistics update on batch x.

    The update (torch's): ``running_mean = (1 - f) running_mean + f mu``,
    ``running_var = (1 - f) running_var + f var * n / (n - 1)``, with the batch mean ``mu``
    and the biased variance ``var`` per channel (axis 1, ``n`` values each), from the values
    BEFORE the update. With ``u`` the unit roundoff: ``mu`` is off by at most ``e_mu = u (n +
    1) max|x|`` (an n-term sum and a division); the two-pass variance by ``e_var = u (n + 3)
    max(x - mu)^2 + 2 max|x - mu| e_mu``, doubled at most by ``n / (n - 1)``; each blend adds
    ``3 u`` of its terms. An error already in a running statistic is carried on multiplied
    by ``1 - f``: over several steps, accumulate ``bound = (1 - f) bound + this``.
    """
    x = np.asarray(x, dtype=np.float64)
    c = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    n = x.size // c
    f = float(factor)
    mu = x.mean(axis=axes)
    keep = (1, c) + (1,) * (x.ndim - 2)
    dev = np.abs(x - mu.reshape(keep)).max(axis=axes)
    uvar = x.var(axis=axes) * n / (n - 1)
    e_mu = U * (n + 1) * np.abs(x).max(axis=axes)
    e_uvar = 2 * (U * (n + 3) * dev**2 + 2 * dev * e_mu) + U * uvar
    rm, rv = np.abs(np.asarray(running_mean)), np.abs(np.asarray(running_var))
    mean = 3 * U * (rm + f * np.abs(mu)) + f * e_mu
    var = 3 * U * (rv + f * uvar) + f * e_uvar
    return safety * mean, safety * var


def assert_close(actual, desired, atol, rtol=1e-13, name=""):
    """``|actual - desired| <= atol + rtol |desired|`` elementwise (``atol`` may be an array).

    ``rtol`` covers the rounding of the result itself (a few ulps); the default 1e-13 is
    ~500 ulps. On failure the message names the worst element and its bound.
    """
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape, f"{name}: shape {actual.shape} != {desired.shape}"
    bound = np.asarray(atol) + rtol * np.abs(desired)
    err = np.abs(actual - desired)
    if err.size and not np.all(err <= bound):
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(
            f"{name}: {np.count_nonzero(~(err <= bound))} of {err.size} elements off; worst at "
            f"{i}: actual {actual[i]!r}, desired {desired[i]!r}, |diff| {err[i]:.3g} > "
            f"bound {bound[i]:.3g} (atol {np.broadcast_to(atol, err.shape)[i]:.3g})"
        )
