"""The grading pipeline end to end with real nbgrader, in a temporary course directory.

For every assignment, one ``nbgrader autograde`` run grades a batch of made-up students:
the solution (full marks), the untouched release (0, and the run goes on), one student per
group of recognised mistakes (each mistake in a submission of its own kind, packed with
others that fail disjoint cells), edited and deleted test cells, correct code that writes
warnings to stderr, and code that calls the reference or a library routine. Then
``nbgrader generate_feedback`` must not show hidden tests, and the committed exercises/
must equal a fresh release.

The assignments are discovered (``normlab_grading.grade.assignments``); the expected scores
and messages come from their declarations (``checks``), the student code of each mistake and
cheat from their ``submissions`` (edits of the solution code). Run alone with
``python tests/grading/test_grading_pipeline.py`` to print per-notebook autograde times.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from normlab_grading.grade import assignments
from normlab_grading.grade.registry import all_assignments, get_check

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import release  # noqa: E402  (a repository script: make exercises)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEED = "424242"  # NORMLAB_GRADING_SEED for the run: hidden cases differ from the default
WARN = ('import warnings, sys; warnings.warn("this API is deprecated", DeprecationWarning); '
        'print("debug: running", file=sys.stderr)')

# ----------------------------------------------------------------------------- submissions
@dataclass
class Student:
    """A made-up submission and what it should score: grade_id -> (score, text or None)."""

    name: str
    edits: list = field(default_factory=list)
    expect: dict = field(default_factory=dict)  # grade_id -> ("fail", message key) for fails
    untouched: bool = False
    transform: object = None  # callable(nb) -> nb, applied last
    rows: list = field(default_factory=list)  # (check, mistake) of the table rows it carries


def _solution_code(assignment: str) -> dict[str, str]:
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    code = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            code[meta["grade_id"]] = cell.source
    return code


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def build_submission(assignment: str, release_nb, student: Student):
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    if student.untouched:
        return nb
    solutions = _solution_code(assignment)
    for gid, old, new in student.edits:
        assert old in solutions[gid], f"{assignment}/{student.name}: {old!r} not in {gid}"
        solutions[gid] = solutions[gid].replace(old, new, 1)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in solutions:
            cell.source = _strip_markers(solutions[gid])
    return student.transform(nb) if student.transform else nb


def _test_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def _edit_tests(nb):
    for cell in _test_cells(nb):
        cell.source = "pass  # tests removed by the student"
        cell.metadata.nbgrader["points"] = 100
        cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "100"},
                                               execution_count=1)]
    return nb


def _delete_tests(nb):
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    return nb


def _all_functions_injected(assignment):
    """WARN after EVERY solution region's start (each function and method)."""
    sources = _solution_code(assignment)
    edits = []
    for gid, source in sources.items():
        lines = source.split("\n")
        out = []
        for line in lines:
            out.append(line)
            if "### BEGIN SOLUTION" in line:
                indent = line[: len(line) - len(line.lstrip())]
                out.append(f"{indent}{WARN}")
        edits.append((gid, source, "\n".join(out)))
    return edits


def students_for(assignment: str) -> list[Student]:
    decl = all_assignments()[assignment]
    cells = [c.grade_id for c in decl.cells]
    students = [
        Student("solution"),
        Student("untouched", untouched=True,
                expect={g: ("fail", "NotImplementedError") for g in cells}),
        Student("tests_edited", transform=_edit_tests),
        Student("tests_deleted", transform=_delete_tests),
        Student("stderr_warning", edits=_all_functions_injected(assignment)),
    ]
    submissions = assignments.submissions(assignment)
    for i, (edits, fails, routine) in enumerate(submissions.CHEATS):
        fails = cells if fails == "all" else fails
        students.append(Student(f"cheat{i}", edits=edits,
                                expect={g: ("fail", f"called {routine}") for g in fails}))
    # pack mistakes: a student gets several whose failing cells are disjoint and whose code
    # is in different solution cells (two mistakes in one function can mask each other's
    # message, so each such mistake gets a submission of its own)
    packed: list[tuple[set, set, Student]] = []
    for row in decl.expected:
        edits = submissions.VARIANTS[(row.check, row.mistake)]
        code_cells = {gid for gid, _, _ in edits}
        fails = set(row.fails)
        expect = {}
        for g in row.fails:
            key = row.messages.get(g, row.mistake)
            expect[g] = ("fail", _message_key(decl, g, key))
        for used_cells, used_code, st in packed:
            if not (used_cells & fails) and not (used_code & code_cells):
                st.edits += edits
                st.expect.update(expect)
                st.rows.append((row.check, row.mistake))
                used_cells |= fails
                used_code |= code_cells
                st.name += f"+{row.mistake}"
                break
        else:
            st = Student(f"m{len(packed)}-{row.mistake}", edits=list(edits), expect=expect,
                         rows=[(row.check, row.mistake)])
            packed.append((set(fails), set(code_cells), st))
    students += [st for _, _, st in packed]
    return students


def _message_key(decl, grade_id, key):
    """The text a failing cell's output must contain: the named mistake's message, or a
    marker of the generic/exception messages."""
    if key == "generic":
        return "is wrong in"
    if key == "exception":
        return None  # the student's own exception: any error output
    chk = get_check(decl.cell(grade_id).checks[0])
    return chk.mistake(key).message


