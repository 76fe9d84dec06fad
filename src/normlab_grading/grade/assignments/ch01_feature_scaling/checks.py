"""Assignment 01-feature-scaling: its cases, references, checks with their recognised mistakes,
test cells with points and the "mistake -> score" table (what the student writes: the
package docstring; the mistakes' outputs: ``answers``)."""

from __future__ import annotations

import numpy as np

import normlab

from ...cases import pick_shape
from ...mistakes import Mistake, standardize
from ...registry import Assignment, Cell, Check, Expected, register, register_assignment
from . import NAME, answers
from normlab_grading.check.protocols.ch01 import (  # the calling protocols
    _describe_fit,
    _describe_new,
    _describe_gd,
    _call_fit_transform,
    _call_minmax_new,
    _call_standard_new,
    _call_train_test,
    _call_condition,
    _call_gd,
)


# ----------------------------------------------------------------------------- cases
def _train_test(rng, hidden, visible=((8, 3), 5)):
    """X_train and X_test from shifted distributions: test values fall outside the
    training range and its statistics differ from the training ones."""
    (n, d) = pick_shape(rng, hidden, visible[0], ((10, 40), (4, 8)))
    (m,) = pick_shape(rng, hidden, (visible[1],), ((6, 20),))
    means = rng.uniform(-10, 10, d)
    scales = rng.uniform(0.5, 20, d)
    X_train = means + scales * rng.standard_normal((n, d))
    X_test = means + scales * (0.8 + 0.5 * rng.standard_normal((m, d)))
    X_test[0] = X_train.max(axis=0) + 0.5 * scales  # above and below the training range
    X_test[1] = X_train.min(axis=0) - 0.5 * scales
    return X_train, X_test


def _case_fit(rng, hidden):
    X_train, _ = _train_test(rng, hidden)
    return {"X": X_train}


def _case_new_data_minmax(rng, hidden):
    X_train, X_test = _train_test(rng, hidden)
    Z = rng.uniform(-1.5, 2.5, X_test.shape)  # scaled values to map back
    return {"X_train": X_train, "X_test": X_test, "Z": Z, "feature_range": (-1.0, 2.0)}


def _case_new_data_standard(rng, hidden):
    X_train, X_test = _train_test(rng, hidden)
    Z = rng.standard_normal(X_test.shape) * 1.5
    return {"X_train": X_train, "X_test": X_test, "Z": Z}


def _case_train_test(rng, hidden):
    X_train, X_test = _train_test(rng, hidden)
    return {"X_train": X_train, "X_test": X_test}


def _correlated(rng, shape):
    """Correlated features with different scales and non-zero means."""
    n, d = shape
    mix = np.eye(d) + 0.6 * rng.standard_normal((d, d))
    scales = np.exp(rng.uniform(0, np.log(15), d))
    means = rng.uniform(-3, 3, d)
    return means + (rng.standard_normal((n, d)) @ mix) * scales


def _case_condition(rng, hidden):
    shape = pick_shape(rng, hidden, (20, 3), ((30, 80), (4, 6)))
    return {"X": _correlated(rng, shape)}


def _case_gd(rng, hidden):
    (n, d) = pick_shape(rng, hidden, (30, 2), ((40, 80), (3, 5)))
    # condition number about 30..200: a few hundred to a few thousand updates
    scales = np.concatenate([[1.0], rng.uniform(1.0, 12.0, d - 1)])
    X = rng.standard_normal((n, d)) * scales
    kappa = normlab.condition_number(X)
    while not 30 <= kappa <= 200:
        scales = np.concatenate([[1.0], rng.uniform(1.0, 12.0, d - 1)])
        X = rng.standard_normal((n, d)) * scales
        kappa = normlab.condition_number(X)
    w_true = rng.uniform(-3, 3, d)
    y = (X @ w_true + 0.1 * rng.standard_normal(n)) * 40  # ||g_0|| far from 1
    top = np.linalg.eigvalsh(X.T @ X / n)[-1]
    return {"X": X, "y": y, "lr": float(1.0 / top), "tol": 1e-6}


