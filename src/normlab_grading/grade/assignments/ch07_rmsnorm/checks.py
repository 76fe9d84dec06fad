"""Assignment 07-rmsnorm: its cases, references, checks with their recognised mistakes,
test cells with points and the "mistake -> score" table (what the student writes: the
package docstring; the mistakes' outputs: ``answers``)."""

from __future__ import annotations

import numpy as np

import normlab

from ...cases import pick_shape
from ...mistakes import Mistake
from ...registry import Assignment, Cell, Check, Expected, register, register_assignment
from . import NAME, answers
from normlab_grading.check.protocols.ch07 import (  # the calling protocols
    RAISED_OTHER,
    RAISED_VALUE_ERROR,
    RETURNED,
    _call_backward,
    _call_forward,
    _call_shape_check,
    _describe,
    _describe_shape_check,
)

FORWARD, BACKWARD = "rmsnorm_forward", "rmsnorm_backward"


# ----------------------------------------------------------------------------- cases
# Normal cases pass eps=1e-6 and have a root mean square of 1 to 4, so where eps goes changes
# the output by about 1e-6 of its scale (below the tolerance); tiny cases have mean squares
# comparable to eps = 1e-5 (and far above float64's machine epsilon), where it changes
# everything. Each normalized slice has its own offset and spread, the offset comparable to
# the spread, so subtracting the mean, or normalizing over other axes, changes the output.
NORMAL_EPS, TINY_EPS = 1e-6, 1e-5
SHAPE_2D, SHAPE_3D = ((4, 6), ((8, 30), (3, 9))), ((2, 3, 5), ((3, 6), (4, 7), (6, 10)))


def _x(rng, shape, n_norm, scale_range):
    lead = shape[:len(shape) - n_norm] + (1,) * n_norm
    spread = rng.uniform(*scale_range, lead)
    offset = spread * rng.uniform(0.5, 1.5, lead) * rng.choice([-1.0, 1.0], lead)
    return offset + spread * rng.standard_normal(shape)


def _case(rng, hidden, shapes, n_norm, eps=NORMAL_EPS, scale_range=(1.0, 4.0)):
    shape = pick_shape(rng, hidden, *shapes)
    gamma = rng.uniform(0.5, 2.0, shape[len(shape) - n_norm:])
    return {"x": _x(rng, shape, n_norm, scale_range), "gamma": gamma, "eps": eps}


def _case_2d(rng, hidden):
    return _case(rng, hidden, SHAPE_2D, 1)


def _case_two_axes(rng, hidden):
    return _case(rng, hidden, SHAPE_3D, 2)


def _case_3d_last(rng, hidden):
    return _case(rng, hidden, SHAPE_3D, 1)


def _case_tiny(rng, hidden):
    return _case(rng, hidden, SHAPE_2D, 1, eps=TINY_EPS, scale_range=(2e-3, 5e-3))


def _case_default_eps(rng, hidden):
    return _case(rng, hidden, SHAPE_2D, 1, eps=None, scale_range=(2e-3, 5e-3))


def _case_default_eps_float32(rng, hidden):
    """float32 input with mean squares of about 1e-7 to 3e-6, comparable to float32's machine
    epsilon (1.2e-7), the eps torch uses for it."""
    case = _case(rng, hidden, SHAPE_3D, 1, eps=None, scale_range=(3e-4, 1e-3))
    return {**case, "x": case["x"].astype(np.float32), "gamma": case["gamma"].astype(np.float32)}


def _with_cache(case, rng):
    """Add the reference forward pass's cache entries and an upstream gradient."""
    _, cache = normlab.rmsnorm_forward(case["x"], case["gamma"], case["eps"])
    case.update(x_hat=cache.x_hat, rms=1.0 / cache.inv_rms,
                dout=rng.standard_normal(case["x"].shape))
    return case


def _case_backward_2d(rng, hidden):
    return _with_cache(_case_2d(rng, hidden), rng)


