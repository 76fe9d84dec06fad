"""Layer, instance and group norm (normlab.groupwise) against torch 2.13 in float64.

Ground truth: torch.nn.functional.layer_norm / group_norm / instance_norm / batch_norm and
the nn modules, with torch autograd for the gradients; finite differences for every backward.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from tolerances import assert_close, normalization_tolerances

from normlab import numerical_gradient, rel_error
from normlab.groupwise import (
    groupnorm_backward,
    groupnorm_forward,
    instancenorm_backward,
    instancenorm_forward,
    layernorm_backward,
    layernorm_forward,
    norm_over_axes_backward,
    norm_over_axes_forward,
)

HYP = settings()  # the loaded profile (conftest.py): ci by default
AFFINE = st.sampled_from(["both", "gamma", "beta", "none"])
spatial_shapes = st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple)


def data(shape, seed, scale=1.0, offset=0.0):
    """Gaussian test data with a chosen scale and offset (independent of the code under test)."""
    rng = np.random.default_rng(seed)
    return offset + scale * rng.standard_normal(shape)


def affine_params(kind, shape, seed):
    """(gamma, beta) of ``shape`` with either of them None according to ``kind``."""
    rng = np.random.default_rng(seed + 1)
    gamma = rng.standard_normal(shape) if kind in ("both", "gamma") else None
    beta = rng.standard_normal(shape) if kind in ("both", "beta") else None
    return gamma, beta


def leaf(a):
    """float64 torch leaf that records gradients, or None."""
    return None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True)


def torch_reference(fn, x, gamma, beta, dout):
    """Run ``fn(x_t, gamma_t, beta_t)`` in torch; return output and autograd gradients."""
    xt, gt, bt = leaf(x), leaf(gamma), leaf(beta)
    out = fn(xt, gt, bt)
    out.backward(torch.tensor(dout))
    grads = [None if t is None else t.grad.numpy() for t in (xt, gt, bt)]
    return out.detach().numpy(), grads


def tolerances(x, dout, gamma, beta, *, axes, param_axes, eps=1e-5, groups=None):
    """Rounding-error bounds (tolerances.normalization_tolerances) for x of layout N, C, *.

    With ``groups``, x is viewed as (N, G, C/G, *spatial), normalized over axes 2.. and the
    per-channel parameters live on axes (1, 2); the bounds come back in x's own layout.
    """
    if groups is None:
        return normalization_tolerances(x, dout, axes=axes, eps=eps, gamma=gamma, beta=beta,
                                        param_axes=param_axes)
    n, c = x.shape[:2]
    grouped = (n, groups, c // groups) + x.shape[2:]
    pshape = (groups, c // groups)
    tol = normalization_tolerances(
        x.reshape(grouped), dout.reshape(grouped), axes=tuple(range(2, len(grouped))), eps=eps,
        gamma=None if gamma is None else gamma.reshape(pshape),
        beta=None if beta is None else beta.reshape(pshape), param_axes=(1, 2),
    )
    return {k: v.reshape(x.shape if k in ("out", "dx") else (c,)) for k, v in tol.items()}


def assert_matches(ours_out, ours_grads, ref_out, ref_grads, tol):
    """Forward and each gradient within the rounding-error bounds ``tol`` (None where torch
    has none)."""
    assert_close(ours_out, ref_out, tol["out"], name="out")
    for name, ours, ref in zip(("dx", "dgamma", "dbeta"), ours_grads, ref_grads):
        if ref is None:
            assert ours is None
        else:
            assert_close(ours, ref, tol[name], name=name)


# ------------------------------------------------------------------ agreement with torch


@HYP
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
    normalized=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
    kind=AFFINE,
    seed=st.integers(0, 2**31),
    scale=st.sampled_from([1e-2, 1.0, 30.0]),
)
# Issue 11: layer norm over ONE element at scale 30. x_hat is exactly 0 in normlab, so its
# dgamma is exactly 0; torch's rounds to ~1e-12 (7.5e-12 here), beyond the old atol=1e-12.
@example(lead=(3, 2), normalized=(1,), kind="both", seed=364728260, scale=30.0)
@example(lead=(), normalized=(1, 1), kind="gamma", seed=0, scale=30.0)
def test_layernorm_matches_torch(lead, normalized, kind, seed, scale):
    x = data(lead + normalized, seed, scale, offset=scale)
    gamma, beta = affine_params(kind, normalized, seed)
    dout = data(x.shape, seed + 2)
    out, cache = layernorm_forward(x, gamma, beta, normalized_shape=normalized)
    grads = layernorm_backward(dout, cache)
    ref = torch_reference(lambda a, g, b: F.layer_norm(a, normalized, g, b, 1e-5), x, gamma, beta, dout)
    trailing = tuple(range(len(lead), x.ndim))
    tol = tolerances(x, dout, gamma, beta, axes=trailing, param_axes=trailing)
    assert_matches(out, grads, *ref, tol)


@HYP
@given(
    n=st.integers(1, 3),
    groups=st.integers(1, 3),
    per_group=st.integers(1, 3),
    spatial=spatial_shapes,
    kind=AFFINE,
    seed=st.integers(0, 2**31),
    eps=st.sampled_from([1e-5, 1e-3]),
)
def test_groupnorm_matches_torch(n, groups, per_group, spatial, kind, seed, eps):
    assume(n * per_group * int(np.prod(spatial)) > 1)  # torch refuses that case (tested below)
    c = groups * per_group
    x = data((n, c) + spatial, seed, scale=2.0, offset=-1.0)
    gamma, beta = affine_params(kind, (c,), seed)
    dout = data(x.shape, seed + 2)
    out, cache = groupnorm_forward(x, gamma, beta, groups, eps)
    grads = groupnorm_backward(dout, cache)
    view = (c,) + (1,) * len(spatial)

    def group_norm(a, g, b):
        if g is None and b is not None:
            # torch 2.13 CPU: F.group_norm(weight=None, bias=b) has a correct forward but its
            # backward raises "tensor does not have a device"; add the shift outside instead.
            return F.group_norm(a, groups, None, None, eps) + b.reshape(view)
        return F.group_norm(a, groups, g, b, eps)

    ref = torch_reference(group_norm, x, gamma, beta, dout)
    tol = tolerances(x, dout, gamma, beta, axes=None, param_axes=None, eps=eps, groups=groups)
    assert_matches(out, grads, *ref, tol)
    with torch.no_grad():  # the forward with bias only, straight from torch
        direct = F.group_norm(torch.tensor(x), groups, leaf(gamma), leaf(beta), eps)
    assert_close(out, direct.numpy(), tol["out"], name="out (bias only)")


@HYP
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 4),
    spatial=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple).filter(
        lambda s: np.prod(s) > 1
    ),
    kind=AFFINE,
    seed=st.integers(0, 2**31),
)
def test_instancenorm_matches_torch(n, c, spatial, kind, seed):
    x = data((n, c) + spatial, seed, scale=0.5, offset=3.0)
    gamma, beta = affine_params(kind, (c,), seed)
    dout = data(x.shape, seed + 2)
    out, cache = instancenorm_forward(x, gamma, beta)
    grads = instancenorm_backward(dout, cache)
    ref = torch_reference(
        lambda a, g, b: F.instance_norm(a, weight=g, bias=b, eps=1e-5), x, gamma, beta, dout
    )
    tol = tolerances(x, dout, gamma, beta, axes=tuple(range(2, x.ndim)), param_axes=(1,))
    assert_matches(out, grads, *ref, tol)


@pytest.mark.parametrize(
    "module, ours",
    [
        (torch.nn.LayerNorm((4, 5), bias=False), lambda x, g, b: layernorm_forward(x, g, None)),
        (torch.nn.GroupNorm(2, 6), lambda x, g, b: groupnorm_forward(x, g, b, 2)),
        (torch.nn.InstanceNorm2d(6, affine=True), instancenorm_forward),
    ],
    ids=["LayerNorm-no-bias", "GroupNorm", "InstanceNorm2d-affine"],
)
def test_matches_torch_nn_modules(module, ours):
    module = module.double()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    x = data((3, 6, 4, 5), 7)
    dout = data(x.shape, 8)
    xt = leaf(x)
    ref = module(xt)
    ref.backward(torch.tensor(dout))
    weight = module.weight.detach().numpy()
    bias = None if module.bias is None else module.bias.detach().numpy()
    out, cache = ours(x, weight, bias)
    backward = {
        torch.nn.LayerNorm: layernorm_backward,
        torch.nn.GroupNorm: groupnorm_backward,
        torch.nn.InstanceNorm2d: instancenorm_backward,
    }[type(module)]
    dx, dgamma, dbeta = backward(dout, cache)
    tol = {
        torch.nn.LayerNorm: lambda: tolerances(x, dout, weight, bias, axes=(2, 3), param_axes=(2, 3)),
        torch.nn.GroupNorm: lambda: tolerances(x, dout, weight, bias, axes=None, param_axes=None,
                                               groups=2),
        torch.nn.InstanceNorm2d: lambda: tolerances(x, dout, weight, bias, axes=(2, 3),
                                                    param_axes=(1,)),
    }[type(module)]()
    grads = (dx, dgamma, dbeta)
    ref_grads = [xt.grad.numpy(), module.weight.grad.numpy(),
                 None if module.bias is None else module.bias.grad.numpy()]
    assert_matches(out, grads, ref.detach().numpy(), ref_grads, tol)


def test_batchnorm_axes_of_the_generic_operation_match_torch_batch_norm():
    x = data((5, 3, 4, 2), 11, scale=3.0, offset=1.0)
    gamma, beta = affine_params("both", (3,), 11)
    dout = data(x.shape, 12)
    out, cache = norm_over_axes_forward(x, gamma, beta, axes=(0, 2, 3), param_axes=(1,))
    grads = norm_over_axes_backward(dout, cache)
    ref = torch_reference(
        lambda a, g, b: F.batch_norm(a, None, None, g, b, training=True, eps=1e-5),
        x, gamma, beta, dout,
    )
    assert_matches(out, grads, *ref, tolerances(x, dout, gamma, beta, axes=(0, 2, 3), param_axes=(1,)))


@HYP
@given(
    n=st.integers(1, 3), c=st.integers(1, 4), spatial=spatial_shapes, seed=st.integers(0, 2**31)
)
def test_one_group_is_layer_norm_over_channels_and_space_with_per_channel_affine(
    n, c, spatial, seed
):
    assume(n * c * int(np.prod(spatial)) > 1)
    x = data((n, c) + spatial, seed)
    gamma, beta = affine_params("both", (c,), seed)
    dout = data(x.shape, seed + 2)
    out, cache = groupnorm_forward(x, gamma, beta, num_groups=1)
    grads = groupnorm_backward(dout, cache)
    view = (c,) + (1,) * len(spatial)

    def layer_norm_then_channel_affine(a, g, b):
        return F.layer_norm(a, a.shape[1:], eps=1e-5) * g.reshape(view) + b.reshape(view)

    ref = torch_reference(layer_norm_then_channel_affine, x, gamma, beta, dout)
    assert_matches(out, grads, *ref, tolerances(x, dout, gamma, beta, axes=None, param_axes=None, groups=1))


@HYP
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 4),
    spatial=st.lists(st.integers(2, 4), min_size=1, max_size=2).map(tuple),
    seed=st.integers(0, 2**31),
)
def test_one_channel_per_group_is_instance_norm(n, c, spatial, seed):
    x = data((n, c) + spatial, seed)
    gamma, beta = affine_params("both", (c,), seed)
    dout = data(x.shape, seed + 2)
    out, cache = groupnorm_forward(x, gamma, beta, num_groups=c)
    grads = groupnorm_backward(dout, cache)
    ref = torch_reference(
        lambda a, g, b: F.instance_norm(a, weight=g, bias=b, eps=1e-5), x, gamma, beta, dout
    )
    assert_matches(out, grads, *ref, tolerances(x, dout, gamma, beta, axes=None, param_axes=None, groups=c))


def test_float32_input_stays_float32_and_matches_torch_float32():
    x = data((2, 4, 3, 3), 3).astype(np.float32)
    gamma = np.linspace(0.5, 2.0, 4, dtype=np.float32)
    beta = np.linspace(-1.0, 1.0, 4, dtype=np.float32)
    out, _ = groupnorm_forward(x, gamma, beta, 2)
    ref = F.group_norm(torch.tensor(x), 2, torch.tensor(gamma), torch.tensor(beta))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref.numpy(), rtol=0, atol=1e-5)


def test_empty_batch_gives_empty_output_and_zero_gradients_like_torch():
    x = np.zeros((0, 4, 3))
    gamma, beta = np.ones(4), np.zeros(4)
    out, cache = groupnorm_forward(x, gamma, beta, 2)
    assert out.shape == tuple(F.group_norm(torch.zeros(0, 4, 3), 2).shape)
    dx, dgamma, dbeta = groupnorm_backward(np.zeros((0, 4, 3)), cache)
    assert dx.shape == (0, 4, 3)
    np.testing.assert_array_equal(dgamma, np.zeros(4))
    np.testing.assert_array_equal(dbeta, np.zeros(4))


# ------------------------------------------------------------------ finite differences


def _check_backward_by_finite_differences(forward, backward, x, gamma, beta, seed):
    """Every gradient of ``backward`` against centered differences of ``forward``."""
    dout = data(x.shape, seed)
    _, cache = forward(x, gamma, beta)
    dx, dgamma, dbeta = backward(dout, cache)
    num_dx = numerical_gradient(lambda a: forward(a, gamma, beta)[0], x, dout)
    num_dgamma = numerical_gradient(lambda g: forward(x, g, beta)[0], gamma, dout)
    num_dbeta = numerical_gradient(lambda b: forward(x, gamma, b)[0], beta, dout)
    assert rel_error(dx, num_dx) < 1e-6
    assert rel_error(dgamma, num_dgamma) < 1e-6
    assert rel_error(dbeta, num_dbeta) < 1e-6


@pytest.mark.parametrize(
    "forward, backward, x_shape, param_shape",
    [
        (layernorm_forward, layernorm_backward, (3, 2, 4), (2, 4)),
        (lambda x, g, b: groupnorm_forward(x, g, b, 2), groupnorm_backward, (2, 4, 3), (4,)),
        (instancenorm_forward, instancenorm_backward, (2, 3, 2, 3), (3,)),
        (
            lambda x, g, b: norm_over_axes_forward(x, g, b, axes=(0, 2), param_axes=(1,)),
            norm_over_axes_backward,
            (4, 3, 2),
            (3,),
        ),
    ],
    ids=["layer", "group", "instance", "generic-batch-axes"],
)
def test_backward_matches_finite_differences(forward, backward, x_shape, param_shape):
    x = data(x_shape, 21, scale=1.5, offset=0.5)
    gamma = data(param_shape, 22)
    beta = data(param_shape, 23)
    _check_backward_by_finite_differences(forward, backward, x, gamma, beta, 24)


# ---------------------------------------------------------------------------- errors


def test_group_norm_rejects_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match=r"num_channels \(4\) must be divisible by num_groups \(3\)"):
        groupnorm_forward(np.zeros((2, 4, 5)), None, None, 3)


def test_group_norm_mirrors_torch_single_value_check():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.group_norm(torch.zeros(1, 2, 1), 2)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        groupnorm_forward(np.zeros((1, 2, 1)), None, None, 2)
    # one value per group is accepted by torch when N > 1; both give zeros
    out, _ = groupnorm_forward(np.array([[1.0], [2.0]]), None, None, 1)
    np.testing.assert_array_equal(out, F.group_norm(torch.tensor([[1.0], [2.0]]), 1).numpy())


@pytest.mark.parametrize("groups, exc", [(0, ValueError), (-2, ValueError), (True, TypeError), (2.0, TypeError)])
def test_group_norm_rejects_bad_num_groups(groups, exc):
    with pytest.raises(exc, match="num_groups"):
        groupnorm_forward(np.zeros((2, 4, 5)), None, None, groups)


def test_group_norm_names_the_per_channel_parameter_shape():
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\), got \(2,\)"):
        groupnorm_forward(np.zeros((2, 4, 5)), np.ones(2), np.zeros(4), 2)
    with pytest.raises(ValueError, match=r"beta must have shape \(4,\), got \(1, 4\)"):
        groupnorm_forward(np.zeros((2, 4, 5)), np.ones(4), np.zeros((1, 4)), 2)


def test_instance_norm_rejects_a_single_spatial_element():
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training, got input size"):
        instancenorm_forward(np.zeros((2, 3, 1, 1)))
    with pytest.raises(ValueError, match="Expected more than 1 spatial element"):
        instancenorm_forward(np.zeros((2, 3)))


def test_instance_norm_names_the_per_channel_parameter_shape():
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\), got \(3, 1, 1\)"):
        instancenorm_forward(np.zeros((2, 3, 4, 4)), np.ones((3, 1, 1)))


def test_layer_norm_rejects_input_not_ending_with_normalized_shape():
    with pytest.raises(ValueError, match=r"normalized_shape=\(4,\), expected input with shape \(\*, 4\)"):
        layernorm_forward(np.zeros((2, 3)), np.ones(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"expected input with shape \(\*, 2, 3\)"):
        layernorm_forward(np.zeros(3), np.ones((2, 3)), None)


def test_layer_norm_parameter_shapes_must_agree():
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\), got \(4,\)"):
        layernorm_forward(np.zeros((2, 3)), np.ones(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"gamma must have shape \(2, 3\), got \(3,\)"):
        layernorm_forward(np.zeros((2, 3)), np.ones(3), None, normalized_shape=(2, 3))


def test_layer_norm_needs_a_shape_without_parameters():
    with pytest.raises(ValueError, match="normalized_shape is required"):
        layernorm_forward(np.zeros((2, 3)), None, None)
    with pytest.raises(ValueError, match="at least one dimension"):
        layernorm_forward(np.zeros((2, 3)), None, None, normalized_shape=())


@pytest.mark.parametrize(
    "call",
    [
        lambda x: layernorm_forward(x, np.ones(3), np.zeros(3)),
        lambda x: groupnorm_forward(x, None, None, 1),
        lambda x: instancenorm_forward(x),
        lambda x: norm_over_axes_forward(x, None, None, (1,), ()),
    ],
    ids=["layer", "group", "instance", "generic"],
)
def test_integer_and_non_finite_inputs_are_rejected(call):
    with pytest.raises(TypeError, match="floating-point"):
        call(np.ones((2, 3, 3), dtype=np.int64))
    bad = np.ones((2, 3, 3))
    bad[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(bad)
    bad[1, 2, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(bad)


def test_integer_parameters_are_rejected():
    with pytest.raises(TypeError, match="gamma must be a floating-point array"):
        groupnorm_forward(np.zeros((2, 4, 3)), np.ones(4, dtype=int), None, 2)


def test_too_few_dimensions_are_rejected():
    with pytest.raises(ValueError, match=r"\(N, C, \*spatial\) with at least 2 dimensions \(got 1D"):
        groupnorm_forward(np.zeros(4), None, None, 2)
    with pytest.raises(ValueError, match=r"at least 2 dimensions \(got 1D"):
        instancenorm_forward(np.zeros(4))


def test_generic_operation_rejects_bad_axes():
    with pytest.raises(np.exceptions.AxisError, match="axes"):
        norm_over_axes_forward(np.zeros((2, 3)), None, None, (2,), ())
    with pytest.raises(ValueError, match="repeated axis"):
        norm_over_axes_forward(np.zeros((2, 3)), None, None, (1, -1), ())


def test_negative_eps_is_rejected():
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        layernorm_forward(np.zeros((2, 3)), np.ones(3), None, eps=-1e-5)


def test_backward_rejects_dout_of_the_wrong_shape():
    _, cache = groupnorm_forward(data((2, 4, 3), 0), None, None, 2)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 3\), got \(2, 4\)"):
        groupnorm_backward(np.zeros((2, 4)), cache)
    _, cache = layernorm_forward(data((2, 4), 0), np.ones(4), None)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4\), got \(4, 2\)"):
        layernorm_backward(np.zeros((4, 2)), cache)
