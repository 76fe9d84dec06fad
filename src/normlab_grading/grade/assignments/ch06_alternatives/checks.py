"""Assignment 06-alternatives: its cases, references, checks with their recognised mistakes,
test cells with points and the "mistake -> score" table (what the student writes: the
package docstring; the mistakes' outputs: ``answers``)."""

from __future__ import annotations

import numpy as np

import normlab

from ...cases import pick_shape
from ...mistakes import Mistake
from ...registry import Assignment, Cell, Check, Expected, register, register_assignment
from . import NAME, answers
from normlab_grading.check.protocols.ch06 import (  # the calling protocols
    _describe_norm,
    _describe_wn,
    _describe_sn,
    _describe_renorm,
    _describe_renorm_backward,
    _call_normalize,
    _call_affine,
    _call_group,
    _call_wn_forward,
    _call_wn_backward,
    _call_sn,
    _call_renorm,
    _call_renorm_backward,
    _per_group_affine,
)


TOL = 1e-9


# ----------------------------------------------------------------------------- cases
def _images(rng, shape):
    """(N, C, *rest) with per-channel and per-sample offsets and spreads."""
    n, c = shape[:2]
    keep = (n, c) + (1,) * (len(shape) - 2)
    return (rng.normal(0, 2, keep) + rng.uniform(0.5, 3.0, keep) * rng.standard_normal(shape))


def _case_normalize(rng, hidden):
    if not hidden:
        return {"x": _images(rng, (4, 3, 5)), "axes": (0, 2), "eps": 1e-5}
    shape = pick_shape(rng, True, (4, 3, 5, 2), ((5, 7), (2, 4), (6, 8), (3, 5)))
    k = int(rng.integers(1, 4))
    axes = tuple(sorted(int(a) for a in rng.choice(4, size=k, replace=False)))
    return {"x": _images(rng, shape), "axes": axes, "eps": 1e-5}


def _case_layer(rng, hidden):
    shape = pick_shape(rng, hidden, (4, 3, 2, 5), ((5, 8), (2, 5), (3, 5), (6, 8)))
    return {"x": _images(rng, shape), "gamma": rng.uniform(0.5, 2.0, shape[1:]),
            "beta": rng.normal(0, 1, shape[1:]), "eps": 1e-5}


def _case_instance(rng, hidden):
    shape = pick_shape(rng, hidden, (3, 4, 2, 5), ((4, 7), (5, 8), (3, 5), (6, 8)))
    return {"x": _images(rng, shape), "gamma": rng.uniform(0.5, 2.0, shape[1]),
            "beta": rng.normal(0, 1, shape[1]), "eps": 1e-5}


def _case_group(rng, hidden):
    if not hidden:
        groups, per, (n, h, w) = 3, 2, (2, 3, 3)
    else:
        groups, per = int(rng.choice([2, 4])), int(rng.integers(3, 5))
        n, h, w = (int(rng.integers(3, 6)), int(rng.integers(4, 6)), int(rng.integers(2, 3)))
    c = groups * per
    gamma = rng.uniform(0.5, 2.0, c)  # different within each group: per-channel affine shows
    return {"x": _images(rng, (n, c, h, w)), "gamma": gamma, "beta": rng.normal(0, 1, c),
            "num_groups": groups, "eps": 1e-5}


def _case_wn(rng, hidden):
    out, inp = pick_shape(rng, hidden, (4, 6), ((5, 9), (3, 10)))
    return {"v": rng.normal(0, 1, (out, inp)), "g": rng.uniform(0.5, 2.0, out),
            "dw": rng.normal(0, 1, (out, inp))}


def _unit(a):
    return a / np.linalg.norm(a)


