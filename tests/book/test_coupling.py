"""normlab_book.coupling: the batch coupling of training-mode BN, against torch autograd."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normlab_book.coupling import (
    batch_dependence,
    batch_jacobian,
    delta_method_spread,
    jacobian_closed_form,
)


def _torch_jacobian(x, gamma, eps):
    def f(v):
        return F.batch_norm(v, None, None, torch.as_tensor(gamma), torch.zeros(len(gamma),
                            dtype=torch.float64), training=True, eps=eps)

    return torch.autograd.functional.jacobian(f, torch.as_tensor(x)).numpy()


def test_batch_jacobian_matches_torch_autograd():
    rng = np.random.default_rng(0)
    x = 1.5 + 2.0 * rng.standard_normal((6, 3))
    gamma = np.array([0.5, 1.0, 2.0])
    jac = batch_jacobian(x, gamma, eps=1e-5)
    assert jac.shape == (6, 3, 6, 3)
    np.testing.assert_allclose(jac, _torch_jacobian(x, gamma, 1e-5), rtol=0, atol=1e-12)


def test_closed_form_is_the_per_feature_block_and_features_do_not_interact():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4))
    gamma = rng.uniform(0.5, 2.0, 4)
    jac = batch_jacobian(x, gamma)
    closed = jacobian_closed_form(x, gamma)
    for a in range(4):
        np.testing.assert_allclose(jac[:, a, :, a], closed[a], rtol=0, atol=1e-12)
        for b in range(4):
            if b != a:
                assert np.all(jac[:, a, :, b] == 0.0)


def test_jacobian_off_diagonal_nonzero_and_rows_sum_to_zero():
    # Shifting every example by the same amount leaves the output unchanged: rows sum to 0.
    x = np.random.default_rng(2).standard_normal((7, 2))
    closed = jacobian_closed_form(x)
    np.testing.assert_allclose(closed.sum(axis=2), 0.0, atol=1e-12)
    off = closed[0][~np.eye(7, dtype=bool)]
    assert np.all(np.abs(off) > 0)


def test_two_examples_normalize_to_plus_minus_one():
    # With N = 2 each example is normalized to sign(x0 - x1) * |d| / sqrt(d**2 + eps).
    spread = batch_dependence([2], seeds=[0], n_features=200, n_resamples=40, eps=0.0)
    # Outputs are +-1 with probability ~1/2 each over resamples: std about 1, minus sampling noise.
    assert 0.75 < spread[0, 0] <= 1.0


def test_batch_dependence_shrinks_like_the_delta_method():
    sizes = [8, 64, 512]
    spread = batch_dependence(sizes, seeds=[0, 1], n_features=64, n_resamples=40)
    assert spread.shape == (2, 3)
    assert np.all(np.diff(spread, axis=1) < 0)
    ratio = spread / delta_method_spread(sizes)
    assert np.all((ratio > 0.85) & (ratio < 1.1)), ratio


def test_batch_dependence_rejects_batch_of_one():
    with pytest.raises(ValueError):
        batch_dependence([1], seeds=[0])
