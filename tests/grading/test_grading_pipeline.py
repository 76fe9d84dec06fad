"""The grading pipeline end to end with real nbgrader, in a temporary course directory.

For every assignment, one ``nbgrader autograde`` run grades a batch of made-up students:
the solution (full marks), the untouched release (0, and the run goes on), one student per
group of recognised mistakes (each mistake in a submission of its own kind, packed with
others that fail disjoint cells), edited and deleted test cells, correct code that writes
warnings to stderr, and code that calls the reference or a library routine. Then
``nbgrader generate_feedback`` must not show hidden tests, and the committed exercises/
must equal a fresh release.

The expected scores and messages come from the assignments' declarations
(``normlab_grading.grade.assignments``); the student code of each mistake is written here as
edits of the solution code (VARIANTS). Run alone with
``python tests/test_grading_pipeline.py`` to print per-notebook autograde times.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from normlab_grading.grade import release
from normlab_grading.grade.registry import all_assignments, get_check

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEED = "424242"  # NORMLAB_GRADING_SEED for the run: hidden cases differ from the default
WARN = ('import warnings, sys; warnings.warn("this API is deprecated", DeprecationWarning); '
        'print("debug: running", file=sys.stderr)')

# (check, mistake) -> edits of the solution code: (solution cell id, old text, new text).
VARIANTS = {
    "02-zscore": {
        ("zscore_basic", "unbiased_std"): [("zscore", "/ (n - ddof)", "/ (n - 1)")],
        ("zscore_basic", "per_sample"): [
            ("zscore", "mean = X.mean(axis=0)", "mean = X.mean(axis=1, keepdims=True)"),
            ("zscore", "var = ((X - mean) ** 2).sum(axis=0) / (n - ddof)",
             "var = ((X - mean) ** 2).sum(axis=1, keepdims=True) / (X.shape[1] - ddof)")],
        ("zscore_basic", "not_centered"): [("zscore", "out = (X - mean) / std", "out = X / std")],
        ("zscore_ddof", "ddof_ignored"): [("zscore", "/ (n - ddof)", "/ n")],
        ("zscore_eps", "eps_outside_sqrt"): [("zscore", "np.sqrt(var + eps)", "(np.sqrt(var) + eps)")],
        ("zscore_eps", "eps_ignored"): [("zscore", "np.sqrt(var + eps)", "np.sqrt(var)")],
        ("zscore_constant", "constant_nan"): [
            ("zscore", "std = np.where(std == 0, 1.0, std)", "pass")],
        ("zscore_constant", "constant_not_centered"): [
            ("zscore", "out = (X - mean) / std", "out = np.where(var == 0, X, (X - mean) / std)")],
        ("zscore_1d", "one_d_as_row"): [
            ("zscore", "X = X[:, None]", "X = X[None, :]"),
            ("zscore", "return out[:, 0] if one_feature else out", "return out")],
        ("zscore_1d", "one_d_returned_2d"): [
            ("zscore", "return out[:, 0] if one_feature else out", "return out")],
        ("zscore_too_few", "no_error_nan"): [("zscore", "if n - ddof <= 0:", "if False:")],
        ("zscore_too_few", "wrong_exception"): [
            ("zscore", "raise ValueError(", "raise ZeroDivisionError(")],
    },
    "01-feature-scaling": {
        ("minmax_fit_transform", "global_minmax"): [
            ("minmax_scaler", "self.data_min_ = X.min(axis=0)", "self.data_min_ = X.min()"),
            ("minmax_scaler", "self.data_max_ = X.max(axis=0)", "self.data_max_ = X.max()")],
        ("minmax_fit_transform", "per_sample"): [
            ("minmax_scaler", "self.data_min_ = X.min(axis=0)",
             "self.data_min_ = X.min(axis=1, keepdims=True)"),
            ("minmax_scaler", "self.data_max_ = X.max(axis=0)",
             "self.data_max_ = X.max(axis=1, keepdims=True)")],
        ("minmax_fit_transform", "divide_by_max"): [
            ("minmax_scaler", "return a + (X - self.data_min_) / (self.data_max_ - self.data_min_)",
             "return a + (X - self.data_min_) / self.data_max_")],
        ("minmax_new_data", "refit_on_new_data"): [
            ("minmax_scaler", "return a + (X - self.data_min_) / (self.data_max_ - self.data_min_)",
             "return a + (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))")],
        ("minmax_new_data", "feature_range_ignored"): [
            ("minmax_scaler", "a, b = self.feature_range", "a, b = 0.0, 1.0")],
        ("minmax_new_data", "clipped"): [
            ("minmax_scaler",
             "return a + (X - self.data_min_) / (self.data_max_ - self.data_min_) * (b - a)",
             "return np.clip(a + (X - self.data_min_) / (self.data_max_ - self.data_min_)"
             " * (b - a), a, b)")],
        ("minmax_new_data", "inverse_ignores_range"): [
            ("minmax_scaler", "return self.data_min_ + (X - a) / (b - a) * (",
             "return self.data_min_ + X * (")],
        ("standard_fit_transform", "unbiased_std"): [
            ("standard_scaler", "self.scale_ = np.sqrt(((X - self.mean_) ** 2).mean(axis=0))",
             "self.scale_ = X.std(axis=0, ddof=1)")],
        ("standard_fit_transform", "global_stats"): [
            ("standard_scaler", "self.mean_ = X.mean(axis=0)", "self.mean_ = X.mean()"),
            ("standard_scaler", "self.scale_ = np.sqrt(((X - self.mean_) ** 2).mean(axis=0))",
             "self.scale_ = X.std()")],
        ("standard_new_data", "refit_on_new_data"): [
            ("standard_scaler",
             "return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_",
             "X = np.asarray(X, dtype=np.float64)\n        return (X - X.mean(axis=0)) / X.std(axis=0)")],
        ("standard_new_data", "inverse_wrong_order"): [
            ("standard_scaler", "return np.asarray(X, dtype=np.float64) * self.scale_ + self.mean_",
             "return (np.asarray(X, dtype=np.float64) + self.mean_) * self.scale_")],
        ("standard_new_data", "inverse_divides"): [
            ("standard_scaler", "return np.asarray(X, dtype=np.float64) * self.scale_ + self.mean_",
             "return np.asarray(X, dtype=np.float64) / self.scale_ + self.mean_")],
        ("scale_train_test", "fit_on_test"): [
            ("scale_train_test", "return scaler.transform(X_train), scaler.transform(X_test)",
             "return scaler.transform(X_train), StandardScaler().fit(X_test).transform(X_test)")],
        ("scale_train_test", "fit_on_train_and_test"): [
            ("scale_train_test", "StandardScaler().fit(X_train)",
             "StandardScaler().fit(np.vstack([X_train, X_test]))")],
        ("condition_number", "singular_value_ratio"): [
            ("condition_number", "return float(eigenvalues[-1] / eigenvalues[0])",
             "return float(np.linalg.cond(X))")],
        ("condition_number", "centered_covariance"): [
            ("condition_number", "np.linalg.eigvalsh(X.T @ X / X.shape[0])",
             "np.linalg.eigvalsh(np.cov(X.T, bias=True))")],
        ("condition_number", "diagonal_ratio"): [
            ("condition_number", "return float(eigenvalues[-1] / eigenvalues[0])",
             "h = np.diag(X.T @ X)\n    return float(h.max() / h.min())")],
        ("condition_number", "inverted"): [
            ("condition_number", "eigenvalues[-1] / eigenvalues[0]",
             "eigenvalues[0] / eigenvalues[-1]")],
        ("gd_iterations", "one_too_many"): [("count_gd_iterations", "return k", "return k + 1")],
        ("gd_iterations", "one_too_few"): [("count_gd_iterations", "return k", "return k - 1")],
        ("gd_iterations", "absolute_tolerance"): [
            ("count_gd_iterations", "threshold = tol * np.linalg.norm(g)", "threshold = tol")],
    },
    "03-batchnorm-math": {
        ("bn_forward", "unbiased_variance"): [
            ("batchnorm_forward", "var = (xc ** 2).mean(axis=0)", "var = x.var(axis=0, ddof=1)")],
        ("bn_forward", "per_sample"): [
            ("batchnorm_forward", "mu = x.mean(axis=0)", "mu = x.mean(axis=1, keepdims=True)"),
            ("batchnorm_forward", "var = (xc ** 2).mean(axis=0)",
             "var = (xc ** 2).mean(axis=1, keepdims=True)")],
        ("bn_forward", "gamma_beta_swapped"): [
            ("batchnorm_forward", "out = gamma * x_hat + beta", "out = beta * x_hat + gamma")],
        ("bn_forward_eps", "eps_outside_sqrt"): [
            ("batchnorm_forward", "x_hat = xc / np.sqrt(var + eps)",
             "x_hat = xc / (np.sqrt(var) + eps)")],
        ("bn_forward_eps", "eps_ignored"): [
            ("batchnorm_forward", "x_hat = xc / np.sqrt(var + eps)", "x_hat = xc / np.sqrt(var)")],
        ("bn_backward_dx", "var_branch_missing"): [
            ("batchnorm_backward", "dxc = dxc + 2.0 / n * xc * dvar", "dxc = dxc")],
        ("bn_backward_dx", "mean_branch_missing"): [
            ("batchnorm_backward", "dx = dxc + dmu / n", "dx = dxc")],
        ("bn_backward_dx", "var_branch_sign"): [
            ("batchnorm_backward", "dstd = -dinvstd / std ** 2", "dstd = dinvstd / std ** 2")],
        ("bn_backward_dparams", "dparams_wrong_axis"): [
            ("batchnorm_backward", "dbeta = dout.sum(axis=0)", "dbeta = dout.sum(axis=1)"),
            ("batchnorm_backward", "dgamma = (dout * x_hat).sum(axis=0)",
             "dgamma = (dout * x_hat).sum(axis=1)")],
        ("bn_backward_dparams", "dgamma_uses_x"): [
            ("batchnorm_backward", "dgamma = (dout * x_hat).sum(axis=0)",
             "dgamma = (dout * x).sum(axis=0)")],
        ("bn_backward_alt_dx", "gamma_missing"): [
            ("batchnorm_backward_alt", "dx = gamma * invstd * (", "dx = invstd * (")],
        ("bn_backward_alt_dx", "var_branch_missing"): [
            ("batchnorm_backward_alt", " - x_hat * (dout * x_hat).mean(axis=0))", ")")],
        ("bn_backward_alt_dparams", "dparams_mean"): [
            ("batchnorm_backward_alt", "dbeta = dout.sum(axis=0)", "dbeta = dout.mean(axis=0)"),
            ("batchnorm_backward_alt", "dgamma = (dout * x_hat).sum(axis=0)",
             "dgamma = (dout * x_hat).mean(axis=0)")],
        ("spatial_bn_forward", "stats_over_NC"): [
            ("spatial_batchnorm",
             "    out2, cache2 = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, eps)\n"
             "    out = out2.reshape(N, H, W, C).transpose(0, 3, 1, 2)\n"
             "    x_hat = cache2[1].reshape(N, H, W, C).transpose(0, 3, 1, 2)\n"
             "    cache = (x, x_hat, cache2[2], cache2[3], gamma, eps)",
             "    mu = x.mean(axis=(0, 1), keepdims=True)\n"
             "    var = x.var(axis=(0, 1), keepdims=True)\n"
             "    x_hat = (x - mu) / np.sqrt(var + eps)\n"
             "    out = gamma[None, :, None, None] * x_hat + beta[None, :, None, None]\n"
             "    cache = (x, x_hat, mu, var, gamma, eps)")],
        ("spatial_bn_forward", "reshape_without_transpose"): [
            ("spatial_batchnorm", "batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C),",
             "batchnorm_forward(x.reshape(-1, C),"),
            ("spatial_batchnorm", "out = out2.reshape(N, H, W, C).transpose(0, 3, 1, 2)",
             "out = out2.reshape(N, C, H, W)"),
            ("spatial_batchnorm", "x_hat = cache2[1].reshape(N, H, W, C).transpose(0, 3, 1, 2)",
             "x_hat = cache2[1].reshape(N, C, H, W)")],
        ("spatial_bn_backward", "dparams_over_N_only"): [
            ("spatial_batchnorm", "    dx = dx2.reshape(N, H, W, C).transpose(0, 3, 1, 2)",
             "    dx = dx2.reshape(N, H, W, C).transpose(0, 3, 1, 2)\n"
             "    dgamma, dbeta = (dout * x_hat).sum(axis=0), dout.sum(axis=0)")],
        ("numerical_gradient", "forward_difference"): [
            ("gradient_check", "x[ix] = old - h", "x[ix] = old"),
            ("gradient_check", "/ (2 * h)", "/ h")],
        ("numerical_gradient", "dout_ignored"): [
            ("gradient_check", "np.sum((pos - neg) * dout)", "np.sum(pos - neg)")],
        ("numerical_gradient", "x_not_restored"): [
            ("gradient_check", "        x[ix] = old\n        grad[ix]", "        grad[ix]")],
        ("rel_error", "mean_not_max"): [("gradient_check", "float(np.max(", "float(np.mean(")],
        ("rel_error", "no_floor"): [
            ("gradient_check", "np.maximum(1e-8, np.abs(a) + np.abs(b))", "(np.abs(a) + np.abs(b))")],
    },
}

# Code that calls the reference or a library routine: (edits, failing cells, routine named).
CHEATS = {
    "02-zscore": [
        ([("zscore", "X = np.asarray(X, dtype=np.float64)\n",
           "import normlab\n    return normlab.zscore(X, ddof=ddof, eps=eps)\n")],
         "all", "normlab.scaling.zscore"),
        ([("zscore", "X = np.asarray(X, dtype=np.float64)\n",
           "import scipy.stats\n    return scipy.stats.zscore(X, ddof=ddof)\n")],
         "all", "scipy.stats"),
    ],
    "01-feature-scaling": [
        ([("condition_number", "X = np.asarray(X, dtype=np.float64)\n",
           "import normlab\n    return normlab.condition_number(X)\n")],
         ("test_condition_number",), "normlab.conditioning.condition_number"),
        ([("standard_scaler", "X = np.asarray(X, dtype=np.float64)\n        self.mean_",
           "from sklearn.preprocessing import StandardScaler as S\n"
           "        s = S().fit(X)\n        self.mean_, self.scale_ = s.mean_, s.scale_\n"
           "        return self\n        self.mean_")],
         ("test_standard_fit_transform", "test_standard_new_data", "test_scale_train_test"),
         "sklearn.preprocessing"),
    ],
    "03-batchnorm-math": [
        ([("gradient_check", "a = np.asarray(a, dtype=np.float64)\n",
           "import normlab\n    return normlab.rel_error(a, b)\n")],
         ("test_rel_error",), "normlab.gradcheck.rel_error"),
        ([("batchnorm_forward", "mu = x.mean(axis=0)\n",
           "import torch\n    t = torch.nn.functional.batch_norm(torch.tensor(x), None, None, "
           "torch.tensor(gamma), torch.tensor(beta), training=True, eps=eps)\n"
           "    mu = x.mean(axis=0)\n")],
         ("test_bn_forward", "test_bn_forward_eps", "test_spatial_forward"),
         "torch.nn.functional.batch_norm"),
    ],
}

# Assignments 04-06: their student code lives in tests/grading_variants_04_06.py (shared with
# the in-process tests of tests/test_grading_assignments_04_06.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from grading_variants_04_06 import CHEATS as _CHEATS_04_06  # noqa: E402
from grading_variants_04_06 import VARIANTS as _VARIANTS_04_06  # noqa: E402

VARIANTS.update(_VARIANTS_04_06)
CHEATS.update(_CHEATS_04_06)


# ----------------------------------------------------------------------------- submissions
@dataclass
class Student:
    """A made-up submission and what it should score: grade_id -> (score, text or None)."""

    name: str
    edits: list = field(default_factory=list)
    expect: dict = field(default_factory=dict)  # grade_id -> ("fail", message key) for fails
    untouched: bool = False
    transform: object = None  # callable(nb) -> nb, applied last


def _solution_code(assignment: str) -> dict[str, str]:
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    code = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            code[meta["grade_id"]] = cell.source
    return code


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def build_submission(assignment: str, release_nb, student: Student):
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    if student.untouched:
        return nb
    solutions = _solution_code(assignment)
    for gid, old, new in student.edits:
        assert old in solutions[gid], f"{assignment}/{student.name}: {old!r} not in {gid}"
        solutions[gid] = solutions[gid].replace(old, new, 1)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in solutions:
            cell.source = _strip_markers(solutions[gid])
    return student.transform(nb) if student.transform else nb


def _test_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def _edit_tests(nb):
    for cell in _test_cells(nb):
        cell.source = "pass  # tests removed by the student"
        cell.metadata.nbgrader["points"] = 100
        cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "100"},
                                               execution_count=1)]
    return nb


def _delete_tests(nb):
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    return nb


def _all_functions_injected(assignment):
    """WARN after EVERY solution region's start (each function and method)."""
    sources = _solution_code(assignment)
    edits = []
    for gid, source in sources.items():
        lines = source.split("\n")
        out = []
        for line in lines:
            out.append(line)
            if "### BEGIN SOLUTION" in line:
                indent = line[: len(line) - len(line.lstrip())]
                out.append(f"{indent}{WARN}")
        edits.append((gid, source, "\n".join(out)))
    return edits