def _case_sn(rng, hidden, tiny=False):
    h, w = pick_shape(rng, hidden, (4, 6), ((5, 9), (3, 10)))
    W = rng.normal(0, 1e-4 if tiny else 1.0, (h, w))
    case = {"W": W, "u": _unit(rng.normal(0, 1, h)), "v": _unit(rng.normal(0, 1, w)),
            "n_power_iterations": 1 if not hidden else int(rng.integers(2, 4)),
            "eps": 1e-12}
    if tiny:  # ||W v|| and ||W^T u|| below eps: the eps of normalize decides
        case["eps"] = 1e-3
    return case


def _case_sn_eps(rng, hidden):
    return _case_sn(rng, hidden, tiny=True)


def _case_renorm(rng, hidden):
    n, c = pick_shape(rng, hidden, (8, 4), ((10, 30), (5, 9)))
    x = rng.normal(0, 2, c) + rng.uniform(0.5, 3.0, c) * rng.standard_normal((n, c))
    r_max = 1.5 if not hidden else float(np.round(rng.uniform(1.3, 3.0), 2))
    d_max = 1.0 if not hidden else float(np.round(rng.uniform(0.5, 3.0), 2))
    mu = x.mean(axis=0)
    s_b = np.sqrt(x.var(axis=0) + 1e-5)
    # per channel a target r (above r_max, below 1/r_max or inside) and d (inside or out)
    r_target = np.array([r_max * 1.5, 0.6 / r_max, 1.1, 0.95] + list(
        rng.uniform(0.5 / r_max, 1.5 * r_max, c - 4)))[:c]
    d_target = np.array([0.3, -2.0 * d_max, 1.5 * d_max, -0.4] + list(
        rng.uniform(-2 * d_max, 2 * d_max, c - 4)))[:c]
    sigma = s_b / r_target
    running_var = sigma ** 2 - 1e-5
    running_mean = mu - d_target * sigma
    return {"x": x, "gamma": rng.uniform(0.5, 2.0, c), "beta": rng.normal(0, 1, c),
            "running_mean": running_mean, "running_var": running_var, "r_max": r_max,
            "d_max": d_max, "eps": 1e-5, "momentum": 0.1 if not hidden else 0.05}


def _case_renorm_backward(rng, hidden):
    n, c = pick_shape(rng, hidden, (8, 4), ((10, 30), (5, 9)))
    x = rng.normal(0, 2, c) + rng.uniform(0.5, 3.0, c) * rng.standard_normal((n, c))
    mu, s_b = x.mean(axis=0), np.sqrt(x.var(axis=0) + 1e-5)
    # r and d inside (1/3, 3) and (-5, 5): no clipping, so the stop-gradient shows
    r_t, d_t = rng.uniform(0.7, 1.4, c), rng.uniform(-0.8, 0.8, c)
    sigma_t = s_b / r_t
    case = {"x": x, "gamma": rng.uniform(0.5, 2.0, c), "beta": rng.normal(0, 1, c),
            "running_mean": mu - d_t * sigma_t, "running_var": sigma_t ** 2 - 1e-5,
            "r_max": 3.0, "d_max": 5.0, "eps": 1e-5, "dout": rng.normal(0, 1, (n, c))}
    _, cache = normlab.batchrenorm_forward(x, case["gamma"], case["beta"], case["running_mean"],
                                           case["running_var"], 3.0, 5.0, 1e-5)
    case.update(x0=(x - mu) / s_b, r=cache.r, d=cache.d, sigma_B=s_b,
                sigma=np.sqrt(case["running_var"] + 1e-5))
    return case


# ----------------------------------------------------------------------------- references
def _ref_normalize(case):
    x = case["x"]
    out, _ = normlab.norm_over_axes_forward(x, None, None, tuple(case["axes"]), (), case["eps"])
    return {"out": out}


def _ref_layer(case):
    return {"out": normlab.layernorm_forward(case["x"], case["gamma"], case["beta"],
                                             case["eps"])[0]}


def _ref_instance(case):
    return {"out": normlab.instancenorm_forward(case["x"], case["gamma"], case["beta"],
                                                case["eps"])[0]}


