"""normlab.batchnorm (functional) against torch 2.13 in float64 and finite differences."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import assert_close, normalization_tolerances

from normlab import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_eval_backward,
    batchnorm_eval_forward,
    batchnorm_forward,
    numerical_gradient,
    rel_error,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)

SETTINGS = settings()


# ------------------------------------------------------------------------------ helpers


@st.composite
def bn_inputs(draw):
    """(x, gamma, beta, dout) in float64 for ranks 2-4, tiny (n = 2) to larger batches."""
    rank = draw(st.sampled_from([2, 3, 4]))
    n_max = 256 if rank == 2 else 8
    shape = (draw(st.integers(2, n_max)), draw(st.integers(1, 6)))
    shape += tuple(draw(st.integers(1, 5)) for _ in range(rank - 2))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    shift = draw(st.sampled_from([0.0, 1.0, -10.0])) * scale
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = shape[1]
    x = rng.standard_normal(shape) * scale + shift
    gamma = rng.standard_normal(c) * draw(st.sampled_from([0.1, 1.0, 10.0]))
    beta = rng.standard_normal(c)
    dout = rng.standard_normal(shape)
    return x, gamma, beta, dout


def torch_batchnorm(x, gamma, beta, dout, running=None):
    """torch's F.batch_norm forward and autograd gradients (dx, dgamma, dbeta), float64."""
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    rm, rv = (None, None) if running is None else (torch.tensor(r) for r in running)
    out = F.batch_norm(xt, rm, rv, gt, bt, training=running is None, eps=1e-5)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


def bn_tolerances(x, gamma, beta, dout):
    """Rounding-error bounds of training-mode batch norm (tolerances.normalization_tolerances
    over the batch and spatial axes, parameters on the channel axis)."""
    axes = (0,) + tuple(range(2, x.ndim))
    return normalization_tolerances(x, dout, axes=axes, eps=1e-5, gamma=gamma, beta=beta,
                                    param_axes=(1,))


def assert_grads_match(grads, x, gamma, dout, expected):
    """(dx, dgamma, dbeta) within the rounding-error bounds of ``bn_tolerances``.

    Both implementations cancel terms of size |gamma * invstd * dout| (dx) and sum |dout|
    (dgamma, dbeta), so the error is judged against them, not against a result that may
    itself be a near-zero difference.
    """
    tol = bn_tolerances(x, gamma, None, dout)
    for name, got, want in zip(("dx", "dgamma", "dbeta"), grads, expected):
        assert_close(got, want, tol[name], name=name)


def assert_train_forward_match(out, expected, x, gamma, beta):
    assert_close(out, expected, bn_tolerances(x, gamma, beta, np.zeros_like(x))["out"], name="out")


def assert_forward_match(out, expected):
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------- training vs torch


@SETTINGS
@given(bn_inputs())
def test_forward_matches_torch(inputs):
    x, gamma, beta, dout = inputs
    out, _ = batchnorm_forward(x, gamma, beta)
    assert out.dtype == np.float64
    assert_train_forward_match(out, torch_batchnorm(x, gamma, beta, dout)[0], x, gamma, beta)


@SETTINGS
@given(bn_inputs())
def test_both_backwards_match_torch_autograd(inputs):
    x, gamma, beta, dout = inputs
    _, cache = batchnorm_forward(x, gamma, beta)
    expected = torch_batchnorm(x, gamma, beta, dout)[1:]
    assert_grads_match(batchnorm_backward(dout, cache), x, gamma, dout, expected)
    assert_grads_match(batchnorm_backward_alt(dout, cache), x, gamma, dout, expected)


@SETTINGS
@given(bn_inputs())
def test_staged_and_closed_form_backward_agree(inputs):
    x, gamma, beta, dout = inputs
    _, cache = batchnorm_forward(x, gamma, beta)
    staged = batchnorm_backward(dout, cache)
    closed = batchnorm_backward_alt(dout, cache)
    assert_grads_match(staged, x, gamma, dout, closed)


