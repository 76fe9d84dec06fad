"""nbgrader's formgrader on the gradebook `normlab-grade` wrote, driven in headless Chromium.

A small course (02-zscore, its source in solutions/) is graded by `normlab-grade
submissions.zip --out graded`, from a zip outside the course holding three submissions: an
honest one and an untouched release in nbgrader's submitted/<student>/<assignment>/ layout
with timestamp.txt, and one that ignores eps as a Blackboard download (the time in its name).
The course's nbgrader_config.py then points formgrader at that output folder (gradebook
graded/gradebook.db, autograded notebooks in graded/autograded/<student>/<assignment>/, the
submissions as collected in graded/submitted/<student>/<assignment>/), and a Jupyter server
with nbgrader's formgrader extension is started on 127.0.0.1 with a token. In the browser, as
an instructor would:

- the manage-submissions page lists every submission, autograded, with the score of the
  gradebook and of the result records (and the totals the mistake implies);
- each student's page (Students, then the student) shows the assignment as submitted and
  autograded (a link, not "no submission"), with its score and, in nbgrader's answer, its
  submission time;
- a submission opens in the grading view, showing the autograded notebook with each test
  cell's automatic score and the failed test's message;
- a manual comment typed there is saved, and nbgrader's Gradebook API reads it back;
- a manual comment and score survive a forced regrade by normlab-grade.

Requests to other hosts are blocked. The grading view loads MathJax 2 from a CDN; offline,
its script fails with "MathJax is not defined" after the grades and comments are set up
(nbgrader's formgrade.js, configureScrolling: only the scroll-to-focused-cell behaviour is
lost). That one page error is expected; any other fails the test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest

import normlab_grade_helpers as H

pytestmark = pytest.mark.slow

A = "02-zscore"
# the points of 02-zscore's test cells are 5+3+3+4+2+3; ignoring eps fails test_zscore_eps (3)
# nbgrader's grading view without network (see the module's docstring)
OFFLINE_MATHJAX_ERROR = "MathJax is not defined"
EXPECTED_TOTALS = {"alice": 20.0, "bob": 17.0, "carol": 0.0}
# submission times as nbgrader's API gives them (UTC); bob's comes from a Blackboard file name
TIMESTAMPS = {"alice": "2026-03-01T10:00:00.123456", "bob": "2026-03-02T23:59:59",
              "carol": "2026-03-01T08:30:00"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Appended to the course's nbgrader_config.py once normlab-grade has written graded/.
FORMGRADER_CONFIG = """
# formgrader reads normlab-grade's output folder
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(c.CourseDirectory.root, "graded", "gradebook.db")
c.CourseDirectory.autograded_directory = os.path.join("graded", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("graded", "feedback")
c.CourseDirectory.submitted_directory = os.path.join("graded", "submitted")
"""


@pytest.fixture(scope="module")
def submissions_zip(tmp_path_factory) -> Path:
    """The students' submissions as a zip, outside the course (formgrader cannot read it)."""
    honest = H.strip_markers(H.solution_nb(A))
    no_eps = H.strip_markers(H.solution_nb(A))
    cell = no_eps["cells"][H.index_of(no_eps, "zscore")]
    assert "np.sqrt(var + eps)" in H.source(cell)
    cell["source"] = H.source(cell).replace("np.sqrt(var + eps)", "np.sqrt(var)")
    bob_time = TIMESTAMPS["bob"].replace("T", "-").replace(":", "-")
    path = tmp_path_factory.mktemp("inbox") / "submissions.zip"
    with zipfile.ZipFile(path, "w") as z:
        for student, nb in (("alice", honest), ("carol", H.release_nb(A))):
            z.writestr(f"submitted/{student}/{A}/{A}.ipynb", json.dumps(nb, indent=1))
            z.writestr(f"submitted/{student}/{A}/timestamp.txt", f"{TIMESTAMPS[student]} UTC")
        z.writestr(f"HW2_bob_attempt_{bob_time}_{A}.ipynb", json.dumps(no_eps, indent=1))
    return path


def _normlab_grade(course: Path, source: Path, *extra: str) -> None:
    proc = subprocess.run([str(H.BIN / "normlab-grade"), str(source), "-a", A, "--out", "graded",
                           "--course", str(course), "--workers", "2", "--quiet", *extra],
                          cwd=course, env=H.env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def course(tmp_path_factory, submissions_zip) -> Path:
    course = tmp_path_factory.mktemp("course")
    shutil.copy(H.ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(H.ROOT / "solutions" / A, course / "solutions" / A)
    _normlab_grade(course, submissions_zip)
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write(FORMGRADER_CONFIG)
    return course


def _records(course: Path) -> dict:
    return H.results(course / "graded", A)


def _gradebook(course: Path):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{course / 'graded' / 'gradebook.db'}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(course, tmp_path_factory):
    """A Jupyter server with nbgrader's formgrader, rooted at the course; yields its URL and
    token; stopped (and killed if it does not stop) at the end."""
    state = tmp_path_factory.mktemp("jupyter")
    port, token = _free_port(), secrets.token_hex(16)
    env = H.env()
    # the user's own Jupyter and nbgrader configuration must not apply
    env.update(JUPYTER_CONFIG_DIR=str(state / "config"), JUPYTER_RUNTIME_DIR=str(state / "runtime"),
               JUPYTER_DATA_DIR=str(state / "data"))
    args = [str(H.BIN / "jupyter-server"), "--ip=127.0.0.1", f"--port={port}",
            "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}",
            "--no-browser"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    log = open(state / "server.log", "w")
    proc = subprocess.Popen(args, cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"the Jupyter server exited:\n{(state / 'server.log').read_text()}"
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, (
                f"the Jupyter server did not answer:\n{(state / 'server.log').read_text()}")
            time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is not installed: run `make system-deps`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A logged-in page (the token in the first URL sets the server's login cookie) that
    reaches no other host; uncaught page errors are collected in page.errors_seen."""
    base, token = server
    context = browser.new_context()
    page = context.new_page()
    page.errors_seen = []
    page.on("pageerror", lambda e: page.errors_seen.append(str(e))
            if str(e) != OFFLINE_MATHJAX_ERROR else None)

    def route(r):
        if urllib.parse.urlsplit(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)
    page.goto(f"{base}/formgrader?token={token}", wait_until="load")
    yield page
    context.close()


def _submission_rows(page) -> dict:
    page.wait_for_function(
        "document.querySelectorAll('#main-table tr td.score').length >= 3"
        " && Array.from(document.querySelectorAll('#main-table td.score'))"
        ".every(td => td.innerText.includes('/'))")
    return page.evaluate("""
        Array.from(document.querySelectorAll('#main-table tr')).map(tr => ({
            id: tr.querySelector('.student-id').innerText.trim(),
            status: tr.querySelector('.status').innerText.trim(),
            score: tr.querySelector('.score').innerText.trim(),
        }))""")


def test_manage_submissions_lists_every_submission_with_its_scores(course, server, page):
    base, _ = server
    page.goto(f"{base}/formgrader/manage_submissions/{A}", wait_until="load")
    rows = _submission_rows(page)
    shown = {}
    for row in rows:
        score, max_score = (float(x) for x in row["score"].split("/"))
        shown[row["id"]] = (score, max_score)
        assert row["status"] == "graded", row
    records = {s: (r["score"], r["max_score"]) for s, r in _records(course).items()}
    with _gradebook(course) as gb:
        stored = {s.student.id: (s.score, s.max_score) for s in gb.assignment_submissions(A)}
    assert shown == stored == records == {s: (t, 20.0) for s, t in EXPECTED_TOTALS.items()}
    assert page.errors_seen == []


def _open_grading_view(page, base: str, student: str) -> str:
    """From the manage-submissions page: the student's name links to their notebooks, the
    notebook to the grading view. Returns the grading view's URL once its grades are set."""
    page.goto(f"{base}/formgrader/manage_submissions/{A}", wait_until="load")
    _submission_rows(page)
    page.locator("#main-table tr", has_text=student).locator("td.student-name a").click()
    page.wait_for_url(re.compile(rf"/formgrader/manage_students/{student}/{A}/?$"))
    page.locator("#main-table a", has_text=A).first.click()
    page.wait_for_url(re.compile(r"/formgrader/submissions/[0-9a-f]+/?$"))
    page.wait_for_function("document.querySelectorAll('input.score[placeholder]').length >= 6")
    return page.url


def _type_and_save(page, selector: str, value: str, api: str) -> None:
    """Type ``value`` into the grading view's field and leave it, as an instructor does;
    waits for formgrader's save (a PUT to /formgrader/api/<api>/<id>)."""
    field = page.locator(selector)
    field.wait_for()
    with page.expect_response(lambda r: f"/formgrader/api/{api}/" in r.url
                              and r.request.method == "PUT") as saved:
        field.fill(value)
        field.press("Tab")
    assert saved.value.ok, saved.value.status


def test_grading_view_and_manual_comment(course, server, page):
    base, _ = server
    submission_url = _open_grading_view(page, base, "bob")

    # each test cell's automatic score is the gradebook's and the record's
    record = _records(course)["bob"]
    with _gradebook(course) as gb:
        nb = gb.find_submission_notebook(A, A, "bob")
        auto = {g.name: g.auto_score for g in nb.grades}
    assert auto == H.cell_scores(record)
    assert auto["test_zscore_eps"] == 0.0 and sum(auto.values()) == EXPECTED_TOTALS["bob"]
    shown = page.evaluate("""Object.fromEntries(Array.from(document.querySelectorAll('input.score'))
        .map(i => [i.id, i.getAttribute('placeholder')]))""")
    assert {k: float(v) for k, v in shown.items()} == auto
    # the autograded notebook's output: the failed visible test's message, in its cell
    eps_cell = page.locator("div.code_cell", has=page.locator("input#test_zscore_eps"))
    (message,) = [c["message"] for nb in record["notebooks"].values() for c in nb["cells"]
                  if c["grade_id"] == "test_zscore_eps"]
    assert "ignores eps" in message
    assert "AssertionError" in eps_cell.inner_text() and message in eps_cell.inner_text()

    # a manual comment on the student's answer, saved when the box loses focus
    comment = f"Remember eps inside the square root ({secrets.token_hex(4)})."
    _type_and_save(page, "textarea#zscore-comment", comment, "comment")
    with _gradebook(course) as gb:
        stored = gb.find_comment("zscore", A, A, "bob")
        assert stored.manual_comment == comment
        # the scores stay as graded
        assert gb.find_submission(A, "bob").score == EXPECTED_TOTALS["bob"]
    # and the grading view shows it again when reopened
    page.goto(submission_url, wait_until="load")
    page.wait_for_function(
        "document.querySelector('textarea#zscore-comment').value !== ''")
    assert page.locator("textarea#zscore-comment").input_value() == comment
    assert page.errors_seen == []


def _student_page(page, base: str, student: str) -> tuple[dict, dict]:
    """Students, then ``student``: the assignment's row as shown (name, whether it links to
    the submission, score) and nbgrader's answer the page was built from."""
    page.goto(f"{base}/formgrader/manage_students", wait_until="load")
    link = page.locator(f"#main-table a[href$='/formgrader/manage_students/{student}']")
    link.wait_for()
    with page.expect_response(lambda r: r.url.split("?")[0].endswith(
            f"/formgrader/api/student_submissions/{student}")) as answer:
        link.click()
    page.wait_for_function("document.querySelectorAll('#main-table td.name').length >= 1"
                           " && document.querySelector('#main-table td.score').innerText.includes('/')")
    (row,) = page.evaluate("""
        Array.from(document.querySelectorAll('#main-table tr')).map(tr => ({
            name: tr.querySelector('td.name').innerText.trim(),
            link: (tr.querySelector('td.name a') || {}).pathname || null,
            score: tr.querySelector('td.score').innerText.trim(),
        }))""")
    (api,) = [s for s in answer.value.json() if s["name"] == A]
    return row, api


def test_students_page_shows_each_submission_submitted_with_its_score(course, server, page):
    """nbgrader decides "submitted" and "autograded" from graded/submitted/ (the folder and
    its timestamp.txt, which must match the gradebook's time): for zip and LMS input it
    exists only because normlab-grade writes it."""
    base, _ = server
    assert not (course / "submitted").exists()  # formgrader's default folder: not the source
    for student, total in EXPECTED_TOTALS.items():
        row, api = _student_page(page, base, student)
        assert row == {"name": A, "link": f"/formgrader/manage_students/{student}/{A}",
                       "score": f"{total:g} / 20"}, (student, row)
        assert (api["submitted"], api["autograded"], api["timestamp"], api["score"]) == \
            (True, True, TIMESTAMPS[student], total), (student, api)
        # the link opens the student's notebooks of the assignment
        page.locator("#main-table td.name a").click()
        page.wait_for_url(re.compile(rf"/formgrader/manage_students/{student}/{A}/?$"))
        page.locator("#main-table a", has_text=A).first.wait_for()
    assert page.errors_seen == []


def test_forced_regrade_keeps_the_formgraders_work(course, server, page, submissions_zip):
    """Runs last (it changes alice's total). An instructor's comment and manual score, given
    in formgrader, survive `normlab-grade --force` (as they survive `nbgrader autograde`:
    the automatic scores are rewritten, the manual ones kept), and nbgrader's rule that a
    manual score replaces the automatic one shows in the totals."""
    base, _ = server
    _open_grading_view(page, base, "alice")
    comment = f"Clear and correct ({secrets.token_hex(4)})."
    _type_and_save(page, "textarea#zscore-comment", comment, "comment")
    _type_and_save(page, "input#test_zscore_basic", "4", "grade")  # auto score: 5 of 5

    def stored():
        with _gradebook(course) as gb:
            grade = gb.find_grade("test_zscore_basic", A, A, "alice")
            return (gb.find_comment("zscore", A, A, "alice").manual_comment,
                    grade.auto_score, grade.manual_score, gb.find_submission(A, "alice").score)

    expected = (comment, 5.0, 4.0, EXPECTED_TOTALS["alice"] - 5.0 + 4.0)
    assert stored() == expected
    _normlab_grade(course, submissions_zip, "--force")
    assert stored() == expected
    assert _records(course)["alice"]["score"] == EXPECTED_TOTALS["alice"]  # automatic scores
    page.goto(f"{base}/formgrader/manage_submissions/{A}", wait_until="load")
    rows = {r["id"]: r["score"] for r in _submission_rows(page)}
    assert rows["alice"].replace(" ", "") == "19/20"
    row, api = _student_page(page, base, "alice")  # still submitted, with the manual score
    assert (row["link"], row["score"], api["autograded"], api["timestamp"]) == \
        (f"/formgrader/manage_students/alice/{A}", "19 / 20", True, TIMESTAMPS["alice"])
    assert page.errors_seen == []
