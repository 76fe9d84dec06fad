"""Judging on the trusted side: (check id, case, student outputs) -> ``Verdict``.

``judge`` computes the reference and the recognised mistakes' outputs with normlab in the
calling process, then compares with the student side's one comparison function
(``normlab_grading.check.compare.verdict``), so a verdict reached here equals the one the
student's notebook reaches on the visible data. It runs no student code: the grader calls
it on records (``records``) made in the student's kernel.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from normlab_grading.check.compare import Verdict, close, relative_errors, verdict
from normlab_grading.check.outputs import Problem, normalize_outputs, normalize_value

from .registry import get_check

__all__ = ["Verdict", "Problem", "normalize_outputs", "normalize_value", "judge",
           "relative_errors", "close", "expected_outputs"]


def expected_outputs(check_id: str, case: Mapping) -> dict:
    """The reference's outputs of check ``check_id`` on ``case``, as arrays."""
    chk = get_check(check_id)
    with np.errstate(all="ignore"):
        return {k: np.asarray(v) for k, v in chk.reference(case).items()}


def judge(check_id: str, case: Mapping, outputs: Mapping[str, Any], *, hidden: bool = False,
          tripwire: str | None = None, error: tuple[str, str] | None = None) -> Verdict:
    """Judge normalized (or raw) student ``outputs`` of check ``check_id`` on ``case``."""
    chk = get_check(check_id)
    expected = {} if (tripwire or error is not None) else expected_outputs(check_id, case)
    return verdict(chk, case, outputs, expected,
                   lambda m: m.wrong(case) if m.wrong is not None else None,
                   hidden=hidden, tripwire=tripwire, error=error)
