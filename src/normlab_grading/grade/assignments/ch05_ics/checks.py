"""Assignment 05-ics: its cases, references, checks with their recognised mistakes,
test cells with points and the "mistake -> score" table (what the student writes: the
package docstring; the mistakes' outputs: ``answers``)."""

from __future__ import annotations

import re

import numpy as np

from ...cases import pick_shape
from ...mistakes import Mistake
from ...registry import Assignment, Cell, Check, Expected, register, register_assignment
from . import NAME, answers
from normlab_grading.check.protocols.ch05 import (  # the calling protocols
    _param_names,
    network,
    _describe_drift,
    _describe_net,
    _describe_experiment,
    _call_drift,
    _call_gc,
    _call_landscape,
    _call_experiment,
)


# the experiment trains with torch.nn.BatchNorm1d: not the graded job here
TORCH_BATCHNORM = ("torch.nn.modules.batchnorm", "torch.nn.functional.batch_norm",
                   "torch.batch_norm")


# ----------------------------------------------------------------------------- cases
def _case_drift(rng, hidden):
    p, b, u = pick_shape(rng, hidden, (6, 16, 5), ((7, 10), (20, 40), (6, 12)))
    start = rng.normal(0, 1, u)
    means = start + np.cumsum(rng.normal(0, 0.4, (p, u)), axis=0)
    spreads = rng.uniform(0.5, 2.0, u) * np.exp(np.cumsum(rng.normal(0, 0.15, (p, u)), axis=0))
    H = means[:, None, :] + spreads[:, None, :] * rng.standard_normal((p, b, u))
    return {"H": H}


def _case_net(rng, hidden, bn):
    """A small MLP for binary classification, its batch and which layer to measure."""
    b, d = pick_shape(rng, hidden, (16, 6), ((20, 40), (4, 9)))
    widths = [8, 8] if not hidden else [int(w) for w in rng.integers(5, 11, 3)]
    case = {"bn": bool(bn), "n_hidden": len(widths)}
    x = rng.normal(0, 1, (b, d)) * rng.uniform(0.5, 2.0, d) + rng.normal(0, 0.5, d)
    w_true = rng.normal(0, 1, d)
    y = ((x @ w_true + rng.normal(0, 0.5, b)) > 0).astype(np.float64)
    case.update(x=x, y=y)
    fan_in = d
    for i, width in enumerate(widths):
        case[f"w{i}"] = rng.normal(0, np.sqrt(2.0 / fan_in), (width, fan_in)) * rng.uniform(0.8, 1.5)
        if bn:
            case[f"gamma{i}"] = rng.uniform(0.6, 1.4, width)
            case[f"beta{i}"] = rng.normal(0, 0.3, width)
        else:
            case[f"b{i}"] = rng.normal(0, 0.3, width)
        fan_in = width
    k = len(widths)
    case[f"w{k}"] = rng.normal(0, np.sqrt(1.0 / fan_in), (1, fan_in))
    case[f"b{k}"] = rng.normal(0, 0.3, 1)
    target = 1 if not hidden else int(rng.integers(1, k + 1))
    case["target"] = f"w{target}"
    case["preceding"] = tuple(n for n in _param_names(case) if _layer_of(n) < target)
    case["lr"] = 0.5 if not hidden else float(np.round(rng.uniform(0.2, 1.0), 2))
    return case


def _layer_of(name: str) -> int:
    return int(re.search(r"\d+$", name).group())


def _case_gc_bn(rng, hidden):
    return _case_net(rng, hidden, bn=True)


def _case_gc_plain(rng, hidden):
    return _case_net(rng, hidden, bn=False)


def _case_landscape(rng, hidden):
    case = _case_net(rng, hidden, bn=True)
    steps = [0.1, 0.2, 0.4, 0.8] if not hidden else sorted(
        float(s) for s in np.round(rng.uniform(0.05, 1.5, 5), 3))
    case["step_sizes"] = tuple(steps)
    return case


def _case_experiment(use_bn):
    def make(rng, hidden):
        if not hidden:
            return {"seed": 1, "use_bn": use_bn, "epochs": 2}
        return {"seed": int(rng.integers(2, 1_000_000)), "use_bn": use_bn, "epochs": 3}

    return make


# ----------------------------------------------------------------------------- references
def _ref_drift(case):
    return answers.drift_statistics(case["H"])


def _loss_r(loss_fn):
    return lambda p: loss_fn(p).reshape(1)


