"""Calling protocols of assignment rmsnorm (ch07): how each check calls the
student's code and describes its case. Student side: no reference, no mistake model."""

from __future__ import annotations

import functools

import numpy as np

from ..outputs import Problem, shape_text


CACHE_LAYOUT = "(x, x_hat, rms, gamma, eps)"
FORWARD_KEYS = ("out", "x_hat", "rms")
RAISED_VALUE_ERROR, RETURNED, RAISED_OTHER = 0, 1, 2


def _eps_text(case):
    return "eps not passed (None)" if case["eps"] is None else f"eps={case['eps']:g}"


def _describe(case):
    dtype = "" if case["x"].dtype == np.float64 else f", dtype {case['x'].dtype}"
    return f"{shape_text(x=case['x'], gamma=case['gamma'])}{dtype}, {_eps_text(case)}"


def _describe_shape_check(case):
    return (f"{shape_text(x=case['x'], gamma=case['gamma'])} (gamma is not x's trailing "
            f"shape), then a valid {shape_text(x=case['x_ok'], gamma=case['gamma_ok'])}")


def _arguments(case, x, gamma):
    """The call's arguments: eps only when the case passes one (None: the default)."""
    return (x, gamma) if case["eps"] is None else (x, gamma, case["eps"])


def _forward_outputs(result):
    """out and the cache entries of a forward pass's ``(out, cache)``."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        p = Problem(f"not a pair (out, cache) (got {type(result).__name__})")
        return {"out": result if isinstance(result, np.ndarray) else p, "x_hat": p, "rms": p}
    out, cache = result
    if not (isinstance(cache, (tuple, list)) and len(cache) == 5):
        what = f"a {type(cache).__name__}" + (f" of length {len(cache)}"
                                              if isinstance(cache, (tuple, list)) else "")
        p = Problem(f"missing: the cache is {what}, not the tuple {CACHE_LAYOUT}")
        return {"out": out, "x_hat": p, "rms": p}
    return {"out": out, "x_hat": cache[1], "rms": cache[2]}


def _call_forward(student, case):
    return _forward_outputs(student(*_arguments(case, case["x"], case["gamma"])))


def _grader_cache(case):
    return (case["x"], case["x_hat"], case["rms"], case["gamma"], case["eps"])


def _call_backward_keys(student, case, keys):
    result = student(case["dout"], _grader_cache(case))
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        p = Problem(f"not a pair (dx, dgamma) (got {type(result).__name__})")
        return {k: p for k in keys}
    named = dict(zip(("dx", "dgamma"), result))
    return {k: named[k] for k in keys}


def _call_backward(keys):
    """The protocol of a backward check that compares ``keys`` (a partial: serializable)."""
    return functools.partial(_call_backward_keys, keys=tuple(keys))


def _call_shape_check(student, case):
    """The outcome on a gamma that is not x's trailing shape (it broadcasts, so only an
    explicit check catches it), and whether a valid input gives finite values of the right
    shape: an always-raising function fails the second."""
    try:
        ok = student(*_arguments(case, case["x_ok"], case["gamma_ok"]))
        out_ok = np.asarray(ok[0], dtype=float)
        valid = int(out_ok.shape == case["x_ok"].shape and bool(np.all(np.isfinite(out_ok))))
    except NotImplementedError:  # the untouched exercise: say so, not "wrong exception"
        raise
    except Exception:
        valid = 0
    try:
        student(*_arguments(case, case["x"], case["gamma"]))
    except ValueError:
        return {"outcome": RAISED_VALUE_ERROR, "valid": valid}
    except Exception:
        return {"outcome": RAISED_OTHER, "valid": valid}
    return {"outcome": RETURNED, "valid": valid}
