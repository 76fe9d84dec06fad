"""What is graded: checks, the mistakes each check recognises, and the assignments' cells.

A *check* grades one aspect of one student function on one generated case. It is data, not
code run by the notebook: an id, how to build its inputs (``make_case``), how to call the
student's function on them (``call``), what the right answer is (``reference``, computed
with normlab by whichever process judges) and the catalogue of recognised wrong answers
(``mistakes``). Checks are declared in the ``checks`` module of each assignment's package
(``normlab_grading.grade.assignments.<package>``, discovered), which also declares the
assignment's test cells, points and the "mistake -> expected score" table (see
docs/grading.md).

Nothing here runs student code; ``checks.py`` does, ``judge.py`` compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .mistakes import Mistake

__all__ = [
    "Check",
    "Cell",
    "Expected",
    "Assignment",
    "register",
    "register_assignment",
    "get_check",
    "get_assignment",
    "all_checks",
    "all_assignments",
]

Case = Mapping[str, Any]
Outputs = Mapping[str, Any]


@dataclass(frozen=True)
class Check:
    """One graded aspect of one student function.

    id: unique over the course, used in the notebooks: ``check("bn_forward", ...)``.
    function: the student's function or class as the notebook names it (for messages).
    make_case: ``(rng, hidden) -> dict`` of numpy arrays and Python scalars. Hidden cases
        must use shapes that visible cases never use (see ``cases.pick_shape``).
    call: ``(student, case) -> dict`` of raw outputs: calls the student's callable the way
        the notebook documents. Runs under the tripwire, so it must not call normlab.
    reference: ``case -> dict`` of expected outputs (numpy arrays or numbers), in the
        order they are compared and reported.
    labels: output key -> how to name it to the student, e.g. ``"dx"`` or
        ``"transform(X_test)"``; keys without a label are named as they are.
    mistakes: the recognised wrong answers, tried in order.
    tol: an output passes when every entry has ``|a - b| <= tol * max(floor, max|b|)``
        (error relative to the scale of the expected array, ``judge.relative_errors``);
        ``tol=0`` demands exact equality (counts, outcome codes).
    floor: see ``tol``; the smallest scale an expected array is given.
    describe: ``case -> str``, shapes/arguments of the case for messages.
    allowed: dotted names (prefixes) of routines the tripwire lets this check's student
        code call although they are forbidden elsewhere, for checks whose graded job is
        not normalization itself (an experiment training a net with torch's BatchNorm1d).
    """

    id: str
    function: str
    make_case: Callable[[np.random.Generator, bool], dict]
    call: Callable[[Any, Case], dict]
    reference: Callable[[Case], dict]
    describe: Callable[[Case], str]
    labels: Mapping[str, str] = field(default_factory=dict)
    mistakes: tuple[Mistake, ...] = ()
    tol: float = 1e-6
    floor: float = 1e-8
    allowed: tuple[str, ...] = ()

    def label(self, key: str) -> str:
        return self.labels.get(key, key)

    def mistake(self, mistake_id: str) -> Mistake:
        for m in self.mistakes:
            if m.id == mistake_id:
                return m
        raise KeyError(f"check {self.id!r} has no mistake {mistake_id!r}")


@dataclass(frozen=True)
class Cell:
    """A test cell of an assignment: its nbgrader grade_id, points and the checks it runs.

    Every check runs twice in the cell: on its visible case, then (inside the
    ``### BEGIN HIDDEN TESTS`` region) on its hidden case.
    """

    grade_id: str
    points: int
    checks: tuple[str, ...]
    function: str
    what: str = ""  # one line for the notebook's points table


@dataclass(frozen=True)
class Expected:
    """A row of the "mistake -> score" table: what a submission with one mistake scores.

    mistake: a mistake id of the check it is first seen in (``check``).
    check: the check whose catalogue names the mistake.
    fails: grade_ids of the test cells this mistake fails (its own and any cell whose
        function reuses the faulty one, as the solution notebook does).
    messages: grade_id -> mistake id (of that cell's check) whose message the failing cell
        shows; cells not listed show ``mistake`` (if it is in their check's catalogue).
    note: for the student-facing table, e.g. "spatial_batchnorm_forward reuses it".
    """

    mistake: str
    check: str
    fails: tuple[str, ...]
    messages: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Assignment:
    """An assignment: ``solutions/<name>/<name>.ipynb``; cells in notebook order."""

    name: str
    cells: tuple[Cell, ...]
    expected: tuple[Expected, ...]

    @property
    def total(self) -> int:
        return sum(c.points for c in self.cells)

    def cell(self, grade_id: str) -> Cell:
        for c in self.cells:
            if c.grade_id == grade_id:
                return c
        raise KeyError(f"assignment {self.name!r} has no test cell {grade_id!r}")

    def expected_score(self, row: Expected) -> int:
        return self.total - sum(self.cell(g).points for g in row.fails)


_CHECKS: dict[str, Check] = {}
_ASSIGNMENTS: dict[str, Assignment] = {}
_LOADED = False


def register(*checks: Check) -> None:
    """Add checks to the registry (called at import by the assignment modules)."""
    for chk in checks:
        if chk.id in _CHECKS and _CHECKS[chk.id] is not chk:
            raise ValueError(f"check id {chk.id!r} is declared twice")
        ids = [m.id for m in chk.mistakes]
        if len(ids) != len(set(ids)):
            raise ValueError(f"check {chk.id!r} declares a mistake id twice: {ids}")
        _CHECKS[chk.id] = chk


def register_assignment(assignment: Assignment) -> Assignment:
    for cell in assignment.cells:
        for cid in cell.checks:
            if cid not in _CHECKS:
                raise ValueError(f"{assignment.name}: cell {cell.grade_id} uses unknown check {cid!r}")
    for row in assignment.expected:
        _CHECKS[row.check].mistake(row.mistake)
        for g in row.fails:
            assignment.cell(g)
    _ASSIGNMENTS[assignment.name] = assignment
    return assignment


def _load() -> None:
    global _LOADED
    if not _LOADED:
        from . import assignments

        assignments.load()
        _LOADED = True


def get_check(check_id: str) -> Check:
    _load()
    try:
        return _CHECKS[check_id]
    except KeyError:
        raise KeyError(
            f"unknown check {check_id!r}; known checks: {', '.join(sorted(_CHECKS))}"
        ) from None


def get_assignment(name: str) -> Assignment:
    _load()
    return _ASSIGNMENTS[name]


def all_checks() -> dict[str, Check]:
    _load()
    return dict(_CHECKS)


def all_assignments() -> dict[str, Assignment]:
    _load()
    return dict(_ASSIGNMENTS)