# ----------------------------------------------------------------------------- mistakes


# min-max
def _mm_fit(**kw):
    return lambda case: {"out": answers.minmax(case["X"], case["X"], **kw)}


def _mm_new(inverse=True, **kw):
    """Wrong outputs of the new-data check: transform(X_test) (and inverse_transform(Z)
    if the mistake also changes it in a definite way)."""

    def wrong(case):
        fr = kw.get("feature_range", case["feature_range"])
        args = {k: v for k, v in kw.items() if k != "feature_range"}
        out = {"test": answers.minmax(case["X_test"], case["X_train"], fr, **args)}
        if inverse:
            out["inverse"] = answers.minmax_inverse(case["Z"], case["X_train"], fr,
                                             axis=args.get("axis", 0))
        return out

    return wrong


MM_GLOBAL = Mistake(
    "global_minmax",
    "uses the minimum and maximum of the whole array; each feature (column) is scaled with "
    "its own minimum and maximum (axis=0).",
    _mm_fit(axis=None),
)
MM_PER_SAMPLE = Mistake(
    "per_sample",
    "takes the minimum and maximum of each sample (row, axis=1); they must be per feature, "
    "over the samples (axis=0).",
    _mm_fit(axis=1),
)
MM_BY_MAX = Mistake(
    "divide_by_max",
    "divides by the maximum instead of the range: scale with (x - min) / (max - min).",
    _mm_fit(divide_by_max=True),
)
MM_REFIT = Mistake(
    "refit_on_new_data",
    "transform recomputes the minimum and maximum from the data it is given (here "
    "X_test): a scaler is fitted on the training data only, and transform must use the "
    "statistics learned by fit (otherwise test data leaks into the model).",
    lambda case: {"test": answers.minmax(case["X_test"], case["X_test"], case["feature_range"])},
)
MM_RANGE_IGNORED = Mistake(
    "feature_range_ignored",
    "ignores feature_range and always scales to [0, 1]: map to [a, b] with "
    "a + (x - min) / (max - min) * (b - a).",
    _mm_new(inverse=False, feature_range=(0.0, 1.0)),
)
MM_CLIPPED = Mistake(
    "clipped",
    "clips the transformed values to feature_range; new data can fall outside the "
    "training range and must map outside feature_range, unclipped.",
    _mm_new(inverse=False, clip=True),
)


MM_INVERSE_RANGE = Mistake(
    "inverse_ignores_range",
    "inverse_transform ignores feature_range (it computes z * (max - min) + min); undo "
    "the transform: min + (z - a) / (b - a) * (max - min).",
    answers.mm_inverse_ignores_range,
)
MM_NEW_GLOBAL = Mistake("global_minmax", MM_GLOBAL.message, _mm_new(axis=None))
MM_NEW_BY_MAX = Mistake("divide_by_max", MM_BY_MAX.message,
                        _mm_new(inverse=False, divide_by_max=True))

# standard
ST_UNBIASED = Mistake(
    "unbiased_std",
    "divides by the sample standard deviation (ddof=1, variance divided by n - 1); "
    "StandardScaler uses the population one (ddof=0, divided by n), as scikit-learn does.",
    lambda case: {"out": standardize(case["X"], 0, ddof=1)},
)
ST_PER_SAMPLE = Mistake(
    "per_sample",
    "computes the mean and standard deviation of each sample (row, axis=1); they must be "
    "per feature, over the samples (axis=0).",
    lambda case: {"out": standardize(case["X"], 1)},
)
ST_GLOBAL = Mistake(
    "global_stats",
    "uses one mean and one standard deviation for the whole array; each feature (column) "
    "gets its own (axis=0).",
    lambda case: {"out": standardize(case["X"], None)},
)
ST_BY_VARIANCE = Mistake(
    "divided_by_variance",
    "divides by the variance instead of the standard deviation, its square root.",
    lambda case: {"out": standardize(case["X"], 0, sqrt=False)},
)
ST_REFIT = Mistake(
    "refit_on_new_data",
    "transform recomputes the mean and standard deviation from the data it is given (here "
    "X_test): a scaler is fitted on the training data only, and transform must use the "
    "statistics learned by fit (otherwise test data leaks into the model).",
    lambda case: {"test": standardize(case["X_test"], 0)},
)
ST_NEW_UNBIASED = Mistake("unbiased_std", ST_UNBIASED.message,
                          lambda case: answers.standard_new(case, ddof=1))


