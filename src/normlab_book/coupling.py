"""The batch as one coupled network: how a BN output depends on the OTHER examples in the batch.

Chapter 3 ("The mathematics of batch normalization") uses these functions.

In training mode, ``out_i = gamma * (x_i - mu_B) / sqrt(var_B + eps) + beta`` and both batch
statistics depend on every example, so example i's output changes when example j changes.
Two measurements:

- ``batch_dependence``: fix one example, redraw its companions many times, and measure how much
  its output moves. A delta-method calculation (``delta_method_spread``) predicts the size for
  standard-normal data: ``sqrt(1.5 / N)``.
- ``batch_jacobian``: the full Jacobian ``d out[i, a] / d x[j, b]`` assembled from normlab's
  backward pass (one one-hot upstream gradient per output entry), and
  ``jacobian_closed_form``: the same thing from the formula
  ``gamma * invstd * (delta_ij - 1/N - x_hat_i * x_hat_j / N)`` (per feature; features do not
  interact, so the entries with a != b are zero).
"""

from __future__ import annotations

import numpy as np

from normlab.batchnorm import batchnorm_backward_alt, batchnorm_forward

__all__ = [
    "batch_dependence",
    "delta_method_spread",
    "batch_jacobian",
    "jacobian_closed_form",
]


def batch_dependence(
    batch_sizes,
    seeds,
    n_features: int = 64,
    n_resamples: int = 50,
    eps: float = 1e-5,
) -> np.ndarray:
    """How much one example's BN output changes when the rest of its batch is redrawn.

    For every seed and batch size N: draw one example ``x0`` (``n_features`` standard-normal
    features), then ``n_resamples`` times draw N - 1 fresh standard-normal companions, put x0
    first in the batch and run ``batchnorm_forward`` (gamma = 1, beta = 0). x0 itself never
    changes, so in a per-example layer its output would not move at all. The spread is the
    standard deviation of x0's output over the resamples, per feature, then the root mean
    square over features.

    Returns an array of shape (len(seeds), len(batch_sizes)).
    """
    batch_sizes = [int(n) for n in batch_sizes]
    if any(n < 2 for n in batch_sizes):
        raise ValueError("batch sizes must be >= 2 (training-mode BN needs two values)")
    gamma, beta = np.ones(n_features), np.zeros(n_features)
    result = np.empty((len(seeds), len(batch_sizes)))
    for s, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        x0 = rng.standard_normal(n_features)
        for k, n in enumerate(batch_sizes):
            outs = np.empty((n_resamples, n_features))
            for r in range(n_resamples):
                batch = rng.standard_normal((n, n_features))
                batch[0] = x0
                out, _ = batchnorm_forward(batch, gamma, beta, eps)
                outs[r] = out[0]
            result[s, k] = np.sqrt(np.mean(outs.var(axis=0)))
    return result


def delta_method_spread(batch_sizes) -> np.ndarray:
    """First-order prediction of ``batch_dependence`` for standard-normal data: ``sqrt(1.5/N)``.

    With out_0 = (x0 - m) / s, the batch mean m has variance about 1/N and the batch standard
    deviation s has variance about 1/(2N) (normal data), independently; to first order
    var(out_0) = var(m) + x0**2 var(s) = (1 + x0**2 / 2) / N, and x0**2 averages to 1.
    """
    n = np.asarray(batch_sizes, dtype=np.float64)
    return np.sqrt(1.5 / n)


def batch_jacobian(x, gamma=None, eps: float = 1e-5) -> np.ndarray:
    """Jacobian of training-mode BN, ``J[i, a, j, b] = d out[i, a] / d x[j, b]``, for x (N, D).

    Built from normlab's closed-form backward: an upstream gradient equal to 1 at output entry
    (i, a) and 0 elsewhere returns the row ``d out[i, a] / d x``. Shape (N, D, N, D).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, D), got {x.shape}")
    n, d = x.shape
    gamma = np.ones(d) if gamma is None else np.asarray(gamma, dtype=np.float64)
    _, cache = batchnorm_forward(x, gamma, np.zeros(d), eps)
    jac = np.empty((n, d, n, d))
    dout = np.zeros_like(x)
    for i in range(n):
        for a in range(d):
            dout[i, a] = 1.0
            jac[i, a], _, _ = batchnorm_backward_alt(dout, cache)
            dout[i, a] = 0.0
    return jac


def jacobian_closed_form(x, gamma=None, eps: float = 1e-5) -> np.ndarray:
    """Per-feature Jacobian from the formula, shape (D, N, N): ``J[a, i, j] = d out[i,a]/d x[j,a]``.

    ``J[a] = gamma_a * invstd_a * (I - 1/N - outer(x_hat[:, a], x_hat[:, a]) / N)``, with the
    biased batch variance inside invstd.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, D), got {x.shape}")
    n, d = x.shape
    gamma = np.ones(d) if gamma is None else np.asarray(gamma, dtype=np.float64)
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    invstd = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mu) * invstd
    eye = np.eye(n)
    jac = np.empty((d, n, n))
    for a in range(d):
        jac[a] = gamma[a] * invstd[a] * (eye - 1.0 / n - np.outer(x_hat[:, a], x_hat[:, a]) / n)
    return jac
