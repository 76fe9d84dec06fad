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


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one thread is much faster than two on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
