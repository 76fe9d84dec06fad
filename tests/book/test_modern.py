"""Chapter 7's experiment code (normlab_book.modern) against independent truths.

Truths used: an ensemble member must compute exactly what the same seed computes alone (the
members share nothing); the residual blocks rebuilt here from torch.nn layers; the definitions
of layer norm and RMSNorm (a post-LN block's output has, per token, mean 0 and variance 1 at
initialization); a zero-initialized last gamma makes every residual branch vanish; torch
autograd for the per-block gradient norms.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from normlab_book import alternatives as A
from normlab_book import modern as M

torch.set_num_threads(1)


def images(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (n,), generator=g)


def member_slice(ens, k, out):
    return out[:, k]


@pytest.mark.parametrize("kind", M.RESNET_KINDS)
def test_resnet_members_are_independent(kind):
    X, y = images()
    pair = M.ResNetEnsemble(kind, [3, 7], depth=3, width=4).double()
    alone = M.ResNetEnsemble(kind, [7], depth=3, width=4).double()
    for mode in (True, False):
        pair.train(mode)
        alone.train(mode)
        torch.testing.assert_close(pair(X)[:, 1], alone(X)[:, 0], rtol=1e-10, atol=1e-12)
    # trained with SGD on its own batches, member 1 ends where the seed-7 net alone ends
    A.train_ensemble(pair, X, y, [3, 7], batch_size=6, steps=4, lr=[0.05, 0.1], optimizer="sgd")
    A.train_ensemble(alone, X, y, [7], batch_size=6, steps=4, lr=0.1, optimizer="sgd")
    pair.eval()
    alone.eval()
    torch.testing.assert_close(pair(X)[:, 1], alone(X)[:, 0], rtol=1e-8, atol=1e-10)


def reference_resnet(net, x, kind):
    """One member (K=1) rebuilt from torch.nn layers, training-mode batch norm."""
    C = net.width
    conv = lambda w: (lambda h: F.conv2d(h, w, padding=1))
    bn = lambda: nn.BatchNorm2d(C).double().train()
    h = conv(net.stem)(x)
    h = bn()(h) if kind != "none" else h
    h = F.max_pool2d(F.relu(h), 2)
    for i in range(net.depth):
        c1, c2 = conv(net.convs[2 * i]), conv(net.convs[2 * i + 1])
        if kind == "post":
            h = F.relu(h + bn()(c2(F.relu(bn()(c1(h))))))
        elif kind == "post_zero":
            last = bn()
            with torch.no_grad():
                last.weight.zero_()
            h = F.relu(h + last(c2(F.relu(bn()(c1(h))))))
        elif kind == "after_add":
            h = F.relu(bn()(h + c2(F.relu(bn()(c1(h))))))
        elif kind == "pre":
            h = h + c2(F.relu(bn()(c1(F.relu(bn()(h))))))
        else:
            h = F.relu(h + c2(F.relu(c1(h))))
    if kind == "pre":
        h = F.relu(bn()(h))
    return h.mean((2, 3)) @ net.head_weight[0] + net.head_bias[0]


@pytest.mark.parametrize("kind", M.RESNET_KINDS)
def test_resnet_blocks_match_torch_layers(kind):
    X, _ = images(10)
    net = M.ResNetEnsemble(kind, [5], depth=3, width=4).double().train()
    with torch.no_grad():
        torch.testing.assert_close(net(X)[:, 0], reference_resnet(net, X, kind), rtol=1e-10,
                                   atol=1e-12)


def test_zero_gamma_makes_every_block_the_identity_at_init():
    X, _ = images(32)
    stds = M.trunk_stds(M.ResNetEnsemble("post_zero", [0, 1], depth=5, width=4).double(), X)
    assert stds.shape == (5, 2)
    np.testing.assert_allclose(stds, stds[:1].repeat(5, 0), rtol=1e-12)
    grows = M.trunk_stds(M.ResNetEnsemble("post", [0, 1], depth=5, width=4).double(), X)
    assert np.all(grows[-1] > grows[0])


def test_trunk_stds_keeps_running_statistics():
    X, _ = images(16)
    net = M.ResNetEnsemble("post", [0, 1], depth=2, width=4).double()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    M.trunk_stds(net, X)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("kind", M.TRANSFORMER_KINDS)
def test_transformer_members_are_independent(kind):
    X, y = images()
    seq = X[:, 0]
    pair = M.TransformerEnsemble(kind, [2, 9], depth=2, d_model=8).double()
    alone = M.TransformerEnsemble(kind, [9], depth=2, d_model=8).double()
    torch.testing.assert_close(pair(seq)[:, 1], alone(seq)[:, 0], rtol=1e-10, atol=1e-12)
    g_pair = M.layer_grad_norms(pair, seq, y)
    g_alone = M.layer_grad_norms(alone, seq, y)
    np.testing.assert_allclose(g_pair[:, 1], g_alone[:, 0], rtol=1e-10)
    A.train_ensemble(pair, seq, y, [2, 9], batch_size=6, steps=3, lr=1e-2)
    A.train_ensemble(alone, seq, y, [9], batch_size=6, steps=3, lr=1e-2)
    torch.testing.assert_close(pair(seq)[:, 1], alone(seq)[:, 0], rtol=1e-8, atol=1e-10)


def test_post_ln_blocks_output_standardized_tokens_and_rms_has_unit_rms():
    X, _ = images(12)
    rec = []
    M.TransformerEnsemble("post_ln", [0, 1], depth=3, d_model=8).double()(X[:, 0], record=rec)
    for h in rec:  # (B, K, T, d): LayerNorm with gain 1 and shift 0 at init
        torch.testing.assert_close(h.mean(-1), torch.zeros(h.shape[:-1], dtype=h.dtype), atol=1e-12, rtol=0)
        torch.testing.assert_close(h.var(-1, unbiased=False), torch.ones(h.shape[:-1], dtype=h.dtype),
                                   atol=1e-3, rtol=0)  # eps = 1e-5 in the denominator
    net = M.TransformerEnsemble("pre_rms", [0], depth=1, d_model=8).double()
    z = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    out = net._norm(z, 0, 0)
    ref = z / torch.sqrt((z ** 2).mean(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


def test_layer_grad_norms_against_autograd_per_block():
    X, y = images(16)
    seq = X[:, 0]
    net = M.TransformerEnsemble("pre_ln", [4], depth=3, d_model=8).double()
    got = M.layer_grad_norms(net, seq, y)
    loss = F.cross_entropy(net(seq)[:, 0], y)
    for layer in range(3):
        grads = torch.autograd.grad(loss, [net.qkv, net.out, net.w1, net.w2], retain_graph=True)
        expected = torch.sqrt(sum(g[0, layer].pow(2).sum() for g in grads)).item()
        assert got[layer, 0] == pytest.approx(expected, rel=1e-10)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="kind"):
        M.ResNetEnsemble("bn_everywhere", [0])
    with pytest.raises(ValueError, match="kind"):
        M.TransformerEnsemble("sandwich", [0])
    with pytest.raises(ValueError, match="seed"):
        M.ResNetEnsemble("post", [])
    with pytest.raises(ValueError, match="images"):
        M.ResNetEnsemble("post", [0, 1])(torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
def test_linear_warmup_matches_lambda_lr(opt_name):
    # truth: torch's own LambdaLR with the factor min(1, (t + 1) / W)
    W, steps = 4, 7
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(16, 5, generator=g), torch.randn(16, generator=g)
    w0 = torch.randn(5, generator=g)

    def run(warm):
        w = w0.clone().requires_grad_()
        opt = (torch.optim.Adam([w], lr=0.1) if opt_name == "adam"
               else torch.optim.SGD([w], lr=0.1, momentum=0.9))
        sched = None if warm else torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / W))
        for _ in range(steps):
            opt.zero_grad()
            ((X @ w - y) ** 2).mean().backward()
            if warm:
                with M.linear_warmup(W):
                    pass  # a hook left over from a closed block must not act
                opt.step()
            else:
                opt.step()
                sched.step()
        return w.detach()

    def run_warm():
        w = w0.clone().requires_grad_()
        with M.linear_warmup(W):
            opt = (torch.optim.Adam([w], lr=0.1) if opt_name == "adam"
                   else torch.optim.SGD([w], lr=0.1, momentum=0.9))
            used = []
            for _ in range(steps):
                opt.zero_grad()
                ((X @ w - y) ** 2).mean().backward()
                opt.step()
                used.append(opt.param_groups[0]["lr"])
        return w.detach(), used

    w_ref = run(False)
    w_warm, used = run_warm()
    torch.testing.assert_close(w_warm, w_ref, rtol=1e-6, atol=1e-7)
    assert used == pytest.approx([0.1 * min(1.0, (t + 1) / W) for t in range(steps)])
    # outside the block the optimizer is left alone: no warm-up, so a plain run differs
    assert not torch.allclose(run(True), w_ref)


def test_linear_warmup_refuses_bad_steps():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="warmup_steps"):
            with M.linear_warmup(bad):
                pass
