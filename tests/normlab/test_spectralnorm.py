"""Spectral normalization (normlab.spectralnorm) against torch's spectral_norm parametrization.

The numpy code starts from the torch module's own ``_u`` / ``_v`` buffers and must follow it
through several training accesses (each runs the power iterations) and eval accesses.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import budget
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from normlab import numerical_gradient, rel_error
from normlab.spectralnorm import (
    SpectralNorm,
    spectral_norm,
    spectral_norm_backward,
    spectral_norm_init,
    weight_to_matrix,
)

HYP = settings(max_examples=budget(30))

MODULES = {
    "Linear": lambda a, b: nn.Linear(a, b),
    "Conv1d": lambda a, b: nn.Conv1d(a, b, 2),
    "Conv2d": lambda a, b: nn.Conv2d(a, b, (2, 3)),
    "ConvTranspose2d": lambda a, b: nn.ConvTranspose2d(a, b, 2),  # torch uses dim=1 here
}


def make_module(kind, fan_in, fan_out, n_iter, seed):
    torch.manual_seed(seed)
    return torch_spectral_norm(MODULES[kind](fan_in, fan_out).double(), n_power_iterations=n_iter)


def buffers(module):
    sn = module.parametrizations.weight[0]
    return sn._u.detach().numpy().copy(), sn._v.detach().numpy().copy()


def backprop(module, seed):
    """Backpropagate a random dW_sn through one access; return (dW_sn, grad of original)."""
    original = module.parametrizations.weight.original
    original.grad = None
    w = module.weight
    dw = torch.randn(w.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    w.backward(dw)
    return dw.numpy(), original.grad.numpy()


@HYP
@given(
    kind=st.sampled_from(sorted(MODULES)),
    fan_in=st.integers(1, 4),
    fan_out=st.integers(1, 4),
    n_iter=st.integers(1, 3),
    train_accesses=st.integers(1, 4),
    seed=st.integers(0, 2**31),
)
def test_follows_torch_through_training_and_eval_accesses(
    kind, fan_in, fan_out, n_iter, train_accesses, seed
):
    module = make_module(kind, fan_in, fan_out, n_iter, seed)
    dim = 1 if kind == "ConvTranspose2d" else 0
    W = module.parametrizations.weight.original.detach().numpy().copy()
    u, v = buffers(module)
    for _ in range(train_accesses):
        ref = module.weight.detach().numpy()
        W_sn, u, v, sigma = spectral_norm(W, u, v, n_iter, training=True, dim=dim)
        np.testing.assert_allclose(W_sn, ref, rtol=0, atol=1e-10)
        torch_u, torch_v = buffers(module)
        np.testing.assert_allclose(u, torch_u, rtol=0, atol=1e-10)
        np.testing.assert_allclose(v, torch_v, rtol=0, atol=1e-10)
    # gradient of one more training access (u, v constants there)
    dW_sn, grad = backprop(module, seed)
    _, u, v, _ = spectral_norm(W, u, v, n_iter, training=True, dim=dim)
    np.testing.assert_allclose(spectral_norm_backward(dW_sn, W, u, v, dim=dim), grad,
                               rtol=1e-8, atol=1e-12)

    module.eval()
    for _ in range(2):  # eval: no iteration, same u and v every time
        W_sn, u_eval, v_eval, _ = spectral_norm(W, u, v, n_iter, training=False, dim=dim)
        np.testing.assert_allclose(W_sn, module.weight.detach().numpy(), rtol=0, atol=1e-10)
        np.testing.assert_array_equal(u_eval, u)
        np.testing.assert_allclose(buffers(module)[0], u, rtol=0, atol=1e-10)
    dW_sn, grad = backprop(module, seed + 1)
    np.testing.assert_allclose(spectral_norm_backward(dW_sn, W, u, v, dim=dim), grad,
                               rtol=1e-8, atol=1e-12)


def test_stateful_class_follows_torch_module():
    module = make_module("Conv2d", 3, 4, 2, 5)
    W = module.parametrizations.weight.original.detach().numpy().copy()
    sn = SpectralNorm(*buffers(module), n_power_iterations=2)
    for mode in (True, True, True, False, False):
        module.train(mode)
        sn.train(mode)
        np.testing.assert_allclose(sn(W), module.weight.detach().numpy(), rtol=0, atol=1e-10)
    dW_sn, grad = backprop(module, 6)
    np.testing.assert_allclose(sn.backward(dW_sn), grad, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kind, n_iter", [("Linear", 1), ("Conv2d", 3), ("ConvTranspose2d", 2)])
def test_init_reproduces_torch_registration(kind, n_iter, training):
    module = MODULES[kind](3, 4).double().train(training)
    W = module.weight.detach().numpy().copy()
    dim = 1 if kind == "ConvTranspose2d" else 0
    h, w = weight_to_matrix(W, dim).shape
    torch.manual_seed(11)  # torch draws u ~ N(0, 1) first, then v
    u0 = torch.empty(h, dtype=torch.float64).normal_(0, 1).numpy()
    v0 = torch.empty(w, dtype=torch.float64).normal_(0, 1).numpy()
    torch.manual_seed(11)
    torch_spectral_norm(module, n_power_iterations=n_iter)
    u, v = spectral_norm_init(W, u0, v0, dim=dim, n_power_iterations=n_iter, training=training)
    torch_u, torch_v = buffers(module)
    np.testing.assert_allclose(u, torch_u, rtol=0, atol=1e-10)
    np.testing.assert_allclose(v, torch_v, rtol=0, atol=1e-10)
    layer = SpectralNorm.from_weight(W, u0, v0, n_power_iterations=n_iter, dim=dim,
                                     training=training)
    np.testing.assert_allclose(layer(W), module.weight.detach().numpy(), rtol=0, atol=1e-10)


def test_init_from_a_numpy_generator_gives_unit_vectors_of_the_right_sizes():
    W = np.random.default_rng(0).normal(size=(4, 3, 2))
    u, v = spectral_norm_init(W, np.random.default_rng(1))
    assert u.shape == (4,) and v.shape == (6,)
    np.testing.assert_allclose([np.linalg.norm(u), np.linalg.norm(v)], [1.0, 1.0], rtol=1e-12)


def test_one_dimensional_weight_is_normalized_like_torch():
    module = torch_spectral_norm(nn.Linear(3, 5).double(), name="bias")
    b = module.parametrizations.bias.original.detach().numpy().copy()
    b_sn, u, v, sigma = spectral_norm(b, None, None)
    np.testing.assert_allclose(b_sn, module.bias.detach().numpy(), rtol=0, atol=1e-10)
    assert u is None and v is None and sigma == pytest.approx(np.linalg.norm(b))
    original = module.parametrizations.bias.original
    db = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    module.bias.backward(db)
    np.testing.assert_allclose(spectral_norm_backward(db.numpy(), b, None, None),
                               original.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_many_iterations_give_the_largest_singular_value():
    W = np.random.default_rng(2).normal(size=(5, 3, 2))
    u, v = spectral_norm_init(W, np.random.default_rng(3))
    _, _, _, sigma = spectral_norm(W, u, v, n_power_iterations=200)
    np.testing.assert_allclose(sigma, np.linalg.svd(W.reshape(5, 6), compute_uv=False)[0],
                               rtol=1e-10)


@pytest.mark.parametrize("shape, dim", [((4, 3), 0), ((2, 3, 2), 1), ((5,), 0)])
def test_backward_matches_finite_differences_with_u_v_fixed(shape, dim):
    rng = np.random.default_rng(4)
    W, dW_sn = rng.normal(size=shape), rng.normal(size=shape)
    if len(shape) == 1:
        u = v = None
    else:
        u, v = spectral_norm_init(W, rng, dim=dim)

    def forward(a):  # eval: u and v stay fixed, which is what the backward assumes
        return spectral_norm(a, u, v, training=False, dim=dim)[0]

    dW = spectral_norm_backward(dW_sn, W, u, v, dim=dim)
    assert rel_error(dW, numerical_gradient(forward, W, dW_sn)) < 1e-6


# ---------------------------------------------------------------------------- errors


def test_bad_arguments_are_rejected_with_torch_like_messages():
    W, u, v = np.ones((4, 3)), np.ones(4) / 2, np.ones(3) / np.sqrt(3)
    with pytest.raises(ValueError, match="Expected n_power_iterations to be positive, but got n_power_iterations=0"):
        spectral_norm(W, u, v, n_power_iterations=0)
    with pytest.raises(IndexError, match="dim"):  # AxisError is an IndexError (as torch's)
        spectral_norm(W, u, v, dim=2)
    with pytest.raises(ValueError, match=r"u must have shape \(4,\), got \(3,\)"):
        spectral_norm(W, v, v)
    with pytest.raises(ValueError, match=r"v must have shape \(3,\), got \(3, 1\)"):
        spectral_norm(W, u, v[:, None])
    with pytest.raises(TypeError, match="W must be a floating-point array"):
        spectral_norm(np.ones((4, 3), dtype=int), u, v)
    with pytest.raises(ValueError, match="NaN or infinite"):
        spectral_norm(np.full((4, 3), np.nan), u, v)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        spectral_norm(np.float64(1.0), None, None)
    with pytest.raises(ValueError, match=r"dW_sn must have shape \(4, 3\), got \(3, 4\)"):
        spectral_norm_backward(np.ones((3, 4)), W, u, v)


def test_init_and_class_misuse_is_rejected():
    W = np.ones((4, 3))
    with pytest.raises(ValueError, match="v0 is required"):
        spectral_norm_init(W, np.ones(4))
    with pytest.raises(ValueError, match="either a Generator or both u0 and v0"):
        spectral_norm_init(W, np.random.default_rng(0), np.ones(3))
    with pytest.raises(RuntimeError, match="before backward"):
        SpectralNorm(np.ones(4), np.ones(3)).backward(np.ones((4, 3)))
