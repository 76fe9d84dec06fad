"""What the notebooks' test cells call: ``check(check_id, student_function, hidden=False)``.

A test cell reads::

    from normlab_grading import check

    _ = check("bn_forward", batchnorm_forward)
    ### BEGIN HIDDEN TESTS
    _ = check("bn_forward", batchnorm_forward, hidden=True)
    ### END HIDDEN TESTS

``check`` takes the case (visible: from the package data; hidden: the case the grader
shipped into its sandbox, or, on an instructor's machine, the trusted side's), calls the
student's function through the check's calling protocol under the tripwire, with warnings
captured and the student's stderr sent to stdout (nbgrader scores a test cell with any
stderr output 0, so a warning from correct code must not cost points: it is echoed as a
note instead), then either

- judges and raises ``AssertionError(message)`` on failure, so the cell scores 0 and shows
  the message; an exception raised by the student's code propagates unchanged; on success
  it prints one line and returns the ``Verdict``. A visible test is judged against the
  expected outputs and the recognised mistakes' outputs in the data; a hidden one by the
  trusted side (``normlab_grading.grade.judge``); or
- when ``$NORMLAB_GRADING_RECORD`` names a directory, saves a record of the outputs
  (``records.save_record``) for the grader to judge, and returns None without judging.

Test cells end in a statement (``_ = check(...)``): nbgrader would read a trailing value
as partial credit.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .compare import Verdict, verdict
from .data import hidden_case, visible
from .outputs import normalize_outputs
from .records import record_dir, save_record
from .spec import get_spec
from .tripwire import Tripwire

__all__ = ["check", "run_student", "StudentRun"]


@dataclass
class StudentRun:
    """What happened when the student's function ran on a case."""

    outputs: dict = field(default_factory=dict)  # normalized (arrays and Problems)
    exception: BaseException | None = None
    tripwire: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def error(self) -> tuple[str, str] | None:
        if self.exception is None:
            return None
        return type(self.exception).__name__, str(self.exception)


def _student_copy(case: dict) -> dict:
    """The student gets copies: in-place changes must not reach the judged case."""
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in case.items()}


def run_student(spec, student: Any, case: dict) -> StudentRun:
    """Call ``student`` through ``spec.call`` on a copy of ``case`` under the tripwire,
    capturing warnings and stderr. Never raises for the student's exceptions."""
    run = StudentRun()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stderr(sys.stdout):
            tripwire = Tripwire(allowed=spec.allowed)
            try:
                with tripwire:
                    raw = spec.call(student, _student_copy(case))
                run.outputs = normalize_outputs(raw)
            except Exception as exc:  # the student's code raised
                run.exception = exc
    run.tripwire = tripwire.hit
    run.warnings = [f"{w.category.__name__}: {w.message}" for w in caught]
    return run


def _trusted_hidden_case(check_id: str) -> dict:
    try:
        from normlab_grading.grade.cases import hidden_seed, make_case
    except ImportError:
        raise RuntimeError("hidden tests run only when the notebook is graded") from None
    return make_case(check_id, hidden_seed(), True)


def check(check_id: str, student: Any, hidden: bool = False) -> Verdict | None:
    """Grade ``student`` (the function or class the notebook asks for) on check
    ``check_id``'s visible case, or its hidden case with ``hidden=True``.

    Raises AssertionError with a message naming the mistake if the answer is wrong.
    """
    __tracebackhide__ = True  # noqa: F841  (pytest and IPython hide this frame)
    spec = get_spec(check_id)
    data = None
    if hidden:
        case = hidden_case(check_id)
        if case is None:
            case = _trusted_hidden_case(check_id)
    else:
        data = visible(check_id)
        case = data["case"]
    run = run_student(spec, student, case)
    for text in dict.fromkeys(run.warnings):  # each distinct warning once
        print(f"note: {spec.function} emitted {text} (not penalised; shown here, not on stderr)")

    directory = record_dir()
    if directory:
        save_record(directory, check_id, hidden, run.outputs, run.tripwire, run.error, run.warnings)
        print(f"{check_id} ({'hidden' if hidden else 'visible'}): recorded for grading")
        return None

    if run.exception is not None and run.tripwire is None:
        raise run.exception
    if hidden:
        from normlab_grading.grade.judge import judge

        result = judge(check_id, case, run.outputs, hidden=True, tripwire=run.tripwire)
    else:
        result = verdict(spec, case, run.outputs, data["expected"],
                         lambda m: data["mistakes"].get(m.id), tripwire=run.tripwire)
    if not result.passed:
        raise AssertionError(result.message)
    print(f"ok: {spec.function} passed {check_id} ({'hidden' if hidden else 'visible'} test)")
    return result
