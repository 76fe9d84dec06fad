"""Models of answers of assignment 05-ics, right where normlab has no reference for the graded function, and wrong (one recognised mistake each)."""

from __future__ import annotations

import functools

import numpy as np

DRIFT_MISTAKES = (None, "units_axis", "pooled", "signed", "unbiased_std", "rel_first_std")


def drift_statistics(H, mistake=None) -> dict:
    """How far the inputs of a layer moved, from raw recordings ``H`` (P, B, U): the layer's
    inputs at P times on the same probe batch of B examples, U units.

    Per unit, over the probe batch: mean ``mu_t`` and biased std ``sigma_t`` (what
    ``normlab.ics.probe_stats`` records); then ``drift_summary``'s ``drift``,
    ``jump`` and ``rel_jump``, as floats. ``mistake``: one of ``DRIFT_MISTAKES``.
    """
    from normlab.ics import drift_summary

    if mistake not in DRIFT_MISTAKES:
        raise ValueError(f"unknown drift mistake {mistake!r}")
    H = np.asarray(H, dtype=np.float64)
    if mistake == "units_axis":  # per example, over the units
        mu, sd = H.mean(axis=2), H.std(axis=2)
    elif mistake == "pooled":  # one mean and spread per probe, over examples and units
        mu, sd = H.mean(axis=(1, 2))[:, None], H.std(axis=(1, 2))[:, None]
    else:
        mu, sd = H.mean(axis=1), H.std(axis=1, ddof=1 if mistake == "unbiased_std" else 0)
    if mistake == "signed":
        jump = float(np.diff(mu, axis=0).mean())
        return {"drift": float((mu[-1] - mu[0]).mean()), "jump": jump,
                "rel_jump": jump / float(sd.mean())}
    s = drift_summary(mu[:, None, :], sd[:, None, :])
    out = {k: float(s[k][0]) for k in ("drift", "jump", "rel_jump")}
    if mistake == "rel_first_std":
        out["rel_jump"] = out["jump"] / float(sd[0].mean())
    return out


def _grads(loss_fn, params, names):
    import torch

    p = {k: v.detach().clone().requires_grad_(k in names) for k, v in params.items()}
    loss = loss_fn(p)
    gs = torch.autograd.grad(loss, [p[k] for k in names], allow_unused=True)
    return loss.detach(), {k: (torch.zeros_like(p[k]) if g is None else g)
                           for k, g in zip(names, gs)}


GC_MISTAKES = ("updates_target", "updates_all", "ascent", "norm_of_g_prime", "relative",
               "cos_not_normalized")


def gradient_change_variant(loss_fn, params, target, preceding, lr, mistake) -> dict:
    """``diff`` and ``cos`` of Santurkar et al.'s gradient change of ``target`` (see
    ``normlab.ics.gradient_change``) computed with one of ``GC_MISTAKES``."""
    import torch

    if mistake not in GC_MISTAKES:
        raise ValueError(f"unknown gradient-change mistake {mistake!r}")
    if mistake == "updates_target":
        moving = [target]
    elif mistake == "updates_all":
        moving = list(params)
    else:
        moving = list(preceding)
    names = list(dict.fromkeys(moving + [target]))
    _, g = _grads(loss_fn, params, names)
    sign = -1.0 if mistake == "ascent" else 1.0
    moved = dict(params)
    with torch.no_grad():
        for k in moving:
            moved[k] = params[k].detach() - sign * lr * g[k]
    _, g2 = _grads(loss_fn, moved, [target])
    G, G2 = g[target].reshape(-1).double(), g2[target].reshape(-1).double()
    diff = float((G - G2).norm())
    cos = float(G @ G2 / (G.norm() * G2.norm()))
    if mistake == "norm_of_g_prime":
        diff = float(G2.norm())
    elif mistake == "relative":
        diff = diff / float(G.norm())
    elif mistake == "cos_not_normalized":
        cos = float(G @ G2)
    return {"diff": diff, "cos": cos}


LANDSCAPE_MISTAKES = ("ascent", "normalized_direction", "new_gradient_norm",
                      "beta_not_normalized", "beta_mean")


