"""normlab-grade end to end against intake attacks (issue 8: classes 5, 6, 9, 12, 13, 16).

ONE run on an nbgrader-layout folder (``submitted/<student>/02-zscore/...``) starting from
a FRESH gradebook (none exists: normlab-grade runs nbgrader's generate_assignment, which
changes the process directory, while the Dask workers start). Honest students get the
instructor's solution with the markers stripped; attackers hand in the student release
(0 points) in places that used to be filed under the honest students.

02-zscore: 20 points.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest

import normlab_grade_helpers as H

pytestmark = pytest.mark.slow

A = "02-zscore"
NB = f"{A}.ipynb"
ESC_NAME = "\x1b[2J\x1b]0;owned\x07evil.txt"
MD_NAME = "**bold** | [link](javascript:x) <img src=x onerror=alert(1)> # `code`.txt"


SHADOWS = {
    # a checker that prints the "recorded" lines and records nothing
    "normlab_grading/__init__.py": (
        "def check(check_id, fn, hidden=False, **kw):\n"
        "    print(f\"{check_id} ({'hidden' if hidden else 'visible'}): recorded for grading\")\n"),
    "normlab_grading/check/__init__.py": "from normlab_grading import check\n",
    # a numpy whose comparisons always agree
    "numpy.py": "allclose = lambda *a, **k: True\narray_equal = allclose\nndarray = object\n",
}


def _honest():
    return H.strip_markers(H.solution_nb(A))


def _zero():
    return H.release_nb(A)


def _hostile_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x" * 300 + ".ipynb", json.dumps(_zero()))
        zf.writestr("secret.ipynb", json.dumps(_zero()))
        zf.writestr("crc.txt", b"abcdefgh" * 10)
        zf.writestr(ESC_NAME, b"x")
        zf.writestr(zipfile.ZipInfo("bomb.ipynb"), b"0" * (30 * 2**20),
                    compress_type=zipfile.ZIP_DEFLATED)
    data = H.zip_flag_encrypted(buf.getvalue(), "secret.ipynb")
    return H.zip_bad_crc(data, "crc.txt")


def _truncated_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(NB, json.dumps(_honest()))
    return buf.getvalue()[: len(buf.getvalue()) // 2]


def build(sub: Path) -> None:
    s = sub / "submitted"
    # honest students, the victims
    H.write_nb(s / "bob" / A / NB, _honest())
    H.write_nb(s / "carol" / A / NB, _honest())
    (s / "carol" / A / "timestamp.txt").write_text("2025-03-01 10:00:00.000000 UTC\n")
    # alice files copies under bob's and carol's names inside her own submission
    alice = s / "alice" / A
    H.write_nb(alice / NB, _zero())
    H.write_nb(alice / "submitted" / "bob" / A / NB, _zero())
    H.write_nb(alice / f"carol+{A}+2099-01-01 00:00:00.000000 UTC" / NB, _zero())
    H.write_nb(alice / "-bob" / NB, _zero())
    H.write_nb(alice / "bob" / NB, _zero())
    (alice / f"carol+{A}+2099-01-01 00:00:00.000000 UTC" / "timestamp.txt").write_text(
        "2000-01-01 00:00:00.000000 UTC")
    # a top-level folder whose name gives bob's id: a collision, reported
    H.write_nb(s / "-bob" / A / NB, _zero())
    # empty and notebook-less submissions
    (s / "dave" / A).mkdir(parents=True)
    (s / "erin" / A).mkdir(parents=True)
    (s / "erin" / A / "notes.txt").write_text("I could not finish")
    (s / "frank").mkdir(parents=True)
    # times: duplicated and unparseable lines, an extra nested timestamp.txt
    H.write_nb(s / "gina" / A / NB, _honest())
    (s / "gina" / A / "timestamp.txt").write_text(
        "2025-03-02 08:00:00.000000 UTC\n2025-03-05 12:00:00.000000 UTC\nnot-a-date\n")
    (s / "gina" / A / "extra").mkdir()
    (s / "gina" / A / "extra" / "timestamp.txt").write_text("garbage")
    H.write_nb(s / "hank" / A / NB, _honest())
    (s / "hank" / A / "timestamp.txt").write_text("sometime on Tuesday")
    # zips that used to stop the whole run
    H.write_nb(s / "ivan" / A / NB, _honest())
    (s / "ivan" / A / "extras.zip").write_bytes(_hostile_zip())
    (s / "judy" / A).mkdir(parents=True)
    (s / "judy" / A / "work.zip").write_bytes(_truncated_zip())
    # markdown in a file name (reaches the summary's notes)
    H.write_nb(s / "kim" / A / NB, _honest())
    (s / "kim" / A / MD_NAME).write_text("x")
    # shipped modules that shadow the checker and numpy: they reach the student's own kernel
    # only (the judge is outside), so they cannot raise a score
    mallory = s / "mallory" / A
    H.write_nb(mallory / NB, _zero())
    for rel, text in SHADOWS.items():
        (mallory / rel).parent.mkdir(parents=True, exist_ok=True)
        (mallory / rel).write_text(text)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("intake-attacks")
    build(tmp / "subs")
    out = tmp / "out"
    assert not (out / "gradebook.db").exists()  # a fresh gradebook: the class-9 bug
    proc = H.normlab_grade(tmp / "subs", "--out", out, "--workers", 2, "--timeout", 120)
    return {"proc": proc, "out": out, "results": H.results(out, A),
            "rejected": json.loads((out / "rejected.json").read_text()),
            "summary_md": (out / "summary.md").read_text(),
            "summary": json.loads((out / "summary.json").read_text())}


def _gradebook(out: Path) -> dict:
    con = sqlite3.connect(f"file:{out / 'gradebook.db'}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "select st.id, s.timestamp, sum(coalesce(g.auto_score, 0)) from submitted_assignment s "
            "join student st on s.student_id = st.id join assignment a on s.assignment_id = a.id "
            "join submitted_notebook n on n.assignment_id = s.id join grade g on g.notebook_id = n.id "
            "where a.name = ? group by st.id, s.timestamp", (A,)).fetchall()
    finally:
        con.close()
    return {sid: (ts, score) for sid, ts, score in rows}


COLLIDER = None  # '-bob' is graded under bob_<6 hex>, found in the results


# student -> (status, score, reason fragment)
EXPECTED = {
    "bob": ("graded", 20, None), "carol": ("graded", 20, None), "alice": ("graded", 0, None),
    "dave": ("rejected", 0, "was not submitted"), "erin": ("rejected", 0, "was not submitted"),
    "frank": ("rejected", 0, "was not submitted"), "gina": ("graded", 20, None),
    "hank": ("graded", 20, None), "ivan": ("graded", 20, None),
    "judy": ("rejected", 0, "was not submitted"), "kim": ("graded", 20, None),
    "mallory": ("graded", 0, None),
}


def test_everybody_is_graded_from_a_fresh_gradebook(run):
    """Class 9 (no attacker): nbgrader's temporary folder never becomes the workers' cwd."""
    assert run["proc"].returncode == 1, run["proc"].stderr[-3000:]  # 1: rejections exist
    recs = run["results"]
    others = sorted(set(recs) - set(EXPECTED))
    assert len(others) == 1 and others[0].startswith("bob_"), sorted(recs)
    for student, (status, score, reason) in EXPECTED.items():
        rec = recs[student]
        got = (rec["status"], rec["score"], rec["max_score"])
        assert got == (status, score, 20), (student, got, rec.get("reason"), H.cell_scores(rec))
        if reason:
            assert reason in rec["reason"], (student, rec["reason"])
        else:
            assert rec["reason"] is None, (student, rec["reason"])
    assert "FileNotFoundError" not in json.dumps(recs)


def test_nobody_replaces_another_students_submission(run):
    """Class 5: folders inside alice's submission are alice's, whatever their names."""
    recs = run["results"]
    assert recs["bob"]["score"] == recs["carol"]["score"] == 20
    assert recs["carol"]["timestamp"].startswith("2025-03-01 10:00")  # not alice's 2099 or 2000
    assert recs["alice"]["score"] == 0
    notes = " ".join(recs["alice"]["notes"])
    top = f"submitted/alice/{A}/{NB}"
    for fake in (f"submitted/bob/{A}/{NB}", f"-bob/{NB}", f"bob/{NB}",
                 f"carol+{A}+2099-01-01 00:00:00.000000 UTC/{NB}"):
        assert f"alice/{A}/{fake} replaced by the newer" in notes, fake
    assert f"replaced by the newer {top}" in notes  # the copy at the top is graded
    assert "2099-01-01 00:00:00.000000 UTC/timestamp.txt ignored" in notes
    collider = next(s for s in recs if s.startswith("bob_"))
    assert recs[collider]["display_name"] == "-bob" and recs[collider]["score"] == 0
    assert any("collision" in n for n in recs[collider]["notes"])
    assert "student id collision" in run["summary_md"]
    assert "student id collision" in run["proc"].stderr


def test_empty_and_notebookless_submissions_are_rows(run):
    """Class 16: every student of the input is in grades.csv, the summary, the gradebook."""
    import csv

    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO(
        (run["out"] / "grades.csv").read_text()))}
    problems = {p["student"] for p in run["summary"]["assignments"][A]["problems"]}
    gb = _gradebook(run["out"])
    for s in ("dave", "erin", "frank", "judy"):
        assert (rows[s]["status"], rows[s]["score"]) == ("rejected", "0"), rows[s]
        assert "was not submitted" in rows[s]["reason"]
        assert s in problems
        assert gb[s][1] == 0
    assert set(gb) == set(run["results"])


def test_timestamps_are_never_erased(run):
    """Class 12: the latest parseable time counts; an unreadable-only one is reported."""
    recs, gb = run["results"], _gradebook(run["out"])
    assert recs["gina"]["timestamp"].startswith("2025-03-05 12:00")
    assert str(gb["gina"][0]).startswith("2025-03-05 12:00:00")
    notes = " ".join(recs["gina"]["notes"])
    assert "not-a-date" in notes and "extra/timestamp.txt ignored" in notes
    assert recs["hank"]["timestamp"] is None
    assert "lateness was NOT assessed" in recs["hank"]["timestamp_problem"]
    assert "sometime on Tuesday" in recs["hank"]["timestamp_problem"]
    assert "hank" in run["summary"]["assignments"][A]["timestamp_problems"]
    assert "lateness NOT assessed" in run["summary_md"]
    assert "lateness not assessed: hank" in run["proc"].stderr


def test_hostile_zips_are_refused_member_by_member(run):
    """Class 6: long names, encryption, a bomb, a bad CRC, a truncated zip."""
    by_student = {}
    for r in run["rejected"]:
        by_student.setdefault(r["student"], []).append(r["reason"])
    ivan = " | ".join(by_student["ivan"])
    assert "longer than 255 bytes" in ivan and "encrypted" in ivan
    assert "zip bomb" in ivan and "CRC" in ivan and "control characters" in ivan
    assert any("not a readable zip" in r for r in by_student["judy"])
    assert run["results"]["ivan"]["score"] == 20


def test_shipped_shadowing_modules_gain_nothing(run):
    """Files a student ships are in the jail (as under nbgrader), beside the notebook: a
    checker or numpy of one's own changes one's own kernel, never the judging."""
    recs = run["results"]
    assert recs["mallory"]["score"] == 0 and recs["bob"]["score"] == 20
    assert any("3 file(s) shipped" in n for n in recs["mallory"]["notes"])
    text = H.autograded_text(run["out"], recs["mallory"])
    assert "ok:" not in text
    kept = run["out"] / "autograded" / "mallory" / A
    for rel, content in SHADOWS.items():  # kept in autograded/ as nbgrader keeps them
        assert (kept / rel).read_text() == content


def test_terminal_and_summary_are_escaped(run):
    """Class 13: no raw escape sequence on the terminal, no live markdown/HTML in summary.md."""
    err = run["proc"].stderr
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b[2J\\x1b]0;owned\\x07evil.txt" in err
    md = run["summary_md"]
    assert "\x1b" not in md and "\x07" not in md
    assert not re.search(r"(?<!\\)<img", md) and "\\<img src=x onerror=alert\\(1\\)\\>" in md
    assert "**bold**" not in md and "\\*\\*bold\\*\\* \\| \\[link\\]" in md
    assert "\\`code\\`" in md
