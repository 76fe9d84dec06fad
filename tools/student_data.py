"""Write the student side's data from the trusted registry: ``make exercises`` runs it
(``python tools/student_data.py [--check]``, a repository script, not installed).

For every check, ``normlab_grading/check/data/``:

- ``checks.json``: the spec (function, labels, tolerance, allowed routines, the names of
  its calling protocol and case description, each mistake's id, message and predicate);
- ``visible/<check_id>.visible.npz``: the visible case, the expected outputs and every
  recognised mistake's outputs on it.

Deterministic. ``--check`` fails if the files are not what the registry gives (floats to
rounding), so a change to a check cannot ship stale data. Nothing of a hidden case
(seed, inputs or outputs) is written.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from normlab_grading.check import casefile
from normlab_grading.check.spec import PROTOCOLS

from normlab_grading.grade.cases import VISIBLE_SEED, make_case
from normlab_grading.grade.registry import all_assignments, all_checks

__all__ = ["DATA_DIR", "write_data", "main"]

DATA_DIR = Path(casefile.__file__).resolve().parent / "data"


def _ref(fn, what: str) -> dict:
    kwargs = {}
    if isinstance(fn, functools.partial):
        if fn.args:
            raise ValueError(f"{what}: a protocol partial may only bind keyword arguments")
        kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in fn.keywords.items()}
        fn = fn.func
    module, qualname = fn.__module__, fn.__qualname__
    if not module.startswith(PROTOCOLS) or "<" in qualname:
        raise ValueError(f"{what} is {module}.{qualname}: it must be a module-level function "
                         f"of {PROTOCOLS}* (the student side holds the protocols, nothing else)")
    return {"name": f"{module}:{qualname}", "kwargs": kwargs}


def _arrays(outputs) -> dict:
    return {str(k): np.asarray(v) for k, v in outputs.items()}


def write_data(dest: Path = DATA_DIR) -> list[str]:
    """Write the data into ``dest`` (replacing it); return the file names written. A file
    whose content equals the one already there (floats to rounding, as ``--check``
    compares) is kept as it is, so a regeneration changes only what really changed."""
    owner = {cid: a.name for a in all_assignments().values() for c in a.cells for cid in c.checks}
    specs = []
    tmp = Path(tempfile.mkdtemp(prefix="student-data-"))
    try:
        (tmp / "visible").mkdir()
        for cid, chk in sorted(all_checks().items()):
            mistakes = []
            case = make_case(cid, VISIBLE_SEED, False)
            with np.errstate(all="ignore"):
                expected = _arrays(chk.reference(case))
                wrong = {}
                for m in chk.mistakes:
                    if m.wrong is not None:
                        wrong[m.id] = _arrays(m.wrong(case))
            for m in chk.mistakes:
                mistakes.append({
                    "id": m.id, "message": m.message, "has_outputs": m.id in wrong,
                    "matches": _ref(m.matches, f"{cid}/{m.id} matches") if m.matches else None,
                    "keys": list(m.keys),
                })
            specs.append({
                "id": cid, "assignment": owner.get(cid, ""), "function": chk.function,
                "call": _ref(chk.call, f"{cid} call"), "describe": _ref(chk.describe, f"{cid} describe"),
                "labels": dict(chk.labels), "tol": chk.tol, "floor": chk.floor,
                "allowed": list(chk.allowed), "mistakes": mistakes,
            })
            casefile.save_case(casefile.case_path(str(tmp / "visible"), cid, False),
                               {"case": case, "expected": expected, "mistakes": wrong})
        (tmp / "checks.json").write_text(json.dumps({"format": 1, "checks": specs}, indent=1,
                                                    sort_keys=True, ensure_ascii=False) + "\n")
        changed = set(_differences(tmp, dest))
        for path in tmp.rglob("*"):
            rel = str(path.relative_to(tmp))
            if path.is_file() and rel not in changed:
                shutil.copy2(dest / rel, path)  # equal to rounding: keep the committed bytes
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())


def _close(a, b) -> bool:
    """Equal data, floats to rounding (1e-12 relative): some references (the BatchNorm layer)
    sum in an order that depends on the thread count."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind == "f":
            return bool(np.allclose(a, b, rtol=1e-12, atol=1e-12 * max(1.0, float(np.nanmax(np.abs(b), initial=0))), equal_nan=True))
        return bool(np.array_equal(a, b))
    return casefile.same_case(a, b)


def _differences(a: Path, b: Path) -> list[str]:
    files = lambda root: {str(p.relative_to(root)): p for p in root.rglob("*")  # noqa: E731
                          if p.is_file()} if root.exists() else {}
    fa, fb = files(a), files(b)
    diff = []
    for k in sorted(set(fa) | set(fb)):
        if k not in fa or k not in fb:
            diff.append(k)
        elif fa[k].read_bytes() != fb[k].read_bytes() and not (
                k.endswith(".npz") and _close(casefile.load_case(str(fa[k])), casefile.load_case(str(fb[k])))):
            diff.append(k)
    return diff


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed data is stale")
    args = ap.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as d:
            write_data(Path(d) / "data")
            diff = _differences(Path(d) / "data", DATA_DIR)
        if diff:
            print("student-side data is stale (run `make exercises`):", ", ".join(diff[:10]))
            return 1
        print(f"student-side data is up to date ({DATA_DIR})")
        return 0
    names = write_data()
    print(f"wrote {len(names)} files into {DATA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
