"""The cases a check runs on, as data.

- Visible: ``data/visible/<check_id>.npz`` (casefile format) holds the case, the expected
  outputs and the outputs of each recognised mistake on it, written by the trusted side
  (``tools/student_data.py``) and shipped with the package. The student sees these
  inputs fail or pass and can reproduce them.
- Hidden: only inside the grader's sandbox, where ``$NORMLAB_GRADING_CASES`` names a folder
  of hidden cases computed by the grader (``<check_id>.hidden.npz``): inputs only, never the
  seed that made them or the expected outputs.
"""

from __future__ import annotations

import os

from . import casefile

__all__ = ["CASES_ENV", "visible", "hidden_case", "VISIBLE_DIR"]

CASES_ENV = "NORMLAB_GRADING_CASES"
VISIBLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "visible")


def visible(check_id: str) -> dict:
    """``{"case": ..., "expected": {key: array}, "mistakes": {mistake_id: {key: array}}}``."""
    path = casefile.case_path(VISIBLE_DIR, check_id, False)
    try:
        return casefile.load_case(path)
    except FileNotFoundError:
        raise RuntimeError(f"no visible data for check {check_id!r} ({path}); run `make exercises`") from None


def hidden_case(check_id: str) -> dict | None:
    """The hidden case shipped into the sandbox, or None outside it."""
    folder = os.environ.get(CASES_ENV, "").strip()
    if not folder:
        return None
    path = casefile.case_path(folder, check_id, True)
    try:
        return casefile.load_case(path)
    except FileNotFoundError:
        raise RuntimeError(f"the grader shipped no hidden case for check {check_id!r}") from None
