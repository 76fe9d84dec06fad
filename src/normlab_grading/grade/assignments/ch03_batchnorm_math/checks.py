"""Assignment 03-batchnorm-math: its cases, references, checks with their recognised mistakes,
test cells with points and the "mistake -> score" table (what the student writes: the
package docstring; the mistakes' outputs: ``answers``)."""

from __future__ import annotations

import numpy as np

import normlab

from ...cases import pick_shape
from ...mistakes import Mistake, reduce_axes
from ...registry import Assignment, Cell, Check, Expected, register, register_assignment
from . import NAME, answers
from normlab_grading.check.protocols.ch03 import (  # the calling protocols
    _describe_bn,
    _describe_numgrad,
    _describe_rel,
    _call_forward,
    _call_backward,
    _tanh_layer,
    _call_numgrad,
    _call_rel_error,
)


# ----------------------------------------------------------------------------- cases
def _params(rng, c):
    return rng.uniform(0.5, 2.0, c), rng.normal(0.0, 1.0, c)


def _case_2d(rng, hidden, tiny=False):
    n, d = pick_shape(rng, hidden, (6, 3), ((8, 40), (4, 9)))
    means = rng.uniform(-3, 3, d)
    # normal cases: spreads >= 2, so where eps goes changes the output by < 3e-6 of its
    # scale; tiny cases: variances comparable to eps = 1e-5, where it changes everything
    scales = rng.uniform(2e-3, 5e-3, d) if tiny else rng.uniform(2.0, 5.0, d)
    x = means + scales * rng.standard_normal((n, d))
    gamma, beta = _params(rng, d)
    return {"x": x, "gamma": gamma, "beta": beta, "eps": 1e-5}


def _case_bn_forward(rng, hidden):
    return _case_2d(rng, hidden)


def _case_bn_forward_eps(rng, hidden):
    return _case_2d(rng, hidden, tiny=True)


def _with_cache(case):
    """Add the reference forward pass's cache entries and an upstream gradient."""
    out, cache = normlab.batchnorm_forward(case["x"], case["gamma"], case["beta"], case["eps"])
    case.update(x_hat=cache.x_hat, mu=cache.mu, var=cache.var)
    return case


def _case_bn_backward(rng, hidden):
    case = _case_2d(rng, hidden)
    case["dout"] = rng.standard_normal(case["x"].shape)
    return _with_cache(case)


def _case_4d(rng, hidden):
    shape = pick_shape(rng, hidden, (2, 3, 4, 5), ((3, 6), (4, 7), (5, 8), (5, 8)))
    n, c, h, w = shape
    means = rng.uniform(-3, 3, c)[None, :, None, None]
    scales = rng.uniform(2.0, 5.0, c)[None, :, None, None]
    x = means + scales * rng.standard_normal(shape)
    gamma, beta = _params(rng, c)
    return {"x": x, "gamma": gamma, "beta": beta, "eps": 1e-5}


def _case_spatial_backward(rng, hidden):
    case = _case_4d(rng, hidden)
    case["dout"] = rng.standard_normal(case["x"].shape)
    return _with_cache(case)


def _case_numgrad(rng, hidden):
    n, d = pick_shape(rng, hidden, (3, 4), ((4, 6), (5, 7)))
    k = 3 if not hidden else int(rng.integers(4, 6))
    return {
        "x": rng.normal(0, 1, (n, d)),
        "W": rng.normal(0, 0.8, (d, k)),
        "b": rng.normal(0, 0.5, k),
        "dout": rng.normal(0, 1, (n, k)),
        "h": 1e-5,
    }


def _case_rel_error(rng, hidden):
    shape = pick_shape(rng, hidden, (4, 3), ((5, 9), (2, 6)))
    a1 = rng.normal(0, 1, shape)
    b1 = a1 + rng.normal(0, 1e-3, shape)
    # opposite signs and exact zeros in both (0 / 0 must not happen)
    a2 = rng.normal(0, 1, shape)
    b2 = -a2 + rng.normal(0, 0.1, shape)
    zeros = rng.random(shape) < 0.3
    zeros.flat[0] = True
    a2[zeros] = 0.0
    b2[zeros] = 0.0
    a3 = rng.normal(5, 1, shape)
    b3 = a3 * (1 + rng.normal(0, 1e-7, shape))
    return {"a1": a1, "b1": b1, "a2": a2, "b2": b2, "a3": a3, "b3": b3}


# ----------------------------------------------------------------------------- mistakes


def _fw(**kw):
    return lambda case: answers.bn_forward(case["x"], case["gamma"], case["beta"], case["eps"], **kw)


