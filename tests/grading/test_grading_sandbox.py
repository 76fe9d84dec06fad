"""normlab-grade under attack: real submissions built from 02-zscore's solution and release,
graded in ONE run (a zip, 2 workers, small limits). Each attack gets its expected score and
failure reason, and every other submission in the same run is graded.

02-zscore's test cells: basic 5, ddof 3, eps 3, constant 4, 1d 2, too_few 3 points (20).
"""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import nbformat
import pytest

import normlab_grade_helpers as H

pytestmark = pytest.mark.slow

A = "02-zscore"
# seconds per notebook: long enough for an honest notebook on a loaded machine; the per-cell
# timeout is raised above it on the command line (nbgrader's option), so the notebook limit acts
TIMEOUT = 60
CELL_TIMEOUT = 90


def _sol():
    return H.strip_markers(H.solution_nb(A))


def _rel():
    return H.release_nb(A)


def _insert_before(nb, gid, src):
    nb["cells"].insert(H.index_of(nb, gid), H.code_cell(src))
    return nb


def _tests(nb):
    return [c for c in nb["cells"] if H.is_test(c)]


# ----------------------------------------------------------------------------- attacks
def honest():
    return _sol()


def crlf(path: Path):
    nb = _sol()
    for cell in nb["cells"]:
        cell["source"] = H.source(cell).replace("\n", "\r\n")
    path.write_bytes(json.dumps(nb, indent=1).replace("\n", "\r\n").encode())


def old_format(path: Path):
    nb = nbformat.from_dict(_sol())
    v3 = nbformat.convert(nb, 3)
    path.write_text(nbformat.writes(v3, version=3))


def no_cell_ids():
    nb = _sol()
    nb["nbformat_minor"] = 4
    for cell in nb["cells"]:
        cell.pop("id", None)
    return nb


def infinite_loop():
    return H.set_solution(_sol(), "zscore", "def zscore(X, ddof=0, eps=0.0):\n    while True:\n        pass\n")


