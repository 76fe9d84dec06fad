"""The student release (`make student-release`, tools/student_release.py), built and used as a
student would: its members, then its wheel installed into a fresh virtual environment where
the blank notebooks' visible tests fail as they should, the solved ones pass (also under
`nbgrader validate`, as the release's README tells students to run), and the trusted side of
the grader cannot be imported.

The fresh venv is offline: the wheel is installed with `pip --no-deps --no-index`, then a
.pth file appends this environment's site-packages for the heavy dependencies (torch,
JupyterLab, nbgrader). A directory named in a .pth file is added to sys.path, but the .pth
files inside it are not read, so this environment's editable install of the repository
(src/) stays invisible and the release's packages are the only normlab there.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest

from normlab_grade_helpers import strip_markers

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"
TOP = f"normlab-student-{VERSION}"
WHEEL = f"normlab-{VERSION}-py3-none-any.whl"
# one assignment without torch and one whose checks call torch through their protocols
ASSIGNMENTS = ["02-zscore", "06-alternatives"]

# Executes a notebook (argv[1]) with nbclient, keeping errors, into argv[2]; run by the
# fresh venv's python so the kernel is the fresh venv's (its kernelspec comes first on
# JUPYTER_PATH).
RUNNER = """\
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=True).execute()
nbformat.write(nb, sys.argv[2])
"""


def _clean_env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NORMLAB_", "PYTHON", "VIRTUAL_ENV", "JUPYTER"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["JUPYTER_PATH"] = str(venv / "share" / "jupyter")
    env["PIP_NO_INDEX"] = "1"
    return env


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """The zip, built by the tool as `make student-release` runs it."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "student_release.py"), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    zips = list(out.iterdir())
    assert [z.name for z in zips] == [f"{TOP}.zip"], "only the zip is left (no partial file)"
    return zips[0]


@pytest.fixture(scope="module")
def unpacked(release, tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(release) as zf:
        zf.extractall(where)
    return where / TOP


@pytest.fixture(scope="module")
def venv(unpacked, tmp_path_factory) -> Path:
    """A fresh venv with the release's wheel installed (offline) and this environment's
    site-packages behind it for the dependencies."""
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    env = _clean_env(venv)
    proc = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                           str(unpacked / WHEEL)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               env=env, capture_output=True, text=True, check=True).stdout.strip())
    (site / "_course_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    kernel = venv / "share" / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (student release)", "language": "python"}))
    return venv


def _run(venv: Path, args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), *args], cwd=cwd, env=_clean_env(venv),
                          capture_output=True, text=True, timeout=timeout)


def _text(outputs) -> str:
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif out.get("output_type") == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


def _execute(venv: Path, nb: dict, workdir: Path, name: str) -> dict:
    src, dst = workdir / f"{name}.ipynb", workdir / f"{name}.executed.ipynb"
    nbformat.write(nbformat.from_dict(nb), src)
    runner = workdir / "run_notebook.py"
    runner.write_text(RUNNER)
    proc = _run(venv, [str(runner), str(src), str(dst)], cwd=workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return nbformat.read(dst, as_version=4)  # joins multi-line texts into strings


def _grade_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"
            and c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def _solved(assignment: str, unpacked: Path) -> dict:
    """The released notebook with each solution cell's code from solutions/ (markers
    stripped, as a student would write it); the test cells stay the release's, which hold
    no hidden tests (nbgrader's ClearHiddenTests removed them)."""
    nb = json.loads((unpacked / "exercises" / assignment / f"{assignment}.ipynb").read_text())
    solution = strip_markers(json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text()))
    answers = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in solution["cells"]
               if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    nb = copy.deepcopy(nb)
    replaced = 0
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            cell["source"] = answers[meta["grade_id"]]
            replaced += 1
    assert replaced == len(answers) > 0
    return nb


def _names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as zf:
        return zf.namelist()


def test_release_members(release, unpacked):
    names = _names(release)
    wheel_names = _names(unpacked / WHEEL)
    # the folder holds the README, the pinned requirements, the wheel and exactly the
    # committed exercises/, byte for byte
    committed = {p.relative_to(ROOT).as_posix(): p.read_bytes()
                 for p in sorted((ROOT / "exercises").rglob("*.ipynb"))
                 if ".ipynb_checkpoints" not in p.parts}
    assert set(names) == {f"{TOP}/README.md", f"{TOP}/requirements.txt", f"{TOP}/{WHEEL}"} | {
        f"{TOP}/{p}" for p in committed}
    for path, content in committed.items():
        assert (unpacked / path).read_bytes() == content
    for name in names + wheel_names:
        assert not re.search(r"(^|/)(solutions|normlab_book|grade)(/|$)", name), name
    for path in (unpacked / "exercises").rglob("*.ipynb"):
        text = path.read_text()
        for marker in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "hidden=True"):
            assert marker not in text, (path, marker)

    # the wheel: every module of normlab, and of the grader exactly its __init__ and the
    # student side (check/'s modules and its data) as in the source tree
    def tree(rel: str) -> set[str]:
        base = ROOT / "src"
        return {p.relative_to(base).as_posix() for p in (base / rel).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
                and (p.suffix == ".py" or "data" in p.relative_to(base / rel).parts)}

    packaged = {n for n in wheel_names if not n.startswith(f"normlab-{VERSION}.dist-info/")}
    assert packaged == tree("normlab") | tree("normlab_grading/check") | {"normlab_grading/__init__.py"}
    data = [n for n in packaged if n.startswith("normlab_grading/check/data/")]
    assert data and all(n.endswith(".visible.npz") or n.endswith("/checks.json") for n in data)


