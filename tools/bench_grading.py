"""``make bench-grading``: serial ``nbgrader autograde`` against ``normlab-grade`` on the same
synthetic submissions, in the same run, for several sizes.

    python tools/bench_grading.py                       # the rows 1:02-zscore 3:02-zscore 4:all
    python tools/bench_grading.py --k 50                # 50 per assignment, every assignment (300)
    python tools/bench_grading.py --row 1:02-zscore --row 8:all --repeat 3

A row ``K:ASSIGNMENTS`` grades K submissions per assignment of ASSIGNMENTS (``all`` or
comma-separated names), so ``4:all`` is 4 x 7 = 28 submissions. Submissions are made from
the course's own notebooks, cycling through: the solution, the untouched release, the
solution with one question left unanswered (a different one each time), the solution whose
functions print to stderr. For each row, in a fresh temporary copy of the course
(``nbgrader generate_assignment`` beforehand, not timed), both tools grade the same
``submitted/`` folder, end to end:

1. ``nbgrader autograde <assignment>`` for every assignment, one after another (what an
   instructor runs today);
2. ``normlab-grade --workers N`` (intake, sandboxes, judging, feedback, gradebook and
   reports; below ``--cluster-min`` submissions in forked processes, else on a local Dask
   cluster: the "runner" column says which), writing a copy of the same gradebook.

Each is timed in wall-clock seconds and in CPU seconds (user + system of the command and
all the processes it waited for: kernels, sandboxes, workers), which depends much less on
what else the machine is doing. With ``--repeat R`` both are run R times, alternating which
goes first, and the medians are reported. The table says whether both gave the same total
for every submission. No figure is asserted: this prints measurements.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = "31337"
STDERR = 'import sys; print("debug: here", file=sys.stderr)'
DEFAULT_ROWS = ("1:02-zscore", "3:02-zscore", "4:all")


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
    env.pop("NORMLAB_GRADE_TIMINGS", None)
    return env


def _run(cmd, cwd) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds of the command and its waited-for descendants, process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return wall, cpu, proc


def _parse_row(text: str, every: list[str]) -> tuple[int, list[str]]:
    k, sep, which = text.partition(":")
    if not sep or not k.isdigit() or int(k) < 1:
        raise SystemExit(f"bench_grading: bad row {text!r}: expected K:ASSIGNMENTS, e.g. 3:02-zscore or 4:all")
    names = every if which == "all" else which.split(",")
    unknown = [n for n in names if n not in every]
    if unknown:
        raise SystemExit(f"bench_grading: unknown assignment(s) {', '.join(unknown)}; "
                         f"the course has {', '.join(every)}")
    return int(k), names


def _make_course(work: Path, names: list[str], k: int) -> tuple[Path, dict]:
    """A course in ``work/course`` with ``names`` generated and K submissions of each."""
    course = work / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    for a in names:
        shutil.copytree(ROOT / "solutions" / a, course / "solutions" / a,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    _run([sys.executable, "-m", "nbgrader", "generate_assignment", "--assignment=*", "--force",
          "--log-level=WARN"], course)
    students: dict = {}
    for a in names:
        sol = json.loads((course / "solutions" / a / f"{a}.ipynb").read_text())
        rel = json.loads((course / "exercises" / a / f"{a}.ipynb").read_text())
        students[a] = []
        for i, (kind, nb) in enumerate(variants(sol, rel, k)):
            s = f"s{i:03d}-{kind}"[:60]
            path = course / "submitted" / s / a / f"{a}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(nb))
            students[a].append(s)
    return course, students


def bench_row(k: int, names: list[str], workers: int, repeat: int, work: Path) -> dict:
    """Time both tools on K submissions of each of ``names``; the row's figures."""
    course, students = _make_course(work, names, k)
    snap = work / "gradebook-before.db"
    shutil.copy(course / "gradebook.db", snap)
    out = work / "normlab-grade"

    def nbgrader():
        shutil.copy(snap, course / "gradebook.db")
        wall = cpu = 0.0
        for a in names:
            w, c, _ = _run([sys.executable, "-m", "nbgrader", "autograde", a, "--force",
                            "--log-level=WARN"], course)
            wall, cpu = wall + w, cpu + c
        return wall, cpu

    def ours():
        if out.exists():
            shutil.rmtree(out)
        out.mkdir()
        shutil.copy(snap, out / "course.db")
        w, c, proc = _run([os.path.join(os.path.dirname(sys.executable), "normlab-grade"),
                           str(course / "submitted"), "--out", str(out), "--gradebook",
                           str(out / "course.db"), "--course", str(course), "--workers",
                           str(workers), "--quiet"], ROOT)
        return w, c

    theirs_t, ours_t = [], []
    for rep in range(repeat):  # alternate which tool goes first
        if rep % 2 == 0:
            theirs_t.append(nbgrader())
            ours_t.append(ours())
        else:
            ours_t.append(ours())
            theirs_t.append(nbgrader())
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        theirs = {(a, s): gb.find_submission(a, s).score for a in names for s in students[a]}
    mine, runners = {}, set()
    for a in names:
        for f in (out / "results" / a).glob("*.json"):
            rec = json.loads(f.read_text())
            mine[(a, rec["student"])] = rec["score"]
            runners.add("Dask cluster" if "tcp://" in str(rec.get("worker")) else "forked")
    differ = sorted(f"{a}/{s}: nbgrader {theirs.get((a, s))}, normlab-grade {mine.get((a, s))}"
                    for a, s in theirs.keys() | mine.keys() if theirs.get((a, s)) != mine.get((a, s)))
    return {"k": k, "assignments": names, "n": sum(len(v) for v in students.values()),
            "load": os.getloadavg()[0],
            "ours": [w for w, _ in ours_t], "ours_cpu": [c for _, c in ours_t],
            "theirs": [w for w, _ in theirs_t], "theirs_cpu": [c for _, c in theirs_t],
            "runner": "/".join(sorted(runners)) or "?", "differ": differ}


