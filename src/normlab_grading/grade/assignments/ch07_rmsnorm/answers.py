"""Models of answers of assignment 07-rmsnorm: what a student with one recognised mistake computes."""

from __future__ import annotations

import numpy as np

from ...mistakes import moments, spread


def trailing_axes(x, gamma):
    """The normalized axes: the trailing ``gamma.ndim`` axes of x."""
    return tuple(range(np.ndim(x) - np.ndim(gamma), np.ndim(x)))


def leading_axes(x, gamma):
    """The axes dgamma sums over: every axis of x before the normalized ones."""
    return tuple(range(np.ndim(x) - np.ndim(gamma)))


def rms_forward(x, gamma, eps, axes=None, *, eps_mode="inside", center=False,
                reduce=np.mean, scale=True):
    """An RMSNorm forward with the usual mistakes; returns the forward-check outputs.

    axes: the normalized axes (default: gamma's trailing axes); center: subtract the mean
    first (layer norm); reduce: np.sum divides by the L2 norm instead of the RMS; scale:
    whether gamma multiplies."""
    axes = trailing_axes(x, gamma) if axes is None else axes
    if center:
        mean, square = moments(x, axes)
        x = x - mean
    else:
        square = reduce(x * x, axis=axes, keepdims=True)
    rms = spread(square, eps, eps_mode=eps_mode)
    x_hat = x / rms
    return {"out": gamma * x_hat if scale else x_hat, "x_hat": x_hat, "rms": rms}


def rms_dx(case, axes=None, *, through_rms=1.0, center=False, use_gamma=True):
    """dx of an RMSNorm backward with the usual mistakes, from the case's cache entries.

    through_rms: the weight of the path through rms (0: rms held constant, -1: its sign
    flipped); center: layer norm's extra ``- mean(g)`` term; use_gamma: whether the
    gradient reaching x_hat is multiplied by gamma."""
    dout, x_hat, rms, gamma = case["dout"], case["x_hat"], case["rms"], case["gamma"]
    axes = trailing_axes(dout, gamma) if axes is None else axes
    g = dout * gamma if use_gamma else dout
    dx = g - through_rms * x_hat * np.mean(g * x_hat, axis=axes, keepdims=True)
    if center:
        dx = dx - np.mean(g, axis=axes, keepdims=True)
    return {"dx": dx / rms}


def rms_dgamma(case, axes=None, *, use_x=False, reduce=np.sum):
    """dgamma of an RMSNorm backward with the usual mistakes: summed over ``axes`` (default:
    the leading axes; ``()``: not summed), from x instead of x_hat, averaged."""
    dout, gamma = case["dout"], case["gamma"]
    axes = leading_axes(dout, gamma) if axes is None else axes
    factor = case["x"] if use_x else case["x_hat"]
    return {"dgamma": reduce(dout * factor, axis=axes)}


def dgamma_wrong_axes(case):
    """The usual wrong axes of dgamma: the first axis only when gamma has one axis (a 2-D
    habit), every axis but the last when it has more (a habit of gamma (D,))."""
    ndim = np.ndim(case["dout"])
    return rms_dgamma(case, (0,) if np.ndim(case["gamma"]) == 1 else tuple(range(ndim - 1)))
