"""Assignment 02-zscore: its cases, references, checks with their recognised mistakes,
test cells with points and the "mistake -> score" table (what the student writes: the
package docstring; the mistakes' outputs: ``answers``)."""

from __future__ import annotations

import numpy as np

import normlab

from ...cases import pick_shape
from ...mistakes import Mistake, standardize
from ...registry import Assignment, Cell, Check, Expected, register, register_assignment
from . import NAME, answers
from normlab_grading.check.protocols.ch02 import (  # the calling protocols
    _describe,
    _call,
    _call_1d,
    RAISED_VALUE_ERROR,
    RETURNED_NONFINITE,
    RETURNED_VALUES,
    RAISED_OTHER,
    _call_too_few,
    _constant_nan,
    _as_row,
)


FN = "zscore"


# ----------------------------------------------------------------------------- cases
def _features(rng, shape, scale_range=(0.5, 5.0)) -> np.ndarray:
    """Columns with different means and spreads."""
    n, d = shape
    means = rng.uniform(-5, 5, d)
    scales = rng.uniform(*scale_range, d)
    return means + scales * rng.standard_normal((n, d))


def _case_matrix(rng, hidden, **args):
    shape = pick_shape(rng, hidden, (6, 3), ((8, 40), (4, 9)))
    return {"X": _features(rng, shape), **args}


def _case_basic(rng, hidden):
    return _case_matrix(rng, hidden)


def _case_ddof(rng, hidden):
    return _case_matrix(rng, hidden, ddof=1)


def _case_eps(rng, hidden):
    # spreads comparable to sqrt(eps): eps visibly matters, and where it goes too
    shape = pick_shape(rng, hidden, (6, 3), ((8, 40), (4, 9)))
    return {"X": _features(rng, shape, scale_range=(0.03, 0.2)), "eps": 0.01}


def _case_constant(rng, hidden):
    shape = pick_shape(rng, hidden, (6, 4), ((8, 40), (5, 9)))
    X = _features(rng, shape)
    d = shape[1]
    cols = rng.choice(d, size=2, replace=False)
    # dyadic values: every way of computing the mean of a constant column gives it exactly,
    # so its standard deviation is exactly 0, whatever the student's arithmetic
    for j, v in zip(cols, rng.choice([3.0, -1.5, 0.25, 7.0, -4.0, 12.5], size=2, replace=False)):
        X[:, j] = v
    return {"X": X, "constant": np.isin(np.arange(d), cols)}


def _case_1d(rng, hidden):
    (n,) = pick_shape(rng, hidden, (7,), ((9, 40),))
    return {"x": rng.uniform(-3, 3) + rng.uniform(0.5, 4) * rng.standard_normal(n)}


def _case_too_few(rng, hidden):
    (d,) = pick_shape(rng, hidden, (3,), ((4, 9),))
    return {"X": rng.standard_normal((1, d)) * 2 + 1, "ddof": 1,
            "X_ok": rng.standard_normal((2, d)) * 2 + 1}


# outcome codes of the "too few samples" check


# ----------------------------------------------------------------------------- mistakes
def _std(**kw):
    """A wrong answer: ``standardize`` over axis 0 of case["X"] with the case's ddof/eps."""

    def wrong(case):
        args = {"ddof": case.get("ddof", 0), "eps": case.get("eps", 0.0)}
        args.update(kw)
        axis = args.pop("axis", 0)
        return {"out": standardize(case["X"] if "X" in case else case["x"], axis, **args)}

    return wrong


