"""normlab_grading.grade without nbgrader: checks, mistakes, judge, tripwire, records, notebooks.

Fast (a few seconds): for every check the reference passes and every recognised mistake is
named as itself on the visible case and on hidden cases of many seeds; a random wrong
answer gets the generic message with the worst entry's index; forbidden calls are caught;
hidden cases differ from visible ones; record mode gives the verdict the kernel would.
"""

from __future__ import annotations

import ast
import sys
import time
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest

import normlab
from normlab_grading import check
from normlab_grading.grade.cases import DEFAULT_HIDDEN_SEED, SEED_ENV, VISIBLE_SEED, make_case
from normlab_grading.check.checking import run_student
from normlab_grading.grade.judge import Problem, judge
from normlab_grading.grade.records import RECORD_ENV, judge_record, load_record
from normlab_grading.grade.registry import all_assignments, all_checks, get_check
from normlab_grading.check.tripwire import Tripwire

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from authoring import main as authoring_main  # noqa: E402  (a repository script)

CHECKS = sorted(all_checks())
HIDDEN_SEEDS = [DEFAULT_HIDDEN_SEED] + list(range(1, 13))
_SEEDS: dict = {}


def _seeds(cid):
    """Many hidden seeds for cheap checks; two for checks whose reference takes long (an
    experiment that trains networks), to keep this file fast."""
    if cid not in _SEEDS:
        t0 = time.perf_counter()
        get_check(cid).reference(make_case(cid))
        _SEEDS[cid] = HIDDEN_SEEDS if time.perf_counter() - t0 < 0.02 else HIDDEN_SEEDS[:2]
    return _SEEDS[cid]


def _cases(cid):
    yield False, make_case(cid, hidden=False)
    for seed in _seeds(cid):
        yield True, make_case(cid, seed=seed, hidden=True)


@pytest.mark.parametrize("cid", CHECKS)
def test_reference_passes(cid):
    chk = get_check(cid)
    for hidden, case in _cases(cid):
        verdict = judge(cid, case, chk.reference(case), hidden=hidden)
        assert verdict.passed, verdict.message


@pytest.mark.parametrize("cid", CHECKS)
def test_each_mistake_is_named(cid):
    """Every mistake with a wrong answer is distinguishable from the reference and from the
    mistakes before it, on the visible case and on hidden cases of many seeds."""
    chk = get_check(cid)
    assert len(chk.mistakes) >= 2, f"{cid} recognises fewer than two mistakes"
    for hidden, case in _cases(cid):
        ref = chk.reference(case)
        for m in chk.mistakes:
            if m.wrong is None:
                continue
            outputs = {**ref, **m.wrong(case)}
            verdict = judge(cid, case, outputs, hidden=hidden)
            assert not verdict.passed and verdict.mistake_id == m.id, (
                f"{cid}/{m.id} ({'hidden' if hidden else 'visible'}): {verdict}")
            assert m.message in verdict.message
            assert ("hidden test" if hidden else "visible test") in verdict.message


def test_every_graded_function_recognises_two_mistakes():
    for a in all_assignments().values():
        by_function: dict[str, set] = {}
        for cell in a.cells:
            for cid in cell.checks:
                by_function.setdefault(cell.function, set()).update(
                    m.id for m in get_check(cid).mistakes)
        for fn, ids in by_function.items():
            assert len(ids) >= 2, (a.name, fn, ids)


def test_predicate_mistakes():
    case = make_case("zscore_constant")
    out = normlab.zscore(case["X"])
    out[:, case["constant"]] = np.nan
    assert judge("zscore_constant", case, {"out": out}).mistake_id == "constant_nan"
    case = make_case("zscore_1d")
    zeros = np.zeros((1, case["x"].size))
    assert judge("zscore_1d", case, {"out": zeros}).mistake_id == "one_d_as_row"


PREDICATES = [(cid, m.id) for cid in CHECKS for m in get_check(cid).mistakes if m.matches]


@pytest.mark.parametrize("cid, mistake_id", PREDICATES)
def test_predicates_take_what_compare_passes_and_spare_the_right_answer(cid, mistake_id):
    """``Mistake.matches(case, key, student_value, expected)``, called as check.compare does
    (the value at ``key`` as an array, ``expected`` every key's right output), is a bool and
    False for the right answer itself, on the visible and hidden cases."""
    chk = get_check(cid)
    m = chk.mistake(mistake_id)
    assert m.keys
    for _hidden, case in _cases(cid):
        expected = {k: np.asarray(v) for k, v in chk.reference(case).items()}
        for key in m.keys:
            hit = m.matches(case, key, expected[key].copy(), expected)
            assert hit is False or hit is np.False_, (cid, mistake_id, key, hit)