def _ref_group(case):
    return {"out": normlab.groupnorm_forward(case["x"], case["gamma"], case["beta"],
                                             case["num_groups"], case["eps"])[0]}


def _ref_wn_forward(case):
    return {"w": normlab.weightnorm_forward(case["v"], case["g"], dim=0)[0]}


def _ref_wn_backward(keys):
    def ref(case):
        _, cache = normlab.weightnorm_forward(case["v"], case["g"], dim=0)
        dv, dg = normlab.weightnorm_backward(case["dw"], cache)
        return {k: {"dv": dv, "dg": dg}[k] for k in keys}

    return ref


def _ref_sn(case):
    W_sn, u, v, sigma = normlab.spectral_norm(case["W"], case["u"], case["v"],
                                              case["n_power_iterations"], case["eps"],
                                              training=True)
    return {"W_sn": W_sn, "u": u, "v": v, "sigma": sigma}


def _ref_renorm(case):
    out, cache = normlab.batchrenorm_forward(
        case["x"], case["gamma"], case["beta"], case["running_mean"], case["running_var"],
        case["r_max"], case["d_max"], case["eps"], case["momentum"])
    return {"out": out, "r": cache.r, "d": cache.d, "running_mean": cache.running_mean,
            "running_var": cache.running_var}


def _ref_renorm_backward(case):
    _, cache = normlab.batchrenorm_forward(
        case["x"], case["gamma"], case["beta"], case["running_mean"], case["running_var"],
        case["r_max"], case["d_max"], case["eps"])
    dx, dgamma, dbeta = normlab.batchrenorm_backward(case["dout"], cache)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


# ----------------------------------------------------------------------------- mistakes
def _norm(kind, mistake):
    def wrong(case):
        return {"out": answers.norm_variant(case, kind, mistake)}

    return wrong


UNBIASED_MSG = ("uses the unbiased variance (divided by n - 1); normalization layers use the "
                "BIASED variance over the normalized axes (divided by n), as torch does.")
EPS_MSG = ("adds eps outside the square root (sqrt(var) + eps); divide by sqrt(var + eps).")


def _common(kind):
    return (Mistake("unbiased", UNBIASED_MSG, _norm(kind, "unbiased")),
            Mistake("eps_outside_sqrt", EPS_MSG, _norm(kind, "eps_outside_sqrt")))


NORMALIZE_MISTAKES = (
    Mistake("complement_axes", "normalizes over the axes NOT listed; axes are the axes the "
            "statistics are taken over (reduced), the others keep one mean and variance per "
            "index.", _norm("normalize", "complement_axes")),
) + _common("normalize")

LAYER_MISTAKES = (
    Mistake("batch_axis_included", "includes the batch axis (0) in layer norm's statistics; "
            "layer norm normalizes each sample on its own, over all its other axes (1, 2, 3), "
            "so its output does not depend on the rest of the batch.",
            _norm("layer_norm", "batch_axis_included")),
    Mistake("last_axis_only", "normalizes over the last axis only (as LayerNorm(W) would); "
            "here the normalized shape is (C, H, W), gamma's shape: statistics over axes "
            "1, 2 and 3 of each sample.", _norm("layer_norm", "last_axis_only")),
) + _common("layer_norm")

INSTANCE_MISTAKES = (
    Mistake("normalizes_over_batch", "includes the batch axis (0) in instance norm's statistics "
            "(that is batch norm); instance norm has one mean and variance per sample AND "
            "channel, over the spatial axes (2, 3) only.",
            _norm("instance_norm", "batch_axis_included")),
    Mistake("channels_included", "includes the channel axis (1) in instance norm's statistics "
            "(that is layer norm); instance norm normalizes each channel of each sample over "
            "the spatial axes (2, 3).", _norm("instance_norm", "channels_included")),
) + _common("instance_norm")


