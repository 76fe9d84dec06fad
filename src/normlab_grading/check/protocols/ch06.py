"""Calling protocols of assignment alternatives (ch06): how each check calls the
student's code and describes its case. Student side: no reference, no mistake model."""

from __future__ import annotations

import functools

import numpy as np

from ..outputs import Problem, nonfinite_in, shape_text


def _describe_norm(case):
    text = shape_text(x=case["x"])
    if "axes" in case:
        text += f", axes={tuple(case['axes'])}"
    if "gamma" in case:
        text += f", gamma {tuple(case['gamma'].shape)}"
    if "num_groups" in case:
        text += f", num_groups={case['num_groups']}"
    return text + f", eps={case['eps']:g}"


def _describe_wn(case):
    return shape_text(v=case["v"], g=case["g"])


def _describe_sn(case):
    return (f"{shape_text(W=case['W'], u=case['u'], v=case['v'])}, "
            f"n_power_iterations={case['n_power_iterations']}, eps={case['eps']:g}")


def _describe_renorm(case):
    return (f"{shape_text(x=case['x'])}, r_max={case['r_max']:g}, d_max={case['d_max']:g}, "
            f"eps={case['eps']:g}, momentum={case['momentum']:g}")


def _describe_renorm_backward(case):
    return f"{shape_text(dout=case['dout'])}, cache from r_max=3, d_max=5 (no clipping)"


def _call_normalize(student, case):
    return {"out": student(case["x"], tuple(case["axes"]), case["eps"])}


def _call_affine(student, case):
    return {"out": student(case["x"], case["gamma"], case["beta"], case["eps"])}


def _call_group(student, case):
    return {"out": student(case["x"], case["gamma"], case["beta"], case["num_groups"],
                           case["eps"])}


def _call_wn_forward(student, case):
    return {"w": student(case["v"], case["g"])}


def _pair(result, keys, what):
    if not (isinstance(result, (tuple, list)) and len(result) == len(keys)):
        p = Problem(f"not {what} (got {type(result).__name__})")
        return {k: p for k in keys}
    return dict(zip(keys, result))


def _call_wn_backward_keys(student, case, keys):
    out = _pair(student(case["dw"], case["v"], case["g"]), ("dv", "dg"), "a pair (dv, dg)")
    return {k: out[k] for k in keys}


def _call_wn_backward(keys):
    """The protocol of a weight-norm backward check that compares ``keys`` (a partial)."""
    return functools.partial(_call_wn_backward_keys, keys=tuple(keys))


def _call_sn(student, case):
    return _pair(student(case["W"], case["u"], case["v"], case["n_power_iterations"],
                         case["eps"]), ("W_sn", "u", "v", "sigma"), "a tuple (W_sn, u, v, sigma)")


def _call_renorm(student, case):
    return _pair(student(case["x"], case["gamma"], case["beta"], case["running_mean"],
                         case["running_var"], case["r_max"], case["d_max"], case["eps"],
                         case["momentum"]),
                 ("out", "r", "d", "running_mean", "running_var"),
                 "a tuple (out, r, d, running_mean, running_var)")


def _call_renorm_backward(student, case):
    cache = tuple(case[k] for k in ("x0", "r", "d", "sigma_B", "sigma", "gamma"))
    return _pair(student(case["dout"], cache), ("dx", "dgamma", "dbeta"),
                 "a triple (dx, dgamma, dbeta)")


def _per_group_affine(case, key, got, expected):
    """True if ``got`` is group norm's normalized input mapped by ONE affine map per group
    (a_g * x_hat + b_g), i.e. gamma and beta applied per group, not per channel."""
    # the normalized input, recovered from the expected output: out = gamma_c x_hat + beta_c
    # per channel, and the cases draw every gamma_c in [0.5, 2]
    shape = (1, -1) + (1,) * (np.ndim(expected["out"]) - 2)
    x_hat = (np.asarray(expected["out"]) - np.reshape(case["beta"], shape)) / np.reshape(case["gamma"], shape)
    if got.shape != x_hat.shape:
        return False
    n, c = x_hat.shape[:2]
    G = case["num_groups"]
    xs = x_hat.reshape(n, G, c // G, -1).transpose(1, 0, 2, 3).reshape(G, -1)
    ys = got.reshape(n, G, c // G, -1).transpose(1, 0, 2, 3).reshape(G, -1)
    scale = max(1e-12, float(np.abs(got).max()))
    for xg, yg in zip(xs, ys):
        A = np.stack([xg, np.ones_like(xg)], axis=1)
        coef, *_ = np.linalg.lstsq(A, yg, rcond=None)
        if np.abs(A @ coef - yg).max() > 1e-7 * scale:
            return False
    return True
