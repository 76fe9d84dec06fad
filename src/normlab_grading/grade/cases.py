"""Deterministic inputs for the checks.

``make_case(check_id, seed, hidden)`` returns the dict of numpy arrays and Python scalars a
check runs the student's function on. The same (check_id, seed, hidden) always gives the
same case, in any process, so a submission gets the same score every time and a trusted
process can rebuild the case from a record (``records.py``).

- Visible cases use ``VISIBLE_SEED`` and small fixed shapes: the student sees them fail
  and can reproduce them.
- Hidden cases use the seed in the environment variable ``NORMLAB_GRADING_SEED`` (an
  integer, the course's secret, set by the instructor when autograding; change it each
  term) or ``DEFAULT_HIDDEN_SEED``, derived per assignment (``assignment_seed``), and
  shapes that visible cases never use (``pick_shape``), so an answer hard-coded from the
  visible case fails. The grader's sandbox gets the hidden cases as files, never a seed.

Each check gets its own random stream, derived from (seed, check id, hidden).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import zlib

import numpy as np

from normlab_grading.check.outputs import shape_text  # noqa: F401  (the assignments use it)

__all__ = [
    "VISIBLE_SEED",
    "DEFAULT_HIDDEN_SEED",
    "SEED_ENV",
    "hidden_seed",
    "case_rng",
    "assignment_seed",
    "make_case",
    "pick_shape",
    "shape_text",
]

VISIBLE_SEED = 0
DEFAULT_HIDDEN_SEED = 20_250_917
SEED_ENV = "NORMLAB_GRADING_SEED"


def hidden_seed() -> int:
    """The seed of the hidden cases: ``$NORMLAB_GRADING_SEED`` or ``DEFAULT_HIDDEN_SEED``."""
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return DEFAULT_HIDDEN_SEED
    try:
        seed = int(raw)
    except ValueError:
        raise ValueError(f"{SEED_ENV} must be a non-negative integer, got {raw!r}") from None
    if seed < 0:
        raise ValueError(f"{SEED_ENV} must be a non-negative integer, got {raw!r}")
    if seed == VISIBLE_SEED:
        raise ValueError(f"{SEED_ENV}={seed} is the visible seed; choose another one")
    return seed


def _owner(check_id: str) -> str:
    """The assignment whose test cells run ``check_id`` ("" if none does)."""
    from .registry import all_assignments

    for a in all_assignments().values():
        if any(check_id in c.checks for c in a.cells):
            return a.name
    return ""


def assignment_seed(seed: int, assignment: str) -> int:
    """The hidden seed of one assignment, derived from the course's ``seed`` (the secret)
    with HMAC-SHA256: knowing one assignment's hidden cases, or its derived seed, tells
    nothing about another's."""
    digest = hmac.new(str(int(seed)).encode(), assignment.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


def case_rng(check_id: str, seed: int, hidden: bool) -> np.random.Generator:
    """The random stream of one check's case; independent of every other check's. A hidden
    case's stream comes from the seed of the check's assignment (``assignment_seed``)."""
    if hidden:
        seed = assignment_seed(seed, _owner(check_id))
    return np.random.default_rng([int(seed), zlib.crc32(check_id.encode()), int(bool(hidden))])


def make_case(check_id: str, seed: int | None = None, hidden: bool = False) -> dict:
    """The inputs of check ``check_id``: visible (``seed`` defaults to ``VISIBLE_SEED``) or
    hidden (``seed`` defaults to ``hidden_seed()``, the course's secret)."""
    from .registry import get_check

    chk = get_check(check_id)
    if seed is None:
        seed = hidden_seed() if hidden else VISIBLE_SEED
    case = chk.make_case(case_rng(check_id, seed, hidden), bool(hidden))
    return dict(case)


def pick_shape(rng: np.random.Generator, hidden: bool, visible: tuple, ranges) -> tuple:
    """``visible`` for a visible case; for a hidden one, a shape drawn from ``ranges``
    (one inclusive ``(lo, hi)`` per axis) that differs from ``visible`` on every axis
    whose range allows it, and has no two equal axes among the first two (so a sum over
    the wrong axis gives a wrong shape)."""
    if not hidden:
        return tuple(visible)
    for _ in range(1000):
        shape = tuple(int(rng.integers(lo, hi + 1)) for lo, hi in ranges)
        if any(s == v and lo != hi for s, v, (lo, hi) in zip(shape, visible, ranges)):
            continue
        if len(shape) >= 2 and shape[0] == shape[1]:
            continue
        return shape
    raise RuntimeError(f"cannot draw a hidden shape from {ranges} avoiding {visible}")
