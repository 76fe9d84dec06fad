"""normlab-grade without a Dask cluster (fewer than ``--cluster-min`` submissions): the same
submissions graded in processes forked from the coordinator and on a local Dask cluster give
the same scores, cell by cell, the same feedback verdicts and the same gradebook, and those
scores are the ones the notebooks' points say (solution: all, release: none, eps ignored:
all but test_zscore_eps). The fork pool itself (``local_pool.graded``): every task in its own
process, a process that dies is a failed result with the signal, leaving early kills the
children. Importing the grader keeps jsonschema's IRI parser out without weakening
nbformat's validation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import normlab_grade_helpers as H

A = "02-zscore"


def _submissions(folder) -> dict:
    sol = H.strip_markers(H.solution_nb(A))
    H.write_nb(folder / "sol" / f"{A}.ipynb", sol)
    H.write_nb(folder / "rel" / f"{A}.ipynb", H.release_nb(A))
    nb = H.strip_markers(H.solution_nb(A))
    cell = nb["cells"][H.index_of(nb, "zscore")]
    cell["source"] = H.source(cell).replace("np.sqrt(var + eps)", "np.sqrt(var)")
    H.write_nb(folder / "noeps" / f"{A}.ipynb", nb)
    points = _points()
    return {"sol": dict(points), "rel": {g: 0.0 for g in points},
            "noeps": {g: (0.0 if g == "test_zscore_eps" else p) for g, p in points.items()}}


def _points() -> dict:
    """grade_id -> points, read from the source notebook's nbgrader metadata."""
    return {c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"]["points"])
            for c in H.solution_nb(A)["cells"] if H.is_test(c)}


def _gradebook(db, students) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        return {s: {g.name: g.score for g in gb.find_submission_notebook(A, A, s).grades}
                for s in students}


def _verdicts(rec) -> dict:
    return {c["grade_id"]: (c["passed"], c["kind"]) for nb in rec["notebooks"].values()
            for c in nb["cells"]}


@pytest.mark.slow
def test_forked_and_cluster_runs_give_the_same_grades(tmp_path):
    subs = tmp_path / "subs"
    expected = _submissions(subs)
    db = H.prepared_gradebook(tmp_path / "gb", [A])
    runs = {}
    for how, extra in (("forked", []), ("cluster", ["--cluster-min", "1"])):
        out = tmp_path / how
        H.copy_gradebook(db, out)
        proc = H.normlab_grade(subs, "-a", A, "--out", out, "--workers", 2, *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "graded 3, failed 0, skipped 0" in proc.stderr, proc.stderr[-2000:]
        runs[how] = (out, H.results(out, A))
    forked, cluster = runs["forked"][1], runs["cluster"][1]
    # the runner each used: a forked process of the coordinator, or a Dask worker
    assert all(" pid " in r["worker"] for r in forked.values()), [r["worker"] for r in forked.values()]
    assert all("tcp://" in r["worker"] for r in cluster.values()), [r["worker"] for r in cluster.values()]
    assert {s: H.cell_scores(r) for s, r in forked.items()} == expected
    assert {s: H.cell_scores(r) for s, r in cluster.items()} == expected
    assert {s: _verdicts(r) for s, r in forked.items()} == {s: _verdicts(r) for s, r in cluster.items()}
    # the same keys: a record of one run counts as done for the other (resuming)
    assert {s: r["key"] for s, r in forked.items()} == {s: r["key"] for s, r in cluster.items()}
    for how, (out, _) in runs.items():
        assert _gradebook(out / "gradebook.db", expected) == expected, how
        assert (out / "feedback" / "noeps" / A / f"{A}.html").exists()


# ----------------------------------------------------------------------------- the pool
@pytest.fixture
def pool(monkeypatch):
    """local_pool.graded with the grading replaced by ``fake`` (children are forked, so
    they run the patched function) and no warm-up."""
    from normlab_grading.grade import local_pool, pipeline

    monkeypatch.setattr(pipeline, "warm_up", lambda render=True: {})
    monkeypatch.setattr(pipeline, "prepare", lambda bundle, render=False: None)

    def run(fake, tasks, workers=2, **kw):
        monkeypatch.setattr(pipeline, "grade_submission", fake)
        return local_pool.graded(tasks, {"a": object()}, None, workers, **kw)

    return run


def _tasks(n):
    return [{"student": f"s{i}", "assignment": "a"} for i in range(n)]


def _whoami(task, bundle, limits):
    return {"student": task["student"], "pid": os.getpid()}


def test_pool_grades_every_task_in_its_own_process(pool):
    called = []
    got = list(pool(_whoami, _tasks(5), workers=2, while_waiting=lambda: called.append(1)))
    assert sorted(t["student"] for t, _, _ in got) == [f"s{i}" for i in range(5)]
    assert all(r is not None and reason is None and r["student"] == t["student"]
               for t, r, reason in got)
    pids = {r["pid"] for _, r, _ in got}
    assert len(pids) == 5 and os.getpid() not in pids
    assert called == [1]


def test_a_child_that_dies_is_a_failed_result_with_the_signal(pool):
    def fake(task, bundle, limits):
        if task["student"] == "s1":
            os.kill(os.getpid(), signal.SIGKILL)
        return _whoami(task, bundle, limits)

    got = {t["student"]: (r, reason) for t, r, reason in pool(fake, _tasks(3))}
    assert got["s1"][0] is None and "SIGKILL" in got["s1"][1], got["s1"]
    assert got["s0"][0]["student"] == "s0" and got["s2"][0]["student"] == "s2"


def test_leaving_early_kills_the_children(pool, tmp_path):
    def fake(task, bundle, limits):
        if task["student"] != "s0":
            (tmp_path / f"{task['student']}.pid").write_text(str(os.getpid()))
            time.sleep(600)
        return _whoami(task, bundle, limits)

    gen = pool(fake, _tasks(3), workers=3)
    first = next(gen)
    assert first[0]["student"] == "s0"
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("*.pid"))) < 2:  # both sleepers have started
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    gen.close()
    for pid in pids:  # killed and reaped: no such process any more
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# ----------------------------------------------------------------------------- imports
def test_the_grader_imports_no_iri_parser_and_nbformat_still_validates():
    code = (
        "import sys\n"
        "import normlab_grading.grade.pipeline\n"
        "import nbformat, jsonschema\n"
        "assert 'lark' not in sys.modules, 'the IRI grammar was built'\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')])\n"
        "nbformat.validate(nb)\n"
        "bad = nbformat.from_dict({'nbformat': 4, 'nbformat_minor': 5, 'metadata': {},\n"
        "                          'cells': [{'cell_type': 'code', 'source': 'x'}]})\n"
        "try:\n"
        "    nbformat.validate(bad)\n"
        "except nbformat.ValidationError as exc:\n"
        "    print('rejected:', str(exc).splitlines()[0])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("rejected:"), proc.stdout
