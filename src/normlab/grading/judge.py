"""Judging: a pure function of (check, case, student outputs) -> Verdict.

``judge(check_id, case, outputs, tripwire=None, error=None)`` computes the reference with
normlab in the calling process, compares key by key, and explains the first problem:

1. a forbidden call (``tripwire``) or an exception raised by the student (``error``);
2. for each output key in the reference's order: a missing value or one of the wrong type
   or shape (unless the shape is a recognised mistake);
3. values: if the key is wrong, the first mistake of the check's catalogue that explains
   it (all the outputs the mistake defines equal the student's) names the mistake;
   otherwise the generic message gives the largest relative error and the index of the
   worst entry.

It runs no student code and does not care which process it is in: the notebook's
``check`` calls it in the kernel, and a trusted grader can call it on records
(``records.load_record``) made in the kernel with ``NORMLAB_GRADING_RECORD``.

Outputs reach the judge *normalized* (``normalize_outputs``): every value is a numeric
numpy array or a ``Problem`` (text describing what was returned instead), which is also
what records store, so judging in or out of the kernel gives the same verdict.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .registry import Check, get_check
from .tripwire import tripwire_message

__all__ = ["Verdict", "Problem", "normalize_outputs", "judge", "relative_errors"]


@dataclass(frozen=True)
class Verdict:
    """passed; mistake_id: the recognised mistake, or one of "forbidden_call", "exception",
    "missing", "type", "shape", "nonfinite", "generic" (None when passed); message."""

    passed: bool
    mistake_id: str | None
    message: str


@dataclass(frozen=True)
class Problem:
    """A student output that is not a numeric array, described in words
    (e.g. "None (NoneType)")."""

    text: str


# ----------------------------------------------------------------------------- outputs
def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def normalize_value(value: Any) -> np.ndarray | Problem:
    """A numeric numpy array (copied), or a ``Problem`` saying what ``value`` is instead."""
    if isinstance(value, Problem):
        return value
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (numbers.Number, np.generic, list, tuple)) and not isinstance(value, str):
        try:
            arr = np.asarray(value)
        except Exception:  # ragged lists and the like
            return Problem(_describe(value))
        if arr.dtype == object:
            return Problem(_describe(value))
    else:
        # anything array-like that is not numpy (torch tensors, ...) is reported as is
        return Problem(_describe(value))
    if arr.dtype.kind not in "biuf":
        return Problem(f"an array of dtype {arr.dtype}")
    return np.array(arr, copy=True)


def normalize_outputs(raw: Mapping[str, Any]) -> dict:
    """Normalize every value of a check's raw outputs (see ``normalize_value``)."""
    return {str(k): normalize_value(v) for k, v in raw.items()}


# ----------------------------------------------------------------------------- comparing
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