def _case_backward_two_axes(rng, hidden):
    return _with_cache(_case_two_axes(rng, hidden), rng)


def _case_backward_3d_last(rng, hidden):
    return _with_cache(_case_3d_last(rng, hidden), rng)


def _case_shape_check(rng, hidden):
    """x (N, T, D) with a gamma of shape (1, D) or (T, 1): it broadcasts against x, but x's
    trailing shape is (T, D); and a valid 2-D input."""
    case = _case_two_axes(rng, hidden)
    t, d = case["gamma"].shape
    wrong = (1, d) if rng.random() < 0.5 else (t, 1)
    valid = _case_2d(rng, hidden)
    return {"x": case["x"], "gamma": rng.uniform(0.5, 2.0, wrong), "eps": NORMAL_EPS,
            "x_ok": valid["x"], "gamma_ok": valid["gamma"]}


# ----------------------------------------------------------------------------- mistakes
def _fw(*, eps=None, **kw):
    """A wrong forward: ``answers.rms_forward`` on the case, with the case's eps (None: the
    float64 machine epsilon, as torch) unless ``eps`` is given."""
    def wrong(case):
        used = case["eps"] if case["eps"] is not None else float(np.finfo(case["x"].dtype).eps)
        return answers.rms_forward(case["x"], case["gamma"], used if eps is None else eps, **kw)

    return wrong


FW_LAYER_NORM = Mistake(
    "mean_subtracted",
    "subtracts the mean before dividing, which is layer norm; RMSNorm does not centre: "
    "rms = sqrt(mean(x**2) + eps) of x itself, x_hat = x / rms.",
    _fw(center=True),
)
FW_L2 = Mistake(
    "l2_norm",
    "divides by the L2 norm, sqrt(sum(x**2) + eps); RMSNorm divides by the ROOT MEAN "
    "square, sqrt(mean(x**2) + eps): the sum divided by the number of normalized values.",
    _fw(reduce=np.sum),
)
FW_NO_GAMMA = Mistake(
    "gamma_missing",
    "returns x_hat without the learnable scale: out = gamma * x_hat (gamma broadcasts over "
    "the leading axes).",
    lambda case: {"out": _fw()(case)["x_hat"]},
)
FW_LAST_AXIS = Mistake(
    "last_axis_only",
    "normalizes over the last axis only; RMSNorm normalizes over ALL the trailing axes that "
    "gamma has, the last gamma.ndim axes of x (here the last two, gamma being (T, D)), as "
    "torch.nn.RMSNorm(normalized_shape=gamma.shape) does.",
    lambda case: _fw(axes=(case["x"].ndim - 1,))(case),
)
FW_ALL_BUT_FIRST = Mistake(
    "all_axes_but_first",
    "normalizes over every axis but the first; the normalized axes are the trailing "
    "gamma.ndim axes of x (here gamma has shape (D,), so only the last one).",
    lambda case: _fw(axes=tuple(range(1, case["x"].ndim)))(case),
)
FW_EPS_OUTSIDE = Mistake(
    "eps_outside_sqrt",
    "adds eps outside the square root (sqrt(mean(x**2)) + eps); RMSNorm divides by "
    "sqrt(mean(x**2) + eps). It only shows when a mean square is comparable to eps, as here.",
    _fw(eps_mode="outside"),
)
FW_EPS_IGNORED = Mistake(
    "eps_ignored",
    "ignores eps: divide by sqrt(mean(x**2) + eps). It only shows when a mean square is "
    "comparable to eps, as here.",
    _fw(eps_mode="ignored"),
)
FW_FIXED_EPS = Mistake(
    "fixed_eps",
    "uses eps = 1e-5 when eps is None; torch.nn.RMSNorm's default is the machine epsilon of "
    "x's dtype, np.finfo(x.dtype).eps (2.2e-16 in float64). It only shows when a mean "
    "square is small, as here.",
    _fw(eps=1e-5),
)
FW_OTHER_DTYPE_EPS = Mistake(
    "other_dtype_eps",
    "uses the machine epsilon of another dtype when eps is None (or, for float32 input, no "
    "eps at all: float64's 2.2e-16 is as good as none); torch takes the epsilon of x's own "
    "dtype, np.finfo(x.dtype).eps: 2.2e-16 for float64, 1.2e-7 for float32.",
    lambda case: _fw(eps=float(np.finfo(np.float32 if case["x"].dtype == np.float64
                                        else np.float64).eps))(case),
)
# how every forward check can go wrong, whatever its shapes
FW_COMMON = (FW_LAYER_NORM, FW_L2, FW_NO_GAMMA)


