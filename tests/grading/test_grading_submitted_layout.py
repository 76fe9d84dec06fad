"""normlab-grade writes nbgrader's collect layout (OUT/submitted/<student>/<assignment>/), so
that nbgrader's own API, which formgrader's per-student pages use, sees every graded submission
as submitted and autograded, with its time and score, also for zip and LMS input.

Ground truth: nbgrader's NbGraderAPI (get_submission, get_student_submissions,
get_submitted_students, get_autograded_students) configured as the README tells instructors
to configure formgrader, nbgrader's Exchange timestamp format, the input bytes, and the
points of 02-zscore's test cells (5+3+3+4+2+3 = 20; ignoring eps fails test_zscore_eps, 3).

The runs build on each other (module-scoped course): a zip mixing nbgrader's layout, a
Blackboard and a Canvas download; the same zip with --force; a newer submission of one
student; an older one (refused, as nbgrader collect --update keeps the newer).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

import normlab_grade_helpers as H
from normlab_grading.grade.submitted import MARKER
from normlab_grading.grade.intake import repair_notebook
from test_formgrader_browser import FORMGRADER_CONFIG

A = "02-zscore"
HELPER = b"SCALE = 2.0\n"
# score, submission time as nbgrader stores it (naive UTC), and the timestamp.txt expected
ALICE_TIME = dt.datetime(2026, 3, 1, 10, 0, 0)
BOB_TIME = dt.datetime(2026, 3, 2, 23, 59, 59)  # Blackboard's name gives no fraction
CAROL = "carol_12345"  # a Canvas name and user id: intake's student id


def _notebooks() -> dict:
    honest = H.strip_markers(H.solution_nb(A))
    no_eps = H.strip_markers(H.solution_nb(A))
    cell = no_eps["cells"][H.index_of(no_eps, "zscore")]
    assert "np.sqrt(var + eps)" in H.source(cell)
    cell["source"] = H.source(cell).replace("np.sqrt(var + eps)", "np.sqrt(var)")
    return {"honest": json.dumps(honest, indent=1).encode(),
            "no_eps": json.dumps(no_eps, indent=1).encode(),
            "release": json.dumps(H.release_nb(A), indent=1).encode()}


def _zip(path: Path, members: dict) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


def _blackboard(student: str, when: dt.datetime) -> str:
    return f"HW2_{student}_attempt_{when:%Y-%m-%d-%H-%M-%S}_{A}.ipynb"


def _grade(course: Path, source: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(H.BIN / "normlab-grade"), str(source), "-a", A, "--out", "graded",
                           "--course", str(course), "--workers", "2", "--quiet", *extra],
                          cwd=course, env=H.env(), capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def nbs() -> dict:
    return _notebooks()


@pytest.fixture(scope="module")
def first_zip(tmp_path_factory, nbs) -> Path:
    """alice in nbgrader's layout with timestamp.txt and shipped files, bob as a Blackboard
    download (time in the name), carol as a Canvas download (no time); outside the course
    (formgrader cannot read the input)."""
    return _zip(tmp_path_factory.mktemp("inbox") / "all.zip", {
        f"submitted/alice/{A}/{A}.ipynb": nbs["honest"],
        f"submitted/alice/{A}/timestamp.txt": "2026-03-01T11:00:00+01:00",
        f"submitted/alice/{A}/helper.py": HELPER,
        f"submitted/alice/{A}/data/notes.html": b"<script>alert(1)</script>",
        _blackboard("bob", BOB_TIME): nbs["no_eps"],
        f"{CAROL}_67890_{A}.ipynb": nbs["release"],
    })


@pytest.fixture(scope="module")
def course(tmp_path_factory, first_zip) -> Path:
    """The course graded once from ``first_zip``."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(H.ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(H.ROOT / "solutions" / A, course / "solutions" / A)
    proc = _grade(course, first_zip)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write(FORMGRADER_CONFIG)
    return course


def _api(course: Path):
    """nbgrader's API as formgrader builds it, from the course's nbgrader_config.py."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return NbGraderAPI(CourseDirectory(config=cfg), config=cfg)


def _state(course: Path) -> dict:
    """student -> (submitted, autograded, timestamp, score, max_score) per nbgrader's API,
    through both calls formgrader's pages use."""
    api = _api(course)
    by_assignment = {s["student"]: s for s in api.get_submissions(A)}
    state = {}
    for student in ("alice", "bob", CAROL):
        (sub,) = [s for s in api.get_student_submissions(student) if s["name"] == A]
        assert sub == api.get_submission(A, student)
        shown = by_assignment[student]
        assert (shown["score"], shown["timestamp"]) == (sub["score"], sub["timestamp"])
        state[student] = (sub["submitted"], sub["autograded"], sub["timestamp"], sub["score"],
                          sub["max_score"])
    return state


