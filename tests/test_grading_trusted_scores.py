"""A checked test cell's score is a function of the trusted verdicts only, and the jail holds
no answer: real attacking submissions graded end to end by normlab-grade, next to an honest
one that keeps full marks (02-zscore, 20 points, nothing implemented in the attacks)."""

from __future__ import annotations

import pytest

import normlab_grade_helpers as H

pytestmark = pytest.mark.slow
A = "02-zscore"
NOTHING = "def zscore(X, ddof=0, eps=0.0):\n    raise NotImplementedError()\n"

HOOK = (
    "from IPython import get_ipython\n"
    "ip = get_ipython()\n"
    "def fake(result):\n"
    "    ip.displayhook({value!r})\n"
    "ip.events.register('post_run_cell', fake)\n"
)
IOPUB = (
    "from IPython import get_ipython\n"
    "k = get_ipython().kernel\n"
    "def fake(result):\n"
    "    k.session.send(k.iopub_socket, 'execute_result', {'execution_count': 1, 'metadata': {},\n"
    "                   'data': {'text/plain': '20'}}, parent=k.get_parent())\n"
    "get_ipython().events.register('post_run_cell', fake)\n"
)
# the old attack: the answer models of the assignment modules, called with the tripwire off
ANSWERS = (
    "import sys\n"
    "def zscore(X, ddof=0, eps=0.0):\n"
    "    prof = sys.getprofile(); sys.setprofile(None)\n"
    "    try:\n"
    "        from normlab.grading.mistakes import standardize\n"
    "        return standardize(X, 0, ddof=ddof, eps=eps)\n"
    "    finally:\n"
    "        sys.setprofile(prof)\n"
)
SCRIPT_MD = "<script>alert(1)</script><img src=x onerror=alert(2)> [x](javascript:alert(3))"


def _attack(code, markdown=None):
    nb = H.set_solution(H.strip_markers(H.solution_nb(A)), "zscore", code)
    if markdown:
        nb["cells"].insert(0, {"cell_type": "markdown", "id": "evil-md", "metadata": {},
                               "source": markdown})
    return nb


SUBMISSIONS = {
    "honest": lambda: H.strip_markers(H.solution_nb(A)),
    "hook_number": lambda: _attack(HOOK.format(value=5) + NOTHING),
    "hook_text": lambda: _attack(HOOK.format(value="full marks") + NOTHING),
    "iopub": lambda: _attack(IOPUB + NOTHING),
    "answers": lambda: _attack(ANSWERS),
    "script_markdown": lambda: _attack(NOTHING, SCRIPT_MD),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trusted")
    db = H.prepared_gradebook(tmp / "gb", [A])
    subs, out = tmp / "subs", tmp / "out"
    for name, make in SUBMISSIONS.items():
        H.write_nb(subs / name / A / f"{A}.ipynb", make())
    H.copy_gradebook(db, out)
    proc = H.normlab_grade(subs, "--assignment", A, "--out", out, "--workers", 2, "--timeout", 300)
    return {"proc": proc, "out": out, "results": H.results(out, A)}


def test_honest_submission_keeps_full_marks(run):
    rec = run["results"]["honest"]
    assert (rec["status"], rec["score"], rec["max_score"]) == ("graded", 20, 20), run["proc"].stderr[-2000:]


@pytest.mark.parametrize("name", ["hook_number", "hook_text", "iopub", "answers", "script_markdown"])
def test_attack_scores_nothing(run, name):
    rec = run["results"][name]
    assert rec["status"] == "graded", rec
    assert rec["score"] == 0, (name, H.cell_scores(rec))


def test_answers_are_not_in_the_jail(run):
    text = H.autograded_text(run["out"], run["results"]["answers"])
    assert "No module named 'normlab.grading'" in text


def test_feedback_has_no_script_from_markdown(run):
    rec = run["results"]["script_markdown"]
    html = "".join((run["out"] / nb["feedback"]).read_text() for nb in rec["notebooks"].values()
                   if nb.get("feedback"))
    assert html, rec
    body = html.split("<body", 1)[-1]
    assert "<script>alert" not in body and "onerror" not in body
    assert 'href="javascript:' not in body and "href='javascript:" not in body
    assert '<h1 id="Assignment-2' in body  # the honest markdown still renders as markdown
