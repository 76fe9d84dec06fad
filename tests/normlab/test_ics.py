"""Tests of normlab.ics (Santurkar et al.'s measurements) against independent truths:
hand-derived gradients of a linear net, closed forms on a quadratic, torch autograd, and
hand-computed drift statistics. Their use on the book's ensembles is tested in
tests/book/test_book_ics.py."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from normlab import ics, training
from normlab.torch_modules import NoisyBatchNorm1d


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_functional_loss_leaves_model_and_noise_stream_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), NoisyBatchNorm1d(8, seed=3), nn.ReLU(), nn.Linear(8, 1))
    x, y = torch.randn(10, 6), torch.randint(0, 2, (10,))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    gen_state = net[1].generator.get_state()
    global_state = torch.get_rng_state()
    loss_fn, params = ics.functional_loss(net, x, y)
    l1, l2 = loss_fn(params), loss_fn(params)
    assert l1.shape == (1,)
    torch.testing.assert_close(l1, l2)  # the same noise at every evaluation
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert torch.equal(net[1].generator.get_state(), gen_state)
    assert torch.equal(torch.get_rng_state(), global_state)
    # the noise is really drawn: a training forward of the module itself differs
    net.train()
    assert not torch.allclose(net(x), net(x))


def _linear_net(W1, W2):
    net = nn.Sequential(nn.Linear(W1.shape[0], W1.shape[1], bias=False),
                        nn.Linear(W2.shape[0], W2.shape[1], bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.as_tensor(W1.T))
        net[1].weight.copy_(torch.as_tensor(W2.T))
    return net


def test_gradient_change_matches_hand_derivation_on_a_linear_net():
    # L = ||X W1 W2 - Y||^2 / (2n): G2 = W1^T X^T R / n with R = X W1 W2 - Y, and one SGD
    # step on W1 (gradient X^T R W2^T / n) changes the gradient of W2.
    rng = np.random.default_rng(0)
    n, d, h, k = 12, 4, 3, 2
    X, Y = rng.normal(size=(n, d)), rng.normal(size=(n, k))
    W1, W2 = rng.normal(size=(d, h)), rng.normal(size=(h, k))
    lr = 0.1
    R = X @ W1 @ W2 - Y
    G = W1.T @ X.T @ R / n
    W1p = W1 - lr * X.T @ R @ W2.T / n
    Gp = W1p.T @ X.T @ (X @ W1p @ W2 - Y) / n
    net = _linear_net(W1, W2)
    mse = lambda out, y: ((out - y) ** 2).sum() / (2 * len(y))  # noqa: E731
    loss_fn, params = ics.functional_loss(net, torch.as_tensor(X), torch.as_tensor(Y), mse)
    res = ics.gradient_change(loss_fn, params, "1.weight", ["0.weight"], lr)
    np.testing.assert_allclose(res["diff"][0], np.linalg.norm(G - Gp), rtol=1e-10)
    np.testing.assert_allclose(res["norm"][0], np.linalg.norm(G), rtol=1e-10)
    np.testing.assert_allclose(res["rel_diff"][0], np.linalg.norm(G - Gp) / np.linalg.norm(G),
                               rtol=1e-10)
    cos = (G * Gp).sum() / np.linalg.norm(G) / np.linalg.norm(Gp)
    np.testing.assert_allclose(res["cos"][0], cos, rtol=1e-10)
    # no change when the preceding layers do not move
    for pre, step in ([], lr), (["0.weight"], 0.0):
        res = ics.gradient_change(loss_fn, params, "1.weight", pre, step)
        assert res["diff"][0] == 0.0 and abs(res["cos"][0] - 1) < 1e-12


def test_landscape_on_a_quadratic_matches_the_closed_form():
    rng = np.random.default_rng(1)
    M = rng.normal(size=(5, 5))
    A = M @ M.T + np.eye(5)
    w = rng.normal(size=5)

    class Quadratic(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.as_tensor(w))

        def forward(self, x):
            return 0.5 * self.w @ torch.as_tensor(A) @ self.w

    etas = [0.01, 0.05, 0.1]
    loss_fn, params = ics.functional_loss(Quadratic(), torch.zeros(1), None, lambda out, y: out)
    res = ics.landscape_along_gradient(loss_fn, params, etas)
    g = A @ w
    np.testing.assert_allclose(res["loss0"][0], 0.5 * w @ A @ w, rtol=1e-12)
    np.testing.assert_allclose(res["grad_norm"][0], np.linalg.norm(g), rtol=1e-12)
    for i, eta in enumerate(etas):
        v = w - eta * g
        np.testing.assert_allclose(res["loss"][i, 0], 0.5 * v @ A @ v, rtol=1e-12)
        np.testing.assert_allclose(res["grad_change"][i, 0], eta * np.linalg.norm(A @ g),
                                   rtol=1e-12)
    losses = [0.5 * (w - e * g) @ A @ (w - e * g) for e in etas]
    np.testing.assert_allclose(res["loss_range"][0], max(losses) - min(losses), rtol=1e-12)
    # ||A g|| / ||g|| is the curvature along g, at most the largest eigenvalue of A
    np.testing.assert_allclose(res["beta"][0], np.linalg.norm(A @ g) / np.linalg.norm(g),
                               rtol=1e-12)
    assert res["beta"][0] <= np.linalg.eigvalsh(A).max() + 1e-12


def test_layer_gradient_norms_of_an_ordinary_module_match_autograd():
    torch.manual_seed(0)
    net = training.mlp(6, hidden=(8, 8), norm="bn", activation=nn.Tanh)
    x, y = torch.randn(16, 6), torch.randint(0, 2, (16,))
    got = ics.layer_gradient_norms(net, x, y)
    out = net(x)[:, 0]
    nn.functional.binary_cross_entropy_with_logits(out, y.float()).backward()
    want = [net[i].weight.grad.norm().item() for i in (0, 3, 6)]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_member_losses_are_each_members_own_loss():
    torch.manual_seed(0)
    logits, y = torch.randn(3, 5, 4), torch.randint(0, 4, (5,))
    want = [nn.functional.cross_entropy(logits[r], y).item() for r in range(3)]
    np.testing.assert_allclose(ics.member_losses(logits, y).numpy(), want, rtol=1e-6)
    logits, y = torch.randn(2, 5, 1), torch.randint(0, 2, (5,))
    want = [nn.functional.binary_cross_entropy_with_logits(logits[r, :, 0], y.float(),
                                                           reduction="sum").item()
            for r in range(2)]
    np.testing.assert_allclose(ics.member_losses(logits, y, "sum").numpy(), want, rtol=1e-6)


def test_drift_summary_on_hand_made_inputs():
    m = np.zeros((3, 1, 2))
    m[:, 0, 0] = [0.0, 1.0, 3.0]  # unit 0 jumps 1 then 2; unit 1 never moves
    s = np.full((3, 1, 2), 2.0)
    s[-1, 0, 1] = 4.0
    out = ics.drift_summary(m, s)
    np.testing.assert_allclose(out["drift"], [1.5])  # (3 + 0) / 2
    np.testing.assert_allclose(out["jump"], [0.75])  # (1 + 2 + 0 + 0) / 4
    np.testing.assert_allclose(out["rel_jump"], [0.75 / (14 / 6)])  # mean spread 14 / 6
    np.testing.assert_allclose(out["std_first"], [2.0])
    np.testing.assert_allclose(out["std_last"], [3.0])
    with pytest.raises(ValueError, match="P >= 2"):
        ics.drift_summary(m[:1], s[:1])
    with pytest.raises(ValueError, match="same shape"):
        ics.drift_summary(m, s[:, :, :1])
