"""normlab-grade end to end against the third round of attacks (security review of the
kept files, the coordinator and the ``--course`` mode). See docs/grading-security.md.

Three runs, each with honest controls beside the attackers:

- ``kept``: 02-zscore, forked-grader path. Attackers hand in the instructor's solution (so
  they should keep 20/20) plus a file meant to break the coordinator or the instructor:
  a folder named like the notebook (written by the notebook, or shipped beside a renamed
  notebook), a 250-byte file name (written, shipped), a written report.html / picture.svg
  (formgrader serves kept files as text/html in the instructor's origin), and a markdown
  cell with ``<img onerror=...>``; and a notebook that puts a link to a host unix socket in
  place of its kernel's stdin socket. Before the fixes the coordinator crashed on the first
  of them (no grades.csv, no later result).
- ``dask``: the shipped folder and long name on the Dask path (``--cluster-min 1``).
- ``skip``: the plain nbgrader course of tests/grading/nbgrader_course with ``--course``: a
  blank notebook whose test cells carry the ``skip-execution`` tag got full marks
  (nbclient skips the cells, nbgrader counts them as passed: ``nbgrader autograde`` does the
  same; normlab-grade deliberately does better).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import nbformat
import pytest

import normlab_grade_helpers as H

pytestmark = pytest.mark.slow

A = "02-zscore"
NB = f"{A}.ipynb"
LONG = "A" * 250
ONERROR = "<img src=x onerror=\"fetch('/api/contents/PWNED.txt',{method:'PUT'})\">"
MAKE_DIR = f"import os\nos.makedirs({NB!r}, exist_ok=True)\nopen({NB + '/x.txt'!r}, 'w').write('x')\n"
WRITE_LONG = f"open({LONG!r}, 'w').write('x')\n"
WRITE_ACTIVE = ("open('report.html', 'w').write('<script>alert(1)</script>')\n"
                "open('picture.svg', 'w').write('<svg xmlns=\"http://www.w3.org/2000/svg\" "
                "onload=\"alert(1)\"/>')\nopen('notes.txt', 'w').write('plain')\n")


def _honest() -> dict:
    return H.strip_markers(H.solution_nb(A))


def _with_cell(nb: dict, src: str) -> dict:
    nb["cells"].insert(H.index_of(nb, "test_zscore_basic"), H.code_cell(src))
    return nb


def _with_markdown(nb: dict, text: str) -> dict:
    nb["cells"].insert(1, {"cell_type": "markdown", "id": "student-notes", "metadata": {},
                           "source": text})
    return nb


def _write(folder: Path, files: dict) -> None:
    for rel, data in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, dict):
            H.write_nb(p, data)
        else:
            p.write_bytes(data)


KEPT = {
    "alice_honest": {NB: _honest()},
    "dir_written": {NB: _with_cell(_honest(), MAKE_DIR)},
    "dir_shipped": {f"Copy of {NB}": _honest(), f"{NB}/x.txt": b"x"},
    "long_written": {NB: _with_cell(_honest(), WRITE_LONG)},
    "long_shipped": {NB: _honest(), LONG: b"x"},
    "active_written": {NB: _with_markdown(_with_cell(_honest(), WRITE_ACTIVE),
                                          f"My notes **here**. {ONERROR}")},
    "zed_honest": {NB: _honest()},
}
DASK = {s: KEPT[s] for s in ("alice_honest", "dir_shipped", "long_shipped")}


def _grade(tmp: Path, plan: dict, *args):
    for student, files in plan.items():
        _write(tmp / "subs" / student, files)
    out = tmp / "out"
    proc = H.normlab_grade(tmp / "subs", "--assignment", A, "--out", out, "--workers", 2,
                           "--timeout", 300, *args)
    return {"proc": proc, "out": out, "results": H.results(out, A)}


def _socket_link_cell(host_socket: str) -> str:
    """Close the kernel's stdin socket (zmq removes its file), put a link to a host unix
    socket in its place, wait for the grader's zmq client to reconnect through it."""
    return ("import json, os, time\n"
            "cf = json.load(open('/grading/init/kernel.json'))\n"
            "p = f\"{cf['ip']}-{cf['stdin_port']}\"\n"
            "get_ipython().kernel.stdin_socket.close(linger=0)\n"
            "time.sleep(0.3)\n"
            "if os.path.lexists(p):\n    os.unlink(p)\n"
            f"os.symlink({host_socket!r}, p)\n"
            "time.sleep(5)\n")


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """The kept-files run, with one more attacker: a link to a host socket (hole 5), whose
    listener counts the connections the grader makes to it."""
    import socket
    import threading

    tmp = tmp_path_factory.mktemp("round3-kept")
    host_socket = str(tmp / "host.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(host_socket)
    listener.listen(64)
    listener.settimeout(0.5)
    accepted, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    plan = dict(KEPT, socket_link={NB: _with_cell(_honest(), _socket_link_cell(host_socket))})
    try:
        run = _grade(tmp, plan)
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    run.update(plan=plan, host_connections=len(accepted))
    return run


@pytest.fixture(scope="module")
def dask(tmp_path_factory):
    return _grade(tmp_path_factory.mktemp("round3-dask"), DASK, "--cluster-min", 1)


def _check_everybody_graded(run, plan):
    proc = run["proc"]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run["out"] / "grades.csv").is_file() and (run["out"] / "summary.md").is_file()
    recs = run["results"]
    assert sorted(recs) == sorted(plan)
    for student, rec in recs.items():
        assert (rec["status"], rec["score"], rec["max_score"]) == ("graded", 20, 20), \
            (student, rec["status"], rec.get("reason"), H.cell_scores(rec))
        ag = run["out"] / rec["notebooks"][A]["autograded"]
        assert ag.is_file(), student  # the autograded notebook, not a folder in its place
        assert nbformat.read(str(ag), as_version=4).cells


