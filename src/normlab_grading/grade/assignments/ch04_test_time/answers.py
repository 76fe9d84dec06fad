"""Models of answers of assignment 04-test-time, right where normlab has no reference for
the graded function, and wrong (one recognised mistake each)."""

from __future__ import annotations

import numpy as np

from ...mistakes import blend, channel_shape, moments, reduce_axes, scale_shift, spread, unbiased

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
    mu, var = moments(x, reduce_axes(x.ndim))
    return mu.reshape(-1), var.reshape(-1)


_EPS_MODE = {"eps_outside_sqrt": "outside", "eps_ignored": "ignored"}


def _normalize(x, mu, var, eps, mistake):
    keep = channel_shape(x.ndim)
    std = spread(var, eps, eps_mode=_EPS_MODE.get(mistake, "inside"))
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
        n = xv.size // c
        if mistake == "n_is_batch_size":
            n = x.shape[0]
        train = mode == "train"
        if train or mistake == "batch_stats_in_eval":
            mu, var = _bn_stats(xv)
            var_used = unbiased(var, n) if mistake == "unbiased_forward" and train else var
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
            blended = var if mistake == "biased_running_var" else unbiased(var, n)
            if mistake == "keras_momentum":  # the weight of the running value is f
                f = 1 - f
            rm, rv = blend(rm, mu, f), blend(rv, blended, f)
        out = scale_shift(x_hat, gamma, beta)
        outs[f"out{i}"] = out.reshape(x.shape) if flat else out
    if "x_eval" in case:  # then a batch of one in eval mode (after a refused training call)
        x = np.asarray(case["x_eval"], dtype=np.float64)
        if mistake == "batch_stats_in_eval":
            x_hat = _normalize(x, *_bn_stats(x), eps, mistake)
        else:
            x_hat = _normalize(x, rm, rv, eps, mistake)
        outs["eval_out"] = scale_shift(x_hat, gamma, beta)
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
