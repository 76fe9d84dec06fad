"""normlab-grade export: Canvas, Moodle and plain CSV files from a graded folder.

No grading run: the graded folder is built by the grader's own record writer
(``cli._save_result``) from results shaped as ``pipeline.grade_submission`` returns them, and
every output is parsed back with the csv module and compared with rows written out by hand."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from normlab_grading.grade import cli, export

A, B = "02-zscore", "03-batchnorm-math"


def _result(student, assignment, score, max_score, status="graded", reason=None, name=""):
    """A result as pipeline.grade_submission returns it (one notebook, two test cells)."""
    cells = [{"grade_id": "test_a", "points": max_score - 2.0, "score": min(score, max_score - 2.0),
              "passed": score >= max_score - 2.0, "kind": None, "message": None},
             {"grade_id": "test_b", "points": 2.0, "score": max(0.0, score - (max_score - 2.0)),
              "passed": score >= max_score, "kind": None, "message": None}]
    nb = {"status": status, "reason": reason, "failure_kind": None, "score": float(score),
          "max_score": float(max_score), "cells": cells,
          "autograded": json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
          "feedback": "<html><body>feedback</body></html>", "notes": [], "timings": {},
          "kernel_log": ""}
    return {"student": student, "assignment": assignment, "display_name": name,
            "digest": "d" * 64, "key": "k" * 64, "grader_version": "test", "status": status,
            "reason": reason, "notes": [], "score": float(score), "max_score": float(max_score),
            "timestamp": None, "notebooks": {assignment: nb}, "worker": "test", "timings": {}}


def _graded(tmp_path, results) -> Path:
    out = tmp_path / "graded"
    for r in results:
        cli._save_result(out, r)
    return out


def _roster(tmp_path, text: str, name="roster.csv", encoding="utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def _rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # UTF-8, no byte order mark
    return list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))


def _run(capsys, *argv):
    rc = cli.main(["export", *map(str, argv)])
    return rc, capsys.readouterr().err


CANVAS_ROSTER = ("student_id,name,canvas_id,sis_user_id,sis_login_id,section,02-zscore (4711)\n"
                 "doejane_12345,\"Doe, Jane\",12345,S-001,jdoe,Sect A,\n"
                 "zoe,Zoë Ångström,23456,S-002,zangstrom,Sect B,\n"
                 "李雷,李雷,34567,S-003,lilei,Sect A,\n")


@pytest.fixture
def two_assignments(tmp_path):
    return _graded(tmp_path, [
        _result("doejane_12345", A, 12, 20, name="Jane Doe"),
        _result("zoe", A, 20, 20),
        _result("李雷", A, 7.5, 20),
        _result("doejane_12345", B, 9, 10),
        _result("zoe", B, 10, 10),
        _result("李雷", B, 3.25, 10),
    ])


# ----------------------------------------------------------------------------- canvas
def test_canvas_header_points_possible_row_and_scores(tmp_path, capsys, two_assignments):
    roster = _roster(tmp_path, CANVAS_ROSTER)
    out = tmp_path / "canvas.csv"
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--out", out, two_assignments)
    assert rc == 0, err
    assert _rows(out) == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "02-zscore (4711)",
         "03-batchnorm-math"],
        ["Points Possible", "", "", "", "", "20", "10"],
        ["Doe, Jane", "12345", "S-001", "jdoe", "Sect A", "12", "9"],
        ["Zoë Ångström", "23456", "S-002", "zangstrom", "Sect B", "20", "10"],
        ["李雷", "34567", "S-003", "lilei", "Sect A", "7.50", "3.25"],
    ]
    assert "Zoë Ångström".encode("utf-8") in out.read_bytes()
    assert "wrote" in err


def test_canvas_default_out_and_plain_assignment_names(tmp_path, capsys, two_assignments):
    roster = _roster(tmp_path, "student_id,name,canvas_id\ndoejane_12345,Jane,1\nzoe,Zoe,2\n"
                               "李雷,Li,3\n")
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--assignment", B, two_assignments)
    assert rc == 0, err
    assert _rows(two_assignments / "export-canvas.csv") == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "03-batchnorm-math"],
        ["Points Possible", "", "", "", "", "10"],
        ["Jane", "1", "", "", "", "9"],
        ["Zoe", "2", "", "", "", "10"],
        ["Li", "3", "", "", "", "3.25"],
    ]


def test_canvas_roster_student_without_submission(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 5, 20), _result("b", A, 6, 20)])
    roster = _roster(tmp_path, "student_id,name,canvas_id\na,Ann,1\nb,Bob,2\nc,Cy,3\n")
    out = tmp_path / "canvas.csv"
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--out", out, graded)
    assert rc == 1
    assert "in the roster but not graded: c (Cy)" in err
    assert "nothing written" in err and not out.exists()
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--out", out, "--allow-unmatched",
                   graded)
    assert rc == 0 and "warning: in the roster but not graded: c (Cy)" in err
    assert _rows(out)[2:] == [["Ann", "1", "", "", "", "5"], ["Bob", "2", "", "", "", "6"],
                              ["Cy", "3", "", "", "", ""]]


def test_graded_student_missing_from_roster_is_reported(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 5, 20), _result("ghost", A, 6, 20)])
    roster = _roster(tmp_path, "student_id,name,canvas_id\na,Ann,1\n")
    out = tmp_path / "canvas.csv"
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--out", out, graded)
    assert rc == 1 and not out.exists()
    assert "graded but not in the roster: ghost (02-zscore)" in err
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--out", out, "--allow-unmatched",
                   graded)
    assert rc == 0 and "ghost" in err
    assert [r[0] for r in _rows(out)] == ["Student", "Points Possible", "Ann"]


def test_partial_grades_are_reported(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 5, 20), _result("a", B, 4, 10),
                                _result("b", A, 6, 20)])
    roster = _roster(tmp_path, "student_id,name,canvas_id\na,Ann,1\nb,Bob,2\n")
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--out", tmp_path / "x.csv", graded)
    assert rc == 1 and "no grade for b (Bob) in 03-batchnorm-math" in err


# ----------------------------------------------------------------------------- moodle
def test_moodle_email_identifier_and_columns(tmp_path, capsys, two_assignments):
    roster = _roster(tmp_path, "student_id,email,idnumber\n"
                               "doejane_12345,jane@example.edu,1001\n"
                               "zoe,zoë@example.edu,1002\n"
                               "李雷,lilei@example.edu,1003\n")
    out = tmp_path / "moodle.csv"
    rc, err = _run(capsys, "--to", "moodle", "--roster", roster, "--out", out, two_assignments)
    assert rc == 0, err
    assert _rows(out) == [
        ["email", "02-zscore", "03-batchnorm-math"],
        ["jane@example.edu", "12", "9"],
        ["zoë@example.edu", "20", "10"],
        ["lilei@example.edu", "7.50", "3.25"],
    ]
    rc, err = _run(capsys, "--to", "moodle", "--roster", roster, "--out", out, "--moodle-id",
                   "idnumber", two_assignments)
    assert rc == 0, err
    assert [r[0] for r in _rows(out)] == ["idnumber", "1001", "1002", "1003"]


def test_moodle_username_roster_and_student_without_grade(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 5, 20)])
    roster = _roster(tmp_path, "Student_ID , Username \na,ann\nb,bob\n")  # case and spaces
    out = tmp_path / "moodle.csv"
    rc, err = _run(capsys, "--to", "moodle", "--roster", roster, "--out", out, "--allow-unmatched",
                   graded)
    assert rc == 0
    assert "in the roster but not graded: b (no row: an empty cell would clear a grade" in err
    assert _rows(out) == [["username", "02-zscore"], ["ann", "5"]]


def test_moodle_needs_an_identifier_for_every_row(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 5, 20)])
    roster = _roster(tmp_path, "student_id,email\na,ann@example.edu\nb,\n")
    rc, err = _run(capsys, "--to", "moodle", "--roster", roster, "--out", tmp_path / "m.csv", graded)
    assert rc == 2 and "row 3" in err and "no email" in err
    assert not (tmp_path / "m.csv").exists()


# ----------------------------------------------------------------------------- plain csv
def test_plain_csv_with_status_and_reason(tmp_path, capsys):
    graded = _graded(tmp_path, [
        _result("b", A, 0, 20, status="rejected", reason="02-zscore.ipynb was not submitted"),
        _result("a", A, 8, 20, status="failed", reason="the notebook ran over 600 s"),
        _result("a", B, 10, 10),
    ])
    out = tmp_path / "plain.csv"
    rc, err = _run(capsys, "--to", "csv", "--out", out, graded)
    assert rc == 0, err
    assert _rows(out) == [
        ["student_id", "assignment", "score", "max_score", "status", "reason"],
        ["a", "02-zscore", "8", "20", "failed", "the notebook ran over 600 s"],
        ["a", "03-batchnorm-math", "10", "10", "graded", ""],
        ["b", "02-zscore", "0", "20", "rejected", "02-zscore.ipynb was not submitted"],
    ]
    assert "warning: a / 02-zscore failed and is exported with 8/20" in err


def test_plain_csv_roster_reports_but_keeps_everyone(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 8, 20), _result("x", A, 3, 20)])
    roster = _roster(tmp_path, "student_id\na\n")
    out = tmp_path / "plain.csv"
    rc, err = _run(capsys, "--to", "csv", "--roster", roster, "--out", out, "--allow-unmatched", graded)
    assert rc == 0 and "graded but not in the roster: x" in err
    assert [r[0] for r in _rows(out)] == ["student_id", "a", "x"]


def test_grades_csv_is_read_when_there_are_no_records(tmp_path, capsys):
    graded = tmp_path / "graded"
    graded.mkdir()
    (graded / "grades.csv").write_text(
        "student_id,name,assignment,status,score,max_score,reason,02-zscore:test_a\n"
        "a,Ann,02-zscore,graded,12.50,20,,10\n", encoding="utf-8")
    rc, err = _run(capsys, "--to", "csv", "--out", tmp_path / "p.csv", graded)
    assert rc == 0, err
    assert _rows(tmp_path / "p.csv")[1] == ["a", "02-zscore", "12.50", "20", "graded", ""]


# ----------------------------------------------------------------------------- safety
def test_formula_injection_is_escaped(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 0, 20, status="rejected",
                                        reason="=HYPERLINK(\"http://evil\")")])
    roster = _roster(tmp_path, "student_id,name,canvas_id,section\n"
                               "a,\"=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",1,+Sect\n")
    out = tmp_path / "c.csv"
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--out", out, graded)
    assert rc == 0, err
    assert _rows(out)[2] == ["'=HYPERLINK(\"http://evil\",\"x\")", "1", "", "", "'+Sect", "0"]
    rc, err = _run(capsys, "--to", "csv", "--out", out, graded)
    assert _rows(out)[1][5] == "'=HYPERLINK(\"http://evil\")"
    roster = _roster(tmp_path, "student_id,username\na,@ann\n", name="m.csv")
    rc, err = _run(capsys, "--to", "moodle", "--roster", roster, "--out", out, graded)
    assert rc == 0 and _rows(out)[1] == ["'@ann", "0"]
    assert "Moodle will not match it" in err


def test_a_name_canvas_would_take_for_the_points_row_is_left_empty(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 5, 20), _result("b", A, 6, 20)])
    roster = _roster(tmp_path, "student_id,name,canvas_id\na,Ann,1\nb,Bob Points Possible,2\n")
    out = tmp_path / "c.csv"
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--out", out, graded)
    assert rc == 0, err
    assert _rows(out)[1:] == [["Points Possible", "", "", "", "", "20"],
                              ["Ann", "1", "", "", "", "5"], ["", "2", "", "", "", "6"]]
    assert "which Canvas would read as the points row" in err


@pytest.mark.parametrize("text, fmt, message", [
    ("student_id,name\na,Ann\n", "canvas", "no column canvas_id (or sis_user_id or sis_login_id)"),
    ("name,canvas_id\nAnn,1\n", "canvas", "no column student_id"),
    ("student_id,fullname\na,Ann\n", "moodle", "no column email, idnumber or username"),
    ("student_id,name,canvas_id\na,Ann,1\na,Ann again,2\n", "canvas",
     "the student_id 'a' is on rows 2 and 3"),
    ("student_id,name,canvas_id\na,Ann,1\nb,Bob,1\n", "canvas", "canvas_id '1' is on rows 2 and 3"),
    ("student_id,email\na,Ann@Example.edu\nb,ann@example.edu\n", "moodle", "is on rows 2 and 3"),
    ("student_id,name,canvas_id\na,Ann,u12\n", "canvas", "is not a Canvas user id"),
    ("student_id,name,canvas_id\na,Ann,\u0661\u0662\n", "canvas", "is not a Canvas user id"),
    ("student_id,name,canvas_id,sis_user_id\na,Ann,,\n", "canvas",
     "no canvas_id or sis_user_id: the LMS could not find this student"),
    ("student_id,name,canvas_id,canvas_id\na,Ann,1,1\n", "canvas", "the column 'canvas_id' twice"),
    ("student_id,name,canvas_id,A (1),A (2)\na,Ann,1,,\n", "canvas", "two Canvas ids"),
    ("student_id,name,canvas_id\n,Ann,1\n", "canvas", "row 2: no student_id"),
    ("student_id,name,canvas_id\na,Ann,1,extra\n", "canvas", "more cells than the header"),
    ("", "canvas", "is empty"),
])
def test_bad_roster_is_a_clear_error(tmp_path, capsys, text, fmt, message):
    graded = _graded(tmp_path, [_result("a", A, 5, 20)])
    roster = _roster(tmp_path, text)
    out = tmp_path / "x.csv"
    rc, err = _run(capsys, "--to", fmt, "--roster", roster, "--out", out, graded)
    assert rc == 2
    assert message in err
    assert err.startswith("normlab-grade export: error: the roster ")
    assert not out.exists()


def test_missing_column_error_names_the_expected_columns(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 5, 20)])
    roster = _roster(tmp_path, "id,name\n1,Ann\n")
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--out", tmp_path / "x.csv", graded)
    assert rc == 2
    assert ("expected columns: student_id, name, canvas_id, sis_user_id, sis_login_id, section"
            in err)
    assert "(it has: id, name)" in err


def test_roster_not_utf8_and_with_bom(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 5, 20)])
    latin1 = _roster(tmp_path, "student_id,name,canvas_id\na,Zoë,1\n", encoding="latin-1")
    rc, err = _run(capsys, "--to", "canvas", "--roster", latin1, "--out", tmp_path / "x.csv", graded)
    assert rc == 2 and "is not UTF-8 (byte 0xeb at offset" in err
    assert not (tmp_path / "x.csv").exists()
    bom = _roster(tmp_path, "\ufeffstudent_id,name,canvas_id\r\na,Zoë,1\r\n", name="bom.csv")
    rc, err = _run(capsys, "--to", "canvas", "--roster", bom, "--out", tmp_path / "x.csv", graded)
    assert rc == 0, err
    assert _rows(tmp_path / "x.csv")[2] == ["Zoë", "1", "", "", "", "5"]


def test_failing_export_leaves_no_file_and_keeps_the_old_one(tmp_path, capsys, monkeypatch):
    graded = _graded(tmp_path, [_result("a", A, 5, 20)])
    roster = _roster(tmp_path, "student_id,name,canvas_id\na,Ann,1\n")
    out = tmp_path / "exports" / "c.csv"
    out.parent.mkdir()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export.os, "replace", broken_replace)
    rc, err = _run(capsys, "--to", "canvas", "--roster", roster, "--out", out, graded)
    assert rc == 2 and "cannot write" in err and "No space left" in err
    assert list(out.parent.iterdir()) == []  # neither the file nor the temporary file
    monkeypatch.undo()
    out.write_text("previous export\n")
    bad = _roster(tmp_path, "student_id,name\na,Ann\n", name="bad.csv")
    rc, err = _run(capsys, "--to", "canvas", "--roster", bad, "--out", out, graded)
    assert rc == 2 and out.read_text() == "previous export\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["c.csv"]


def test_unreadable_record_is_an_error_not_a_missing_student(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 5, 20)])
    (graded / "results" / A / "b.json").write_text("{not json", encoding="utf-8")
    rc, err = _run(capsys, "--to", "csv", "--out", tmp_path / "p.csv", graded)
    assert rc == 2 and "b.json: unreadable result record" in err


def test_usage_errors(tmp_path, capsys):
    graded = _graded(tmp_path, [_result("a", A, 5, 20)])
    with pytest.raises(SystemExit) as e:
        cli.main(["export", "--to", "canvas", str(graded)])
    assert e.value.code == 2 and "--to canvas needs --roster" in capsys.readouterr().err
    rc, err = _run(capsys, "--to", "csv", "--out", tmp_path / "p.csv", tmp_path / "nothing")
    assert rc == 2 and "is not a folder" in err
    rc, err = _run(capsys, "--to", "csv", "--assignment", "99-none", "--out", tmp_path / "p.csv", graded)
    assert rc == 2 and "no grades for the assignment '99-none'" in err and "(it has: 02-zscore)" in err


def test_the_installed_command_dispatches_export(tmp_path):
    graded = _graded(tmp_path, [_result("a", A, 5, 20)])
    exe = Path(sys.executable).with_name("normlab-grade")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "normlab_grading.grade.cli"]
    proc = subprocess.run([*cmd, "export", "--to", "csv", "--out", "-", str(graded)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert proc.returncode == 0, proc.stderr
    assert list(csv.reader(io.StringIO(proc.stdout))) == [
        ["student_id", "assignment", "score", "max_score", "status", "reason"],
        ["a", "02-zscore", "5", "20", "graded", ""]]
