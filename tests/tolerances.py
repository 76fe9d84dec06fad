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