ST_INVERSE_ORDER = Mistake(
    "inverse_wrong_order",
    "inverse_transform adds the mean before multiplying by the standard deviation; undo "
    "the steps in reverse order: x = z * std + mean.",
    answers.st_inverse_order,
)
ST_INVERSE_DIVIDES = Mistake(
    "inverse_divides",
    "inverse_transform divides by the standard deviation again; to undo the division "
    "multiply: x = z * std + mean.",
    answers.st_inverse_divides,
)

# scale_train_test


def _tt(fit_on: str, ddof=0):
    def wrong(case):
        tr, te = case["X_train"], case["X_test"]
        if fit_on == "own":
            return {"train": standardize(tr, 0, ddof=ddof), "test": standardize(te, 0, ddof=ddof)}
        if fit_on == "all":
            mean, std = answers.stats(np.vstack([tr, te]), ddof=ddof)
        else:
            mean, std = answers.stats(tr, ddof=ddof)
        return {"train": (tr - mean) / std, "test": (te - mean) / std}

    return wrong


TT_FIT_ON_TEST = Mistake(
    "fit_on_test",
    "scales X_test with statistics computed on X_test (a scaler fitted on test data): "
    "fit the scaler on X_train only and transform both sets with it; test data must not "
    "influence the preprocessing.",
    _tt("own"),
)
TT_FIT_ON_ALL = Mistake(
    "fit_on_train_and_test",
    "fits the scaler on X_train and X_test together, so test data leaks into the "
    "statistics: fit on X_train only and transform both sets with it.",
    _tt("all"),
)
TT_UNBIASED = Mistake(
    "unbiased_std",
    "uses the sample standard deviation (ddof=1); fix StandardScaler first (population "
    "standard deviation, ddof=0), then reuse it here.",
    _tt("train", ddof=1),
)


# condition number
CN_SQRT = Mistake(
    "singular_value_ratio",
    "returns the condition number of X (s_max / s_min, e.g. np.linalg.cond(X)), which is "
    "the square root of the Hessian's: H = X^T X / n has eigenvalues s**2 / n, so "
    "kappa(H) = (s_max / s_min)**2.",
    lambda case: {"kappa": np.sqrt(normlab.condition_number(case["X"]))},
)
CN_CENTERED = Mistake(
    "centered_covariance",
    "uses the covariance matrix (features centred), but the Hessian of the least-squares "
    "loss without intercept is X^T X / n with X as it is: do not subtract the means.",
    lambda case: {"kappa": (lambda e: e[-1] / e[0])(answers.eigs(case["X"], center=True))},
)
CN_DIAGONAL = Mistake(
    "diagonal_ratio",
    "compares only the diagonal of the Hessian (the features' mean squares), ignoring the "
    "correlations between features; the condition number is lambda_max / lambda_min of "
    "the whole matrix H = X^T X / n.",
    lambda case: {"kappa": (lambda h: h.max() / h.min())(np.diag(case["X"].T @ case["X"]))},
)
CN_INVERTED = Mistake(
    "inverted",
    "returns lambda_min / lambda_max; the condition number is lambda_max / lambda_min, "
    "which is >= 1.",
    lambda case: {"kappa": 1.0 / normlab.condition_number(case["X"])},
)


# gradient descent


def _gd_ref(case):
    return normlab.count_gd_iterations(case["X"], case["y"], lr=case["lr"], tol=case["tol"])


