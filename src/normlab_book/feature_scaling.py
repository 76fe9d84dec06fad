"""Experiments behind chapter 1 (feature scaling): gradient-descent paths and step counts
before and after scaling, and what goes wrong when a scaler is fitted on the wrong data.

Everything here is built on ``normlab.conditioning`` and ``normlab.scaling``; the chapter
calls these functions so that the experiment code is tested rather than pasted into a page.

Least-squares conventions are those of ``normlab.conditioning``: the loss is
``||D w - y||^2 / (2n)`` with ``D = X`` or ``D = [X, 1]`` (intercept last), Hessian
``H = D^T D / n``, and gradient descent stops at the first k with
``||g(w_k)|| <= tol * ||g(w_0)||``.
"""

from __future__ import annotations

import numpy as np

from normlab.conditioning import (
    condition_number,
    count_gd_iterations,
    make_elongated_regression,
)
from normlab.scaling import MinMaxScaler, StandardScaler, min_max_scale, zscore

__all__ = [
    "gd_path",
    "adam_loss_gaps",
    "predicted_gd_steps",
    "gd_step_bound",
    "SCALINGS",
    "scale_ratio_sweep",
    "fit_scaler",
    "refit_per_batch_accuracy",
    "leakage_experiment",
]


def _design(X, fit_intercept: bool) -> np.ndarray:
    D = np.asarray(X, dtype=np.float64)
    if fit_intercept:
        D = np.hstack([D, np.ones((D.shape[0], 1))])
    return D


def _default_lr(D: np.ndarray) -> float:
    return 1.0 / (np.linalg.svd(D, compute_uv=False)[0] ** 2 / D.shape[0])


# ----------------------------------------------------------------------------- GD on a quadratic
def gd_path(X, y, n_steps: int, lr=None, w0=None, *, fit_intercept: bool = False) -> np.ndarray:
    """The iterates ``w_0, ..., w_{n_steps}`` of full-batch GD on least squares; shape (n_steps + 1, p).

    ``X``: (n_samples, n_features), ``y``: (n_samples,), ``w0``: (p,) (zeros by default);
    ``lr`` defaults to ``1 / lambda_max(H)`` as in ``normlab.gradient_descent``, whose final
    iterate after ``n_steps`` updates is the last row here. Used to draw paths on contour plots.
    """
    D = _design(X, fit_intercept)
    y = np.asarray(y, dtype=np.float64)
    n, p = D.shape
    lr = _default_lr(D) if lr is None else float(lr)
    w = np.zeros(p) if w0 is None else np.array(w0, dtype=np.float64)
    path = [w.copy()]
    for _ in range(int(n_steps)):
        w = w - lr * (D.T @ (D @ w - y)) / n
        path.append(w.copy())
    return np.asarray(path)


