"""Assignment 04-test-time: its cases, references, checks with their recognised mistakes,
test cells with points and the "mistake -> score" table (what the student writes: the
package docstring; the mistakes' outputs: ``answers``)."""

from __future__ import annotations

import numpy as np

import normlab

from ...cases import pick_shape
from ...mistakes import Mistake, channel_shape
from ...registry import Assignment, Cell, Check, Expected, register, register_assignment
from . import NAME, answers
from normlab_grading.check.protocols.ch04 import (  # the calling protocols
    RAISED_VALUE_ERROR,
    RETURNED,
    RAISED_OTHER,
    _describe_layer,
    _describe_fold,
    _call_layer,
    _call_single,
    _call_momentum,
    _call_fold,
    _describe_momentum,
)


LAYER = "BatchNorm1d"
TOL = 1e-9  # float64 rounding, relative to the largest expected value


# ----------------------------------------------------------------------------- cases
def _batches(rng, shape, k, tiny=False):
    """``k`` batches of ``shape`` (N, C) or (N, C, L), per-channel means and spreads that
    drift a little from batch to batch (so the running statistics move)."""
    c = shape[1]
    keep = channel_shape(len(shape))
    means = rng.uniform(-3, 3, c)
    # normal: spreads 1..4, where eps = 1e-5 barely matters; tiny: variances near eps
    scales = rng.uniform(2e-3, 5e-3, c) if tiny else rng.uniform(1.0, 4.0, c)
    out = []
    for _ in range(k):
        m = means + rng.normal(0, 0.5, c) * (scales if tiny else 1.0)
        s = scales * rng.uniform(0.8, 1.25, c)
        out.append(m.reshape(keep) + s.reshape(keep) * rng.standard_normal(shape))
    return out


def _layer_case(rng, hidden, modes, *, momentum, visible=(8, 3), ranges=((10, 40), (4, 9)),
                tiny=False, eps=1e-5):
    shape = pick_shape(rng, hidden, visible, ranges)
    xs = _batches(rng, shape, len(modes), tiny=tiny)
    if momentum == "random":
        # never 0.5, where the Keras and torch conventions coincide
        momentum = 0.1 if not hidden else float(np.round(rng.uniform(0.05, 0.4), 2))
    case = {f"x{i}": x for i, x in enumerate(xs)}
    case.update(gamma=rng.uniform(0.5, 2.0, shape[1]), beta=rng.normal(0, 1, shape[1]),
                eps=eps, momentum=momentum, modes=tuple(modes))
    return case


def _case_train(rng, hidden):
    return _layer_case(rng, hidden, ("train",) * 3, momentum="random")


def _case_cumulative(rng, hidden):
    return _layer_case(rng, hidden, ("train",) * 4, momentum=None)


def _case_eval(rng, hidden):
    return _layer_case(rng, hidden, ("train", "train", "eval", "eval", "train"),
                       momentum="random")


def _case_eps(rng, hidden):
    # cumulative average, so the running variances are tiny too: eps matters in eval
    return _layer_case(rng, hidden, ("train", "train", "eval"), momentum=None, tiny=True)


def _case_3d(rng, hidden):
    return _layer_case(rng, hidden, ("train", "train", "eval"), momentum="random",
                       visible=(4, 3, 5), ranges=((5, 8), (4, 7), (6, 9)))


def _case_single(rng, hidden):
    case = _layer_case(rng, hidden, ("train", "train"), momentum="random")
    c = case["gamma"].shape[0]
    case["x_single"] = rng.normal(0, 2, (1, c))
    case["x_eval"] = rng.normal(0, 2, (1, c))
    return case


def _case_momentum(rng, hidden):
    if not hidden:
        return {"values": np.array([0.99, 0.9, 0.5, 0.0, 1.0]), "invalid": 1.5}
    values = np.append(np.round(rng.uniform(0.0, 1.0, 5), 3), 0.999)
    return {"values": values, "invalid": float(rng.choice([-0.5, -1.0, 1.01, 2.5]))}


