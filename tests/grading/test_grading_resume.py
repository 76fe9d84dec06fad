"""normlab-grade loses nothing: a run killed in the middle (SIGKILL to its whole process
group, workers or forked graders included, whichever it used) leaves no sandbox behind and,
started again, grades only what is left; every result is in the gradebook; a forced
re-grade gives identical scores; a run with nothing left grades nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

import normlab_grade_helpers as H

pytestmark = pytest.mark.slow

A = "02-zscore"


def _subs(folder):
    sol = H.strip_markers(H.solution_nb(A))
    rel = H.release_nb(A)
    expected = {}
    for i in range(4):
        H.write_nb(folder / f"sol{i}" / f"{A}.ipynb", sol)
        expected[f"sol{i}"] = 20
    for i in range(3):
        H.write_nb(folder / f"rel{i}" / f"{A}.ipynb", rel)
        expected[f"rel{i}"] = 0
    nb = H.strip_markers(H.solution_nb(A))
    cell = nb["cells"][H.index_of(nb, "zscore")]
    cell["source"] = H.source(cell).replace("np.sqrt(var + eps)", "np.sqrt(var)")
    H.write_nb(folder / "mistake" / f"{A}.ipynb", nb)
    expected["mistake"] = 17  # eps ignored: test_zscore_eps (3 points) fails
    return expected


def _gradebook_totals(db, students):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        return {s: gb.find_submission(A, s).score for s in students}


def _leftover_jails(marker: str) -> list:
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if marker.encode() in cmd and (b"bwrap" in cmd or b"ipykernel" in cmd):
            found.append(pid)
    return found


@pytest.mark.parametrize("first", ["cluster", "forked"])
def test_interrupted_run_resumes_and_regrading_is_identical(tmp_path, first):
    subs = tmp_path / "subs"
    expected = _subs(subs)
    db = H.prepared_gradebook(tmp_path / "gb", [A])
    out = tmp_path / "out"
    H.copy_gradebook(db, out)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = H.env()
    env["TMPDIR"] = str(scratch)  # the workers' sandboxes live here: easy to find
    # the interrupted run grades on a local Dask cluster, or in forked processes
    args = [str(H.BIN / "normlab-grade"), str(subs), "-a", A, "--out", str(out), "--workers", "1",
            "--cluster-min", "1" if first == "cluster" else "100"]
    proc = subprocess.Popen(args, cwd=H.ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)

    def n_done():
        d = out / "results" / A
        return len(list(d.glob("*.json"))) if d.exists() else 0

    try:
        deadline = time.monotonic() + 600
        while n_done() < 2:
            assert proc.poll() is None, "normlab-grade ended before it was interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its workers, mid-run
        proc.wait()
    time.sleep(2)
    assert _leftover_jails(str(scratch)) == []
    done_first = set(H.results(out, A))
    assert 2 <= len(done_first) < len(expected)

    second = H.normlab_grade(subs, "-a", A, "--out", out, "--workers", 2)
    assert second.returncode == 0, second.stderr[-3000:]
    left = len(expected) - len(done_first)
    assert f"graded {left}, failed 0, skipped {len(done_first)}" in second.stderr, second.stderr
    res = H.results(out, A)
    assert {s: r["score"] for s, r in res.items()} == expected
    assert _gradebook_totals(out / "gradebook.db", expected) == expected

    again = H.normlab_grade(subs, "-a", A, "--out", out, "--workers", 2, "--force")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"graded {len(expected)}, failed 0, skipped 0" in again.stderr
    res2 = H.results(out, A)
    assert {s: H.cell_scores(r) for s, r in res2.items()} == \
        {s: H.cell_scores(r) for s, r in res.items()}
    assert _gradebook_totals(out / "gradebook.db", expected) == expected

    idle = H.normlab_grade(subs, "-a", A, "--out", out)
    assert idle.returncode == 0
    assert f"graded 0, failed 0, skipped {len(expected)}" in idle.stderr