# ----------------------------------------------------------------------------- the course
def _env():
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["NORMLAB_GRADING_SEED"] = SEED
    env.pop("NORMLAB_GRADING_RECORD", None)
    return env


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=INFO"],
                          cwd=course, env=_env(), capture_output=True, text=True)


@dataclass
class Graded:
    assignment: str
    course: Path
    students: list
    scores: dict  # student -> grade_id -> score
    totals: dict  # student -> total score
    autograde_log: str
    autograde_seconds: float
    feedback_log: str


def _course(tmp: Path) -> Path:
    course = tmp / "course"
    course.mkdir()
    release.generate(ROOT, course)  # solutions/ + nbgrader_config.py + exercises/ + gradebook
    return course


def grade(course: Path, assignment: str) -> Graded:
    release_nb = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb",
                               as_version=4)
    students = students_for(assignment)
    for st in students:
        nb = build_submission(assignment, release_nb, st)
        path = course / "submitted" / st.name / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    t0 = time.perf_counter()
    proc = nbgrader(course, "autograde", assignment, "--force")
    seconds = time.perf_counter() - t0
    feedback = nbgrader(course, "generate_feedback", assignment, "--force")
    from nbgrader.api import Gradebook

    scores, totals = {}, {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for st in students:
            sub = gb.find_submission(assignment, st.name)
            totals[st.name] = sub.score
            scores[st.name] = {g.name: g.score for g in sub.notebooks[0].grades}
    return Graded(assignment, course, students, scores, totals,
                  proc.stdout + proc.stderr, seconds, feedback.stdout + feedback.stderr)


def cell_error_text(graded: Graded, student: str, grade_id: str) -> str:
    a = graded.assignment
    nb = nbformat.read(graded.course / "autograded" / student / a / f"{a}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return "\n".join(f"{o.ename}: {o.evalue}" for o in cell.get("outputs", [])
                             if o.output_type == "error")
    raise KeyError(grade_id)


def feedback_text(graded: Graded, student: str) -> str:
    a = graded.assignment
    raw = (graded.course / "feedback" / student / a / f"{a}.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", raw)), raw


# ----------------------------------------------------------------------------- fixtures
ASSIGNMENTS = list(assignments.packages())


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return _course(tmp_path_factory.mktemp("nbgrader"))


_GRADED: dict = {}


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, course):
    if request.param not in _GRADED:
        _GRADED[request.param] = grade(course, request.param)
    return _GRADED[request.param]


# ----------------------------------------------------------------------------- tests
def test_exercises_are_up_to_date(course):
    """The committed exercises/ equals what the solutions generate (make exercises)."""
    diffs = release.differences(course / "exercises", ROOT / "exercises")
    assert not diffs, "run `make exercises`:\n" + "\n".join(diffs)


def test_every_submission_was_graded(graded):
    assert "There was an error processing" not in graded.autograde_log, graded.autograde_log[-3000:]
    assert set(graded.totals) == {st.name for st in graded.students}


def test_scores_and_messages(graded):
    decl = all_assignments()[graded.assignment]
    points = {c.grade_id: c.points for c in decl.cells}
    problems = []
    for st in graded.students:
        for gid, pts in points.items():
            want = 0.0 if gid in st.expect else float(pts)
            got = graded.scores[st.name][gid]
            text = cell_error_text(graded, st.name, gid)
            if got != want:
                problems.append(f"{st.name}/{gid}: score {got}, expected {want}; output: {text[:300]}")
                continue
            if gid in st.expect:
                key = st.expect[gid][1]
                if not text or (key is not None and key not in text):
                    problems.append(f"{st.name}/{gid}: message {key!r} not in output {text[:300]!r}")
    assert not problems, "\n".join(problems)


def test_expected_totals_match_the_table(graded):
    """A student with exactly one mistake scores what the notebook's table says."""
    decl = all_assignments()[graded.assignment]
    for row in decl.expected:
        st = next(s for s in graded.students if (row.check, row.mistake) in s.rows)
        lost = sum(decl.cell(g).points for g in row.fails)
        assert all(graded.scores[st.name][g] == 0 for g in row.fails)
        assert decl.expected_score(row) == decl.total - lost


def test_solution_full_marks_and_untouched_zero(graded):
    total = all_assignments()[graded.assignment].total
    assert graded.totals["solution"] == total
    assert graded.totals["untouched"] == 0
    assert graded.totals["tests_edited"] == total  # original tests restored
    assert graded.totals["tests_deleted"] == total  # deleted test cells re-added
    assert graded.totals["stderr_warning"] == total  # warnings do not cost points


def test_feedback_has_no_hidden_tests(graded):
    assert "There was an error" not in graded.feedback_log, graded.feedback_log[-3000:]
    for st in graded.students:
        text, raw = feedback_text(graded, st.name)
        for needle in ("hidden=True", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert needle not in text and needle not in raw, (st.name, needle)
        # the visible tests and the checker's messages are there
        assert 'check("' in text


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        c = _course(Path(tmp))
        print(f"generate ({len(ASSIGNMENTS)} assignments): {time.perf_counter() - t0:.1f} s")
        for a in sys.argv[1:] or ASSIGNMENTS:
            g = grade(c, a)
            n = len(g.students)
            print(f"{a}: {n} submissions autograded in {g.autograde_seconds:.1f} s "
                  f"({g.autograde_seconds / n:.1f} s per notebook)")
            for st in g.students:
                print(f"  {st.name}: {g.totals[st.name]}")
