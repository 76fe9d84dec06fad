"""fold_batchnorm: a torch Linear/Conv followed by eval-mode BN equals the folded layer."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normlab import BatchNorm, BatchNorm1d, fold_batchnorm

# conftest.py sets this as torch's default dtype for this module's tests only.
TORCH_DEFAULT_DTYPE = torch.float64


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
    w2, b2 = fold_batchnorm(conv.weight, conv.bias, bn)  # torch in, torch out
    assert isinstance(w2, torch.Tensor) and w2.shape == conv.weight.shape
    out = F.conv2d(x, w2, b2, padding=1, groups=groups)
    folded_matches(reference, out.numpy())


def test_matches_torchs_own_fusion_helper():
    rng = np.random.default_rng(3)
    conv = torch.nn.Conv1d(3, 5, 2)
    bn = trained_bn(torch.nn.BatchNorm1d(5), (5, 4), rng)
    ref_w, ref_b = torch.nn.utils.fusion.fuse_conv_bn_weights(
        conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    w2, b2 = fold_batchnorm(conv.weight, conv.bias, bn)
    np.testing.assert_allclose(w2.numpy(), ref_w.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(b2.numpy(), ref_b.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_bn_without_affine_folds_to_pure_standardization():
    rng = np.random.default_rng(4)
    lin = torch.nn.Linear(3, 2)
    bn = trained_bn(torch.nn.BatchNorm1d(2, affine=False), (2,), rng)
    x = torch.tensor(rng.standard_normal((6, 3)))
    reference = bn(lin(x)).detach().numpy()
    w2, b2 = fold_batchnorm(lin.weight, lin.bias, bn)
    folded_matches(reference, (x @ w2.T + b2).numpy())


def test_folded_weight_keeps_float32():
    bn = BatchNorm1d(2).eval()
    w2, b2 = fold_batchnorm(np.ones((2, 3), np.float32), None, bn)
    assert w2.dtype == b2.dtype == np.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bias_kind", ["torch", "numpy", "none"])
def test_torch_weight_gives_torch_results_in_its_dtype(dtype, bias_kind):
    rng = np.random.default_rng(5)
    lin = torch.nn.Linear(3, 4, dtype=dtype)
    bn = trained_bn(torch.nn.BatchNorm1d(4), (4,), rng)
    bias = {"torch": lin.bias, "numpy": lin.bias.detach().double().numpy(), "none": None}
    w2, b2 = fold_batchnorm(lin.weight, bias[bias_kind], bn)
    for t in (w2, b2):
        assert isinstance(t, torch.Tensor) and t.dtype == dtype and not t.requires_grad
    assert w2.shape == (4, 3) and b2.shape == (4,)
    # the float64 result, rounded once to the weight's dtype
    w64, b64 = fold_batchnorm(lin.weight.detach().double(), bias[bias_kind], bn)
    assert torch.equal(w2, w64.to(dtype)) and torch.equal(b2, b64.to(dtype))
    with torch.no_grad():  # ready for copy_ into the layer (same dtype, no grad)
        lin.weight.copy_(w2)


def test_float32_torch_weight_matches_numpy_float32_weight_exactly():
    rng = np.random.default_rng(6)
    conv = torch.nn.Conv2d(2, 3, 3, dtype=torch.float32)
    bn = BatchNorm.from_torch(trained_bn(torch.nn.BatchNorm2d(3), (3, 4, 4), rng))
    w_t, b_t = fold_batchnorm(conv.weight, conv.bias, bn)
    w_n, b_n = fold_batchnorm(conv.weight.detach().numpy(), conv.bias.detach().numpy(), bn)
    assert isinstance(w_n, np.ndarray) and w_n.dtype == b_n.dtype == np.float32
    assert np.array_equal(w_t.numpy(), w_n) and np.array_equal(b_t.numpy(), b_n)


def test_numpy_float64_weight_gives_numpy_float64():
    bn = BatchNorm1d(2).eval()
    w2, b2 = fold_batchnorm(np.ones((2, 3)), torch.zeros(2), bn)
    assert isinstance(w2, np.ndarray) and w2.dtype == b2.dtype == np.float64


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
    with pytest.raises(TypeError, match="weight must be a floating-point tensor"):
        fold_batchnorm(torch.ones((4, 3), dtype=torch.int64), None, BatchNorm1d(4).eval())