def _square_linear(rng, hidden):
    (c,) = pick_shape(rng, hidden, (4,), ((5, 9),))
    return {"W": rng.normal(0, 1, (c, c)), "b": rng.normal(0, 1, c)}


def _square_conv(rng, hidden):
    c, k = (3, 3) if not hidden else (int(rng.integers(4, 7)), int(rng.choice([1, 2, 5])))
    return {"W": rng.normal(0, 1, (c, c, k, k)), "b": None}


def _fold_case(rng, hidden, layer):
    case = layer(rng, hidden)
    c = case["W"].shape[0]
    case.update(gamma=rng.uniform(0.5, 2.0, c) * rng.choice([-1.0, 1.0], c),
                beta=rng.normal(0, 1, c), running_mean=rng.normal(0, 2, c),
                running_var=rng.uniform(0.2, 5.0, c), eps=1e-5)
    return case


def _case_fold_linear(rng, hidden):
    return _fold_case(rng, hidden, _square_linear)


def _case_fold_conv(rng, hidden):
    return _fold_case(rng, hidden, _square_conv)


# ----------------------------------------------------------------------------- references
def _ref_layer(case):
    layer = normlab.BatchNorm1d(case["gamma"].shape[0], eps=case["eps"],
                                momentum=case["momentum"])
    layer.weight[...] = case["gamma"]
    layer.bias[...] = case["beta"]
    outs = {}
    for i, mode in enumerate(case["modes"]):
        layer.train(mode == "train")
        outs[f"out{i}"] = layer(case[f"x{i}"])
    outs.update(running_mean=layer.running_mean.copy(), running_var=layer.running_var.copy(),
                num_batches_tracked=np.array(int(layer.num_batches_tracked)))
    return outs


def _ref_single(case):
    ref = _ref_layer(case)
    layer = normlab.BatchNorm1d(case["gamma"].shape[0], eps=case["eps"])
    layer.weight[...] = case["gamma"]
    layer.bias[...] = case["beta"]
    layer.running_mean[...] = ref["running_mean"]
    layer.running_var[...] = ref["running_var"]
    return {"outcome": RAISED_VALUE_ERROR, "eval_raised": 0,
            "eval_out": layer.eval()(case["x_eval"])}


def _ref_fold(case):
    c = case["W"].shape[0]
    bn = normlab.BatchNorm1d(c, eps=case["eps"])
    bn.weight[...] = case["gamma"]
    bn.bias[...] = case["beta"]
    bn.running_mean[...] = case["running_mean"]
    bn.running_var[...] = case["running_var"]
    W, b = normlab.fold_batchnorm(case["W"], case["b"], bn.eval())
    return {"W": W, "b": b}


# ----------------------------------------------------------------------------- mistakes
def _layer(mistake, keys=None):
    """The outputs of ``answers.bn_layer_replay`` with ``mistake``: only ``keys``
    (a callable ``case -> keys``, or a tuple; default the running statistics)."""

    def wrong(case):
        out = answers.bn_layer_replay(case, mistake)
        ks = keys(case) if callable(keys) else (keys or ("running_mean", "running_var"))
        return {k: out[k] for k in ks}

    return wrong


def _outs(mode=None):
    def keys(case):
        return tuple(f"out{i}" for i, m in enumerate(case["modes"]) if mode in (None, m))

    return keys