def _table(rows: list[dict], workers: int, repeat: int) -> str:
    med = statistics.median
    lines = [
        f"normlab-grade --workers {workers} against serial nbgrader autograde, same submissions, "
        f"same run; {os.cpu_count()} cores; " + (f"medians of {repeat} runs" if repeat > 1 else "one run each"),
        "K = submissions per assignment; n = submissions in all (K x assignments); CPU = user + "
        "system seconds of the command and the processes it waited for; load = 1-minute load "
        "average at the end of the row",
        "",
        "| K | assignments | n | runner | normlab-grade s | nbgrader s | ratio (ours/nbgrader) "
        "| normlab-grade CPU s | nbgrader CPU s | same grades | load |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        names = r["assignments"]
        which = f"all {len(names)}" if len(names) > 2 else ", ".join(names)
        ours, theirs = med(r["ours"]), med(r["theirs"])
        lines.append(f"| {r['k']} | {which} | {r['n']} | {r['runner']} | {ours:.1f} | {theirs:.1f} | "
                     f"{ours / theirs:.2f} | {med(r['ours_cpu']):.1f} | {med(r['theirs_cpu']):.1f} | "
                     f"{'yes' if not r['differ'] else 'NO'} | {r['load']:.1f} |")
    if repeat > 1:
        lines.append("")
        for r in rows:
            lines.append(f"n = {r['n']}: normlab-grade {', '.join(f'{t:.1f}' for t in r['ours'])} s; "
                         f"nbgrader {', '.join(f'{t:.1f}' for t in r['theirs'])} s")
    for r in rows:
        for d in r["differ"]:
            lines.append(f"different grade: {d}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--row", action="append", default=None, metavar="K:ASSIGNMENTS",
                   help=f"K submissions per assignment of ASSIGNMENTS (all or a,b); repeatable "
                        f"(default: {' '.join(DEFAULT_ROWS)})")
    p.add_argument("--k", type=int, default=None,
                   help="shorthand for one row K:ASSIGNMENTS (with --assignments)")
    p.add_argument("--assignments", default="all", help="for --k: comma-separated names, or all")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--repeat", type=int, default=1,
                   help="time both tools this many times per row, alternating which goes first "
                        "(the figures are medians; use it on a shared machine)")
    p.add_argument("--keep", type=Path, default=None, help="keep the work folders here")
    args = p.parse_args(argv)
    every = sorted(d.name for d in (ROOT / "solutions").iterdir()
                   if d.is_dir() and any(d.glob("*.ipynb")))
    texts = list(args.row or [])
    if args.k is not None:
        texts.append(f"{args.k}:{args.assignments}")
    rows = [_parse_row(t, every) for t in (texts or DEFAULT_ROWS)]
    base = Path(tempfile.mkdtemp(prefix="normlab-bench-")) if args.keep is None else args.keep
    results = []
    try:
        for i, (k, names) in enumerate(rows):
            work = base / f"row{i}-k{k}"
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            print(f"row {i + 1}/{len(rows)}: {k} per assignment x {len(names)} assignment(s) "
                  f"(work folder {work})", flush=True)
            r = bench_row(k, names, args.workers, args.repeat, work)
            print(f"  normlab-grade {statistics.median(r['ours']):.1f} s, nbgrader "
                  f"{statistics.median(r['theirs']):.1f} s", flush=True)
            results.append(r)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(_table(results, args.workers, args.repeat))
    return 0 if all(not r["differ"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
