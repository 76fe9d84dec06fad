"""Intake: turn a folder or zip of submissions into one clean ``Submission`` per student and
assignment, or a ``Rejection`` with a reason. Nothing here runs student code.

Accepted layouts (mixed freely in one folder or zip; a leading ``submitted/`` and any
enclosing folders are ignored):

=====================================  ==================================================
layout                                 example
=====================================  ==================================================
nbgrader course                        ``submitted/alice/02-zscore/02-zscore.ipynb``
                                       (``timestamp.txt`` beside it is read)
nbgrader exchange inbound              ``alice+02-zscore+2025-03-01 10:00:00.000000 UTC``
                                       ``[+random]/02-zscore.ipynb``
Canvas bulk download                   ``doejane_12345_67890_02-zscore.ipynb``,
                                       ``doejane_LATE_12345_67890_02-zscore-1.ipynb``
Moodle "download all submissions"      ``Jane Doe_12345_assignsubmission_file_/02-zscore.ipynb``
                                       or the flat ``Jane Doe_12345_assignsubmission_file_``
                                       ``02-zscore.ipynb``
Blackboard                             ``HW2_jdoe_attempt_2025-03-01-10-00-00_02-zscore.ipynb``
a folder per student                   ``alice/02-zscore.ipynb`` (the folder holding the
                                       notebook names the student)
one notebook per student (one          ``alice.ipynb`` (needs ``--assignment``)
assignment only)
=====================================  ==================================================

A student's ``.zip`` inside the input (Canvas keeps uploaded zips as they are) is opened
with the same safety rules. When several files claim the same student, assignment and
notebook, the newest wins (timestamp, then LMS re-upload suffix ``-1``, ``-2``...).

Which assignment: the folder name (nbgrader layouts), else ``--assignment``, else the
notebook's name, else its content (the nbgrader ``grade_id``s it carries).

Which notebook: the exact name; else the same name up to case, LMS re-upload suffixes and
"Copy of"; else the only notebook submitted; else the notebook sharing the most
``grade_id``s with the source. A renamed notebook is graded under the source's name, with a
note. A missing notebook is recorded, and scores 0 (as nbgrader does).

Repairs (each noted): a UTF-8 byte order mark, CRLF line endings inside cell sources, old
nbformat (v3 is upgraded by nbformat), missing or duplicate cell ids, a missing
``nbformat_minor`` id support. Not repaired (rejected with a reason): invalid JSON, not
UTF-8, not a notebook, too large.

Zip safety: members with absolute paths, drive letters, ``..`` components or that are
symlinks are refused (each one is reported, the rest of the zip is used); the number of
members, the declared and the actual uncompressed sizes and the compression ratio are
bounded, so a zip bomb is refused as a whole with the reason.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

__all__ = [
    "AssignmentSpec",
    "Submission",
    "Rejection",
    "Intake",
    "ZipLimits",
    "UnsafeArchive",
    "collect",
    "safe_extract",
    "repair_notebook",
    "NotebookRejected",
    "safe_student_id",
]

IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", "timestamp.txt"}
IGNORED_DIRS = {"__MACOSX", ".ipynb_checkpoints", ".git", "__pycache__"}
MAX_NOTEBOOK_BYTES = 50 * 2**20


# ----------------------------------------------------------------------------- types
@dataclass(frozen=True)
class AssignmentSpec:
    """What intake needs to know about an assignment: its name, its notebooks (stems) and
    the grade ids each source notebook carries (to recognise a renamed notebook)."""

    name: str
    notebooks: tuple[str, ...]
    grade_ids: Mapping[str, frozenset] = field(default_factory=dict)


@dataclass
class Submission:
    """One student's submission of one assignment, ready to grade.

    notebooks: notebook stem -> repaired notebook JSON text (nbformat 4.5), or None when
    the student did not submit that notebook (``missing`` says why).
    """

    student: str
    assignment: str
    display_name: str = ""
    notebooks: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)  # stem -> reason
    notes: list = field(default_factory=list)
    origin: list = field(default_factory=list)  # input paths used
    timestamp: str | None = None

    def digest(self) -> str:
        """sha256 of what is graded (assignment, student, notebooks, timestamp)."""
        h = hashlib.sha256()
        h.update(json.dumps([self.assignment, self.student, self.timestamp]).encode())
        for stem in sorted(self.notebooks):
            h.update(stem.encode() + b"\0")
            text = self.notebooks[stem]
            h.update(b"-" if text is None else text.encode())
            h.update(b"\0")
        return h.hexdigest()


@dataclass
class Rejection:
    """Input that cannot be graded; ``student``/``assignment`` are filled when known."""

    path: str
    reason: str
    student: str | None = None
    assignment: str | None = None


@dataclass
class Intake:
    submissions: list = field(default_factory=list)
    rejections: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # general remarks (ignored files...)


class UnsafeArchive(Exception):
    """The archive as a whole is refused (zip bomb, unreadable)."""


class NotebookRejected(Exception):
    """A notebook file that cannot be graded; the message is the reason."""


@dataclass(frozen=True)
class ZipLimits:
    max_members: int = 20_000
    max_total_bytes: int = 2 * 2**30
    max_member_bytes: int = 200 * 2**20
    max_ratio: float = 200.0  # uncompressed / compressed, for members over 1 MiB
    max_depth: int = 2  # zips inside zips


# ----------------------------------------------------------------------------- zips
def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    mode = (info.external_attr >> 16) & 0o170000
    if mode == stat.S_IFLNK:
        return "is a symbolic link"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "has an absolute path"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return "has a path that leaves the archive (..)"
    if any("\0" in p for p in parts):
        return "has a NUL byte in its name"
    if not parts:
        return "has an empty name"
    return None


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike,
                 limits: ZipLimits = ZipLimits()) -> list[Rejection]:
    """Extract ``archive`` into ``dest`` (which must exist), refusing unsafe members.

    Returns one ``Rejection`` per refused member. Raises ``UnsafeArchive`` when the archive
    as a whole is refused (unreadable, too many members, too large, a bomb).
    """
    dest = Path(dest).resolve()
    refused: list[Rejection] = []
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafeArchive(f"{os.path.basename(str(archive))} is not a readable zip file: {exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise UnsafeArchive(
                f"{os.path.basename(str(archive))} has {len(infos)} members (limit {limits.max_members})")
        declared = sum(i.file_size for i in infos if not i.is_dir())
        if declared > limits.max_total_bytes:
            raise UnsafeArchive(
                f"{os.path.basename(str(archive))} would expand to {declared / 2**20:.0f} MiB "
                f"(limit {limits.max_total_bytes / 2**20:.0f} MiB): refused as a possible zip bomb")
        total = 0
        for info in infos:
            problem = _member_problem(info)
            if problem:
                refused.append(Rejection(f"{os.path.basename(str(archive))}:{info.filename}",
                                         f"zip member refused: {info.filename!r} {problem}"))
                continue
            if info.is_dir():
                continue
            if info.file_size > limits.max_member_bytes:
                refused.append(Rejection(
                    f"{os.path.basename(str(archive))}:{info.filename}",
                    f"zip member refused: {info.filename!r} is {info.file_size / 2**20:.0f} MiB "
                    f"(limit {limits.max_member_bytes / 2**20:.0f} MiB)"))
                continue
            if (info.file_size > 2**20 and info.compress_size > 0
                    and info.file_size / info.compress_size > limits.max_ratio):
                raise UnsafeArchive(
                    f"{os.path.basename(str(archive))}: member {info.filename!r} is compressed "
                    f"{info.file_size / info.compress_size:.0f}:1: refused as a zip bomb")
            parts = [p for p in info.filename.replace("\\", "/").split("/") if p not in ("", ".")]
            target = dest.joinpath(*parts)
            # resolve() without following anything we did not create: all parents are ours
            if os.path.commonpath([str(target.resolve()), str(dest)]) != str(dest):
                refused.append(Rejection(f"{os.path.basename(str(archive))}:{info.filename}",
                                         f"zip member refused: {info.filename!r} leaves the archive"))
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                refused.append(Rejection(f"{os.path.basename(str(archive))}:{info.filename}",
                                         f"zip member refused: {info.filename!r} clashes with a file"))
                continue
            if target.exists() or target.is_symlink():
                refused.append(Rejection(f"{os.path.basename(str(archive))}:{info.filename}",
                                         f"zip member refused: {info.filename!r} appears twice"))
                continue
            written = 0
            try:
                with zf.open(info) as src, open(target, "xb") as out:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        written += len(chunk)
                        total += len(chunk)
                        if written > info.file_size or total > limits.max_total_bytes:
                            raise UnsafeArchive(
                                f"{os.path.basename(str(archive))}: member {info.filename!r} "
                                "expands beyond its declared size: refused as a zip bomb")
                        out.write(chunk)
            except UnsafeArchive:
                raise
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                target.unlink(missing_ok=True)
                refused.append(Rejection(f"{os.path.basename(str(archive))}:{info.filename}",
                                         f"zip member refused: {info.filename!r} is damaged ({exc})"))
    return refused


# ----------------------------------------------------------------------------- notebooks
def repair_notebook(raw: bytes, name: str = "notebook") -> tuple[str, list[str]]:
    """Parse and repair a submitted notebook; return ``(json text, notes)``.

    Raises ``NotebookRejected`` with the reason when it cannot be graded.
    """
    import nbformat

    notes: list[str] = []
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookRejected(
            f"{name} is {len(raw) / 2**20:.0f} MiB (limit {MAX_NOTEBOOK_BYTES / 2**20:.0f} MiB)")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        notes.append(f"{name}: removed a UTF-8 byte order mark")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookRejected(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "\r\n" in text or "\r" in text:
        notes.append(f"{name}: converted CRLF line endings")
    if not text.strip():
        raise NotebookRejected(f"{name} is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookRejected(
            f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "it cannot be opened as a notebook") from None
    except RecursionError:
        raise NotebookRejected(f"{name} is nested too deeply to be a notebook") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotebookRejected(f"{name} is JSON but not a Jupyter notebook (no 'nbformat' field)")
    major = data.get("nbformat")
    if not isinstance(major, int) or major < 3 or major > 4:
        raise NotebookRejected(f"{name} has nbformat {major!r}; only versions 3 and 4 can be graded")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many kinds
        raise NotebookRejected(f"{name} cannot be read as a notebook: {exc}".splitlines()[0]) from None
    if major == 3:
        notes.append(f"{name}: upgraded from nbformat 3 to 4")
    if not isinstance(nb.get("cells"), list):
        raise NotebookRejected(f"{name} has no list of cells")
    seen: set = set()
    fixed_ids = 0
    kept = []
    for position, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            notes.append(f"{name}: dropped a cell of unknown type")
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(str(s) for s in src)
        if not isinstance(src, str):
            src = str(src)
        if "\r" in src:
            src = src.replace("\r\n", "\n").replace("\r", "\n")
        cell["source"] = src
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = nbformat.NotebookNode()
        cid = cell.get("id")
        if not isinstance(cid, str) or not re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", cid) or cid in seen:
            # deterministic: the same file always gets the same ids (resuming relies on it)
            salt = 0
            while True:
                cid = hashlib.sha1(f"{position}:{salt}:{src}".encode()).hexdigest()[:8]
                if cid not in seen:
                    break
                salt += 1
            cell["id"] = cid
            fixed_ids += 1
        seen.add(cid)
        if cell["cell_type"] == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
        kept.append(cell)
    nb.cells = kept
    if fixed_ids:
        notes.append(f"{name}: gave {fixed_ids} cell(s) a new id (missing, invalid or duplicate)")
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
        nb["nbformat_minor"] = 5
    if not isinstance(nb.get("metadata"), dict):
        nb["metadata"] = nbformat.NotebookNode()
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError:
        # outputs are cleared before grading anyway; drop them if they are the problem
        for cell in nb.cells:
            if cell["cell_type"] == "code":
                cell["outputs"] = []
                cell["execution_count"] = None
            for key in list(cell.keys()):
                if key not in ("cell_type", "id", "metadata", "source", "outputs",
                               "execution_count", "attachments"):
                    del cell[key]
        try:
            nbformat.validate(nb)
            notes.append(f"{name}: removed invalid outputs or fields")
        except nbformat.ValidationError as exc:
            raise NotebookRejected(f"{name} is not a valid notebook: {exc.message}") from None
    return nbformat.writes(nb), notes


def notebook_grade_ids(text_or_nb) -> set:
    """The nbgrader grade ids a notebook's cells carry (best effort, never raises)."""
    try:
        nb = json.loads(text_or_nb) if isinstance(text_or_nb, (str, bytes)) else text_or_nb
        ids = set()
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
            gid = (meta.get("nbgrader") or {}).get("grade_id") if isinstance(meta, dict) else None
            if isinstance(gid, str):
                ids.add(gid)
        return ids
    except Exception:
        return set()