KERAS = Mistake(
    "keras_momentum",
    "updates the running statistics with the Keras convention, running = m * running + "
    "(1 - m) * batch; torch's momentum is the weight of the NEW batch: running = (1 - m) * "
    "running + m * batch (torch 0.1 is Keras 0.9).",
    _layer("keras_momentum"),
)
BIASED_RUNNING = Mistake(
    "biased_running_var",
    "stores the biased batch variance (divided by n) in running_var; torch normalizes with "
    "the biased variance but blends the UNBIASED one, var * n / (n - 1), into running_var.",
    _layer("biased_running_var", ("running_var",)),
)
VAR_INIT_ZERO = Mistake(
    "running_var_init_zero",
    "starts running_var at zeros (as CS231n's skeleton does); torch starts running_mean at "
    "0 and running_var at 1.",
    _layer("running_var_init_zero", ("running_var",)),
)
NO_NBT = Mistake(
    "no_num_batches_tracked",
    "does not count num_batches_tracked: it starts at 0 and every training call adds 1 (eval "
    "calls do not). With momentum=None it sets the weight of the new batch, 1 / "
    "num_batches_tracked.",
    _layer("no_num_batches_tracked", ("num_batches_tracked",)),
)
UNBIASED_FORWARD = Mistake(
    "unbiased_forward",
    "normalizes the training batch with the unbiased variance (divided by n - 1); the "
    "forward pass uses the BIASED batch variance (divided by n), only running_var gets the "
    "unbiased one.",
    _layer("unbiased_forward", _outs("train")),
)
NONE_AS_DEFAULT = Mistake(
    "momentum_none_as_default",
    "treats momentum=None like the default 0.1; with momentum=None torch keeps a cumulative "
    "(equal-weight) average of the batches: f = 1 / num_batches_tracked, so the first batch "
    "replaces the initial values.",
    _layer("momentum_none_as_default"),
)
OFF_BY_ONE = Mistake(
    "cumulative_off_by_one",
    "averages with f = 1 / (num_batches_tracked + 1), as if the initial values (mean 0, "
    "variance 1) were a batch; torch adds 1 to num_batches_tracked first and uses f = 1 / "
    "num_batches_tracked, so the first batch replaces the initial values.",
    _layer("cumulative_off_by_one"),
)
BATCH_IN_EVAL = Mistake(
    "batch_stats_in_eval",
    "normalizes with the batch statistics in eval mode; after eval() the layer must use "
    "running_mean and running_var (that is what they are for: the prediction for one "
    "example must not depend on the rest of the batch).",
    _layer("batch_stats_in_eval", _outs("eval")),
)
UPDATES_IN_EVAL = Mistake(
    "updates_in_eval",
    "updates the running statistics (and num_batches_tracked) in eval mode too; only "
    "training calls update them: in eval the layer is a fixed function.",
    _layer("updates_in_eval", ("running_mean", "running_var", "num_batches_tracked")),
)
EPS_OUTSIDE = Mistake(
    "eps_outside_sqrt",
    "adds eps outside the square root (sqrt(var) + eps); torch divides by sqrt(var + eps), "
    "in training and in eval (at a tolerance of 1e-9 this shows for any variance).",
    _layer("eps_outside_sqrt", _outs()),
)
EPS_IGNORED = Mistake(
    "eps_ignored",
    "ignores eps: divide by sqrt(var + eps), in training and in eval (at a tolerance of "
    "1e-9 this shows for any variance).",
    _layer("eps_ignored", _outs()),
)
N_IS_BATCH = Mistake(
    "n_is_batch_size",
    "uses n = N (the batch size) in the unbiased correction n / (n - 1) for (N, C, L) "
    "input; each channel has n = N * L values there.",
    _layer("n_is_batch_size", ("running_var",)),
)
NO_TRANSPOSE = Mistake(
    "reshape_without_transpose",
    "reshapes (N, C, L) straight to (N * L, C), which mixes channels and positions: move "
    "the channel axis last first, x.transpose(0, 2, 1).reshape(-1, C), or reduce over axes "
    "(0, 2) directly.",
    _layer("reshape_without_transpose", lambda case: _outs()(case) + ("running_mean",)),
)
NO_ERROR = Mistake(
    "no_error_batch_of_one",
    "returns an output for a training batch with one value per channel; its variance is 0 "
    "and its unbiased variance undefined (n - 1 = 0): raise ValueError, as torch does "
    "(\"Expected more than 1 value per channel when training\").",
    lambda case: {"outcome": RETURNED},
)
WRONG_EXCEPTION = Mistake(
    "wrong_exception",
    "raises an exception other than ValueError for a training batch with one value per "
    "channel; raise ValueError, as torch does.",
    lambda case: {"outcome": RAISED_OTHER},
)
EVAL_RAISES = Mistake(
    "eval_batch_of_one_raises",
    "refuses a batch of one in eval mode too; eval normalizes with the running statistics, "
    "so any batch size works, N = 1 included (serving one example at a time).",
    lambda case: {"eval_raised": 1},
)

