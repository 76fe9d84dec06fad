"""Benchmark: serial ``nbgrader autograde`` against ``normlab-grade`` on the same
synthetic submissions, in the same run.

    python -m normlab_grading.grade.bench [--k K] [--assignments all|a,b] [--workers N]

For each assignment, K submissions are made from the course's own notebooks, cycling
through: the solution, the untouched release, the solution with one question left
unanswered (a different one each time), the solution whose functions print to stderr.
Then, in a temporary copy of the course (``nbgrader generate_assignment`` beforehand, not
timed), three timings:

1. ``nbgrader autograde <assignment>`` for every assignment, one after another (what an
   instructor runs today), end to end;
2. ``normlab-grade`` on the same ``submitted/`` folder with ``--workers N``, end to end
   (Dask cluster start, sandboxes, judging, feedback, gradebook and reports included),
   writing a copy of the same gradebook;
3. executing every submitted notebook alone with nbclient, one after another, each in a
   fresh kernel (the work neither tool can avoid).

With ``--repeat R`` both are timed R times, alternating which goes first, and the medians
are used (on a machine shared with other work, load changes from minute to minute).
It prints both times and their ratio, the per-notebook overhead beyond executing the
notebook (nbgrader: (T1 - T3) / n; normlab-grade: (T2 * N - T3) / n, i.e. the core-seconds
it spends beyond execution, start-up included; and, inside each grading task, task time
minus sandboxed execution time), and checks that both tools gave the same grades.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SEED = "31337"
STDERR = 'import sys; print("debug: here", file=sys.stderr)'


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _strip_markers(nb: dict) -> dict:
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        cell["source"] = "\n".join(line for line in _source(cell).split("\n")
                                   if "### BEGIN SOLUTION" not in line
                                   and "### END SOLUTION" not in line)
    return nb


def variants(solution: dict, release: dict, k: int) -> list[tuple[str, dict]]:
    """K honest submissions made from the solution and the release."""
    sol = _strip_markers(solution)
    answers = [c for c in sol["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution") and c["cell_type"] == "code"]
    stubs = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in release["cells"]}
    out = []
    for i in range(k):
        kind = i % 4
        if kind == 0:
            out.append(("solution", sol))
        elif kind == 1:
            out.append(("release", release))
        elif kind == 2:
            nb = copy.deepcopy(sol)
            gid = answers[(i // 4) % len(answers)]["metadata"]["nbgrader"]["grade_id"]
            for cell in nb["cells"]:
                if cell["metadata"].get("nbgrader", {}).get("grade_id") == gid:
                    cell["source"] = _source(stubs[gid])
            out.append((f"unanswered-{gid}", nb))
        else:
            nb = copy.deepcopy(sol)
            for cell in nb["cells"]:
                if cell["metadata"].get("nbgrader", {}).get("solution") and cell["cell_type"] == "code":
                    lines = []
                    for line in _source(cell).split("\n"):
                        lines.append(line)
                        if line.lstrip().startswith("def ") and line.rstrip().endswith(":"):
                            lines.append(line[: len(line) - len(line.lstrip())] + "    " + STDERR)
                    cell["source"] = "\n".join(lines)
            out.append(("stderr", nb))
    return out


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["NORMLAB_GRADING_SEED"] = SEED
    env.pop("NORMLAB_GRADING_RECORD", None)
    return env


def _run(cmd, cwd) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return seconds, proc


def _execute_alone(paths: list[Path], workdir: Path) -> list[float]:
    import nbformat
    from nbclient import NotebookClient

    times = []
    env_backup = dict(os.environ)
    os.environ["NORMLAB_GRADING_SEED"] = SEED
    os.environ.pop("NORMLAB_GRADING_RECORD", None)
    try:
        for p in paths:
            nb = nbformat.read(str(p), as_version=4)
            t = time.perf_counter()
            NotebookClient(nb, timeout=30, allow_errors=True, kernel_name="python3",
                           resources={"metadata": {"path": str(workdir)}}).execute(
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    return times


def _nbgrader_scores(db: Path, assignment: str, students: list[str]) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        return {s: gb.find_submission(assignment, s).score for s in students}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--k", type=int, default=4, help="submissions per assignment (default 4)")
    p.add_argument("--assignments", default="all", help="comma-separated, or all")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--repeat", type=int, default=1,
                   help="time both tools this many times, alternating which goes first "
                        "(the figures are medians; use it on a shared machine)")
    p.add_argument("--keep", type=Path, default=None, help="keep the work folder here")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    names = sorted(d.name for d in (ROOT / "solutions").iterdir() if d.is_dir()) \
        if args.assignments == "all" else args.assignments.split(",")
    work = Path(tempfile.mkdtemp(prefix="normlab-bench-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    course = work / "course"
    if course.exists():
        shutil.rmtree(course)
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    print(f"benchmark: {len(names)} assignment(s) x {args.k} submissions, {args.workers} workers, "
          f"{os.cpu_count()} cores; work folder {work}", flush=True)
    students: dict = {}
    paths = []
    for a in names:
        shutil.copytree(ROOT / "solutions" / a, course / "solutions" / a,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        _run([sys.executable, "-m", "nbgrader", "generate_assignment", a, "--force",
              "--log-level=WARN"], course)
        sol = json.loads((course / "solutions" / a / f"{a}.ipynb").read_text())
        rel = json.loads((course / "exercises" / a / f"{a}.ipynb").read_text())
        students[a] = []
        for i, (kind, nb) in enumerate(variants(sol, rel, args.k)):
            s = f"s{i:03d}-{kind}"[:60]
            path = course / "submitted" / s / a / f"{a}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(nb))
            students[a].append(s)
            paths.append(path)
    n = len(paths)
    snap = work / "gradebook-before.db"
    shutil.copy(course / "gradebook.db", snap)

    def time_nbgrader():
        shutil.copy(snap, course / "gradebook.db")
        total = 0.0
        for a in names:
            seconds, _ = _run([sys.executable, "-m", "nbgrader", "autograde", a, "--force",
                               "--log-level=WARN"], course)
            total += seconds
            print(f"  nbgrader autograde {a}: {seconds:.1f} s", flush=True)
        print(f"  nbgrader autograde, all: {total:.1f} s", flush=True)
        return total

    out = work / "normlab-grade"

    def time_ours():
        if out.exists():
            shutil.rmtree(out)
        out.mkdir()
        shutil.copy(snap, out / "course.db")
        seconds, proc = _run([os.path.join(os.path.dirname(sys.executable), "normlab-grade"),
                              str(course / "submitted"), "--out", str(out), "--gradebook",
                              str(out / "course.db"), "--course", str(course), "--workers",
                              str(args.workers), "--quiet"], ROOT)
        print(f"  normlab-grade: {seconds:.1f} s", flush=True)
        return seconds, proc

    # 1 and 2, alternating which one goes first
    t_theirs_all, t_ours_all = [], []
    proc = None
    for rep in range(args.repeat):
        if rep % 2 == 0:
            t_theirs_all.append(time_nbgrader())
            t, proc = time_ours()
        else:
            t, proc = time_ours()
            t_theirs_all.append(time_nbgrader())
        t_ours_all.append(t)
    t_nbgrader = statistics.median(t_theirs_all)
    t_ours = statistics.median(t_ours_all)
    theirs = {a: _nbgrader_scores(course / "gradebook.db", a, students[a]) for a in names}
    ours, in_task = {}, []
    for a in names:
        ours[a] = {}
        for f in sorted((out / "results" / a).glob("*.json")):
            rec = json.loads(f.read_text())
            ours[a][rec["student"]] = rec["score"]
            for nb in rec["notebooks"].values():
                tm = nb.get("timings", {})
                if "total" in tm and "execute" in tm:
                    in_task.append(tm["total"] - tm["execute"])

    # 3. executing alone
    run_dir = work / "exec"
    run_dir.mkdir(exist_ok=True)
    exec_times = _execute_alone(paths, run_dir)
    t_exec = sum(exec_times)
    print(f"  executing alone: {t_exec:.1f} s", flush=True)

    same = theirs == ours
    print()
    print(f"notebooks graded:                         {n}")
    rep = f" (median of {args.repeat})" if args.repeat > 1 else ""
    print(f"serial nbgrader autograde:                {t_nbgrader:8.1f} s{rep}")
    print(f"normlab-grade --workers {args.workers}:                {t_ours:8.1f} s{rep}")
    if args.repeat > 1:
        print(f"  all runs: nbgrader {', '.join(f'{t:.1f}' for t in t_theirs_all)}; "
              f"normlab-grade {', '.join(f'{t:.1f}' for t in t_ours_all)}")
    print(f"speed-up (nbgrader / normlab-grade):      {t_nbgrader / t_ours:8.2f}x")
    print(f"executing the notebooks alone (nbclient): {t_exec:8.1f} s "
          f"({statistics.fmean(exec_times):.2f} s per notebook)")
    print(f"per-notebook overhead beyond execution:")
    print(f"  nbgrader autograde:          {(t_nbgrader - t_exec) / n:6.2f} s")
    print(f"  normlab-grade, end to end:   {(t_ours * args.workers - t_exec) / n:6.2f} s "
          f"(core-seconds: {args.workers} workers x wall time, start-up included)")
    if in_task:
        print(f"  normlab-grade, inside a task: {statistics.fmean(in_task):6.2f} s "
              f"(median {statistics.median(in_task):.2f}; task time minus sandboxed execution)")
    print(f"same grades from both:        {'yes' if same else 'NO'}")
    if not same:
        for a in names:
            for s in students[a]:
                if theirs[a].get(s) != ours[a].get(s):
                    print(f"  {a}/{s}: nbgrader {theirs[a].get(s)}, normlab-grade {ours[a].get(s)}")
    if proc.returncode != 0:
        print(proc.stderr[-2000:])
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