def students_for(assignment: str) -> list[Student]:
    decl = all_assignments()[assignment]
    cells = [c.grade_id for c in decl.cells]
    students = [
        Student("solution"),
        Student("untouched", untouched=True,
                expect={g: ("fail", "NotImplementedError") for g in cells}),
        Student("tests_edited", transform=_edit_tests),
        Student("tests_deleted", transform=_delete_tests),
        Student("stderr_warning", edits=_all_functions_injected(assignment)),
    ]
    for i, (edits, fails, routine) in enumerate(CHEATS[assignment]):
        fails = cells if fails == "all" else fails
        students.append(Student(f"cheat{i}", edits=edits,
                                expect={g: ("fail", f"called {routine}") for g in fails}))
    # pack mistakes: a student gets several whose failing cells are disjoint and whose code
    # is in different solution cells (two mistakes in one function can mask each other's
    # message, so each such mistake gets a submission of its own)
    packed: list[tuple[set, set, Student]] = []
    for row in decl.expected:
        edits = VARIANTS[assignment][(row.check, row.mistake)]
        code_cells = {gid for gid, _, _ in edits}
        fails = set(row.fails)
        expect = {}
        for g in row.fails:
            key = row.messages.get(g, row.mistake)
            expect[g] = ("fail", _message_key(decl, g, key))
        for used_cells, used_code, st in packed:
            if not (used_cells & fails) and not (used_code & code_cells):
                st.edits += edits
                st.expect.update(expect)
                used_cells |= fails
                used_code |= code_cells
                st.name += f"+{row.mistake}"
                break
        else:
            st = Student(f"m{len(packed)}-{row.mistake}", edits=list(edits), expect=expect)
            packed.append((set(fails), set(code_cells), st))
    students += [st for _, _, st in packed]
    return students


