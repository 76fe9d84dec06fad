"""Calling protocols of assignment feature-scaling (ch01): how each check calls the
student's code and describes its case. Student side: no reference, no mistake model."""

from __future__ import annotations

import functools

import numpy as np

from ..outputs import Problem, nonfinite_in, shape_text


def _describe_fit(case):
    return shape_text(X=case["X"])


def _describe_new(case):
    text = shape_text(X_train=case["X_train"], X_test=case["X_test"])
    if "feature_range" in case:
        text += f", feature_range={tuple(case['feature_range'])}"
    return text


def _describe_gd(case):
    return f"{shape_text(X=case['X'], y=case['y'])}, lr={case['lr']:.4g}, tol={case['tol']:g}"


def _call_fit_transform(student, case):
    scaler = student()
    scaler.fit(case["X"])
    return {"out": scaler.transform(case["X"])}


def _call_minmax_new(student, case):
    scaler = student(feature_range=tuple(case["feature_range"]))
    scaler.fit(case["X_train"])
    test = scaler.transform(case["X_test"])
    return {"test": test, "inverse": scaler.inverse_transform(case["Z"])}


def _call_standard_new(student, case):
    scaler = student()
    scaler.fit(case["X_train"])
    test = scaler.transform(case["X_test"])
    return {"test": test, "inverse": scaler.inverse_transform(case["Z"])}


def _call_train_test(student, case):
    result = student(case["X_train"], case["X_test"])
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        problem = Problem(f"not a pair (got {type(result).__name__})")
        return {"train": problem, "test": problem}
    return {"train": result[0], "test": result[1]}


def _call_condition(student, case):
    return {"kappa": student(case["X"])}


def _call_gd(student, case):
    return {"n_iter": student(case["X"], case["y"], case["lr"], tol=case["tol"])}
