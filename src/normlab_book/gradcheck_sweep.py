"""Gradient checking of batch norm's backward pass with centered finite differences.

Chapter 3 uses ``gradcheck_error_vs_h`` to show the classic V shape of the relative error as a
function of the step h in float64: for large h the truncation error of the centered difference
(about h**2 times the third derivative) dominates; for small h the rounding error of
``f(x + h) - f(x - h)`` (about machine epsilon * |f| / h) dominates. The sweet spot in between,
h about 1e-6 to 1e-4 here, is where the check is meaningful.
"""

from __future__ import annotations

import numpy as np

from normlab.batchnorm import batchnorm_backward_alt, batchnorm_forward
from normlab.gradcheck import numerical_gradient, rel_error

__all__ = ["bn_gradcheck", "gradcheck_error_vs_h"]


def bn_gradcheck(x, gamma, beta, dout, h: float = 1e-5, eps: float = 1e-5) -> dict[str, float]:
    """Relative errors between ``batchnorm_backward_alt`` and finite differences, for one h.

    Checks the gradient of ``sum(batchnorm_forward(x, gamma, beta)[0] * dout)`` with respect to
    x, gamma and beta (float64 arrays, modified in place during the check and restored).
    Returns ``{"dx": ..., "dgamma": ..., "dbeta": ...}`` (``normlab.rel_error``).
    """
    x, gamma, beta, dout = (np.asarray(a, dtype=np.float64) for a in (x, gamma, beta, dout))
    _, cache = batchnorm_forward(x, gamma, beta, eps)
    dx, dgamma, dbeta = batchnorm_backward_alt(dout, cache)
    x, gamma, beta = x.copy(), gamma.copy(), beta.copy()
    num_dx = numerical_gradient(lambda v: batchnorm_forward(v, gamma, beta, eps)[0], x, dout, h)
    num_dg = numerical_gradient(lambda v: batchnorm_forward(x, v, beta, eps)[0], gamma, dout, h)
    num_db = numerical_gradient(lambda v: batchnorm_forward(x, gamma, v, eps)[0], beta, dout, h)
    return {
        "dx": rel_error(dx, num_dx),
        "dgamma": rel_error(dgamma, num_dg),
        "dbeta": rel_error(dbeta, num_db),
    }


def gradcheck_error_vs_h(hs, seeds, shape=(8, 4), eps: float = 1e-5) -> dict[str, np.ndarray]:
    """``bn_gradcheck`` over a grid of steps ``hs`` and several seeds.

    For every seed: x ~ N(2, 3**2) of ``shape``, gamma ~ N(1, 0.5**2), beta, dout ~ N(0, 1).
    Returns ``{"dx", "dgamma", "dbeta"}``, each an array (len(seeds), len(hs)).
    """
    out = {k: np.empty((len(seeds), len(hs))) for k in ("dx", "dgamma", "dbeta")}
    for s, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        x = 2.0 + 3.0 * rng.standard_normal(shape)
        d = shape[1]
        gamma = 1.0 + 0.5 * rng.standard_normal(d)
        beta = rng.standard_normal(d)
        dout = rng.standard_normal(shape)
        for k, h in enumerate(hs):
            errs = bn_gradcheck(x, gamma, beta, dout, h=h, eps=eps)
            for key, v in errs.items():
                out[key][s, k] = v
    return out
