"""Batch renormalization (normlab.renorm) against an independent torch-autograd version.

The torch version below is written from the equations (paper + SEMANTICS.md), with r and d
detached; r_max = 1, d_max = 0 is checked against torch's own F.batch_norm.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import SAFETY, U, assert_close, normalization_tolerances

from normlab import numerical_gradient, rel_error
from normlab.renorm import (
    batchrenorm_backward,
    batchrenorm_forward,
    renorm_schedule,
    update_moving_stats,
)

HYP = settings()


def data(shape, seed, scale=1.0, offset=0.0):
    rng = np.random.default_rng(seed)
    return offset + scale * rng.standard_normal(shape)


def torch_batch_renorm(x, gamma, beta, running_mean, running_var, r_max, d_max, eps, momentum):
    """Batch renorm from the equations in torch; returns (out, r, d, new_mean, new_var)."""
    dims = [0, *range(2, x.dim())]
    view = [1, -1] + [1] * (x.dim() - 2)
    mu = x.mean(dims)
    var = x.var(dims, unbiased=False)
    sigma_b = torch.sqrt(var + eps)
    sigma = torch.sqrt(running_var + eps)
    r = (sigma_b / sigma).detach().clamp(1 / r_max, r_max)
    d = ((mu - running_mean) / sigma).detach().clamp(-d_max, d_max)
    x_hat = (x - mu.view(view)) / sigma_b.view(view) * r.view(view) + d.view(view)
    out = gamma.view(view) * x_hat + beta.view(view)
    new_mean = (1 - momentum) * running_mean + momentum * mu.detach()
    new_var = (1 - momentum) * running_var + momentum * x.detach().var(dims, unbiased=True)
    return out, r, d, new_mean, new_var


def run_both(x, gamma, beta, rm, rv, r_max, d_max, dout, eps=1e-5, momentum=0.1):
    """normlab and the torch reference on the same data; returns (ours, reference) dicts."""
    out, cache = batchrenorm_forward(x, gamma, beta, rm, rv, r_max, d_max, eps, momentum)
    dx, dgamma, dbeta = batchrenorm_backward(dout, cache)
    ours = dict(out=out, dx=dx, dgamma=dgamma, dbeta=dbeta, r=cache.r, d=cache.d,
                mean=cache.running_mean, var=cache.running_var)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    t_out, r, d, new_mean, new_var = torch_batch_renorm(
        xt, gt, bt, torch.tensor(rm), torch.tensor(rv), r_max, d_max, eps, momentum
    )
    t_out.backward(torch.tensor(dout))
    ref = dict(out=t_out, dx=xt.grad, dgamma=gt.grad, dbeta=bt.grad, r=r, d=d,
               mean=new_mean, var=new_var)
    return ours, {k: v.detach().numpy() for k, v in ref.items()}


def renorm_tolerances(x, dout, gamma, beta, r, d, running_mean, eps=1e-5):
    """Rounding-error bounds for batch renorm, from tolerances.normalization_tolerances.

    In the forward and in dx (r and d are constants there) batch renorm is batch norm with
    scale ``gamma * r`` and shift ``gamma * d + beta``; ``dgamma = sum dout (r x_hat + d)``
    is ``r`` times batch norm's dgamma plus ``d`` times its dbeta. ``d = (mu - mean) / sigma``
    and the new running mean carry the error of a sum of |x|, |running_mean|.
    """
    axes = (0,) + tuple(range(2, x.ndim))
    bn = normalization_tolerances(x, dout, axes=axes, eps=eps, gamma=gamma * r,
                                  beta=gamma * d + beta, param_axes=(1,))
    n = x.size // x.shape[1]
    stats = SAFETY * U * n * (np.abs(x).max(axis=axes) + np.abs(running_mean))
    return {
        "out": bn["out"], "dx": bn["dx"], "dbeta": bn["dbeta"],
        "dgamma": r * bn["dgamma"] + np.abs(d) * bn["dbeta"],
        "d": stats / np.sqrt(x.var(axis=axes) + eps), "mean": stats,
        "r": 0.0, "var": 0.0,  # positive, judged by the relative tolerance alone
    }


def assert_all_match(ours, ref, tol):
    """Every output within its rounding-error bound ``tol`` (r and var: relatively)."""
    for key in ("out", "dx", "dgamma", "dbeta", "d", "mean"):
        assert_close(ours[key], ref[key], tol[key], name=key)
    for key in ("r", "var"):
        assert_close(ours[key], ref[key], 0.0, rtol=1e-12, name=key)


def check_against_torch(x, gamma, beta, running_mean, running_var, r_max, d_max, dout, **kw):
    ours, ref = run_both(x, gamma, beta, running_mean, running_var, r_max, d_max, dout, **kw)
    tol = renorm_tolerances(x, dout, gamma, beta, ref["r"], ref["d"], running_mean)
    assert_all_match(ours, ref, tol)
    return ours


@HYP
@given(
    n=st.integers(2, 5),
    c=st.integers(1, 4),
    spatial=st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
    r_max=st.sampled_from([1.0, 1.5, 3.0]),
    d_max=st.sampled_from([0.0, 0.5, 5.0]),
    seed=st.integers(0, 2**31),
    scale=st.sampled_from([0.1, 1.0, 10.0]),
    momentum=st.sampled_from([0.1, 0.5, 1.0]),
)
def test_matches_independent_torch_autograd_implementation(
    n, c, spatial, r_max, d_max, seed, scale, momentum
):
    rng = np.random.default_rng(seed + 5)
    x = data((n, c) + spatial, seed, scale, offset=rng.normal())
    gamma, beta = rng.normal(size=c), rng.normal(size=c)
    running_mean = rng.normal(size=c)
    running_var = rng.uniform(0.05, 20.0, size=c)  # r on both sides of [1/r_max, r_max]
    dout = data(x.shape, seed + 1)
    check_against_torch(x, gamma, beta, running_mean, running_var, r_max, d_max, dout,
                        momentum=momentum)


def test_clipping_is_active_at_both_ends_and_still_matches():
    x = data((6, 4, 3), 0) * np.array([1.0, 1.0, 10.0, 0.1])[None, :, None]
    running_mean = np.array([50.0, -50.0, 0.0, 0.0])
    running_var = np.ones(4)
    ours = check_against_torch(x, np.ones(4), np.zeros(4), running_mean, running_var, 2.0,
                               1.5, data(x.shape, 1))
    np.testing.assert_array_equal(ours["d"][:2], [-1.5, 1.5])
    assert ours["r"][2] == 2.0 and ours["r"][3] == 0.5


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (2, 3, 4, 4)])
def test_r_max_1_and_d_max_0_is_torch_batch_norm_with_running_stats(shape):
    x = data(shape, 3, scale=2.0, offset=1.0)
    gamma, beta = data(3, 4), data(3, 5)
    running_mean, running_var = data(3, 6), np.array([0.5, 1.0, 3.0])
    dout = data(shape, 7)
    out, cache = batchrenorm_forward(x, gamma, beta, running_mean, running_var, 1.0, 0.0)
    dx, dgamma, dbeta = batchrenorm_backward(dout, cache)

    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rm_t, rv_t = torch.tensor(running_mean), torch.tensor(running_var)
    ref = F.batch_norm(xt, rm_t, rv_t, gt, bt, training=True, momentum=0.1, eps=1e-5)
    ref.backward(torch.tensor(dout))
    tol = renorm_tolerances(x, dout, gamma, beta, np.ones(3), np.zeros(3), running_mean)
    assert_close(out, ref.detach().numpy(), tol["out"], name="out")
    for name, ours, theirs in [("dx", dx, xt.grad), ("dgamma", dgamma, gt.grad),
                               ("dbeta", dbeta, bt.grad), ("mean", cache.running_mean, rm_t)]:
        assert_close(ours, theirs.numpy(), tol[name], name=name)
    assert_close(cache.running_var, rv_t.numpy(), 0.0, rtol=1e-12, name="var")


def test_eval_mode_is_torch_batch_norm_eval_and_ignores_r_and_d():
    x = data((5, 3, 2), 8, offset=2.0)
    gamma, beta = data(3, 9), data(3, 10)
    running_mean, running_var = data(3, 11), np.array([0.2, 1.0, 4.0])
    dout = data(x.shape, 12)
    out, cache = batchrenorm_forward(
        x, gamma, beta, running_mean, running_var, 3.0, 5.0, training=False
    )
    dx, dgamma, dbeta = batchrenorm_backward(dout, cache)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rm_t, rv_t = torch.tensor(running_mean), torch.tensor(running_var)
    ref = F.batch_norm(xt, rm_t, rv_t, gt, bt, training=False, eps=1e-5)
    ref.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=0, atol=1e-10)
    for ours, theirs in [(dx, xt.grad), (dgamma, gt.grad), (dbeta, bt.grad)]:
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(cache.running_mean, running_mean)
    np.testing.assert_array_equal(cache.running_var, running_var)


def test_inputs_are_not_modified():
    x = data((4, 2), 0)
    running_mean, running_var = np.zeros(2), np.ones(2)
    batchrenorm_forward(x, np.ones(2), np.zeros(2), running_mean, running_var, 3.0, 5.0)
    np.testing.assert_array_equal(running_mean, np.zeros(2))
    np.testing.assert_array_equal(running_var, np.ones(2))


def test_update_moving_stats_matches_torch_batch_norm_buffers():
    x = data((7, 3), 13)
    rm_t, rv_t = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    F.batch_norm(torch.tensor(x), rm_t, rv_t, training=True, momentum=0.3)
    mean, var = update_moving_stats(np.zeros(3), np.ones(3), x.mean(0), x.var(0), 7, 0.3)
    np.testing.assert_allclose(mean, rm_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(var, rv_t.numpy(), rtol=1e-12)


# ------------------------------------------------------------------ finite differences


@pytest.mark.parametrize(
    "running_mean, running_var, training",
    [
        # r and d saturated in every channel, so they are locally constant and the
        # stop-gradient backward equals the derivative of the forward
        (np.array([1e3, -1e3, 40.0]), np.array([1e4, 1e4, 1e-4]), True),
        (np.zeros(3), np.ones(3), False),
    ],
    ids=["train-clipped", "eval"],
)
def test_backward_matches_finite_differences(running_mean, running_var, training):
    x = data((4, 3, 2), 14, scale=1.5)
    gamma, beta = data(3, 15), data(3, 16)
    dout = data(x.shape, 17)

    def forward(a, g, b):
        return batchrenorm_forward(a, g, b, running_mean, running_var, 2.0, 1.0,
                                   training=training)[0]

    _, cache = batchrenorm_forward(x, gamma, beta, running_mean, running_var, 2.0, 1.0,
                                   training=training)
    if training:
        assert np.all(np.isin(cache.r, [0.5, 2.0])) and np.all(np.abs(cache.d) == 1.0)
    dx, dgamma, dbeta = batchrenorm_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda a: forward(a, gamma, beta), x, dout)) < 1e-6
    assert rel_error(dgamma, numerical_gradient(lambda g: forward(x, g, beta), gamma, dout)) < 1e-6
    assert rel_error(dbeta, numerical_gradient(lambda b: forward(x, gamma, b), beta, dout)) < 1e-6


def test_empty_batch_returns_empty_output_and_keeps_running_stats():
    out, cache = batchrenorm_forward(np.zeros((0, 3)), None, None, np.ones(3), np.ones(3), 3.0, 5.0)
    assert out.shape == (0, 3)
    np.testing.assert_array_equal(cache.running_mean, np.ones(3))
    dx, dgamma, dbeta = batchrenorm_backward(np.zeros((0, 3)), cache)
    assert dx.shape == (0, 3) and dgamma is None and dbeta is None


# ------------------------------------------------------------------------- schedule


def test_schedule_follows_the_paper():
    assert renorm_schedule(0) == (1.0, 0.0)
    assert renorm_schedule(5000) == (1.0, 0.0)
    assert renorm_schedule(22500) == pytest.approx((2.0, 5.0 * 17500 / 20000))
    assert renorm_schedule(25000) == pytest.approx((1.0 + 2.0 * 20000 / 35000, 5.0))
    assert renorm_schedule(40000) == (3.0, 5.0)
    assert renorm_schedule(10**6) == (3.0, 5.0)


def test_schedule_rejects_bad_steps():
    with pytest.raises(ValueError, match="step must be >= 0"):
        renorm_schedule(-1)
    with pytest.raises(TypeError, match="step must be an int"):
        renorm_schedule(1.5)
    with pytest.raises(ValueError, match="r_max_reached_at .* must be after warmup_steps"):
        renorm_schedule(0, warmup_steps=50000)


# ---------------------------------------------------------------------------- errors


def call(x=None, **overrides):
    args = dict(gamma=np.ones(3), beta=np.zeros(3), running_mean=np.zeros(3),
                running_var=np.ones(3), r_max=3.0, d_max=5.0)
    args.update(overrides)
    return batchrenorm_forward(data((4, 3), 0) if x is None else x, **args)


def test_one_value_per_channel_is_rejected_in_training_like_torch():
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, got input size \(1, 3\)"):
        call(np.ones((1, 3)))
    call(np.ones((1, 3)), training=False)  # eval is fine


def test_bad_clip_limits_are_rejected():
    with pytest.raises(ValueError, match="r_max must be a finite number >= 1"):
        call(r_max=0.5)
    with pytest.raises(ValueError, match="d_max must be a finite number >= 0"):
        call(d_max=-1.0)
    with pytest.raises(TypeError, match="r_max must be a real number"):
        call(r_max="3")


def test_parameter_and_statistic_shapes_are_named():
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\), got \(1, 3\)"):
        call(running_mean=np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\), got \(2,\)"):
        call(running_var=np.ones(2))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\), got \(4,\)"):
        call(gamma=np.ones(4))
    with pytest.raises(ValueError, match="running_var must be >= 0"):
        call(running_var=-np.ones(3))


def test_bad_inputs_are_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        call(np.ones((4, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match=r"at least 2 dimensions \(got 1D"):
        call(np.ones(3))
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
        call(momentum=1.5)
    _, cache = call()
    with pytest.raises(ValueError, match=r"dout must have shape \(4, 3\), got \(3, 4\)"):
        batchrenorm_backward(np.zeros((3, 4)), cache)