# ----------------------------------------------------------------------------- names
def safe_student_id(name: str) -> str:
    """A student id usable as a folder name and an nbgrader id: ASCII letters, digits,
    ``.``, ``_``, ``-`` (accents are stripped, other characters become ``_``)."""
    text = unicodedata.normalize("NFKD", name)
    text = text.encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    if not text:
        text = "student_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return text[:100]


_EXCHANGE = re.compile(r"^(?P<student>[^+]+)\+(?P<assignment>[^+]+)\+(?P<ts>[^+]+)(?:\+[^+]*)?$")
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<pid>\d+)_assignsubmission_(?:file|onlinetext)_(?P<rest>.*)$")
_CANVAS = re.compile(
    r"^(?P<name>[^_]+(?:_[^_]+)*?)_(?P<late>LATE_)?(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+)$")
_BLACKBOARD = re.compile(
    r"^(?P<assignment>.+?)_(?P<user>[^_]+)_attempt_(?P<ts>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})"
    r"(?:_(?P<file>.+))?$")
_REUPLOAD = re.compile(r"(?:-\d+| \(\d+\)|_\d+)$")


def _norm_stem(stem: str) -> str:
    s = stem.strip().lower()
    s = re.sub(r"^copy of ", "", s)
    s = re.sub(r"^(?:copy_of_)", "", s)
    prev = None
    while prev != s:
        prev = s
        s = _REUPLOAD.sub("", s).strip()
    s = re.sub(r"[\s_]+", "-", s)
    return s