def _message_key(decl, grade_id, key):
    """The text a failing cell's output must contain: the named mistake's message, or a
    marker of the generic/exception messages."""
    if key == "generic":
        return "is wrong in"
    if key == "exception":
        return None  # the student's own exception: any error output
    chk = get_check(decl.cell(grade_id).checks[0])
    return chk.mistake(key).message


# ----------------------------------------------------------------------------- the course
def _env():
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["NORMLAB_GRADING_SEED"] = SEED
    env.pop("NORMLAB_GRADING_RECORD", None)
    return env


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=INFO"],
                          cwd=course, env=_env(), capture_output=True, text=True)


@dataclass
class Graded:
    assignment: str
    course: Path
    students: list
    scores: dict  # student -> grade_id -> score
    totals: dict  # student -> total score
    autograde_log: str
    autograde_seconds: float
    feedback_log: str


def _course(tmp: Path) -> Path:
    course = tmp / "course"
    course.mkdir()
    release.generate(ROOT, course)  # solutions/ + nbgrader_config.py + exercises/ + gradebook
    return course


def grade(course: Path, assignment: str) -> Graded:
    release_nb = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb",
                               as_version=4)
    students = students_for(assignment)
    for st in students:
        nb = build_submission(assignment, release_nb, st)
        path = course / "submitted" / st.name / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    t0 = time.perf_counter()
    proc = nbgrader(course, "autograde", assignment, "--force")
    seconds = time.perf_counter() - t0
    feedback = nbgrader(course, "generate_feedback", assignment, "--force")
    from nbgrader.api import Gradebook

    scores, totals = {}, {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for st in students:
            sub = gb.find_submission(assignment, st.name)
            totals[st.name] = sub.score
            scores[st.name] = {g.name: g.score for g in sub.notebooks[0].grades}
    return Graded(assignment, course, students, scores, totals,
                  proc.stdout + proc.stderr, seconds, feedback.stdout + feedback.stderr)


def cell_error_text(graded: Graded, student: str, grade_id: str) -> str:
    a = graded.assignment
    nb = nbformat.read(graded.course / "autograded" / student / a / f"{a}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return "\n".join(f"{o.ename}: {o.evalue}" for o in cell.get("outputs", [])
                             if o.output_type == "error")
    raise KeyError(grade_id)


def feedback_text(graded: Graded, student: str) -> str:
    a = graded.assignment
    raw = (graded.course / "feedback" / student / a / f"{a}.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", raw)), raw