MOMENTUM_IDENTITY = Mistake(
    "returns_m",
    "returns the Keras momentum unchanged; the two conventions weight opposite terms "
    "(Keras: moving = m * moving + (1 - m) * batch; torch: running = (1 - m) * running + "
    "m * batch), so torch_m = 1 - keras_m (Keras 0.99 is torch 0.01).",
    lambda case: {"torch_momentum": case["values"].copy()},
)
MOMENTUM_NO_ERROR = Mistake(
    "no_error_invalid",
    "returns a value for a momentum outside [0, 1]; such a momentum is not a weighted "
    "average: raise ValueError.",
    lambda case: {"outcome": RETURNED},
)
MOMENTUM_WRONG_EXC = Mistake(
    "invalid_wrong_exception",
    "raises an exception other than ValueError for a momentum outside [0, 1]; raise "
    "ValueError, the exception for an invalid argument value.",
    lambda case: {"outcome": RAISED_OTHER},
)


def _fold(mistake):
    def wrong(case):
        return answers.fold_variant(case, mistake)

    return wrong


FOLD_NO_SHIFT = Mistake(
    "bias_no_shift",
    "only scales the bias (b' = b * s); BN also subtracts the running mean and adds beta: "
    "b' = (b - running_mean) * s + beta, with s = gamma / sqrt(running_var + eps).",
    _fold("bias_no_shift"),
)
FOLD_NO_BETA = Mistake(
    "bias_no_beta",
    "forgets beta in the bias: b' = (b - running_mean) * s + beta.",
    _fold("bias_no_beta"),
)
FOLD_NO_MEAN = Mistake(
    "bias_no_mean",
    "forgets to subtract the running mean in the bias: b' = (b - running_mean) * s + beta.",
    _fold("bias_no_mean"),
)
FOLD_NOT_SCALED = Mistake(
    "bias_not_scaled",
    "does not scale the old bias: b passes through BN's scaling too, so b' = "
    "(b - running_mean) * s + beta, not b - running_mean * s + beta.",
    _fold("bias_not_scaled"),
)
FOLD_COLUMNS = Mistake(
    "scales_columns",
    "scales the columns (input features / input channels, axis 1) of W; BN scales each "
    "OUTPUT channel, so row i of W (axis 0) is multiplied by s[i]: W * s[:, None] for a "
    "Linear, W * s[:, None, None, None] for a convolution.",
    _fold("scales_columns"),
)
FOLD_NO_SQRT = Mistake(
    "no_sqrt",
    "divides by the variance instead of the standard deviation: s = gamma / sqrt(running_var "
    "+ eps).",
    _fold("no_sqrt"),
)
FOLD_MISTAKES = (FOLD_COLUMNS, FOLD_NO_SHIFT, FOLD_NO_BETA, FOLD_NO_MEAN, FOLD_NOT_SCALED,
                 FOLD_NO_SQRT)


# ----------------------------------------------------------------------------- checks
def _layer_labels(n_calls):
    labels = {f"out{i}": f"forward(x{i})" for i in range(n_calls)}
    labels.update(running_mean="running_mean after the last call",
                  running_var="running_var after the last call",
                  num_batches_tracked="num_batches_tracked after the last call")
    return labels


def _layer_check(cid, make_case, mistakes, n_calls):
    return Check(cid, LAYER, make_case, _call_layer, _ref_layer, _describe_layer,
                 labels=_layer_labels(n_calls), mistakes=mistakes, tol=TOL)


# every layer check: the running-statistics rules and eps (at a tolerance of 1e-9 even
# normal variances show where eps goes); checks with a float momentum: the initial values
# and the counter (with momentum=None the first batch replaces the initial values);
# checks with eval calls: the eval-mode mistakes
COMMON = (KERAS, BIASED_RUNNING, UNBIASED_FORWARD, EPS_OUTSIDE, EPS_IGNORED)
FLOAT_MOMENTUM = (VAR_INIT_ZERO, NO_NBT)
EVAL = (BATCH_IN_EVAL, UPDATES_IN_EVAL)
# the batch-of-one check ends with an eval call: mistakes that change the running
# statistics or the normalization show in its output
BATCH_OF_ONE = tuple(
    Mistake(m.id, m.message, _layer(m.id, ("eval_out",)))
    for m in (BATCH_IN_EVAL, KERAS, BIASED_RUNNING, VAR_INIT_ZERO, EPS_OUTSIDE, EPS_IGNORED)
)

