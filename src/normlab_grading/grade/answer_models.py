"""Models of student answers for the graded notebooks 04-06, right and wrong.

The assignments' recognised mistakes (``normlab_grading.grade.assignments.ch04_*``, ``ch05_*``,
``ch06_*``) say what a student with one particular mistake computes. Those computations
live here, not in ``normlab_grading.grade``: the grading tripwire lets graded code call anything
in ``normlab_grading.grade`` but nothing else of normlab, and a model of a mistake is one switch
away from the right answer. Where normlab's public API has no reference for a graded
function (replaying a sequence of BatchNorm1d calls with a mistake, the layer-input drift
of raw activations, article 002's training run with a bug), the right answer is computed
here too, and the tests check it against normlab's own implementation.

Nothing here is part of the course's reference API; the chapters do not use it.

- ``bn_layer_replay``: a torch-exact BatchNorm1d (numpy) replaying train/eval calls, with
  one of the classic running-statistics mistakes;
- ``fold_variant``, ``keras_momentum_variant``: folding BN into the previous layer, wrongly;
- ``drift_statistics``: mean and spread of a layer's inputs per unit, then
  ``normlab.ics.drift_summary``; with a mistake;
- ``gradient_change_variant``, ``landscape_variant``: Santurkar et al.'s measurements done
  wrongly (the right ones are ``normlab.ics``'s);
- ``article002_run``: article 002's MLP trained in torch, as ``normlab.training`` does it or
  with one of the usual experiment bugs;
- ``norm_variant``, ``weightnorm_variant``, ``spectral_variant``, ``renorm_variant``: the
  alternatives of chapter 6 done wrongly.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "bn_layer_replay",
    "fold_variant",
    "drift_statistics",
    "gradient_change_variant",
    "landscape_variant",
    "article002_run",
    "norm_variant",
    "groupnorm_variant",
    "weightnorm_variant",
    "spectral_variant",
    "renorm_forward_variant",
    "renorm_backward_variant",
]


# ============================================================================ chapter 4
LAYER_MISTAKES = (
    None,
    "keras_momentum",  # running = m * running + (1 - m) * batch
    "biased_running_var",  # running_var blends the biased batch variance
    "running_var_init_zero",  # running_var starts at 0 (CS231n's skeleton)
    "no_num_batches_tracked",  # num_batches_tracked never counted
    "unbiased_forward",  # the training forward normalizes with the unbiased variance
    "momentum_none_as_default",  # momentum=None treated as 0.1
    "cumulative_off_by_one",  # f = 1 / (num_batches_tracked + 1): initial values count
    "batch_stats_in_eval",  # eval normalizes with the batch statistics
    "updates_in_eval",  # eval normalizes with the running stats, then updates them
    "eps_outside_sqrt",  # sqrt(var) + eps
    "eps_ignored",  # sqrt(var)
    "n_is_batch_size",  # (N, C, L): unbiased correction with n = N instead of N * L
    "reshape_without_transpose",  # (N, C, L) reshaped straight to (N * L, C)
)


def _bn_stats(x):
    """Batch mean and biased variance per channel, shape (C,)."""
    axes = (0,) + tuple(range(2, x.ndim))
    mu = x.mean(axis=axes)
    keep = (1, -1) + (1,) * (x.ndim - 2)
    var = ((x - mu.reshape(keep)) ** 2).mean(axis=axes)
    return mu, var


def _normalize(x, mu, var, eps, mistake):
    keep = (1, -1) + (1,) * (x.ndim - 2)
    if mistake == "eps_outside_sqrt":
        std = np.sqrt(var) + eps
    elif mistake == "eps_ignored":
        std = np.sqrt(var)
    else:
        std = np.sqrt(var + eps)
    return (x - mu.reshape(keep)) / std.reshape(keep)


def bn_layer_replay(case, mistake=None) -> dict:
    """Outputs of a BatchNorm1d replaying ``case``'s calls, as ``torch.nn.BatchNorm1d``
    (``mistake=None``) or with one of ``LAYER_MISTAKES``.

    case: ``gamma``, ``beta`` (C,), ``eps``, ``momentum`` (float or None), ``modes`` (a
    tuple of "train"/"eval"), and one input ``x<i>`` per mode. Returns ``out<i>`` for every
    call, then ``running_mean``, ``running_var``, ``num_batches_tracked`` after the last;
    if the case has ``x_eval`` (a batch of one), also ``eval_out``, the eval-mode output for
    it after the calls.
    """
    if mistake not in LAYER_MISTAKES:
        raise ValueError(f"unknown layer mistake {mistake!r}")
    gamma, beta, eps, m = case["gamma"], case["beta"], case["eps"], case["momentum"]
    c = gamma.shape[0]
    rm = np.zeros(c)
    rv = np.zeros(c) if mistake == "running_var_init_zero" else np.ones(c)
    t = 0
    outs = {}
    for i, mode in enumerate(case["modes"]):
        x = np.asarray(case[f"x{i}"], dtype=np.float64)
        flat = mistake == "reshape_without_transpose" and x.ndim == 3
        xv = x.reshape(-1, c) if flat else x
        keep = (1, -1) + (1,) * (xv.ndim - 2)
        n = xv.size // c
        if mistake == "n_is_batch_size":
            n = x.shape[0]
        train = mode == "train"
        if train or mistake == "batch_stats_in_eval":
            mu, var = _bn_stats(xv)
            var_used = var * n / (n - 1) if mistake == "unbiased_forward" and train else var
            x_hat = _normalize(xv, mu, var_used, eps, mistake)
        else:
            x_hat = _normalize(xv, rm, rv, eps, mistake)
            mu, var = _bn_stats(xv) if mistake == "updates_in_eval" else (None, None)
        if train or mistake == "updates_in_eval":
            if mistake != "no_num_batches_tracked":
                t += 1
            if m is None:
                if mistake == "momentum_none_as_default":
                    f = 0.1
                elif mistake == "cumulative_off_by_one":
                    f = 1.0 / (t + 1)
                else:
                    f = 1.0 / t
            else:
                f = m
            unbiased = var if mistake == "biased_running_var" else var * (n / (n - 1))
            if mistake == "keras_momentum":
                rm = f * rm + (1 - f) * mu
                rv = f * rv + (1 - f) * unbiased
            else:
                rm = (1 - f) * rm + f * mu
                rv = (1 - f) * rv + f * unbiased
        out = gamma.reshape(keep) * x_hat + beta.reshape(keep)
        outs[f"out{i}"] = out.reshape(x.shape) if flat else out
    if "x_eval" in case:  # then a batch of one in eval mode (after a refused training call)
        x = np.asarray(case["x_eval"], dtype=np.float64)
        if mistake == "batch_stats_in_eval":
            x_hat = _normalize(x, *_bn_stats(x), eps, mistake)
        else:
            x_hat = _normalize(x, rm, rv, eps, mistake)
        outs["eval_out"] = gamma * x_hat + beta
    outs.update(running_mean=rm, running_var=rv, num_batches_tracked=np.array(t))
    return outs


FOLD_MISTAKES = ("bias_no_shift", "bias_no_beta", "bias_no_mean", "bias_not_scaled",
                 "scales_columns", "no_sqrt")


def fold_variant(case, mistake) -> dict:
    """Folded ``W``, ``b`` of a Linear (out, in) or conv (out, in, kh, kw) followed by an
    eval-mode BN, computed with one of ``FOLD_MISTAKES``."""
    if mistake not in FOLD_MISTAKES:
        raise ValueError(f"unknown folding mistake {mistake!r}")
    W = case["W"]
    b = case["b"] if case.get("b") is not None else np.zeros(W.shape[0])
    gamma, beta, mean, var, eps = (case[k] for k in ("gamma", "beta", "running_mean",
                                                       "running_var", "eps"))
    s = gamma / (var + eps) if mistake == "no_sqrt" else gamma / np.sqrt(var + eps)
    if mistake == "scales_columns":
        Wf = W * s.reshape((1, -1) + (1,) * (W.ndim - 2))
    else:
        Wf = W * s.reshape((-1,) + (1,) * (W.ndim - 1))
    bf = {
        "bias_no_shift": b * s,
        "bias_no_beta": (b - mean) * s,
        "bias_no_mean": b * s + beta,
        "bias_not_scaled": b - mean * s + beta,
    }.get(mistake, (b - mean) * s + beta)
    if mistake == "scales_columns":
        return {"W": Wf}
    if mistake.startswith("bias"):
        return {"b": bf}
    return {"W": Wf, "b": bf}


# ============================================================================ chapter 5
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
    rounding (tests/test_answer_models.py). ``mistake``: one of ``EXPERIMENT_MISTAKES``.
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


# ============================================================================ chapter 6
def _standardize(x, axes, eps, ddof=0, eps_mode="inside"):
    axes = tuple(axes)
    mu = x.mean(axis=axes, keepdims=True)
    n = x.size // mu.size
    var = ((x - mu) ** 2).sum(axis=axes, keepdims=True) / (n - ddof)
    std = np.sqrt(var) + eps if eps_mode == "outside" else np.sqrt(var + eps)
    return (x - mu) / std


NORM_MISTAKES = ("unbiased", "eps_outside_sqrt", "complement_axes", "batch_axis_included",
                 "last_axis_only", "channels_included")


def norm_variant(case, kind, mistake) -> np.ndarray:
    """The output of ``normalize`` (``kind="normalize"``), ``layer_norm`` or
    ``instance_norm`` on ``case`` computed with one of ``NORM_MISTAKES``."""
    if mistake not in NORM_MISTAKES:
        raise ValueError(f"unknown normalization mistake {mistake!r}")
    x, eps = case["x"], case["eps"]
    if kind == "normalize":
        axes = tuple(case["axes"])
    elif kind == "layer_norm":
        axes = tuple(range(1, x.ndim))
    elif kind == "instance_norm":
        axes = tuple(range(2, x.ndim))
    else:
        raise ValueError(kind)
    if mistake == "complement_axes":
        axes = tuple(a for a in range(x.ndim) if a not in axes)
    elif mistake == "batch_axis_included":
        axes = (0,) + axes
    elif mistake == "last_axis_only":
        axes = (x.ndim - 1,)
    elif mistake == "channels_included":
        axes = (1,) + axes
    x_hat = _standardize(x, axes, eps, ddof=1 if mistake == "unbiased" else 0,
                         eps_mode="outside" if mistake == "eps_outside_sqrt" else "inside")
    if kind == "normalize":
        return x_hat
    if kind == "layer_norm":
        return case["gamma"] * x_hat + case["beta"]
    keep = (1, -1) + (1,) * (x.ndim - 2)
    return case["gamma"].reshape(keep) * x_hat + case["beta"].reshape(keep)


GROUP_MISTAKES = ("interleaved_groups", "no_affine", "groups_over_batch")


def groupnorm_variant(case, mistake) -> np.ndarray:
    """``group_norm`` on ``case`` with one of ``GROUP_MISTAKES``."""
    x, G, eps = case["x"], case["num_groups"], case["eps"]
    n, c = x.shape[:2]
    rest = x.shape[2:]
    if mistake == "interleaved_groups":  # channel c in group c % G
        xg = x.reshape(n, c // G, G, *rest)
        axes = (1,) + tuple(range(3, xg.ndim))
    elif mistake in ("no_affine", "groups_over_batch"):
        xg = x.reshape(n, G, c // G, *rest)
        axes = tuple(range(2, xg.ndim))
        if mistake == "groups_over_batch":
            axes = (0,) + axes
    else:
        raise ValueError(f"unknown group-norm mistake {mistake!r}")
    x_hat = _standardize(xg, axes, eps).reshape(x.shape)
    if mistake == "no_affine":
        return x_hat
    keep = (1, -1) + (1,) * len(rest)
    return case["gamma"].reshape(keep) * x_hat + case["beta"].reshape(keep)


def groupnorm_x_hat(case) -> np.ndarray:
    """Group norm's normalized input (no affine), shape of x."""
    return groupnorm_variant(case, "no_affine")