def _ref_gc(keys):
    def ref(case):
        from normlab import ics

        loss_fn, params = network(case)
        r = ics.gradient_change(_loss_r(loss_fn), params, case["target"],
                                list(case["preceding"]), case["lr"])
        return {k: float(r[k][0]) for k in keys}

    return ref


def _ref_landscape(case):
    from normlab import ics

    loss_fn, params = network(case)
    r = ics.landscape_along_gradient(_loss_r(loss_fn), params, list(case["step_sizes"]))
    return {"loss": r["loss"][:, 0], "grad_change": r["grad_change"][:, 0],
            "beta": float(r["beta"][0])}


def _ref_experiment(case):
    return {"losses": answers.article002_run(case["seed"], case["use_bn"], case["epochs"])}


# ----------------------------------------------------------------------------- mistakes
def _drift(mistake, keys=("drift", "jump", "rel_jump")):
    def wrong(case):
        out = answers.drift_statistics(case["H"], mistake)
        return {k: out[k] for k in keys}

    return wrong


DRIFT_UNITS = Mistake(
    "units_axis",
    "takes the mean and spread of each example over the units (axis 2); the distribution "
    "of a unit's input is over the probe batch: per unit, mean and std over axis 1 "
    "(examples), then compare those between probes (axis 0).",
    _drift("units_axis"),
)
DRIFT_POOLED = Mistake(
    "pooled",
    "pools all units into one mean and one spread per probe (over axes 1 and 2); measure "
    "each unit separately (over axis 1), then average the units' |changes|: opposite moves "
    "of two units must not cancel.",
    _drift("pooled"),
)
DRIFT_SIGNED = Mistake(
    "signed",
    "averages signed changes (mu_last - mu_first, mu_{t+1} - mu_t), so moves up and down "
    "cancel; drift and jump average the ABSOLUTE changes |mu_last - mu_first| and "
    "|mu_{t+1} - mu_t|.",
    _drift("signed"),
)
DRIFT_UNBIASED = Mistake(
    "unbiased_std",
    "uses the unbiased std (ddof=1); the spread of a layer's inputs is the biased (population) "
    "std over the probe batch, as probe_stats records it.",
    _drift("unbiased_std", ("rel_jump",)),
)
DRIFT_FIRST_STD = Mistake(
    "rel_first_std",
    "divides the jump by the spread at the first probe only; rel_jump divides by the "
    "spread averaged over all probes and units, mean_{t,j} sigma_t(j).",
    _drift("rel_first_std", ("rel_jump",)),
)


def _gc(mistake, keys):
    def wrong(case):
        loss_fn, params = network(case)
        out = answers.gradient_change_variant(loss_fn, params, case["target"],
                                                    list(case["preceding"]), case["lr"],
                                                    mistake)
        return {k: out[k] for k in keys}

    return wrong


GC_MESSAGES = {
    "updates_target": (
        "updates the target layer itself and compares its gradient before and after; ICS "
        "is about the layers BEFORE it: G' is the target's gradient after one SGD step of "
        "the preceding parameters only (the target's own weights unchanged)."),
    "updates_all": (
        "updates every parameter (the target and the layers after it too) before computing "
        "G'; only the preceding parameters take the step: G' measures how the target's "
        "gradient changes because the layers before it moved."),
    "ascent": (
        "moves the preceding parameters along +lr * gradient; an SGD step goes against the "
        "gradient: W_i' = W_i - lr * dL/dW_i."),
    "norm_of_g_prime": (
        "returns ||G'|| as the change; the change of the gradient is the norm of the "
        "DIFFERENCE, ||G - G'||."),
    "relative": (
        "returns the relative change ||G - G'|| / ||G||; here diff is the absolute change "
        "||G - G'|| (divide by ||G|| only when plotting the relative change)."),
    "cos_not_normalized": (
        "returns the dot product <G, G'> as the cosine; divide it by ||G|| * ||G'|| "
        "(both flattened)."),
}


def _gc_mistakes(key, ids):
    return tuple(Mistake(i, GC_MESSAGES[i], _gc(i, (key,))) for i in ids)


def _land(mistake):
    def wrong(case):
        loss_fn, params = network(case)
        out = answers.landscape_variant(loss_fn, params, list(case["step_sizes"]),
                                              mistake)
        keys = {"ascent": ("loss", "grad_change", "beta"),
                "normalized_direction": ("loss", "grad_change", "beta"),
                "new_gradient_norm": ("grad_change", "beta"),
                "beta_not_normalized": ("beta",), "beta_mean": ("beta",)}[mistake]
        return {k: out[k] for k in keys}

    return wrong


