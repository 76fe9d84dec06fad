"""Comparing a student's outputs with the expected ones: a pure function -> ``Verdict``.

``verdict(spec, case, outputs, expected, wrong_of, ...)`` compares key by key and explains
the first problem:

1. a forbidden call (``tripwire``) or an exception raised by the student (``error``);
2. for each output key in the expected order: a missing value or one of the wrong type
   or shape (unless the shape is a recognised mistake);
3. values: if the key is wrong, the first mistake of the check's catalogue that explains
   it (all the outputs the mistake defines equal the student's) names the mistake;
   otherwise the generic message gives the largest relative error and the index of the
   worst entry.

It takes the expected outputs and each mistake's outputs as *values*: the student side
reads them from the visible data (``data.py``), the trusted judge computes them with the
references (``normlab_grading.grade.judge``). Both get the same verdict from this one function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .outputs import Problem, normalize_outputs
from .tripwire import tripwire_message

__all__ = ["Verdict", "verdict", "relative_errors", "close"]

GENERIC_KINDS = ("missing", "type", "shape", "nonfinite", "generic")


@dataclass(frozen=True)
class Verdict:
    """passed; mistake_id: the recognised mistake, or one of "forbidden_call", "exception",
    "missing", "type", "shape", "nonfinite", "generic" (None when passed); message."""

    passed: bool
    mistake_id: str | None
    message: str


def relative_errors(a: np.ndarray, b: np.ndarray, floor: float) -> np.ndarray:
    """Entrywise ``|a - b| / max(floor, max|b|)``: each entry's error relative to the
    scale of the expected array (so entries that should be near 0 are not held to an
    impossible relative precision). NaN-safe: a NaN or inf where the other value differs
    counts as inf; equal values (including two NaNs, two equal infinities) as 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    finite_b = np.abs(b[np.isfinite(b)])
    scale = max(floor, float(finite_b.max()) if finite_b.size else 0.0)
    with np.errstate(all="ignore"):
        err = np.abs(a - b) / scale
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    err = np.where(same, 0.0, err)
    return np.where(np.isnan(err), np.inf, err)