def _reupload_rank(stem: str) -> int:
    m = re.search(r"(?:-(\d+)| \((\d+)\))$", stem)
    return int(next(g for g in m.groups() if g)) if m else 0


def _parse_ts(text: str | None):
    if not text:
        return None
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})", text)
    if m:  # Blackboard
        return _dt.datetime(*map(int, m.groups()))
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(text)
    except Exception:
        return None


@dataclass
class _File:
    path: Path  # on disk
    rel: str  # as shown to the instructor
    student: str | None
    display: str
    assignment: str | None
    filename: str  # the notebook/file name the student gave
    timestamp: str | None = None
    rank: tuple = ()
    generic: bool = False


def _classify(rel_parts: list[str], known: Mapping[str, AssignmentSpec]) -> dict | None:
    """Student, assignment and file name of one input file from its path, or None."""
    parts = list(rel_parts)
    if "submitted" in parts[:-1]:
        parts = parts[len(parts) - parts[::-1].index("submitted"):]
    fname = parts[-1]
    dirs = parts[:-1]
    # exchange: <student>+<assignment>+<timestamp>[+random]/...
    for i, d in enumerate(dirs):
        m = _EXCHANGE.match(d)
        if m:
            return dict(student=m["student"], display=m["student"], assignment=m["assignment"],
                        filename="/".join(parts[i + 1:]), timestamp=m["ts"])
    # Moodle folder or file
    for i, d in enumerate(dirs):
        m = _MOODLE.match(d)
        if m:
            return dict(student=f"{m['name']}_{m['pid']}", display=m["name"], assignment=None,
                        filename="/".join(parts[i + 1:]))
    m = _MOODLE.match(fname)
    if m and m["rest"]:
        return dict(student=f"{m['name']}_{m['pid']}", display=m["name"], assignment=None,
                    filename=m["rest"])
    # Blackboard
    m = _BLACKBOARD.match(fname)
    if m and m["file"]:
        return dict(student=m["user"], display=m["user"], assignment=None, filename=m["file"],
                    timestamp=m["ts"])
    # Canvas
    m = _CANVAS.match(fname)
    if m:
        return dict(student=f"{m['name']}_{m['uid']}", display=m["name"], assignment=None,
                    filename=m["file"], late=bool(m["late"]), sid=int(m["sid"]))
    # nbgrader course layout: <student>/<assignment>/...
    for i in range(len(dirs) - 1):
        if dirs[i + 1] in known:
            return dict(student=dirs[i], display=dirs[i], assignment=dirs[i + 1],
                        filename="/".join(parts[i + 2:]))
    # a folder per student: the folder that holds the file names the student
    if dirs:
        return dict(student=dirs[-1], display=dirs[-1], assignment=None, filename=fname,
                    generic=True)
    return dict(student=None, display="", assignment=None, filename=fname)


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        for f in sorted(filenames):
            yield Path(dirpath) / f