register(
    _layer_check("bn_layer_train", _case_train, COMMON + FLOAT_MOMENTUM, 3),
    _layer_check("bn_layer_cumulative", _case_cumulative,
                 (NONE_AS_DEFAULT, OFF_BY_ONE) + COMMON, 4),
    _layer_check("bn_layer_eval", _case_eval, EVAL + COMMON + FLOAT_MOMENTUM, 5),
    _layer_check("bn_layer_eps", _case_eps,
                 (EPS_OUTSIDE, EPS_IGNORED) + EVAL + (NONE_AS_DEFAULT, OFF_BY_ONE)
                 + COMMON[:3], 3),
    _layer_check("bn_layer_3d", _case_3d,
                 (N_IS_BATCH, NO_TRANSPOSE) + EVAL + COMMON + FLOAT_MOMENTUM, 3),
    Check("bn_layer_batch_of_one", LAYER, _case_single, _call_single, _ref_single,
          _describe_layer,
          labels={"outcome": "what a training call on a batch of one does",
                  "eval_raised": "whether an eval call on a batch of one raised",
                  "eval_out": "the eval-mode output for a batch of one"},
          mistakes=(NO_ERROR, WRONG_EXCEPTION, EVAL_RAISES) + BATCH_OF_ONE, tol=TOL),
    Check("keras_momentum", "keras_to_torch_momentum", _case_momentum, _call_momentum,
          lambda case: {"torch_momentum": np.array([normlab.keras_to_torch_momentum(float(m))
                                                    for m in case["values"]]),
                        "outcome": RAISED_VALUE_ERROR},
          _describe_momentum,
          labels={"torch_momentum": "the torch momenta",
                  "outcome": "what it does for a momentum outside [0, 1]"},
          mistakes=(MOMENTUM_IDENTITY, MOMENTUM_NO_ERROR, MOMENTUM_WRONG_EXC), tol=1e-12),
    Check("fold_linear", "fold_batchnorm", _case_fold_linear, _call_fold, _ref_fold,
          _describe_fold, labels={"W": "the folded weight", "b": "the folded bias"},
          mistakes=FOLD_MISTAKES, tol=TOL),
    # b=None: "bias not scaled" gives the right answer there
    Check("fold_conv", "fold_batchnorm", _case_fold_conv, _call_fold, _ref_fold,
          _describe_fold, labels={"W": "the folded weight", "b": "the folded bias"},
          mistakes=tuple(m for m in FOLD_MISTAKES if m is not FOLD_NOT_SCALED), tol=TOL),
)

LAYER_CELLS = ("test_bn_layer_train", "test_bn_layer_cumulative", "test_bn_layer_eval",
               "test_bn_layer_eps", "test_bn_layer_3d", "test_bn_layer_batch_of_one")
FOLD_CELLS = ("test_fold_linear", "test_fold_conv")
SAME_CLASS = "every test of the layer replays it"

