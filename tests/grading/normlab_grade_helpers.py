"""Shared by the normlab-grade tests: submissions built from the real notebooks, a
pre-made gradebook, and running the command."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SEED = "424242"


def solution_nb(assignment: str) -> dict:
    return json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())


def release_nb(assignment: str) -> dict:
    """The student release: exercises/ if present, else the solution with every solution
    region replaced by nbgrader's stub (what generate_assignment does)."""
    path = ROOT / "exercises" / assignment / f"{assignment}.ipynb"
    if path.exists():
        return json.loads(path.read_text())
    nb = solution_nb(assignment)
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            out, inside = [], False
            for line in src.split("\n"):
                if "### BEGIN SOLUTION" in line:
                    inside = True
                    indent = line[: len(line) - len(line.lstrip())]
                    out.append(f"{indent}# YOUR CODE HERE")
                    out.append(f"{indent}raise NotImplementedError()")
                elif "### END SOLUTION" in line:
                    inside = False
                elif not inside:
                    out.append(line)
            cell["source"] = "\n".join(out)
    return nb


def strip_markers(nb: dict) -> dict:
    """The solution as a student would hand it in (no BEGIN/END SOLUTION lines)."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = "\n".join(line for line in src.split("\n")
                                   if "### BEGIN SOLUTION" not in line
                                   and "### END SOLUTION" not in line)
    return nb


def source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_test(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def index_of(nb: dict, gid: str) -> int:
    return next(i for i, c in enumerate(nb["cells"]) if grade_id(c) == gid)


def code_cell(src: str) -> dict:
    return {"cell_type": "code", "id": os.urandom(4).hex(), "metadata": {},
            "execution_count": None, "outputs": [], "source": src}


def set_solution(nb: dict, gid: str, src: str) -> dict:
    nb["cells"][index_of(nb, gid)]["source"] = src
    return nb


def write_nb(path: Path, nb: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


def prepared_gradebook(directory: Path, assignments) -> Path:
    """A gradebook holding ``assignments`` (nbgrader generate_assignment), made once."""
    from normlab_grading.grade.course import Course, ensure_gradebook

    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "gradebook.db"
    course = Course(ROOT)
    for a in assignments:
        ensure_gradebook(course, a, db)
    return db


def copy_gradebook(db: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for f in db.parent.iterdir():
        if f.name.startswith("gradebook.db"):
            shutil.copy2(f, out / f.name)


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = str(BIN) + os.pathsep + e.get("PATH", "")
    e["NORMLAB_GRADING_SEED"] = SEED
    e.pop("NORMLAB_GRADING_RECORD", None)
    return e


def normlab_grade(*args, timeout=900, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "normlab-grade"), *map(str, args)], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=timeout, **kw)


def results(out: Path, assignment: str) -> dict:
    base = out / "results" / assignment
    return {p.stem: json.loads(p.read_text()) for p in sorted(base.glob("*.json"))}


def cell_scores(rec: dict) -> dict:
    return {c["grade_id"]: c["score"] for nb in rec["notebooks"].values() for c in nb["cells"]}


def autograded_text(out: Path, rec: dict) -> str:
    texts = []
    for nb in rec["notebooks"].values():
        if nb.get("autograded"):
            node = nbformat.read(str(out / nb["autograded"]), as_version=4)
            for cell in node.cells:
                for o in cell.get("outputs", []):
                    texts.append(str(o.get("text", "")) + str(o.get("evalue", "")))
    return "\n".join(texts)


def zip_flag_encrypted(data: bytes, name: str) -> bytes:
    """The zip ``data`` with member ``name`` flagged as encrypted in both of its headers."""
    out = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    out[info.header_offset + 6] |= 1
    pos = 0
    while (pos := out.find(b"PK\x01\x02", pos)) >= 0:
        n = int.from_bytes(out[pos + 28:pos + 30], "little")
        if bytes(out[pos + 46:pos + 46 + n]) == name.encode():
            out[pos + 8] |= 1
        pos += 4
    return bytes(out)


def zip_bad_crc(data: bytes, name: str) -> bytes:
    """The zip ``data`` with the first byte of member ``name``'s data flipped."""
    out = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    off = info.header_offset
    start = off + 30 + int.from_bytes(out[off + 26:off + 28], "little") \
        + int.from_bytes(out[off + 28:off + 30], "little")
    out[start] ^= 0xFF
    return bytes(out)
