"""normlab_book.feature_scaling against independent truth: normlab's own gradient
descent (iterated), closed forms for the conditioning of standardized data, and
scikit-learn's scalers and pipelines."""

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler as SkStandardScaler

from normlab import (
    MinMaxScaler,
    StandardScaler,
    condition_number,
    count_gd_iterations,
    gradient_descent,
    least_squares_hessian,
    make_elongated_regression,
    zscore,
)
from normlab_book.feature_scaling import (
    fit_scaler,
    gd_path,
    gd_step_bound,
    leakage_experiment,
    predicted_gd_steps,
    refit_per_batch_accuracy,
    scale_ratio_sweep,
)


def _problem(seed, n=60, d=3, intercept_shift=2.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.3, 4.0, d) + intercept_shift
    y = X @ rng.standard_normal(d) + 0.5 + 0.1 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gd_path_ends_where_normlab_gradient_descent_ends(seed, fit_intercept):
    X, y = _problem(seed)
    p = X.shape[1] + fit_intercept
    w0 = np.random.default_rng(seed + 10).standard_normal(p)
    top = np.linalg.eigvalsh(least_squares_hessian(X, fit_intercept))[-1]
    for lr in (None, 1.7 / top):
        path = gd_path(X, y, 25, lr=lr, w0=w0, fit_intercept=fit_intercept)
        ref = gradient_descent(X, y, lr=lr, tol=1e-300, max_iter=25, w0=w0, fit_intercept=fit_intercept)
        assert path.shape == (26, p)
        np.testing.assert_array_equal(path[0], w0)
        np.testing.assert_allclose(path[-1], ref.w, rtol=1e-12, atol=1e-12)
        # the loss along the path is the one gradient_descent records
        D = np.hstack([X, np.ones((len(X), 1))]) if fit_intercept else X
        losses = [np.sum((D @ w - y) ** 2) / (2 * len(X)) for w in path]
        np.testing.assert_allclose(losses, ref.loss_history, rtol=1e-10)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_predicted_steps_match_the_iterated_count(seed, fit_intercept):
    X, y = _problem(seed)
    top = np.linalg.eigvalsh(least_squares_hessian(X, fit_intercept))[-1]
    for lr in (None, 0.5 / top, 1.5 / top):
        for tol in (1e-3, 1e-6):
            measured = count_gd_iterations(X, y, lr=lr, tol=tol, max_iter=10**6, fit_intercept=fit_intercept)
            predicted = predicted_gd_steps(X, y, lr=lr, tol=tol, fit_intercept=fit_intercept)
            assert abs(measured - predicted) <= 1, (measured, predicted)


def test_predicted_steps_refuses_a_diverging_step():
    X, y = _problem(0)
    top = np.linalg.eigvalsh(least_squares_hessian(X))[-1]
    with pytest.raises(ValueError, match="2 / lambda_max"):
        predicted_gd_steps(X, y, lr=2.5 / top)


def test_step_bound_closed_form_and_it_bounds_the_measured_count():
    assert gd_step_bound(1.0) == 1.0
    kappa = np.array([2.0, 10.0, 1e3, 1e5])
    expected = [math.ceil(math.log(1e-6) / math.log(1 - 1 / k)) for k in kappa]
    np.testing.assert_array_equal(gd_step_bound(kappa, 1e-6), expected)
    # for large kappa the bound is about kappa * log(1 / tol)
    assert gd_step_bound(1e5, 1e-6) == pytest.approx(1e5 * math.log(1e6), rel=1e-4)
    with pytest.raises(ValueError):
        gd_step_bound(0.5)
    for seed in range(5):
        for fit_intercept in (False, True):
            X, y = _problem(seed)
            k = condition_number(X, fit_intercept=fit_intercept)
            steps = count_gd_iterations(X, y, tol=1e-6, max_iter=10**6, fit_intercept=fit_intercept)
            assert steps <= gd_step_bound(k, 1e-6)


def test_sweep_scaled_problems_do_not_depend_on_the_ratio_and_match_closed_forms():
    ratios, seeds = [1.0, 10.0, 30.0], [0, 1]
    out = scale_ratio_sweep(ratios, seeds, tol=1e-6, n_samples=100)
    for name in ("raw", "min-max", "z-score"):
        assert out[name]["kappa"].shape == (2, 3) and out[name]["steps"].shape == (2, 3)
    for i, seed in enumerate(seeds):
        X, _, _ = make_elongated_regression(100, (1.0, 30.0), 0.1, seed)
        # z-scored with an intercept: eigenvalues {1 - rho, 1 + rho, 1}, rho the correlation
        rho = abs(np.corrcoef(X.T)[0, 1])
        np.testing.assert_allclose(out["z-score"]["kappa"][i], (1 + rho) / (1 - rho), rtol=1e-9)
        # both scalers are invariant to rescaling a feature: same kappa for every ratio
        for name in ("min-max", "z-score"):
            np.testing.assert_allclose(out[name]["kappa"][i], out[name]["kappa"][i, 0], rtol=1e-9)
        # raw: H is about diag(1, r^2, 1), so kappa is about r^2 (sampling error aside)
        np.testing.assert_allclose(out["raw"]["kappa"][i, 1:], np.array(ratios[1:]) ** 2, rtol=0.5)
    # steps grow with kappa for raw features, and z-scored features need few
    assert np.all(np.diff(out["raw"]["steps"], axis=1) > 0)
    assert out["z-score"]["steps"].max() < 30
    assert np.all(out["raw"]["steps"] <= gd_step_bound(out["raw"]["kappa"], 1e-6))


