"""Models of answers of assignment 01-feature-scaling: what a student with one recognised mistake computes."""

from __future__ import annotations

import numpy as np

from ...mistakes import moments


def minmax(X, fit_on, feature_range=(0.0, 1.0), axis=0, divide_by_max=False, clip=False):
    a, b = feature_range
    lo = fit_on.min(axis=axis, keepdims=True)
    hi = fit_on.max(axis=axis, keepdims=True)
    span = hi if divide_by_max else hi - lo
    out = a + (X - lo) / span * (b - a)
    return np.clip(out, a, b) if clip else out


def minmax_inverse(Z, fit_on, feature_range=(0.0, 1.0), axis=0):
    a, b = feature_range
    lo = fit_on.min(axis=axis, keepdims=True)
    hi = fit_on.max(axis=axis, keepdims=True)
    return lo + (Z - a) / (b - a) * (hi - lo)


def stats(X, axis=0, ddof=0):
    """Mean and standard deviation over ``axis`` (kept), the variance divided by n - ddof."""
    mean, var = moments(X, axis, ddof=ddof)
    return mean, np.sqrt(var)


def standard_new(case, ddof=0):
    mean, std = stats(case["X_train"], 0, ddof)
    return {"test": (case["X_test"] - mean) / std, "inverse": case["Z"] * std + mean}


def mm_inverse_ignores_range(case):
    X = case["X_train"]
    lo, hi = X.min(axis=0), X.max(axis=0)
    return {"inverse": case["Z"] * (hi - lo) + lo}


def st_inverse_order(case):
    mean, std = stats(case["X_train"])
    return {"inverse": (case["Z"] + mean) * std}


def st_inverse_divides(case):
    mean, std = stats(case["X_train"])
    return {"inverse": case["Z"] / std + mean}


def eigs(X, center=False):
    Xc = X - X.mean(axis=0) if center else X
    return np.linalg.eigvalsh(Xc.T @ Xc / X.shape[0])


def gd_count(case, absolute=False):
    X, y, lr, tol = case["X"], case["y"], case["lr"], case["tol"]
    n = X.shape[0]
    w = np.zeros(X.shape[1])
    g = X.T @ (X @ w - y) / n
    threshold = tol if absolute else tol * np.linalg.norm(g)
    k = 0
    while np.linalg.norm(g) > threshold and k < 100_000:
        w = w - lr * g
        g = X.T @ (X @ w - y) / n
        k += 1
    return k