@pytest.mark.parametrize("cid", ["zscore_basic", "bn_forward", "spatial_bn_backward",
                                 "minmax_new_data", "numerical_gradient"])
def test_unrecognised_wrong_answer_gets_generic_message(cid):
    chk = get_check(cid)
    case = make_case(cid, hidden=True)
    ref = chk.reference(case)
    key = next(iter(ref))
    bad = np.array(ref[key], dtype=np.float64)
    idx = tuple(s // 2 for s in bad.shape)
    bad[idx] += 10 * (1 + np.abs(bad).max())
    verdict = judge(cid, case, {**ref, key: bad}, hidden=True)
    assert verdict.mistake_id == "generic"
    index = "(" + ", ".join(map(str, idx)) + ")" if len(idx) != 1 else f"[{idx[0]}]"
    assert f"is wrong in 1 of {bad.size} entries; the worst is at index {index}" in verdict.message
    assert chk.label(key) in verdict.message


def test_structural_problems_are_explained():
    case = make_case("bn_forward")
    ref = get_check("bn_forward").reference(case)
    v = judge("bn_forward", case, {**ref, "out": None})
    assert v.mistake_id == "type" and "None" in v.message and "shape (6, 3)" in v.message
    v = judge("bn_forward", case, {**ref, "out": ref["out"][:, :2]})
    assert v.mistake_id == "shape" and "has shape (6, 2); expected (6, 3)" in v.message
    out = ref["out"].copy()
    out[1, 2] = np.nan
    v = judge("bn_forward", case, {**ref, "out": out})
    assert v.mistake_id == "nonfinite" and "(1, 2)" in v.message
    v = judge("bn_forward", case, {k: v for k, v in ref.items() if k != "var"})
    assert v.mistake_id == "missing"
    v = judge("bn_forward", case, {**ref, "out": np.round(ref["out"]).astype(int)})
    assert v.mistake_id == "type" and "integer dtype" in v.message


def test_judge_is_pure():
    case = make_case("bn_backward_dx", hidden=True)
    before = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in case.items()}
    outputs = {"dx": np.zeros_like(case["x"])}
    first = judge("bn_backward_dx", case, outputs, hidden=True)
    second = judge("bn_backward_dx", case, outputs, hidden=True)
    assert first == second
    for k, v in before.items():
        np.testing.assert_array_equal(case[k], v)


# ----------------------------------------------------------------------------- cases
def _differs(a, b) -> bool:
    return np.shape(a) != np.shape(b) or not np.array_equal(a, b)


