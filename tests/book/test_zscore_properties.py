"""normlab_book.zscore_properties against independent truth: scipy.stats, closed
forms (Gaussian moments, c4, Chebyshev, Samuelson) and torch's batch norm."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tolerances import budget

from normlab import zscore
from normlab_book.zscore_properties import (
    c4,
    ddof_monte_carlo,
    eps_output_std,
    shape_samples,
    shape_summary,
    tail_fractions,
)


def test_shape_samples_are_seeded_and_have_the_announced_shapes():
    a, b = shape_samples(5000, seed=3), shape_samples(5000, seed=3)
    assert set(a) == {"skewed", "bimodal", "heavy-tailed"}
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].shape == (5000,)
    assert not np.array_equal(a["skewed"], shape_samples(5000, seed=4)["skewed"])
    # log-normal with s = 0.75: population skewness (e^{s^2} + 2) sqrt(e^{s^2} - 1)
    s2 = 0.75**2
    skew_true = (math.exp(s2) + 2) * math.sqrt(math.exp(s2) - 1)
    assert scipy.stats.skew(np.log(a["skewed"])) == pytest.approx(0, abs=0.1)
    assert 0.5 * skew_true < scipy.stats.skew(a["skewed"]) < 1.5 * skew_true
    # the mixture has two modes: few values between the two bumps, at 30 and 75
    h = a["bimodal"]
    assert np.mean((h > 45) & (h < 55)) < 0.05 < np.mean(h < 40) and np.mean(h > 65) > 0.3
    assert scipy.stats.kurtosis(a["heavy-tailed"]) > 3  # far heavier tails than a Gaussian
    with pytest.raises(ValueError):
        shape_samples(1)


def test_shape_summary_matches_scipy_and_is_invariant_under_zscore():
    for x in shape_samples(3000, seed=1).values():
        s = shape_summary(x)
        assert s["skewness"] == pytest.approx(scipy.stats.skew(x), rel=1e-10)
        assert s["excess_kurtosis"] == pytest.approx(scipy.stats.kurtosis(x), rel=1e-10)
        assert s["std"] == pytest.approx(np.std(x), rel=1e-12)
        z = shape_summary(zscore(x))
        assert z["mean"] == pytest.approx(0, abs=1e-12) and z["std"] == pytest.approx(1, rel=1e-12)
        assert z["skewness"] == pytest.approx(s["skewness"], rel=1e-9)
        assert z["excess_kurtosis"] == pytest.approx(s["excess_kurtosis"], rel=1e-9)
        assert z["max"] == pytest.approx((s["max"] - s["mean"]) / s["std"], rel=1e-9)
    with pytest.raises(ValueError):
        shape_summary(np.ones((2, 2)))


def test_c4_closed_form_values_and_simulation():
    assert c4(2) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-12)
    assert c4(5) == pytest.approx(0.939985603, rel=1e-8)  # tabulated control-chart constant
    assert c4(np.array([2, 10]))[1] == pytest.approx(0.972659274, rel=1e-8)
    assert 1 - c4(10_000) < 1e-4
    with pytest.raises(ValueError):
        c4(1)


def test_ddof_monte_carlo_matches_the_expected_values():
    ns = [2, 3, 5, 20]
    mc = ddof_monte_carlo(ns, n_trials=40000, seed=0)
    n = np.array(ns, dtype=float)
    # standard errors are below 1 % with 40000 trials; allow 3 %
    np.testing.assert_allclose(mc["var0"], (n - 1) / n, rtol=0.03)
    np.testing.assert_allclose(mc["var1"], 1.0, rtol=0.03)
    np.testing.assert_allclose(mc["std1"], c4(n), rtol=0.02)
    np.testing.assert_allclose(mc["std0"], c4(n) * np.sqrt((n - 1) / n), rtol=0.02)
    np.testing.assert_array_equal(mc["ns"], ns)


def test_eps_output_std_closed_form_and_torch_batch_norm():
    stds = np.array([1e-4, 1e-3, 3e-3, 1e-2, 1e-1, 1.0])
    for eps in (1e-5, 1e-3):
        got = eps_output_std(stds, eps, n=500, seed=2)
        base = np.random.default_rng(2).standard_normal(500)
        v = (stds[:, None] * (base - base.mean())) .var(axis=1)
        np.testing.assert_allclose(got, np.sqrt(v / (v + eps)), rtol=1e-9)
        # the same thing as torch's training-mode batch norm on one channel
        x = torch.tensor(3.0 + stds[:, None] * base, dtype=torch.float64).T  # (n, C)
        y = F.batch_norm(x, None, None, training=True, eps=eps)
        np.testing.assert_allclose(got, y.std(dim=0, unbiased=False).numpy(), rtol=1e-9)


@settings(max_examples=budget(60))
@given(hnp.arrays(np.float64, st.integers(2, 40), elements=st.floats(-1e3, 1e3)))
def test_chebyshev_and_samuelson_hold_for_any_data(x):
    if np.ptp(x) < 1e-6 * (1 + np.abs(x).max()):
        return  # constant up to rounding: z is 0 there, nothing to bound
    z = zscore(x)
    ks = [0.5, 1.0, 1.5, 2.0, 3.0]
    assert np.all(tail_fractions(z, ks) <= 1 / np.square(ks) + 1e-12)
    assert np.abs(z).max() <= math.sqrt(len(x) - 1) + 1e-9


def test_tail_fractions_and_the_two_point_case():
    z = np.array([-3.0, -1.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(tail_fractions(z, [1, 2, 3, 4]), [0.8, 0.4, 0.2, 0.0])
    # with two values, ddof=0 z-scores are exactly -1 and +1 whatever the values
    rng = np.random.default_rng(0)
    for _ in range(20):
        pair = rng.standard_normal(2) * 10 ** rng.uniform(-3, 3)
        np.testing.assert_allclose(np.sort(zscore(pair)), [-1.0, 1.0], rtol=1e-9)
