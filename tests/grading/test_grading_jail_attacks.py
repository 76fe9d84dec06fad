"""The jail under the attacks of issue 8 (classes 3, 4, 7, 8, 15), graded end to end by
normlab-grade next to honest submissions that keep full marks.

- run "zscore": 02-zscore (torch, scikit-learn and scipy masked), the grader started as
  ``python -m normlab_grading.grade.cli`` from the course folder with PYTHONPATH=<course>:<course>/src
  (class 4), --disk 32, --memory 1024, --max-output 2;
- run "ics": 05-ics (imports torch) under --memory 1024: honest full marks, a torch hog stopped;
- run "ics_small": 05-ics under --memory 150: the limit is reported as too small for torch;
- run "ics_rlimit": 05-ics with the cgroup switched off (NORMLAB_GRADING_CGROUP=off): the
  RLIMIT_AS fallback, reported as too small, not as the student's ImportError.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import normlab_grade_helpers as H

pytestmark = pytest.mark.slow

Z = "02-zscore"
ICS = "05-ics"


def _sol(a=Z):
    return H.strip_markers(H.solution_nb(a))


def _before_tests(src, a=Z, gid="test_zscore_basic"):
    nb = _sol(a)
    nb["cells"].insert(H.index_of(nb, gid), H.code_cell(src))
    return nb


def _before_first_test(src, a):
    nb = _sol(a)
    first = next(i for i, c in enumerate(nb["cells"]) if H.is_test(c))
    nb["cells"].insert(first, H.code_cell(src))
    return nb


# ----------------------------------------------------------------------------- class 3
# Every copy of scipy/sklearn/torch anywhere in the jail's file system (the base
# interpreter's site-packages first) is put on sys.path and imported; zscore uses scipy's.
MASKED_ELSEWHERE = r'''
import os, sys, importlib
cands = ["/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages",
         os.path.join(sys.base_prefix, "lib", "python3.11", "site-packages")]
for top in ["/"]:
    for root, dirs, files in os.walk(top):
        if root in ("/proc", "/sys", "/dev"):
            dirs[:] = []
            continue
        if os.path.basename(root) in ("scipy", "sklearn", "torch") and "__init__.py" in files:
            cands.append(os.path.dirname(root))
            dirs[:] = []
imported = []
for c in cands:
    for name in ("scipy", "sklearn", "torch"):
        for m in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[m]
        sys.path.insert(0, c)
        try:
            mod = importlib.import_module(name)
            imported.append((name, c, getattr(mod, "__file__", None)))
        except Exception:
            pass
        finally:
            sys.path.remove(c)
print("IMPORTED" if imported else "NOTHING-IMPORTED", imported, len(cands))
for c in cands:
    sys.path.append(c)
for m in [k for k in sys.modules if k.startswith("scipy")]:
    del sys.modules[m]

def zscore(X, ddof=0, eps=0.0):
    from scipy.stats import zscore as z
    return z(X, axis=0, ddof=ddof)
'''


def masked_elsewhere():
    return H.set_solution(_sol(), "zscore", MASKED_ELSEWHERE)


# ----------------------------------------------------------------------------- class 4
# Look everywhere (sys.path, the course folder, the whole file system) for the solutions,
# the gradebook, a real normlab; use a solution if one is found.
SNOOP_COURSE = r'''
import os, sys, json, importlib.util
found = []
roots = list(dict.fromkeys([p for p in sys.path if p] + [os.getcwd(), "/work/main", "/"]))
seen = set()
for top in roots:
    for root, dirs, files in os.walk(top):
        if root in ("/proc", "/sys", "/dev") or root in seen:
            dirs[:] = []
            continue
        seen.add(root)
        for f in files:
            p = os.path.join(root, f)
            # (nbgrader's own test fixtures in the venv are not the course's)
            if f in ("02-zscore.ipynb", "gradebook.db", "nbgrader_config.py") \
                    and "/site-packages/nbgrader/" not in p:
                found.append(p)
            if f == "scaling.py" and "normlab" in root:
                try:
                    if "_unavailable" not in open(p).read():
                        found.append(p)
                except OSError:
                    pass
print("FOUND" if found else "FOUND-NOTHING", found[:10])
ref = None
for p in found:
    if p.endswith(".ipynb"):
        nb = json.load(open(p))
        for c in nb["cells"]:
            s = "".join(c["source"])
            if "def zscore" in s and "BEGIN SOLUTION" in s:
                ns = {}
                exec(s, ns)
                ref = ns["zscore"]
    elif p.endswith("scaling.py"):
        spec = importlib.util.spec_from_file_location("realscaling", p)
        m = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(m)
            ref = m.zscore
        except Exception:
            pass

def zscore(X, ddof=0, eps=0.0):
    if ref is None:
        raise NotImplementedError("no solution found")
    return ref(X, ddof=ddof, eps=eps)
'''


def snoop_course():
    return H.set_solution(_sol(), "zscore", SNOOP_COURSE)


# ----------------------------------------------------------------------------- class 7
def _write(path_expr, total_mib, chunk_mib=1):
    return (f"import os\nwritten = 0\n"
            f"for i in range({total_mib // chunk_mib}):\n"
            f"    try:\n"
            f"        with open({path_expr}, 'ab') as fh:\n"
            f"            fh.write(os.urandom({chunk_mib} * 2**20))\n"
            f"        written += {chunk_mib}\n"
            f"    except OSError:\n"
            f"        pass\n"
            f"print('written MiB', written)\n")


def records_named():
    """8 MiB per cell in files named like records: the harvest used to move them away."""
    nb = _sol()
    at = H.index_of(nb, "test_zscore_basic")
    for i in range(40):
        nb["cells"].insert(at, H.code_cell(_write(f"'/grading/records/fill{i}.visible.npz'", 8, 8)))
    return nb


def deep_records():
    """A records folder deeper than PATH_MAX, 300 MiB inside it."""
    return _before_tests(
        "import os\nos.chdir('/grading/records')\n"
        "for i in range(30):\n    os.mkdir('d' * 200)\n    os.chdir('d' * 200)\n"
        + _write("f'big{i}'", 300) + "os.chdir(os.path.expanduser('~'))\n")


def socket_folder():
    """300 MiB in the folder of the kernel's own unix sockets."""
    return _before_tests(
        "import json, os\nfrom ipykernel.connect import get_connection_file\n"
        "sock_dir = os.path.dirname(json.load(open(get_connection_file()))['ip'])\n"
        "print('sockets in', sock_dir)\n" + _write("os.path.join(sock_dir, f'big{i}')", 300))


