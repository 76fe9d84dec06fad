"""Weight normalization (normlab.weightnorm) against torch.nn.utils.parametrizations.weight_norm."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import assert_close, normalization_tolerances
from torch.nn.utils.parametrizations import weight_norm

from normlab import numerical_gradient, rel_error
from normlab.weightnorm import weightnorm_backward, weightnorm_forward

HYP = settings()


def weightnorm_tolerances(v, g, dw, dim):
    """Rounding-error bounds for ``w = g v / ||v||``: tolerances.normalization_tolerances
    without centering (``||v|| = sqrt(n) rms(v)``, so the scale is ``g / sqrt(n)``)."""
    axes = tuple(range(v.ndim)) if dim is None or dim == -1 else tuple(
        a for a in range(v.ndim) if a != dim % v.ndim)
    kept = tuple(a for a in range(v.ndim) if a not in axes)
    n = int(np.prod([v.shape[a] for a in axes]))
    g_flat = np.reshape(g, [v.shape[a] for a in kept])
    tol = normalization_tolerances(v, dw, axes=axes, eps=0.0, gamma=g_flat / np.sqrt(n),
                                   param_axes=kept, center=False)
    return tol["out"], tol["dx"], tol["dgamma"] / np.sqrt(n)


def assert_matches_torch(v, g, dim, ours, dv, dg, w, dw, dv_ref, dg_ref):
    tol_w, tol_dv, tol_dg = weightnorm_tolerances(v, g, dw, dim)
    assert_close(ours, w, tol_w, name="w")
    assert_close(dv, dv_ref, tol_dv, name="dv")
    assert_close(dg.reshape(tol_dg.shape), np.reshape(dg_ref, tol_dg.shape), tol_dg, name="dg")

MODULES = {
    "Linear": lambda a, b: nn.Linear(a, b),
    "Conv1d": lambda a, b: nn.Conv1d(a, b, 3),
    "Conv2d": lambda a, b: nn.Conv2d(a, b, (2, 3)),
    "ConvTranspose2d": lambda a, b: nn.ConvTranspose2d(a, b, 2),
}


def torch_weight_norm(kind, fan_in, fan_out, dim, seed):
    """A float64 torch module with weight norm, g and v set to random values; returns
    (g, v, w, dw, g.grad, v.grad) as numpy arrays after backpropagating a random dw."""
    gen = torch.Generator().manual_seed(seed)
    module = weight_norm(MODULES[kind](fan_in, fan_out).double(), dim=dim)
    param = module.parametrizations.weight
    with torch.no_grad():
        param.original0.copy_(torch.randn(param.original0.shape, generator=gen, dtype=torch.float64))
        param.original1.copy_(torch.randn(param.original1.shape, generator=gen, dtype=torch.float64))
    w = module.weight
    dw = torch.randn(w.shape, generator=gen, dtype=torch.float64)
    w.backward(dw)
    return [t.detach().numpy() for t in (param.original0, param.original1, w, dw,
                                         param.original0.grad, param.original1.grad)]


@HYP
@given(
    kind=st.sampled_from(sorted(MODULES)),
    fan_in=st.integers(1, 4),
    fan_out=st.integers(1, 4),
    dim=st.sampled_from([0, 1, -1, -2, None]),
    seed=st.integers(0, 2**31),
)
def test_matches_torch_parametrization_forward_and_gradients(kind, fan_in, fan_out, dim, seed):
    g, v, w, dw, dg_ref, dv_ref = torch_weight_norm(kind, fan_in, fan_out, dim, seed)
    ours, cache = weightnorm_forward(v, g, dim)
    dv, dg = weightnorm_backward(dw, cache)
    assert dg.shape == g.shape
    assert_matches_torch(v, g, dim, ours, dv, dg, w, dw, dv_ref, dg_ref)


def test_flat_g_is_accepted_and_its_gradient_keeps_the_flat_shape():
    g, v, w, dw, dg_ref, dv_ref = torch_weight_norm("Conv2d", 3, 4, 0, 1)
    assert g.shape == (4, 1, 1, 1)  # torch's original0 keeps the reduced axes
    ours, cache = weightnorm_forward(v, g.reshape(4), 0)
    dv, dg = weightnorm_backward(dw, cache)
    assert dg.shape == (4,)
    assert_matches_torch(v, g, 0, ours, dv, dg, w, dw, dv_ref, dg_ref)


def test_dim_minus_one_means_the_whole_tensor_as_in_torch():
    g, v, w, *_ = torch_weight_norm("Linear", 3, 4, -1, 2)
    assert g.shape == ()
    np.testing.assert_allclose(np.linalg.norm(w), abs(g), rtol=1e-12)
    ours, _ = weightnorm_forward(v, g, -1)
    np.testing.assert_allclose(ours, w, rtol=0, atol=1e-10)


def test_each_row_of_w_has_norm_abs_g():
    rng = np.random.default_rng(3)
    v, g = rng.normal(size=(5, 7)), rng.normal(size=(5, 1))
    w, _ = weightnorm_forward(v, g)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), np.abs(g[:, 0]), rtol=1e-12)


@pytest.mark.parametrize("v_shape, g_shape, dim", [((4, 3), (4, 1), 0), ((2, 3, 2), (3,), 1),
                                                   ((3, 2), (), None)])
def test_backward_matches_finite_differences(v_shape, g_shape, dim):
    rng = np.random.default_rng(4)
    v, g, dw = rng.normal(size=v_shape), rng.normal(size=g_shape), rng.normal(size=v_shape)
    _, cache = weightnorm_forward(v, g, dim)
    dv, dg = weightnorm_backward(dw, cache)
    num_dv = numerical_gradient(lambda a: weightnorm_forward(a, g, dim)[0], v, dw)
    num_dg = numerical_gradient(lambda b: weightnorm_forward(v, b, dim)[0], g, dw)
    assert rel_error(dv, num_dv) < 1e-6
    assert rel_error(dg, num_dg) < 1e-6


def test_g_of_the_wrong_shape_names_the_accepted_shapes():
    with pytest.raises(ValueError, match=r"g must have shape \(4, 1\) or \(4,\), got \(1, 4\)"):
        weightnorm_forward(np.ones((4, 3)), np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"g must have shape \(\), got \(1,\)"):
        weightnorm_forward(np.ones((4, 3)), np.ones(1), dim=None)


def test_bad_inputs_are_rejected():
    with pytest.raises(TypeError, match="v must be a floating-point array"):
        weightnorm_forward(np.ones((4, 3), dtype=int), np.ones((4, 1)))
    with pytest.raises(TypeError, match="g must be a floating-point array"):
        weightnorm_forward(np.ones((4, 3)), np.ones((4, 1), dtype=int))
    with pytest.raises(ValueError, match="NaN or infinite"):
        weightnorm_forward(np.full((4, 3), np.inf), np.ones((4, 1)))
    with pytest.raises(ValueError, match="zero-norm slice"):
        weightnorm_forward(np.zeros((4, 3)), np.ones((4, 1)))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        weightnorm_forward(np.float64(2.0), np.float64(1.0))
    with pytest.raises(np.exceptions.AxisError, match="dim"):
        weightnorm_forward(np.ones((4, 3)), np.ones((4, 1)), dim=2)
    with pytest.raises(TypeError, match="dim must be an int or None"):
        weightnorm_forward(np.ones((4, 3)), np.ones((4, 1)), dim=0.0)
    _, cache = weightnorm_forward(np.ones((4, 3)), np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"dw must have shape \(4, 3\), got \(3, 4\)"):
        weightnorm_backward(np.ones((3, 4)), cache)