def landscape_variant(loss_fn, params, step_sizes, mistake) -> dict:
    """``loss`` (S,), ``grad_change`` (S,) and ``beta`` of the landscape along the gradient
    (``normlab.ics.landscape_along_gradient``), with one of
    ``LANDSCAPE_MISTAKES``."""
    import torch

    if mistake not in LANDSCAPE_MISTAKES:
        raise ValueError(f"unknown landscape mistake {mistake!r}")
    names = list(params)
    _, g = _grads(loss_fn, params, names)
    gflat = torch.cat([g[k].reshape(-1) for k in names]).double()
    gnorm = float(gflat.norm())
    direction = {k: g[k] / gnorm for k in names} if mistake == "normalized_direction" else g
    sign = -1.0 if mistake == "ascent" else 1.0
    losses, changes = [], []
    for eta in step_sizes:
        moved = {k: params[k].detach() - sign * eta * direction[k] for k in names}
        loss, g2 = _grads(loss_fn, moved, names)
        g2flat = torch.cat([g2[k].reshape(-1) for k in names]).double()
        losses.append(float(loss))
        changes.append(float((g2flat.norm() if mistake == "new_gradient_norm"
                              else (g2flat - gflat).norm())))
    etas = np.asarray(step_sizes, dtype=np.float64)
    ratio = np.asarray(changes) / etas
    if mistake != "beta_not_normalized":
        ratio = ratio / gnorm
    beta = float(ratio.mean() if mistake == "beta_mean" else ratio.max())
    return {"loss": np.array(losses), "grad_change": np.array(changes), "beta": beta}


EXPERIMENT_MISTAKES = (None, "eval_mode_forgotten", "train_mode_not_restored",
                       "step_loss_mean", "test_loss", "same_order_every_epoch",
                       "bias_before_bn", "bn_after_relu")
EXPERIMENT = {"hidden": (64, 64), "batch_size": 32, "lr": 0.1, "data_seed": 0}


@functools.lru_cache(maxsize=1)
def _article002_tensors():
    from normlab.data import article002_classification, to_tensors

    return to_tensors(article002_classification(seed=EXPERIMENT["data_seed"]))


def _article002_model(use_bn: bool, mistake):
    import torch.nn as nn

    layers, width = [], 20
    for h in EXPERIMENT["hidden"]:
        if use_bn and mistake == "bn_after_relu":  # Keras's Dense(relu) + BN
            layers += [nn.Linear(width, h), nn.ReLU(), nn.BatchNorm1d(h)]
        else:
            layers.append(nn.Linear(width, h, bias=not use_bn or mistake == "bias_before_bn"))
            if use_bn:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


@functools.lru_cache(maxsize=64)
def _article002_run(seed: int, use_bn: bool, epochs: int, mistake) -> tuple:
    import torch
    import torch.nn.functional as F

    X, y, X_test, y_test = _article002_tensors()
    torch.manual_seed(seed)
    model = _article002_model(use_bn, mistake)
    params = list(model.parameters())
    gen = torch.Generator().manual_seed(seed)
    bs, lr, n = EXPERIMENT["batch_size"], EXPERIMENT["lr"], len(X)
    losses = []
    model.train()
    for _ in range(epochs):
        if mistake != "train_mode_not_restored":
            model.train()
        if mistake == "same_order_every_epoch":
            gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(n, generator=gen)
        steps = []
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            loss = F.binary_cross_entropy_with_logits(model(X[idx])[:, 0], y[idx].float())
            for p in params:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
            steps.append(loss.item())
        if mistake == "step_loss_mean":
            losses.append(float(np.mean(steps)))
            continue
        if mistake != "eval_mode_forgotten":
            model.eval()
        Xe, ye = (X_test, y_test) if mistake == "test_loss" else (X, y)
        with torch.no_grad():
            losses.append(F.binary_cross_entropy_with_logits(model(Xe)[:, 0], ye.float()).item())
    return tuple(losses)


def article002_run(seed: int, use_bn: bool, epochs: int, mistake=None) -> np.ndarray:
    """Per-epoch training losses of article 002's MLP (20 -> 64 -> 64 -> 1, ReLU, BN before
    each activation when ``use_bn`` with no bias before it) on article 002's data (seed 0):
    ``torch.manual_seed(seed)`` before building the model, mini-batches of 32 in the order of
    ``torch.randperm`` with a ``torch.Generator`` seeded with ``seed`` (one generator for the
    whole run), plain SGD with learning rate 0.1, and after each epoch the mean binary
    cross-entropy on the 800 training examples in eval mode. Equal to ``normlab.training``'s
    ``train(mlp(20, (64, 64), norm), data, optimizer="sgd", lr=0.1, seed=seed)`` up to float32
    rounding (tests/grading/test_grading_assignments.py). ``mistake``: one of ``EXPERIMENT_MISTAKES``.
    """
    if mistake not in EXPERIMENT_MISTAKES:
        raise ValueError(f"unknown experiment mistake {mistake!r}")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the run is tiny; one thread is fastest and reproducible
    try:
        return np.array(_article002_run(int(seed), bool(use_bn), int(epochs), mistake))
    finally:
        torch.set_num_threads(threads)
