"""Experiments behind chapter 2 (z-score normalization): what ``(x - mean) / std`` does and
does not change.

- ``shape_samples``: seeded features with skewed, bimodal and heavy-tailed distributions;
- ``shape_summary``: mean, standard deviation, skewness, excess kurtosis, min and max;
- ``ddof_monte_carlo`` and ``c4``: the bias of the population (ddof=0) and sample (ddof=1)
  variance and standard deviation, by simulation and in closed form;
- ``eps_output_std``: how epsilon shrinks the output of low-variance features;
- ``tail_fractions``: the fraction of z-scores beyond k, to compare with Chebyshev's bound.

Every z-score here is computed by ``normlab.zscore``.
"""

from __future__ import annotations

import math

import numpy as np

from normlab.scaling import zscore

__all__ = [
    "shape_samples",
    "shape_summary",
    "c4",
    "ddof_monte_carlo",
    "eps_output_std",
    "tail_fractions",
]


def shape_samples(n: int = 2000, seed: int = 0) -> dict:
    """Three features in raw units with non-Gaussian shapes; ``{name: (n,) float64}``.

    Drawn from ``np.random.default_rng(seed)``:

    - ``"skewed"``: log-normal, ``1000 * exp(0.75 * N(0, 1))`` (incomes, durations);
      population skewness ``(e^s + 2) sqrt(e^s - 1)`` with ``s = 0.5625``, about 3.3;
    - ``"bimodal"``: ``50 + 10 * N(-2, 0.5^2)`` with probability 0.6, ``50 + 10 * N(2.5, 0.8^2)``
      otherwise (two populations mixed in one feature);
    - ``"heavy-tailed"``: ``5 + 2 * t_3`` (Student t with 3 degrees of freedom, infinite
      population kurtosis: rare values far from the rest).
    """
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    rng = np.random.default_rng(seed)
    skewed = 1000.0 * np.exp(0.75 * rng.standard_normal(n))
    pick = rng.random(n) < 0.6
    bimodal = 50.0 + 10.0 * np.where(
        pick, rng.normal(-2.0, 0.5, n), rng.normal(2.5, 0.8, n)
    )
    heavy = 5.0 + 2.0 * rng.standard_t(3, n)
    return {"skewed": skewed, "bimodal": bimodal, "heavy-tailed": heavy}


def shape_summary(x) -> dict:
    """Summary of a 1-D sample: n, mean, std (ddof=0), skewness, excess kurtosis, min, max.

    Skewness is ``m3 / m2^1.5`` and excess kurtosis ``m4 / m2^2 - 3`` with the central
    moments ``m_k = mean((x - mean)^k)`` (scipy.stats.skew / kurtosis with bias=True).
    Both are invariant to ``a * x + b`` with ``a > 0``, so z-scoring leaves them unchanged.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"x must be 1-D with at least 2 values, got shape {x.shape}")
    d = x - x.mean()
    m2, m3, m4 = (np.mean(d**k) for k in (2, 3, 4))
    return {
        "n": int(x.size),
        "mean": float(x.mean()),
        "std": float(math.sqrt(m2)),
        "skewness": float(m3 / m2**1.5) if m2 > 0 else float("nan"),
        "excess_kurtosis": float(m4 / m2**2 - 3.0) if m2 > 0 else float("nan"),
        "min": float(x.min()),
        "max": float(x.max()),
    }


def c4(n):
    """E[s] / sigma for the sample standard deviation s (ddof=1) of n Gaussian values.

    ``c4(n) = sqrt(2 / (n - 1)) * Gamma(n / 2) / Gamma((n - 1) / 2)``; c4(2) = sqrt(2/pi).
    Works elementwise on arrays of integers n >= 2.
    """
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < 2):
        raise ValueError("c4 needs n >= 2")
    lg = np.vectorize(math.lgamma)
    out = np.sqrt(2.0 / (n - 1.0)) * np.exp(lg(n / 2.0) - lg((n - 1.0) / 2.0))
    return out if out.ndim else float(out)


def ddof_monte_carlo(ns, n_trials: int = 20000, seed: int = 0) -> dict:
    """Mean variance and std estimates over ``n_trials`` Gaussian samples of each size n.

    For every n in ``ns``, draw ``n_trials`` samples of n values from N(0, 1)
    (``np.random.default_rng(seed)``) and average ``var`` and ``std`` with ddof=0 and ddof=1.
    Returns ``{"ns", "var0", "var1", "std0", "std1"}``, arrays of shape (len(ns),); the truth
    is variance 1 and std 1. Expected values: var0 = (n-1)/n, var1 = 1, std1 = c4(n),
    std0 = c4(n) * sqrt((n-1)/n).
    """
    rng = np.random.default_rng(seed)
    ns = np.asarray(ns, dtype=np.int64)
    out = {k: np.empty(len(ns)) for k in ("var0", "var1", "std0", "std1")}
    for j, n in enumerate(ns):
        if n < 2:
            raise ValueError("every n must be >= 2")
        x = rng.standard_normal((n_trials, int(n)))
        for ddof in (0, 1):
            v = x.var(axis=1, ddof=ddof)
            out[f"var{ddof}"][j] = v.mean()
            out[f"std{ddof}"][j] = np.sqrt(v).mean()
    out["ns"] = ns
    return out


def eps_output_std(input_stds, eps: float, n: int = 1000, seed: int = 0) -> np.ndarray:
    """Std of ``normlab.zscore(x, eps=eps)`` for Gaussian features with the given stds.

    For each ``s`` in ``input_stds``, ``x = 3 + s * N(0, 1)`` (n values,
    ``np.random.default_rng(seed)``, the same draws rescaled). The output std is exactly
    ``sqrt(v / (v + eps))`` with ``v`` the sample variance (ddof=0): features whose variance is
    not large against eps come out with a std below 1. Shape (len(input_stds),).
    """
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(n)
    return np.array([zscore(3.0 + s * base, eps=eps).std() for s in np.asarray(input_stds, float)])


def tail_fractions(z, ks) -> np.ndarray:
    """Fraction of entries of ``z`` with ``|z| >= k`` for each k in ``ks``; shape (len(ks),).

    For z-scores with ddof=0 (mean of z^2 equal to 1), Chebyshev's inequality gives at most
    ``1 / k^2`` for every k > 0, whatever the distribution.
    """
    z = np.abs(np.asarray(z, dtype=np.float64)).ravel()
    return np.array([np.mean(z >= k) for k in ks])