UNBIASED = Mistake(
    "unbiased_std",
    "divides by the sample standard deviation (ddof=1: the variance divided by n - 1, as "
    "pandas and np.std(ddof=1) do); by default (ddof=0) the z-score uses the population "
    "standard deviation, the variance divided by n.",
    _std(ddof=1),
)
PER_SAMPLE = Mistake(
    "per_sample",
    "computes the mean and standard deviation of each sample (each row, axis=1); the "
    "statistics are per feature, over the samples (axis=0).",
    _std(axis=1),
)
GLOBAL = Mistake(
    "global_stats",
    "uses one mean and one standard deviation for the whole array; each feature (column) "
    "gets its own (axis=0).",
    _std(axis=None),
)
NOT_CENTERED = Mistake(
    "not_centered",
    "does not subtract the mean: z = (x - mean) / std.",
    _std(center=False),
)
BY_VARIANCE = Mistake(
    "divided_by_variance",
    "divides by the variance instead of the standard deviation, its square root.",
    _std(sqrt=False),
)
DDOF_IGNORED = Mistake(
    "ddof_ignored",
    "ignores ddof: the variance divides by n - ddof (n - 1 for ddof=1).",
    _std(ddof=0),
)


BESSEL_INVERTED = Mistake(
    "bessel_inverted",
    "applies the ddof correction the wrong way round: the variance with ddof is "
    "sum((x - mean)**2) / (n - ddof), i.e. the population variance times n / (n - ddof).",
    answers.bessel_inverted,
)
EPS_OUTSIDE = Mistake(
    "eps_outside_sqrt",
    "adds eps to the standard deviation (sqrt(var) + eps); eps goes inside the square "
    "root: sqrt(var + eps).",
    _std(eps_mode="outside"),
)
EPS_IGNORED = Mistake(
    "eps_ignored",
    "ignores eps: divide by sqrt(var + eps).",
    _std(eps=0.0),
)


CONSTANT_NAN = Mistake(
    "constant_nan",
    "gives NaN or inf for a constant feature: its standard deviation is 0, so it divides "
    "by zero. A constant feature carries no information; map it to 0 (for example divide "
    "by 1 instead of 0 where the standard deviation is 0).",
    matches=_constant_nan,
    keys=("out",),
)


CONSTANT_RAW = Mistake(
    "constant_not_centered",
    "leaves a constant feature at its raw value; it must still be centred, which makes "
    "it 0 (x - mean = 0).",
    answers.constant_raw,
)


ONE_D_AS_ROW = Mistake(
    "one_d_as_row",
    "treats a 1-D array as one sample (a row of shape (1, n)), so every 'feature' has a "
    "single value; a 1-D input is ONE feature with n values: standardize over its n "
    "values and return shape (n,).",
    matches=_as_row,
    keys=("out",),
)
ONE_D_AS_COLUMN = Mistake(
    "one_d_returned_2d",
    "returns shape (n, 1) for a 1-D input; return the input's shape (n,), e.g. "
    "out.reshape(X.shape).",
    lambda case: {"out": normlab.zscore(case["x"])[:, None]},
)

NO_ERROR_NAN = Mistake(
    "no_error_nan",
    "returns NaN/inf when n - ddof <= 0 (here one sample with ddof=1: a division by zero); "
    "the variance is undefined then: raise ValueError instead.",
    lambda case: {"outcome": RETURNED_NONFINITE},
)
NO_ERROR_VALUES = Mistake(
    "no_error_values",
    "returns numbers when n - ddof <= 0 (here one sample with ddof=1), where the variance "
    "is undefined: raise ValueError instead.",
    lambda case: {"outcome": RETURNED_VALUES},
)
WRONG_EXCEPTION = Mistake(
    "wrong_exception",
    "raises an exception other than ValueError when n - ddof <= 0 (here one sample with "
    "ddof=1); raise ValueError, the exception for an invalid argument value.",
    lambda case: {"outcome": RAISED_OTHER},
)


# ----------------------------------------------------------------------------- checks
def _ref(case):
    kwargs = {k: case[k] for k in ("ddof", "eps") if k in case}
    return {"out": normlab.zscore(case["X"], **kwargs)}


def _check(cid, make_case, mistakes, call=_call, ref=_ref, **kw):
    return Check(cid, FN, make_case, call, ref, _describe, labels={"out": "the output"},
                 mistakes=mistakes, **kw)


