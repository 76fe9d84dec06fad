"""torch modules (normlab.torch_modules): batch renorm and Santurkar et al.'s noisy batch norm.

Ground truth: nn.BatchNorm1d / 2d (batch renorm with r_max = 1, d_max = 0, and the batch norm
inside the noisy one) and the numpy reference normlab.renorm (itself checked against an
independent torch-autograd implementation in test_renorm.py) for general r_max, d_max.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn

from normlab.renorm import batchrenorm_backward, batchrenorm_forward, renorm_schedule
from normlab.torch_modules import BatchRenorm1d, BatchRenorm2d, NoisyBatchNorm1d, NoisyBatchNorm2d


def batches(shape, count, seed):
    gen = torch.Generator().manual_seed(seed)
    return [3 * torch.randn(shape, generator=gen, dtype=torch.float64) + 1 for _ in range(count)]


def randomize_affine(*modules, seed=0):
    """Give every module the same random weight and bias."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(modules[0].num_features, generator=gen, dtype=torch.float64)
    bias = torch.randn(modules[0].num_features, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        for m in modules:
            m.weight.copy_(weight)
            m.bias.copy_(bias)


def step(module, x, dout):
    """One forward/backward; returns (out, dx, dweight, dbias) as numpy."""
    module.zero_grad()
    x = x.clone().requires_grad_(True)
    out = module(x)
    out.backward(dout)
    return [t.detach().numpy().copy() for t in (out, x.grad, module.weight.grad, module.bias.grad)]


@pytest.mark.parametrize(
    "renorm_cls, bn_cls, shape, momentum",
    [
        (BatchRenorm1d, nn.BatchNorm1d, (6, 3), 0.1),
        (BatchRenorm1d, nn.BatchNorm1d, (4, 3, 5), None),
        (BatchRenorm2d, nn.BatchNorm2d, (3, 3, 4, 2), 0.3),
    ],
)
def test_r_max_1_d_max_0_is_torch_batch_norm_including_running_stats(
    renorm_cls, bn_cls, shape, momentum
):
    renorm = renorm_cls(3, momentum=momentum, r_max=1.0, d_max=0.0).double()
    bn = bn_cls(3, momentum=momentum).double()
    randomize_affine(renorm, bn)
    douts = batches(shape, 4, seed=1)
    for x, dout in zip(batches(shape, 4, seed=2), douts):
        for ours, ref in zip(step(renorm, x, dout), step(bn, x, dout)):
            np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-10)
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(renorm, name), getattr(bn, name), rtol=1e-12)
        assert renorm.num_batches_tracked.item() == bn.num_batches_tracked.item()
    renorm.eval()
    bn.eval()
    for ours, ref in zip(step(renorm, x + 1, dout), step(bn, x + 1, dout)):
        np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-10)


def test_general_limits_match_the_numpy_reference_over_a_schedule():
    layer = BatchRenorm2d(2, momentum=0.2).double()
    randomize_affine(layer, seed=3)
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    running_mean, running_var = np.zeros(2), np.ones(2)
    douts = batches((4, 2, 3, 3), 3, seed=4)
    for step_no, x, dout in zip([0, 20000, 50000], batches((4, 2, 3, 3), 3, seed=5), douts):
        layer.r_max, layer.d_max = renorm_schedule(step_no)
        out, cache = batchrenorm_forward(x.numpy(), weight, bias, running_mean, running_var,
                                         layer.r_max, layer.d_max, momentum=0.2)
        dx, dweight, dbias = batchrenorm_backward(dout.numpy(), cache)
        running_mean, running_var = cache.running_mean, cache.running_var
        for ours, ref in zip(step(layer, x, dout), (out, dx, dweight, dbias)):
            np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(layer.running_mean.numpy(), running_mean, rtol=1e-12)
        np.testing.assert_allclose(layer.running_var.numpy(), running_var, rtol=1e-12)


