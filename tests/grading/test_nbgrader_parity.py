"""normlab-grade on an nbgrader course that is not this one gives nbgrader's grades.

The course is ``tests/grading/nbgrader_course/`` (plain nbgrader, nothing of normlab's: two
problem sets, a data file read by a relative path, a module the student writes and hands in,
``Autograde.exclude_overwriting``). The submissions cover nbgrader's own autograde
situations: an unchanged (blank) notebook, an honest one, changed answers, edited test cells,
deleted locked and test cells, a hidden test failed, a cell that times out, an infinite loop,
shipped files (the student's ``helper.py``, a tampered data file and a tampered given
module), a written output file, old-format (schema 1) nbgrader metadata.

One temporary course, ``nbgrader autograde`` on it, ``nbgrader export``; then
``normlab-grade`` on a copy of the same ``submitted/`` folder, with the same nbgrader option
on the command line (``--Execute.timeout=3``), and ``nbgrader export`` on its gradebook.
Compared: totals, per-cell scores, export rows, the files in ``autograded/``, and nbgrader's
warnings about edited cells. The table of totals is printed (``pytest -s``).
"""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import normlab_grade_helpers as H

COURSE = Path(__file__).resolve().parent / "nbgrader_course"
CELL_TIMEOUT = "--Execute.timeout=3"
STAMP = "2026-03-01 10:00:00.000000 UTC"


def _release(course: Path, assignment: str, name: str) -> dict:
    return json.loads((course / "release" / assignment / f"{name}.ipynb").read_text())


def _set(nb: dict, gid: str, src: str) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"][H.index_of(nb, gid)]["source"] = src
    return nb


def _answers(nb: dict, answers: dict) -> dict:
    for gid, src in answers.items():
        nb = _set(nb, gid, src)
    return nb


SQUARES = ('def squares(n):\n    if n < 1:\n        raise ValueError("n must be at least 1")\n'
           '    return [i * i for i in range(1, n + 1)]')
MEAN = "def mean_of(xs):\n    return sum(xs) / len(xs)"
REPORT = 'with open("report.txt", "w") as fh:\n    fh.write(f"mean={mean_of(values)}\\n")'
SHIFTED = "def shifted(x):\n    return double(x) + OFFSET"
HELPER = "def double(x):\n    return 2 * x\n"


def scenarios(course: Path) -> dict:
    """student -> (assignment, notebook name, notebook, {shipped file: bytes})."""
    ps1 = _release(course, "ps1", "problem1")
    ps2 = _release(course, "ps2", "helpers")
    honest = _answers(ps1, {"squares": SQUARES, "mean_of": MEAN, "write_report": REPORT})
    out = {
        "blank": ("ps1", ps1, {}),
        "honest": ("ps1", honest, {}),
        "changed_answers": ("ps1", _answers(ps1, {
            "squares": "def squares(n):\n    return [i * i for i in range(n)]",
            "mean_of": "def mean_of(xs):\n    return sum(xs) / (len(xs) - 1)",
            "write_report": REPORT}), {}),
        "edited_tests": ("ps1", _answers(ps1, {"test_squares": "assert True",
                                               "test_squares_more": "pass",
                                               "test_mean_of": "print('fine')"}), {}),
        "hidden_failed": ("ps1", _answers(honest, {
            "squares": "def squares(n):\n    return [i * i for i in range(1, n + 1)]"}), {}),
        "timeout": ("ps1", _answers(honest, {"squares": "import time\ntime.sleep(60)\n" + SQUARES}), {}),
        "infinite_loop": ("ps1", _answers(honest, {"write_report": "while True:\n    pass"}), {}),
        "tampered_data": ("ps1", honest, {"data/values.csv": b"10\n10\n", "notes.txt": b"mine\n"}),
    }
    deleted = copy.deepcopy(honest)
    deleted["cells"] = [c for c in deleted["cells"]
                        if H.grade_id(c) not in ("load_values", "test_squares")]
    out["deleted_cells"] = ("ps1", deleted, {})
    old = copy.deepcopy(honest)  # nbgrader metadata schema 1 (no cell_type, no task)
    for cell in old["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if meta:
            meta["schema_version"] = 1
            meta.pop("cell_type", None)
            meta.pop("task", None)
    out["old_format"] = ("ps1", old, {})
    done = _answers(ps2, {"shifted": SHIFTED})
    out["helper_shipped"] = ("ps2", done, {"helper.py": HELPER.encode()})
    out["helper_missing"] = ("ps2", done, {})
    out["given_tampered"] = ("ps2", done, {"helper.py": HELPER.encode(), "given.py": b"OFFSET = 0\n"})
    return out


def _nbgrader(course: Path, *args, check=True) -> subprocess.CompletedProcess:
    res = subprocess.run([str(H.BIN / "nbgrader"), *args], cwd=course, env=H.env(),
                         capture_output=True, text=True, timeout=1800)
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


def _export(course: Path, db: Path, dest: Path) -> list[dict]:
    _nbgrader(course, "export", f"--CourseDirectory.db_url=sqlite:///{db}", f"--to={dest}")
    with open(dest, newline="") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: (r["assignment"], r["student_id"]))