register(
    _check("zscore_basic", _case_basic,
           (UNBIASED, PER_SAMPLE, GLOBAL, NOT_CENTERED, BY_VARIANCE)),
    _check("zscore_ddof", _case_ddof,
           (DDOF_IGNORED, BESSEL_INVERTED, PER_SAMPLE, GLOBAL, NOT_CENTERED, BY_VARIANCE)),
    _check("zscore_eps", _case_eps,
           (EPS_OUTSIDE, EPS_IGNORED, UNBIASED, PER_SAMPLE, GLOBAL, NOT_CENTERED)),
    _check("zscore_constant", _case_constant,
           (CONSTANT_NAN, CONSTANT_RAW, UNBIASED, PER_SAMPLE, GLOBAL, NOT_CENTERED)),
    _check("zscore_1d", _case_1d, (ONE_D_AS_ROW, ONE_D_AS_COLUMN, UNBIASED, NOT_CENTERED),
           call=_call_1d,
           ref=lambda case: {"out": normlab.zscore(case["x"])}),
    Check("zscore_too_few", FN, _case_too_few, _call_too_few,
          lambda case: {"outcome": RAISED_VALUE_ERROR, "valid": 1}, _describe,
          labels={"outcome": "what zscore does with n - ddof = 0",
                  "valid": "whether zscore gives finite values of the right shape for 2 "
                           "samples with ddof=1 (a valid input)"},
          mistakes=(NO_ERROR_NAN, NO_ERROR_VALUES, WRONG_EXCEPTION), tol=0),
)

ASSIGNMENT = register_assignment(Assignment(
    NAME,
    cells=(
        Cell("test_zscore_basic", 5, ("zscore_basic",), FN, "per-feature z-score, ddof=0"),
        Cell("test_zscore_ddof", 3, ("zscore_ddof",), FN, "ddof=1 (sample variance)"),
        Cell("test_zscore_eps", 3, ("zscore_eps",), FN, "eps inside the square root"),
        Cell("test_zscore_constant", 4, ("zscore_constant",), FN, "constant features map to 0"),
        Cell("test_zscore_1d", 2, ("zscore_1d",), FN, "a 1-D array is one feature"),
        Cell("test_zscore_too_few", 3, ("zscore_too_few",), FN,
             "n - ddof <= 0 raises ValueError"),
    ),
    expected=(
        Expected("unbiased_std", "zscore_basic",
                 ("test_zscore_basic", "test_zscore_eps", "test_zscore_constant",
                  "test_zscore_1d")),
        Expected("per_sample", "zscore_basic",
                 ("test_zscore_basic", "test_zscore_ddof", "test_zscore_eps",
                  "test_zscore_constant", "test_zscore_1d"),
                 messages={"test_zscore_1d": "generic"}),
        Expected("not_centered", "zscore_basic",
                 ("test_zscore_basic", "test_zscore_ddof", "test_zscore_eps",
                  "test_zscore_constant", "test_zscore_1d")),
        Expected("ddof_ignored", "zscore_ddof", ("test_zscore_ddof",)),
        Expected("eps_outside_sqrt", "zscore_eps", ("test_zscore_eps",)),
        Expected("eps_ignored", "zscore_eps", ("test_zscore_eps",)),
        Expected("constant_nan", "zscore_constant", ("test_zscore_constant",)),
        Expected("constant_not_centered", "zscore_constant", ("test_zscore_constant",)),
        Expected("one_d_as_row", "zscore_1d", ("test_zscore_1d",)),
        Expected("one_d_returned_2d", "zscore_1d", ("test_zscore_1d",)),
        Expected("no_error_nan", "zscore_too_few", ("test_zscore_too_few",)),
        Expected("wrong_exception", "zscore_too_few", ("test_zscore_too_few",)),
    ),
))