ASSIGNMENT = register_assignment(Assignment(
    NAME,
    cells=(
        Cell("test_bn_layer_train", 5, ("bn_layer_train",), LAYER,
             "training calls: output, running statistics, num_batches_tracked"),
        Cell("test_bn_layer_cumulative", 3, ("bn_layer_cumulative",), LAYER,
             "momentum=None: cumulative average"),
        Cell("test_bn_layer_eval", 4, ("bn_layer_eval",), LAYER,
             "train/eval/train: eval uses and keeps the running statistics"),
        Cell("test_bn_layer_eps", 2, ("bn_layer_eps",), LAYER,
             "variances comparable to eps"),
        Cell("test_bn_layer_3d", 3, ("bn_layer_3d",), LAYER, "(N, C, L) input"),
        Cell("test_bn_layer_batch_of_one", 2, ("bn_layer_batch_of_one",), LAYER,
             "a batch of one: ValueError in training, fine in eval"),
        Cell("test_keras_momentum", 2, ("keras_momentum",), "keras_to_torch_momentum",
             "Keras momentum to torch momentum"),
        Cell("test_fold_linear", 5, ("fold_linear",), "fold_batchnorm",
             "folding BN into a Linear layer"),
        Cell("test_fold_conv", 4, ("fold_conv",), "fold_batchnorm",
             "folding BN into a convolution without bias"),
    ),
    expected=(
        Expected("keras_momentum", "bn_layer_train", LAYER_CELLS, note=SAME_CLASS),
        Expected("biased_running_var", "bn_layer_train", LAYER_CELLS, note=SAME_CLASS),
        Expected("running_var_init_zero", "bn_layer_train",
                 ("test_bn_layer_train", "test_bn_layer_eval", "test_bn_layer_3d",
                  "test_bn_layer_batch_of_one"),
                 note="with momentum=None the first batch replaces it"),
        Expected("no_num_batches_tracked", "bn_layer_train",
                 ("test_bn_layer_train", "test_bn_layer_cumulative", "test_bn_layer_eval",
                  "test_bn_layer_eps", "test_bn_layer_3d"),
                 messages={"test_bn_layer_cumulative": "exception",
                           "test_bn_layer_eps": "exception"},
                 note="with momentum=None, f = 1 / num_batches_tracked then divides by zero"),
        Expected("unbiased_forward", "bn_layer_train", LAYER_CELLS[:5],
                 note="the batch-of-one test only compares an eval output"),
        Expected("eps_outside_sqrt", "bn_layer_eps", LAYER_CELLS, note=SAME_CLASS),
        Expected("eps_ignored", "bn_layer_eps", LAYER_CELLS, note=SAME_CLASS),
        Expected("momentum_none_as_default", "bn_layer_cumulative",
                 ("test_bn_layer_cumulative", "test_bn_layer_eps"),
                 note="the eps test uses momentum=None too"),
        Expected("cumulative_off_by_one", "bn_layer_cumulative",
                 ("test_bn_layer_cumulative", "test_bn_layer_eps"),
                 note="the eps test uses momentum=None too"),
        Expected("batch_stats_in_eval", "bn_layer_eval",
                 ("test_bn_layer_eval", "test_bn_layer_eps", "test_bn_layer_3d",
                  "test_bn_layer_batch_of_one"), note="every test with an eval call"),
        Expected("updates_in_eval", "bn_layer_eval",
                 ("test_bn_layer_eval", "test_bn_layer_eps", "test_bn_layer_3d"),
                 note="every test that ends with the running statistics"),
        Expected("n_is_batch_size", "bn_layer_3d", ("test_bn_layer_3d",)),
        Expected("reshape_without_transpose", "bn_layer_3d", ("test_bn_layer_3d",)),
        Expected("no_error_batch_of_one", "bn_layer_batch_of_one",
                 ("test_bn_layer_batch_of_one",)),
        Expected("wrong_exception", "bn_layer_batch_of_one", ("test_bn_layer_batch_of_one",)),
        Expected("eval_batch_of_one_raises", "bn_layer_batch_of_one",
                 ("test_bn_layer_batch_of_one",)),
        Expected("returns_m", "keras_momentum", ("test_keras_momentum",)),
        Expected("no_error_invalid", "keras_momentum", ("test_keras_momentum",)),
        Expected("invalid_wrong_exception", "keras_momentum", ("test_keras_momentum",)),
        Expected("scales_columns", "fold_linear", FOLD_CELLS),
        Expected("bias_no_shift", "fold_linear", FOLD_CELLS),
        Expected("bias_no_beta", "fold_linear", FOLD_CELLS),
        Expected("bias_no_mean", "fold_linear", FOLD_CELLS),
        Expected("bias_not_scaled", "fold_linear", ("test_fold_linear",),
                 note="the convolution has no bias to scale"),
        Expected("no_sqrt", "fold_linear", FOLD_CELLS),
    ),
))