# ----------------------------------------------------------------------------- fixtures
ASSIGNMENTS = ["01-feature-scaling", "02-zscore", "03-batchnorm-math", "04-test-time", "05-ics",
               "06-alternatives"]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return _course(tmp_path_factory.mktemp("nbgrader"))


_GRADED: dict = {}


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, course):
    if request.param not in _GRADED:
        _GRADED[request.param] = grade(course, request.param)
    return _GRADED[request.param]


# ----------------------------------------------------------------------------- tests
def test_exercises_are_up_to_date(course):
    """The committed exercises/ equals what the solutions generate (make exercises)."""
    diffs = release.differences(course / "exercises", ROOT / "exercises")
    assert not diffs, "run `make exercises`:\n" + "\n".join(diffs)


def test_every_submission_was_graded(graded):
    assert "There was an error processing" not in graded.autograde_log, graded.autograde_log[-3000:]
    assert set(graded.totals) == {st.name for st in graded.students}


def test_scores_and_messages(graded):
    decl = all_assignments()[graded.assignment]
    points = {c.grade_id: c.points for c in decl.cells}
    problems = []
    for st in graded.students:
        for gid, pts in points.items():
            want = 0.0 if gid in st.expect else float(pts)
            got = graded.scores[st.name][gid]
            text = cell_error_text(graded, st.name, gid)
            if got != want:
                problems.append(f"{st.name}/{gid}: score {got}, expected {want}; output: {text[:300]}")
                continue
            if gid in st.expect:
                key = st.expect[gid][1]
                if not text or (key is not None and key not in text):
                    problems.append(f"{st.name}/{gid}: message {key!r} not in output {text[:300]!r}")
    assert not problems, "\n".join(problems)