def test_batch_renorm_without_affine_and_empty_batch():
    layer = BatchRenorm1d(3, affine=False).double()
    assert layer.weight is None and layer.bias is None
    out = layer(torch.zeros(0, 3, dtype=torch.float64))
    assert out.shape == (0, 3)
    np.testing.assert_array_equal(layer.running_mean.numpy(), np.zeros(3))


def test_batch_renorm_rejects_bad_input():
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        BatchRenorm1d(3)(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        BatchRenorm2d(3)(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        BatchRenorm1d(3)(torch.zeros(1, 3))
    layer = BatchRenorm1d(3)
    layer.r_max = 0.5
    with pytest.raises(ValueError, match="r_max must be a finite number >= 1"):
        layer(torch.randn(4, 3))
    layer.r_max, layer.d_max = 2.0, -1.0
    with pytest.raises(ValueError, match="d_max must be a finite number >= 0"):
        layer(torch.randn(4, 3))


# --------------------------------------------------------------------------- noisy BN


@pytest.mark.parametrize("noisy_cls, bn_cls, shape", [(NoisyBatchNorm1d, nn.BatchNorm1d, (8, 3)),
                                                      (NoisyBatchNorm2d, nn.BatchNorm2d, (4, 3, 5, 5))])
def test_noisy_batch_norm_is_batch_norm_plus_fresh_noise_in_training(noisy_cls, bn_cls, shape):
    noisy = noisy_cls(3, seed=0).double()
    bn = bn_cls(3).double()
    randomize_affine(noisy, bn)
    x, = batches(shape, 1, seed=6)
    dout, = batches(shape, 1, seed=7)
    previous = None
    for _ in range(3):
        noisy_out, *noisy_grads = step(noisy, x, dout)
        bn_out, *bn_grads = step(bn, x, dout)
        noise = noisy.last_noise.numpy()
        assert np.all(noise != 0)
        np.testing.assert_allclose(noisy_out, bn_out + noise, rtol=1e-12, atol=1e-12)
        for ours, ref in zip(noisy_grads, bn_grads):  # the noise is a constant
            np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
        if previous is not None:
            assert not np.allclose(noisy_out, previous)  # a different noise every step
        previous = noisy_out
    np.testing.assert_allclose(noisy.running_mean, bn.running_mean, rtol=1e-12)
    np.testing.assert_allclose(noisy.running_var, bn.running_var, rtol=1e-12)
    noisy.eval()
    bn.eval()
    np.testing.assert_allclose(noisy(x).detach().numpy(), bn(x).detach().numpy(), rtol=0, atol=1e-12)


def test_noise_has_a_per_channel_non_zero_mean_and_non_unit_std_within_the_ranges():
    noisy = NoisyBatchNorm1d(4, mean_range=0.5, std_range=(1.5, 2.5), seed=1).double()
    means, stds = [], []
    for _ in range(5):
        noisy(torch.randn(20000, 4, dtype=torch.float64))
        means.append(noisy.last_noise.mean(0).numpy())
        stds.append(noisy.last_noise.std(0).numpy())
    means, stds = np.array(means), np.array(stds)
    assert np.all(np.abs(means) <= 0.5 + 0.05)
    assert np.all((stds > 1.5 - 0.05) & (stds < 2.5 + 0.05))
    assert np.ptp(means, axis=0).min() > 0.01  # the distribution changes between steps


def test_noise_is_reproducible_with_a_seed_or_generator():
    x = torch.randn(6, 3, dtype=torch.float64)
    a = NoisyBatchNorm1d(3, seed=5).double()
    b = NoisyBatchNorm1d(3, generator=torch.Generator().manual_seed(5)).double()
    for _ in range(2):
        np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())


def test_noisy_batch_norm_rejects_bad_settings():
    with pytest.raises(ValueError, match="either generator or seed"):
        NoisyBatchNorm1d(3, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="mean_range must be > 0"):
        NoisyBatchNorm1d(3, mean_range=0.0)
    with pytest.raises(ValueError, match="std_range must be"):
        NoisyBatchNorm2d(3, std_range=(2.0, 1.0))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        NoisyBatchNorm2d(3)(torch.zeros(4, 3))
