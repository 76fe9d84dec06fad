"""Every assignment (discovered) without nbgrader, in process.

- every row of each assignment's "mistake -> score" table: the solution code with that
  mistake (the assignment's ``submissions.VARIANTS``) fails exactly the declared test cells,
  each with the declared message, and scores what the notebook's table says; the code that
  calls the reference or a library routine (``submissions.CHEATS``) fails the declared cells
  naming the routine;
- the models of answers where normlab has no reference (the assignments' ``answers``) are
  one mistake away from the truth: without a mistake they give the references' answers
  (``torch.nn.BatchNorm1d``, ``normlab.training``);
- the group-norm predicate recognises a per-group affine map and nothing else;
- the experiment's tripwire allowlist lets torch's BatchNorm1d through and nothing more;
- a notebook imports torch only if one of its checks allows a torch routine (the sandbox
  masks torch for the others).

The checks themselves (references pass, every mistake is named on visible and hidden cases)
are covered for every assignment by tests/grading/test_grading_checks.py; the grade cache key
per assignment is tested at the end.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from normlab_grading.check.checking import run_student
from normlab_grading.check.tripwire import Tripwire
from normlab_grading.grade import assignments
from normlab_grading.grade.assignments.ch04_test_time import answers as answers_04
from normlab_grading.grade.assignments.ch05_ics import answers as answers_05
from normlab_grading.grade.assignments.ch06_alternatives import answers as answers_06
from normlab_grading.check.protocols.ch06 import _per_group_affine
from normlab_grading.grade.cases import make_case
from normlab_grading.grade.judge import judge
from normlab_grading.grade.registry import get_assignment, get_check

ASSIGNMENTS = list(assignments.packages())
ROOT = Path(__file__).resolve().parents[2]


def VARIANTS(name):  # noqa: N802  (the submissions' table)
    return assignments.submissions(name).VARIANTS


def CHEATS(name):  # noqa: N802
    return assignments.submissions(name).CHEATS


# ----------------------------------------------------------------------------- in process
def _strip(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


_BASE: dict = {}


def _notebook(name):
    """(plain namespace, solution sources, [(grade_id, test source)]) of the committed
    solution notebook (tests/grading/test_grading_checks.py checks it equals its source);
    the plain cells before the last test cell are run once here."""
    if name not in _BASE:
        nb = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
        graded = [i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade")]
        namespace = {"__name__": "__main__"}
        solutions, tests = {}, []
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution"):
                solutions[meta["grade_id"]] = cell.source
            elif meta.get("grade"):
                tests.append((meta["grade_id"], cell.source))
            elif i < graded[-1]:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(cell.source, f"<{cell.id}>", "exec"), namespace)
        _BASE[name] = (namespace, solutions, tests)
    return _BASE[name]


def run_in_process(name, edits=()):
    """grade_id -> error text ('' if the test cell passed) for the solution with ``edits``."""
    base, solutions, tests = _notebook(name)
    code = dict(solutions)
    for gid, old, new in edits:
        assert old in code[gid], f"{name}: {old!r} not in solution cell {gid}"
        code[gid] = code[gid].replace(old, new, 1)
    namespace = dict(base)
    with contextlib.redirect_stdout(io.StringIO()):
        for gid, source in code.items():
            exec(compile(_strip(source), f"<{gid}>", "exec"), namespace)
        results = {}
        for gid, source in tests:
            try:
                exec(compile(source, f"<{gid}>", "exec"), namespace)
                results[gid] = ""
            except Exception as exc:  # noqa: BLE001 - a failing test cell
                results[gid] = f"{type(exc).__name__}: {exc}" or type(exc).__name__
    return results


def _message(name, grade_id, key):
    """Text the failing cell must show, or None for 'any error' (the student's exception)."""
    if key == "exception":
        return None
    if key == "generic":
        return "is wrong"
    chk = get_check(get_assignment(name).cell(grade_id).checks[0])
    return chk.mistake(key).message


ROWS = [(name, row) for name in ASSIGNMENTS for row in get_assignment(name).expected]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_variants_cover_every_row(name):
    rows = {(r.check, r.mistake) for r in get_assignment(name).expected}
    assert set(VARIANTS(name)) == rows


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_passes_in_process(name):
    results = run_in_process(name)
    assert all(not text for text in results.values()), results


@pytest.mark.parametrize("name, row", ROWS, ids=[f"{n}:{r.check}/{r.mistake}" for n, r in ROWS])
def test_each_mistake_scores_what_the_table_says(name, row):
    decl = get_assignment(name)
    results = run_in_process(name, VARIANTS(name)[(row.check, row.mistake)])
    failed = {g for g, text in results.items() if text}
    assert failed == set(row.fails), results
    for gid in row.fails:
        want = _message(name, gid, row.messages.get(gid, row.mistake))
        assert want is None or want in results[gid], (gid, results[gid])
    score = decl.total - sum(decl.cell(g).points for g in failed)
    assert score == decl.expected_score(row)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_calling_the_reference_scores_zero_for_that_part(name):
    assert len(CHEATS(name)) >= 2
    cells = {c.grade_id for c in get_assignment(name).cells}
    for edits, fails, routine in CHEATS(name):
        results = run_in_process(name, edits)
        failed = {g for g, text in results.items() if text}
        fails = cells if fails == "all" else set(fails)
        assert failed == fails, (routine, results)
        for gid in fails:
            assert f"called {routine}" in results[gid], results[gid]


# ----------------------------------------------------------------------------- answer models
@pytest.mark.parametrize("cid", ["bn_layer_train", "bn_layer_cumulative", "bn_layer_eval",
                                 "bn_layer_eps", "bn_layer_3d"])
def test_layer_replay_without_mistake_matches_torch(cid):
    chk = get_check(cid)
    for seed, hidden in [(0, False), (5, True), (17, True)]:
        case = make_case(cid, seed, hidden)
        verdict = judge(cid, case, answers_04.bn_layer_replay(case), hidden=hidden)
        assert verdict.passed, verdict.message
    # and against torch itself, in float64
    torch = pytest.importorskip("torch")
    case = make_case(cid, 3, True)
    bn = torch.nn.BatchNorm1d(case["gamma"].size, eps=case["eps"], momentum=case["momentum"])
    bn = bn.double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(case["gamma"]))
        bn.bias.copy_(torch.tensor(case["beta"]))
        ours = answers_04.bn_layer_replay(case)
        for i, mode in enumerate(case["modes"]):
            bn.train(mode == "train")
            out = bn(torch.tensor(case[f"x{i}"])).numpy()
            np.testing.assert_allclose(ours[f"out{i}"], out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["running_var"], bn.running_var.numpy(), rtol=1e-13)
    assert int(ours["num_batches_tracked"]) == int(bn.num_batches_tracked)
    assert chk.tol <= 1e-9