def close(chk: Check, a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.size == 0:
        return True
    if chk.tol == 0:
        return bool(np.array_equal(a, b))
    return bool(np.max(relative_errors(a, b, chk.floor)) <= chk.tol)


def _fmt(v) -> str:
    return f"{float(v):.6g}" if np.ndim(v) == 0 else str(v)


def _index_text(idx) -> str:
    return "(" + ", ".join(str(int(i)) for i in idx) + ")" if len(idx) != 1 else f"[{int(idx[0])}]"


def _generic(chk: Check, key: str, got: np.ndarray, want: np.ndarray) -> str:
    label = chk.label(key)
    if want.ndim == 0:
        err = float(relative_errors(got, want, chk.floor))
        return (
            f"{label} is wrong: got {_fmt(got)}, expected {_fmt(want)}"
            + (f" (relative error {err:.2e}, tolerance {chk.tol:g})." if chk.tol else ".")
        )
    errs = relative_errors(got, want, chk.floor)
    idx = np.unravel_index(int(np.argmax(errs)), errs.shape)
    n_bad = int(np.count_nonzero(errs > chk.tol))
    return (
        f"{label} is wrong in {n_bad} of {errs.size} entries; the worst is at index "
        f"{_index_text(idx)}: got {_fmt(got[idx])}, expected {_fmt(want[idx])} (relative "
        f"error {float(errs[idx]):.2e}, i.e. |got - expected| / max|expected|; tolerance "
        f"{chk.tol:g})."
    )


def _mistake_for(chk: Check, case: Mapping, key: str, outputs: Mapping, cache: dict):
    """The first catalogue mistake that explains the wrong output at ``key``, or None.

    A ``wrong`` mistake explains it when the student's outputs equal the mistake's on
    EVERY key the mistake defines (so "feature_range ignored", which changes transform and
    inverse_transform, is not mistaken for a wrong inverse alone); a ``matches`` mistake
    when its predicate holds for ``key``.
    """
    for m in chk.mistakes:
        if m.matches is not None:
            if key in m.keys and m.matches(case, key, outputs[key]):
                return m
            continue
        if m.wrong is None:
            continue
        if m.id not in cache:
            with np.errstate(all="ignore"):
                cache[m.id] = dict(m.wrong(case))
        wrong = cache[m.id]
        if key not in wrong:
            continue
        if all(
            k in outputs and not isinstance(outputs[k], Problem)
            and close(chk, outputs[k], np.asarray(v))
            for k, v in wrong.items()
        ):
            return m
    return None


def _where(chk: Check, case: Mapping, hidden: bool) -> str:
    return f" [{'hidden' if hidden else 'visible'} test: {chk.describe(case)}]"


def judge(check_id: str, case: Mapping, outputs: Mapping[str, Any], *, hidden: bool = False,
          tripwire: str | None = None, error: tuple[str, str] | None = None) -> Verdict:
    """Judge normalized (or raw) student ``outputs`` of check ``check_id`` on ``case``.

    tripwire: the forbidden routine the student's code called (``Tripwire.hit``), if any.
    error: ``(exception type name, message)`` if the student's code raised.
    hidden: only used to say which test it was in the message.
    """
    chk = get_check(check_id)
    where = _where(chk, case, hidden)
    if tripwire:
        return Verdict(False, "forbidden_call", tripwire_message(chk.function, tripwire) + where)
    if error is not None:
        ename, evalue = error
        return Verdict(
            False, "exception", f"{chk.function} raised {ename}: {evalue}".rstrip(": ") + where
        )
    outputs = normalize_outputs(outputs)
    with np.errstate(all="ignore"):
        reference = {k: np.asarray(v) for k, v in chk.reference(case).items()}
    wrong_cache: dict = {}
    failing: list[tuple[str, str, str]] = []  # (key, mistake_id, message)
    for key, want in reference.items():
        label = chk.label(key)
        if key not in outputs:
            failing.append((key, "missing", f"{label} is missing from what {chk.function} returned."))
            continue
        got = outputs[key]
        if isinstance(got, Problem):
            failing.append((
                key, "type",
                f"{label} is {got.text}; expected a numpy array of shape {want.shape}"
                + (" (a number)." if want.ndim == 0 else "."),
            ))
            continue
        if close(chk, got, want):
            continue
        m = _mistake_for(chk, case, key, outputs, wrong_cache)
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
                + _generic(chk, key, got, want),
            ))
        else:
            failing.append((key, "generic", _generic(chk, key, got, want)))
    if not failing:
        return Verdict(True, None, f"{chk.function}: {chk.id} passed" + where)
    # the first recognised mistake wins; else the first failing key
    named = [f for f in failing if f[1] not in ("missing", "type", "shape", "nonfinite", "generic")]
    key, mistake_id, text = (named or failing)[0]
    others = [chk.label(k) for k, _, _ in failing if k != key]
    also = f" Also wrong: {', '.join(others)}." if others else ""
    return Verdict(False, mistake_id, f"{chk.function}: {text}{also}{where}")
