"""normlab-grade gives the grades ``nbgrader autograde`` gives, on the same honest
submissions (solution, untouched release, unanswered questions, known mistakes, correct
code that writes to stderr), and stores them in its gradebook the same way.

One temporary course (solutions + the repository's nbgrader_config.py, generate_assignment),
one ``nbgrader autograde`` per assignment, one ``normlab-grade`` run over the same
``submitted/`` folder.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys

import pytest

import normlab_grade_helpers as H

pytestmark = pytest.mark.slow

ASSIGNMENTS = ["02-zscore", "03-batchnorm-math", "05-ics"]
STDERR = 'import sys; print("debug: here", file=sys.stderr)'
# 02-zscore mistakes, as edits of the solution code (cell, old, new)
MISTAKES = {
    "unbiased_std": [("zscore", "/ (n - ddof)", "/ (n - 1)")],
    "eps_ignored": [("zscore", "np.sqrt(var + eps)", "np.sqrt(var)")],
}


def _solution_cells(nb):
    return [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")
            and c["cell_type"] == "code"]


def students(assignment: str, release: dict) -> dict:
    sol = H.strip_markers(H.solution_nb(assignment))
    out = {"solution": sol, "untouched": release}
    cells = _solution_cells(sol)
    # one unanswered question each (the release's stub in place of the answer)
    rel_by_id = {H.grade_id(c): c for c in release["cells"]}
    for gid in [H.grade_id(c) for c in cells][:1]:
        nb = copy.deepcopy(sol)
        nb["cells"][H.index_of(nb, gid)]["source"] = H.source(rel_by_id[gid])
        out[f"unanswered_{gid}"] = nb
    if assignment == "05-ics":
        return {k: v for k, v in out.items() if k != "untouched"}
    if assignment == "03-batchnorm-math":
        return out
    nb = copy.deepcopy(sol)
    for cell in _solution_cells(nb):
        lines = []
        for line in H.source(cell).split("\n"):
            lines.append(line)
            if line.lstrip().startswith("def ") and line.rstrip().endswith(":"):
                indent = line[: len(line) - len(line.lstrip())] + "    "
                lines.append(indent + STDERR)
        cell["source"] = "\n".join(lines)
    out["stderr_debug"] = nb
    if assignment == "02-zscore":
        for name, edits in MISTAKES.items():
            nb = copy.deepcopy(sol)
            for gid, old, new in edits:
                cell = nb["cells"][H.index_of(nb, gid)]
                assert old in H.source(cell), (name, old)
                cell["source"] = H.source(cell).replace(old, new, 1)
            out[name] = nb
    return out


def _nbgrader(course, *args):
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"],
                          cwd=course, env=H.env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _gradebook_scores(db, assignment, student_names):
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        for s in student_names:
            sub = gb.find_submission(assignment, s)
            scores[s] = {"total": sub.score,
                         "cells": {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}}
    return scores


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("equiv")
    course = tmp / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(H.ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    names = {}
    for a in ASSIGNMENTS:
        shutil.copytree(H.ROOT / "solutions" / a, course / "solutions" / a)
        _nbgrader(course, "generate_assignment", a, "--force")
        release = json.loads((course / "exercises" / a / f"{a}.ipynb").read_text())
        subs = students(a, release)
        names[a] = sorted(subs)
        for s, nb in subs.items():
            H.write_nb(course / "submitted" / s / a / f"{a}.ipynb", nb)
    fresh = tmp / "gradebook-before"
    fresh.mkdir()
    shutil.copy(course / "gradebook.db", fresh / "gradebook.db")
    # nbgrader, serially, in the students' kernels
    theirs = {}
    for a in ASSIGNMENTS:
        _nbgrader(course, "autograde", a, "--force")
        theirs[a] = _gradebook_scores(course / "gradebook.db", a, names[a])
    # normlab-grade on the same folder, writing a copy of the gradebook from before
    out = tmp / "out"
    out.mkdir()
    shutil.copy(fresh / "gradebook.db", out / "course.db")
    proc = H.normlab_grade(course / "submitted", "--out", out, "--workers", 2,
                           "--gradebook", out / "course.db", "--course", course)
    ours = {a: H.results(out, a) for a in ASSIGNMENTS}
    ours_db = {a: _gradebook_scores(out / "course.db", a, names[a]) for a in ASSIGNMENTS}
    return {"theirs": theirs, "ours": ours, "ours_db": ours_db, "proc": proc, "names": names,
            "out": out}


def test_run_succeeds(graded):
    proc = graded["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    n = sum(len(v) for v in graded["names"].values())
    assert f"graded {n}, failed 0" in proc.stderr


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_same_scores_as_nbgrader_autograde(graded, assignment):
    theirs, ours = graded["theirs"][assignment], graded["ours"][assignment]
    assert set(ours) == set(theirs)
    for s in theirs:
        assert H.cell_scores(ours[s]) == theirs[s]["cells"], s
        assert ours[s]["score"] == theirs[s]["total"], s
    # the variety is real: full marks, zero and partial scores all occur
    totals = {s: theirs[s]["total"] for s in theirs}
    top = max(totals.values())
    assert totals["solution"] == top and totals.get("untouched", 0) == 0
    assert any(0 < t < top for t in totals.values())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_gradebook_holds_the_same_grades(graded, assignment):
    assert graded["ours_db"][assignment] == graded["theirs"][assignment]


def test_failure_messages_match_the_in_kernel_checker(graded):
    ours = graded["ours"]["02-zscore"]
    for name in MISTAKES:
        failing = [c for nb in ours[name]["notebooks"].values() for c in nb["cells"]
                   if not c["passed"]]
        assert failing and all(c["message"].startswith("zscore: ") for c in failing), failing


def test_autograded_folders_hold_the_same_files(graded):
    """The notebook's folder after grading (the assignment's files, anything written) is
    kept in autograded/ as nbgrader keeps it (Python caches aside)."""
    course = graded["out"].parent / "course"

    def files(folder):
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
                if p.is_file() and p.suffix != ".ipynb" and "__pycache__" not in p.parts}

    for a, students in graded["names"].items():
        for s in students:
            theirs = files(course / "autograded" / s / a)
            assert files(graded["out"] / "autograded" / s / a) == theirs, (a, s)