def sleep_past_limit():
    return _insert_before(_sol(), "test_zscore_basic",
                          "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                          "time.sleep(10**6)")


def memory_hog():
    nb = _sol()
    nb["cells"].append(H.code_cell("hog = []\nwhile True:\n    hog.append(bytearray(10**7))"))
    return nb


def os_exit():
    return _insert_before(_sol(), "test_zscore_eps", "import os\nos._exit(3)")


def output_flood():
    return _insert_before(_sol(), "test_zscore_basic",
                          "while True:\n    print('x' * 10000, flush=True)")


def edited_tests():
    nb = _rel()
    for cell in _tests(nb):
        cell["source"] = "pass  # tests removed"
        cell["metadata"]["nbgrader"]["points"] = 100
        cell["outputs"] = [{"output_type": "execute_result", "data": {"text/plain": "100"},
                            "metadata": {}, "execution_count": 1}]
        cell["execution_count"] = 1
    return nb


def deleted_tests():
    nb = _rel()
    nb["cells"] = [c for c in nb["cells"] if not H.is_test(c)]
    return nb


def split_tests():
    nb = _rel()
    cells = []
    for cell in nb["cells"]:
        if H.is_test(cell):
            lines = H.source(cell).split("\n")
            first = copy.deepcopy(cell)
            first["id"] = cell["id"] + "a"
            first["source"] = "\n".join(lines[:2])
            cell["source"] = "\n".join(lines[2:])
            cells.append(first)
        cells.append(cell)
    nb["cells"] = cells
    return nb


def retyped_tests():
    nb = _rel()
    for i, cell in enumerate(nb["cells"]):
        if H.is_test(cell):
            nb["cells"][i] = H.code_cell("from normlab_grading import check\n"
                                         "print('ok: zscore passed (visible test)')")
    return nb


def changed_metadata():
    nb = _rel()
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if not meta:
            continue
        if meta.get("grade"):
            meta.update(points=100, grade=False, locked=False)
        if meta.get("solution"):
            meta.update(grade=True, points=50)
    return nb


def calls_reference():
    return H.set_solution(_sol(), "zscore",
                          "import normlab\n\ndef zscore(X, ddof=0, eps=0.0):\n"
                          "    return normlab.zscore(X, ddof=ddof, eps=eps)\n")


def tripwire_off_then_reference():
    return H.set_solution(_sol(), "zscore", (
        "import sys, normlab, normlab_grading.check.checking as C, normlab_grading.check.tripwire as T\n"
        "class Quiet:\n    hit = None\n    def __init__(self, *a, **k):\n        pass\n"
        "    def __enter__(self):\n        return self\n"
        "    def __exit__(self, *a):\n        return False\n"
        "C.Tripwire = T.Tripwire = Quiet\n"
        "def zscore(X, ddof=0, eps=0.0):\n"
        "    from normlab.scaling import zscore as ref\n"
        "    return ref(X, ddof=ddof, eps=eps)\n"))


def monkeypatch_numpy():
    return H.set_solution(_sol(), "zscore", (
        "import numpy as np, numpy.testing\n"
        "import normlab_grading.check.compare as J, normlab_grading.check.checking as C\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.isclose = lambda a, b, *x, **k: np.ones(np.shape(a), bool)\n"
        "np.array_equal = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "J.close = lambda *a, **k: True\n"
        "J.verdict = C.verdict = lambda *a, **k: J.Verdict(True, None, 'passed')\n"
        "def zscore(X, ddof=0, eps=0.0):\n"
        "    return np.asarray(X, dtype=float)\n"))


def fake_records():
    """Writes its own 'records' (the inputs as outputs) in place of the checker's."""
    return H.set_solution(_sol(), "zscore", (
        "import os, numpy as np, normlab_grading.check.records as R, normlab_grading.check.checking as C\n"
        "from normlab_grading.check.data import hidden_case, visible\n"
        "real = R.save_record\n"
        "def forged(directory, check_id, hidden, outputs, *a, **k):\n"
        "    case = (hidden_case(check_id) if hidden else None) or visible(check_id)['case']\n"
        "    x = case.get('X', case.get('x'))\n"
        "    return real(directory, check_id, hidden, {'out': np.asarray(x, float)})\n"
        "R.save_record = C.save_record = forged\n"
        "def zscore(X, ddof=0, eps=0.0):\n"
        "    raise RuntimeError('not done')\n"))


def prefilled_outputs():
    nb = _rel()
    for cell in _tests(nb):
        gid = H.grade_id(cell).replace("test_", "")
        cell["outputs"] = [{"output_type": "stream", "name": "stdout",
                            "text": f"ok: zscore passed {gid} (visible test)\n"}]
        cell["execution_count"] = 3
    return nb


def torch_library():
    return H.set_solution(_sol(), "zscore", (
        "def zscore(X, ddof=0, eps=0.0):\n"
        "    import torch\n"
        "    t = torch.as_tensor(X, dtype=torch.float64)\n"
        "    return torch.nn.functional.batch_norm(t, None, None, training=True, eps=eps).numpy()\n"))


def snoop(paths):
    probe = (
        "import os, socket, glob\n"
        f"targets = {sorted(map(str, paths))!r}\n"
        "leaks = []\n"
        "for t in targets:\n"
        "    try:\n"
        "        if os.path.isdir(t):\n"
        "            leaks.append((t, os.listdir(t)[:3]))\n"
        "        else:\n"
        "            with open(t, 'rb') as fh:\n"
        "                leaks.append((t, fh.read(20)))\n"
        "    except OSError:\n"
        "        pass\n"
        "for host in [('1.1.1.1', 80), ('127.0.0.1', 22)]:\n"
        "    try:\n"
        "        socket.create_connection(host, timeout=1)\n"
        "        leaks.append(host)\n"
        "    except OSError:\n"
        "        pass\n"
        "for w in ['/usr/x', '/x', '/etc/x']:\n"
        "    try:\n"
        "        open(w, 'w').write('x')\n"
        "        leaks.append(w)\n"
        "    except OSError:\n"
        "        pass\n"
        "for pid in os.listdir('/proc'):\n"
        "    try:\n"
        "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
        "    except OSError:\n"
        "        continue\n"
        "    if any(w in cmd for w in (b'normlab-grade', b'dask', b'pytest', b'nbgrader')):\n"
        "        leaks.append(('host process', pid))\n"
        "import normlab\n"
        "ref = os.path.join(os.path.dirname(normlab.__file__), 'scaling.py')\n"
        "if 'def zscore' in open(ref).read():\n"
        "    leaks.append('reference source')\n"
        "print('LEAKS' if leaks else 'NO-LEAKS', leaks)\n")
    return _insert_before(_sol(), "test_zscore_basic", probe)


def html_injection():
    return _insert_before(_sol(), "test_zscore_basic",
                          "from IPython.display import HTML, display\n"
                          "display(HTML(\"<script>document.title='pwned'</script><b>hi</b>\"))")


def shadow_module(folder: Path):
    H.write_nb(folder / f"{A}.ipynb", _rel())
    (folder / "normlab" / "grading").mkdir(parents=True)
    (folder / "normlab" / "__init__.py").write_text("")
    (folder / "normlab" / "grading" / "__init__.py").write_text(
        "def check(*a, **k):\n    print('ok: zscore passed (visible test)')\n")
    (folder / "numpy.py").write_text("raise SystemExit('shadowed')\n")


def leaves_files():
    """An honest notebook that leaves files behind: kept in autograded/ (as nbgrader keeps
    them), but never a link, a FIFO, or more than MAX_KEPT_FILES files."""
    return _insert_before(_sol(), "test_zscore_basic",
                          "import os\nos.makedirs('early/deep', exist_ok=True)\n"
                          "open('early/deep/result.txt', 'w').write('42')\n"
                          "os.symlink('/etc/passwd', 'passwd-link')\nos.symlink('/', 'root-link')\n"
                          "os.mkfifo('pipe')\nos.makedirs('many', exist_ok=True)\n"
                          "for i in range(1100):\n    open(f'many/{i:04d}.txt', 'w').write('x')")


# name -> (how to write it, status, score, reason fragment (submission), cell message fragment)
ATTACKS = {
    "honest": (honest, "graded", 20, None, None),
    "crlf_line_endings": (crlf, "graded", 20, None, None),
    "old_nbformat": (old_format, "graded", 20, None, None),
    "missing_cell_ids": (no_cell_ids, "graded", 20, None, None),
    "renamed_notebook": ("renamed", "graded", 20, None, None),
    "infinite_loop": (infinite_loop, "failed", 0, f"time limit of {TIMEOUT} s", None),
    "sleep_past_limit": (sleep_past_limit, "failed", 0, f"time limit of {TIMEOUT} s", None),
    "memory_hog": (memory_hog, "failed", 20, "ran out of memory (limit 1024 MiB)", None),
    "os_exit": (os_exit, "failed", 8, "kernel died in cell", None),
    "output_flood": (output_flood, "failed", 0, "more than 2 MiB of output", None),
    "edited_tests": (edited_tests, "graded", 0, None, "NotImplementedError"),
    "deleted_tests": (deleted_tests, "graded", 0, None, "NotImplementedError"),
    "split_tests": (split_tests, "graded", 0, None, "NotImplementedError"),
    "retyped_tests": (retyped_tests, "graded", 0, None, "NotImplementedError"),
    "changed_metadata": (changed_metadata, "graded", 0, None, "NotImplementedError"),
    "calls_reference": (calls_reference, "graded", 0, None, "called normlab.zscore"),
    "tripwire_off_then_reference": (tripwire_off_then_reference, "graded", 0, None, None),
    "monkeypatch_numpy": (monkeypatch_numpy, "graded", 0, None, "zscore"),
    "fake_records": (fake_records, "graded", 0, None, "zscore"),
    "prefilled_outputs": (prefilled_outputs, "graded", 0, None, "NotImplementedError"),
    "torch_library": (torch_library, "graded", 0, None, "not available while grading"),
    "snoop": ("snoop", "graded", 20, None, None),
    "html_injection": (html_injection, "graded", 20, None, None),
    "shadow_module": (shadow_module, "graded", 0, None, None),
    "leaves_files": (leaves_files, "graded", 20, None, None),
    "missing_notebook": ("missing", "rejected", 0, "was not submitted", None),
    "malformed_json": ("malformed", "rejected", 0, "not valid JSON", None),
}


# attacks that patch the student side: their imports must succeed in the jail
IMPORTS_MUST_WORK = ("tripwire_off_then_reference", "monkeypatch_numpy", "fake_records")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attacks")
    db = H.prepared_gradebook(tmp / "gb", [A])
    folder = tmp / "subs"
    out = tmp / "out"
    secrets = [H.ROOT / "solutions" / A / f"{A}.ipynb", H.ROOT / "solutions", db,
               out / "gradebook.db", folder, tmp / "subs.zip", H.ROOT / "nbgrader_config.py",
               H.ROOT / ".git", Path.home() / ".cache", Path.home() / ".config",
               Path("/etc/shadow"), Path("/etc/ssh")]
    for name, (how, *_rest) in ATTACKS.items():
        d = folder / name
        d.mkdir(parents=True)
        nb_path = d / f"{A}.ipynb"
        if how == "renamed":
            H.write_nb(d / "Copy of my homework (2).ipynb", _sol())
        elif how == "missing":
            (d / "notes.txt").write_text("I could not finish")
        elif how == "malformed":
            nb_path.write_text(json.dumps(_sol())[:3000])
        elif how == "snoop":
            H.write_nb(nb_path, snoop(secrets))
        elif getattr(how, "__code__", None) and how.__code__.co_argcount == 1:
            how(d if how is shadow_module else nb_path)
        else:
            H.write_nb(nb_path, how())
    archive = tmp / "subs.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, str(p.relative_to(folder)))
        zf.writestr(f"../../escaped/{A}.ipynb", json.dumps(_sol()))
        zf.writestr(f"/abs/student/{A}.ipynb", json.dumps(_sol()))
    H.copy_gradebook(db, out)
    proc = H.normlab_grade(archive, "--assignment", A, "--out", out, "--workers", 2,
                           "--timeout", TIMEOUT, "--memory", 1024, "--max-output", 2,
                           f"--Execute.timeout={CELL_TIMEOUT}")
    return {"proc": proc, "out": out, "tmp": tmp, "results": H.results(out, A)}


def test_the_run_finishes_and_counts(run):
    proc = run["proc"]
    assert proc.returncode == 1, proc.stderr[-3000:]
    err = proc.stderr
    assert f"{len(ATTACKS)} submission(s)" in err
    n_failed = sum(1 for v in ATTACKS.values() if v[1] != "graded") + 2  # + 2 refused zip members
    n_graded = sum(1 for v in ATTACKS.values() if v[1] == "graded")
    assert f"graded {n_graded}, failed {n_failed}, skipped 0" in err, err[-3000:]
    assert set(run["results"]) == set(ATTACKS)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack(run, name):
    _, status, score, reason, message = ATTACKS[name]
    rec = run["results"][name]
    assert (rec["status"], rec["score"], rec["max_score"]) == (status, score, 20), (
        rec["status"], rec["score"], rec.get("reason"), H.cell_scores(rec))
    if reason:
        assert reason in (rec["reason"] or ""), rec["reason"]
    else:
        assert rec["reason"] is None
    failing = [c for nb in rec["notebooks"].values() for c in nb["cells"] if not c["passed"]]
    if name in IMPORTS_MUST_WORK:  # an attack that dies at its own import tests no defence
        text = H.autograded_text(run["out"], rec)  # every output, the attack's own cell's too
        assert not any(w in text for w in ("No module named", "cannot import name")), text[-3000:]
    if message:
        # the first test cell says why (test_zscore_too_few expects an exception anyway,
        # and names the wrong one)
        assert failing and message in (failing[0]["message"] or ""), failing[0]
        assert all(c["message"] for c in failing), failing


def test_zip_members_outside_are_refused(run):
    rejected = json.loads((run["out"] / "rejected.json").read_text())
    reasons = " ".join(r["reason"] for r in rejected)
    assert "leaves the archive" in reasons and "absolute path" in reasons
    assert not list(run["tmp"].rglob("escaped"))
    assert "Inputs that were refused" in (run["out"] / "summary.md").read_text()


def test_sandbox_hides_everything_secret(run):
    rec = run["results"]["snoop"]
    text = H.autograded_text(run["out"], rec)
    assert "NO-LEAKS []" in text and "LEAKS [" not in text.replace("NO-LEAKS []", "")


def test_notes_say_what_was_repaired(run):
    notes = {k: " ".join(v["notes"]) for k, v in run["results"].items()}
    assert "CRLF" in notes["crlf_line_endings"]
    assert "upgraded from nbformat 3" in notes["old_nbformat"]
    assert "new id" in notes["missing_cell_ids"]
    assert "renamed notebook" in notes["renamed_notebook"]
    assert "3 file(s) shipped" in notes["shadow_module"] and "numpy.py" in notes["shadow_module"]


def test_shadow_modules_are_in_the_jail_and_gain_nothing(run):
    """Shipped files are beside the notebook, as under nbgrader: the shadowing numpy stops
    the student's own kernel, the fake checker prints lines that score nothing."""
    rec = run["results"]["shadow_module"]
    assert rec["score"] == 0
    assert "shadowed" in H.autograded_text(run["out"], rec)
    kept = run["out"] / "autograded" / "shadow_module" / A
    assert (kept / "numpy.py").read_text() == "raise SystemExit('shadowed')\n"


def test_files_left_behind_are_kept_without_links(run):
    kept = run["out"] / "autograded" / "leaves_files" / A
    assert (kept / "early" / "deep" / "result.txt").read_text() == "42"
    for name in ("passwd-link", "root-link", "pipe"):
        assert not (kept / name).exists() and not (kept / name).is_symlink(), name
    assert not [p for p in kept.rglob("*") if p.is_symlink()]
    n_many = len(list((kept / "many").iterdir()))
    assert 900 <= n_many < 1100  # the cap (1000 files in all) cut the rest
    notes = " ".join(n for nb in run["results"]["leaves_files"]["notebooks"].values()
                     for n in nb["notes"])
    assert "not a regular file" in notes and "more than 1000 files" in notes
    record = json.loads((run["out"] / "results" / A / "leaves_files.json").read_text())
    assert "early/deep/result.txt" in record["files"]


def test_feedback_never_shows_hidden_tests(run):
    from normlab_grading.grade.course import _hidden_lines

    hidden = _hidden_lines((H.ROOT / "solutions" / A / f"{A}.ipynb").read_text())
    assert hidden
    fb = list((run["out"] / "feedback").rglob("*.html"))
    assert len(fb) >= len(ATTACKS) - 2
    for f in fb:
        text = f.read_text()
        assert not any(h in text for h in hidden), f
        assert "BEGIN HIDDEN TESTS" not in text


def test_feedback_has_no_student_scripts(run):
    page = (run["out"] / "feedback" / "html_injection" / A / f"{A}.html").read_text()
    # the output's markup is kept, its script is not (the source is shown escaped)
    assert "<script>document.title='pwned'" not in page and "<b>hi</b>" in page


def test_outputs_were_capped(run):
    nb = run["out"] / "autograded" / "output_flood" / A / f"{A}.ipynb"
    assert nb.stat().st_size < 3 * 2**20
