"""The student side (``normlab_grading.check``) holds data, not answers, and judges the
visible cases exactly as the trusted side does; every check fails stubs.

Ground truth: the trusted judge (``normlab_grading.grade.judge``), which computes the references
and the mistake models with normlab.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

import normlab_grading
from normlab_grading.grade.cases import assignment_seed, make_case
from normlab_grading.grade.judge import judge
from normlab_grading.grade.registry import all_checks, get_check
from normlab_grading.check import data
from normlab_grading.check.checking import run_student
from normlab_grading.check.compare import verdict
from normlab_grading.check.spec import all_specs, get_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import student_data  # noqa: E402  (a repository script)

CHECKS = sorted(all_checks())
STUDENT_SRC = Path(normlab_grading.__file__).resolve().parent


def test_student_data_is_up_to_date():
    assert student_data.main(["--check"]) == 0


def test_every_check_has_a_spec_and_visible_data():
    assert sorted(all_specs()) == CHECKS


def _student_verdict(cid, outputs):
    spec, vis = get_spec(cid), data.visible(cid)
    return verdict(spec, vis["case"], outputs, vis["expected"], lambda m: vis["mistakes"].get(m.id))


@pytest.mark.parametrize("cid", CHECKS)
def test_visible_verdicts_equal_the_trusted_judge(cid):
    chk = get_check(cid)
    case = make_case(cid, 0, False)
    with np.errstate(all="ignore"):
        candidates = {"reference": chk.reference(case)}
        for m in chk.mistakes:
            if m.wrong is not None:
                full = dict(chk.reference(case))
                full.update(m.wrong(case))
                candidates[m.id] = full
    for name, outputs in candidates.items():
        mine, theirs = _student_verdict(cid, outputs), judge(cid, case, outputs)
        assert (mine.passed, mine.mistake_id) == (theirs.passed, theirs.mistake_id), (cid, name)
        assert mine.message == theirs.message
        if name != "reference":
            assert not theirs.passed, (cid, name)


def test_student_side_imports_nothing_of_the_trusted_side():
    """No module of the student side (normlab_grading/__init__.py and check/) imports normlab
    (except normlab.data), the trusted side normlab_grading.grade or the book's code."""
    bad = []
    files = [STUDENT_SRC / "__init__.py", *sorted((STUDENT_SRC / "check").rglob("*.py"))]
    assert len(files) > 10
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level and (node.module or "").startswith("grade"):
                names = ["normlab_grading." + node.module]  # a relative import of the trusted side
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for n in names:
                trusted = n.startswith(("normlab_grading.grade", "normlab_book"))
                if trusted or ((n == "normlab" or n.startswith("normlab.")) and n != "normlab.data"):
                    # the instructor-only fallbacks for hidden tests are allowed, lazily
                    if n in ("normlab_grading.grade.cases", "normlab_grading.grade.judge"):
                        continue
                    bad.append(f"{path.name}: {n}")
    assert not bad


def test_hidden_seed_is_per_assignment():
    a, b = assignment_seed(4242, "02-zscore"), assignment_seed(4242, "03-batchnorm-math")
    assert a != b and a == assignment_seed(4242, "02-zscore") and a != assignment_seed(4243, "02-zscore")


# ----------------------------------------------------------------------------- stubs
def _raises(*a, **k):
    raise ValueError("stub")


def _zero(*a, **k):
    return 0.0


def _none(*a, **k):
    return None


def _first(*a, **k):
    return a[0] if a else None


class _StubObject:
    def __init__(self, *a, **k):
        pass

    def __getattr__(self, name):
        return _zero


class _Raising:
    def __init__(self, *a, **k):
        pass

    def __getattr__(self, name):
        return _raises


STUBS = {"raises": _raises, "zero": _zero, "none": _none, "identity": _first,
         "object": _StubObject, "raising_object": _Raising}


@pytest.mark.parametrize("cid", CHECKS)
@pytest.mark.parametrize("stub", sorted(STUBS))
def test_every_check_fails_a_stub(cid, stub):
    """A constant, an always-raising function or an empty class earns nothing on a check:
    it fails the visible or the hidden case (as graded: record, then trusted judge)."""
    chk = get_check(cid)
    passed = []
    for hidden in (False, True):
        case = make_case(cid, 4242 if hidden else 0, hidden)
        run = run_student(chk, STUBS[stub], case)
        v = judge(cid, case, run.outputs, hidden=hidden, tripwire=run.tripwire, error=run.error)
        passed.append(v.passed)
    assert not all(passed), f"{cid}: the {stub} stub passes both cases"