def collect(source: str | os.PathLike, assignments: Mapping[str, AssignmentSpec],
            only: str | None = None, limits: ZipLimits = ZipLimits(),
            workdir: str | os.PathLike | None = None) -> Intake:
    """Find every submission in ``source`` (a folder or a .zip).

    assignments: the gradable assignments by name. only: grade this assignment only
    (``None``: every assignment found). workdir: where zips are extracted (a temporary
    folder that is removed afterwards when None).
    """
    source = Path(source)
    result = Intake()
    own_tmp = workdir is None
    tmp = Path(tempfile.mkdtemp(prefix="normlab-intake-")) if own_tmp else Path(workdir)
    try:
        if not source.exists():
            raise FileNotFoundError(f"{source} does not exist")
        if source.is_file():
            if not zipfile.is_zipfile(source):
                if source.suffix == ".ipynb":
                    root = tmp / "single"
                    root.mkdir()
                    shutil.copy(source, root / source.name)
                else:
                    raise UnsafeArchive(f"{source} is neither a folder nor a zip file")
            else:
                root = tmp / "input"
                root.mkdir()
                result.rejections += safe_extract(source, root, limits)
        else:
            root = source
        _collect_tree(root, "", assignments, only, limits, tmp, result, depth=0)
    finally:
        if own_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def _collect_tree(root: Path, prefix: str, assignments, only, limits, tmp: Path, result: Intake,
                  depth: int) -> None:
    known = dict(assignments)
    files: list[_File] = []
    for path in _walk(root):
        rel_parts = list(path.relative_to(root).parts)
        rel = prefix + "/".join(rel_parts)
        name = rel_parts[-1]
        if name in IGNORED_NAMES or name.startswith("._") or path.is_symlink():
            if path.is_symlink():
                result.rejections.append(Rejection(rel, "symbolic link ignored"))
            continue
        info = _classify(rel_parts, known)
        low = name.lower()
        if low.endswith(".zip"):
            if depth + 1 >= limits.max_depth + 1:
                result.rejections.append(Rejection(rel, "zip inside a zip inside a zip: not opened"))
                continue
            sub = tmp / f"z{len(list(tmp.iterdir()))}"
            sub.mkdir()
            try:
                refused = safe_extract(path, sub, limits)
            except UnsafeArchive as exc:
                result.rejections.append(Rejection(rel, str(exc), student=info and info.get("student")))
                continue
            result.rejections += refused
            # the student's zip: its files belong to the student the zip's name says
            if info and info.get("student"):
                # a student's own zip: everything in it is that student's
                for p in _walk(sub):
                    rp = list(p.relative_to(sub).parts)
                    if rp[-1] in IGNORED_NAMES or rp[-1].startswith("._") or p.is_symlink():
                        continue
                    inner_a = next((d for d in rp[:-1] if d in known), None)
                    files.append(_File(p, rel + ":" + "/".join(rp), info["student"], info["display"],
                                       info.get("assignment") or inner_a, rp[-1],
                                       info.get("timestamp"),
                                       (bool(info.get("late")), info.get("sid", 0))))
            else:
                _collect_tree(sub, rel + ":", assignments, only, limits, tmp, result, depth + 1)
            continue
        if info is None:
            continue
        f = _File(path, rel, info["student"], info["display"], info["assignment"],
                  info["filename"], info.get("timestamp"),
                  (bool(info.get("late")), info.get("sid", 0)))
        f.generic = bool(info.get("generic"))
        files.append(f)
    # a folder per student: the folder holding a notebook is the student's; other files
    # belong to the student whose folder holds them, at any depth (or to nobody)
    student_dirs = {f.path.parent: f.student for f in files
                    if getattr(f, "generic", False) and f.filename.lower().endswith(".ipynb")}
    siblings = {d.parent for d in student_dirs}
    for f in files:
        if getattr(f, "generic", False) and not f.filename.lower().endswith(".ipynb"):
            home = next((p for p in f.path.parents if p in student_dirs), None)
            if home is None and only and f.path.parent.parent in siblings:
                # a student's folder beside the others, with no notebook in it
                home = f.path.parent
                student_dirs[home] = home.name
            f.student = f.display = student_dirs.get(home) if home else None
            if home is not None:
                f.filename = str(f.path.relative_to(home))
    # timestamps from nbgrader's timestamp.txt
    stamps: dict = {}
    for path in _walk(root):
        if path.name == "timestamp.txt":
            try:
                stamps[path.parent] = path.read_text(errors="replace").strip()[:100]
            except OSError:
                pass
    for f in files:
        if f.timestamp is None:
            for parent in f.path.parents:
                if parent in stamps:
                    f.timestamp = stamps[parent]
                    break
                if parent == root:
                    break
    _group(files, known, only, result)