GD_PLUS_ONE = Mistake(
    "one_too_many",
    "counts one update too many (e.g. counting gradient evaluations, or checking the "
    "criterion after an extra update): count the updates w <- w - lr * g made until "
    "||g(w_k)|| <= tol * ||g(w_0)||; 0 if w_0 already satisfies it.",
    lambda case: {"n_iter": _gd_ref(case) + 1},
)
GD_MINUS_ONE = Mistake(
    "one_too_few",
    "counts one update too few (the loop stops one step early or starts counting at -1): "
    "count the updates w <- w - lr * g made until ||g(w_k)|| <= tol * ||g(w_0)||.",
    lambda case: {"n_iter": _gd_ref(case) - 1},
)
GD_ABSOLUTE = Mistake(
    "absolute_tolerance",
    "stops when ||g|| <= tol (an absolute tolerance); the criterion is relative to the "
    "starting gradient: ||g(w_k)|| <= tol * ||g(w_0)||, which does not depend on the "
    "units of X and y.",
    lambda case: {"n_iter": answers.gd_count(case, absolute=True)},
)


# ----------------------------------------------------------------------------- checks
def _ref_minmax_fit(case):
    return {"out": normlab.MinMaxScaler().fit(case["X"]).transform(case["X"])}


def _ref_minmax_new(case):
    s = normlab.MinMaxScaler(tuple(case["feature_range"])).fit(case["X_train"])
    return {"test": s.transform(case["X_test"]), "inverse": s.inverse_transform(case["Z"])}


def _ref_standard_fit(case):
    return {"out": normlab.StandardScaler().fit(case["X"]).transform(case["X"])}


def _ref_standard_new(case):
    s = normlab.StandardScaler().fit(case["X_train"])
    return {"test": s.transform(case["X_test"]), "inverse": s.inverse_transform(case["Z"])}


def _ref_train_test(case):
    s = normlab.StandardScaler().fit(case["X_train"])
    return {"train": s.transform(case["X_train"]), "test": s.transform(case["X_test"])}


NEW_LABELS = {"test": "transform(X_test) after fit(X_train)",
              "inverse": "inverse_transform(Z)"}

register(
    Check("minmax_fit_transform", "MinMaxScaler", _case_fit, _call_fit_transform,
          _ref_minmax_fit, _describe_fit, labels={"out": "fit(X).transform(X)"},
          mistakes=(MM_GLOBAL, MM_PER_SAMPLE, MM_BY_MAX)),
    Check("minmax_new_data", "MinMaxScaler", _case_new_data_minmax, _call_minmax_new,
          _ref_minmax_new, _describe_new, labels=NEW_LABELS,
          mistakes=(MM_REFIT, MM_RANGE_IGNORED, MM_CLIPPED, MM_INVERSE_RANGE, MM_NEW_GLOBAL,
                    MM_NEW_BY_MAX)),
    Check("standard_fit_transform", "StandardScaler", _case_fit, _call_fit_transform,
          _ref_standard_fit, _describe_fit, labels={"out": "fit(X).transform(X)"},
          mistakes=(ST_UNBIASED, ST_PER_SAMPLE, ST_GLOBAL, ST_BY_VARIANCE)),
    Check("standard_new_data", "StandardScaler", _case_new_data_standard, _call_standard_new,
          _ref_standard_new, _describe_new, labels=NEW_LABELS,
          mistakes=(ST_REFIT, ST_INVERSE_ORDER, ST_INVERSE_DIVIDES, ST_NEW_UNBIASED)),
    Check("scale_train_test", "scale_train_test", _case_train_test, _call_train_test,
          _ref_train_test, _describe_new,
          labels={"train": "the scaled X_train", "test": "the scaled X_test"},
          mistakes=(TT_FIT_ON_TEST, TT_FIT_ON_ALL, TT_UNBIASED)),
    Check("condition_number", "condition_number", _case_condition, _call_condition,
          lambda case: {"kappa": normlab.condition_number(case["X"])},
          _describe_fit, labels={"kappa": "the condition number"},
          mistakes=(CN_SQRT, CN_CENTERED, CN_DIAGONAL, CN_INVERTED)),
    Check("gd_iterations", "count_gd_iterations", _case_gd, _call_gd,
          lambda case: {"n_iter": _gd_ref(case)}, _describe_gd,
          labels={"n_iter": "the number of updates"},
          mistakes=(GD_PLUS_ONE, GD_MINUS_ONE, GD_ABSOLUTE), tol=0),
)