WEIGHTNORM_MISTAKES = ("column_norm", "frobenius", "not_summed", "summed_over_rows",
                       "uses_w", "norm_constant", "second_term_sign", "second_term_no_g")


def weightnorm_variant(case, mistake) -> dict:
    """``w`` (forward) or ``dv``, ``dg`` (backward) of weight norm with ``dim=0`` (v (out,
    in), g (out,)) computed with one of ``WEIGHTNORM_MISTAKES``."""
    v, g = case["v"], case["g"]
    row = np.sqrt((v * v).sum(axis=1))
    if mistake == "column_norm":
        return {"w": g[:, None] * v / np.sqrt((v * v).sum(axis=0))[None, :]}
    if mistake == "frobenius":
        return {"w": g[:, None] * v / np.sqrt((v * v).sum())}
    dw = case["dw"]
    dg = (dw * v).sum(axis=1) / row
    if mistake == "not_summed":
        return {"dg": dw * v / row[:, None]}
    if mistake == "summed_over_rows":
        return {"dg": (dw * v).sum(axis=0) / np.sqrt((v * v).sum(axis=0))}
    if mistake == "uses_w":
        return {"dg": (dw * g[:, None] * v / row[:, None]).sum(axis=1)}
    first = (g / row)[:, None] * dw
    if mistake == "norm_constant":
        return {"dv": first}
    if mistake == "second_term_sign":
        return {"dv": first + (g * dg / row ** 2)[:, None] * v}
    if mistake == "second_term_no_g":
        return {"dv": first - (dg / row ** 2)[:, None] * v}
    raise ValueError(f"unknown weight-norm mistake {mistake!r}")