def close(spec, a, b) -> bool:
    """``a`` equals ``b`` within the check's tolerance (``spec.tol``, ``spec.floor``)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.size == 0:
        return True
    if spec.tol == 0:
        return bool(np.array_equal(a, b))
    return bool(np.max(relative_errors(a, b, spec.floor)) <= spec.tol)


def _fmt(v) -> str:
    return f"{float(v):.6g}" if np.ndim(v) == 0 else str(v)


def _index_text(idx) -> str:
    return "(" + ", ".join(str(int(i)) for i in idx) + ")" if len(idx) != 1 else f"[{int(idx[0])}]"


def _generic(spec, key: str, got: np.ndarray, want: np.ndarray) -> str:
    label = spec.label(key)
    if want.ndim == 0:
        err = float(relative_errors(got, want, spec.floor))
        return (
            f"{label} is wrong: got {_fmt(got)}, expected {_fmt(want)}"
            + (f" (relative error {err:.2e}, tolerance {spec.tol:g})." if spec.tol else ".")
        )
    errs = relative_errors(got, want, spec.floor)
    idx = np.unravel_index(int(np.argmax(errs)), errs.shape)
    n_bad = int(np.count_nonzero(errs > spec.tol))
    return (
        f"{label} is wrong in {n_bad} of {errs.size} entries; the worst is at index "
        f"{_index_text(idx)}: got {_fmt(got[idx])}, expected {_fmt(want[idx])} (relative "
        f"error {float(errs[idx]):.2e}, i.e. |got - expected| / max|expected|; tolerance "
        f"{spec.tol:g})."
    )


def _mistake_for(spec, case: Mapping, key: str, outputs: Mapping, expected: Mapping, wrong_of):
    """The first catalogue mistake that explains the wrong output at ``key``, or None.

    A mistake with outputs (``wrong_of(m)``) explains it when the student's outputs equal
    the mistake's on EVERY key the mistake defines (so "feature_range ignored", which
    changes transform and inverse_transform, is not mistaken for a wrong inverse alone); a
    ``matches`` mistake when its predicate ``(case, key, value, expected)`` holds for ``key``.
    """
    for m in spec.mistakes:
        if m.matches is not None:
            if key in m.keys and m.matches(case, key, outputs[key], expected):
                return m
            continue
        wrong = wrong_of(m)
        if not wrong or key not in wrong:
            continue
        if all(
            k in outputs and not isinstance(outputs[k], Problem)
            and close(spec, outputs[k], np.asarray(v))
            for k, v in wrong.items()
        ):
            return m
    return None


def verdict(spec, case: Mapping, outputs: Mapping[str, Any], expected: Mapping[str, Any],
            wrong_of: Callable[[Any], Mapping | None], *, hidden: bool = False,
            tripwire: str | None = None, error: tuple[str, str] | None = None) -> Verdict:
    """Judge normalized (or raw) student ``outputs`` of check ``spec`` on ``case``.

    expected: the right outputs, in the order they are compared and reported.
    wrong_of: ``mistake -> outputs`` of a recognised mistake on this case (or None).
    tripwire: the forbidden routine the student's code called, if any.
    error: ``(exception type name, message)`` if the student's code raised.
    hidden: only used to say which test it was in the message.
    """
    where = f" [{'hidden' if hidden else 'visible'} test: {spec.describe(case)}]"
    if tripwire:
        return Verdict(False, "forbidden_call", tripwire_message(spec.function, tripwire) + where)
    if error is not None:
        ename, evalue = error
        return Verdict(
            False, "exception", f"{spec.function} raised {ename}: {evalue}".rstrip(": ") + where
        )
    outputs = normalize_outputs(outputs)
    reference = {k: np.asarray(v) for k, v in expected.items()}
    cache: dict = {}

    def wrong_cached(m):
        if m.id not in cache:
            with np.errstate(all="ignore"):
                got = wrong_of(m)
            cache[m.id] = dict(got) if got is not None else None
        return cache[m.id]

    failing: list[tuple[str, str, str]] = []  # (key, mistake_id, message)
    for key, want in reference.items():
        label = spec.label(key)
        if key not in outputs:
            failing.append((key, "missing", f"{label} is missing from what {spec.function} returned."))
            continue
        got = outputs[key]
        if isinstance(got, Problem):
            failing.append((
                key, "type",
                f"{label} is {got.text}; expected a numpy array of shape {want.shape}"
                + (" (a number)." if want.ndim == 0 else "."),
            ))
            continue
        if close(spec, got, want):
            continue
        m = _mistake_for(spec, case, key, outputs, reference, wrong_cached)
        if m is not None:
            failing.append((key, m.id, m.message))
        elif got.shape != want.shape:
            failing.append((
                key, "shape",
                f"{label} has shape {got.shape}; expected {want.shape}"
                + (" (one number)." if want.ndim == 0 else "."),
            ))
        elif got.size and not np.all(np.isfinite(got)) and np.all(np.isfinite(want)):
            bad = np.argwhere(~np.isfinite(got))[0]
            failing.append((
                key, "nonfinite",
                f"{label} contains NaN or inf (first at index {_index_text(bad)}), where the "
                "expected values are finite: look for a division by zero or a sqrt of a "
                "negative number.",
            ))
        elif want.dtype.kind == "f" and got.dtype.kind in "biu":
            failing.append((
                key, "type",
                f"{label} has the integer dtype {got.dtype} and the wrong values; expected "
                "floating point (an integer array or integer division somewhere?). "
                + _generic(spec, key, got, want),
            ))
        else:
            failing.append((key, "generic", _generic(spec, key, got, want)))
    if not failing:
        return Verdict(True, None, f"{spec.function}: {spec.id} passed" + where)
    # the first recognised mistake wins; else the first failing key
    named = [f for f in failing if f[1] not in GENERIC_KINDS]
    key, mistake_id, text = (named or failing)[0]
    others = [spec.label(k) for k, _, _ in failing if k != key]
    also = f" Also wrong: {', '.join(others)}." if others else ""
    return Verdict(False, mistake_id, f"{spec.function}: {text}{also}{where}")
