"""What a student's function returned, made comparable: numeric arrays, or a ``Problem``.

Outputs reach the comparison *normalized* (``normalize_outputs``): every value is a numeric
numpy array (a copy) or a ``Problem`` describing what was returned instead. Records store
the same thing, so judging in or out of the student's kernel gives the same verdict.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = ["Problem", "normalize_value", "normalize_outputs", "nonfinite_in", "shape_text"]


@dataclass(frozen=True)
class Problem:
    """A student output that is not a numeric array, described in words
    (e.g. "None (NoneType)")."""

    text: str


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


def nonfinite_in(value, where=None) -> bool:
    """True if ``value`` (restricted to the boolean mask ``where``) has NaN or inf."""
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.number):
        return False
    if where is not None:
        if arr.shape != np.shape(where):
            return False
        arr = arr[where]
    return bool(arr.size) and not bool(np.all(np.isfinite(arr)))


def shape_text(**arrays) -> str:
    """``"x (6, 3), gamma (3,)"`` for messages."""
    return ", ".join(f"{name} {tuple(np.shape(a))}" for name, a in arrays.items())