FW_UNBIASED = Mistake(
    "unbiased_variance",
    "normalizes with the unbiased batch variance (divided by n - 1); batch norm's training "
    "forward uses the BIASED variance, divided by n (torch does the same). The unbiased "
    "one only goes into running_var.",
    _fw(ddof=1),
)
FW_PER_SAMPLE = Mistake(
    "per_sample",
    "computes the statistics of each sample over its features (axis=1), which is layer "
    "norm; batch norm takes each feature's mean and variance over the batch (axis=0).",
    _fw(axes=(1,)),
)
FW_EPS_OUTSIDE = Mistake(
    "eps_outside_sqrt",
    "adds eps outside the square root (sqrt(var) + eps); batch norm divides by "
    "sqrt(var + eps). It only shows when a variance is comparable to eps, as here.",
    _fw(eps_mode="outside"),
)
FW_EPS_IGNORED = Mistake(
    "eps_ignored",
    "ignores eps: divide by sqrt(var + eps). It only shows when a variance is comparable "
    "to eps, as here.",
    _fw(eps_mode="ignored"),
)
FW_SWAPPED = Mistake(
    "gamma_beta_swapped",
    "swaps gamma and beta: out = gamma * x_hat + beta (gamma scales, beta shifts).",
    _fw(affine="swapped"),
)
FW_NO_AFFINE = Mistake(
    "no_scale_shift",
    "returns x_hat without the learnable scale and shift: out = gamma * x_hat + beta.",
    _fw(affine="none"),
)

SP_OVER_NC = Mistake(
    "stats_over_NC",
    "takes the statistics over (N, C) (axes 0 and 1) instead of (N, H, W): spatial batch "
    "norm has one mean and variance per CHANNEL, over axes (0, 2, 3).",
    _fw(axes=(0, 1)),
)
SP_PER_POSITION = Mistake(
    "per_position",
    "normalizes each (c, h, w) position over the batch only (axis 0, as if the image were "
    "a flat vector of C*H*W features); spatial batch norm shares one mean and variance "
    "per channel over N, H and W (axes 0, 2, 3).",
    _fw(axes=(0,)),
)


SP_NO_TRANSPOSE = Mistake(
    "reshape_without_transpose",
    "reshapes (N, C, H, W) straight to (N*H*W, C), which mixes channels and positions: "
    "move the channel axis last first, x.transpose(0, 2, 3, 1).reshape(-1, C), and undo "
    "both steps on the way back.",
    answers.no_transpose,
)
SP_UNBIASED = Mistake("unbiased_variance", FW_UNBIASED.message, _fw(ddof=1))
SP_OVER_C = Mistake(
    "stats_over_C",
    "takes the statistics of each (n, h, w) position over the channels (axis 1), which "
    "is not batch norm; spatial batch norm has one mean and variance per channel, over "
    "axes (0, 2, 3).",
    _fw(axes=(1,)),
)


def _dx(**kw):
    def wrong(case):
        dout = case["dout"]
        return {"dx": answers.closed_form(dout, case["x_hat"], case["gamma"], case["var"],
                                   case["eps"], reduce_axes(dout.ndim), **kw)}

    return wrong


BW_VAR_MISSING = Mistake(
    "var_branch_missing",
    "treats the variance as a constant: x reaches the loss through x_hat, through mu AND "
    "through var; the var branch adds the term -x_hat * mean(dout * gamma * x_hat) * "
    "invstd (dvar = sum(dx_hat * (x - mu)) * -0.5 * (var + eps)**-1.5, then "
    "dx += dvar * 2 (x - mu) / n).",
    _dx(var_term=0.0),
)
BW_MEAN_MISSING = Mistake(
    "mean_branch_missing",
    "treats the mean as a constant: the branch through mu adds -mean(dout * gamma) * "
    "invstd to every dx (dmu = -sum(dx_hat) * invstd, then dx += dmu / n).",
    _dx(mean_term=False),
)
BW_VAR_SIGN = Mistake(
    "var_branch_sign",
    "gets the sign of the variance branch wrong: d(invstd)/d(var) = -0.5 * (var + eps)**-1.5, "
    "so that branch SUBTRACTS x_hat * mean(dout * gamma * x_hat) * invstd.",
    _dx(var_term=-1.0),
)
BW_NO_GAMMA = Mistake(
    "gamma_missing",
    "forgets gamma: the gradient reaching x_hat is dout * gamma, so dx carries a factor "
    "gamma.",
    _dx(use_gamma=False),
)
BW_N_MINUS_ONE = Mistake(
    "n_minus_one",
    "uses n - 1 in the variance's gradient; the forward variance divides by n, so "
    "d var / d x_i = 2 (x_i - mu) / n.",
    _dx(n_minus_one=True),
)
DX_MISTAKES = (BW_VAR_MISSING, BW_MEAN_MISSING, BW_VAR_SIGN, BW_NO_GAMMA, BW_N_MINUS_ONE)


