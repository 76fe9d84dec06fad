"""normlab_book.running_stats: running-statistic traces and recalibration."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.optim.swa_utils import update_bn

from normlab_book.running_stats import (
    bn_modules,
    ema_noise_floor,
    running_mean_rms_error,
    recalibrate_bn,
    running_mean_trace,
    set_bn_momentum,
)


def _stream(seed, n_steps, b, f, mean, std):
    rng = np.random.default_rng(seed)
    return [mean + std * rng.standard_normal((b, f)) for _ in range(n_steps)]


def test_trace_matches_torch_and_closed_forms():
    n_steps, b, f = 30, 8, 5
    res = running_mean_trace([0.1, None, 1.0], n_steps=n_steps, batch_size=b, seeds=[3],
                             true_mean=3.0, true_std=2.0, n_features=f)
    assert res["num_batches_tracked"] == n_steps
    xs = _stream(3, n_steps, b, f, 3.0, 2.0)
    # momentum 0.1 against torch.nn.BatchNorm1d in float64
    bn = nn.BatchNorm1d(f, momentum=0.1).double()
    for t, x in enumerate(xs):
        bn(torch.as_tensor(x))
        err = np.sqrt(np.mean((bn.running_mean.numpy() - 3.0) ** 2))
        assert res["mean_error"][0.1][0, t] == pytest.approx(err, abs=1e-12)
        assert res["var_ratio"][0.1][0, t] == pytest.approx(bn.running_var.numpy().mean() / 4, abs=1e-12)
    # None: cumulative average = mean of everything seen (equal batch sizes)
    allx = np.concatenate(xs)
    err = np.sqrt(np.mean((allx.mean(axis=0) - 3.0) ** 2))
    assert res["mean_error"][None][0, -1] == pytest.approx(err, abs=1e-12)
    unbiased = np.mean([x.var(axis=0, ddof=1) for x in xs], axis=0)
    assert res["var_ratio"][None][0, -1] == pytest.approx(unbiased.mean() / 4, abs=1e-12)
    biased = np.mean([x.var(axis=0) for x in xs], axis=0)
    assert res["biased_var_ratio"][0, -1] == pytest.approx(biased.mean() / 4, abs=1e-12)
    # momentum 1: the running mean is the last batch's mean
    err = np.sqrt(np.mean((xs[-1].mean(axis=0) - 3.0) ** 2))
    assert res["mean_error"][1.0][0, -1] == pytest.approx(err, abs=1e-12)


def test_noise_floor_matches_simulation():
    m, b = 0.1, 16
    res = running_mean_trace([m], n_steps=300, batch_size=b, seeds=[0, 1], true_mean=0.0,
                             true_std=1.0, n_features=200)
    # After the transient (0.9**150 ~ 1e-7), the RMS error over 200 features estimates the floor.
    measured = res["mean_error"][m][:, 150:].mean()
    assert measured == pytest.approx(ema_noise_floor(m, 1.0, b), rel=0.1)
    assert ema_noise_floor(1.0, 2.0, 4) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ema_noise_floor(0.0, 1.0, 4)


def test_expected_error_curve_matches_simulation_and_limits():
    m, b, steps = 0.05, 8, 120
    res = running_mean_trace([m, None], n_steps=steps, batch_size=b, seeds=[0, 1],
                             true_mean=3.0, true_std=2.0, n_features=300)
    for mom in (m, None):
        expected = running_mean_rms_error(mom, steps, 3.0, 2.0, b)
        measured = res["mean_error"][mom].mean(axis=0)
        np.testing.assert_allclose(measured, expected, rtol=0.1)
    # step 1: momentum m leaves (1 - m) of the initial bias; momentum 1 has no bias at all
    assert running_mean_rms_error(1.0, 1, 3.0, 0.0, 4)[0] == pytest.approx(0.0)
    assert running_mean_rms_error(0.1, 1, 3.0, 0.0, 4)[0] == pytest.approx(2.7)
    long = running_mean_rms_error(0.1, 2000, 3.0, 2.0, 16)[-1]
    assert long == pytest.approx(ema_noise_floor(0.1, 2.0, 16))
    with pytest.raises(ValueError):
        running_mean_rms_error(1.5, 3, 0.0, 1.0, 4)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(),
                         nn.Linear(6, 3, bias=False), nn.BatchNorm1d(3))


def test_recalibrate_matches_torch_update_bn_and_restores_state():
    X = torch.randn(120, 4) * 2 + 1
    a, b = _net(), _net()
    set_bn_momentum(a, 0.3)
    set_bn_momentum(b, 0.3)
    a.eval()
    recalibrate_bn(a, X, batch_size=40)
    update_bn([X[i:i + 40] for i in range(0, 120, 40)], b)
    for la, lb in zip(bn_modules(a), bn_modules(b)):
        torch.testing.assert_close(la.running_mean, lb.running_mean)
        torch.testing.assert_close(la.running_var, lb.running_var)
        assert la.momentum == 0.3
    assert not a.training


def test_recalibrated_first_layer_mean_is_the_data_mean():
    X = torch.randn(90, 3, dtype=torch.float64) + torch.tensor([1.0, -2.0, 5.0], dtype=torch.float64)
    model = nn.Sequential(nn.BatchNorm1d(3)).double()
    recalibrate_bn(model, X, batch_size=30)
    torch.testing.assert_close(model[0].running_mean, X.mean(0))
    assert int(model[0].num_batches_tracked) == 3
    with pytest.raises(ValueError):
        recalibrate_bn(nn.Sequential(nn.Linear(2, 2)), X)


def test_random_feature_shift_is_seeded_and_in_range():
    from normlab_book.running_stats import random_feature_shift

    s1, o1 = random_feature_shift(2000, seed=3, max_scale=4.0, offset_std=2.0)
    s2, o2 = random_feature_shift(2000, seed=3, max_scale=4.0, offset_std=2.0)
    assert torch.equal(s1, s2) and torch.equal(o1, o2)
    assert s1.min() >= 0.25 and s1.max() <= 4.0
    logs = torch.log(s1)                 # log-uniform on [-log 4, log 4]: variance (2 log 4)^2 / 12
    assert abs(logs.mean().item()) < 0.05
    assert abs(logs.var().item() / ((2 * np.log(4.0)) ** 2 / 12) - 1) < 0.1
    assert abs(o1.std().item() / 2.0 - 1) < 0.1
    assert not torch.equal(random_feature_shift(20, seed=4)[0], random_feature_shift(20, seed=3)[0])
    with pytest.raises(ValueError, match="max_scale"):
        random_feature_shift(5, seed=0, max_scale=0.5)