def split_folders():
    """12 MiB in each of the home folder, the temporary folder and /dev/shm: 36 MiB together.
    (The jail's own names for them: with the venv under /tmp, /tmp itself is read-only and
    TMPDIR points into /dev/shm.)"""
    return _before_tests("import tempfile\n" + "".join(
        _write(f"os.path.join({d}, f'big{{i}}')", 12)
        for d in ("os.environ['HOME']", "tempfile.gettempdir()", "'/dev/shm'")))


# ----------------------------------------------------------------------------- class 8
def metadata_flood():
    return _before_tests("from IPython.display import display\n"
                         "for i in range(60):\n"
                         "    display({'text/plain': 'x'}, metadata={'m': 'y' * 2**20}, raw=True)\n")


def transient_flood():
    return _before_tests("from IPython.display import display\n"
                         "for i in range(60):\n"
                         "    display({'text/plain': 'x'}, transient={'t': 'y' * 2**20}, raw=True)\n")


def unknown_messages():
    return _before_tests("k = get_ipython().kernel\n"
                         "for i in range(60):\n"
                         "    k.session.send(k.iopub_socket, 'normlab_unknown_type', {'x': 'y' * 2**20},\n"
                         "                   parent=k.get_parent('shell'))\n")


def comm_buffers():
    return _before_tests("from comm import create_comm\n"
                         "c = create_comm(target_name='nobody')\n"
                         "for i in range(60):\n"
                         "    c.send(data={}, buffers=[b'y' * 2**20])\n")


# ----------------------------------------------------------------------------- class 15
def fork_hog():
    """Four processes of 400 MiB each: each under a per-process limit of 1024 MiB."""
    return _before_tests("import os, time\nkids = []\n"
                         "for i in range(4):\n"
                         "    pid = os.fork()\n"
                         "    if pid == 0:\n"
                         "        x = bytearray(400 * 2**20)\n"
                         "        time.sleep(1000)\n"
                         "        os._exit(0)\n"
                         "    kids.append(pid)\n"
                         "time.sleep(1000)\n")


def torch_hog():
    return _before_first_test("import torch\nx = torch.ones(2**28, dtype=torch.float64)\n", ICS)


DISK = "wrote more than 32 MiB"
OUT = "more than 2 MiB of output"
MEM = "ran out of memory (limit 1024 MiB)"

