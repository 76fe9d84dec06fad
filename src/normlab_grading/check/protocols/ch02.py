"""Calling protocols of assignment zscore (ch02): how each check calls the
student's code and describes its case. Student side: no reference, no mistake model."""

from __future__ import annotations

import functools

import numpy as np

from ..outputs import Problem, nonfinite_in, shape_text


def _describe(case) -> str:
    arrays = {k: case[k] for k in ("X", "x") if k in case}
    extra = [f"{k}={case[k]}" for k in ("ddof", "eps") if k in case]
    return ", ".join([shape_text(**arrays)] + extra)


def _call(student, case):
    kwargs = {k: case[k] for k in ("ddof", "eps") if k in case}
    return {"out": student(case["X"], **kwargs)}


def _call_1d(student, case):
    return {"out": student(case["x"])}


RAISED_VALUE_ERROR, RETURNED_NONFINITE, RETURNED_VALUES, RAISED_OTHER = 0, 1, 2, 3


def _call_too_few(student, case):
    """The outcome on one sample with ddof=1, and whether two samples (a valid input) give
    finite values of the right shape: an always-raising function fails the second."""
    try:
        ok = np.asarray(student(case["X_ok"], ddof=case["ddof"]), dtype=float)
        valid = int(ok.shape == case["X_ok"].shape and bool(np.all(np.isfinite(ok))))
    except NotImplementedError:  # the untouched exercise: say so, not "wrong exception"
        raise
    except Exception:
        valid = 0
    try:
        out = student(case["X"], ddof=case["ddof"])
    except ValueError:
        return {"outcome": RAISED_VALUE_ERROR, "valid": valid}
    except Exception:
        return {"outcome": RAISED_OTHER, "valid": valid}
    return {"outcome": RETURNED_NONFINITE if nonfinite_in(out) else RETURNED_VALUES, "valid": valid}


def _constant_nan(case, key, got, expected):
    return nonfinite_in(got, np.broadcast_to(case["constant"], case["X"].shape))


def _as_row(case, key, got, expected):
    x = case["x"]
    return got.shape in ((1, x.size), (x.size, 1)) and not np.allclose(
        got.reshape(-1), np.asarray(expected["out"]).reshape(-1), atol=1e-6
    )