def _which_assignment(f: _File, known: Mapping[str, AssignmentSpec], only: str | None,
                      text: str | None) -> str | None:
    if f.assignment:
        return f.assignment
    if only:
        return only
    stem = _norm_stem(PurePosixPath(f.filename).stem)
    for a in known.values():
        if stem in {_norm_stem(n) for n in a.notebooks} or stem == _norm_stem(a.name):
            return a.name
    if text is not None:
        ids = notebook_grade_ids(text)
        best, overlap = None, 0
        for a in known.values():
            n = len(ids & set().union(*a.grade_ids.values())) if a.grade_ids else 0
            if n > overlap:
                best, overlap = a.name, n
        return best
    return None


def _group(files: list[_File], known: Mapping[str, AssignmentSpec], only: str | None,
           result: Intake) -> None:
    groups: dict = {}
    for f in files:
        low = f.filename.lower()
        if not low.endswith(".ipynb"):
            continue
        if f.student is None:
            stem = PurePosixPath(f.filename).stem
            if only and _norm_stem(stem) not in {_norm_stem(n) for n in known[only].notebooks}:
                f.student, f.display = stem, stem
            else:
                result.rejections.append(Rejection(
                    f.rel, "cannot tell whose notebook this is: put it in a folder named after "
                    "the student, or use an LMS download layout"))
                continue
        raw = None
        try:
            raw = f.path.read_bytes() if f.path.stat().st_size <= MAX_NOTEBOOK_BYTES else None
        except OSError as exc:
            result.rejections.append(Rejection(f.rel, f"cannot read: {exc}", f.student))
            continue
        try:
            text_guess = raw.decode("utf-8", "replace") if raw is not None else None
        except Exception:
            text_guess = None
        a = _which_assignment(f, known, only, text_guess)
        if a is None:
            result.rejections.append(Rejection(
                f.rel, "cannot tell which assignment this notebook is for (use --assignment)",
                safe_student_id(f.student)))
            continue
        if only and a != only:
            continue
        if a not in known:
            result.rejections.append(Rejection(f.rel, f"unknown assignment {a!r}",
                                               safe_student_id(f.student), a))
            continue
        groups.setdefault((f.student, a), []).append((f, raw))
    # also: students with files but no notebook at all for an assignment (nbgrader layout)
    for f in files:
        if f.filename.lower().endswith(".ipynb") or f.student is None:
            continue
        a = f.assignment or only
        if a in known and (f.student, a) not in groups and (not only or a == only):
            groups[(f.student, a)] = []
    ids_taken: dict = {}
    for (student, a), items in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        spec = known[a]
        sid = safe_student_id(student)
        if (sid, a) in ids_taken and ids_taken[(sid, a)] != student:
            sid = sid + "_" + hashlib.sha256(student.encode()).hexdigest()[:6]
        ids_taken[(sid, a)] = student
        sub = Submission(student=sid, assignment=a, display_name=items[0][0].display if items else student)
        if sid != student:
            sub.notes.append(f"student id {student!r} used as {sid!r}")
        # the newest file wins per notebook name
        items.sort(key=lambda fr: (str(_parse_ts(fr[0].timestamp) or ""), fr[0].rank,
                                   _reupload_rank(PurePosixPath(fr[0].filename).stem), fr[0].rel))
        by_name: dict = {}
        for f, raw in items:
            key = PurePosixPath(f.filename).name
            if key in by_name:
                sub.notes.append(f"{by_name[key][0].rel} replaced by the newer {f.rel}")
            by_name[key] = (f, raw)
        candidates = list(by_name.values())
        # keep the newest of LMS re-uploads of the same notebook (02-zscore-1.ipynb ...)
        dedup: dict = {}
        for f, raw in candidates:
            n = _norm_stem(PurePosixPath(f.filename).stem)
            if n in dedup:
                sub.notes.append(f"{dedup[n][0].rel} replaced by the newer {f.rel}")
            dedup[n] = (f, raw)
        candidates = list(dedup.values())
        timestamps = [f.timestamp for f, _ in candidates if f.timestamp]
        sub.timestamp = max(timestamps, key=lambda t: str(_parse_ts(t) or t)) if timestamps else None
        used: set = set()
        for stem in spec.notebooks:
            chosen, how = _choose(stem, spec, candidates, used)
            if chosen is None:
                names = ", ".join(sorted(PurePosixPath(f.filename).name for f, _ in candidates)) or "none"
                sub.notebooks[stem] = None
                sub.missing[stem] = f"{stem}.ipynb was not submitted (notebooks found: {names})"
                continue
            f, raw = chosen
            used.add(id(f))
            sub.origin.append(f.rel)
            if how:
                sub.notes.append(how)
            if raw is None:
                sub.notebooks[stem] = None
                sub.missing[stem] = (f"{f.rel} is larger than {MAX_NOTEBOOK_BYTES / 2**20:.0f} MiB "
                                     "and was not graded")
                continue
            try:
                text, notes = repair_notebook(raw, PurePosixPath(f.filename).name)
            except NotebookRejected as exc:
                sub.notebooks[stem] = None
                sub.missing[stem] = str(exc)
                continue
            sub.notes += notes
            sub.notebooks[stem] = text
        extra = [f.rel for f, _ in candidates if id(f) not in used]
        if extra:
            sub.notes.append("ignored notebooks: " + ", ".join(extra))
        result.submissions.append(sub)
    # extra (non-notebook) files are never given to the grader: say so
    ignored = sorted({f.rel for f in files if not f.filename.lower().endswith(".ipynb")})
    if ignored:
        result.notes.append(f"{len(ignored)} non-notebook file(s) ignored (the assignment's own "
                            "files are used instead), e.g. " + ", ".join(ignored[:5]))
        by_student: dict = {}
        for f in files:
            if not f.filename.lower().endswith(".ipynb") and f.student is not None:
                by_student.setdefault(safe_student_id(f.student), []).append(f.filename)
        for sub in result.submissions:
            if sub.student in by_student:
                sub.notes.append("ignored files: " + ", ".join(sorted(by_student[sub.student])[:10]))


def _choose(stem: str, spec: AssignmentSpec, candidates, used):
    free = [(f, raw) for f, raw in candidates if id(f) not in used]
    for f, raw in free:
        if PurePosixPath(f.filename).stem == stem:
            return (f, raw), None
    for f, raw in free:
        if _norm_stem(PurePosixPath(f.filename).stem) == _norm_stem(stem):
            return (f, raw), f"{PurePosixPath(f.filename).name} graded as {stem}.ipynb"
    if len(spec.notebooks) == 1 and len(free) == 1:
        f, raw = free[0]
        return (f, raw), f"renamed notebook {PurePosixPath(f.filename).name} graded as {stem}.ipynb"
    want = set(spec.grade_ids.get(stem, ()))
    best, overlap = None, 0
    for f, raw in free:
        if raw is None:
            continue
        n = len(notebook_grade_ids(raw.decode("utf-8", "replace")) & want)
        if n > overlap:
            best, overlap = (f, raw), n
    if best is not None:
        return best, (f"renamed notebook {PurePosixPath(best[0].filename).name} graded as {stem}.ipynb "
                      f"(it carries {overlap} of the source's grade ids)")
    return None, None