DP_WRONG_AXIS = Mistake(
    "dparams_wrong_axis",
    "sums dgamma and dbeta over the features (axis=1); gamma and beta have one entry per "
    "feature, so their gradients are summed over the batch (axis=0), shape (D,).",
    lambda case: answers.dparams(case, 1),
)
DP_USES_X = Mistake(
    "dgamma_uses_x",
    "computes dgamma from x instead of x_hat: out = gamma * x_hat + beta, so "
    "dgamma = sum(dout * x_hat).",
    lambda case: answers.dparams(case, reduce_axes(case["dout"].ndim), use_x=True),
)
DP_MEAN = Mistake(
    "dparams_mean",
    "averages dgamma and dbeta over the batch instead of summing: each sample's output "
    "depends on gamma and beta, so the contributions add up.",
    lambda case: answers.dparams(case, reduce_axes(case["dout"].ndim), mean=True),
)
DP_SWAPPED = Mistake(
    "dparams_swapped",
    "swaps dgamma and dbeta: dbeta = sum(dout), dgamma = sum(dout * x_hat).",
    lambda case: answers.dparams(case, reduce_axes(case["dout"].ndim), swap=True),
)
DP_MISTAKES = (DP_WRONG_AXIS, DP_USES_X, DP_MEAN, DP_SWAPPED)

SB_OVER_N = Mistake(
    "dparams_over_N_only",
    "sums dgamma and dbeta over the batch axis only (shape (C, H, W)); gamma and beta are "
    "per channel, so sum over N, H and W (axes 0, 2, 3), shape (C,).",
    lambda case: answers.dparams(case, 0),
)
SB_OVER_NC = Mistake(
    "dparams_over_NC",
    "sums dgamma and dbeta over (N, C) instead of (N, H, W): they are per channel, summed "
    "over axes (0, 2, 3), shape (C,).",
    lambda case: answers.dparams(case, (0, 1)),
)


SB_NO_TRANSPOSE = Mistake("reshape_without_transpose", SP_NO_TRANSPOSE.message,
                          answers.sb_no_transpose)


# numerical gradient
NG_FORWARD = Mistake(
    "forward_difference",
    "uses a one-sided difference (f(x + h) - f(x)) / h, whose error is O(h); use centred "
    "differences (f(x + h) - f(x - h)) / (2h), error O(h**2).",
    lambda case: {"grad": answers.numgrad_variant(case, "forward")[0]},
)
NG_BY_H = Mistake(
    "divided_by_h",
    "divides the centred difference by h instead of 2h: the two points are 2h apart.",
    lambda case: {"grad": answers.numgrad_variant(case, "by_h")[0]},
)
NG_NO_DOUT = Mistake(
    "dout_ignored",
    "sums the change of f over all outputs without weighting it by dout: the gradient of "
    "sum(f(x) * dout) is sum((f(x + h) - f(x - h)) * dout) / (2h).",
    lambda case: {"grad": answers.numgrad_variant(case, "no_dout")[0]},
)
NG_NOT_RESTORED = Mistake(
    "x_not_restored",
    "does not put x[i] back after perturbing it, so every later entry is measured at a "
    "shifted point (and the caller's x is changed): restore x[i] = old after each entry.",
    lambda case: {"grad": answers.numgrad_variant(case, "not_restored")[0]},
)


RE_MEAN = Mistake(
    "mean_not_max",
    "averages the entrywise relative errors; a gradient check reports the WORST entry: "
    "max(|a - b| / max(1e-8, |a| + |b|)).",
    lambda case: answers.rel_variant(case, "mean"),
)
RE_NO_FLOOR = Mistake(
    "no_floor",
    "divides by |a| + |b| without the floor, so entries where a and b are both 0 give "
    "0 / 0 = NaN: divide by max(1e-8, |a| + |b|).",
    lambda case: answers.rel_variant(case, "no_floor"),
)
RE_NO_ABS = Mistake(
    "no_abs_in_denominator",
    "divides by a + b instead of |a| + |b|, which is wrong where a and b have opposite "
    "signs: use max(1e-8, |a| + |b|).",
    lambda case: answers.rel_variant(case, "no_abs_denominator"),
)
RE_MAX_DEN = Mistake(
    "max_in_denominator",
    "divides by max(|a|, |b|) instead of |a| + |b|; the course's rel_error is "
    "max(|a - b| / max(1e-8, |a| + |b|)), as in CS231n.",
    lambda case: answers.rel_variant(case, "max_denominator"),
)


