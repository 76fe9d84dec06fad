"""Models of answers of assignment 03-batchnorm-math: what a student with one recognised mistake computes."""

from __future__ import annotations

import numpy as np

from normlab_grading.check.protocols.ch03 import _tanh_layer

from ...mistakes import channel_shape, reduce_axes, scale_shift, standardize


def bn_forward(x, gamma, beta, eps, axes=None, ddof=0, eps_mode="inside", affine="normal"):
    """A batch-norm forward with the usual mistakes; returns the forward-check outputs."""
    axes = reduce_axes(x.ndim) if axes is None else axes
    x_hat = standardize(x, axes, ddof=ddof, eps=eps, eps_mode=eps_mode)
    if affine == "normal":
        out = scale_shift(x_hat, gamma, beta)
    elif affine == "swapped":
        out = scale_shift(x_hat, beta, gamma)
    else:
        out = x_hat
    return {"out": out, "x_hat": x_hat}


def no_transpose(case):
    x = case["x"]
    c = x.shape[1]
    r = bn_forward(x.reshape(-1, c), case["gamma"], case["beta"], case["eps"])
    return {"out": r["out"].reshape(x.shape), "x_hat": r["x_hat"].reshape(x.shape)}


def closed_form(dout, x_hat, gamma, var, eps, axes, mean_term=True, var_term=1.0,
                 use_gamma=True, n_minus_one=False):
    keep = channel_shape(dout.ndim)
    g = gamma.reshape(keep) if use_gamma else 1.0
    invstd = 1.0 / np.sqrt(var.reshape(keep) + eps)
    n = dout.size // gamma.size
    m1 = dout.mean(axis=axes, keepdims=True) if mean_term else 0.0
    s = (dout * x_hat).sum(axis=axes, keepdims=True) / (n - 1 if n_minus_one else n)
    return g * invstd * (dout - m1 - var_term * x_hat * s)


def dparams(case, axes, use_x=False, mean=False, swap=False):
    dout = case["dout"]
    xh = case["x"] if use_x else case["x_hat"]
    red = np.mean if mean else np.sum
    dgamma, dbeta = red(dout * xh, axis=axes), red(dout, axis=axes)
    if swap:
        dgamma, dbeta = dbeta, dgamma
    return {"dgamma": dgamma, "dbeta": dbeta}


def sb_no_transpose(case):
    dout, x_hat = case["dout"], case["x_hat"]
    c = dout.shape[1]
    d2, xh2 = dout.reshape(-1, c), x_hat.reshape(-1, c)
    dx = closed_form(d2, xh2, case["gamma"], case["var"], case["eps"], (0,))
    return {"dx": dx.reshape(dout.shape), "dgamma": (d2 * xh2).sum(0), "dbeta": d2.sum(0)}


def numgrad_variant(case, mode):
    f = _tanh_layer(case["W"], case["b"])
    x = np.array(case["x"], dtype=np.float64)
    dout, h = case["dout"], case["h"]
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = f(x)
        if mode == "forward":
            x[ix] = old
            neg = f(x)
            grad[ix] = np.sum((pos - neg) * dout) / h
            continue
        x[ix] = old - h
        neg = f(x)
        if mode != "not_restored":
            x[ix] = old
        if mode == "no_dout":
            grad[ix] = np.sum(pos - neg) / (2 * h)
        elif mode == "by_h":
            grad[ix] = np.sum((pos - neg) * dout) / h
        else:
            grad[ix] = np.sum((pos - neg) * dout) / (2 * h)
    return grad, x


def rel_variant(case, mode):
    out = []
    for i in (1, 2, 3):
        a, b = case[f"a{i}"], case[f"b{i}"]
        num = np.abs(a - b)
        if mode == "no_abs_denominator":
            den = np.maximum(1e-8, a + b)
        elif mode == "no_floor":
            den = np.abs(a) + np.abs(b)
        elif mode == "max_denominator":
            den = np.maximum(1e-8, np.maximum(np.abs(a), np.abs(b)))
        else:
            den = np.maximum(1e-8, np.abs(a) + np.abs(b))
        with np.errstate(all="ignore"):
            r = num / den
        out.append(float(np.mean(r) if mode == "mean" else np.max(r)))
    return {"errors": np.array(out)}
