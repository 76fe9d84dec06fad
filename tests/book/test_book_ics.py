"""Tests of normlab_book.ics against independent truths: normlab.training's loop run
on each member alone, the measurements of each member alone. The measurements themselves
(normlab.ics) are tested in tests/normlab/test_ics.py."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from normlab import data, training
from normlab_book import ics
from normlab.torch_modules import NoisyBatchNorm1d


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_data():
    """A small binary problem shaped like article 002's (20 features), without sklearn."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 20)).astype(np.float32)
    y = (X @ rng.normal(size=20) + 0.5 * rng.normal(size=200) > 0).astype(np.int64)
    return data.to_tensors(data.Split(X[:160], y[:160], X[160:], y[160:]))


def keras_bn(width):
    return nn.BatchNorm1d(width, eps=1e-3, momentum=0.01)


@pytest.mark.parametrize(
    "norm, after, opt",
    [(None, False, "sgd"), ("bn", False, "sgd"), ("bn", False, "adam"), (keras_bn, True, "adam")],
)
def test_every_member_trains_exactly_like_training_train(small_data, norm, after, opt):
    lrs = [0.05, 0.2] if opt == "sgd" else [1e-3, 1e-3]
    ens = ics.EnsembleMLP([5, 9], 20, (16, 16), norm=norm, norm_after_activation=after,
                          init="glorot" if after else "torch")
    members = [ens.member(r) for r in range(2)]
    hist = ics.train_ensemble(ens, small_data, epochs=2, batch_size=32, lr=lrs,
                              optimizer=opt).as_arrays()
    for r in range(2):
        alone = training.train(members[r], small_data, epochs=2, batch_size=32, lr=lrs[r],
                               optimizer=opt, seed=ens.seeds[r])
        np.testing.assert_allclose(hist["step_loss"][:, r], alone.step_loss, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(hist["test_acc"][:, r], alone.test_acc)
        np.testing.assert_allclose(hist["train_loss"][:, r], alone.train_loss, rtol=1e-5)
        # and the trained member extracted afterwards is the net trained alone
        x = small_data[2]
        members[r].eval()
        got = ens.member(r).eval()(x)
        np.testing.assert_allclose(got.detach().numpy(), members[r](x).detach().numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_members_are_independent_even_when_one_diverges(small_data):
    ens = ics.EnsembleMLP([0, 1], 20, (16,), norm=None)
    alone = ens.member(1)
    hist = ics.train_ensemble(ens, small_data, epochs=2, lr=[1e4, 0.1], optimizer="sgd").as_arrays()
    assert not np.all(np.isfinite(hist["step_loss"][:, 0]))  # the first member blew up
    ref = training.train(alone, small_data, epochs=2, lr=0.1, optimizer="sgd", seed=1)
    np.testing.assert_allclose(hist["step_loss"][:, 1], ref.step_loss, rtol=1e-5, atol=1e-6)


def test_same_seed_gives_same_member_and_init_scale_scales_weights():
    a = ics.EnsembleMLP([3, 4], 5, (7,), norm="bn")
    b = ics.EnsembleMLP([4], 5, (7,), norm="bn", init_scale=10.0)
    torch.testing.assert_close(b.w0[0], 10 * a.w0[1])
    torch.testing.assert_close(b.b1[0], a.b1[1])  # biases are not scaled
    assert a.b0 is None and a.b1 is not None  # no bias before a norm
    with pytest.raises(ValueError, match="init must be"):
        ics.EnsembleMLP([0], 5, (7,), init="he")


def test_functional_loss_leaves_model_and_noise_stream_alone():
    ens = ics.EnsembleMLP([0, 1], 6, (8, 8), norm=lambda w: NoisyBatchNorm1d(w, seed=3))
    x, y = torch.randn(10, 6), torch.randint(0, 2, (10,))
    before = {k: v.clone() for k, v in ens.state_dict().items()}
    gen_state = ens.norms[0].generator.get_state()
    loss_fn, params = ics.functional_loss(ens, x, y)
    l1, l2 = loss_fn(params), loss_fn(params)
    torch.testing.assert_close(l1, l2)  # the same noise at every evaluation
    for k, v in ens.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert torch.equal(ens.norms[0].generator.get_state(), gen_state)


def test_gradient_change_of_an_ensemble_is_that_of_each_member():
    torch.manual_seed(0)
    ens = ics.EnsembleMLP([2, 7], 6, (8, 8, 8), norm="bn")
    x, y = torch.randn(16, 6), torch.randint(0, 2, (16,))
    loss_fn, params = ics.functional_loss(ens, x, y)
    res = ics.gradient_change(loss_fn, params, "w2", ["w0", "w1", "norms.0.weight",
                                                      "norms.0.bias", "norms.1.weight",
                                                      "norms.1.bias"], 0.5, n_members=2)
    for r in range(2):
        m = ens.member(r)
        lf, p = ics.functional_loss(m, x, y)
        one = ics.gradient_change(lf, p, "6.weight", ["0.weight", "1.weight", "1.bias",
                                                      "3.weight", "4.weight", "4.bias"], 0.5)
        for key in ("diff", "cos", "norm"):
            np.testing.assert_allclose(res[key][r], one[key][0], rtol=1e-4)
        assert res["diff"][r] > 0


def test_probe_stats_are_the_layer_inputs_and_do_not_drift_in_a_frozen_net():
    ens = ics.EnsembleMLP([0, 1], 6, (8, 8), norm=lambda w: NoisyBatchNorm1d(w, seed=0))
    x = torch.randn(32, 6)
    before = {k: v.clone() for k, v in ens.state_dict().items()}
    m1, s1 = ics.probe_stats(ens, x, layer=1)
    m2, s2 = ics.probe_stats(ens, x, layer=1)
    np.testing.assert_array_equal(m1, m2)  # nothing trained: no drift, noise included
    np.testing.assert_array_equal(s1, s2)
    for k, v in ens.state_dict().items():
        torch.testing.assert_close(v, before[k])
    # without noise: the input of the second activation of member 1, recomputed by hand
    ens = ics.EnsembleMLP([0, 1], 6, (8, 8), norm="bn")
    mean, std = ics.probe_stats(ens, x, layer=1)
    m = ens.member(1).train()
    h = m[3](m[2](m[1](m[0](x))))
    h = m[4](h).detach().double()  # Linear -> BN of the second hidden layer
    np.testing.assert_allclose(mean[1], h.mean(0).numpy(), atol=1e-6)
    np.testing.assert_allclose(std[1], h.std(0, unbiased=False).numpy(), rtol=1e-4)


def test_layer_gradient_norms_of_an_ensemble_are_its_members():
    torch.manual_seed(0)
    x, y = torch.randn(16, 6), torch.randint(0, 2, (16,))
    ens = ics.EnsembleMLP([0, 1, 2], 6, (8, 8), activation=nn.Tanh)
    g = ics.layer_gradient_norms(ens, x, y)
    assert g.shape == (3, 3)
    np.testing.assert_allclose(g[:, 2], ics.layer_gradient_norms(ens.member(2), x, y), rtol=1e-5)


def test_track_training_of_a_frozen_net_records_no_drift(small_data):
    ens = ics.EnsembleMLP([0, 1], 20, (8, 8, 8), norm="bn")
    tr = ics.track_training(ens, small_data, layer=2, lr=0.0, epochs=1, probe_size=64,
                            probe_every=2, measure_every=3)
    n_steps = len(tr.history["step_loss"])
    assert list(tr.probe_steps) == list(range(0, n_steps + 1, 2))
    assert tr.probe_mean.shape == (len(tr.probe_steps), 2, 8)
    s = ics.drift_summary(tr.probe_mean, tr.probe_std)
    np.testing.assert_allclose(s["drift"], 0, atol=1e-6)
    np.testing.assert_allclose(s["jump"], 0, atol=1e-6)
    np.testing.assert_allclose(s["std_first"], s["std_last"], atol=1e-6)
    np.testing.assert_allclose(tr.grad_diff, 0, atol=1e-7)  # lr = 0: nothing moves
    assert tr.grad_cos.shape == tr.beta.shape == (len(tr.measure_steps), 2)
    # with learning, the same run measures something
    tr = ics.track_training(ics.EnsembleMLP([0, 1], 20, (8, 8, 8)), small_data, layer=2, lr=0.5,
                            epochs=1, probe_size=64, probe_every=2, measure_every=3)
    assert (ics.drift_summary(tr.probe_mean, tr.probe_std)["drift"] > 0).all()
    assert (tr.grad_diff[1:] > 0).all()


def test_largest_stable_on_hand_made_inputs():
    L = np.array([[0.5, 0.1, 0.05, np.nan], [0.5, 0.4, 0.3, 0.2]])
    np.testing.assert_array_equal(ics.largest_stable([1, 2, 3, 4], L, 0.25), [3.0, 4.0])
    assert np.isnan(ics.largest_stable([1, 2, 3, 4], L, 0.01)).all()


def test_members_with_and_without_norm_share_an_ensemble(small_data):
    mixed = ics.EnsembleMLP([3, 3], 20, (16, 16), norm=keras_bn, norm_after_activation=True,
                            init="glorot", norm_members=[False, True])
    kinds = [[type(m).__name__ for m in mixed.member(r)] for r in range(2)]
    assert kinds[0] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert kinds[1] == ["Linear", "ReLU", "BatchNorm1d", "Linear", "ReLU", "BatchNorm1d", "Linear"]
    members = [mixed.member(r) for r in range(2)]
    hist = ics.train_ensemble(mixed, small_data, epochs=2, lr=1e-3, optimizer="adam").as_arrays()
    for r in range(2):
        alone = training.train(members[r], small_data, epochs=2, lr=1e-3, seed=3)
        np.testing.assert_allclose(hist["step_loss"][:, r], alone.step_loss, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="norm_members"):
        ics.EnsembleMLP([0, 1], 4, (3,), norm="bn", norm_members=[True])


# --- the chapter's redesigned experiments: per-member data, lr multipliers, scaled hidden layers,
# --- recalibrated statistics, per-member normalizations


def test_scale_output_false_scales_only_the_layers_that_feed_the_norm():
    a = ics.EnsembleMLP([4], 5, (7, 6), norm="bn")
    b = ics.EnsembleMLP([4], 5, (7, 6), norm="bn", init_scale=3.0, scale_output=False)
    torch.testing.assert_close(b.w0, 3 * a.w0)
    torch.testing.assert_close(b.w1, 3 * a.w1)
    torch.testing.assert_close(b.w2, a.w2)


def test_lr_multipliers_are_a_per_member_per_parameter_learning_rate(small_data):
    """One SGD step against a hand-computed step: w0 of member r moves by lr * m[r] * grad."""
    ens = ics.EnsembleMLP([1, 2], 20, (8,), norm=None)
    w_before = {k: p.detach().clone() for k, p in ens.named_parameters()}
    X, y = small_data[0][:32], small_data[1][:32]
    # one epoch of 32 examples in batches of 32 is one full-batch step (order does not matter)
    loss = ics.member_losses(ens(X), y).sum()
    grads = dict(zip([k for k, _ in ens.named_parameters()],
                     torch.autograd.grad(loss, list(ens.parameters()))))
    mult = np.array([0.5, 4.0])
    small = tuple(t[:32] if i < 2 else t for i, t in enumerate(small_data))
    ics.train_ensemble(ens, small, epochs=1, batch_size=32, lr=[0.1, 0.2], optimizer="sgd",
                       eval_every_epoch=False, lr_multipliers={"w0": mult})
    for r, lr in enumerate((0.1, 0.2)):
        torch.testing.assert_close(ens.w0[r], w_before["w0"][r] - lr * mult[r] * grads["w0"][r])
        torch.testing.assert_close(ens.w1[r], w_before["w1"][r] - lr * grads["w1"][r])
    with pytest.raises(ValueError, match="unknown parameters"):
        ics.train_ensemble(ens, small, epochs=1, lr=0.1, optimizer="sgd", lr_multipliers={"w9": 1.0})


def test_compensated_learning_rate_undoes_the_scale_of_weights_that_feed_bn(small_data):
    """Scale invariance (ch5 exercise): scale a with lr a^2 on the scaled weights = scale 1."""
    bn = lambda w: nn.BatchNorm1d(w, eps=1e-12)
    a = 10.0
    ref = ics.EnsembleMLP([0], 20, (16, 16), norm=bn)
    scaled = ics.EnsembleMLP([0], 20, (16, 16), norm=bn, init_scale=a, scale_output=False)
    h_ref = ics.train_ensemble(ref, small_data, epochs=2, lr=0.1, optimizer="sgd").as_arrays()
    h_sc = ics.train_ensemble(scaled, small_data, epochs=2, lr=0.1, optimizer="sgd",
                              lr_multipliers={"w0": a * a, "w1": a * a}).as_arrays()
    np.testing.assert_allclose(h_sc["step_loss"], h_ref["step_loss"], rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(scaled.w1 / a, ref.w1, rtol=1e-3, atol=1e-5)


def test_member_split_tensors_are_sklearn_splits():
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    Xtr, ytr, Xte, yte = ics.member_split_tensors(X, y, [42, 7])
    for r, rs in enumerate((42, 7)):
        a, b, c, d = train_test_split(X, y, test_size=0.2, random_state=rs)
        np.testing.assert_allclose(Xtr[r].numpy(), a, rtol=1e-6)
        np.testing.assert_array_equal(ytr[r].numpy(), c)
        np.testing.assert_allclose(Xte[r].numpy(), b, rtol=1e-6)
        np.testing.assert_array_equal(yte[r].numpy(), d)


def test_per_member_data_trains_each_member_on_its_own_split(small_data):
    X = torch.cat([small_data[0], small_data[2]]).numpy()
    y = torch.cat([small_data[1], small_data[3]]).numpy()
    per = ics.member_split_tensors(X, y, [0, 1])
    ens = ics.EnsembleMLP([5, 6], 20, (16,), norm="bn")
    members = [ens.member(r) for r in range(2)]
    hist = ics.train_ensemble(ens, per, epochs=2, lr=0.1, optimizer="sgd").as_arrays()
    for r in range(2):
        own = tuple(t[r] for t in per)
        alone = training.train(members[r], own, epochs=2, lr=0.1, optimizer="sgd", seed=5 + r)
        np.testing.assert_allclose(hist["step_loss"][:, r], alone.step_loss, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(hist["test_acc"][:, r], alone.test_acc)
    with pytest.raises(ValueError, match="per-member data"):
        ics.train_ensemble(ics.EnsembleMLP([0, 1, 2], 20, (4,)), per, epochs=1, lr=0.1,
                           optimizer="sgd")


def test_recalibrate_batchnorm_gives_the_full_batch_statistics():
    torch.manual_seed(0)
    ens = ics.EnsembleMLP([0, 1], 6, (8,), norm=keras_bn, norm_after_activation=True)
    X = torch.randn(300, 6) + 2
    ics.recalibrate_batchnorm(ens, X)
    bn = ens.norms[0]
    # the BN input, computed without the module: ReLU(X W0 + b0) for each member, side by side
    h = torch.relu(torch.baddbmm(ens.b0.unsqueeze(1), X.expand(2, 300, 6), ens.w0))
    h = h.transpose(0, 1).reshape(300, 16).detach()
    torch.testing.assert_close(bn.running_mean, h.mean(0))
    torch.testing.assert_close(bn.running_var, h.var(0, unbiased=True))
    assert bn.momentum == 0.01 and ens.training  # restored


def test_member_norm_bn_kind_is_batchnorm1d():
    torch.manual_seed(0)
    mn, ref = ics.MemberNorm(["bn", "bn"], 3), nn.BatchNorm1d(6)
    for _ in range(3):
        z = torch.randn(10, 6) * 3 + 1
        torch.testing.assert_close(mn(z), ref(z), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mn.running_mean, ref.running_mean)
    torch.testing.assert_close(mn.running_var, ref.running_var, rtol=1e-5, atol=1e-6)
    mn.eval(); ref.eval()
    z = torch.randn(4, 6)
    torch.testing.assert_close(mn(z), ref(z), rtol=1e-5, atol=1e-5)


def test_member_norm_l1_kind_divides_by_the_mean_absolute_uncentred_input():
    z = np.random.default_rng(0).normal(2.0, 0.5, size=(16, 4))
    mn = ics.MemberNorm(["l1", "bn"], 2)
    out = mn(torch.as_tensor(z, dtype=torch.float32)).detach().numpy()
    l1 = (z[:, :2] - z[:, :2].mean(0)) / (np.abs(z[:, :2]).mean(0) + 1e-5)
    np.testing.assert_allclose(out[:, :2], l1, rtol=1e-4, atol=1e-5)
    assert np.all(out[:, :2].std(0) < 0.5)  # the spread is not fixed at 1: inputs centred at 2
    with pytest.raises(ValueError, match="unknown kinds"):
        ics.MemberNorm(["bn", "l3"], 2)
    ens = ics.EnsembleMLP([0, 1], 4, (2,), norm=lambda w: ics.MemberNorm(["l1", "bn"], 2))
    with pytest.raises(ValueError, match="cannot split a MemberNorm"):
        ens.member(0)


def test_member_norm_noise_and_ramp_are_injections_that_can_be_switched_off():
    torch.manual_seed(0)
    kinds = ["bn", "jitter", "strong", "ramp"]
    mn, ref = ics.MemberNorm(kinds, 5, ramp_steps=4), nn.BatchNorm1d(20)
    z = torch.randn(64, 20)
    y, r = mn(z), ref(z)
    torch.testing.assert_close(y[:, :5], r[:, :5], rtol=1e-5, atol=1e-5)          # plain BN
    torch.testing.assert_close(y[:, 15:], r[:, 15:], rtol=1e-5, atol=1e-5)        # ramp at t = 0
    shift = (y - r)[:, 5:15].mean(0)
    assert torch.all(shift.abs() < 0.5 + 0.2) and shift.abs().max() > 0.05       # a jumping mean
    spread = (y - r)[:, 5:15].std(0)
    assert torch.all(spread[:5] < 0.45) and torch.all(spread[5:] > 0.3)           # jitter vs strong
    with ics.injection_off(mn):
        torch.testing.assert_close(mn(z), ref(z), rtol=1e-5, atol=1e-5)
    assert mn.inject
    for _ in range(4):                                                            # to t = ramp_steps
        mn(z), ref(z)
    mn.eval(); ref.eval()
    moved = ref(z)[:, 15:] * torch.exp(mn.ramp_log_scale[15:]) + mn.ramp_shift[15:]
    torch.testing.assert_close(mn(z)[:, 15:], moved, rtol=1e-4, atol=1e-4)        # kept in eval
    torch.testing.assert_close(mn(z)[:, 5:15], ref(z)[:, 5:15], rtol=1e-5, atol=1e-5)  # no noise


def test_track_training_separates_injected_from_parameter_driven_change(small_data):
    kinds = ["bn", "jitter"]
    ens = ics.EnsembleMLP([0, 0], 20, (8, 8), norm=lambda w: ics.MemberNorm(kinds, 8, seed=1))
    tr = ics.track_training(ens, small_data, layer=1, lr=0.1, epochs=1, probe_every=2,
                            measure_every=10**9)
    # the BN member injects nothing: both probes agree; the noisy one's injected jumps dominate
    np.testing.assert_allclose(tr.probe_mean[:, 0], tr.probe_mean_clean[:, 0])
    jump = np.abs(np.diff(tr.probe_mean[:, 1], axis=0)).mean()
    jump_clean = np.abs(np.diff(tr.probe_mean_clean[:, 1], axis=0)).mean()
    assert jump > 20 * jump_clean