# ----------------------------------------------------------------------------- checks
def _ref_forward(case):
    out, cache = normlab.batchnorm_forward(case["x"], case["gamma"], case["beta"], case["eps"])
    return {"out": out, "x_hat": cache.x_hat, "mu": cache.mu, "var": cache.var}


def _ref_backward(keys, fn=normlab.batchnorm_backward_alt):
    def ref(case):
        _, cache = normlab.batchnorm_forward(case["x"], case["gamma"], case["beta"], case["eps"])
        return {k: v for k, v in zip(("dx", "dgamma", "dbeta"), fn(case["dout"], cache))
                if k in keys}

    return ref


FW_LABELS = {"out": "out", "x_hat": "cache[1] (x_hat)", "mu": "cache[2] (mu)",
             "var": "cache[3] (var)"}
FW_MISTAKES = (FW_UNBIASED, FW_PER_SAMPLE, FW_SWAPPED, FW_NO_AFFINE)
# eps only matters when a variance is comparable to it: the eps check alone names them
FW_EPS_MISTAKES = (FW_EPS_OUTSIDE, FW_EPS_IGNORED) + FW_MISTAKES


def _bn_check(cid, function, make_case, call, ref, mistakes, labels=None, tol=1e-5):
    return Check(cid, function, make_case, call, ref, _describe_bn, labels=labels or {},
                 mistakes=mistakes, tol=tol)


register(
    _bn_check("bn_forward", "batchnorm_forward", _case_bn_forward, _call_forward,
              _ref_forward, FW_MISTAKES, FW_LABELS),
    _bn_check("bn_forward_eps", "batchnorm_forward", _case_bn_forward_eps, _call_forward,
              _ref_forward, FW_EPS_MISTAKES, FW_LABELS),
    _bn_check("bn_backward_dx", "batchnorm_backward", _case_bn_backward,
              _call_backward(("dx",)), _ref_backward(("dx",)), DX_MISTAKES),
    _bn_check("bn_backward_dparams", "batchnorm_backward", _case_bn_backward,
              _call_backward(("dgamma", "dbeta")), _ref_backward(("dgamma", "dbeta")),
              DP_MISTAKES),
    _bn_check("bn_backward_alt_dx", "batchnorm_backward_alt", _case_bn_backward,
              _call_backward(("dx",)), _ref_backward(("dx",)), DX_MISTAKES),
    _bn_check("bn_backward_alt_dparams", "batchnorm_backward_alt", _case_bn_backward,
              _call_backward(("dgamma", "dbeta")), _ref_backward(("dgamma", "dbeta")),
              DP_MISTAKES),
    Check("spatial_bn_forward", "spatial_batchnorm_forward", _case_4d, _call_forward,
          _ref_forward, _describe_bn, labels=FW_LABELS,
          mistakes=(SP_OVER_NC, SP_PER_POSITION, SP_NO_TRANSPOSE, SP_UNBIASED, SP_OVER_C,
                    FW_SWAPPED, FW_NO_AFFINE), tol=1e-5),
    Check("spatial_bn_backward", "spatial_batchnorm_backward", _case_spatial_backward,
          _call_backward(("dx", "dgamma", "dbeta")), _ref_backward(("dx", "dgamma", "dbeta")),
          _describe_bn,
          mistakes=(SB_OVER_N, SB_OVER_NC, SB_NO_TRANSPOSE) + DX_MISTAKES
          + (DP_USES_X, DP_MEAN, DP_SWAPPED), tol=1e-5),
    Check("numerical_gradient", "numerical_gradient", _case_numgrad, _call_numgrad,
          lambda case: {
              "grad": normlab.numerical_gradient(_tanh_layer(case["W"], case["b"]),
                                                 np.array(case["x"]), case["dout"], case["h"]),
              "x_after": case["x"]},
          _describe_numgrad,
          labels={"grad": "the numerical gradient", "x_after": "x after the call"},
          mistakes=(NG_FORWARD, NG_BY_H, NG_NO_DOUT, NG_NOT_RESTORED), tol=1e-7),
    Check("rel_error", "rel_error", _case_rel_error, _call_rel_error,
          lambda case: {"errors": np.array([normlab.rel_error(case[f"a{i}"], case[f"b{i}"])
                                            for i in (1, 2, 3)])},
          _describe_rel, labels={"errors": "rel_error of the three pairs"},
          mistakes=(RE_MEAN, RE_NO_FLOOR, RE_NO_ABS, RE_MAX_DEN), tol=1e-9),
)

