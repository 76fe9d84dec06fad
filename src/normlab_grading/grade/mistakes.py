"""The catalogue of recognised wrong answers, and building blocks for declaring them.

Each check (``registry.Check``) carries a tuple of ``Mistake``s: a named wrong variant of
its answer, with the message a student gets when their output equals it. The judge tries
them, in order, on each wrong output key (``judge.py``); a mistake is recognised when the
student's outputs equal the mistake's on every key the mistake defines, so define only the
keys the mistake changes in a definite way. Declare a mistake
next to its check in ``normlab_grading.grade.assignments.chNN_*``; ``catalogue(check_id)`` lists
them. A mistake must be *distinguishable*: on every visible and hidden case its output
differs from the reference by far more than the check's tolerance, and from the mistakes
declared before it (``tests/test_grading_checks.py`` verifies this over many seeds).

Messages are static sentences that name the mistake and say what to do instead; the judge
adds the function name and the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from normlab_grading.check.outputs import nonfinite_in  # noqa: F401  (declaring mistakes uses it)

__all__ = ["Mistake", "catalogue", "reduce_axes", "standardize", "nonfinite_in"]

Case = Mapping[str, Any]
Outputs = Mapping[str, Any]


@dataclass(frozen=True)
class Mistake:
    """A recognised wrong answer.

    id: short name, unique within the check (e.g. ``"unbiased_variance"``).
    message: what the student is told; a complete sentence naming the mistake and the fix.
        It is static text (no case details), so tests and notebooks can quote it.
    wrong: ``case -> outputs`` that such a student would produce, for a subset of the
        check's output keys; a student output equal to it (within the check's tolerance)
        is this mistake. Computed with numpy/normlab in the judging process.
    matches: optional predicate ``(case, key, student_value, expected) -> bool`` for mistakes whose
        output is not one array (e.g. "NaN in the constant column"); used instead of
        ``wrong`` for the keys listed in ``keys``.
    keys: output keys ``matches`` applies to (``wrong`` tells its keys by itself).
    """

    id: str
    message: str
    wrong: Callable[[Case], Outputs] | None = None
    matches: Callable[[Case, str, np.ndarray], bool] | None = None
    keys: tuple[str, ...] = ()


def catalogue(check_id: str) -> tuple[Mistake, ...]:
    """The recognised mistakes of a check, in the order the judge tries them."""
    from .registry import get_check

    return get_check(check_id).mistakes


# ------------------------------------------------------------------ building blocks
def reduce_axes(ndim: int) -> tuple[int, ...]:
    """Batch-norm statistics axes: 0 and every axis >= 2."""
    return (0,) + tuple(range(2, ndim))


def standardize(x, axis, *, ddof: int = 0, eps: float = 0.0, eps_outside: bool = False,
                center: bool = True, sqrt: bool = True) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps)`` over ``axis`` with switches for the usual mistakes.

    ddof: divide the sum of squares by ``n - ddof``; eps_outside: ``sqrt(var) + eps``;
    center=False: do not subtract the mean; sqrt=False: divide by the variance.
    A zero scale (a constant column) is replaced by 1, as a careful student does, so
    that these variants differ from the right answer only by the mistake they name.
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=axis, keepdims=True)
    n = x.size // mean.size
    var = ((x - mean) ** 2).sum(axis=axis, keepdims=True) / (n - ddof)
    if not sqrt:
        scale = var + eps
    elif eps_outside:
        scale = np.sqrt(var) + eps
    else:
        scale = np.sqrt(var + eps)
    scale = np.where(scale == 0, 1.0, scale)
    return ((x - mean) if center else x) / scale