# name -> (notebook, status, score, reason fragment, failing-cell message fragment)
ZSCORE = {
    "honest": (_sol, "graded", 20, None, None),
    "masked_elsewhere": (masked_elsewhere, "graded", 0, None, "scipy is not available while grading"),
    "snoop_course": (snoop_course, "graded", 0, None, "no solution found"),
    "records_named": (records_named, "failed", 0, DISK, None),
    "deep_records": (deep_records, "failed", 0, DISK, None),
    "socket_folder": (socket_folder, "failed", 0, DISK, None),
    "split_folders": (split_folders, "failed", 0, DISK, None),
    "metadata_flood": (metadata_flood, "failed", 0, OUT, None),
    "transient_flood": (transient_flood, "failed", 0, OUT, None),
    "unknown_messages": (unknown_messages, "failed", 0, OUT, None),
    "comm_buffers": (comm_buffers, "failed", 0, OUT, None),
    "fork_hog": (fork_hog, "failed", 0, MEM, None),
}
ICS_RUN = {
    "honest": (lambda: _sol(ICS), "graded", 20, None, None),
    "torch_hog": (torch_hog, "failed", 0, MEM, None),
}
SMALL = "memory limit of 150 MiB is too small for this assignment's libraries"
RLIMIT = "memory limit of 1024 MiB is too small for this assignment's libraries"


def _sandbox_cgroups() -> list:
    """The graders' cgroups where the sandbox makes them on this machine (v2 or v1: the
    sandbox's own MemoryCgroup.parents; the graders started by the tests share this
    process's cgroup and environment), as paths."""
    from normlab_grading.grade.sandbox import MemoryCgroup

    return sorted(str(p) for parent, _version in MemoryCgroup.parents()
                  for p in Path(parent).glob("normlab-*"))