def test_kept_files_cannot_stop_the_run(kept):
    """Holes 1 and 2: a kept folder named like the notebook, a 250-byte kept name."""
    _check_everybody_graded(kept, kept["plan"])
    recs, out = kept["results"], kept["out"]
    for student in ("dir_written", "dir_shipped"):
        notes = " ".join(recs[student]["notes"])
        assert f"'{NB}/x.txt' not kept: it takes the place of the grader's '{NB}'" in notes, notes
        assert (out / "autograded" / student / A / NB).is_file()
    for student in ("long_written", "long_shipped"):
        notes = " ".join(recs[student]["notes"])
        assert "a name longer than 200 bytes" in notes, notes  # not taken, or not kept
        assert not (out / "autograded" / student / A / LONG).exists()
    folder = out / "autograded"
    assert not [p for p in folder.rglob("*") if p.name.startswith(".")], "temporary files left"


def test_active_content_is_not_served_as_a_page(kept):
    """Hole 4b: report.html and picture.svg written by the notebook are kept as text."""
    rec, out = kept["results"]["active_written"], kept["out"]
    folder = out / "autograded" / "active_written" / A
    assert not (folder / "report.html").exists() and not (folder / "picture.svg").exists()
    assert (folder / "report.html.txt").read_text() == "<script>alert(1)</script>"
    assert (folder / "picture.svg.txt").read_bytes().startswith(b"<svg")
    assert (folder / "notes.txt").read_text() == "plain"  # inert files are kept as they are
    assert sorted(rec["files"]) == ["notes.txt", "picture.svg.txt", "report.html.txt"]
    notes = " ".join(rec["notes"])
    assert "'report.html' kept as 'report.html.txt': active content" in notes, notes


def test_student_markdown_is_inert_in_the_autograded_notebook(kept):
    """Hole 4a: formgrader renders the autograded notebook's markdown raw in the
    instructor's origin; the student's cell keeps its text, loses the event handler."""
    recs, out = kept["results"], kept["out"]
    node = nbformat.read(str(out / recs["active_written"]["notebooks"][A]["autograded"]), as_version=4)
    md = [c for c in node.cells if c.cell_type == "markdown" and "My notes" in c.source]
    assert len(md) == 1 and "onerror" not in md[0].source.lower(), md
    assert "<strong>here</strong>" in md[0].source or "**here**" in md[0].source
    # the instructor's markdown of an honest notebook is left exactly as the release has it
    honest = nbformat.read(str(out / recs["alice_honest"]["notebooks"][A]["autograded"]), as_version=4)
    given = [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
             for c in H.release_nb(A)["cells"] if c["cell_type"] == "markdown"]
    assert [c.source for c in honest.cells if c.cell_type == "markdown"] == given


def test_a_kernel_socket_replaced_by_a_link_is_not_followed(kept):
    """Hole 5: the grader's zmq client reconnected through a link put in place of the
    kernel's stdin socket, to a host unix socket (35 connections in the attack's run)."""
    assert kept["results"]["socket_link"]["score"] == 20  # the kernel's other sockets still work
    assert kept["host_connections"] == 0


def test_the_dask_path_survives_the_same_files(dask):
    _check_everybody_graded(dask, DASK)
    notes = " ".join(dask["results"]["dir_shipped"]["notes"])
    assert "it takes the place of the grader's" in notes, notes


@pytest.fixture(scope="module")
def skip(tmp_path_factory):
    import test_nbgrader_parity as P

    base = tmp_path_factory.mktemp("round3-skip")
    course = base / "course"
    course.mkdir()
    shutil.copy(P.COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(P.COURSE / "source", course / "source")
    P._nbgrader(course, "generate_assignment", "ps1", "--force")
    blank = P._release(course, "ps1", "problem1")
    honest = P._answers(blank, {"squares": P.SQUARES, "mean_of": P.MEAN, "write_report": P.REPORT})
    skipped = copy.deepcopy(blank)
    for c in skipped["cells"]:
        if H.is_test(c):
            c["metadata"]["tags"] = ["skip-execution"]
    skipped_honest = copy.deepcopy(honest)  # an honest student's tag changes nothing
    for c in skipped_honest["cells"]:
        if H.is_test(c):
            c["metadata"]["tags"] = ["skip-execution"]
    plan = {"blank": blank, "honest": honest, "skip_blank": skipped, "skip_honest": skipped_honest}
    for student, nb in plan.items():
        H.write_nb(base / "submitted" / student / "ps1" / "problem1.ipynb", nb)
        (base / "submitted" / student / "ps1" / "timestamp.txt").write_text(P.STAMP)
    out = base / "graded"
    proc = H.normlab_grade(base / "submitted", "--course", course, "--out", out, "--workers", 2,
                           "--quiet", timeout=1200)
    return {"proc": proc, "results": H.results(out, "ps1")}


def test_skip_execution_tags_do_not_skip_test_cells(skip):
    """Hole 3: a blank notebook with skip-execution test cells gets 0, not nbgrader's 5/5."""
    assert skip["proc"].returncode == 0, skip["proc"].stderr[-3000:]
    got = {s: (r["status"], r["score"], r["max_score"]) for s, r in skip["results"].items()}
    assert got == {"blank": ("graded", 0, 5), "honest": ("graded", 5, 5),
                   "skip_blank": ("graded", 0, 5), "skip_honest": ("graded", 5, 5)}, got
    notes = json.dumps(skip["results"]["skip_blank"]["notebooks"])
    assert "a tag that skips execution (skip-execution) was removed" in notes, notes