LAND_MISTAKES = (
    Mistake("steps_uphill", "steps to theta + eta * g; the landscape is explored where gradient "
            "descent goes, at theta - eta * g.", _land("ascent")),
    Mistake("normalized_direction", "steps along the unit vector g / ||g||; Santurkar et "
            "al. step along the gradient itself, theta - eta * g (eta is a learning rate, "
            "not a distance).", _land("normalized_direction")),
    Mistake("new_gradient_norm", "reports ||grad L(theta - eta g)|| as the gradient change; "
            "the change is the norm of the difference, ||grad L(theta - eta g) - g||.",
            _land("new_gradient_norm")),
    Mistake("beta_not_normalized", "computes beta as max_eta change / eta without dividing by "
            "||g||; the distance moved is eta * ||g||, so beta = max_eta change / (eta * ||g||).",
            _land("beta_not_normalized")),
    Mistake("beta_mean", "averages change / (eta * ||g||) over the step sizes; beta is the "
            "largest one (max over eta).", _land("beta_mean")),
)


def _exp(mistake):
    def wrong(case):
        return {"losses": answers.article002_run(case["seed"], case["use_bn"],
                                                        case["epochs"], mistake)}

    return wrong


EXP_MESSAGES = {
    "eval_mode_forgotten": (
        "measures the epoch's loss in training mode: BN then normalizes the 800 examples with "
        "their own batch statistics (and updates the running ones). Call model.eval() before "
        "measuring and model.train() before training again."),
    "train_mode_not_restored": (
        "leaves the model in eval mode after measuring the first epoch's loss, so from the "
        "second epoch on BN trains with its running statistics: call model.train() at the "
        "start of every epoch."),
    "step_loss_mean": (
        "reports the mean of the epoch's mini-batch losses; report the loss of the model "
        "AFTER the epoch: the mean binary cross-entropy on all 800 training examples, in eval "
        "mode."),
    "test_loss": (
        "reports the loss on the test set; the experiment reports the training loss (the "
        "800 training examples), in eval mode, after every epoch."),
    "same_order_every_epoch": (
        "draws the same mini-batch order in every epoch (the generator is re-created and "
        "re-seeded each epoch); create ONE torch.Generator().manual_seed(seed) before the "
        "first epoch and draw torch.randperm(800, generator=gen) from it at each epoch."),
    "bias_before_bn": (
        "gives the Linear layers before BN a bias; BN's beta makes it redundant, and the "
        "protocol builds them with bias=False (which also changes the random initial "
        "weights: the bias consumes random numbers)."),
    "bn_after_relu": (
        "puts BN after the activation (Linear -> ReLU -> BN, as article 002's Keras model "
        "does); the protocol puts it between the Linear layer and the ReLU, as Ioffe and "
        "Szegedy do: Linear(bias=False) -> BatchNorm1d -> ReLU."),
}


def _exp_mistakes(ids):
    return tuple(Mistake(i, EXP_MESSAGES[i], _exp(i)) for i in ids)