def _group(mistake):
    def wrong(case):
        return {"out": answers.groupnorm_variant(case, mistake)}

    return wrong


GROUP_MISTAKES = (
    Mistake("no_affine", "returns the normalized input without gamma and beta; group norm "
            "scales and shifts each CHANNEL: out = gamma[c] * x_hat + beta[c].",
            _group("no_affine")),
    Mistake("affine_per_group", "applies one scale and shift per GROUP; gamma and beta have one "
            "entry per CHANNEL (shape (C,)), applied after reshaping back to (N, C, H, W): "
            "the groups share statistics, not parameters.",
            matches=_per_group_affine, keys=("out",)),
    Mistake("interleaved_groups", "puts channel c in group c % G (x.reshape(N, C // G, G, ...)); "
            "groups are blocks of consecutive channels: x.reshape(N, G, C // G, H, W), "
            "statistics over axes (2, 3, 4).", _group("interleaved_groups")),
    Mistake("groups_over_batch", "takes each group's statistics over the batch too; group norm "
            "normalizes each sample on its own, over its group's channels and the spatial axes.",
            _group("groups_over_batch")),
    Mistake("unbiased", UNBIASED_MSG, lambda case: {"out": answers.groupnorm_normalize_variant(case, "unbiased")}),
    Mistake("eps_outside_sqrt", EPS_MSG,
            lambda case: {"out": answers.groupnorm_normalize_variant(case, "eps_outside_sqrt")}),
)


def _wn(mistake):
    def wrong(case):
        return answers.weightnorm_variant(case, mistake)

    return wrong


WN_FORWARD_MISTAKES = (
    Mistake("column_norm", "divides each column by its norm (axis 0); weight norm with dim=0 "
            "has one norm per OUTPUT row: ||v_i|| = sqrt(sum_j v_ij**2), w_i = g_i v_i / "
            "||v_i||.", _wn("column_norm")),
    Mistake("frobenius", "divides by the norm of the whole matrix; with dim=0 every output row "
            "has its own norm and its own g_i.", _wn("frobenius")),
)
WN_DG_MISTAKES = (
    Mistake("not_summed", "returns dw * v / ||v|| entry by entry; g_i multiplies the whole row "
            "i, so dg_i = sum_j dw_ij v_ij / ||v_i||: sum over the row (axis 1), shape (out,).",
            _wn("not_summed")),
    Mistake("summed_over_rows", "sums over the rows (axis 0); g has one entry per output row, "
            "so dg_i sums row i: dg = sum(dw * v, axis=1) / ||v_i||.", _wn("summed_over_rows")),
    Mistake("uses_w", "sums dw * w; w = g v / ||v||, so dL/dg_i = sum_j dw_ij v_ij / ||v_i|| "
            "(without the factor g_i).", _wn("uses_w")),
)
WN_DV_MISTAKES = (
    Mistake("norm_constant", "treats ||v|| as a constant: dv = (g / ||v||) dw misses the term "
            "through the norm, - (g dg / ||v||**2) v (which makes dv orthogonal to v).",
            _wn("norm_constant")),
    Mistake("second_term_sign", "adds the term through the norm; d(1/||v||)/dv = -v / ||v||**3, "
            "so it is subtracted: dv = (g / ||v||) dw - (g dg / ||v||**2) v.",
            _wn("second_term_sign")),
    Mistake("second_term_no_g", "drops g from the term through the norm: dv = (g / ||v||) dw - "
            "(g dg / ||v||**2) v.", _wn("second_term_no_g")),
)


def _sn(mistake):
    def wrong(case):
        return answers.spectral_variant(case, mistake)

    return wrong