SPECTRAL_MISTAKES = ("v_first", "v_not_updated", "exact_sigma", "frobenius_sigma",
                     "old_vectors_returned", "no_eps", "eps_added")


def spectral_variant(case, mistake) -> dict:
    """``W_sn``, ``u``, ``v``, ``sigma`` of torch's spectral norm (training mode, dim=0,
    W 2-D) computed with one of ``SPECTRAL_MISTAKES``."""
    if mistake not in SPECTRAL_MISTAKES:
        raise ValueError(f"unknown spectral-norm mistake {mistake!r}")
    W, u, v = case["W"], case["u"], case["v"]
    eps, n_iter = case["eps"], case["n_power_iterations"]

    def normalize(a):
        norm = float(np.sqrt(np.sum(a * a)))
        if mistake == "no_eps":
            return a / norm
        if mistake == "eps_added":
            return a / (norm + eps)
        return a / max(norm, eps)

    u0, v0 = u, v
    for _ in range(n_iter):
        if mistake == "v_first":
            v = normalize(W.T @ u)
            u = normalize(W @ v)
        else:
            u = normalize(W @ v)
            if mistake != "v_not_updated":
                v = normalize(W.T @ u)
    sigma = float(u @ (W @ v))
    if mistake == "exact_sigma":
        sigma = float(np.linalg.svd(W, compute_uv=False)[0])
        return {"W_sn": W / sigma, "sigma": sigma}
    if mistake == "frobenius_sigma":
        sigma = float(np.sqrt(np.sum(W * W)))
        return {"W_sn": W / sigma, "sigma": sigma}
    if mistake == "old_vectors_returned":
        return {"u": u0, "v": v0}
    out = {"W_sn": W / sigma, "u": u, "v": v, "sigma": sigma}
    if mistake == "v_not_updated":
        out.pop("v")  # v is the input v, which may look right by accident
    return out