def test_expected_totals_match_the_table(graded):
    """A student with exactly one mistake scores what the notebook's table says."""
    decl = all_assignments()[graded.assignment]
    for row in decl.expected:
        st = next(s for s in graded.students if f"-{row.mistake}" in s.name or f"+{row.mistake}" in s.name)
        lost = sum(decl.cell(g).points for g in row.fails)
        assert all(graded.scores[st.name][g] == 0 for g in row.fails)
        assert decl.expected_score(row) == decl.total - lost


def test_solution_full_marks_and_untouched_zero(graded):
    total = all_assignments()[graded.assignment].total
    assert graded.totals["solution"] == total
    assert graded.totals["untouched"] == 0
    assert graded.totals["tests_edited"] == total  # original tests restored
    assert graded.totals["tests_deleted"] == total  # deleted test cells re-added
    assert graded.totals["stderr_warning"] == total  # warnings do not cost points


def test_feedback_has_no_hidden_tests(graded):
    assert "There was an error" not in graded.feedback_log, graded.feedback_log[-3000:]
    for st in graded.students:
        text, raw = feedback_text(graded, st.name)
        for needle in ("hidden=True", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert needle not in text and needle not in raw, (st.name, needle)
        # the visible tests and the checker's messages are there
        assert 'check("' in text


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        c = _course(Path(tmp))
        print(f"generate (3 assignments): {time.perf_counter() - t0:.1f} s")
        for a in sys.argv[1:] or ASSIGNMENTS:
            g = grade(c, a)
            n = len(g.students)
            print(f"{a}: {n} submissions autograded in {g.autograde_seconds:.1f} s "
                  f"({g.autograde_seconds / n:.1f} s per notebook)")
            for st in g.students:
                print(f"  {st.name}: {g.totals[st.name]}")