def test_article002_run_equals_normlab_training():
    torch = pytest.importorskip("torch")
    from normlab import data, training

    tensors = data.to_tensors(data.article002_classification(seed=0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for use_bn in (True, False):
            ours = answers_05.article002_run(5, use_bn, 2)
            torch.manual_seed(5)
            model = training.mlp(20, (64, 64), norm="bn" if use_bn else None)
            hist = training.train(model, tensors, epochs=2, lr=0.1, optimizer="sgd", seed=5)
            np.testing.assert_allclose(ours, hist.train_loss, rtol=1e-6)
    finally:
        torch.set_num_threads(threads)
    assert get_check("experiment_bn").tol >= 1e-5  # float32 rounding of other loops


def test_group_norm_predicate_recognises_per_group_affine_only():
    chk = get_check("group_norm")
    for seed, hidden in [(0, False), (2, True), (9, True)]:
        case = make_case("group_norm", seed, hidden)
        ref = chk.reference(case)["out"]
        x_hat = answers_06.groupnorm_x_hat(case)
        G, c = case["num_groups"], case["x"].shape[1]
        per_group = np.repeat(np.linspace(0.5, 2.0, G), c // G)[None, :, None, None]
        wrong = per_group * x_hat + np.repeat(np.arange(G), c // G)[None, :, None, None]
        assert not _per_group_affine(case, "out", ref, {"out": ref})
        assert _per_group_affine(case, "out", wrong, {"out": ref})
        assert judge("group_norm", case, {"out": wrong}).mistake_id == "affine_per_group"


# ----------------------------------------------------------------------------- tripwire
def _experiment_with(norm_call):
    def run_experiment(seed, use_bn, epochs=3):
        return norm_call()

    return run_experiment


def test_experiment_allows_torch_batchnorm_and_nothing_else():
    torch = pytest.importorskip("torch")
    chk = get_check("experiment_bn")
    case = make_case("experiment_bn")

    def uses_bn():
        torch.nn.BatchNorm1d(3)(torch.randn(4, 3))
        return np.zeros(case["epochs"])

    def uses_layer_norm():
        torch.nn.functional.layer_norm(torch.randn(4, 3), (3,))
        return np.zeros(case["epochs"])

    def uses_normlab_training():
        from normlab import training

        training.mlp(20)
        return np.zeros(case["epochs"])

    assert run_student(chk, _experiment_with(uses_bn), case).tripwire is None
    with Tripwire() as tw:
        uses_bn()
    assert tw.hit and tw.hit.startswith("torch.nn.modules.batchnorm")
    assert run_student(chk, _experiment_with(uses_layer_norm), case).tripwire
    assert run_student(chk, _experiment_with(uses_normlab_training), case).tripwire == \
        "normlab.training.mlp"
    # the other checks of the assignment do not allow it
    assert get_check("gradient_change_diff").allowed == ()


def test_answer_models_are_forbidden_in_graded_code():
    case = make_case("fold_linear")

    def fold(W, b, gamma, beta, running_mean, running_var, eps=1e-5):
        answers_04.fold_variant(dict(case), "no_sqrt")
        return W, b

    run = run_student(get_check("fold_linear"), fold, case)
    assert run.tripwire and run.tripwire.startswith(
        "normlab_grading.grade.assignments.ch04_test_time.answers")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_notebooks_import_torch_only_where_a_check_allows_it(name):
    """The sandbox masks torch for a notebook that does not import it (seconds per
    autograde): only an assignment with a check whose graded job uses torch imports it."""
    checks = {cid for cell in get_assignment(name).cells for cid in cell.checks}
    uses_torch = any(r.startswith("torch") for cid in checks for r in get_check(cid).allowed)
    for folder in ("solutions", "exercises"):
        nb = nbformat.read(ROOT / folder / name / f"{name}.ipynb", as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        imports = bool(re.search(r"^\s*(import|from)\s+torch", code, re.M))
        assert uses_torch or not imports, (name, folder)


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_pipeline_submissions_in_process(name):
    """The made-up submissions of tests/grading/test_grading_pipeline.py (mistakes packed several to a
    submission) score and explain as expected, in process: mistakes packed together must not
    interact."""
    import test_grading_pipeline as pipeline

    problems = []
    for st in pipeline.students_for(name):
        if st.untouched or st.transform or st.name in ("solution", "stderr_warning"):
            continue
        results = run_in_process(name, st.edits)
        failed = {g for g, text in results.items() if text}
        if failed != set(st.expect):
            problems.append(f"{st.name}: fails {sorted(failed)}, expected {sorted(st.expect)}")
        for gid, (_, key) in st.expect.items():
            if key is not None and key not in results.get(gid, ""):
                problems.append(f"{st.name}/{gid}: {key[:60]!r} not in {results.get(gid)!r}")
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- cache key
def test_grade_cache_key_covers_the_grader_and_this_assignment_only(tmp_path):
    """``course._code_digest``: editing another assignment (its folder, protocols, visible
    data or spec) re-grades nothing here; editing this one or the shared grader does."""
    import json
    import shutil

    import normlab_grading
    from normlab_grading.grade.course import _code_digest

    root = tmp_path / "normlab_grading"
    shutil.copytree(Path(normlab_grading.__file__).resolve().parent, root,
                    ignore=shutil.ignore_patterns("__pycache__"))
    ids = {name: {c for cell in get_assignment(name).cells for c in cell.checks}
           for name in ("02-zscore", "03-batchnorm-math")}

    def digests():
        return {name: _code_digest(name, ids[name], grading_root=root) for name in ids}

    def touch(rel):
        path = root / rel
        path.write_bytes(path.read_bytes() + b"\n# edited\n")

    before = digests()
    assert before["02-zscore"] != before["03-batchnorm-math"]
    for rel in ("grade/assignments/ch03_batchnorm_math/checks.py",
                "grade/assignments/ch03_batchnorm_math/notebook.py",
                "check/protocols/ch03.py", "check/data/visible/bn_forward.visible.npz"):
        touch(rel)
        after = digests()
        assert after["02-zscore"] == before["02-zscore"], rel
        assert after["03-batchnorm-math"] != before["03-batchnorm-math"], rel
        before = after
    spec_file = root / "check" / "data" / "checks.json"
    spec = json.loads(spec_file.read_text())
    next(c for c in spec["checks"] if c["id"] == "bn_forward")["tol"] *= 2
    spec_file.write_text(json.dumps(spec))
    after = digests()
    assert after["02-zscore"] == before["02-zscore"]
    assert after["03-batchnorm-math"] != before["03-batchnorm-math"]
    before = after
    for rel in ("grade/judge.py", "check/compare.py", "grade/assignments/__init__.py"):
        touch(rel)
        after = digests()
        assert all(after[n] != before[n] for n in ids), rel
        before = after


@pytest.mark.parametrize("line", ['NAME = "03-batchnorm-math"  # the course name',
                                  'NAME="03-batchnorm-math"',
                                  'NAME: str = "03-batchnorm-math"',
                                  "NAME = '03-batchnorm-math'\r"])
def test_grade_cache_key_finds_the_folder_whatever_the_form_of_name(tmp_path, line):
    """The cache key covers the assignment's own folder for any way of writing its NAME
    literal (a comment, no spaces, an annotation, CRLF): a points change in its checks.py
    changes the key."""
    import shutil

    import normlab_grading
    from normlab_grading.grade.course import _code_digest

    root = tmp_path / "normlab_grading"
    shutil.copytree(Path(normlab_grading.__file__).resolve().parent, root,
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = root / "grade" / "assignments" / "ch03_batchnorm_math" / "__init__.py"
    text = init.read_text()
    assert 'NAME = "03-batchnorm-math"\n' in text
    init.write_bytes(text.replace('NAME = "03-batchnorm-math"\n', line + "\n").encode())
    ids = {c for cell in get_assignment("03-batchnorm-math").cells for c in cell.checks}
    before = _code_digest("03-batchnorm-math", ids, grading_root=root)
    checks = root / "grade" / "assignments" / "ch03_batchnorm_math" / "checks.py"
    checks.write_text(checks.read_text() + "\n# points changed\n")
    assert _code_digest("03-batchnorm-math", ids, grading_root=root) != before


def test_declared_name_reads_only_a_top_level_string_literal(tmp_path):
    from normlab_grading.grade.assignments import declared_name

    cases = {'NAME = "a-b"\n': "a-b", 'NAME: str = "a-b"  # x\n': "a-b",
             'NAME = "a" + "b"\n': None, 'def f():\n    NAME = "a-b"\n': None,
             'OTHER = "a-b"\n': None, "NAME = (\n": None}
    for i, (text, want) in enumerate(cases.items()):
        path = tmp_path / f"init{i}.py"
        path.write_text(text)
        assert declared_name(path) == want, text
