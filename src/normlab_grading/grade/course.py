"""The course as the grader sees it: its nbgrader configuration, its assignments, the
gradebook, and the ``Bundle`` each worker gets (trusted side, coordinator only).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

from .intake import AssignmentSpec, notebook_grade_ids

__all__ = ["Course", "load_config", "ensure_gradebook", "snapshot", "build_bundle"]

SIDE_CAR = ".normlab-sources.json"


def load_config(root: Path):
    """The course's nbgrader configuration (``root/nbgrader_config.py``), as nbgrader loads it."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(root) / "nbgrader_config.py"
    if not path.exists():
        return Config()
    saved = dict(os.environ)
    try:
        cfg = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    finally:  # the config file may touch os.environ (PATH); keep ours
        os.environ.clear()
        os.environ.update(saved)
    return cfg


def _plain(value):
    """Config -> nested dicts/lists/str (classes become dotted names)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


class Course:
    """A course directory: ``nbgrader_config.py`` and ``<source>/<assignment>/*.ipynb``;
    ``overrides``: nbgrader options given on the command line (a traitlets Config), applied
    over the file's, as nbgrader's apps apply them."""

    def __init__(self, root: str | os.PathLike, overrides=None):
        self.root = Path(root).resolve()
        self.config = load_config(self.root)
        self.overrides = json.dumps(_plain(overrides or {}), sort_keys=True)
        if overrides:
            self.config.merge(overrides)
        source = "source"
        try:
            source = self.config.CourseDirectory.source_directory or "source"
        except AttributeError:
            pass
        if not isinstance(source, str):
            source = "source"
        self.source = self.root / source

    def assignments(self) -> list[str]:
        if not self.source.is_dir():
            return []
        return sorted(p.name for p in self.source.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.ipynb")))

    def notebooks(self, assignment: str) -> list[Path]:
        return sorted(p for p in (self.source / assignment).glob("*.ipynb")
                      if not p.name.startswith("."))

    def spec(self, assignment: str) -> AssignmentSpec:
        nbs = self.notebooks(assignment)
        return AssignmentSpec(
            name=assignment, notebooks=tuple(p.stem for p in nbs),
            grade_ids={p.stem: frozenset(notebook_grade_ids(p.read_text())) for p in nbs})

    def source_digest(self, assignment: str) -> str:
        h = hashlib.sha256()
        base = self.source / assignment
        for p in sorted(base.rglob("*")):
            if p.is_file() and ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(base)).encode() + b"\0" + p.read_bytes() + b"\0")
        cfg = self.root / "nbgrader_config.py"
        if cfg.exists():
            h.update(cfg.read_bytes())
        if self.overrides != "{}":  # command-line options build the gradebook too
            h.update(self.overrides.encode())
        return h.hexdigest()


# ----------------------------------------------------------------------------- gradebook
def _has_assignment(db: Path, assignment: str) -> bool:
    if not db.exists():
        return False
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = con.execute("select count(*) from assignment where name = ?", (assignment,)).fetchone()
            return bool(row and row[0])
        finally:
            con.close()
    except sqlite3.Error:
        return False


def ensure_gradebook(course: Course, assignment: str, db: Path, log=print) -> None:
    """Make sure the gradebook ``db`` holds ``assignment`` as the current source defines it
    (running nbgrader's generate_assignment in a temporary copy of the course when it does
    not, or when the source changed since normlab-grade last put it there)."""
    db = Path(db).resolve()
    side = db.with_name(db.name + SIDE_CAR)
    known = {}
    if side.exists():
        try:
            known = json.loads(side.read_text())
        except (OSError, ValueError):
            known = {}
    digest = course.source_digest(assignment)
    present = _has_assignment(db, assignment)
    if present and (assignment not in known or known[assignment] == digest):
        return  # an instructor's gradebook we did not fill, or an up-to-date one
    _generate(course, assignment, db)
    known[assignment] = digest
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
    os.replace(tmp, side)


def _generate(course: Course, assignment: str, db: Path) -> None:
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="normlab-gen-") as tmp:
        tmp = Path(tmp)
        src_dir = course.source.name
        shutil.copytree(course.source / assignment, tmp / src_dir / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        cfg = Config(copy.deepcopy(course.config))
        cfg.CourseDirectory.root = str(tmp)
        cfg.CourseDirectory.source_directory = src_dir
        cfg.CourseDirectory.release_directory = "release"
        cfg.CourseDirectory.db_url = f"sqlite:///{db}"
        cfg.CourseDirectory.assignment_id = assignment
        coursedir = CourseDirectory(config=cfg)
        app = GenerateAssignment(coursedir=coursedir, config=cfg)
        app.force = True
        app.create_assignment = True
        cwd = os.getcwd()
        saved_path = os.environ.get("PATH", "")
        import sys

        bindir = os.path.dirname(sys.executable)
        if bindir not in saved_path.split(os.pathsep):
            os.environ["PATH"] = bindir + os.pathsep + saved_path  # nbgrader runs alembic
        try:
            app.start()
        finally:
            os.chdir(cwd)
            os.environ["PATH"] = saved_path


def snapshot(db: Path) -> bytes:
    """A consistent copy of the sqlite file ``db`` (sqlite's backup API)."""
    with tempfile.TemporaryDirectory(prefix="normlab-snap-") as tmp:
        out = Path(tmp) / "snap.db"
        src = sqlite3.connect(f"file:{Path(db).resolve()}?mode=ro", uri=True)
        dst = sqlite3.connect(out)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return out.read_bytes()


def _gradebook_source_digest(db: Path, assignment: str) -> str:
    """Hash of what the gradebook says about the assignment's cells (what workers restore)."""
    con = sqlite3.connect(f"file:{Path(db).resolve()}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "select n.name, s.name, s.cell_type, s.locked, s.source, s.checksum "
            "from source_cell s join notebook n on s.notebook_id = n.id "
            "join assignment a on n.assignment_id = a.id where a.name = ? "
            "order by n.name, s.name", (assignment,)).fetchall()
        rows += con.execute(
            "select n.name, b.name, g.max_score, g.cell_type, 0, '' from grade_cells g "
            "join base_cell b on g.id = b.id join notebook n on b.notebook_id = n.id "
            "join assignment a on n.assignment_id = a.id "
            "where a.name = ? order by n.name, b.name", (assignment,)).fetchall()
    finally:
        con.close()
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()


# ----------------------------------------------------------------------------- bundle
def _hidden_lines(source_text: str) -> list[str]:
    nb = json.loads(source_text)
    lines = []
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        inside = False
        for line in src.split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
    return lines


def _grade_cells(source_text: str) -> list:
    nb = json.loads(source_text)
    out = []
    for cell in nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if meta.get("grade"):
            out.append((meta["grade_id"], float(meta.get("points", 0)), cell.get("cell_type")))
    return out


def build_bundle(course: Course, assignment: str, db: Path, seed: int, expose_libraries: bool = False):
    """The ``pipeline.Bundle`` of ``assignment`` (db: the gradebook, already ensured)."""
    import normlab

    from normlab_grading.check import casefile

    from . import registry
    from .cases import make_case
    from .pipeline import GRADER_VERSION, Bundle
    from .sandbox import masked_modules

    nbs = course.notebooks(assignment)
    sources = {p.stem: p.read_text() for p in nbs}
    files = {}
    base = course.source / assignment
    for p in sorted(base.rglob("*")):
        if (p.is_file() and p.suffix != ".ipynb" and ".ipynb_checkpoints" not in p.parts
                and "__pycache__" not in p.parts):
            files[str(p.relative_to(base))] = p.read_bytes()
    try:
        asg = registry.get_assignment(assignment)
        cells = {c.grade_id: tuple(c.checks) for c in asg.cells}
    except KeyError:
        cells = {}
    checks = registry.all_checks()
    wanted = set(cid for cs in cells.values() for cid in cs)
    for text in sources.values():  # checks a notebook calls outside its test cells
        wanted |= set(re.findall(r"check\(\s*[\"']([A-Za-z0-9_.-]+)[\"']", text)) & set(checks)
    cases = {}
    with tempfile.TemporaryDirectory(prefix="normlab-cases-") as tmp:
        for cid in sorted(wanted):  # hidden cases only (the visible ones are package data)
            path = casefile.case_path(tmp, cid, True)
            casefile.save_case(path, make_case(cid, seed, True))
            cases[os.path.basename(path)] = Path(path).read_bytes()
    functions = {cid: chk.function for cid, chk in checks.items()}
    config = _plain(course.config)
    mask = masked_modules(list(sources.values()), expose=expose_libraries)
    grade_cells = {stem: _grade_cells(text) for stem, text in sources.items()}
    hidden = {stem: _hidden_lines(text) for stem, text in sources.items()}
    h = hashlib.sha256()
    for part in (GRADER_VERSION, normlab.__version__, assignment, json.dumps(config, sort_keys=True),
                 json.dumps(sorted(cells.items())), json.dumps(mask), str(seed),
                 _gradebook_source_digest(db, assignment), course.source_digest(assignment),
                 _code_digest(assignment, wanted)):
        h.update(str(part).encode() + b"\0")
    for name in sorted(cases):
        h.update(name.encode() + cases[name])
    return Bundle(assignment=assignment, notebooks=tuple(p.stem for p in nbs),
                  gradebook=snapshot(db), config=config, files=files, cases=cases, cells=cells,
                  functions=functions, grade_cells=grade_cells, hidden_lines=hidden, mask=mask,
                  seed=int(seed), digest=h.hexdigest())


def _code_digest(assignment: str, check_ids, grading_root: Path | None = None,
                 normlab_root: Path | None = None) -> str:
    """Hash of the code that decides the grades of ``assignment`` (whose notebooks run the
    checks ``check_ids``): normlab's references, and the grader's two halves
    (``normlab_grading``: the student side with its data, and the trusted side), each with
    the parts about OTHER assignments left out (their folders under ``grade/assignments/``,
    the calling protocols and visible data of checks this assignment does not run, their
    entries of ``check/data/checks.json``). The book's figure code (``normlab_book``) is
    another package and is left out too. So editing a figure or another assignment re-grades
    nothing; editing the grader or this assignment re-grades its stored submissions.
    ``grading_root``/``normlab_root``: the packages' folders (default: the imported ones)."""
    import normlab
    import normlab_grading

    normlab_root = Path(normlab_root or Path(normlab.__file__).resolve().parent)
    grading_root = Path(grading_root or Path(normlab_grading.__file__).resolve().parent)
    check_ids = set(check_ids)
    folders = grading_root / "grade" / "assignments"
    from .assignments import declared_name

    own = {p.parent.name for p in folders.glob("*/__init__.py") if declared_name(p) == assignment}
    spec_file = grading_root / "check" / "data" / "checks.json"
    specs = [c for c in json.loads(spec_file.read_text())["checks"] if c["id"] in check_ids] \
        if spec_file.exists() else []
    refs = [ref for c in specs for ref in (c["call"], c["describe"],
                                           *(m["matches"] for m in c["mistakes"] if m["matches"]))]
    protocols = {ref["name"].split(":")[0].rsplit(".", 1)[-1] for ref in refs}

    def about_another(rel: Path) -> bool:
        parts = rel.parts
        if parts[:2] == ("grade", "assignments") and len(parts) > 3:
            return parts[2] not in own
        if parts[:2] == ("check", "protocols") and len(parts) == 3 and rel.suffix == ".py":
            return rel.stem != "__init__" and rel.stem not in protocols
        if parts[:3] == ("check", "data", "visible"):
            return rel.name.split(".visible.")[0] not in check_ids
        return rel == Path("check", "data", "checks.json")  # hashed below, this assignment's part

    h = hashlib.sha256()
    for root in (normlab_root, grading_root):
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root)
            if (not p.is_file() or "__pycache__" in p.parts
                    or (root == grading_root and about_another(rel))):
                continue
            h.update(f"{root.name}/{rel}".encode() + b"\0" + p.read_bytes())
    h.update(json.dumps(specs, sort_keys=True).encode())
    return h.hexdigest()