def test_statistics_are_per_channel_over_batch_and_spatial_axes():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 4, 2)) * np.array([1.0, 10.0, 0.1])[:, None, None] + 7.0
    _, cache = batchnorm_forward(x, np.ones(3), np.zeros(3))
    np.testing.assert_allclose(cache.mu, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(cache.var, x.var(axis=(0, 2, 3)), rtol=1e-12)  # biased
    x_hat = F.batch_norm(torch.tensor(x), None, None, training=True).numpy()
    np.testing.assert_allclose(cache.x_hat, x_hat, rtol=1e-10, atol=1e-10)


def test_constant_channel_gives_beta_like_torch():
    x = np.full((4, 2, 3), 5.0)
    x[:, 1] = np.arange(12.0).reshape(4, 3)
    gamma, beta = np.array([2.0, 3.0]), np.array([-1.0, 0.5])
    dout = np.random.default_rng(0).standard_normal(x.shape)
    out, cache = batchnorm_forward(x, gamma, beta)
    expected = torch_batchnorm(x, gamma, beta, dout)
    assert_train_forward_match(out, expected[0], x, gamma, beta)
    np.testing.assert_allclose(out[:, 0], -1.0)
    assert_grads_match(batchnorm_backward_alt(dout, cache), x, gamma, dout, expected[1:])


# ----------------------------------------------------------------- finite differences


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4), (3, 2, 2, 3), (2, 2, 1, 2, 2)])
@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
def test_backward_matches_finite_differences(shape, backward):
    rng = np.random.default_rng(sum(shape))
    c = shape[1]
    x = rng.standard_normal(shape) * 2.0 + 1.0
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    dout = rng.standard_normal(shape)
    dx, dgamma, dbeta = backward(dout, batchnorm_forward(x, gamma, beta)[1])
    num_dx = numerical_gradient(lambda v: batchnorm_forward(v, gamma, beta)[0], x, dout)
    num_dgamma = numerical_gradient(lambda g: batchnorm_forward(x, g, beta)[0], gamma, dout)
    num_dbeta = numerical_gradient(lambda b: batchnorm_forward(x, gamma, b)[0], beta, dout)
    assert rel_error(dx, num_dx) < 1e-6
    assert rel_error(dgamma, num_dgamma) < 1e-7
    assert rel_error(dbeta, num_dbeta) < 1e-7


# ------------------------------------------------------------------------- eval mode


@SETTINGS
@given(bn_inputs(), st.integers(0, 2**32 - 1))
def test_eval_forward_and_backward_match_torch(inputs, seed):
    x, gamma, beta, dout = inputs
    rng = np.random.default_rng(seed)
    c = x.shape[1]
    running = (rng.standard_normal(c) * 3.0, rng.random(c) * 4.0 + 0.01)
    out, cache = batchnorm_eval_forward(x, gamma, beta, *running)
    expected = torch_batchnorm(x, gamma, beta, dout, running)
    assert_forward_match(out, expected[0])
    dx, dgamma, dbeta = batchnorm_eval_backward(dout, cache)
    scale = np.max(np.abs(dout)) * np.max(np.abs(gamma) / np.sqrt(running[1] + 1e-5))
    np.testing.assert_allclose(dx, expected[1], rtol=1e-10, atol=1e-12 * scale)
    for got, want in ((dgamma, expected[2]), (dbeta, expected[3])):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8 * np.abs(want).max())


def test_eval_accepts_one_value_per_channel_like_torch():
    x = np.array([[0.5, -1.0, 2.0]])
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, -1.0])
    running = (np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 0.5]))
    out, _ = batchnorm_eval_forward(x, gamma, beta, *running)
    assert_forward_match(out, torch_batchnorm(x, gamma, beta, np.ones_like(x), running)[0])


# ---------------------------------------------------------------------------- float32


@pytest.mark.parametrize("shape", [(64, 5), (8, 4, 6, 6)])
def test_float32_stays_float32_and_matches_torch_float32(shape):
    rng = np.random.default_rng(7)
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    gamma = rng.standard_normal(c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    out, cache = batchnorm_forward(x, gamma, beta)
    grads = batchnorm_backward_alt(dout, cache)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    xt = torch.tensor(x, requires_grad=True)
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    yt = F.batch_norm(xt, None, None, gt, bt, training=True)
    yt.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-4, atol=1e-4)
    for got, t in zip(grads, (xt, gt, bt)):
        want = t.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


# --------------------------------------------------------------------- spatial names