def test_requirements_pinned_from_constraints(unpacked):
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.strip().split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    lines = [l for l in (unpacked / "requirements.txt").read_text().splitlines()
             if l and not l.startswith("#")]
    release = dict(l.split("==") for l in lines)
    assert len(release) == len(lines)
    for name in ("torch", "numpy", "scikit-learn", "matplotlib", "jupyterlab", "nbgrader", "ipykernel"):
        assert release[name] == pins[name], name
    assert release["torch"] == "2.13.0"
    # every pin agrees with constraints.txt where it lists the distribution
    assert {n: v for n, v in release.items() if n in pins and pins[n] != v} == {}
    # instructor-only tools of the grading extra are not asked for
    for name in ("distributed", "dask", "pytest", "jupyter-book", "playwright"):
        assert name not in release, name


def test_readme_tells_how(unpacked):
    readme = (unpacked / "README.md").read_text()
    for needed in (f"pip install -r requirements.txt {WHEEL}", "jupyter lab", "nbgrader validate",
                   "# YOUR CODE HERE"):
        assert needed in readme, needed


def test_installed_release_has_no_trusted_side(venv, tmp_path):
    probe = (
        "import importlib.util, json, sys, normlab, normlab_grading.check\n"
        "print(json.dumps({'normlab': normlab.__file__,\n"
        "  'check': sys.modules['normlab_grading.check'].__file__,\n"
        "  'grade': importlib.util.find_spec('normlab_grading.grade') is not None,\n"
        "  'book': importlib.util.find_spec('normlab_book') is not None}))\n"
    )
    proc = _run(venv, ["-c", probe], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["normlab"].startswith(str(venv)) and found["check"].startswith(str(venv)), found
    assert found == {**found, "grade": False, "book": False}
    proc = _run(venv, ["-c", "import normlab_grading.grade"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "ModuleNotFoundError: No module named 'normlab_grading.grade'" in proc.stderr


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_notebook_visible_tests_fail(venv, unpacked, tmp_path, assignment):
    nb = json.loads((unpacked / "exercises" / assignment / f"{assignment}.ipynb").read_text())
    done = _execute(venv, nb, tmp_path, assignment)
    cells = _grade_cells(done)
    assert cells
    for cell in cells:
        errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
        # the student's stub raises, and check() lets the student's exception through
        assert [e["ename"] for e in errors] == ["NotImplementedError"], (
            cell["metadata"]["nbgrader"]["grade_id"], _text(cell["outputs"]))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solved_notebook_visible_tests_pass(venv, unpacked, tmp_path, assignment):
    done = _execute(venv, _solved(assignment, unpacked), tmp_path, assignment)
    errors = [(c.get("metadata", {}).get("nbgrader", {}).get("grade_id"), _text(c["outputs"]))
              for c in done["cells"] if c["cell_type"] == "code"
              and any(o["output_type"] == "error" for o in c["outputs"])]
    assert errors == []
    for cell in _grade_cells(done):
        text = _text(cell["outputs"])
        check_ids = re.findall(r'check\("([^"]+)"', "".join(cell["source"]))
        assert check_ids, cell["source"]
        for check_id in check_ids:
            assert re.search(rf"^ok: \w+ passed {check_id} \(visible test\)$", text, re.M), text


def test_wrong_answer_names_the_mistake(venv, unpacked, tmp_path):
    """A z-score that ignores ddof: the ddof test fails with the check's message (an
    AssertionError naming the sample variance), the ddof=0 test still passes."""
    nb = _solved("02-zscore", unpacked)
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "zscore":
            source = "".join(cell["source"])
            assert "/ (n - ddof)" in source
            cell["source"] = source.replace("/ (n - ddof)", "/ n")
    done = _execute(venv, nb, tmp_path, "02-zscore-wrong")
    by_id = {c["metadata"]["nbgrader"]["grade_id"]: c for c in _grade_cells(done)}
    assert "ok: zscore passed zscore_basic (visible test)" in _text(by_id["test_zscore_basic"]["outputs"])
    errors = [o for o in by_id["test_zscore_ddof"]["outputs"] if o["output_type"] == "error"]
    assert [e["ename"] for e in errors] == ["AssertionError"]
    assert re.search(r"ddof|sample variance|n - 1", errors[0]["evalue"]), errors[0]["evalue"]


def test_nbgrader_validate_in_release(venv, unpacked, tmp_path):
    """What the README tells students to run before handing in."""
    solved = tmp_path / "solved" / "02-zscore.ipynb"
    blank = tmp_path / "blank" / "02-zscore.ipynb"
    solved.parent.mkdir()
    blank.parent.mkdir()
    nbformat.write(nbformat.from_dict(_solved("02-zscore", unpacked)), solved)
    blank.write_bytes((unpacked / "exercises" / "02-zscore" / "02-zscore.ipynb").read_bytes())
    ok = _run(venv, ["-m", "nbgrader", "validate", str(solved)], cwd=tmp_path)
    assert "Success! Your notebook passes all the tests." in ok.stdout, ok.stdout + ok.stderr
    bad = _run(venv, ["-m", "nbgrader", "validate", str(blank)], cwd=tmp_path)
    assert "NotImplementedError" in bad.stdout and "Success!" not in bad.stdout, bad.stdout + bad.stderr


def test_release_is_reproducible(release, tmp_path):
    """The same tree gives a byte-identical zip (fixed member times, the wheel built with
    SOURCE_DATE_EPOCH), so an instructor can tell whether two releases differ."""
    out = tmp_path / "again"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "student_release.py"), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    (again,) = out.glob("*.zip")
    assert again.read_bytes() == release.read_bytes()
