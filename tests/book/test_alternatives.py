"""Chapter 6's experiment code (normlab_book.alternatives) against independent truths.

Truths used: the definitions of the reduction axes; torch's functional normalizations;
ordinary single nets trained by a reference loop written here (for the ensembles); the
closed-form growth of ||v|| under weight normalization and torch autograd for its gradient;
power iteration's known convergence rate for a matrix with a chosen spectrum.
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normlab_book import alternatives as A
from normlab.torch_modules import BatchRenorm2d

torch.set_num_threads(1)


# ------------------------------------------------------------------------ axes and masks


def expected_mask(kind, shape, index, groups):
    """The statistics group of x[index], straight from the definitions of the four norms."""
    n0, c0 = index[0], index[1]
    n = np.arange(shape[0])[:, None, None, None]
    c = np.arange(shape[1])[None, :, None, None]
    per = shape[1] // groups
    full = np.ones(shape, dtype=bool)
    return {
        "batch": full & (c == c0),
        "layer": full & (n == n0),
        "instance": full & (n == n0) & (c == c0),
        "group": full & (n == n0) & (c // per == c0 // per),
    }[kind]


@pytest.mark.parametrize("kind", A.NORM_KINDS)
@pytest.mark.parametrize("index", [(0, 0, 0, 0), (2, 3, 1, 0)])
def test_shared_statistics_mask_matches_definition(kind, index):
    shape = (4, 6, 2, 3)
    mask = A.shared_statistics_mask(kind, shape, index, num_groups=3)
    np.testing.assert_array_equal(mask, expected_mask(kind, shape, index, 3))


def test_spanned_axes_names():
    shape = (4, 6, 2, 2)
    names = {k: A.spanned_axes(A.shared_statistics_mask(k, shape, num_groups=2))
             for k in A.NORM_KINDS}
    assert names == {"batch": "N, H, W", "layer": "C, H, W", "instance": "H, W",
                     "group": "C/G, H, W"}


def test_normalize_as_matches_torch():
    x = np.random.default_rng(0).standard_normal((3, 4, 3, 2)) * 2 + 1
    t = torch.from_numpy(x)
    truth = {
        "batch": F.batch_norm(t, None, None, training=True, eps=1e-5),
        "layer": F.layer_norm(t, t.shape[1:], eps=1e-5),
        "instance": F.instance_norm(t, eps=1e-5),
        "group": F.group_norm(t, 2, eps=1e-5),
    }
    for kind, ref in truth.items():
        np.testing.assert_allclose(A.normalize_as(kind, x, 2), ref.numpy(), atol=1e-12)
    with pytest.raises(ValueError):
        A.normalize_as("weight", x)


# --------------------------------------------------------------------------- ensembles


def reference_train(net, X, y, seed, batch_size, steps, lr, renorm=None, optimizer="adam"):
    """Train one ordinary net alone, with the batches batch_indices gives for its seed."""
    idx = A.batch_indices(len(X), batch_size, steps, seed)
    if optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    net.train()
    for step in range(steps):
        if renorm is not None:
            for m in net.modules():
                if isinstance(m, BatchRenorm2d):
                    m.r_max, m.d_max = renorm(step)
        xb = X[idx[step]]
        loss = F.cross_entropy(net(xb), y[idx[step]])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def toy_images(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


CNN_SPEC = [("bn", 0), ("bn", 1), ("brn", 0), ("gn", 2), ("ln", 0), ("bn", 3)]


MIXED_SPEC = [("none", 0), ("bn", 1), ("none", 2), ("gn", 0), ("ln", 3)]


def test_ensemble_cnn_with_and_without_biases_trains_each_member_alone_sgd():
    # kind "none" has conv biases, the normalized kinds do not; one ensemble holds both, and
    # SGD with one learning rate per member gives each member its own SGD run
    X, y = toy_images(40)
    X = X.double()
    steps, bs = 6, 4
    lrs = [0.05, 0.02, 0.1, 0.03, 0.07]
    members = [A.tiny_cnn(k, seed=s).double() for k, s in MIXED_SPEC]
    ens = A.EnsembleCNN(members)
    A.train_ensemble(ens, X, y, [s for _, s in MIXED_SPEC], batch_size=bs, steps=steps,
                     lr=lrs, optimizer="sgd")
    for k, ((kind, seed), lr) in enumerate(zip(MIXED_SPEC, lrs)):
        net = A.tiny_cnn(kind, seed=seed).double()
        alone = reference_train(net, X, y, seed, bs, steps, lr, optimizer="sgd")
        got = ens.member(k).state_dict()
        assert set(got) == set(alone.state_dict())
        for key, ref in alone.state_dict().items():
            torch.testing.assert_close(got[key], ref, atol=1e-10, rtol=1e-9,
                                       msg=f"member {k} ({kind}) {key}")


def test_train_ensemble_refuses_bad_learning_rates():
    X, y = toy_images(8)
    ens = A.EnsembleCNN([A.tiny_cnn("bn", seed=0), A.tiny_cnn("bn", seed=1)])
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        A.train_ensemble(ens, X, y, [0, 1], batch_size=4, steps=1, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="optimizer"):
        A.train_ensemble(ens, X, y, [0, 1], batch_size=4, steps=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="positive"):
        A.train_ensemble(ens, X, y, [0, 1], batch_size=4, steps=1, lr=[0.1, 0.0],
                         optimizer="sgd")
    with pytest.raises(ValueError, match="one seed per member"):
        A.train_ensemble(ens, X, y, [0], batch_size=4, steps=1)


def test_ensemble_cnn_forward_equals_members():
    members = [A.tiny_cnn(k, seed=s) for k, s in CNN_SPEC]
    ens = A.EnsembleCNN(members)
    X, _ = toy_images(6)
    xs = torch.cat([X.roll(k, 0) for k in range(len(members))], dim=1)  # (6, K, 8, 8)
    alone = copy.deepcopy(members)  # the training forward updates the running statistics
    for mode in (True, False):
        ens.train(mode)
        out = ens(xs)
        for k, m in enumerate(alone):
            m.train(mode)
            torch.testing.assert_close(out[:, k], m(xs[:, k:k + 1]), atol=1e-5, rtol=1e-5)


def test_ensemble_cnn_training_equals_training_alone():
    # float64: in float32, Adam's first steps (about lr * sign(grad)) amplify rounding noise
    # in near-zero gradient entries, so only float64 shows the identity cleanly
    X, y = toy_images(40)
    X = X.double()
    steps, bs, lr = 6, 4, 1e-2
    schedule = A.short_renorm_schedule(steps)
    members = [A.tiny_cnn(k, seed=s).double() for k, s in CNN_SPEC]
    ens = A.EnsembleCNN(members)
    A.train_ensemble(ens, X, y, [s for _, s in CNN_SPEC], batch_size=bs, steps=steps, lr=lr,
                     renorm=schedule)
    for k, (kind, seed) in enumerate(CNN_SPEC):
        net = A.tiny_cnn(kind, seed=seed).double()
        alone = reference_train(net, X, y, seed, bs, steps, lr, schedule)
        got = ens.member(k).state_dict()
        for key, ref in alone.state_dict().items():
            torch.testing.assert_close(got[key], ref, atol=1e-8, rtol=1e-7,
                                       msg=f"member {k} ({kind}) {key}")


RNN_SPEC = [("none", 0), ("bn", 1), ("bn", 2), ("bn_step", 0), ("ln", 1), ("gn", 3)]


def test_ensemble_rnn_forward_and_training_equal_members():
    g = torch.Generator().manual_seed(1)
    X = torch.rand(30, 8, 8, generator=g)
    y = torch.randint(0, 10, (30,), generator=g)
    members = [A.TinyRNN(k, hidden=12, seed=s) for k, s in RNN_SPEC]
    ens = A.EnsembleRNN(members)
    alone = copy.deepcopy(members)
    for mode in (True, False):
        ens.train(mode)
        out = ens(X[:5])
        for k, m in enumerate(alone):
            torch.testing.assert_close(out[:, k], m.train(mode)(X[:5]), atol=1e-5, rtol=1e-5)
    # a sequence longer than `steps`: per-step batch norm reuses its last layer
    long = torch.cat([X[:5], X[:5]], dim=1)
    ens.eval()
    for k, m in enumerate(alone):
        torch.testing.assert_close(ens(long)[:, k], m.eval()(long), atol=1e-5, rtol=1e-5)
    steps, bs, lr = 5, 4, 1e-2  # training in float64, as for the CNNs
    members = [A.TinyRNN(k, hidden=12, seed=s).double() for k, s in RNN_SPEC]
    ens = A.EnsembleRNN(members)
    A.train_ensemble(ens, X.double(), y, [s for _, s in RNN_SPEC], batch_size=bs, steps=steps,
                     lr=lr)
    for k, (kind, seed) in enumerate(RNN_SPEC):
        net = A.TinyRNN(kind, hidden=12, seed=seed).double()
        alone = reference_train(net, X.double(), y, seed, bs, steps, lr)
        got = ens.member(k).state_dict()
        for key, ref in alone.state_dict().items():
            torch.testing.assert_close(got[key], ref, atol=1e-8, rtol=1e-7,
                                       msg=f"member {k} ({kind}) {key}")


def test_rnn_kinds_must_be_consecutive():
    members = [A.TinyRNN("ln", seed=0), A.TinyRNN("bn", seed=0), A.TinyRNN("ln", seed=1)]
    with pytest.raises(ValueError):
        A.EnsembleRNN(members)


def test_batch_indices_are_epochs_of_permutations():
    idx = A.batch_indices(10, 3, 7, seed=0)
    assert idx.shape == (7, 3)
    for epoch in (idx[:3], idx[3:6]):  # 3 full batches per epoch, no index twice
        assert len(set(epoch.flatten().tolist())) == 9
    assert torch.equal(idx, A.batch_indices(10, 3, 7, seed=0))
    with pytest.raises(ValueError):
        A.batch_indices(10, 11, 1, seed=0)


def test_train_mode_accuracy_keeps_running_stats_and_batch_free_norms_agree():
    X, y = toy_images(16)
    ens = A.EnsembleCNN([A.tiny_cnn("bn", seed=0), A.tiny_cnn("gn", seed=0)])
    A.train_ensemble(ens, X, y, [0, 0], batch_size=4, steps=3)
    before = copy.deepcopy(ens.state_dict())
    tm = A.train_mode_accuracy(ens, X, y, 4)
    for key, v in ens.state_dict().items():
        assert torch.equal(v, before[key]), key
    ev = A.eval_accuracy(ens, X, y)
    assert tm[1] == ev[1]  # group norm: the same computation in both modes


def test_short_renorm_schedule():
    s = A.short_renorm_schedule(200)
    assert s(0) == (1.0, 0.0) and s(20) == (1.0, 0.0)
    assert s(199) == (3.0, 5.0)
    r, d = s(40)
    assert 1.0 < r < 3.0 and 0.0 < d < 5.0


def test_validation_split():
    fit, val = A.validation_split(50, 12, seed=3)
    assert len(val) == 12 and len(fit) == 38
    assert sorted(torch.cat([fit, val]).tolist()) == list(range(50))
    f2, v2 = A.validation_split(50, 12, seed=3)
    assert torch.equal(fit, f2) and torch.equal(val, v2)
    with pytest.raises(ValueError):
        A.validation_split(10, 10)


def test_batch_size_sweep_follows_the_protocol():
    """Every number of the sweep against runs made here by hand: the learning rate chosen on
    the validation split, then one member retrained alone at the linearly scaled rate."""
    X, y = toy_images(60)
    Xt, yt = toy_images(24, seed=5)
    grid = (0.01, 0.1)
    res = A.batch_size_sweep((X, y, Xt, yt), kinds=("none", "bn", "gn"), batch_sizes=(2, 4),
                             seeds=(0, 1), epochs=1, base_lrs=grid, lr_seeds=(0,),
                             ref_batch=4, n_val=20)
    assert (res.n_fit, res.n_val, res.n_test) == (40, 20, 24)
    assert res.steps == {2: 20, 4: 10}
    fit, val = A.validation_split(60, 20)
    for kind in res.kinds:
        assert res.eval_acc[kind].shape == (2, 2)
        # the learning-rate choice, redone alone for each grid point
        for i, lr in enumerate(grid):
            net = reference_train(A.tiny_cnn(kind, seed=0), X[fit], y[fit], 0, 4, 10, lr,
                                  renorm=A.short_renorm_schedule(10), optimizer="sgd")
            with torch.no_grad():
                acc = (net.eval()(X[val]).argmax(1) == y[val]).double().mean().item()
            assert abs(acc - res.val_acc_grid[kind][i, 0]) <= 1 / 20 + 1e-12
        assert res.chosen_lr[kind] == grid[int(np.argmax(res.val_acc_grid[kind].mean(1)))]
        assert res.lr_at(kind, 2) == pytest.approx(res.chosen_lr[kind] / 2)
        # batch 2, seed 1, retrained alone at the scaled rate for the same number of epochs
        net = reference_train(A.tiny_cnn(kind, seed=1), X[fit], y[fit], 1, 2, 20,
                              res.chosen_lr[kind] / 2, renorm=A.short_renorm_schedule(20),
                              optimizer="sgd")
        with torch.no_grad():
            acc = (net.eval()(Xt).argmax(1) == yt).double().mean().item()
        assert abs(acc - res.eval_acc[kind][0, 1]) <= 1 / 24 + 1e-12
    for kind in ("none", "gn"):  # no batch statistics: both modes are one computation
        np.testing.assert_array_equal(res.eval_acc[kind], res.train_mode_acc[kind])


def test_per_step_renorm_factors_truth_at_step_zero():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(50, 8, 8, generator=g)
    rnn = A.TinyRNN("bn", hidden=6, seed=0)
    with torch.no_grad():  # h_0 = 0, so a_0 = W_x x_0 + b: put its statistics in the buffers
        a0 = rnn.wx(X[:, 0])
        rnn.norms[0].running_mean.copy_(a0.mean(0))
        rnn.norms[0].running_var.copy_(a0.var(0, unbiased=False))
    r, d = A.per_step_renorm_factors(rnn, X)
    assert r.shape == d.shape == (8, 6)
    np.testing.assert_allclose(r[0], 1.0, atol=1e-5)
    np.testing.assert_allclose(d[0], 0.0, atol=1e-5)
    with pytest.raises(ValueError):
        A.per_step_renorm_factors(A.TinyRNN("ln"), X)


# ------------------------------------------------------------- weight and spectral norm


def test_weightnorm_descent_norm_growth_and_gradient():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 5))
    y = (X[:, 0] + 0.3 * rng.standard_normal(60) > 0).astype(float)
    lr = 0.5
    rec = A.weightnorm_descent(X, y, lr=lr, steps=30, seed=1, g0=2.0)
    # the gradient wrt v is orthogonal to v, so ||v||^2 grows by exactly lr^2 ||grad||^2
    np.testing.assert_allclose(rec["v_norm"][1:] ** 2,
                               rec["v_norm"][:-1] ** 2 + lr**2 * rec["grad_norm"][:-1] ** 2,
                               rtol=1e-10)
    assert np.max(np.abs(rec["v_dot_grad"])) < 1e-12
    assert rec["loss"][-1] < rec["loss"][0]
    # step 0 against torch autograd
    v = torch.tensor(np.random.default_rng(1).standard_normal(5), requires_grad=True)
    g = torch.tensor(2.0, dtype=torch.float64)
    z = torch.from_numpy(X) @ (g * v / v.norm())
    loss = F.binary_cross_entropy_with_logits(z, torch.from_numpy(y))
    loss.backward()
    assert rec["loss"][0] == pytest.approx(loss.item(), rel=1e-12)
    assert rec["grad_norm"][0] == pytest.approx(v.grad.norm().item(), rel=1e-10)


def test_power_iteration_errors_rate():
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((12, 6)))
    V, _ = np.linalg.qr(rng.standard_normal((8, 6)))
    s = np.array([2.0, 1.0, 0.6, 0.5, 0.2, 0.1])
    W = U @ np.diag(s) @ V.T
    err = A.power_iteration_errors(W, 8, seed=1)
    assert err[-1] < 1e-8
    # one iteration applies W^T W to v: the error of sigma = ||W^T u|| shrinks by
    # (sigma_2 / sigma_1)^4 = 1/16 per iteration
    np.testing.assert_allclose(err[2:6] / err[1:5], 1 / 16, rtol=0.05)


def test_lipschitz_ratios_bounded_by_spectral_norms():
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((16, 5)), rng.standard_normal((16, 16)), rng.standard_normal((3, 16))]
    bound = np.prod([np.linalg.svd(W, compute_uv=False)[0] for W in Ws])
    ratios = A.lipschitz_ratios(Ws, n_pairs=500, seed=2)
    assert ratios.shape == (500,) and np.all(ratios <= bound * (1 + 1e-12))
    sn = [W / np.linalg.svd(W, compute_uv=False)[0] for W in Ws]
    assert np.all(A.lipschitz_ratios(sn, n_pairs=500, seed=2) <= 1 + 1e-12)
    # one linear layer: the ratio reaches sigma_1 along the top right-singular vector
    single = A.lipschitz_ratios([Ws[0]], n_pairs=2000, seed=3, scale=1.0)
    assert single.max() > 0.7 * np.linalg.svd(Ws[0], compute_uv=False)[0]


# --------------------------------------------------------------------------- table facts


def test_table_facts():
    assert A.batch_dependence("batch") > 0.1
    for kind in ("layer", "instance", "group"):
        assert A.batch_dependence(kind) == 0.0
    assert A.train_eval_difference("batch") > 0.1
    for kind in ("layer", "instance", "group"):
        assert A.train_eval_difference(kind) == 0.0
    assert A.batch_of_one("batch").startswith("error")
    assert A.batch_of_one("instance").startswith("error")
    assert A.batch_of_one("layer") == "works"
    assert A.batch_of_one("group") == "works"
    assert A.batch_of_one("batch", spatial=True) == "works"


def test_jacobian_norms_against_torch_and_bound():
    rng = np.random.default_rng(4)
    Ws = [rng.standard_normal((7, 4)), rng.standard_normal((6, 7)), rng.standard_normal((3, 6))]
    norms = A.jacobian_norms(Ws, n_points=5, seed=1)
    xs = np.random.default_rng(1).standard_normal((5, 4))

    def f(x):
        for i, W in enumerate(Ws):
            x = torch.from_numpy(W) @ x
            if i < len(Ws) - 1:
                x = torch.relu(x)
        return x

    for x, got in zip(xs, norms):
        J = torch.autograd.functional.jacobian(f, torch.from_numpy(x)).numpy()
        assert got == pytest.approx(np.linalg.norm(J, 2), rel=1e-12)
    bound = np.prod([np.linalg.svd(W, compute_uv=False)[0] for W in Ws])
    assert np.all(A.jacobian_norms(Ws, n_points=200, seed=2) <= bound * (1 + 1e-12))
