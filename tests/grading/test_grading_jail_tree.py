"""The jail's Python tree holds no answers: inside a real jail (02-zscore, which masks
torch, scikit-learn and scipy), every .py file reachable from the jail's sys.path is compiled
(not imported) and the fingerprints of all its code objects (recursively) are compared with
those of the references outside: every module of the real normlab package but
normlab/data.py (which the student lib ships on purpose), the whole trusted side of the
grader (normlab_grading/grade/: judging, the answer models, the mistake models, hidden cases)
and the book's code (normlab_book/): none of their code may be in the jail.

A fingerprint is sha256 of the code object's qualified name, bytecode, names and non-code
constants (for an anonymous one, a comprehension or a lambda, also that of the code object
holding it); code objects with an empty body (a bare ``pass``, an empty module) are left
out of the references, as any file has them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import normlab_grade_helpers as H

pytestmark = pytest.mark.slow

A = "02-zscore"
SLICES = 48  # cells the walk is spread over (the course's per-cell timeout is 30 s)

FINGERPRINT = r'''
import hashlib, types

def _consts(co):
    return repr(tuple(c for c in co.co_consts if not isinstance(c, types.CodeType)))

def fingerprints(co, out, parent=""):
    # an anonymous code object (comprehension, lambda, generator expression) is generic:
    # it is fingerprinted together with the code object that holds it
    anonymous = co.co_qualname.rsplit(".", 1)[-1].startswith("<") and co.co_name != "<module>"
    h = hashlib.sha256()
    for part in (parent if anonymous else "", co.co_qualname, co.co_code.hex(),
                 repr(co.co_names), _consts(co)):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    fp = h.hexdigest()[:24]
    out.append((fp, co.co_qualname, len(co.co_code), len(co.co_names)))
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            fingerprints(c, out, fp)
    return out
'''


def _reference_fingerprints() -> dict:
    ns: dict = {}
    exec(FINGERPRINT, ns)
    src = H.ROOT / "src"
    refs = {}
    paths = [p for pkg in ("normlab", "normlab_grading/grade", "normlab_book")
             for p in (src / pkg).rglob("*.py")]
    assert len(paths) > 40, paths  # the walk has something to look for
    for path in sorted(paths):
        rel = path.relative_to(src).as_posix()
        if rel == "normlab/data.py":
            continue
        code = compile(path.read_bytes(), str(path), "exec")
        for fp, qual, ncode, nnames in ns["fingerprints"](code, []):
            if nnames == 0 and ncode <= 8:  # an empty body: everybody has one
                continue
            refs[fp] = f"{rel}:{qual}"
    return refs


def _walker_cells(refs: dict) -> list[str]:
    setup = FINGERPRINT + r'''
import os, sys
REFS = set(%s)
files = []
for entry in list(sys.path):
    top = os.path.abspath(entry or os.getcwd())
    if not os.path.isdir(top):
        continue
    for root, dirs, names in os.walk(top):
        dirs.sort()
        for n in sorted(names):
            if n.endswith(".py"):
                files.append(os.path.join(root, n))
files = sorted(set(files))
MATCHES, ERRORS, CODE_OBJECTS = [], [], [0]
print("files to compile:", len(files), "from", sys.path)
''' % json.dumps(sorted(refs))
    work = r'''
import warnings
for path in files[{i}::{n}]:
    try:
        with open(path, "rb") as fh:
            code = compile(fh.read(), path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, OSError) as exc:
        ERRORS.append((path, type(exc).__name__))
        continue
    for fp, qual, _nc, _nn in fingerprints(code, []):
        CODE_OBJECTS[0] += 1
        if fp in REFS:
            MATCHES.append((path, qual, fp))
'''
    report = ('print("WALKED", len(files), "files,", CODE_OBJECTS[0], "code objects,", '
              'len(ERRORS), "not compilable")\n'
              'print("MATCHES", len(MATCHES))\n'
              'for m in MATCHES[:300]:\n    print("MATCH", *m)\n')
    return [setup] + ["import warnings\nwarnings.simplefilter('ignore')\n" +
                      work.format(i=i, n=SLICES) for i in range(SLICES)] + [report]


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tree")
    refs = _reference_fingerprints()
    nb = H.strip_markers(H.solution_nb(A))
    for src in _walker_cells(refs):
        nb["cells"].append(H.code_cell(src))
    folder = tmp / "subs"
    H.write_nb(folder / "walker" / f"{A}.ipynb", nb)
    db = H.prepared_gradebook(tmp / "gb", [A])
    out = tmp / "out"
    H.copy_gradebook(db, out)
    proc = H.normlab_grade(folder, "--assignment", A, "--out", out, "--workers", 1,
                           "--timeout", 1500, timeout=1800)
    rec = H.results(out, A).get("walker")
    assert rec is not None, proc.stderr[-3000:]
    return {"refs": refs, "rec": rec, "text": H.autograded_text(out, rec), "proc": proc}


def test_the_walk_ran_in_the_jail(walk):
    rec, text = walk["rec"], walk["text"]
    assert (rec["status"], rec["score"]) == ("graded", 20), (rec["status"], rec["reason"])
    assert len(walk["refs"]) > 500
    line = next(ln for ln in text.splitlines() if ln.startswith("WALKED"))
    files, objects = int(line.split()[1]), int(line.split()[3])
    assert files > 1000 and objects > 10000, line  # the venv and the stdlib were walked
    assert "/grading/lib" in text  # the student lib is on the jail's sys.path


def test_no_reference_code_in_the_jail(walk):
    text, refs = walk["text"], walk["refs"]
    matches = [ln.split()[1:] for ln in text.splitlines() if ln.startswith("MATCH ")]
    summary = sorted({(refs[fp], path) for path, _qual, fp in matches})
    assert "MATCHES 0" in text, "\n".join(f"{r}  found in  {p}" for r, p in summary[:80])