def test_spatial_batchnorm_is_the_nchw_case():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4, 5, 2))
    gamma, beta, dout = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(x.shape)
    out, cache = spatial_batchnorm_forward(x, gamma, beta)
    expected = torch_batchnorm(x, gamma, beta, dout)
    assert_train_forward_match(out, expected[0], x, gamma, beta)
    assert_grads_match(spatial_batchnorm_backward(dout, cache), x, gamma, dout, expected[1:])
    with pytest.raises(ValueError, match=r"expected 4D input.*\(N, C, H, W\).*got 3D"):
        spatial_batchnorm_forward(x[0], gamma, beta)


# ----------------------------------------------------------------------- empty batch


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 3, 0), (1, 3, 0)])
def test_empty_batch_gives_empty_output_and_zero_parameter_grads_like_torch(shape):
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.0, -0.5])
    x, dout = np.zeros(shape), np.zeros(shape)
    out, cache = batchnorm_forward(x, gamma, beta)
    expected = torch_batchnorm(x, gamma, beta, dout)
    assert out.shape == expected[0].shape == shape
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        for got, want in zip(backward(dout, cache), expected[1:]):
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1)])
def test_one_value_per_channel_in_training_raises_torchs_error(shape):
    x, gamma, beta = np.ones(shape), np.ones(3), np.zeros(3)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(torch.tensor(x), None, None, training=True)
    message = f"Expected more than 1 value per channel when training, got input size {shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        batchnorm_forward(x, gamma, beta)


def test_integer_input_is_rejected():
    with pytest.raises(TypeError, match="x must be a floating-point array.*int64"):
        batchnorm_forward(np.ones((4, 3), dtype=np.int64), np.ones(3), np.zeros(3))
    with pytest.raises(TypeError, match="gamma must be a floating-point array"):
        batchnorm_forward(np.ones((4, 3)), np.ones(3, dtype=int), np.zeros(3))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_rejected(bad):
    x = np.ones((4, 3))
    x[2, 1] = bad
    with pytest.raises(ValueError, match="x contains 1 NaN or infinite value"):
        batchnorm_forward(x, np.ones(3), np.zeros(3))


@pytest.mark.parametrize("shape", [(), (5,)])
def test_rank_below_two_is_rejected(shape):
    with pytest.raises(ValueError, match=r"expected x of shape \(N, C, \*spatial\) with at least 2 dimensions"):
        batchnorm_forward(np.ones(shape), np.ones(3), np.zeros(3))


@pytest.mark.parametrize("gamma_shape", [(1,), (4,), (1, 3), (3, 1), (4, 3)])
def test_gamma_must_have_shape_c_exactly(gamma_shape):
    x = np.random.default_rng(0).standard_normal((4, 3))
    expected = re.escape(f"must have shape (3,), got {gamma_shape}")
    with pytest.raises(ValueError, match="gamma " + expected):
        batchnorm_forward(x, np.ones(gamma_shape), np.zeros(3))
    with pytest.raises(ValueError, match="beta " + expected):
        batchnorm_forward(x, np.ones(3), np.zeros(gamma_shape))


def test_eps_must_be_a_non_negative_number():
    x = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), eps=-1e-5)
    with pytest.raises(TypeError, match="eps must be a real number"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), eps="1e-5")


def test_backward_checks_dout_and_cache():
    x = np.random.default_rng(0).standard_normal((4, 3))
    _, cache = batchnorm_forward(x, np.ones(3), np.zeros(3))
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        with pytest.raises(ValueError, match=re.escape("dout must have shape (4, 3), got (3, 4)")):
            backward(np.ones((3, 4)), cache)
        with pytest.raises(TypeError, match="cache must be the BatchNormCache"):
            backward(np.ones((4, 3)), (x, 1.0))
    _, eval_cache = batchnorm_eval_forward(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="by batchnorm_eval_forward; use batchnorm_eval_backward"):
        batchnorm_backward_alt(np.ones((4, 3)), eval_cache)
    with pytest.raises(ValueError, match="made by batchnorm_forward; use batchnorm_backward"):
        batchnorm_eval_backward(np.ones((4, 3)), cache)


def test_eval_forward_checks_running_statistics():
    x = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(ValueError, match=re.escape("running_var must have shape (3,), got (2,)")):
        batchnorm_eval_forward(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match="running_var must be >= 0"):
        batchnorm_eval_forward(x, np.ones(3), np.zeros(3), np.zeros(3), -np.ones(3))
