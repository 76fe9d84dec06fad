"""Calling protocols of assignment batchnorm-math (ch03): how each check calls the
student's code and describes its case. Student side: no reference, no mistake model."""

from __future__ import annotations

import functools

import numpy as np

from ..outputs import Problem, nonfinite_in, shape_text


CACHE_LAYOUT = "(x, x_hat, mu, var, gamma, eps)"


def _describe_bn(case):
    return f"{shape_text(x=case['x'], gamma=case['gamma'])}, eps={case['eps']:g}"


def _describe_numgrad(case):
    return (f"f(x) = tanh(x @ W + b) with {shape_text(x=case['x'], W=case['W'])}, "
            f"h={case['h']:g}")


def _describe_rel(case):
    return f"three pairs (a, b) of shape {case['a1'].shape}"


def _forward_outputs(result):
    """out and the cache entries of a forward pass's ``(out, cache)``."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        p = Problem(f"not a pair (out, cache) (got {type(result).__name__})")
        return {"out": result if isinstance(result, np.ndarray) else p,
                "x_hat": p, "mu": p, "var": p}
    out, cache = result
    if not (isinstance(cache, (tuple, list)) and len(cache) == 6):
        what = f"a {type(cache).__name__}" + (f" of length {len(cache)}"
                                              if isinstance(cache, (tuple, list)) else "")
        p = Problem(f"missing: the cache is {what}, not the tuple {CACHE_LAYOUT}")
        return {"out": out, "x_hat": p, "mu": p, "var": p}
    return {"out": out, "x_hat": cache[1], "mu": cache[2], "var": cache[3]}


def _call_forward(student, case):
    return _forward_outputs(student(case["x"], case["gamma"], case["beta"], case["eps"]))


def _grader_cache(case):
    return (case["x"], case["x_hat"], case["mu"], case["var"], case["gamma"], case["eps"])


def _backward_outputs(result, keys):
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        p = Problem(f"not a triple (dx, dgamma, dbeta) (got {type(result).__name__})")
        return {k: p for k in keys}
    named = dict(zip(("dx", "dgamma", "dbeta"), result))
    return {k: named[k] for k in keys}


def _call_backward_keys(student, case, keys):
    return _backward_outputs(student(case["dout"], _grader_cache(case)), keys)


def _call_backward(keys):
    """The protocol of a backward check that compares ``keys`` (a partial: serializable)."""
    return functools.partial(_call_backward_keys, keys=tuple(keys))


def _tanh_layer(W, b):
    def f(x):
        return np.tanh(x @ W + b)

    return f


def _call_numgrad(student, case):
    x = case["x"]
    grad = student(_tanh_layer(case["W"], case["b"]), x, case["dout"], h=case["h"])
    return {"grad": grad, "x_after": x}


def _call_rel_error(student, case):
    values = [student(case[f"a{i}"], case[f"b{i}"]) for i in (1, 2, 3)]
    try:
        return {"errors": np.array([float(v) for v in values])}
    except (TypeError, ValueError):
        return {"errors": Problem("not three numbers: " + ", ".join(type(v).__name__ for v in values))}