def _grade(tmp, name, assignment, subs, *args, env=None, module=False):
    db = H.prepared_gradebook(tmp / f"gb-{assignment}", [assignment])
    folder = tmp / f"subs-{name}"
    for sub, (how, *_rest) in subs.items():
        H.write_nb(folder / sub / f"{assignment}.ipynb", how())
    out = tmp / f"out-{name}"
    H.copy_gradebook(db, out)
    e = H.env()
    e.update(env or {})
    cmd = ([sys.executable, "-m", "normlab_grading.grade.cli"] if module else [str(H.BIN / "normlab-grade")])
    cmd += [str(folder), "--assignment", assignment, "--out", str(out), *map(str, args)]
    proc = subprocess.run(cmd, cwd=H.ROOT, env=e, capture_output=True, text=True, timeout=1500)
    return {"proc": proc, "out": out, "results": H.results(out, assignment)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jail")
    before = _sandbox_cgroups()
    r = {}
    course_path = os.pathsep.join([str(H.ROOT), str(H.ROOT / "src")])
    r["zscore"] = _grade(tmp, "zscore", Z, ZSCORE, "--workers", 2, "--timeout", 120,
                         "--memory", 1024, "--max-output", 2, "--disk", 32,
                         env={"PYTHONPATH": course_path}, module=True)
    r["ics"] = _grade(tmp, "ics", ICS, ICS_RUN, "--workers", 2, "--timeout", 300, "--memory", 1024)
    honest = {"honest": ICS_RUN["honest"]}
    r["ics_small"] = _grade(tmp, "small", ICS, honest, "--workers", 1, "--timeout", 300,
                            "--memory", 150)
    r["ics_rlimit"] = _grade(tmp, "rlimit", ICS, honest, "--workers", 1, "--timeout", 300,
                             "--memory", 1024, env={"NORMLAB_GRADING_CGROUP": "off"})
    r["cgroups_before"], r["cgroups_after"] = before, _sandbox_cgroups()
    return r


def _check(rec, status, score, reason, message):
    assert (rec["status"], rec["score"], rec["max_score"]) == (status, score, 20), (
        rec["status"], rec["score"], rec.get("reason"), H.cell_scores(rec))
    if reason:
        assert reason in (rec["reason"] or ""), rec["reason"]
    else:
        assert rec["reason"] is None, rec["reason"]
    if message:
        failing = [c for nb in rec["notebooks"].values() for c in nb["cells"] if not c["passed"]]
        assert failing and message in (failing[0]["message"] or ""), failing[0]


@pytest.mark.parametrize("name", list(ZSCORE))
def test_zscore_attack(runs, name):
    run = runs["zscore"]
    assert set(run["results"]) == set(ZSCORE), run["proc"].stderr[-3000:]
    _check(run["results"][name], *ZSCORE[name][1:])


def test_no_copy_of_a_masked_library_imports(runs):
    run = runs["zscore"]
    text = H.autograded_text(run["out"], run["results"]["masked_elsewhere"])
    assert "NOTHING-IMPORTED []" in text, text[:2000]


def test_nothing_of_the_course_is_reachable(runs):
    """Started with PYTHONPATH=<course> from the course folder: no solution, no gradebook,
    no configuration, no real normlab source anywhere in the jail."""
    run = runs["zscore"]
    text = H.autograded_text(run["out"], run["results"]["snoop_course"])
    assert "FOUND-NOTHING []" in text, text[:2000]


@pytest.mark.parametrize("name", ["metadata_flood", "transient_flood", "unknown_messages",
                                  "comm_buffers"])
def test_autograded_notebook_stays_small(runs, name):
    run = runs["zscore"]
    nb = run["out"] / "autograded" / name / Z / f"{Z}.ipynb"
    assert nb.stat().st_size < 3 * 2**20


@pytest.mark.parametrize("name", list(ICS_RUN))
def test_ics_under_one_gib(runs, name):
    run = runs["ics"]
    assert set(run["results"]) == set(ICS_RUN), run["proc"].stderr[-3000:]
    _check(run["results"][name], *ICS_RUN[name][1:])


def test_too_small_limit_is_reported_as_such(runs):
    rec = runs["ics_small"]["results"]["honest"]
    _check(rec, "failed", 0, SMALL, None)
    assert "torch" in rec["reason"] and "larger --memory" in rec["reason"]


def test_rlimit_fallback_is_reported_as_too_small(runs):
    """The cells that ran before the failed import keep their points; the submission is
    failed (to be graded again), with the limit, not the student, named as the cause."""
    rec = runs["ics_rlimit"]["results"]["honest"]
    assert (rec["status"], rec["max_score"]) == ("failed", 20), (rec["status"], rec["reason"])
    assert rec["score"] < 20
    assert RLIMIT in rec["reason"] and "torch" in rec["reason"], rec["reason"]


def test_cgroups_are_removed(runs):
    """No memory cgroup is left behind by the finished runs, wherever the sandbox makes them
    here (MemoryCgroup.parents: delegated v2, else v1). The list is machine-wide: a cgroup
    another grading job removed meanwhile, or one of a job still running (its pid, in the
    name, is alive), is not ours. Not vacuous: the honest run's notes say whether its jail
    had a cgroup, and that must agree with the sandbox having somewhere to make one; on a
    machine where it has none, the runs say so and the removal itself is tested on a fake
    cgroup root (test_grading_memory_cgroup.py)."""
    import re
    from normlab_grading.grade.sandbox import MemoryCgroup

    def alive(path):
        m = re.match(r"^normlab-(\d+)-", Path(path).name)
        return bool(m) and Path(f"/proc/{m.group(1)}").exists()

    notes = [n for nb in runs["ics"]["results"]["honest"]["notebooks"].values() for n in nb["notes"]]
    rlimit = any(n.startswith("no memory cgroup could be used") for n in notes)
    assert rlimit == (not MemoryCgroup.parents()), (MemoryCgroup.parents(), notes)
    left = {n for n in set(runs["cgroups_after"]) - set(runs["cgroups_before"]) if not alive(n)}
    assert not left, left


# ----------------------------------------------------------------------------- sandbox level
def test_rlimit_fallback_says_so_in_the_notes(tmp_path, monkeypatch):
    """Without a cgroup the run's notes say the limit is RLIMIT_AS (pipeline: result notes)."""
    from normlab_grading.grade import sandbox as S
    from normlab_grading.grade.student_lib import build_student_lib

    monkeypatch.setenv("NORMLAB_GRADING_CGROUP", "off")
    lib = build_student_lib(tmp_path / "lib")
    (tmp_path / "cases").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import resource\n"
                                          "print(resource.getrlimit(resource.RLIMIT_AS))")]
    sb = S.SandboxFiles(student_lib=lib, cases=tmp_path / "cases", mask=S.MASKABLE)
    res = S.execute_notebook(nb, sb, S.Limits(timeout=120, memory_mb=1024))
    try:
        assert res.failure is None, res.failure
        assert any("RLIMIT_AS" in n for n in res.notes), res.notes
        assert f"({2**30}, {2**30})" in nb.cells[0].outputs[0]["text"]
    finally:
        res.cleanup()


def test_bad_student_lib_is_a_clear_error(tmp_path):
    from normlab_grading.grade import sandbox as S

    (tmp_path / "cases").mkdir()
    (tmp_path / "lib").mkdir()
    sb = S.SandboxFiles(student_lib=tmp_path / "lib", cases=tmp_path / "cases")
    with pytest.raises(ValueError, match="holds no Python package"):
        S.execute_notebook(nbformat.v4.new_notebook(), sb, S.Limits())