def _nbgrader_stamp(when: dt.datetime) -> str:
    """timestamp.txt as nbgrader submit writes it (its default format, in UTC)."""
    from nbgrader.exchange.abc import Exchange

    fmt = Exchange.class_traits()["timestamp_format"].default_value
    return when.replace(tzinfo=dt.timezone.utc).strftime(fmt)


def _tree(course: Path) -> dict:
    base = course / "graded" / "submitted"
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


EXPECTED = {"alice": (True, True, ALICE_TIME.isoformat(), 20.0, 20.0),
            "bob": (True, True, BOB_TIME.isoformat(), 17.0, 20.0),
            CAROL: (True, True, None, 0.0, 20.0)}


def test_nbgraders_api_sees_every_submission_submitted_and_autograded(course):
    api = _api(course)
    assert api.get_submitted_students(A) == api.get_autograded_students(A) == {"alice", "bob", CAROL}
    assert _state(course) == EXPECTED


def test_the_folder_holds_what_was_graded_as_nbgrader_collect_leaves_it(course, nbs):
    tree = _tree(course)
    assert set(tree) == {f"alice/{A}/{A}.ipynb", f"alice/{A}/timestamp.txt", f"alice/{A}/helper.py",
                         f"alice/{A}/data/notes.html.txt", f"bob/{A}/{A}.ipynb",
                         f"bob/{A}/timestamp.txt", f"{CAROL}/{A}/{A}.ipynb", MARKER}
    # the marker that makes plain nbgrader autograde refuse this folder (nbgrader_ext)
    assert "normlab-grade" in tree[MARKER].decode()
    # nbgrader's format, in UTC (alice gave +01:00), read back by nbgrader to the same time
    assert tree[f"alice/{A}/timestamp.txt"].decode() == _nbgrader_stamp(ALICE_TIME)
    assert tree[f"bob/{A}/timestamp.txt"].decode() == _nbgrader_stamp(BOB_TIME)
    assert tree[f"alice/{A}/helper.py"] == HELPER
    # the notebooks as graded: intake's text (the release needed no repair: the bytes handed
    # in), with the cells the students handed in
    assert tree[f"{CAROL}/{A}/{A}.ipynb"] == nbs["release"]
    for student, kind in (("alice", "honest"), ("bob", "no_eps"), (CAROL, "release")):
        assert tree[f"{student}/{A}/{A}.ipynb"] == repair_notebook(nbs[kind], f"{A}.ipynb")[0].encode()
        assert _sources(tree[f"{student}/{A}/{A}.ipynb"]) == _sources(nbs[kind])


def _sources(data: bytes) -> list:
    import nbformat

    return [(c.cell_type, c.source) for c in nbformat.reads(data.decode(), as_version=4).cells]


def test_forced_regrade_keeps_the_layout(course, first_zip):
    before = _tree(course)
    proc = _grade(course, first_zip, "--force")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _tree(course) == before
    assert _state(course) == EXPECTED
    assert _no_leftovers(course)


def test_a_rerun_writes_a_missing_folder_without_regrading(course, first_zip):
    """A folder missing after its record was saved (output of a normlab-grade that wrote none,
    a run stopped between the two) is written by the next run, which grades nothing."""
    before = _tree(course)
    shutil.rmtree(course / "graded" / "submitted" / "alice")
    missing = _api(course).get_submission(A, "alice")  # formgrader's "(no submission)"
    assert (missing["submitted"], missing["autograded"]) == (False, False)
    proc = _grade(course, first_zip)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "graded 0" in proc.stderr and "skipped 3" in proc.stderr
    assert _tree(course) == before
    assert _state(course) == EXPECTED


def _no_leftovers(course: Path) -> bool:
    base = course / "graded" / "submitted"
    return [p.name for p in base.glob("*/.*")] == []


