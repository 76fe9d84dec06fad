"""normlab-grade end to end against the fourth round of attacks: the new assignment
07-rmsnorm, nbgrader's collect layout that normlab-grade now writes (OUT/submitted/), and
formgrader on that layout. See docs/grading-security.md.

Two runs, each with honest controls beside the attackers:

- ``rms`` (07-rmsnorm, nbgrader layout with timestamp.txt): the instructor's solution; a
  different-yet-correct one (float32 kept in float32, eps as a numpy scalar of x's dtype, a
  backward by einsum; a false negative would be a defect too); a cheat that walks the call
  stack for the checker's expected values, returns an ndarray subclass whose ``==`` is
  always true, NaN for dx, and implements only the shape guard (it may keep the shape-check
  cell's 2 points, like the documented zscore_too_few stub, nothing else); and an honest
  student whose own timestamp.txt says year 26 (``0026-12-06``).
- ``formgrader`` (a copy of the course, ``--course``, then the README's formgrader
  configuration): mallory hands in zero stubs and a cell that patches the in-kernel judge
  and writes a file on the host. normlab-grade gives her 0, but formgrader's Manage
  Submissions page has an "autograde" button on every row, which runs nbgrader's own
  autograde (``NbGraderAPI.autograde``) on ``graded/submitted/<student>/<assignment>/``,
  the folder normlab-grade now writes: unsandboxed, on the instructor's machine.

Holes (before any fix): the honest notebook's feedback showed a RuntimeError ("...is the
course's reference implementation; it is not available while grading") from the ungraded
gradient-check cell; a year below 1000 was written unpadded (``26-12-06 ...``), which
nbgrader reads back as 2006-12-26, so formgrader showed a 20/20 submission as not
autograded with no score; one formgrader click ran mallory's code as the instructor (the
file appeared) and raised her gradebook score from 0 to 14 of 20.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

import normlab_grade_helpers as H
from test_grading_submitted_layout import _api  # nbgrader's API as formgrader builds it

pytestmark = pytest.mark.slow

A = "07-rmsnorm"
NB = f"{A}.ipynb"
STAMP = "2026-12-01 10:00:00.000000 UTC"

ALT_FORWARD = '''import numpy as np

def rmsnorm_forward(x, gamma, eps=None):
    k = gamma.ndim
    if x.shape[-k:] != gamma.shape:
        raise ValueError("the trailing shape of x must be gamma's shape")
    if eps is None:
        eps = np.finfo(x.dtype).eps  # a numpy scalar of x's dtype
    ms = np.mean(np.square(x), axis=tuple(range(-k, 0)), keepdims=True, dtype=x.dtype)
    rms = np.sqrt(ms + np.asarray(eps, dtype=x.dtype))
    x_hat = x / rms
    return gamma * x_hat, (x, x_hat, rms, gamma, eps)
'''
ALT_BACKWARD = '''def rmsnorm_backward(dout, cache):
    x, x_hat, rms, gamma, eps = cache
    k = gamma.ndim
    lead = dout.ndim - k
    dgamma = np.einsum("i...,i...->...", dout.reshape((-1,) + gamma.shape),
                       x_hat.reshape((-1,) + gamma.shape))
    g = dout * gamma
    gf = g.reshape(g.shape[:lead] + (-1,))
    m = np.einsum("...i,...i->...", gf, x_hat.reshape(gf.shape)) / gf.shape[-1]
    return (g - x_hat * m.reshape(m.shape + (1,) * k)) / rms, dgamma
'''
CHEAT_FORWARD = '''import numpy as np, sys

class EqAll(np.ndarray):
    def __eq__(self, other): return np.ones(np.shape(self), bool)
    def __ne__(self, other): return np.zeros(np.shape(self), bool)

def _stolen(names):
    f = sys._getframe(1)
    while f is not None:
        for v in list(f.f_locals.values()):
            if isinstance(v, dict) and "expected" in v and all(n in v["expected"] for n in names):
                return v["expected"]
        f = f.f_back
    return None

def rmsnorm_forward(x, gamma, eps=None):
    k = gamma.ndim
    if x.shape[x.ndim - k:] != gamma.shape:
        raise ValueError("shape")
    got = _stolen(("out", "x_hat", "rms"))
    if got is not None:
        return np.asarray(got["out"]), (x, np.asarray(got["x_hat"]), np.asarray(got["rms"]), gamma, eps)
    z = np.zeros(x.shape).view(EqAll)
    return z, (x, z, np.ones(x.shape[:x.ndim - k] + (1,) * k).view(EqAll), gamma, eps)
'''
CHEAT_BACKWARD = '''def rmsnorm_backward(dout, cache):
    got = _stolen(("dx",)) or _stolen(("dgamma",))
    if got is not None:
        return (np.asarray(got.get("dx", np.zeros(dout.shape))),
                np.asarray(got.get("dgamma", np.zeros(cache[3].shape))))
    return np.full(dout.shape, np.nan).view(EqAll), np.zeros(cache[3].shape).view(EqAll)
'''


def _honest() -> dict:
    return H.strip_markers(H.solution_nb(A))


def _with(forward: str, backward: str) -> dict:
    nb = _honest()
    H.set_solution(nb, "rmsnorm_forward", forward)
    return H.set_solution(nb, "rmsnorm_backward", backward)


def _put(subs: Path, student: str, nb: dict, stamp: str = STAMP) -> None:
    H.write_nb(subs / student / A / NB, nb)
    (subs / student / A / "timestamp.txt").write_text(stamp)


def _grade_course(course: Path, subs: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(H.BIN / "normlab-grade"), str(subs), "-a", A, "--out", "graded",
                           "--course", str(course), "--workers", "1", "--quiet"],
                          cwd=course, env=H.env(), capture_output=True, text=True, timeout=900)


def _course(tmp: Path) -> Path:
    course = tmp / "course"
    course.mkdir()
    shutil.copy(H.ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(H.ROOT / "solutions" / A, course / "solutions" / A)
    return course


@pytest.fixture(scope="module")
def rms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("round4-rms")
    subs = tmp / "subs"
    _put(subs, "alice_honest", _honest())
    _put(subs, "bob_alternate", _with(ALT_FORWARD, ALT_BACKWARD))
    _put(subs, "carol_cheat", _with(CHEAT_FORWARD, CHEAT_BACKWARD))
    _put(subs, "dave_year26", _honest(), stamp="0026-12-06 10:00:00")
    course = _course(tmp)
    proc = _grade_course(course, subs)
    with open(course / "nbgrader_config.py", "a") as fh:
        from test_formgrader_browser import FORMGRADER_CONFIG

        fh.write(FORMGRADER_CONFIG)
    return {"proc": proc, "out": course / "graded", "course": course,
            "results": H.results(course / "graded", A)}


def test_rmsnorm_correct_answers_keep_full_marks_and_cheats_get_only_the_shape_guard(rms):
    proc, recs = rms["proc"], rms["results"]
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for student in ("alice_honest", "bob_alternate", "dave_year26"):
        rec = recs[student]
        assert (rec["status"], rec["score"], rec["max_score"]) == ("graded", 20, 20), \
            (student, rec.get("reason"), H.cell_scores(rec))
    cheat = H.cell_scores(recs["carol_cheat"])
    # the shape guard alone earns its own cell (a stub that raises ValueError on a bad gamma
    # and returns finite zeros otherwise), nothing else: no expected value reaches the kernel
    assert cheat.pop("test_rms_shape_check") == 2
    assert set(cheat.values()) == {0}, cheat


def test_rmsnorm_honest_feedback_shows_no_error(rms):
    """The ungraded gradient-check cell imports normlab's numerical_gradient and rel_error,
    stubs in the jail: every honest student's feedback said their code called the
    course's reference."""
    out, rec = rms["out"], rms["results"]["alice_honest"]
    node = nbformat.read(str(out / rec["notebooks"][A]["autograded"]), as_version=4)
    errors = [(i, o.get("ename"), o.get("evalue", "")[:120]) for i, c in enumerate(node.cells)
              if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    html = (out / rec["notebooks"][A]["feedback"]).read_text()
    assert "not available while grading" not in html


def test_collected_timestamp_reads_back_as_the_gradebooks_time(rms):
    """A year below 1000 (a student's own timestamp.txt) was written as '26-12-06 ...',
    which nbgrader reads as 2006-12-26: formgrader called the submission not autograded."""
    out = rms["out"]
    stamp = (out / "submitted" / "dave_year26" / A / "timestamp.txt").read_text()
    assert stamp == "0026-12-06 10:00:00.000000 UTC"
    api = _api(rms["course"])
    for student, when in (("alice_honest", "2026-12-01T10:00:00"), ("dave_year26", "0026-12-06T10:00:00")):
        sub = api.get_submission(A, student)
        assert (sub["submitted"], sub["autograded"], sub["timestamp"], sub["score"]) == \
            (True, True, when, 20.0), (student, sub)


MALLORY = '''import numpy as np

def rmsnorm_forward(x, gamma, eps=None):
    return np.zeros(x.shape), (x, np.zeros(x.shape), np.ones(x.shape), gamma, eps)

def rmsnorm_backward(dout, cache):
    return np.zeros(dout.shape), np.zeros(cache[3].shape)

try:
    open({marker!r}, "w").write("student code ran on the instructor's machine")
except OSError:
    pass
import normlab_grading.check.checking as _C
from normlab_grading.check.compare import Verdict as _V
_C.verdict = lambda *a, **k: _V(True, None, "ok")
try:
    import normlab_grading.grade.judge as _J
    _J.judge = lambda *a, **k: _V(True, None, "ok")
except ImportError:
    pass
'''


@pytest.fixture(scope="module")
def formgrader(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("round4-formgrader")
    marker = tmp / "PWNED"
    subs = tmp / "subs"
    mallory = H.release_nb(A)
    mallory["cells"].insert(H.index_of(mallory, "test_rms_forward"),
                            H.code_cell(MALLORY.format(marker=str(marker))))
    _put(subs, "alice", _honest())
    _put(subs, "mallory", mallory)
    course = _course(tmp)
    proc = _grade_course(course, subs)
    with open(course / "nbgrader_config.py", "a") as fh:
        from test_formgrader_browser import FORMGRADER_CONFIG

        fh.write(FORMGRADER_CONFIG)
    return {"proc": proc, "course": course, "marker": marker, "subs": subs,
            "results": H.results(course / "graded", A)}


def _gradebook_scores(course: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "graded" / "gradebook.db")) as gb:
        return {s: gb.find_submission(A, s).score for s in ("alice", "mallory")}


def test_formgrader_autograde_button_runs_no_student_code_unsandboxed(formgrader, monkeypatch):
    """What formgrader's per-row autograde button does (NbGraderAPI.autograde) on the
    collect folder normlab-grade wrote must not run the student's code as the instructor,
    nor replace normlab-grade's score by one the student's kernel judged: the course's
    ``RefuseNormlabGradeCollect`` refuses, with the reason, and a plain rerun of
    normlab-grade restores the autograded folder nbgrader removed (only that submission)."""
    proc, recs, marker = formgrader["proc"], formgrader["results"], formgrader["marker"]
    course = formgrader["course"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {s: r["score"] for s, r in recs.items()} == {"alice": 20, "mallory": 0}
    assert not marker.exists()  # in the jail the host's path is not there
    before = _gradebook_scores(course)
    assert before == {"alice": 20.0, "mallory": 0.0}
    monkeypatch.chdir(course)
    api = _api(course)
    for student in ("alice", "mallory"):
        answer = api.autograde(A, student)
        assert answer["success"] is False, answer
        assert "was written by normlab-grade" in answer["log"], answer["log"][-2000:]
    assert not marker.exists(), marker.read_text()
    assert _gradebook_scores(course) == before  # nbgrader changed no score
    # nbgrader removed the autograded folders before the refusal; normlab-grade puts them back
    again = _grade_course(course, formgrader["subs"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "graded 2," in again.stderr or "graded 2" in again.stdout + again.stderr, again.stderr[-2000:]
    assert not marker.exists()
    api = _api(course)
    got = {s: api.get_submission(A, s) for s in ("alice", "mallory")}
    assert {s: (g["autograded"], g["score"]) for s, g in got.items()} == \
        {"alice": (True, 20.0), "mallory": (True, 0.0)}