RENORM_MISTAKES = ("not_clipped", "swapped", "r_inverted", "d_sign", "updated_first",
                   "biased_running_var", "through_r_d", "r_ignored", "dgamma_uses_x0")


def renorm_forward_variant(case, mistake) -> dict:
    """``out``, ``r``, ``d``, ``running_mean``, ``running_var`` of batch renormalization
    (``normlab.batchrenorm_forward``'s conventions, x (N, C)) with one of
    ``RENORM_MISTAKES``; only the outputs the mistake changes."""
    x, gamma, beta = case["x"], case["gamma"], case["beta"]
    rm, rv, eps, m = case["running_mean"], case["running_var"], case["eps"], case["momentum"]
    r_max, d_max = case["r_max"], case["d_max"]
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    n = x.shape[0]
    new_rm = (1 - m) * rm + m * mu
    new_rv = (1 - m) * rv + m * (var if mistake == "biased_running_var" else var * n / (n - 1))
    if mistake == "biased_running_var":
        return {"running_var": new_rv}
    s_b = np.sqrt(var + eps)
    ref_m, ref_v = (new_rm, new_rv) if mistake == "updated_first" else (rm, rv)
    sigma = np.sqrt(ref_v + eps)
    r = sigma / s_b if mistake == "r_inverted" else s_b / sigma
    d = (ref_m - mu) / sigma if mistake == "d_sign" else (mu - ref_m) / sigma
    if mistake != "not_clipped":
        r, d = np.clip(r, 1 / r_max, r_max), np.clip(d, -d_max, d_max)
    x0 = (x - mu) / s_b
    x_hat = x0 * d + r if mistake == "swapped" else x0 * r + d
    out = gamma * x_hat + beta
    keys = {"not_clipped": ("out", "r", "d"), "swapped": ("out",), "r_inverted": ("out", "r"),
            "d_sign": ("out", "d"), "updated_first": ("out", "r", "d")}[mistake]
    return {k: v for k, v in (("out", out), ("r", r), ("d", d)) if k in keys}


def renorm_backward_variant(case, mistake) -> dict:
    """``dx`` / ``dgamma`` of batch renormalization's backward (cache as the notebook
    documents: x0, r, d, sigma_B, sigma, gamma) with one of ``RENORM_MISTAKES``."""
    dout, x0, r, d = case["dout"], case["x0"], case["r"], case["d"]
    s_b, sigma, gamma = case["sigma_B"], case["sigma"], case["gamma"]
    if mistake == "through_r_d":  # r = sigma_B / sigma, d = (mu_B - mu) / sigma not held fixed
        return {"dx": gamma * dout / sigma}
    if mistake == "r_ignored":
        dx = gamma / s_b * (dout - dout.mean(axis=0) - x0 * (dout * x0).mean(axis=0))
        return {"dx": dx}
    if mistake == "dgamma_uses_x0":
        return {"dgamma": (dout * x0).sum(axis=0)}
    raise ValueError(f"unknown renorm backward mistake {mistake!r}")
