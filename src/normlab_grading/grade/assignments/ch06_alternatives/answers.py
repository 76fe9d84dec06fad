"""Models of answers of assignment 06-alternatives, right where normlab has no reference for
the graded function, and wrong (one recognised mistake each)."""

from __future__ import annotations

import numpy as np

from ...mistakes import blend, moments, scale_shift, standardize, unbiased


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
    x_hat = standardize(x, axes, eps=eps, ddof=1 if mistake == "unbiased" else 0,
                        eps_mode="outside" if mistake == "eps_outside_sqrt" else "inside")
    if kind == "normalize":
        return x_hat
    if kind == "layer_norm":
        return case["gamma"] * x_hat + case["beta"]
    return scale_shift(x_hat, case["gamma"], case["beta"])


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
    x_hat = standardize(xg, axes, eps=eps).reshape(x.shape)
    if mistake == "no_affine":
        return x_hat
    return scale_shift(x_hat, case["gamma"], case["beta"])


def groupnorm_normalize_variant(case, mistake) -> np.ndarray:
    """Group norm whose normalize() has ``mistake`` (a mistake of normalize_axes)."""
    x, G = case["x"], case["num_groups"]
    n, c = x.shape[:2]
    xg = x.reshape(n, G, c // G, *x.shape[2:])
    sub = {"x": xg, "axes": tuple(range(2, xg.ndim)), "eps": case["eps"]}
    x_hat = norm_variant(sub, "normalize", mistake).reshape(x.shape)
    return scale_shift(x_hat, case["gamma"], case["beta"])


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
    mu, var = (a[0] for a in moments(x, 0))
    n = x.shape[0]
    new_rm = blend(rm, mu, m)
    new_rv = blend(rv, var if mistake == "biased_running_var" else unbiased(var, n), m)
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
