"""Why feature scaling helps (chapter 1): conditioning of least squares and gradient descent.

The problem throughout is mean-squared-error linear regression

    L(w) = ||D w - y||^2 / (2 n),   gradient g(w) = D^T (D w - y) / n,   Hessian H = D^T D / n,

with ``X`` of shape (n_samples, n_features), ``y`` of shape (n_samples,) and ``D = X``
(``fit_intercept=False``, the default) or ``D = [X, 1]`` (``fit_intercept=True``: a column of
ones is appended, so the parameter vector is ``(w_1, ..., w_d, b)`` with the intercept LAST
and H is (d + 1, d + 1)). H does not depend on w or y. Integer input is converted to float64;
everything is computed in float64.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from .validation import as_data_matrix, as_real_array, check_flag, check_rank

__all__ = [
    "GDResult",
    "least_squares_hessian",
    "condition_number",
    "gradient_descent",
    "count_gd_iterations",
    "loss_surface",
    "make_elongated_regression",
]

_EPS64 = np.finfo(np.float64).eps


class GDResult(NamedTuple):
    """Outcome of ``gradient_descent``.

    w: (n_params,) final iterate (intercept last if fitted); n_iter: number of updates made;
    converged: whether the stopping criterion was met; loss_history: (n_iter + 1,) losses at
    w_0, w_1, ..., w_{n_iter}.
    """

    w: np.ndarray
    n_iter: int
    converged: bool
    loss_history: np.ndarray


# ----------------------------------------------------------------------------- validation
def _design(X, fit_intercept: bool) -> np.ndarray:
    """The float64 design matrix D, (n, d) or (n, d + 1) with a trailing column of ones."""
    check_flag(fit_intercept, "fit_intercept")
    D = as_data_matrix(X).astype(np.float64, copy=False)
    if fit_intercept:
        D = np.hstack([D, np.ones((D.shape[0], 1))])
    return D


def _target(y, n: int) -> np.ndarray:
    """Validate ``y`` as a float64 vector of shape (n,)."""
    y = as_real_array(y, "y").astype(np.float64, copy=False)
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1D of shape (n_samples,), got shape {y.shape}; use y.ravel() for a "
            "single target"
        )
    if y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {y.shape[0]}; they must match")
    return y


def _positive(value, name: str) -> float:
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- conditioning
def least_squares_hessian(X, fit_intercept: bool = False) -> np.ndarray:
    """Hessian ``H = D^T D / n`` of ``L(w) = ||D w - y||^2 / (2n)``; shape (p, p).

    ``X``: (n_samples, n_features); p = n_features, or n_features + 1 with
    ``fit_intercept=True`` (intercept last).
    """
    D = _design(X, fit_intercept)
    return D.T @ D / D.shape[0]


def condition_number(X, fit_intercept: bool = False) -> float:
    """Condition number ``lambda_max / lambda_min`` of ``least_squares_hessian(X, fit_intercept)``.

    ``X``: (n_samples, n_features). Computed as ``(s_max / s_min) ** 2`` from the singular
    values s of the design matrix D (the eigenvalues of H are ``s ** 2 / n``), which is more
    accurate than forming H. Returns ``math.inf`` when H is singular to working precision:
    fewer samples than parameters, or ``s_min <= s_max * max(n, p) * eps`` (numpy's
    ``matrix_rank`` tolerance), including X = 0.
    """
    D = _design(X, fit_intercept)
    n, p = D.shape
    if n < p:
        return math.inf
    s = np.linalg.svd(D, compute_uv=False)
    if s[-1] <= s[0] * max(n, p) * _EPS64:
        return math.inf
    return float((s[0] / s[-1]) ** 2)


# ----------------------------------------------------------------------------- gradient descent
def gradient_descent(
    X, y, lr=None, tol=1e-6, max_iter=100_000, w0=None, *, fit_intercept: bool = False
) -> GDResult:
    """Full-batch gradient descent ``w <- w - lr * g(w)`` on the least-squares loss.

    ``X``: (n_samples, n_features); ``y``: (n_samples,); ``w0``: (p,) start, zeros by default
    (p as in ``least_squares_hessian``). ``lr`` defaults to ``1 / L`` with
    ``L = lambda_max(H)`` (the step of the descent lemma); on this quadratic any
    ``lr < 2 / L`` converges with a monotonically decreasing loss, larger ones diverge.

    Stopping criterion (relative gradient norm): stop at the first k with
    ``||g(w_k)|| <= tol * ||g(w_0)||``; converged is False if that does not happen within
    ``max_iter`` updates, or if the loss overflows (divergence; iteration stops there).
    Guard: k also stops when ``||g(w_k)||`` is below the rounding level of its computation,
    ``4 * eps * ||D||_F * (||D||_F * ||w_k|| + ||y||) / n``, so that a start at the optimum
    or a tol near machine precision cannot spin until max_iter; for tol >= 1e-12 on sensible
    data this guard never binds.
    The criterion is invariant to rescaling X or y by a constant, and so, with the default lr,
    is the iteration count; with ``lr = 1/L`` it needs at most
    ``ceil(log(tol) / log(1 - 1/kappa)) <= ceil(kappa * log(1/tol))`` updates.
    Returns a ``GDResult(w, n_iter, converged, loss_history)``.
    """
    D = _design(X, fit_intercept)
    n, p = D.shape
    y = _target(y, n)
    tol = _positive(tol, "tol")
    if not isinstance(max_iter, numbers.Integral) or isinstance(max_iter, bool) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    if lr is None:
        top = float(np.linalg.svd(D, compute_uv=False)[0]) ** 2 / n
        lr = 1.0 / top if top > 0 else 1.0  # X = 0: the gradient is always 0, lr is moot
    lr = _positive(lr, "lr")
    if w0 is None:
        w = np.zeros(p)
    else:
        w = np.array(as_real_array(w0, "w0"), dtype=np.float64)
        if w.shape != (p,):
            raise ValueError(
                f"w0 must have shape ({p},) (one weight per column"
                f"{' plus the intercept' if fit_intercept else ''}), got {w.shape}"
            )

    def loss_and_grad(w):
        r = D @ w - y
        return float(r @ r) / (2 * n), D.T @ r / n

    d_norm, y_norm = float(np.linalg.norm(D)), float(np.linalg.norm(y))

    def small(g, w):
        floor = 4 * _EPS64 * d_norm * (d_norm * math.sqrt(float(w @ w)) + y_norm) / n
        return math.sqrt(float(g @ g)) <= max(threshold, floor)

    loss, g = loss_and_grad(w)
    losses = [loss]
    threshold = tol * math.sqrt(float(g @ g))
    n_iter = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while not small(g, w) and n_iter < max_iter:
            w = w - lr * g
            loss, g = loss_and_grad(w)
            losses.append(loss)
            n_iter += 1
            if not math.isfinite(loss):
                break
    converged = math.isfinite(loss) and small(g, w)
    return GDResult(w, n_iter, bool(converged), np.asarray(losses))


def count_gd_iterations(
    X, y, lr=None, tol=1e-6, max_iter=100_000, w0=None, *, fit_intercept: bool = False
) -> int:
    """Number of gradient-descent updates until ``||g|| <= tol * ||g_0||`` (an int).

    Arguments and criterion as in ``gradient_descent``. Raises RuntimeError if it does not
    converge within ``max_iter`` updates or diverges, saying which.
    """
    result = gradient_descent(X, y, lr, tol, max_iter, w0, fit_intercept=fit_intercept)
    if result.converged:
        return result.n_iter
    if not math.isfinite(result.loss_history[-1]):
        top = np.linalg.eigvalsh(least_squares_hessian(X, fit_intercept))[-1]
        raise RuntimeError(
            f"gradient descent diverged: the loss overflowed after {result.n_iter} updates; "
            f"lr={lr} is too large, it must be below 2 / lambda_max(H) = {2 / top:.6g}"
        )
    raise RuntimeError(
        f"gradient descent did not converge within max_iter={max_iter} updates "
        f"(tol={tol}); raise max_iter, or scale the features to improve the conditioning"
    )


# ----------------------------------------------------------------------------- book helpers
def _grid(values, name: str) -> np.ndarray:
    arr = as_real_array(values, name).astype(np.float64, copy=False)
    check_rank(arr, 1, name, "(a grid of weight values)")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; expected at least one value")
    return arr


def loss_surface(X, y, w1_grid, w2_grid) -> np.ndarray:
    """Loss ``||X w - y||^2 / (2n)`` on a grid of ``w = (w1, w2)``; shape (len(w2), len(w1)).

    ``X``: (n_samples, 2), no intercept; ``y``: (n_samples,); grids 1-D. Row i, column j is
    the loss at ``(w1_grid[j], w2_grid[i])``, the layout of ``np.meshgrid`` and
    ``plt.contour(w1_grid, w2_grid, Z)``. Evaluated by the exact quadratic expansion around
    the least-squares solution w*, ``L(w*) + g(w*).e + e.H e / 2`` with ``e = w - w*``,
    which avoids cancellation and costs O(1) per grid point.
    """
    D = _design(X, False)
    n, p = D.shape
    if p != 2:
        raise ValueError(
            f"loss_surface needs X with exactly 2 features (one per plot axis), got {p}"
        )
    y = _target(y, n)
    w1, w2 = _grid(w1_grid, "w1_grid"), _grid(w2_grid, "w2_grid")
    w_star = np.linalg.lstsq(D, y, rcond=None)[0]
    r = D @ w_star - y
    g = D.T @ r / n
    H = D.T @ D / n
    E1, E2 = np.meshgrid(w1 - w_star[0], w2 - w_star[1])
    quad = H[0, 0] * E1 * E1 + 2 * H[0, 1] * E1 * E2 + H[1, 1] * E2 * E2
    return float(r @ r) / (2 * n) + g[0] * E1 + g[1] * E2 + 0.5 * quad


def make_elongated_regression(n_samples=200, scales=(1.0, 100.0), noise=0.1, seed=0):
    """Synthetic regression whose features have very different ranges; returns ``(X, y, w_true)``.

    ``X``: (n_samples, len(scales)) with independent columns ``X[:, j] ~ N(0, scales[j]^2)``;
    ``w_true = ones(len(scales))``; ``y = X @ w_true + noise * N(0, 1)``, shape (n_samples,).
    Without intercept its Hessian is about ``diag(scales^2)``, so the condition number is about
    ``(max(scales) / min(scales))^2`` (1e4 by default). Draws come from
    ``np.random.default_rng(seed)``, so the data are fixed by ``seed``.
    """
    if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(noise, numbers.Real) or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    scales = as_real_array(scales, "scales").astype(np.float64, copy=False)
    if scales.ndim != 1 or scales.size == 0 or np.any(scales <= 0):
        raise ValueError(f"scales must be a non-empty 1D sequence of numbers > 0, got {scales!r}")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, scales.size)) * scales
    w_true = np.ones(scales.size)
    y = X @ w_true + noise * rng.standard_normal(n_samples)
    return X, y, w_true
