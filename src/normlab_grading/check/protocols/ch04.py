"""Calling protocols of assignment test-time (ch04): how each check calls the
student's code and describes its case. Student side: no reference, no mistake model."""

from __future__ import annotations

import functools

import numpy as np

from ..outputs import Problem, nonfinite_in, shape_text


RAISED_VALUE_ERROR, RETURNED, RAISED_OTHER = 0, 1, 2


def _describe_layer(case):
    calls = ", ".join(f"{mode}(x{i})" for i, mode in enumerate(case["modes"]))
    m = case["momentum"]
    text = (f"BatchNorm1d({case['gamma'].shape[0]}, eps={case['eps']:g}, momentum="
            f"{'None' if m is None else f'{m:g}'}) with weight and bias set; calls {calls}; "
            f"x* of shape {tuple(case['x0'].shape)}")
    if "x_single" in case:
        text += "; then train(x) with x of shape (1, C), then eval(x) with x of shape (1, C)"
    return text


def _describe_fold(case):
    b = "b" if case.get("b") is not None else "b=None"
    return f"{shape_text(W=case['W'])}, {b}, BN with {case['W'].shape[0]} channels, eps=1e-5"


def _state(layer, name):
    if not hasattr(layer, name):
        return Problem(f"missing (the layer has no attribute {name!r})")
    return getattr(layer, name)


def _new_layer(student, case):
    layer = student(case["gamma"].shape[0], eps=case["eps"], momentum=case["momentum"])
    layer.weight = case["gamma"].copy()
    layer.bias = case["beta"].copy()
    return layer


def _run_calls(layer, case):
    outs = {}
    for i, mode in enumerate(case["modes"]):
        if mode == "train":
            layer.train()
        else:
            layer.eval()
        outs[f"out{i}"] = layer.forward(case[f"x{i}"])
    return outs


def _call_layer(student, case):
    layer = _new_layer(student, case)
    outs = _run_calls(layer, case)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        outs[name] = _state(layer, name)
    return outs


def _call_single(student, case):
    layer = _new_layer(student, case)
    _run_calls(layer, case)
    layer.train()
    try:
        layer.forward(case["x_single"])
        outcome = RETURNED
    except ValueError:
        outcome = RAISED_VALUE_ERROR
    except Exception:
        outcome = RAISED_OTHER
    layer.eval()
    try:
        eval_out, raised = layer.forward(case["x_eval"]), 0
    except Exception:
        eval_out, raised = np.full(case["x_eval"].shape, np.nan), 1
    return {"outcome": outcome, "eval_raised": raised, "eval_out": eval_out}


def _call_momentum(student, case):
    values = [student(float(m)) for m in case["values"]]
    try:
        student(case["invalid"])
        outcome = RETURNED
    except ValueError:
        outcome = RAISED_VALUE_ERROR
    except Exception:
        outcome = RAISED_OTHER
    return {"torch_momentum": values, "outcome": outcome}


def _call_fold(student, case):
    result = student(case["W"], case["b"], case["gamma"], case["beta"], case["running_mean"],
                     case["running_var"], case["eps"])
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        p = Problem(f"not a pair (W_folded, b_folded) (got {type(result).__name__})")
        return {"W": p, "b": p}
    return {"W": result[0], "b": result[1]}


def _describe_momentum(case):
    return f"keras momenta {list(np.round(case['values'], 3))}, then {case['invalid']:g}"
