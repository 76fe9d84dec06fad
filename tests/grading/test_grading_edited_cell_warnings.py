"""nbgrader's "Attribute 'checksum' for cell ... has changed!" warning on this course's real
exercises: none for a blank release or an honest solution handed in as students get them
(test cells without their hidden tests), exactly one for a test cell a student edited.

The gradebook holds each test cell with its hidden tests and their checksum, the release
without them, so plain nbgrader warns for every hidden-test cell of every submission; the
course's ``RobustOverwriteCells`` restores a cell that is exactly as released without a
warning. Ground truth: ``nbgrader autograde`` itself, run on the same three submissions in a
temporary copy of the course (its config, so it uses the same preprocessors), the checksums
recomputed with nbgrader's ``compute_checksum``, and the test cells' points (all 20 for the
honest notebooks: nbgrader puts the original test cell back before running it).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess

import nbformat
import pytest
from nbgrader.utils import compute_checksum

import normlab_grade_helpers as H
from test_nbgrader_parity import _nbgrader_warnings

A = "02-zscore"
EDITED = "test_zscore_ddof"
CHECKSUM = re.compile(r"Attribute 'checksum' for cell (\S+) has changed! "
                      r"\(should be: ([0-9a-f]+), got: ([0-9a-f]+)\)")


def _honest() -> dict:
    """The release with its solution cells completed (what an honest student hands in)."""
    nb = H.release_nb(A)
    solution = H.strip_markers(H.solution_nb(A))
    for cell in solution["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            H.set_solution(nb, meta["grade_id"], H.source(cell))
    return nb


def _edited() -> dict:
    nb = _honest()
    cell = nb["cells"][H.index_of(nb, EDITED)]
    cell["source"] = H.source(cell) + "\nassert True  # a student's edit"
    return nb


SUBMISSIONS = {"blank": lambda: H.release_nb(A), "honest": _honest, "edited": _edited}


def _points() -> dict:
    return {c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"]["points"])
            for c in H.solution_nb(A)["cells"] if H.is_test(c)}


def _hidden_test_cells() -> dict:
    """grade_id -> the full source of the solution's test cells that have hidden tests."""
    return {H.grade_id(c): H.source(c) for c in H.solution_nb(A)["cells"]
            if H.is_test(c) and "BEGIN HIDDEN TESTS" in H.source(c)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("warnings")
    nbs = {s: make() for s, make in SUBMISSIONS.items()}
    # nbgrader: a temporary copy of the course, its own gradebook and submitted/ folder
    course = tmp / "course"
    course.mkdir()
    shutil.copy(H.ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(H.ROOT / "solutions" / A, course / "solutions" / A)
    for student, nb in nbs.items():
        H.write_nb(course / "submitted" / student / A / f"{A}.ipynb", nb)

    def nbgrader(*args):
        proc = subprocess.run([str(H.BIN / "nbgrader"), *args], cwd=course, env=H.env(),
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stderr

    nbgrader("generate_assignment", A, "--force")
    # the course's release is nbgrader's (tools/release.py --check keeps it so)
    assert json.loads((course / "exercises" / A / f"{A}.ipynb").read_text()) == H.release_nb(A)
    theirs = _nbgrader_warnings(nbgrader("autograde", A, "--force"))
    # normlab-grade on the same notebooks
    subs = tmp / "subs"
    for student, nb in nbs.items():
        H.write_nb(subs / student / f"{A}.ipynb", nb)
    out = tmp / "graded"
    H.copy_gradebook(H.prepared_gradebook(tmp / "gb", [A]), out)
    res = H.normlab_grade(subs, "-a", A, "--out", out, "--workers", 2)
    return {"nbs": nbs, "theirs": theirs, "res": res, "out": out, "course": course,
            "records": H.results(out, A)}


def _ours(rec: dict) -> set:
    from normlab_grading.grade.pipeline import WARNED

    return {n[len(WARNED):] for nb in rec["notebooks"].values() for n in nb["notes"]
            if n.startswith(WARNED)}


@pytest.mark.slow
def test_warnings_match_nbgrader_and_only_the_edited_cell_is_reported(graded):
    res, records, theirs = graded["res"], graded["records"], graded["theirs"]
    assert res.returncode == 0, res.stderr[-3000:]
    assert "graded 3, failed 0, skipped 0" in res.stderr, res.stderr[-2000:]
    assert set(records) == set(SUBMISSIONS)
    for student in SUBMISSIONS:
        assert _ours(records[student]) == theirs.get(student, set()), student
    assert _ours(records["blank"]) == set() and _ours(records["honest"]) == set()
    [warning] = _ours(records["edited"])
    assert f"nbgrader warning: edited / {A} / " in res.stderr and warning[:60] in res.stderr
    assert "nbgrader warning: blank" not in res.stderr
    assert "nbgrader warning: honest" not in res.stderr
    # nbgrader's numbers: the gradebook's checksum of the full cell, and the edited cell's
    gid, should_be, got = CHECKSUM.fullmatch(warning).groups()
    assert gid == EDITED
    edited = nbformat.from_dict(copy.deepcopy(graded["nbs"]["edited"]))
    cell = edited.cells[H.index_of(graded["nbs"]["edited"], EDITED)]
    assert got == compute_checksum(cell)
    cell.source = _hidden_test_cells()[EDITED]
    assert should_be == compute_checksum(cell)


@pytest.mark.slow
def test_the_test_cells_run_with_their_hidden_tests(graded):
    """Quiet is not lost: every test cell graded is the gradebook's, hidden tests included,
    in nbgrader's autograded notebooks and in normlab-grade's."""
    hidden = _hidden_test_cells()
    assert EDITED in hidden and len(hidden) == len(_points())  # every test cell has some
    points = _points()
    for student in SUBMISSIONS:
        theirs = nbformat.read(graded["course"] / "autograded" / student / A / f"{A}.ipynb", 4)
        rec = graded["records"][student]
        [nb] = rec["notebooks"].values()
        ours = nbformat.read(graded["out"] / nb["autograded"], 4)
        for node in (theirs, ours):
            cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in node.cells}
            assert {g: cells[g] for g in hidden} == hidden, student
        expected = ({g: 0.0 for g in points} if student == "blank" else points)
        assert H.cell_scores(rec) == expected, student