def test_fit_scaler_modes_match_sklearn():
    rng = np.random.default_rng(0)
    Xtr, Xte = rng.standard_normal((50, 3)) * 5 + 1, rng.standard_normal((20, 3)) * 2 - 3
    a, b = fit_scaler(StandardScaler, Xtr, Xte, "train")
    sk = SkStandardScaler().fit(Xtr)
    np.testing.assert_allclose(a, sk.transform(Xtr)), np.testing.assert_allclose(b, sk.transform(Xte))
    a, b = fit_scaler(StandardScaler, Xtr, Xte, "train+test")
    sk = SkStandardScaler().fit(np.vstack([Xtr, Xte]))
    np.testing.assert_allclose(a, sk.transform(Xtr)), np.testing.assert_allclose(b, sk.transform(Xte))
    a, b = fit_scaler(StandardScaler, Xtr, Xte, "test")
    np.testing.assert_allclose(a, SkStandardScaler().fit_transform(Xtr))
    np.testing.assert_allclose(b, SkStandardScaler().fit_transform(Xte))
    np.testing.assert_allclose(b.mean(0), 0, atol=1e-12)  # the test set's own statistics
    a, b = fit_scaler(MinMaxScaler, Xtr, Xte, "test")
    assert b.min() == 0 and b.max() == 1
    with pytest.raises(ValueError, match="fit_on"):
        fit_scaler(StandardScaler, Xtr, Xte, "everything")


def test_refit_per_batch_extremes():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 4)) * 3
    y = (X[:, 0] + 0.3 * rng.standard_normal(40) > 0).astype(int)
    model = LogisticRegression().fit(zscore(X), y)
    # one batch holding everything: the same as standardizing the whole set at once
    assert refit_per_batch_accuracy(model, StandardScaler, X, y, 40) == model.score(zscore(X), y)
    # batches of one: every feature is 0, so every prediction is the prediction at 0
    at_zero = model.predict(np.zeros((1, 4)))[0]
    assert refit_per_batch_accuracy(model, StandardScaler, X, y, 1) == np.mean(y == at_zero)


def test_leakage_experiment_against_an_sklearn_pipeline():
    from normlab.data import article002_classification

    out = leakage_experiment(seeds=(3,), batch_sizes=(1, 200), class1_fractions=(0.1, 0.5))
    d = article002_classification(seed=3, n_redundant=0, scale=None)
    pipe = make_pipeline(SkStandardScaler(), LogisticRegression()).fit(d.X_train.astype(float), d.y_train)
    assert out["acc"]["train"][0] == pytest.approx(pipe.score(d.X_test.astype(float), d.y_test))
    # batch of 1: the model's answer no longer depends on the input
    assert out["batch_acc"][0, 0] in {np.mean(d.y_test == 0), np.mean(d.y_test == 1)}
    # batch of the whole test set = fit on test
    assert out["batch_acc"][0, 1] == pytest.approx(out["acc"]["test"][0])
    assert out["frac_acc"]["train"].shape == (1, 2)
    assert set(out["corrupt_acc"]) == {
        ("MinMaxScaler", "train"),
        ("MinMaxScaler", "train+test"),
        ("StandardScaler", "train"),
        ("StandardScaler", "train+test"),
    }
    # fitting on train, the corrupted test row cannot change the model
    assert out["corrupt_acc"][("StandardScaler", "train")][0] == pytest.approx(
        np.mean(pipe.predict(d.X_test[1:].astype(float)) == d.y_test[1:])
    )


def test_adam_loss_gaps_match_torch_adam_on_the_same_quadratic():
    import torch

    from normlab_book.feature_scaling import adam_loss_gaps

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2)) * np.array([1.0, 30.0])
    y = X @ np.array([1.0, 0.5]) + 0.1 * rng.normal(size=50)
    gaps = adam_loss_gaps(X, y, n_steps=40, lr=0.05, fit_intercept=True)
    D = torch.tensor(np.hstack([X, np.ones((50, 1))]))
    yt = torch.tensor(y)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    losses = []
    for _ in range(41):
        loss = 0.5 * torch.mean((D @ w - yt) ** 2)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    w_star = np.linalg.lstsq(D.numpy(), y, rcond=None)[0]
    l_star = 0.5 * np.mean((D.numpy() @ w_star - y) ** 2)
    ref = (np.array(losses) - l_star) / (losses[0] - l_star)
    np.testing.assert_allclose(gaps, ref, rtol=1e-9, atol=1e-12)
    assert gaps[0] == 1.0
    with pytest.raises(ValueError, match="lr > 0"):
        adam_loss_gaps(X, y, n_steps=5, lr=0.0)