SN_MISTAKES = (
    Mistake("v_first", "updates v first (v = normalize(W^T u), then u = normalize(W v)); torch "
            "updates u FIRST from the stored v, u = normalize(W v), then v = normalize(W^T u), "
            "and sigma = u . (W v). The order changes every number.", _sn("v_first")),
    Mistake("v_not_updated", "never updates v (or computes sigma with the old v): after u = "
            "normalize(W v), set v = normalize(W^T u), then sigma = u . (W v) with the NEW v.",
            _sn("v_not_updated")),
    Mistake("exact_sigma", "divides by the exact largest singular value (an SVD); spectral norm "
            "divides by the power-iteration estimate sigma = u . (W v), which is what training "
            "uses (and what torch returns).", _sn("exact_sigma")),
    Mistake("frobenius_sigma", "divides by the Frobenius norm of W; sigma estimates the largest "
            "singular value: sigma = u . (W v) after the power iterations.",
            _sn("frobenius_sigma")),
    Mistake("old_vectors_returned", "returns the u and v it was given; return the updated "
            "vectors, the state the next call starts from (torch's _u, _v buffers).",
            _sn("old_vectors_returned")),
)
SN_EPS_MISTAKES = (
    Mistake("no_eps", "normalizes with a / ||a||; torch's normalize is a / max(||a||, eps), "
            "which matters when ||W v|| or ||W^T u|| is below eps, as here.", _sn("no_eps")),
    Mistake("eps_added", "normalizes with a / (||a|| + eps); torch's normalize is "
            "a / max(||a||, eps).", _sn("eps_added")),
) + SN_MISTAKES


def _renorm(mistake):
    def wrong(case):
        return answers.renorm_forward_variant(case, mistake)

    return wrong


def _renorm_back(mistake):
    def wrong(case):
        return answers.renorm_backward_variant(case, mistake)

    return wrong


RENORM_MISTAKES = (
    Mistake("not_clipped", "does not clip r and d: r = clip(sigma_B / sigma, 1 / r_max, r_max), "
            "d = clip((mu_B - mu) / sigma, -d_max, d_max).", _renorm("not_clipped")),
    Mistake("swapped", "swaps the roles of r and d: r scales the normalized value and d shifts "
            "it, x_hat = (x - mu_B) / sigma_B * r + d.", _renorm("swapped")),
    Mistake("r_inverted", "computes r as sigma / sigma_B; r = sigma_B / sigma (batch over "
            "moving), so that x_hat * r turns the batch normalization into the moving one.",
            _renorm("r_inverted")),
    Mistake("d_sign", "computes d as (mu - mu_B) / sigma; d = (mu_B - mu) / sigma.",
            _renorm("d_sign")),
    Mistake("updated_first", "updates the running statistics before computing r and d; r and d "
            "compare the batch with the moving statistics as they were BEFORE this batch.",
            _renorm("updated_first")),
    Mistake("biased_running_var", "blends the biased batch variance into running_var; like "
            "torch's batch norm, running_var gets the unbiased one, var_B * n / (n - 1).",
            _renorm("biased_running_var")),
)
RENORM_BACK_MISTAKES = (
    Mistake("through_r_d", "lets the gradient flow through r and d (r = sigma_B / sigma and d = "
            "(mu_B - mu) / sigma as functions of x, which turns the layer into x -> (x - mu) / "
            "sigma); batch renormalization holds r and d CONSTANT (stop-gradient): dx = r * "
            "gamma / sigma_B * (dout - mean(dout) - x0 * mean(dout * x0)).",
            _renorm_back("through_r_d")),
    Mistake("r_ignored", "drops r from dx (the batch-norm gradient); x_hat = x0 * r + d, so dx "
            "carries the factor r: dx = r * gamma / sigma_B * (dout - mean(dout) - x0 * "
            "mean(dout * x0)).", _renorm_back("r_ignored")),
    Mistake("dgamma_uses_x0", "computes dgamma from x0; out = gamma * x_hat + beta with x_hat = "
            "x0 * r + d, so dgamma = sum(dout * x_hat).", _renorm_back("dgamma_uses_x0")),
)


