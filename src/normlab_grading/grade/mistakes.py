"""The catalogue of recognised wrong answers, and building blocks for declaring them.

Each check (``registry.Check``) carries a tuple of ``Mistake``s: a named wrong variant of
its answer, with the message a student gets when their output equals it. The judge tries
them, in order, on each wrong output key (``judge.py``); a mistake is recognised when the
student's outputs equal the mistake's on every key the mistake defines, so define only the
keys the mistake changes in a definite way. Declare a mistake next to its check in the
assignment's ``checks`` (what it computes goes in the assignment's ``answers``);
``catalogue(check_id)`` lists them. A mistake must be *distinguishable*: on every visible
and hidden case its output differs from the reference by far more than the check's
tolerance, and from the mistakes declared before it (``tests/grading/test_grading_checks.py``
verifies this over many seeds).

Messages are static sentences that name the mistake and say what to do instead; the judge
adds the function name and the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from normlab_grading.check.outputs import nonfinite_in  # noqa: F401  (declaring mistakes uses it)

__all__ = ["Mistake", "catalogue", "reduce_axes", "channel_shape", "scale_shift", "moments", "spread",
           "standardize", "unbiased", "blend", "nonfinite_in"]

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
        ``wrong`` for the keys listed in ``keys``. ``student_value`` is the student's output
        at ``key`` (a numpy array), ``expected`` the right outputs of the case, all keys
        (``{key: array}``), as ``check.compare`` calls it.
    keys: output keys ``matches`` applies to (``wrong`` tells its keys by itself).
    """

    id: str
    message: str
    wrong: Callable[[Case], Outputs] | None = None
    matches: Callable[[Case, str, np.ndarray, Mapping[str, np.ndarray]], bool] | None = None
    keys: tuple[str, ...] = ()


def catalogue(check_id: str) -> tuple[Mistake, ...]:
    """The recognised mistakes of a check, in the order the judge tries them."""
    from .registry import get_check

    return get_check(check_id).mistakes


# ------------------------------------------------------------------ building blocks
# One helper per rule that the models of answers (the assignments' ``answers``) repeat; each
# takes the switches of the usual mistakes, so a wrong answer differs from the right one
# only by the mistake it names.
EPS_MODES = ("inside", "outside", "ignored")


def reduce_axes(ndim: int) -> tuple[int, ...]:
    """Batch-norm statistics axes: 0 and every axis >= 2."""
    return (0,) + tuple(range(2, ndim))


def channel_shape(ndim: int) -> tuple[int, ...]:
    """The shape that broadcasts a per-channel (C,) array against (N, C, ...) input."""
    return (1, -1) + (1,) * (ndim - 2)


def scale_shift(x_hat, gamma, beta):
    """``gamma * x_hat + beta`` with per-channel (C,) parameters on (N, C, ...) input."""
    keep = channel_shape(np.ndim(x_hat))
    return np.reshape(gamma, keep) * x_hat + np.reshape(beta, keep)


def moments(x, axis, *, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``x`` over ``axis`` (kept as axes of length 1): the variance is
    ``sum((x - mean)**2) / (n - ddof)``, ``n`` the number of values reduced."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=axis, keepdims=True)
    n = x.size // mean.size
    return mean, ((x - mean) ** 2).sum(axis=axis, keepdims=True) / (n - ddof)


def spread(var, eps: float = 0.0, *, eps_mode: str = "inside", sqrt: bool = True):
    """What a standardization divides by: ``sqrt(var + eps)`` (``eps_mode="inside"``),
    ``sqrt(var) + eps`` (``"outside"``), ``sqrt(var)`` (``"ignored"``); ``sqrt=False``:
    ``var + eps`` (the variance instead of the standard deviation)."""
    if eps_mode not in EPS_MODES:
        raise ValueError(f"eps_mode must be one of {EPS_MODES}, got {eps_mode!r}")
    if not sqrt:
        return var + eps
    if eps_mode == "outside":
        return np.sqrt(var) + eps
    return np.sqrt(var if eps_mode == "ignored" else var + eps)


def standardize(x, axis, *, ddof: int = 0, eps: float = 0.0, eps_mode: str = "inside",
                center: bool = True, sqrt: bool = True) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps)`` over ``axis`` with switches for the usual mistakes
    (``moments``'s ddof, ``spread``'s eps_mode and sqrt; center=False: the mean is not
    subtracted). A zero spread (a constant column) is replaced by 1, as a careful student
    does, so that these variants differ from the right answer only by the mistake they name.
    """
    mean, var = moments(x, axis, ddof=ddof)
    scale = spread(var, eps, eps_mode=eps_mode, sqrt=sqrt)
    scale = np.where(scale == 0, 1.0, scale)
    x = np.asarray(x, dtype=np.float64)
    return ((x - mean) if center else x) / scale


def unbiased(var, n: int):
    """The unbiased variance from the biased one of ``n`` values: ``var * n / (n - 1)``."""
    return var * (n / (n - 1))


def blend(running, batch, factor: float):
    """A running statistic's update, torch's convention: ``(1 - factor) * running + factor *
    batch`` (``factor`` is torch's momentum, the weight of the new batch)."""
    return (1 - factor) * running + factor * batch
