"""normlab-grade on a real Dask cluster: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 (started here with the venv's ``dask`` command, each worker in its
own working directory: nothing is shared but the network), graded through
``--scheduler``; both workers take part and the grades are right."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

import normlab_grade_helpers as H

pytestmark = pytest.mark.slow

A = "02-zscore"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(H.BIN / "dask")
    procs = []
    logs = []

    def start(args, cwd):
        log = open(tmp / f"{len(procs)}.log", "w")
        logs.append(log)
        cwd.mkdir(parents=True, exist_ok=True)
        procs.append(subprocess.Popen([dask, *args], cwd=cwd, env=H.env(), stdout=log,
                                      stderr=subprocess.STDOUT))

    try:
        start(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
              tmp / "scheduler")
        for i in range(2):
            start(["worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                   "--nworkers", "1", "--no-dashboard", "--name", f"w{i}",
                   "--local-directory", str(tmp / f"w{i}" / "scratch")], tmp / f"w{i}")
        from distributed import Client

        deadline = time.monotonic() + 180
        while True:
            try:
                with Client(address, timeout=10) as c:
                    c.wait_for_workers(2, timeout=max(1, deadline - time.monotonic()))
                    workers = sorted(c.scheduler_info()["workers"])
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield {"address": address, "workers": workers, "tmp": tmp}
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()


def test_grades_through_a_dask_scheduler_and_two_workers(cluster, tmp_path):
    subs = tmp_path / "subs"
    sol = H.strip_markers(H.solution_nb(A))
    rel = H.release_nb(A)
    expected = {}
    for i in range(3):
        H.write_nb(subs / f"good{i}" / f"{A}.ipynb", sol)
        expected[f"good{i}"] = 20
        H.write_nb(subs / f"blank{i}" / f"{A}.ipynb", rel)
        expected[f"blank{i}"] = 0
    db = H.prepared_gradebook(tmp_path / "gb", [A])
    out = tmp_path / "out"
    H.copy_gradebook(db, out)
    proc = H.normlab_grade(subs, "-a", A, "--out", out, "--scheduler", cluster["address"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "graded 6, failed 0" in proc.stderr
    res = H.results(out, A)
    assert {s: r["score"] for s, r in res.items()} == expected
    used = {r["worker"].split()[-1] for r in res.values()}
    assert used == set(cluster["workers"]), (used, cluster["workers"])
    assert (out / "grades.csv").exists() and (out / "summary.md").exists()