def _dx(**kw):
    return lambda case: answers.rms_dx(case, **kw)


DX_RMS_CONSTANT = Mistake(
    "rms_constant",
    "treats rms as a constant (dx = dout * gamma / rms): x also reaches the loss through "
    "rms, which adds -x_hat * mean(dout * gamma * x_hat) / rms, the mean over the "
    "normalized axes.",
    _dx(through_rms=0.0),
)
DX_LAYER_NORM = Mistake(
    "layer_norm_backward",
    "subtracts mean(dout * gamma) as layer norm's backward does; no mean was subtracted in "
    "the forward pass, so there is no such term: dx = (g - x_hat * mean(g * x_hat)) / rms "
    "with g = dout * gamma.",
    _dx(center=True),
)
DX_SIGN = Mistake(
    "rms_branch_sign",
    "gets the sign of the path through rms wrong: d(1/rms)/dx is negative, so that path "
    "SUBTRACTS x_hat * mean(g * x_hat) / rms.",
    _dx(through_rms=-1.0),
)
DX_NO_GAMMA = Mistake(
    "gamma_missing",
    "forgets gamma: the gradient reaching x_hat is g = dout * gamma.",
    _dx(use_gamma=False),
)
DX_LAST_AXIS = Mistake(
    "last_axis_only",
    "takes the mean of g * x_hat over the last axis only; rms is computed over all the "
    "trailing gamma.ndim axes, so its gradient averages over the same axes.",
    lambda case: answers.rms_dx(case, axes=(case["dout"].ndim - 1,)),
)
DX_MISTAKES = (DX_RMS_CONSTANT, DX_LAYER_NORM, DX_SIGN, DX_NO_GAMMA)

DG_WRONG_AXES = Mistake(
    "dgamma_wrong_axes",
    "sums dgamma over the wrong axes; gamma is shared by every position of the leading "
    "axes, the x.ndim - gamma.ndim axes before gamma's (two for gamma (D,) on (N, T, D), "
    "one for gamma (T, D)), so dgamma sums over exactly those and has gamma's shape.",
    answers.dgamma_wrong_axes,
)
DG_NOT_SUMMED = Mistake(
    "dgamma_not_summed",
    "returns dout * x_hat without summing; dgamma has gamma's shape: sum over the leading "
    "axes, those before gamma's.",
    lambda case: answers.rms_dgamma(case, ()),
)
DG_MEAN = Mistake(
    "dgamma_mean",
    "averages dgamma over the leading axes instead of summing: every position's output "
    "depends on gamma, so the contributions add up.",
    lambda case: answers.rms_dgamma(case, reduce=np.mean),
)
DG_USES_X = Mistake(
    "dgamma_uses_x",
    "computes dgamma from x instead of x_hat: out = gamma * x_hat, so "
    "dgamma = sum(dout * x_hat).",
    lambda case: answers.rms_dgamma(case, use_x=True),
)
DG_MISTAKES = (DG_WRONG_AXES, DG_NOT_SUMMED, DG_MEAN, DG_USES_X)