ASSIGNMENT = register_assignment(Assignment(
    NAME,
    cells=(
        Cell("test_minmax_fit_transform", 3, ("minmax_fit_transform",), "MinMaxScaler",
             "min-max scaling of the training data"),
        Cell("test_minmax_new_data", 3, ("minmax_new_data",), "MinMaxScaler",
             "new data, feature_range, inverse_transform"),
        Cell("test_standard_fit_transform", 3, ("standard_fit_transform",), "StandardScaler",
             "standardization of the training data"),
        Cell("test_standard_new_data", 2, ("standard_new_data",), "StandardScaler",
             "new data, inverse_transform"),
        Cell("test_scale_train_test", 3, ("scale_train_test",), "scale_train_test",
             "a train/test split without leakage"),
        Cell("test_condition_number", 3, ("condition_number",), "condition_number",
             "condition number of X^T X / n"),
        Cell("test_gd_iterations", 3, ("gd_iterations",), "count_gd_iterations",
             "gradient-descent updates to converge"),
    ),
    expected=(
        Expected("global_minmax", "minmax_fit_transform",
                 ("test_minmax_fit_transform", "test_minmax_new_data")),
        Expected("per_sample", "minmax_fit_transform",
                 ("test_minmax_fit_transform", "test_minmax_new_data"),
                 messages={"test_minmax_new_data": "exception"},
                 note="transform then fails on data with another number of rows"),
        Expected("divide_by_max", "minmax_fit_transform",
                 ("test_minmax_fit_transform", "test_minmax_new_data")),
        Expected("refit_on_new_data", "minmax_new_data", ("test_minmax_new_data",)),
        Expected("feature_range_ignored", "minmax_new_data", ("test_minmax_new_data",)),
        Expected("clipped", "minmax_new_data", ("test_minmax_new_data",)),
        Expected("inverse_ignores_range", "minmax_new_data", ("test_minmax_new_data",)),
        Expected("unbiased_std", "standard_fit_transform",
                 ("test_standard_fit_transform", "test_standard_new_data",
                  "test_scale_train_test")),
        Expected("global_stats", "standard_fit_transform",
                 ("test_standard_fit_transform", "test_standard_new_data",
                  "test_scale_train_test"),
                 messages={"test_standard_new_data": "generic",
                           "test_scale_train_test": "generic"}),
        Expected("refit_on_new_data", "standard_new_data",
                 ("test_standard_new_data", "test_scale_train_test"),
                 messages={"test_scale_train_test": "fit_on_test"},
                 note="scale_train_test then scales X_test with its own statistics"),
        Expected("inverse_wrong_order", "standard_new_data", ("test_standard_new_data",)),
        Expected("inverse_divides", "standard_new_data", ("test_standard_new_data",)),
        Expected("fit_on_test", "scale_train_test", ("test_scale_train_test",)),
        Expected("fit_on_train_and_test", "scale_train_test", ("test_scale_train_test",)),
        Expected("singular_value_ratio", "condition_number", ("test_condition_number",)),
        Expected("centered_covariance", "condition_number", ("test_condition_number",)),
        Expected("diagonal_ratio", "condition_number", ("test_condition_number",)),
        Expected("inverted", "condition_number", ("test_condition_number",)),
        Expected("one_too_many", "gd_iterations", ("test_gd_iterations",)),
        Expected("one_too_few", "gd_iterations", ("test_gd_iterations",)),
        Expected("absolute_tolerance", "gd_iterations", ("test_gd_iterations",)),
    ),
))
