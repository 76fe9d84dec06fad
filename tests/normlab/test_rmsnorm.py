"""RMS normalization (normlab.rmsnorm) against torch 2.13's F.rms_norm and nn.RMSNorm (float64,
forward and both gradients through autograd, judged against the rounding-error bounds of
tolerances.normalization_tolerances without centring), finite differences, and bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import assert_close, budget, normalization_tolerances

import normlab
from normlab import numerical_gradient, rel_error, rmsnorm_backward, rmsnorm_forward

# (x shape, gamma shape): gamma over 1, 2 and all trailing axes, leading axes 0 to 3
SHAPES = [((5, 8), (8,)), ((2, 3, 4, 5), (5,)), ((2, 3, 4, 5), (4, 5)), ((3, 4, 5), (3, 4, 5)),
          ((7,), (7,)), ((2, 1, 3, 2, 4), (2, 4)), ((4, 1), (1,))]


def torch_rmsnorm(x, gamma, dout, eps):
    """Output, dx and dgamma of torch's F.rms_norm (autograd), as numpy arrays."""
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    out = F.rms_norm(xt, list(gamma.shape), gt, eps)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy(), gt.grad.numpy()


def assert_matches_torch(x, gamma, dout, eps):
    out, cache = rmsnorm_forward(x, gamma, eps)
    dx, dgamma = rmsnorm_backward(dout, cache)
    want_out, want_dx, want_dgamma = torch_rmsnorm(x, gamma, dout, eps)
    axes = tuple(range(x.ndim - gamma.ndim, x.ndim))
    used_eps = np.finfo(x.dtype).eps if eps is None else eps
    tol = normalization_tolerances(x, dout, axes=axes, eps=used_eps, gamma=gamma,
                                   param_axes=axes, center=False)
    assert_close(out, want_out, tol["out"], name="out")
    assert_close(dx, want_dx, tol["dx"], name="dx")
    assert_close(dgamma, want_dgamma, tol["dgamma"], name="dgamma")
    assert out.shape == dx.shape == x.shape and dgamma.shape == gamma.shape


@pytest.mark.parametrize("x_shape, g_shape", SHAPES, ids=str)
@pytest.mark.parametrize("eps", [None, 1e-5, 1e-2])
def test_matches_torch_rms_norm_forward_and_gradients(x_shape, g_shape, eps):
    rng = np.random.default_rng(len(x_shape) * 10 + len(g_shape))
    x = rng.standard_normal(x_shape) * 3 + 1
    gamma = rng.standard_normal(g_shape)
    assert_matches_torch(x, gamma, rng.standard_normal(x_shape), eps)


