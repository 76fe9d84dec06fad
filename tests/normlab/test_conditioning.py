"""normlab.conditioning against independent ground truth: torch autograd, numpy.linalg,
closed forms for diagonal quadratics, and scikit-learn's scalers."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tolerances import budget
from sklearn import preprocessing as skp

from normlab import (
    condition_number,
    count_gd_iterations,
    gradient_descent,
    least_squares_hessian,
    loss_surface,
    make_elongated_regression,
)

FAST = settings(max_examples=budget(30))


@st.composite
def designs(draw, max_features=3):
    n = draw(st.integers(1, 10))
    d = draw(st.integers(1, max_features))
    return draw(hnp.arrays(np.float64, (n, d), elements=st.one_of(
        st.floats(-100, 100, allow_subnormal=False), st.sampled_from([0.0, 1.0, -3.0]))))


def with_ones(X):
    return np.column_stack([X, np.ones(len(X))])


def hessian_by_numpy(X, fit_intercept):
    D = with_ones(X) if fit_intercept else X
    return D.T @ D / len(D)


def hadamard_design(stds, n=8):
    """Centered, mutually orthogonal columns with population stds ``stds``: H = diag(stds^2)."""
    return scipy.linalg.hadamard(n)[:, 1:len(stds) + 1] * np.asarray(stds, dtype=float)


# ----------------------------------------------------------------------------- Hessian
@FAST
@given(designs(), st.booleans())
def test_hessian_matches_torch_autograd(X, fit_intercept):
    n = len(X)
    D = torch.from_numpy(with_ones(X) if fit_intercept else X)
    y = torch.linspace(-1.0, 2.0, n, dtype=torch.float64)

    def loss(w):
        return ((D @ w - y) ** 2).sum() / (2 * n)

    expected = torch.autograd.functional.hessian(loss, torch.zeros(D.shape[1], dtype=torch.float64))
    np.testing.assert_allclose(least_squares_hessian(X, fit_intercept=fit_intercept),
                               expected.numpy(), rtol=1e-12, atol=1e-9)


# ----------------------------------------------------------------------------- condition number
@FAST
@given(designs(), st.booleans())
def test_condition_number_matches_numpy_cond_of_the_hessian(X, fit_intercept):
    expected = np.linalg.cond(hessian_by_numpy(X, fit_intercept))
    ours = condition_number(X, fit_intercept=fit_intercept)
    if expected < 1e8:
        assert ours == pytest.approx(expected, rel=1e-6)
    elif math.isinf(ours):
        assert expected > 1e12  # numpy also sees a (numerically) singular matrix


@pytest.mark.parametrize("s1, s2", [(1.0, 1.0), (1.0, 10.0), (0.5, 100.0), (3.0, 0.2)])
def test_condition_number_closed_form_for_independent_features(s1, s2):
    X = hadamard_design([s1, s2])
    assert condition_number(X) == pytest.approx((max(s1, s2) / min(s1, s2)) ** 2, rel=1e-12)
    # Centered features: the intercept adds the eigenvalue 1 (the ones column has mean square 1).
    eigs = [s1**2, s2**2, 1.0]
    expected = max(eigs) / min(eigs)
    assert condition_number(X, fit_intercept=True) == pytest.approx(expected, rel=1e-12)


def test_uncentered_feature_hurts_the_intercept_conditioning():
    x = hadamard_design([1.0]) + 10.0  # mean 10, std 1
    # H = [[101, 10], [10, 1]]: eigenvalues 51 +- sqrt(2600)
    lam = np.array([51 - math.sqrt(2600), 51 + math.sqrt(2600)])
    assert condition_number(x, fit_intercept=True) == pytest.approx(lam[1] / lam[0], rel=1e-9)
    assert condition_number(x - 10.0, fit_intercept=True) == pytest.approx(1.0)


@pytest.mark.parametrize("X, fit_intercept", [
    (np.column_stack([np.arange(5.0), 2 * np.arange(5.0)]), False),   # collinear columns
    (np.ones((4, 3)), False),                                           # rank 1
    (np.zeros((6, 2)), False),                                          # H = 0
    (np.arange(6.0).reshape(2, 3), False),                              # n < p
    (np.column_stack([np.arange(5.0), np.full(5, 7.0)]), True),         # constant + intercept
])
def test_singular_hessian_gives_inf(X, fit_intercept):
    assert condition_number(X, fit_intercept=fit_intercept) == math.inf


# ----------------------------------------------------------------------------- GD: theory
def closed_form_gd_steps(g0, kappa, tol):
    """Steps for H = diag(lam_min, L), lr = 1/L, criterion ||g_k|| <= tol ||g_0||.

    g_{k+1} = (I - H / L) g_k: the stiff component vanishes after one step and the slow one
    shrinks by (1 - 1/kappa) per step, so
    k = ceil(log(tol ||g_0|| / |g_0,slow|) / log(1 - 1/kappa)).
    """
    target = tol * np.linalg.norm(g0) / abs(g0[0])
    return max(1, math.ceil(math.log(target) / math.log(1 - 1 / kappa)))


@pytest.mark.parametrize("kappa", [4.0, 30.0, 1000.0])
@pytest.mark.parametrize("tol", [1e-3, 1e-8])
def test_gd_steps_match_closed_form_for_a_diagonal_quadratic(kappa, tol):
    X = hadamard_design([1.0, math.sqrt(kappa)])
    y = np.random.default_rng(0).normal(size=len(X))
    g0 = -X.T @ y / len(X)  # gradient at w0 = 0
    assert abs(count_gd_iterations(X, y, tol=tol) - closed_form_gd_steps(g0, kappa, tol)) <= 1


def test_gd_steps_grow_like_kappa_log_one_over_tol():
    kappa, tol = 1000.0, 1e-6
    X = hadamard_design([1.0, math.sqrt(kappa)])
    y = X @ np.array([1.0, 1.0 / kappa])  # equal gradient components at w0 = 0
    ratio = count_gd_iterations(X, y, tol=tol) / (kappa * math.log(1 / tol))
    assert 0.9 < ratio <= 1.0


def test_perfectly_conditioned_problem_takes_one_step():
    X = hadamard_design([3.0, 3.0, 3.0])
    y = np.arange(8.0)
    assert count_gd_iterations(X, y, tol=1e-10) == 1


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_gd_steps_respect_the_convergence_bound(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 3)) * rng.uniform(1, 8, size=3)
    y = rng.normal(size=40)
    tol = 1e-6
    kappa = np.linalg.cond(hessian_by_numpy(X, False))
    bound = math.ceil(math.log(tol) / math.log(1 - 1 / kappa))  # ||g_k|| <= (1 - 1/kappa)^k ||g_0||
    steps = count_gd_iterations(X, y, tol=tol)
    assert 1 <= steps <= bound + 1
    assert bound <= math.ceil(kappa * math.log(1 / tol))


# ----------------------------------------------------------------------------- GD: solution
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_gd_solution_matches_lstsq(fit_intercept):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 3)) + np.array([0.0, 2.0, -1.0])
    y = X @ np.array([1.5, -2.0, 0.5]) + 3.0 + 0.1 * rng.normal(size=60)
    D = with_ones(X) if fit_intercept else X
    w_star, *_ = np.linalg.lstsq(D, y, rcond=None)
    result = gradient_descent(X, y, tol=1e-12, fit_intercept=fit_intercept)
    assert result.converged
    np.testing.assert_allclose(result.w, w_star, rtol=1e-8, atol=1e-9)
    losses = result.loss_history
    assert losses.shape == (result.n_iter + 1,)
    assert losses[0] == pytest.approx(y @ y / (2 * len(y)), rel=1e-12)
    assert losses[-1] == pytest.approx(np.sum((D @ w_star - y) ** 2) / (2 * len(y)), rel=1e-9)
    # lr = 1/L: the descent lemma makes the loss non-increasing.
    assert np.all(np.diff(losses) <= 1e-12 * losses[0])


def test_gd_from_the_optimum_or_with_a_tiny_tol_stops_at_rounding_level():
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
    w_star, *_ = np.linalg.lstsq(X, y, rcond=None)
    assert gradient_descent(X, y, w0=w_star).n_iter <= 1
    tiny = gradient_descent(X, y, tol=1e-30)
    assert tiny.converged and tiny.n_iter < 1000
    np.testing.assert_allclose(tiny.w, w_star, rtol=1e-12)


def test_step_size_below_two_over_l_converges_above_it_diverges():
    X, y, _ = make_elongated_regression(n_samples=50, scales=(1.0, 3.0), seed=1)
    L = np.linalg.eigvalsh(hessian_by_numpy(X, False))[-1]
    assert count_gd_iterations(X, y, lr=1.9 / L) > 0
    result = gradient_descent(X, y, lr=2.5 / L)
    assert not result.converged and not np.isfinite(result.loss_history[-1])
    with pytest.raises(RuntimeError, match=r"diverged.*must be below 2 / lambda_max\(H\)"):
        count_gd_iterations(X, y, lr=2.5 / L)
    with pytest.raises(RuntimeError, match="did not converge within max_iter=5"):
        count_gd_iterations(X, y, max_iter=5)


# ----------------------------------------------------------------------------- scaling helps
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_standardizing_reduces_condition_number_and_gd_steps(seed):
    X, y, _ = make_elongated_regression(n_samples=200, scales=(1.0, 30.0), seed=seed)
    Xs = skp.StandardScaler().fit_transform(X)
    assert 900 / 2 < condition_number(X) < 900 * 2
    assert condition_number(Xs) < 1.5
    raw, standardized = count_gd_iterations(X, y), count_gd_iterations(Xs, y)
    assert standardized * 50 < raw
    minmax = count_gd_iterations(skp.minmax_scale(X), y, fit_intercept=True)
    assert minmax * 2 < raw  # min-max helps less: its features are not centered


def test_default_elongated_problem_converges_within_default_max_iter():
    X, y, _ = make_elongated_regression()
    assert count_gd_iterations(X, y) > 10_000
    assert count_gd_iterations(skp.StandardScaler().fit_transform(X), y) < 20


# ----------------------------------------------------------------------------- book helpers
def test_loss_surface_matches_direct_evaluation():
    X, y, _ = make_elongated_regression(n_samples=40, seed=3)
    w1, w2 = np.linspace(-2, 4, 7), np.linspace(0.9, 1.1, 5)
    Z = loss_surface(X, y, w1, w2)
    assert Z.shape == (5, 7)
    for i, b in enumerate(w2):
        for j, a in enumerate(w1):
            assert Z[i, j] == pytest.approx(np.sum((X @ [a, b] - y) ** 2) / (2 * len(y)), rel=1e-10)


def test_loss_surface_minimum_is_at_the_least_squares_solution():
    X, y, _ = make_elongated_regression(n_samples=100, scales=(1.0, 5.0), seed=4)
    w_star, *_ = np.linalg.lstsq(X, y, rcond=None)
    w1, w2 = np.linspace(0, 2, 201), np.linspace(0.8, 1.2, 201)
    i, j = np.unravel_index(np.argmin(loss_surface(X, y, w1, w2)), (201, 201))
    assert abs(w1[j] - w_star[0]) <= 0.01 and abs(w2[i] - w_star[1]) <= 0.002


def test_make_elongated_regression():
    X, y, w = make_elongated_regression(n_samples=2000, scales=(1.0, 100.0, 5.0), noise=0.5, seed=7)
    assert X.shape == (2000, 3) and y.shape == (2000,) and w.shape == (3,)
    np.testing.assert_allclose(X.std(axis=0), [1.0, 100.0, 5.0], rtol=0.1)
    assert np.all(np.abs(X.mean(axis=0)) < 0.1 * np.array([1.0, 100.0, 5.0]))
    assert np.std(y - X @ w) == pytest.approx(0.5, rel=0.1)
    assert 1e4 / 2 < condition_number(X) < 1e4 * 2
    X2, y2, _ = make_elongated_regression(2000, (1.0, 100.0, 5.0), 0.5, seed=7)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, make_elongated_regression(2000, (1.0, 100.0, 5.0), 0.5, seed=8)[0])


# ----------------------------------------------------------------------------- errors
def test_input_errors():
    X, y = np.ones((4, 2)), np.ones(4)
    with pytest.raises(ValueError, match="X has 4 samples but y has 3"):
        gradient_descent(X, np.ones(3))
    with pytest.raises(ValueError, match=r"y must be 1D .*y.ravel\(\)"):
        count_gd_iterations(X, np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"expected 2D input .*reshape\(-1, 1\)"):
        condition_number(np.ones(4))
    with pytest.raises(ValueError, match="NaN or infinite"):
        least_squares_hessian(np.array([[1.0, np.nan]]))
    with pytest.raises(TypeError, match="fit_intercept must be True or False"):
        condition_number(X, fit_intercept="yes")
    for kwargs, words in [({"lr": 0.0}, "lr must be a finite number > 0"),
                          ({"lr": -1.0}, "lr must be a finite number > 0"),
                          ({"tol": 0}, "tol must be a finite number > 0"),
                          ({"max_iter": -1}, "max_iter must be a non-negative integer"),
                          ({"w0": np.zeros(3)}, r"w0 must have shape \(2,\)")]:
        with pytest.raises(ValueError, match=words):
            gradient_descent(X, y, **kwargs)
    with pytest.raises(ValueError, match=r"w0 must have shape \(3,\) .*plus the intercept"):
        gradient_descent(X, y, w0=np.zeros(2), fit_intercept=True)


def test_book_helper_errors():
    with pytest.raises(ValueError, match="exactly 2 features .*got 3"):
        loss_surface(np.ones((4, 3)), np.ones(4), [0.0], [0.0])
    with pytest.raises(ValueError, match="w2_grid is empty"):
        loss_surface(np.ones((4, 2)), np.ones(4), [0.0], [])
    with pytest.raises(ValueError, match="expected 1D input .*w1_grid"):
        loss_surface(np.ones((4, 2)), np.ones(4), np.zeros((2, 2)), [0.0])
    for kwargs, words in [({"n_samples": 0}, "n_samples must be a positive integer"),
                          ({"scales": (1.0, -2.0)}, "scales must be a non-empty 1D sequence"),
                          ({"noise": -0.1}, "noise must be a finite number >= 0"),
                          ({"seed": None}, "seed must be a non-negative integer")]:
        with pytest.raises(ValueError, match=words):
            make_elongated_regression(**kwargs)