@pytest.mark.parametrize("cid", CHECKS)
def test_hidden_cases_differ_from_visible(cid):
    """Hidden inputs differ from the visible ones: in shape when the case holds float
    arrays (a hard-coded answer then fails on shape alone), else in value."""
    visible = make_case(cid)
    arrays = [k for k, v in visible.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    for seed in HIDDEN_SEEDS:
        hidden = make_case(cid, seed=seed, hidden=True)
        if arrays:
            assert any(np.shape(hidden[k]) != np.shape(visible[k]) for k in arrays), (cid, seed)
        else:
            assert any(_differs(hidden[k], visible[k]) for k in visible), (cid, seed)


@pytest.mark.parametrize("cid", CHECKS)
def test_cases_are_deterministic(cid, monkeypatch):
    monkeypatch.delenv(SEED_ENV, raising=False)
    a = make_case(cid, hidden=True)
    b = make_case(cid, seed=DEFAULT_HIDDEN_SEED, hidden=True)
    monkeypatch.setenv(SEED_ENV, "777")
    c = make_case(cid, hidden=True)
    for k, v in a.items():
        np.testing.assert_array_equal(v, b[k])
    assert any(_differs(v, c[k]) for k, v in a.items())


def test_seed_env_is_validated(monkeypatch):
    monkeypatch.setenv(SEED_ENV, "abc")
    with pytest.raises(ValueError, match=SEED_ENV):
        make_case("zscore_basic", hidden=True)
    monkeypatch.setenv(SEED_ENV, str(VISIBLE_SEED))
    with pytest.raises(ValueError, match="visible"):
        make_case("zscore_basic", hidden=True)


# ----------------------------------------------------------------------------- check()
def _zscore(X, ddof=0, eps=0.0):
    X = np.asarray(X, dtype=np.float64)
    one = X.ndim == 1
    X = X[:, None] if one else X
    n = X.shape[0]
    if n - ddof <= 0:
        raise ValueError("too few samples")
    mean = X.mean(axis=0)
    std = np.sqrt(((X - mean) ** 2).sum(axis=0) / (n - ddof) + eps)
    out = (X - mean) / np.where(std == 0, 1.0, std)
    return out[:, 0] if one else out


def test_check_passes_and_fails_with_message(capsys):
    assert check("zscore_basic", _zscore).passed
    assert check("zscore_basic", _zscore, hidden=True).passed
    with pytest.raises(AssertionError, match="sample standard deviation"):
        check("zscore_basic", lambda X, ddof=0, eps=0.0: _zscore(X, ddof=1))
    assert "ok: zscore passed zscore_basic (visible test)" in capsys.readouterr().out


def test_student_exception_propagates():
    def todo(X, ddof=0, eps=0.0):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check("zscore_basic", todo)


def test_warnings_and_stderr_do_not_reach_stderr(capfd):
    def noisy(X, ddof=0, eps=0.0):
        warnings.warn("this API is deprecated", DeprecationWarning)
        print("debug output", file=sys.stderr)
        with np.errstate(divide="warn"):
            np.array([1.0]) / 0.0
        return _zscore(X, ddof, eps)

    check("zscore_basic", noisy)
    out, err = capfd.readouterr()
    assert err == ""
    assert "note: zscore emitted DeprecationWarning: this API is deprecated" in out
    assert "RuntimeWarning" in out and "debug output" in out


# ----------------------------------------------------------------------------- tripwire
def _sklearn_scaler():
    from sklearn.preprocessing import StandardScaler

    class Scaler(StandardScaler):
        pass

    return Scaler


def _torch_forward(x, gamma, beta, eps=1e-5):
    import torch

    out = torch.nn.functional.batch_norm(torch.tensor(x), None, None, torch.tensor(gamma),
                                         torch.tensor(beta), training=True, eps=eps)
    return out.numpy(), (x, None, None, None, gamma, eps)


def _torch_c_forward(x, gamma, beta, eps=1e-5):
    import torch

    out = torch.batch_norm(torch.tensor(x), torch.tensor(gamma), torch.tensor(beta), None,
                           None, True, 0.1, eps, False)
    return out.numpy(), (x, None, None, None, gamma, eps)


def _torch_module_forward(x, gamma, beta, eps=1e-5):
    import torch

    bn = torch.nn.BatchNorm1d(x.shape[1], eps=eps, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma))
        bn.bias.copy_(torch.tensor(beta))
    return bn(torch.tensor(x)).detach().numpy(), (x, None, None, None, gamma, eps)


def _copied_code(X, ddof=0, eps=0.0):
    import types

    namespace = dict(normlab.scaling.__dict__, __name__="__main__")
    return types.FunctionType(normlab.zscore.__code__, namespace)(X, ddof, eps)


def _scipy(X, ddof=0, eps=0.0):
    import scipy.stats

    return scipy.stats.zscore(X, ddof=ddof)


def _profiler_removed(X, ddof=0, eps=0.0):
    sys.setprofile(None)
    return _zscore(X, ddof, eps)


@pytest.mark.parametrize("cid, student, routine", [
    ("zscore_basic", lambda X, ddof=0, eps=0.0: normlab.zscore(X, ddof, eps), "normlab.scaling.zscore"),
    ("zscore_basic", _copied_code, "normlab.scaling.zscore (its code, copied)"),
    ("zscore_basic", _scipy, "scipy.stats._stats_py.zscore"),
    ("zscore_basic", _profiler_removed, "removed the grading profiler"),
    ("standard_fit_transform", _sklearn_scaler(), "sklearn.preprocessing"),
    ("condition_number", lambda X: normlab.condition_number(X), "normlab.conditioning"),
    ("bn_forward", lambda x, g, b, eps=1e-5: normlab.batchnorm_forward(x, g, b, eps), "normlab.batchnorm"),
    ("bn_forward", _torch_forward, "torch.nn.functional.batch_norm"),
    ("bn_forward", _torch_c_forward, "torch.batch_norm"),
    ("bn_forward", _torch_module_forward, "torch.nn.modules.batchnorm"),
    ("rel_error", lambda a, b: normlab.rel_error(a, b), "normlab.gradcheck.rel_error"),
])
def test_tripwire_catches_forbidden_calls(cid, student, routine):
    with pytest.raises(AssertionError) as err:
        check(cid, student)
    assert routine in str(err.value) and "scores 0" in str(err.value)