@pytest.mark.parametrize("scale", [1e-9, 1e-3, 1e4])
def test_default_eps_is_the_dtype_epsilon_like_torch(scale):
    """At scale 1e-9 the mean square (1e-18) is below float64's eps (2.2e-16): the output
    depends on eps, and torch's eps=None default must be matched, not 1e-5 or 0."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6)) * scale
    gamma = rng.standard_normal(6)
    assert_matches_torch(x, gamma, rng.standard_normal(x.shape), None)
    out, cache = rmsnorm_forward(x, gamma)
    assert cache.eps == np.finfo(np.float64).eps
    if scale == 1e-9:
        no_eps = gamma * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True))
        assert np.abs(out - no_eps).max() > 0.5 * np.abs(no_eps).max()  # eps really matters


def test_matches_the_torch_module_nn_rmsnorm():
    rng = np.random.default_rng(4)
    module = torch.nn.RMSNorm((3, 4), dtype=torch.float64)
    assert module.eps is None
    with torch.no_grad():
        module.weight.copy_(torch.tensor(rng.standard_normal((3, 4))))
    x = rng.standard_normal((5, 3, 4)) * 2 - 1
    dout = rng.standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    module(xt).backward(torch.tensor(dout))
    gamma = module.weight.detach().numpy()
    out, cache = rmsnorm_forward(x, gamma)
    dx, dgamma = rmsnorm_backward(dout, cache)
    tol = normalization_tolerances(x, dout, axes=(1, 2), eps=np.finfo(np.float64).eps,
                                   gamma=gamma, param_axes=(1, 2), center=False)
    assert_close(out, module(torch.tensor(x)).detach().numpy(), tol["out"], name="out")
    assert_close(dx, xt.grad.numpy(), tol["dx"], name="dx")
    assert_close(dgamma, module.weight.grad.numpy(), tol["dgamma"], name="dgamma")


@settings(max_examples=budget(30))
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(1, 3),
       st.sampled_from([None, 1e-6, 1e-3]), st.sampled_from([1e-4, 1.0, 50.0]),
       st.integers(0, 2**32 - 1))
def test_matches_torch_for_random_shapes_and_scales(shape, k, eps, scale, seed):
    k = min(k, len(shape))
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) + rng.standard_normal()) * scale
    gamma = rng.standard_normal(shape[len(shape) - k:])
    assert_matches_torch(x, gamma, rng.standard_normal(shape), eps)


@pytest.mark.parametrize("x_shape, g_shape", [((4, 5), (5,)), ((2, 3, 4), (3, 4))], ids=str)
def test_gradients_match_finite_differences(x_shape, g_shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape)
    gamma = rng.standard_normal(g_shape)
    dout = rng.standard_normal(x_shape)
    eps = 1e-5
    dx, dgamma = rmsnorm_backward(dout, rmsnorm_forward(x, gamma, eps)[1])
    dx_num = numerical_gradient(lambda v: rmsnorm_forward(v, gamma, eps)[0], x, dout)
    dgamma_num = numerical_gradient(lambda g: rmsnorm_forward(x, g, eps)[0], gamma, dout)
    assert rel_error(dx, dx_num) < 1e-7
    assert rel_error(dgamma, dgamma_num) < 1e-7


def test_is_layer_norm_of_zero_mean_rows_without_beta():
    """Closed form: for rows with mean zero RMSNorm equals layer norm (same eps)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 10))
    x -= x.mean(axis=1, keepdims=True)
    gamma = rng.standard_normal(10)
    out, _ = rmsnorm_forward(x, gamma, 1e-5)
    ln, _ = normlab.layernorm_forward(x, gamma, None, 1e-5)
    np.testing.assert_allclose(out, ln, rtol=1e-13, atol=1e-15)


def test_float32_stays_float32_with_the_float32_eps():
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((8, 16)) * 1e-4).astype(np.float32)  # mean square ~ float32 eps
    gamma = np.ones(16, np.float32)
    out, cache = rmsnorm_forward(x, gamma)
    assert out.dtype == np.float32 and cache.eps == np.finfo(np.float32).eps
    want = F.rms_norm(torch.tensor(x), [16], torch.tensor(gamma)).numpy()
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    dx, dgamma = rmsnorm_backward(np.ones_like(x), cache)
    assert dx.dtype == dgamma.dtype == np.float32


def test_empty_leading_axes_give_empty_output_and_zero_dgamma():
    x = np.empty((0, 3))
    out, cache = rmsnorm_forward(x, np.ones(3))
    dx, dgamma = rmsnorm_backward(np.empty((0, 3)), cache)
    assert out.shape == dx.shape == (0, 3)
    np.testing.assert_array_equal(dgamma, np.zeros(3))
    assert torch.nn.functional.rms_norm(torch.empty(0, 3), [3]).shape == (0, 3)


def test_bad_input_raises_clear_errors():
    x, gamma = np.ones((2, 3)), np.ones(3)
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        rmsnorm_forward(np.ones((2, 3), dtype=int), gamma)
    with pytest.raises(ValueError, match="x contains 1 NaN or infinite"):
        rmsnorm_forward(np.array([[1.0, np.nan, 2.0]]), gamma)
    with pytest.raises(ValueError, match="gamma with at least 1 dimension"):
        rmsnorm_forward(x, np.float64(1.0))
    with pytest.raises(ValueError, match=r"normalized_shape=\(4,\) \(gamma's shape\), expected "
                                         r"input with shape \(\*, 4\), got input of shape \(2, 3\)"):
        rmsnorm_forward(x, np.ones(4))
    with pytest.raises(ValueError, match=r"expected input with shape \(\*, 2, 3, 4\)"):
        rmsnorm_forward(x, np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        rmsnorm_forward(x, gamma, -1e-5)
    with pytest.raises(TypeError, match="eps must be a real number"):
        rmsnorm_forward(x, gamma, "1e-5")
    _, cache = rmsnorm_forward(x, gamma)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\), got \(3, 2\)"):
        rmsnorm_backward(np.ones((3, 2)), cache)
    with pytest.raises(TypeError, match="cache must be the RMSNormCache"):
        rmsnorm_backward(np.ones((2, 3)), (x, gamma))
