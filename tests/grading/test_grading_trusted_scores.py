"""A checked test cell's score is a function of the trusted verdicts only, and the jail holds
no answer: real attacking submissions graded end to end by normlab-grade, next to an honest
one that keeps full marks (02-zscore, 20 points, nothing implemented in the attacks)."""

from __future__ import annotations

import pytest

import normlab_grade_helpers as H

# a regression to a quadratic sanitizer or report would hang: fail instead
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
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
    "        from normlab_grading.grade.mistakes import standardize\n"
    "        return standardize(X, 0, ddof=ddof, eps=eps)\n"
    "    finally:\n"
    "        sys.setprofile(prof)\n"
)
# a run of spaces after "href=" made the feedback sanitizer's regex quadratic (minutes per page)
HREF_SPACES = "print('href=' + ' ' * 2_000_000 + 'x')\n" + NOTHING
# huge Problem texts in records: the results, summary and reports must stay small and fast
BLOAT = (
    "import importlib\n"
    "C = importlib.import_module('normlab_grading.check.checking')\n"
    "from normlab_grading.check.outputs import Problem\n"
    "_orig = C.save_record\n"
    "def fake(directory, check_id, hidden, outputs, tripwire=None, error=None, warnings=None):\n"
    "    key = 'outcome' if check_id == 'zscore_too_few' else 'out'\n"
    "    return _orig(directory, check_id, hidden, {key: Problem(' ' * 1_000_000 + 'x')},\n"
    "                 None, None, ['w' * 10**5] * 10)\n"
    "C.save_record = fake\n" + NOTHING
)
# the kernel replaces its heartbeat socket with its own and waits for the grader's ping, to
# answer it with a flood (the heartbeat socket is outside the output cap)
HEARTBEAT = (
    "import os, threading, zmq\n"
    "from ipykernel.kernelapp import IPKernelApp\n"
    "hb = IPKernelApp.instance().heartbeat\n"
    "path = f'{hb.ip}-{hb.port}'\n"
    "t = threading.Thread(target=hb.context.term, daemon=True); t.start(); t.join(5)\n"
    "try:\n"
    "    os.unlink(path)\n"
    "except FileNotFoundError:\n"
    "    pass\n"
    "s = zmq.Context().socket(zmq.ROUTER)\n"
    "s.bind('ipc://' + path)\n"
    "s.rcvtimeo = 5000\n"
    "try:\n"
    "    frames = s.recv_multipart()\n"
    "    print('PING RECEIVED')\n"
    "    for i in range(10):\n"
    "        s.send_multipart([frames[0], b'', b'x' * (50 * 2**20)])\n"
    "except zmq.Again:\n"
    "    print('NO PING')\n" + NOTHING
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
    "href_spaces": lambda: _attack(HREF_SPACES),
    "bloat": lambda: _attack(BLOAT),
    "heartbeat": lambda: _attack(HEARTBEAT),
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


@pytest.mark.parametrize("name", ["hook_number", "hook_text", "iopub", "answers", "script_markdown",
                                  "href_spaces", "bloat", "heartbeat"])
def test_attack_scores_nothing(run, name):
    rec = run["results"][name]
    assert rec["status"] == "graded", rec
    assert rec["score"] == 0, (name, H.cell_scores(rec))


def test_answers_are_not_in_the_jail(run):
    text = H.autograded_text(run["out"], run["results"]["answers"])
    assert "No module named 'normlab_grading.grade'" in text


def test_feedback_has_no_script_from_markdown(run):
    rec = run["results"]["script_markdown"]
    html = "".join((run["out"] / nb["feedback"]).read_text() for nb in rec["notebooks"].values()
                   if nb.get("feedback"))
    assert html, rec
    body = html.split("<body", 1)[-1]
    assert "<script>alert" not in body and "onerror" not in body
    assert 'href="javascript:' not in body and "href='javascript:" not in body
    assert '<h1 id="Assignment-2' in body  # the honest markdown still renders as markdown


def test_student_text_is_clipped_in_results_and_reports(run):
    out = run["out"]
    assert (out / "results" / A / "bloat.json").stat().st_size < 200_000
    assert (out / "summary.json").stat().st_size < 1_000_000
    assert (out / "summary.md").stat().st_size < 200_000


def test_the_heartbeat_socket_refuses_big_messages():
    """The heartbeat channel (jupyter_client's own socket, outside the output cap) refuses
    any message longer than a heartbeat echo (zmq's MAXMSGSIZE on the client's socket)."""
    import zmq

    from normlab_grading.grade.sandbox import _kernel_classes

    _, KC = _kernel_classes()
    ctx = zmq.Context()
    try:
        hb = KC.hb_channel_class.default_value(ctx, None, "ipc:///tmp/normlab-hb-test")
        hb._create_socket()
        assert hb.socket.getsockopt(zmq.MAXMSGSIZE) == 4096
        hb.socket.close(linger=0)
    finally:
        ctx.term()


def test_heartbeat_flood_is_graded_and_contained(run):
    rec = run["results"]["heartbeat"]
    assert rec["status"] == "graded" and rec["score"] == 0