def test_a_newer_submission_of_one_student_replaces_theirs_only(course, nbs, tmp_path):
    before = _tree(course)
    later = BOB_TIME + dt.timedelta(hours=8, microseconds=250)
    zipped = _zip(tmp_path / "bob.zip", {
        f"submitted/bob/{A}/{A}.ipynb": nbs["honest"],
        f"submitted/bob/{A}/timestamp.txt": later.strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
    })
    proc = _grade(course, zipped)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = _tree(course)
    assert {k: v for k, v in after.items() if not k.startswith("bob/")} == \
        {k: v for k, v in before.items() if not k.startswith("bob/")}
    assert after[f"bob/{A}/timestamp.txt"].decode() == _nbgrader_stamp(later)
    assert _sources(after[f"bob/{A}/{A}.ipynb"]) == _sources(nbs["honest"])
    assert _state(course) == dict(EXPECTED, bob=(True, True, later.isoformat(), 20.0, 20.0))
    assert _no_leftovers(course)


def test_an_older_submission_does_not_replace_a_newer_one(course, nbs, tmp_path):
    """Runs after the newer one: bob's Blackboard download from before is refused by name
    (exit status 1), and nothing of bob's changes, in the folder or in the gradebook."""
    before, state = _tree(course), _state(course)
    zipped = _zip(tmp_path / "old.zip", {_blackboard("bob", BOB_TIME): nbs["release"]})
    proc = _grade(course, zipped, "--force")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "before the submission already graded" in proc.stderr
    assert _tree(course) == before
    assert _state(course) == state
    assert state["bob"][3] == 20.0


def test_a_write_that_fails_leaves_the_old_folder_whole(tmp_path, monkeypatch):
    """The folder is built aside and swapped in: a write failing half-way (here: the disk
    full at the second file) leaves the previous submission's folder as it was, and no
    partial folder."""
    from normlab_grading.grade import report, submitted

    old = submitted.write(tmp_path, "alice", A, {A: '{"old": 1}'}, {"helper.py": b"old"},
                          "2026-03-01 10:00:00 UTC")
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    real, calls = report.atomic_write, []

    def full_disk(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(report, "atomic_write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        submitted.write(tmp_path, "alice", A, {A: '{"new": 1}'}, {"helper.py": b"new"},
                        "2026-03-02 10:00:00 UTC")
    assert len(calls) == 2
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    assert sorted(p.name for p in old.parent.iterdir()) == [A]
    monkeypatch.undo()
    new = submitted.write(tmp_path, "alice", A, {A: '{"new": 1}'}, {"helper.py": b"new"},
                          "2026-03-02 10:00:00 UTC")
    assert {p.name: p.read_bytes() for p in new.iterdir()} == {
        f"{A}.ipynb": b'{"new": 1}', "helper.py": b"new",
        "timestamp.txt": _nbgrader_stamp(dt.datetime(2026, 3, 2, 10)).encode()}
    assert sorted(p.name for p in new.parent.iterdir()) == [A]


def test_the_courses_own_submitted_folder_is_left_as_it_is(tmp_path, nbs):
    """``--out`` the course and the input its nbgrader submitted/ folder: that folder is the
    instructor's collect folder (with what intake does not keep: another notebook, the
    time as the student's submit wrote it), read, graded and not rewritten; nbgrader's API
    sees the submission graded, as after nbgrader's own autograde."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(H.ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(H.ROOT / "solutions" / A, course / "solutions" / A)
    here = course / "submitted" / "alice" / A
    here.mkdir(parents=True)
    (here / f"{A}.ipynb").write_bytes(nbs["honest"])
    (here / "scratch.ipynb").write_bytes(nbs["release"])
    (here / "timestamp.txt").write_text("2026-03-01 10:00:00.5 UTC\n")
    before = {p.name: p.read_bytes() for p in here.iterdir()}
    proc = subprocess.run([str(H.BIN / "normlab-grade"), "submitted", "-a", A, "--out", ".",
                           "--course", str(course), "--workers", "2", "--quiet"],
                          cwd=course, env=H.env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "left as it is" in proc.stderr
    assert {p.name: p.read_bytes() for p in here.iterdir()} == before
    assert sorted(p.name for p in here.parent.iterdir()) == [A]
    sub = _api(course).get_submission(A, "alice")
    assert (sub["submitted"], sub["autograded"], sub["timestamp"], sub["score"]) == \
        (True, True, "2026-03-01T10:00:00.500000", 20.0)