def _cell_scores(db: Path) -> dict:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        for a in gb.assignments:
            for sub in gb.assignment_submissions(a.name):
                cells = {}
                for nb in sub.notebooks:
                    for g in nb.grades:
                        cells[g.name] = (g.score, g.max_score)
                out[(sub.student_id, a.name)] = (sub.score, cells)
    return out


def _files(folder: Path) -> dict:
    """The autograded folder's files but the notebooks, Python's caches and timestamp.txt
    (nbgrader copies it; normlab-grade keeps the time in the record and the gradebook)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".ipynb" and "__pycache__" not in p.parts
            and p.name != "timestamp.txt"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parity")
    course = tmp / "course"
    course.mkdir()
    shutil.copy(COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(COURSE / "source", course / "source")
    _nbgrader(course, "generate_assignment", "ps1", "--force")
    _nbgrader(course, "generate_assignment", "ps2", "--force")
    names = {"ps1": "problem1", "ps2": "helpers"}
    plan = scenarios(course)
    for student, (a, nb, files) in plan.items():
        folder = course / "submitted" / student / a
        H.write_nb(folder / f"{names[a]}.ipynb", nb)
        (folder / "timestamp.txt").write_text(STAMP)
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
    ours_in = tmp / "submitted"
    shutil.copytree(course / "submitted", ours_in)
    # nbgrader refuses old metadata; its advice is `nbgrader update`, run here on its copy
    refused = _nbgrader(course, "autograde", "ps1", "--student=old_format", CELL_TIMEOUT, check=False)
    update_log = _nbgrader(course, "update", "submitted/old_format/ps1/problem1.ipynb").stderr
    logs = ""
    for a in ("ps1", "ps2"):
        logs += _nbgrader(course, "autograde", a, "--force", CELL_TIMEOUT).stderr
    theirs_rows = _export(course, course / "gradebook.db", tmp / "nbgrader.csv")
    out = tmp / "graded"
    res = H.normlab_grade(ours_in, "--course", course, "--out", out, "--workers", "2", "--quiet",
                          CELL_TIMEOUT, timeout=1800)
    ours_rows = _export(course, out / "gradebook.db", tmp / "ours.csv")
    return {"course": course, "out": out, "plan": plan, "res": res, "logs": logs,
            "update_log": update_log,
            "refused_old": refused, "theirs_rows": theirs_rows, "ours_rows": ours_rows,
            "theirs": _cell_scores(course / "gradebook.db"), "ours": _cell_scores(out / "gradebook.db")}


@pytest.mark.slow
def test_totals_and_cells_match_nbgrader(graded):
    res, plan, theirs, ours = graded["res"], graded["plan"], graded["theirs"], graded["ours"]
    assert res.returncode == 0, res.stderr[-3000:]
    rows = []
    for student, (a, _, _) in plan.items():
        rows.append((f"{student} ({a})", theirs[(student, a)][0], ours[(student, a)][0]))
    width = max(len(r[0]) for r in rows)
    print("\n" + f"{'scenario':<{width}}  nbgrader  normlab-grade")
    for name, t, o in rows:
        print(f"{name:<{width}}  {t:>8g}  {o:>13g}")
    for key in theirs:
        assert ours[key] == theirs[key], key
    assert set(ours) == set(theirs)
    # the scenarios do what they claim (on nbgrader's side): a spread of scores
    assert theirs[("honest", "ps1")][0] == 5.0 and theirs[("blank", "ps1")][0] == 0.0
    assert theirs[("helper_shipped", "ps2")][0] == 3.0 and theirs[("helper_missing", "ps2")][0] == 0.0
    assert theirs[("edited_tests", "ps1")][0] == 0.0
    assert theirs[("hidden_failed", "ps1")][1]["test_squares_more"][0] == 0.0


@pytest.mark.slow
def test_export_rows_match_nbgrader(graded):
    assert graded["ours_rows"] == graded["theirs_rows"]
    # one row per student and assignment (nbgrader exports the unsubmitted ones too)
    assert len(graded["ours_rows"]) == 2 * len(graded["plan"])


@pytest.mark.slow
def test_written_and_shipped_files_are_kept_as_nbgrader_keeps_them(graded):
    course, out = graded["course"], graded["out"]
    for student, (a, _, _) in graded["plan"].items():
        theirs = _files(course / "autograded" / student / a)
        ours = _files(out / "autograded" / student / a)
        assert ours == theirs, student
    honest = _files(out / "autograded" / "honest" / "ps1")
    assert honest["report.txt"] == b"mean=2.5\n"
    assert honest["data/values.csv"] == (COURSE / "source/ps1/data/values.csv").read_bytes()
    tampered = _files(out / "autograded" / "tampered_data" / "ps1")
    assert tampered["notes.txt"] == b"mine\n"
    given = _files(out / "autograded" / "given_tampered" / "ps2")
    assert given["given.py"] == (COURSE / "source/ps2/given.py").read_bytes()
    assert given["helper.py"] == HELPER.encode()


@pytest.mark.slow
def test_old_metadata_is_updated_as_nbgrader_update_does(graded):
    assert graded["refused_old"].returncode != 0  # nbgrader itself asks for `nbgrader update`
    rec = H.results(graded["out"], "ps1")["old_format"]
    notes = [n for nb in rec["notebooks"].values() for n in nb["notes"]]
    assert any("schema version 1 updated to version 3" in n for n in notes), notes
    assert rec["score"] == 5.0


def _nbgrader_warnings(log: str, default: str | None = None) -> dict:
    """student -> the warnings nbgrader logged while sanitizing or autograding their
    notebooks (``[AutogradeApp | WARNING] ...`` after ``Sanitizing .../submitted/<student>/``)."""
    out: dict = {}
    student = default
    for line in log.splitlines():
        m = re.search(r"\| INFO\] (?:Sanitizing|Autograding) \S*/(?:submitted|autograded)/([^/]+)/", line)
        if m:
            student = m.group(1)
            continue
        m = re.match(r"\[\w+ \| WARNING\] (.*)$", line)
        if m and student is not None and "seconds late" not in m.group(1):
            out.setdefault(student, set()).add(m.group(1))
    return out


@pytest.mark.slow
def test_nbgrader_warnings_for_edited_cells(graded):
    from normlab_grading.grade.pipeline import WARNED

    theirs = _nbgrader_warnings(graded["logs"])
    for student, ws in _nbgrader_warnings(graded["update_log"], "old_format").items():
        theirs.setdefault(student, set()).update(ws)
    res = graded["res"]
    for student, (a, _, _) in graded["plan"].items():
        rec = H.results(graded["out"], a)[student]
        ours = {n[len(WARNED):] for nb in rec["notebooks"].values()
                for n in nb["notes"] if n.startswith(WARNED)}
        assert ours == theirs.get(student, set()), student
        for w in ours:  # and normlab-grade printed them on the terminal
            assert f"nbgrader warning: {student} / {a} / " in res.stderr and w[:60] in res.stderr
    for gid in ("test_squares", "test_squares_more", "test_mean_of"):  # the edited test cells
        assert any(f"Attribute 'checksum' for cell {gid} has changed" in w
                   for w in theirs["edited_tests"]), gid


# ----------------------------------------------------------------------------- options
def test_nbgrader_options_are_read_as_nbgrader_reads_them():
    from normlab_grading.grade.cli import nbgrader_options, split_nbgrader_options

    rest, traits = split_nbgrader_options(
        ["subs", "--Execute.timeout=2", "--out", "g", "--Autograde.exclude_overwriting",
         "ps2=helper.py", "--ClearSolutions.code_stub", "python=# TODO"])
    assert rest == ["subs", "--out", "g"]
    cfg = nbgrader_options(traits)
    assert cfg.Execute.timeout == 2  # an int, as Execute's trait wants
    assert cfg.Autograde.exclude_overwriting == {"ps2": "helper.py"}
    assert cfg.ClearSolutions.code_stub == {"python": "# TODO"}
    with pytest.raises(ValueError, match="Execute.timeout=soon: an int expected"):
        nbgrader_options(["--Execute.timeout=soon"])
    seen = []
    assert nbgrader_options(["--MyPreprocessor.level=3"], seen.append).MyPreprocessor.level == "3"
    assert "nbgrader has no class MyPreprocessor" in seen[0]


def test_command_line_options_build_the_gradebook(tmp_path):
    """A generate_assignment option given only on the command line (the solution stub)
    reaches the gradebook normlab-grade builds, and changing it rebuilds it."""
    import sqlite3

    from normlab_grading.grade.cli import nbgrader_options
    from normlab_grading.grade.course import Course, ensure_gradebook

    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(COURSE / "source", course / "source")
    db = tmp_path / "gradebook.db"

    def stub():
        con = sqlite3.connect(db)
        try:
            return con.execute("select source from source_cell where name = 'squares'").fetchone()[0]
        finally:
            con.close()

    ensure_gradebook(Course(course), "ps1", db)
    assert "raise NotImplementedError" in stub()
    ensure_gradebook(Course(course, nbgrader_options(["--ClearSolutions.code_stub=python=# TODO"])),
                     "ps1", db)
    assert "# TODO" in stub() and "NotImplementedError" not in stub()


# ----------------------------------------------------------------------------- shutdown
def test_heartbeat_failure_is_quiet_only_while_the_worker_closes(caplog):
    """A heartbeat on its way when the scheduler closes logs a traceback in the worker: it
    is dropped while the worker is closing, never during the run."""
    import logging
    from types import SimpleNamespace

    from distributed.core import Status

    from normlab_grading.grade.cli import _quiet_shutdown_heartbeat

    worker = SimpleNamespace(status=Status.running)
    _quiet_shutdown_heartbeat(worker)
    _quiet_shutdown_heartbeat(worker)  # once per process, however often the plugin runs
    log = logging.getLogger("distributed.worker")
    assert sum(type(f).__name__ == "ShutdownHeartbeat" for f in log.filters) == 1
    try:
        with caplog.at_level(logging.ERROR, logger="distributed.worker"):
            log.error("Failed to communicate with scheduler during heartbeat.")
            worker.status = Status.closing
            log.error("Failed to communicate with scheduler during heartbeat.")
            log.error("Unexpected exception during heartbeat. Closing worker.")
        assert [r.getMessage() for r in caplog.records] == [
            "Failed to communicate with scheduler during heartbeat.",
            "Unexpected exception during heartbeat. Closing worker."]
    finally:
        for f in [f for f in log.filters if type(f).__name__ == "ShutdownHeartbeat"]:
            log.removeFilter(f)