ASSIGNMENT = register_assignment(Assignment(
    NAME,
    cells=(
        Cell("test_bn_forward", 4, ("bn_forward",), "batchnorm_forward",
             "forward pass and cache, (N, D)"),
        Cell("test_bn_forward_eps", 2, ("bn_forward_eps",), "batchnorm_forward",
             "forward pass with variances comparable to eps"),
        Cell("test_bn_backward_dx", 4, ("bn_backward_dx",), "batchnorm_backward",
             "staged backward: dx"),
        Cell("test_bn_backward_dparams", 2, ("bn_backward_dparams",), "batchnorm_backward",
             "staged backward: dgamma, dbeta"),
        Cell("test_bn_backward_alt_dx", 4, ("bn_backward_alt_dx",), "batchnorm_backward_alt",
             "closed-form backward: dx"),
        Cell("test_bn_backward_alt_dparams", 2, ("bn_backward_alt_dparams",),
             "batchnorm_backward_alt", "closed-form backward: dgamma, dbeta"),
        Cell("test_spatial_forward", 4, ("spatial_bn_forward",), "spatial_batchnorm_forward",
             "spatial forward, per channel over (N, H, W)"),
        Cell("test_spatial_backward", 3, ("spatial_bn_backward",), "spatial_batchnorm_backward",
             "spatial backward"),
        Cell("test_numerical_gradient", 3, ("numerical_gradient",), "numerical_gradient",
             "centred-difference gradient"),
        Cell("test_rel_error", 2, ("rel_error",), "rel_error", "relative error"),
    ),
    expected=(
        Expected("unbiased_variance", "bn_forward",
                 ("test_bn_forward", "test_bn_forward_eps", "test_spatial_forward"),
                 note="spatial_batchnorm_forward reuses batchnorm_forward"),
        Expected("per_sample", "bn_forward",
                 ("test_bn_forward", "test_bn_forward_eps", "test_spatial_forward"),
                 messages={"test_spatial_forward": "stats_over_C"},
                 note="spatial_batchnorm_forward reuses batchnorm_forward"),
        Expected("gamma_beta_swapped", "bn_forward",
                 ("test_bn_forward", "test_bn_forward_eps", "test_spatial_forward"),
                 note="spatial_batchnorm_forward reuses batchnorm_forward"),
        Expected("eps_outside_sqrt", "bn_forward_eps", ("test_bn_forward_eps",)),
        Expected("eps_ignored", "bn_forward_eps", ("test_bn_forward_eps",)),
        Expected("var_branch_missing", "bn_backward_dx", ("test_bn_backward_dx",)),
        Expected("mean_branch_missing", "bn_backward_dx", ("test_bn_backward_dx",)),
        Expected("var_branch_sign", "bn_backward_dx", ("test_bn_backward_dx",)),
        Expected("dparams_wrong_axis", "bn_backward_dparams", ("test_bn_backward_dparams",)),
        Expected("dgamma_uses_x", "bn_backward_dparams", ("test_bn_backward_dparams",)),
        Expected("gamma_missing", "bn_backward_alt_dx",
                 ("test_bn_backward_alt_dx", "test_spatial_backward"),
                 note="spatial_batchnorm_backward reuses batchnorm_backward_alt"),
        Expected("var_branch_missing", "bn_backward_alt_dx",
                 ("test_bn_backward_alt_dx", "test_spatial_backward"),
                 note="spatial_batchnorm_backward reuses batchnorm_backward_alt"),
        Expected("dparams_mean", "bn_backward_alt_dparams",
                 ("test_bn_backward_alt_dparams", "test_spatial_backward"),
                 note="spatial_batchnorm_backward reuses batchnorm_backward_alt"),
        Expected("stats_over_NC", "spatial_bn_forward", ("test_spatial_forward",)),
        Expected("reshape_without_transpose", "spatial_bn_forward", ("test_spatial_forward",)),
        Expected("dparams_over_N_only", "spatial_bn_backward", ("test_spatial_backward",)),
        Expected("forward_difference", "numerical_gradient", ("test_numerical_gradient",)),
        Expected("dout_ignored", "numerical_gradient", ("test_numerical_gradient",)),
        Expected("x_not_restored", "numerical_gradient", ("test_numerical_gradient",)),
        Expected("mean_not_max", "rel_error", ("test_rel_error",)),
        Expected("no_floor", "rel_error", ("test_rel_error",)),
    ),
))