# ----------------------------------------------------------------------------- checks
register(
    Check("input_drift", "input_drift", _case_drift, _call_drift, _ref_drift, _describe_drift,
          labels={"drift": "drift", "jump": "jump", "rel_jump": "rel_jump"},
          mistakes=(DRIFT_UNITS, DRIFT_POOLED, DRIFT_SIGNED, DRIFT_UNBIASED, DRIFT_FIRST_STD),
          tol=1e-9),
    Check("gradient_change_diff", "gradient_change", _case_gc_bn, _call_gc(("diff",)),
          _ref_gc(("diff",)), _describe_net, labels={"diff": "||G - G'||"},
          mistakes=_gc_mistakes("diff", ("updates_target", "updates_all", "ascent",
                                         "norm_of_g_prime", "relative")),
          tol=1e-7),
    Check("gradient_change_cos", "gradient_change", _case_gc_plain, _call_gc(("cos",)),
          _ref_gc(("cos",)), _describe_net, labels={"cos": "cos(G, G')"},
          mistakes=_gc_mistakes("cos", ("cos_not_normalized", "updates_target", "updates_all",
                                        "ascent")),
          tol=1e-7),
    Check("loss_along_gradient", "loss_along_gradient", _case_landscape, _call_landscape,
          _ref_landscape, _describe_net,
          labels={"loss": "the losses", "grad_change": "the gradient changes",
                  "beta": "beta"},
          mistakes=LAND_MISTAKES, tol=1e-7),
    Check("experiment_bn", "run_experiment", _case_experiment(True), _call_experiment,
          _ref_experiment, _describe_experiment,
          labels={"losses": "the per-epoch training losses"},
          mistakes=_exp_mistakes(("eval_mode_forgotten", "train_mode_not_restored",
                                  "step_loss_mean", "test_loss", "same_order_every_epoch",
                                  "bias_before_bn", "bn_after_relu")),
          tol=1e-5, allowed=TORCH_BATCHNORM),
    Check("experiment_plain", "run_experiment", _case_experiment(False), _call_experiment,
          _ref_experiment, _describe_experiment,
          labels={"losses": "the per-epoch training losses"},
          mistakes=_exp_mistakes(("step_loss_mean", "test_loss", "same_order_every_epoch")),
          tol=1e-5, allowed=TORCH_BATCHNORM),
)

GC_CELLS = ("test_gradient_change_diff", "test_gradient_change_cos")
EXPERIMENT_CELLS = ("test_experiment_bn", "test_experiment_plain")

ASSIGNMENT = register_assignment(Assignment(
    NAME,
    cells=(
        Cell("test_input_drift", 4, ("input_drift",), "input_drift",
             "drift of a layer's input distribution"),
        Cell("test_gradient_change_diff", 4, ("gradient_change_diff",), "gradient_change",
             "||G - G'|| after the preceding layers' step (net with BN)"),
        Cell("test_gradient_change_cos", 3, ("gradient_change_cos",), "gradient_change",
             "cos(G, G') (net without BN)"),
        Cell("test_loss_along_gradient", 4, ("loss_along_gradient",), "loss_along_gradient",
             "loss and gradient change along the gradient, effective beta"),
        Cell("test_experiment_bn", 3, ("experiment_bn",), "run_experiment",
             "the experiment with BN: per-epoch training losses"),
        Cell("test_experiment_plain", 2, ("experiment_plain",), "run_experiment",
             "the experiment without BN"),
    ),
    expected=(
        Expected("units_axis", "input_drift", ("test_input_drift",)),
        Expected("pooled", "input_drift", ("test_input_drift",)),
        Expected("signed", "input_drift", ("test_input_drift",)),
        Expected("unbiased_std", "input_drift", ("test_input_drift",)),
        Expected("rel_first_std", "input_drift", ("test_input_drift",)),
        Expected("updates_target", "gradient_change_diff", GC_CELLS),
        Expected("updates_all", "gradient_change_diff", GC_CELLS),
        Expected("ascent", "gradient_change_diff", GC_CELLS),
        Expected("norm_of_g_prime", "gradient_change_diff", ("test_gradient_change_diff",)),
        Expected("relative", "gradient_change_diff", ("test_gradient_change_diff",)),
        Expected("cos_not_normalized", "gradient_change_cos", ("test_gradient_change_cos",)),
        Expected("steps_uphill", "loss_along_gradient", ("test_loss_along_gradient",)),
        Expected("normalized_direction", "loss_along_gradient", ("test_loss_along_gradient",)),
        Expected("new_gradient_norm", "loss_along_gradient", ("test_loss_along_gradient",)),
        Expected("beta_not_normalized", "loss_along_gradient", ("test_loss_along_gradient",)),
        Expected("beta_mean", "loss_along_gradient", ("test_loss_along_gradient",)),
        Expected("eval_mode_forgotten", "experiment_bn", ("test_experiment_bn",),
                 note="without BN the mode makes no difference"),
        Expected("train_mode_not_restored", "experiment_bn", ("test_experiment_bn",),
                 note="without BN the mode makes no difference"),
        Expected("step_loss_mean", "experiment_bn", EXPERIMENT_CELLS),
        Expected("test_loss", "experiment_bn", EXPERIMENT_CELLS),
        Expected("same_order_every_epoch", "experiment_bn", EXPERIMENT_CELLS),
        Expected("bias_before_bn", "experiment_bn", ("test_experiment_bn",)),
        Expected("bn_after_relu", "experiment_bn", ("test_experiment_bn",)),
    ),
))