# ----------------------------------------------------------------------------- checks
OUT = {"out": "the output"}

register(
    Check("normalize_axes", "normalize", _case_normalize, _call_normalize, _ref_normalize,
          _describe_norm, labels=OUT, mistakes=NORMALIZE_MISTAKES, tol=TOL),
    Check("layer_norm", "layer_norm", _case_layer, _call_affine, _ref_layer, _describe_norm,
          labels=OUT, mistakes=LAYER_MISTAKES, tol=TOL),
    Check("instance_norm", "instance_norm", _case_instance, _call_affine, _ref_instance,
          _describe_norm, labels=OUT, mistakes=INSTANCE_MISTAKES, tol=TOL),
    Check("group_norm", "group_norm", _case_group, _call_group, _ref_group, _describe_norm,
          labels=OUT, mistakes=GROUP_MISTAKES, tol=TOL),
    Check("weight_norm_forward", "weight_norm", _case_wn, _call_wn_forward, _ref_wn_forward,
          _describe_wn, labels={"w": "w"}, mistakes=WN_FORWARD_MISTAKES, tol=TOL),
    Check("weight_norm_dg", "weight_norm_backward", _case_wn, _call_wn_backward(("dg",)),
          _ref_wn_backward(("dg",)), _describe_wn, labels={"dg": "dg"},
          mistakes=WN_DG_MISTAKES, tol=TOL),
    Check("weight_norm_dv", "weight_norm_backward", _case_wn, _call_wn_backward(("dv",)),
          _ref_wn_backward(("dv",)), _describe_wn, labels={"dv": "dv"},
          mistakes=WN_DV_MISTAKES, tol=TOL),
    Check("spectral_norm", "spectral_norm", _case_sn, _call_sn, _ref_sn, _describe_sn,
          labels={"W_sn": "W / sigma", "u": "the new u", "v": "the new v", "sigma": "sigma"},
          mistakes=SN_MISTAKES, tol=TOL),
    Check("spectral_norm_eps", "spectral_norm", _case_sn_eps, _call_sn, _ref_sn, _describe_sn,
          labels={"W_sn": "W / sigma", "u": "the new u", "v": "the new v", "sigma": "sigma"},
          mistakes=SN_EPS_MISTAKES, tol=TOL),
    Check("renorm_forward", "batch_renorm_forward", _case_renorm, _call_renorm, _ref_renorm,
          _describe_renorm,
          labels={"out": "out", "r": "r", "d": "d", "running_mean": "the new running_mean",
                  "running_var": "the new running_var"},
          mistakes=RENORM_MISTAKES, tol=TOL),
    Check("renorm_backward", "batch_renorm_backward", _case_renorm_backward,
          _call_renorm_backward, _ref_renorm_backward, _describe_renorm_backward,
          mistakes=RENORM_BACK_MISTAKES, tol=TOL),
)

NORM_CELLS = ("test_normalize", "test_layer_norm", "test_instance_norm", "test_group_norm")
SN_CELLS = ("test_spectral_norm", "test_spectral_norm_eps")
REUSES_NORMALIZE = "layer_norm, instance_norm and group_norm reuse normalize"