def predicted_gd_steps(
    X, y, lr=None, tol=1e-6, w0=None, *, fit_intercept: bool = False, max_iter=10**9
) -> int:
    """Exact GD step count predicted from the eigendecomposition of H, without iterating.

    On a quadratic, ``g_k = (I - lr H)^k g_0`` exactly, so with ``H = Q diag(lam) Q^T`` and
    ``c = Q^T g_0``, ``||g_k||^2 = sum_i c_i^2 (1 - lr lam_i)^(2k)``. For ``lr < 2 / lam_max``
    this decreases in k; the function returns the first k with ``||g_k|| <= tol ||g_0||``
    (found by bisection), which is what ``count_gd_iterations`` measures by iterating (up
    to rounding, the two agree within one step). Arguments as in ``count_gd_iterations``.
    """
    D = _design(X, fit_intercept)
    y = np.asarray(y, dtype=np.float64)
    n, p = D.shape
    lr = _default_lr(D) if lr is None else float(lr)
    w = np.zeros(p) if w0 is None else np.asarray(w0, dtype=np.float64)
    H = D.T @ D / n
    g0 = H @ w - D.T @ y / n
    lam, Q = np.linalg.eigh(H)
    c2 = (Q.T @ g0) ** 2
    rate = np.abs(1.0 - lr * lam)
    if np.any(rate >= 1.0 + 1e-12) and np.any(c2[rate >= 1.0] > 0):
        raise ValueError(f"lr={lr} does not converge: it must be below 2 / lambda_max(H)")
    target = tol**2 * c2.sum()
    if c2.sum() == 0 or c2.sum() <= target:
        return 0
    log_rate = np.log(np.maximum(rate, 1e-300))

    def sq_norm(k: int) -> float:
        return float(np.sum(c2 * np.exp(2 * k * log_rate)))

    lo, hi = 0, 1
    while sq_norm(hi) > target:
        lo, hi = hi, hi * 2
        if hi > max_iter:
            raise ValueError(f"more than max_iter={max_iter} steps are needed")
    while hi - lo > 1:  # invariant: sq_norm(lo) > target >= sq_norm(hi)
        mid = (lo + hi) // 2
        if sq_norm(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def gd_step_bound(kappa, tol=1e-6):
    """Worst-case GD steps with ``lr = 1 / lambda_max``: ``ceil(log(tol) / log(1 - 1/kappa))``.

    Every eigen-component of the gradient shrinks by at least ``1 - 1/kappa`` per step, so
    ``||g_k|| <= (1 - 1/kappa)^k ||g_0||``; for large kappa the bound is about
    ``kappa * log(1/tol)``. Works elementwise on arrays; ``kappa = 1`` gives 1 step.
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    if np.any(kappa < 1):
        raise ValueError("a condition number is >= 1")
    with np.errstate(divide="ignore"):
        steps = np.where(kappa > 1, np.ceil(np.log(tol) / np.log1p(-1.0 / kappa)), 1.0)
    return steps if steps.ndim else float(steps)


def adam_loss_gaps(X, y, n_steps: int, lr: float, *, fit_intercept: bool = True,
                   betas=(0.9, 0.999), eps: float = 1e-8) -> np.ndarray:
    """Relative loss gaps ``(L_k - L*) / (L_0 - L*)``, k = 0..n_steps, of Adam on least squares.

    Full-batch Adam (Kingma and Ba; PyTorch's update without weight decay) from ``w = 0`` on
    the loss ``||D w - y||^2 / (2n)``: an adaptive learning rate (自适应学习率) per coordinate,
    ``lr * m_hat / (sqrt(v_hat) + eps)``, the route around a stretched error surface that
    article 001 names next to normalization. Returns shape (n_steps + 1,).
    """
    if n_steps < 0 or lr <= 0:
        raise ValueError(f"adam_loss_gaps needs n_steps >= 0 and lr > 0, got {n_steps}, {lr}")
    D = _design(X, fit_intercept)
    y = np.asarray(y, dtype=np.float64)
    n, p = D.shape
    w_star = np.linalg.lstsq(D, y, rcond=None)[0]
    loss = lambda w: 0.5 * np.mean((D @ w - y) ** 2)
    l_star = loss(w_star)
    b1, b2 = betas
    w, m, v = np.zeros(p), np.zeros(p), np.zeros(p)
    losses = [loss(w)]
    for k in range(1, int(n_steps) + 1):
        g = D.T @ (D @ w - y) / n
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**k)) / (np.sqrt(v / (1 - b2**k)) + eps)
        losses.append(loss(w))
    return (np.asarray(losses) - l_star) / (losses[0] - l_star)



# ----------------------------------------------------------------------------- the sweep
SCALINGS = {
    "raw": lambda X: np.asarray(X, dtype=np.float64),
    "min-max": min_max_scale,
    "z-score": zscore,
}
"""The three ways the chapter prepares the features: none, min-max to [0, 1], z-score."""


def scale_ratio_sweep(ratios, seeds, tol=1e-6, n_samples=200, noise=0.1, fit_intercept=True):
    """Condition numbers and GD step counts against the ratio of two feature scales.

    For every ratio r and seed, the data are ``make_elongated_regression(n_samples,
    scales=(1, r), noise, seed)``; each scaling in ``SCALINGS`` is applied and we record
    ``condition_number`` of the Hessian and ``count_gd_iterations`` with the default
    ``lr = 1 / lambda_max`` (with an intercept by default, as a real regression would have).
    Returns a dict ``{scaling: {"kappa": (n_seeds, n_ratios), "steps": (n_seeds, n_ratios)}}``
    plus ``"ratios"`` and ``"seeds"``.
    """
    ratios = [float(r) for r in ratios]
    seeds = [int(s) for s in seeds]
    out = {"ratios": np.asarray(ratios), "seeds": np.asarray(seeds)}
    for name, scale in SCALINGS.items():
        kappa = np.empty((len(seeds), len(ratios)))
        steps = np.empty((len(seeds), len(ratios)), dtype=np.int64)
        for i, seed in enumerate(seeds):
            for j, r in enumerate(ratios):
                X, y, _ = make_elongated_regression(n_samples, (1.0, r), noise, seed)
                Xs = scale(X)
                kappa[i, j] = condition_number(Xs, fit_intercept=fit_intercept)
                steps[i, j] = count_gd_iterations(
                    Xs, y, tol=tol, max_iter=10**7, fit_intercept=fit_intercept
                )
        out[name] = {"kappa": kappa, "steps": steps}
    return out


# ----------------------------------------------------------------------------- leakage
def fit_scaler(scaler_cls, X_train, X_test, fit_on: str = "train"):
    """Scale a train/test pair with a scaler fitted on ``fit_on``; returns ``(Xtr_s, Xte_s)``.

    ``fit_on="train"``: the correct way (one scaler, fitted on X_train, applied to both).
    ``"train+test"``: one scaler fitted on the stacked rows of both (leaks the test set).
    ``"test"``: X_train scaled with train statistics, X_test with its OWN statistics (a
    scaler refitted on the test set, as if each set were normalized separately).
    ``scaler_cls`` is ``normlab.StandardScaler`` or ``normlab.MinMaxScaler`` (or any class
    with ``fit``/``transform``).
    """
    if fit_on == "train":
        sc = scaler_cls().fit(X_train)
        return sc.transform(X_train), sc.transform(X_test)
    if fit_on == "train+test":
        sc = scaler_cls().fit(np.vstack([X_train, X_test]))
        return sc.transform(X_train), sc.transform(X_test)
    if fit_on == "test":
        return scaler_cls().fit_transform(X_train), scaler_cls().fit_transform(X_test)
    raise ValueError(f"fit_on must be 'train', 'train+test' or 'test', got {fit_on!r}")


def refit_per_batch_accuracy(model, scaler_cls, X, y, batch_size: int, seed: int = 0) -> float:
    """Accuracy of a fitted ``model`` when the scaler is refitted on every test batch.

    The rows of ``X`` are shuffled with ``np.random.default_rng(seed)`` and cut into batches
    of ``batch_size``; each batch is scaled with statistics of that batch alone, then
    predicted. With ``batch_size=1`` every standardized feature is 0 (a constant column), so
    the prediction can no longer depend on the input.
    """
    idx = np.random.default_rng(seed).permutation(len(X))
    correct = 0
    for start in range(0, len(X), batch_size):
        batch = idx[start : start + batch_size]
        correct += int(np.sum(model.predict(scaler_cls().fit_transform(X[batch])) == y[batch]))
    return correct / len(X)


def _subset_with_fraction(y, frac: float, size: int, rng) -> np.ndarray:
    """Indices of ``size`` rows of which ``round(frac * size)`` have label 1 (no replacement)."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_pos = int(round(frac * size))
    if n_pos > len(pos) or size - n_pos > len(neg):
        raise ValueError(f"not enough rows of each class for frac={frac}, size={size}")
    return np.concatenate(
        [rng.choice(pos, n_pos, replace=False), rng.choice(neg, size - n_pos, replace=False)]
    )


def leakage_experiment(
    seeds=(0, 1, 2, 3, 4),
    batch_sizes=(1, 2, 4, 8, 16, 32, 64, 200),
    class1_fractions=(0.1, 0.3, 0.5, 0.7, 0.9),
    subset_size: int = 80,
    corruption: float = 1000.0,
):
    """Where the scaler is fitted, measured with logistic regression on article 002's data.

    Data per seed: ``normlab.data.article002_classification(seed, n_redundant=0,
    scale=None)`` (20 features with random scales in [1, 100]; 800 train / 200 test rows);
    the model is scikit-learn's ``LogisticRegression()`` (L2, C=1) fitted on the scaled
    training set. Returns a dict of arrays with one row per seed:

    - ``"acc"``: {fit_on: (n_seeds,)} test accuracy for fit_on in train / train+test / test,
      StandardScaler; ``"changed"``: (n_seeds,) number of test predictions that differ
      between fit on train and fit on train+test.
    - ``"batch_acc"``: (n_seeds, n_batch_sizes): StandardScaler refitted on every test batch
      (``refit_per_batch_accuracy``); ``"batch_sizes"``.
    - ``"frac_acc"``: {"train": ..., "test": ...} each (n_seeds, n_fractions): accuracy on
      test subsets of ``subset_size`` rows whose fraction of class 1 is each of
      ``class1_fractions``, scaler fitted on train vs refitted on the subset.
    - ``"corrupt_acc"``: {(scaler name, fit_on): (n_seeds,)}: one test row multiplied by
      ``corruption`` (a unit error); the model's accuracy on the 199 clean test rows when the
      scaler (MinMaxScaler or StandardScaler) was fitted on train vs on train+test.

    BLAS runs single-threaded inside (threadpoolctl): these problems are tiny, and extra
    threads only slow them down on a busy machine.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _leakage_experiment(
            seeds, batch_sizes, class1_fractions, subset_size, corruption
        )


def _leakage_experiment(seeds, batch_sizes, class1_fractions, subset_size, corruption):
    from sklearn.linear_model import LogisticRegression

    from normlab.data import article002_classification

    seeds = [int(s) for s in seeds]
    fits = ("train", "train+test", "test")
    acc = {f: np.empty(len(seeds)) for f in fits}
    changed = np.empty(len(seeds), dtype=np.int64)
    batch_acc = np.empty((len(seeds), len(batch_sizes)))
    frac_acc = {f: np.empty((len(seeds), len(class1_fractions))) for f in ("train", "test")}
    corrupt_acc = {
        (cls.__name__, f): np.empty(len(seeds))
        for cls in (MinMaxScaler, StandardScaler)
        for f in ("train", "train+test")
    }
    for i, seed in enumerate(seeds):
        d = article002_classification(seed=seed, n_redundant=0, scale=None)
        Xtr, Xte = d.X_train.astype(np.float64), d.X_test.astype(np.float64)
        ytr, yte = d.y_train, d.y_test
        preds = {}
        for f in fits:
            # the model always learns from train rows scaled as that pipeline scales them
            A, B = fit_scaler(StandardScaler, Xtr, Xte, f)
            model = LogisticRegression().fit(A, ytr)
            preds[f] = model.predict(B)
            acc[f][i] = np.mean(preds[f] == yte)
        changed[i] = int(np.sum(preds["train"] != preds["train+test"]))

        scaler = StandardScaler().fit(Xtr)
        model = LogisticRegression().fit(scaler.transform(Xtr), ytr)
        for j, b in enumerate(batch_sizes):
            batch_acc[i, j] = refit_per_batch_accuracy(model, StandardScaler, Xte, yte, b, seed)
        rng = np.random.default_rng(seed)
        for j, frac in enumerate(class1_fractions):
            rows = _subset_with_fraction(yte, frac, subset_size, rng)
            frac_acc["train"][i, j] = model.score(scaler.transform(Xte[rows]), yte[rows])
            frac_acc["test"][i, j] = model.score(
                StandardScaler().fit_transform(Xte[rows]), yte[rows]
            )

        Xbad = Xte.copy()
        Xbad[0] *= corruption
        for cls in (MinMaxScaler, StandardScaler):
            for f in ("train", "train+test"):
                A, B = fit_scaler(cls, Xtr, Xbad, f)
                m = LogisticRegression().fit(A, ytr)
                corrupt_acc[(cls.__name__, f)][i] = m.score(B[1:], yte[1:])
    return {
        "seeds": np.asarray(seeds),
        "acc": acc,
        "changed": changed,
        "batch_sizes": np.asarray(batch_sizes),
        "batch_acc": batch_acc,
        "class1_fractions": np.asarray(class1_fractions),
        "frac_acc": frac_acc,
        "corrupt_acc": corrupt_acc,
        "subset_size": subset_size,
    }

