"""fold_batchnorm: a torch Linear/Conv followed by eval-mode BN equals the folded layer."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normlab import BatchNorm, BatchNorm1d, fold_batchnorm

torch.set_default_dtype(torch.float64)


def trained_bn(bn, feature_shape, rng, steps=5):
    """Give a torch BN non-trivial parameters and running statistics, then switch to eval."""
    c = bn.num_features
    with torch.no_grad():
        if bn.weight is not None:
            bn.weight.copy_(torch.tensor(rng.standard_normal(c) * 2))
            bn.bias.copy_(torch.tensor(rng.standard_normal(c)))
    channel = torch.tensor(rng.standard_normal(c) * 3)
    channel = channel.reshape((-1,) + (1,) * (len(feature_shape) - 1))
    for _ in range(steps):
        bn(torch.tensor(rng.standard_normal((8,) + feature_shape)) * 2 + channel)
    return bn.eval()


def folded_matches(reference, folded):
    np.testing.assert_allclose(folded, reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("has_bias", [True, False])
@pytest.mark.parametrize("as_normlab", [True, False])
def test_linear_then_bn_equals_folded_linear(has_bias, as_normlab):
    rng = np.random.default_rng(1)
    lin = torch.nn.Linear(5, 4, bias=has_bias)
    bn = trained_bn(torch.nn.BatchNorm1d(4), (4,), rng)
    x = torch.tensor(rng.standard_normal((7, 5)))
    reference = bn(lin(x)).detach().numpy()
    w = lin.weight.detach().numpy()
    b = lin.bias.detach().numpy() if has_bias else None
    w2, b2 = fold_batchnorm(w, b, BatchNorm.from_torch(bn) if as_normlab else bn)
    assert w2.shape == (4, 5) and b2.shape == (4,)
    folded_matches(reference, x.numpy() @ w2.T + b2)


@pytest.mark.parametrize("groups", [1, 4])
def test_conv2d_then_bn_equals_folded_conv(groups):
    rng = np.random.default_rng(2)
    conv = torch.nn.Conv2d(4, 6 if groups == 1 else 4, 3, padding=1, groups=groups)
    bn = trained_bn(torch.nn.BatchNorm2d(conv.out_channels), (conv.out_channels, 5, 5), rng)
    x = torch.tensor(rng.standard_normal((3, 4, 6, 6)))
    reference = bn(conv(x)).detach().numpy()
    w2, b2 = fold_batchnorm(conv.weight, conv.bias, bn)  # torch tensors are accepted too
    assert w2.shape == tuple(conv.weight.shape)
    out = F.conv2d(x, torch.tensor(w2), torch.tensor(b2), padding=1, groups=groups)
    folded_matches(reference, out.numpy())


def test_matches_torchs_own_fusion_helper():
    rng = np.random.default_rng(3)
    conv = torch.nn.Conv1d(3, 5, 2)
    bn = trained_bn(torch.nn.BatchNorm1d(5), (5, 4), rng)
    ref_w, ref_b = torch.nn.utils.fusion.fuse_conv_bn_weights(
        conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    w2, b2 = fold_batchnorm(conv.weight, conv.bias, bn)
    np.testing.assert_allclose(w2, ref_w.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(b2, ref_b.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_bn_without_affine_folds_to_pure_standardization():
    rng = np.random.default_rng(4)
    lin = torch.nn.Linear(3, 2)
    bn = trained_bn(torch.nn.BatchNorm1d(2, affine=False), (2,), rng)
    x = torch.tensor(rng.standard_normal((6, 3)))
    reference = bn(lin(x)).detach().numpy()
    w2, b2 = fold_batchnorm(lin.weight, lin.bias, bn)
    folded_matches(reference, x.numpy() @ w2.T + b2)


def test_folded_weight_keeps_float32():
    bn = BatchNorm1d(2).eval()
    w2, b2 = fold_batchnorm(np.ones((2, 3), np.float32), None, bn)
    assert w2.dtype == b2.dtype == np.float32


def test_errors():
    w = np.ones((4, 3))
    with pytest.raises(ValueError, match="no running statistics"):
        fold_batchnorm(w, None, BatchNorm1d(4, track_running_stats=False).eval())
    with pytest.raises(ValueError, match="no running statistics"):
        fold_batchnorm(w, None, torch.nn.BatchNorm1d(4, track_running_stats=False).eval())
    with pytest.raises(ValueError, match="weight has 4 output channels.*num_features=5"):
        fold_batchnorm(w, None, BatchNorm1d(5).eval())
    with pytest.raises(ValueError, match="training mode.*bn.eval"):
        fold_batchnorm(w, None, BatchNorm1d(4))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\), got \(3,\)"):
        fold_batchnorm(w, np.zeros(3), BatchNorm1d(4).eval())
    with pytest.raises(ValueError, match="weight must be a Linear"):
        fold_batchnorm(np.ones(4), None, BatchNorm1d(4).eval())
    with pytest.raises(TypeError, match="bn must be a normlab or torch BatchNorm layer"):
        fold_batchnorm(w, None, torch.nn.LayerNorm(4))
    with pytest.raises(TypeError, match="weight must be a floating-point array"):
        fold_batchnorm(np.ones((4, 3), dtype=int), None, BatchNorm1d(4).eval())