def _grader_answer_model(x, gamma, beta, eps=1e-5):
    """Calls the assignment's own answer model, which lives in normlab_grading.grade (and so in the
    student-side package of the sandbox too)."""
    from normlab_grading.grade.assignments.ch03_batchnorm_math import answers

    out = answers.bn_forward(x, gamma, beta, eps)
    return out, None


def test_tripwire_catches_the_graders_own_answer_models():
    with pytest.raises(AssertionError) as err:
        check("bn_forward", _grader_answer_model)
    assert "normlab_grading.grade.assignments.ch03_batchnorm_math.answers.bn_forward" in str(err.value)
    assert "scores 0" in str(err.value)


def _exec_reference(X, ddof=0, eps=0.0):
    namespace = {"X": X}
    exec("import normlab\nout = normlab.zscore(X)", namespace)
    return namespace["out"]


def test_tripwire_sees_through_exec():
    with pytest.raises(AssertionError, match="normlab.scaling.zscore"):
        check("zscore_basic", _exec_reference)


def test_importing_inside_a_graded_function_is_allowed():
    def with_imports(X, ddof=0, eps=0.0):
        import sklearn.preprocessing  # noqa: F401  (importing is not calling)
        import torch  # noqa: F401

        return _zscore(X, ddof, eps)

    assert check("zscore_basic", with_imports).passed


def test_tripwire_allows_numpy_and_restores_profiler():
    before = sys.getprofile()
    with Tripwire() as tw:
        np.linalg.eigvalsh(np.eye(3))
        np.std(np.arange(5.0))
    assert tw.hit is None and sys.getprofile() is before


# ----------------------------------------------------------------------------- records
def _bad_forward(x, gamma, beta, eps=1e-5):
    mu, var = x.mean(0), x.var(0, ddof=1)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x, x_hat, mu, var, gamma, eps)


@pytest.mark.parametrize("cid, student", [
    ("zscore_basic", _zscore),
    ("zscore_eps", lambda X, ddof=0, eps=0.0: _zscore(X) if eps else _zscore(X)),
    ("bn_forward", _bad_forward),
    ("bn_forward", _torch_forward),
    ("bn_forward", lambda x, g, b, eps=1e-5: None),
    ("zscore_basic", lambda X, ddof=0, eps=0.0: 1 / 0),
])
def test_record_mode_judges_like_the_kernel(cid, student, tmp_path, monkeypatch, capsys):
    for hidden in (False, True):
        chk = get_check(cid)
        case = make_case(cid, hidden=hidden)
        run = run_student(chk, student, case)
        in_kernel = judge(cid, case, run.outputs, hidden=hidden, tripwire=run.tripwire,
                          error=run.error)
        monkeypatch.setenv(RECORD_ENV, str(tmp_path))
        assert check(cid, student, hidden=hidden) is None  # records, does not judge or raise
        monkeypatch.delenv(RECORD_ENV)
        path = tmp_path / f"{cid}.{'hidden' if hidden else 'visible'}.npz"
        with np.load(path, allow_pickle=False) as data:  # no pickle needed
            assert "meta" in data.files
        meta, outputs = load_record(str(path))
        assert meta["check_id"] == cid and meta["hidden"] is hidden
        assert judge_record(str(path)) == in_kernel
    assert "recorded for grading" in capsys.readouterr().out


def test_problem_outputs_round_trip(tmp_path):
    from normlab_grading.grade.records import save_record

    path = save_record(str(tmp_path), "bn_forward", False,
                       {"out": Problem("None (NoneType)"), "x_hat": np.ones((6, 3))})
    meta, outputs = load_record(path)
    assert outputs["out"] == Problem("None (NoneType)")
    np.testing.assert_array_equal(outputs["x_hat"], np.ones((6, 3)))