SC_RETURNED = Mistake(
    "no_shape_check",
    "returns values when gamma's shape is not x's trailing shape (here it broadcasts, so "
    "numpy does not complain); check x.shape[x.ndim - gamma.ndim:] == gamma.shape and "
    "raise ValueError otherwise, as torch does.",
    lambda case: {"outcome": RETURNED},
)
SC_OTHER = Mistake(
    "wrong_exception",
    "raises an exception other than ValueError when gamma's shape is not x's trailing "
    "shape; raise ValueError, the exception for an invalid argument value.",
    lambda case: {"outcome": RAISED_OTHER},
)


# ----------------------------------------------------------------------------- checks
def _ref_forward(case):
    out, cache = normlab.rmsnorm_forward(case["x"], case["gamma"], case["eps"])
    return {"out": out, "x_hat": cache.x_hat, "rms": 1.0 / cache.inv_rms}


def _ref_backward(keys):
    def ref(case):
        _, cache = normlab.rmsnorm_forward(case["x"], case["gamma"], case["eps"])
        dx, dgamma = normlab.rmsnorm_backward(case["dout"], cache)
        return {k: v for k, v in (("dx", dx), ("dgamma", dgamma)) if k in keys}

    return ref


FW_LABELS = {"out": "out", "x_hat": "cache[1] (x_hat)", "rms": "cache[2] (rms)"}


def _forward(cid, make_case, mistakes):
    return Check(cid, FORWARD, make_case, _call_forward, _ref_forward, _describe,
                 labels=FW_LABELS, mistakes=mistakes, tol=1e-5)


def _backward(cid, make_case, keys, mistakes):
    return Check(cid, BACKWARD, make_case, _call_backward(keys), _ref_backward(keys),
                 _describe, mistakes=mistakes, tol=1e-6)


register(
    _forward("rms_forward", _case_2d, FW_COMMON),
    _forward("rms_forward_two_axes", _case_two_axes, (FW_LAST_AXIS,) + FW_COMMON),
    _forward("rms_forward_3d_last", _case_3d_last, (FW_ALL_BUT_FIRST,) + FW_COMMON),
    _forward("rms_forward_eps", _case_tiny, (FW_EPS_OUTSIDE, FW_EPS_IGNORED) + FW_COMMON),
    _forward("rms_forward_default_eps", _case_default_eps,
             (FW_FIXED_EPS, FW_OTHER_DTYPE_EPS) + FW_COMMON),
    # float32's eps matters where mean squares are small: where eps goes shows here too
    _forward("rms_forward_default_eps_float32", _case_default_eps_float32,
             (FW_FIXED_EPS, FW_OTHER_DTYPE_EPS, FW_EPS_OUTSIDE, FW_ALL_BUT_FIRST) + FW_COMMON),
    _backward("rms_backward_dx", _case_backward_2d, ("dx",), DX_MISTAKES),
    _backward("rms_backward_dx_two_axes", _case_backward_two_axes, ("dx",),
              (DX_LAST_AXIS,) + DX_MISTAKES),
    _backward("rms_backward_dgamma", _case_backward_3d_last, ("dgamma",), DG_MISTAKES),
    _backward("rms_backward_dgamma_two_axes", _case_backward_two_axes, ("dgamma",),
              DG_MISTAKES),
    Check("rms_shape_check", FORWARD, _case_shape_check, _call_shape_check,
          lambda case: {"outcome": RAISED_VALUE_ERROR, "valid": 1}, _describe_shape_check,
          labels={"outcome": "what rmsnorm_forward does when gamma is not x's trailing shape",
                  "valid": "whether rmsnorm_forward gives finite values of x's shape for a "
                           "valid input"},
          mistakes=(SC_RETURNED, SC_OTHER), tol=0),
)

FORWARD_CELLS = ("test_rms_forward", "test_rms_forward_two_axes", "test_rms_forward_3d_last",
                 "test_rms_forward_eps", "test_rms_forward_default_eps")