ASSIGNMENT = register_assignment(Assignment(
    NAME,
    cells=(
        Cell("test_normalize", 2, ("normalize_axes",), "normalize",
             "normalize over any axes"),
        Cell("test_layer_norm", 3, ("layer_norm",), "layer_norm",
             "layer norm over (C, H, W), per-element affine"),
        Cell("test_instance_norm", 2, ("instance_norm",), "instance_norm",
             "instance norm over (H, W)"),
        Cell("test_group_norm", 4, ("group_norm",), "group_norm",
             "group norm, per-channel affine"),
        Cell("test_weight_norm", 3, ("weight_norm_forward",), "weight_norm",
             "weight norm w = g v / ||v|| per row"),
        Cell("test_weight_norm_dg", 2, ("weight_norm_dg",), "weight_norm_backward",
             "weight norm gradient dg"),
        Cell("test_weight_norm_dv", 3, ("weight_norm_dv",), "weight_norm_backward",
             "weight norm gradient dv"),
        Cell("test_spectral_norm", 4, ("spectral_norm",), "spectral_norm",
             "spectral norm, torch's power-iteration order"),
        Cell("test_spectral_norm_eps", 2, ("spectral_norm_eps",), "spectral_norm",
             "spectral norm when the norms fall below eps"),
        Cell("test_renorm_forward", 3, ("renorm_forward",), "batch_renorm_forward",
             "batch renorm forward: r, d, output, running statistics"),
        Cell("test_renorm_backward", 2, ("renorm_backward",), "batch_renorm_backward",
             "batch renorm backward, r and d held constant"),
    ),
    expected=(
        Expected("complement_axes", "normalize_axes", NORM_CELLS,
                 messages={"test_layer_norm": "generic", "test_instance_norm": "generic",
                           "test_group_norm": "generic"}, note=REUSES_NORMALIZE),
        Expected("unbiased", "normalize_axes", NORM_CELLS, note=REUSES_NORMALIZE),
        Expected("eps_outside_sqrt", "normalize_axes", NORM_CELLS, note=REUSES_NORMALIZE),
        Expected("batch_axis_included", "layer_norm", ("test_layer_norm",)),
        Expected("last_axis_only", "layer_norm", ("test_layer_norm",)),
        Expected("normalizes_over_batch", "instance_norm", ("test_instance_norm",)),
        Expected("channels_included", "instance_norm", ("test_instance_norm",)),
        Expected("no_affine", "group_norm", ("test_group_norm",)),
        Expected("affine_per_group", "group_norm", ("test_group_norm",)),
        Expected("interleaved_groups", "group_norm", ("test_group_norm",)),
        Expected("groups_over_batch", "group_norm", ("test_group_norm",)),
        Expected("column_norm", "weight_norm_forward", ("test_weight_norm",)),
        Expected("frobenius", "weight_norm_forward", ("test_weight_norm",)),
        Expected("not_summed", "weight_norm_dg", ("test_weight_norm_dg",)),
        Expected("uses_w", "weight_norm_dg", ("test_weight_norm_dg",)),
        Expected("norm_constant", "weight_norm_dv", ("test_weight_norm_dv",)),
        Expected("second_term_sign", "weight_norm_dv", ("test_weight_norm_dv",)),
        Expected("second_term_no_g", "weight_norm_dv", ("test_weight_norm_dv",)),
        Expected("v_first", "spectral_norm", SN_CELLS),
        Expected("v_not_updated", "spectral_norm", SN_CELLS),
        Expected("exact_sigma", "spectral_norm", SN_CELLS),
        Expected("frobenius_sigma", "spectral_norm", SN_CELLS),
        Expected("old_vectors_returned", "spectral_norm", SN_CELLS),
        Expected("no_eps", "spectral_norm_eps", ("test_spectral_norm_eps",)),
        Expected("eps_added", "spectral_norm_eps", ("test_spectral_norm_eps",)),
        Expected("not_clipped", "renorm_forward", ("test_renorm_forward",)),
        Expected("swapped", "renorm_forward", ("test_renorm_forward",)),
        Expected("r_inverted", "renorm_forward", ("test_renorm_forward",)),
        Expected("d_sign", "renorm_forward", ("test_renorm_forward",)),
        Expected("updated_first", "renorm_forward", ("test_renorm_forward",)),
        Expected("biased_running_var", "renorm_forward", ("test_renorm_forward",)),
        Expected("through_r_d", "renorm_backward", ("test_renorm_backward",)),
        Expected("r_ignored", "renorm_backward", ("test_renorm_backward",)),
        Expected("dgamma_uses_x0", "renorm_backward", ("test_renorm_backward",)),
    ),
))