# ----------------------------------------------------------------------------- notebooks
def test_solution_notebooks_match_their_sources():
    assert authoring_main(["--check"]) == 0


@pytest.mark.parametrize("name", sorted(all_assignments()))
def test_notebook_structure(name, repo_root):
    decl = all_assignments()[name]
    assert decl.total % 10 == 0, f"{name}: total {decl.total} is not a round number"
    for folder in ("solutions", "exercises"):
        nb = nbformat.read(repo_root / folder / name / f"{name}.ipynb", as_version=4)
        assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
        nbformat.validate(nb)
        previous = None
        tests = []
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if not meta:
                continue
            assert meta["schema_version"] == 3
            if meta["grade"]:
                assert meta["locked"] and cell.cell_type == "code"
                assert previous in ("solution", "tests"), f"{cell.id} must follow a graded cell"
                tree = ast.parse(cell.source)
                assert not isinstance(tree.body[-1], ast.Expr), f"{cell.id} ends in an expression"
                hidden = "### BEGIN HIDDEN TESTS" in cell.source
                assert hidden == (folder == "solutions"), cell.id
                tests.append((meta["grade_id"], meta["points"]))
                previous = "tests"
            elif meta["solution"]:
                marker = "### BEGIN SOLUTION" if folder == "solutions" else "raise NotImplementedError()"
                assert marker in cell.source
                previous = "solution"
        assert tests == [(c.grade_id, c.points) for c in decl.cells]


@pytest.mark.parametrize("name", sorted(all_assignments()))
def test_solutions_pass_every_check_in_process(name, repo_root, capsys):
    nb = nbformat.read(repo_root / "solutions" / name / f"{name}.ipynb", as_version=4)
    namespace = {"__name__": "__main__"}
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, f"<{cell.id}>", "exec"), namespace)
    out = capsys.readouterr().out
    checks = [cid for c in all_assignments()[name].cells for cid in c.checks]
    for cid in checks:
        assert f"passed {cid} (visible test)" in out and f"passed {cid} (hidden test)" in out


def test_feedback_preprocessor_scrubs_hidden_tests():
    from normlab_grading.grade.nbgrader_ext import FeedbackWithoutHiddenTests

    source = ('_ = check("bn_forward", f)\n### BEGIN HIDDEN TESTS\n'
              '_ = check("bn_forward", f, hidden=True)\n### END HIDDEN TESTS')
    cell = nbformat.v4.new_code_cell(source, execution_count=7)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "t", "locked": True, "points": 1,
                                 "solution": False, "schema_version": 3, "task": False}
    cell.outputs = [nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="batchnorm_forward: wrong",
        traceback=["\x1b[0;31mAssertionError\x1b[0m Traceback",
                   "Cell \x1b[0;32mIn[7], line 3\x1b[0m\n----> 3 _ = check(\"bn_forward\", f, hidden=True)",
                   "File checks.py:114, in check\n raise AssertionError(msg)",
                   "AssertionError: batchnorm_forward: wrong"])]
    cell, _ = FeedbackWithoutHiddenTests().preprocess_cell(cell, {}, 0)
    text = cell.source + "".join(cell.outputs[0].traceback)
    assert "hidden=True" not in text and "HIDDEN" not in text
    assert "batchnorm_forward: wrong" in text


def test_authoring_refuses_a_solutions_folder_without_assignment(tmp_path, monkeypatch, capsys):
    """A folder of solutions/ that no assignment declares (renamed or removed) would still be
    released and graded: `make exercises` and `--check` stop and name it; nothing is deleted."""
    import shutil

    import authoring

    solutions = tmp_path / "solutions"
    shutil.copytree(authoring.SOLUTIONS, solutions)
    (solutions / "99-ghost").mkdir()
    (solutions / "99-ghost" / "99-ghost.ipynb").write_text("{}")
    monkeypatch.setattr(authoring, "ROOT", tmp_path)
    monkeypatch.setattr(authoring, "SOLUTIONS", solutions)
    for argv in (["--check"], []):
        assert authoring.main(argv) == 1
        assert "solutions/99-ghost" in capsys.readouterr().out
    assert (solutions / "99-ghost" / "99-ghost.ipynb").exists()
    shutil.rmtree(solutions / "99-ghost")
    assert authoring.main(["--check"]) == 0
    with pytest.raises(SystemExit):
        authoring.main(["99-nope"])