ASSIGNMENT = register_assignment(Assignment(
    NAME,
    cells=(
        Cell("test_rms_forward", 3, ("rms_forward",), FORWARD,
             "forward pass and cache, x (N, D), gamma (D,)"),
        Cell("test_rms_forward_two_axes", 3, ("rms_forward_two_axes",), FORWARD,
             "x (N, T, D), gamma (T, D): over the last two axes"),
        Cell("test_rms_forward_3d_last", 2, ("rms_forward_3d_last",), FORWARD,
             "x (N, T, D), gamma (D,): over the last axis"),
        Cell("test_rms_forward_eps", 2, ("rms_forward_eps",), FORWARD,
             "mean squares comparable to eps"),
        Cell("test_rms_forward_default_eps", 2,
             ("rms_forward_default_eps_float32", "rms_forward_default_eps"), FORWARD,
             "eps=None: np.finfo(x.dtype).eps as torch, float32 and float64"),
        Cell("test_rms_shape_check", 2, ("rms_shape_check",), FORWARD,
             "gamma not x's trailing shape: ValueError"),
        Cell("test_rms_backward_dx", 4, ("rms_backward_dx_two_axes", "rms_backward_dx"),
             BACKWARD, "dx, gamma (T, D) and (D,)"),
        Cell("test_rms_backward_dgamma", 2,
             ("rms_backward_dgamma", "rms_backward_dgamma_two_axes"), BACKWARD,
             "dgamma, gamma (D,) and (T, D) on x (N, T, D)"),
    ),
    expected=(
        Expected("mean_subtracted", "rms_forward", FORWARD_CELLS),
        Expected("l2_norm", "rms_forward", FORWARD_CELLS),
        Expected("gamma_missing", "rms_forward", FORWARD_CELLS),
        Expected("last_axis_only", "rms_forward_two_axes", ("test_rms_forward_two_axes",)),
        Expected("all_axes_but_first", "rms_forward_3d_last",
                 ("test_rms_forward_3d_last", "test_rms_forward_default_eps")),
        Expected("eps_outside_sqrt", "rms_forward_eps",
                 ("test_rms_forward_eps", "test_rms_forward_default_eps")),
        Expected("eps_ignored", "rms_forward_eps",
                 ("test_rms_forward_eps", "test_rms_forward_default_eps"),
                 messages={"test_rms_forward_default_eps": "other_dtype_eps"}),
        Expected("fixed_eps", "rms_forward_default_eps", ("test_rms_forward_default_eps",)),
        Expected("other_dtype_eps", "rms_forward_default_eps", ("test_rms_forward_default_eps",),
                 note="float32's epsilon for float64 input"),
        Expected("other_dtype_eps", "rms_forward_default_eps_float32",
                 ("test_rms_forward_default_eps",), note="float64's epsilon for float32 input"),
        Expected("no_shape_check", "rms_shape_check", ("test_rms_shape_check",)),
        Expected("wrong_exception", "rms_shape_check", ("test_rms_shape_check",)),
        Expected("rms_constant", "rms_backward_dx", ("test_rms_backward_dx",)),
        Expected("layer_norm_backward", "rms_backward_dx", ("test_rms_backward_dx",)),
        Expected("gamma_missing", "rms_backward_dx", ("test_rms_backward_dx",)),
        Expected("last_axis_only", "rms_backward_dx_two_axes", ("test_rms_backward_dx",)),
        Expected("dgamma_wrong_axes", "rms_backward_dgamma", ("test_rms_backward_dgamma",),
                 note="sums over the first axis only"),
        Expected("dgamma_wrong_axes", "rms_backward_dgamma_two_axes",
                 ("test_rms_backward_dgamma",), note="sums over every axis but the last"),
        Expected("dgamma_not_summed", "rms_backward_dgamma", ("test_rms_backward_dgamma",)),
        Expected("dgamma_mean", "rms_backward_dgamma", ("test_rms_backward_dgamma",)),
    ),
))
