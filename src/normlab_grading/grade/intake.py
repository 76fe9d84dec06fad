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

Whose submission: from where it sits, never from names inside it. From the top, each
level's LMS names (exchange and Moodle folders, Canvas/Moodle/Blackboard files) are
submissions; a folder named ``submitted`` is looked into; if any other folder at the level
holds an assignment folder or a notebook, every folder at that level is one student's
submission (everything below it is that student's, whatever its folders are called);
otherwise the level's folders are enclosing folders, looked into. Names giving the same
student id are told apart (a suffix from the name), and the collision is reported. Every
place the layout gives is a submission, with no notebook too (it scores 0 with the reason).

A student's ``.zip`` (Canvas keeps uploaded zips as they are; one inside a student's folder)
is that student's and is opened with the same safety rules. When several files of a student
claim the same notebook, the newest wins (submission time, then LMS order and re-upload
suffix ``-1``, ``-2``..., then the copy nearest the top of the submission).

Submission time: only ``<student>/<assignment>/timestamp.txt`` (each line a candidate) and
an exchange folder's or Blackboard file's name give it; the latest parseable time is used,
unreadable ones are noted; when none can be read, ``Submission.timestamp_problem`` says so
(lateness is not assessed, and the reports say it). Other ``timestamp.txt`` files are ignored.

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

Files the student ships (``helper.py``, a data file; everything but notebooks, ``*.pyc``,
``__pycache__``, ``.ipynb_checkpoints`` and OS clutter) below the folder of the submitted
notebook are kept with the submission (``Submission.files``, paths relative to that
folder), as ``nbgrader autograde`` copies them to the student's autograded folder; the grader
then puts the assignment's own files over them (unless ``Autograde.exclude_overwriting``
says otherwise). At most ``max_shipped_bytes`` (default 64 MiB, less with a smaller
``--disk``) and
``MAX_SHIPPED_FILES`` files per submission are kept; the rest, and files outside the
notebook's folder, are listed in the notes.

Zip safety: members with absolute paths, drive letters, ``..`` components, control
characters or components over 255 bytes in their names, that are symlinks or encrypted, over
the size or compression-ratio limits, expanding beyond their declared size or damaged (bad
CRC, truncated) are refused one by one (each is reported, the rest of the zip is used); an
archive is refused as a whole only when unreadable, with too many members or too large in
total (for a student's zip: that student's rejection). Intake never raises for what is
inside the input.
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
from typing import Mapping

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
    "parse_timestamp",
]

IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", "timestamp.txt"}
NOT_SHIPPED_SUFFIXES = (".ipynb", ".pyc", ".zip")  # never handed to the jail as a student's file
MAX_SHIPPED_FILES = 500
MAX_SHIPPED_BYTES = 64 * 2**20  # held in memory until graded: per submission
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
    timestamp_problem: str | None = None  # a time was given but none could be read
    files: dict = field(default_factory=dict)  # other files shipped: relative path -> bytes

    def digest(self) -> str:
        """sha256 of what is graded (assignment, student, notebooks, shipped files, timestamp)."""
        h = hashlib.sha256()
        h.update(json.dumps([self.assignment, self.student, self.timestamp]).encode())
        for stem in sorted(self.notebooks):
            h.update(stem.encode() + b"\0")
            text = self.notebooks[stem]
            h.update(b"-" if text is None else text.encode())
            h.update(b"\0")
        for rel in sorted(self.files):  # nothing added without files: old digests stay valid
            h.update(b"file\0" + rel.encode("utf-8", "surrogateescape") + b"\0")
            h.update(hashlib.sha256(self.files[rel]).digest())
        return h.hexdigest()


@dataclass
class Rejection:
    """Input that cannot be graded; ``student``/``assignment`` are filled when known."""

    path: str
    reason: str
    student: str | None = None
    assignment: str | None = None
    parts: tuple = ()  # a refused zip member: its place in the layout (path components)
    file: bool = False  # parts ends with the member's file name


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
MAX_NAME_BYTES = 255  # one path component (Linux NAME_MAX)
MAX_PATH_BYTES = 1024  # a whole member path


def _show(name: str, limit: int = 160) -> str:
    """A file or member name for a message: repr (control characters escaped), clipped."""
    text = repr(name)
    if len(text) > limit:
        text = text[: limit - 40] + f"...' ({len(name.encode('utf-8', 'backslashreplace'))} bytes)"
    return text


def _clean(text: str) -> str:
    """A name from the file system or a zip as valid text (undecodable bytes as \\xNN)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _member_parts(info: zipfile.ZipInfo) -> list[str]:
    return [p for p in info.filename.replace("\\", "/").split("/") if p not in ("", ".")]


def _bad_component(part: str) -> str | None:
    if "\0" in part:
        return "has a NUL byte in its name"
    if any(unicodedata.category(ch) == "Cc" for ch in part):
        return "has control characters in its name"
    if len(part.encode("utf-8", "backslashreplace")) > MAX_NAME_BYTES:
        return f"has a name component longer than {MAX_NAME_BYTES} bytes"
    return None


def _member_problem(info: zipfile.ZipInfo, limits: "ZipLimits") -> str | None:
    name = info.filename.replace("\\", "/")
    mode = (info.external_attr >> 16) & 0o170000
    if mode == stat.S_IFLNK:
        return "is a symbolic link"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "has an absolute path"
    parts = _member_parts(info)
    if any(p == ".." for p in parts):
        return "has a path that leaves the archive (..)"
    if not parts:
        return "has an empty name"
    for p in parts:
        problem = _bad_component(p)
        if problem:
            return problem
    if len("/".join(parts).encode("utf-8", "backslashreplace")) > MAX_PATH_BYTES:
        return f"has a path longer than {MAX_PATH_BYTES} bytes"
    if info.is_dir():
        return None
    if info.flag_bits & 0x1:
        return "is encrypted (password-protected): it cannot be read"
    if info.file_size > limits.max_member_bytes:
        return (f"is {info.file_size / 2**20:.0f} MiB (limit "
                f"{limits.max_member_bytes / 2**20:.0f} MiB)")
    if (info.file_size > 2**20 and info.compress_size > 0
            and info.file_size / info.compress_size > limits.max_ratio):
        return (f"is compressed {info.file_size / info.compress_size:.0f}:1: refused as a "
                "possible zip bomb")
    return None


def _safe_prefix(info: zipfile.ZipInfo) -> tuple[tuple, bool]:
    """The member's path components that can be shown as a place in the layout (the
    folders up to the first bad component; the file name too when it is fine)."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return (), False
    parts = _member_parts(info)
    if any(p == ".." for p in parts):
        return (), False
    good = []
    for p in parts:
        if _bad_component(p):
            return tuple(good), False
        good.append(p)
    return tuple(good), not info.is_dir()


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike,
                 limits: ZipLimits = ZipLimits()) -> list[Rejection]:
    """Extract ``archive`` into ``dest`` (which must exist), refusing unsafe members.

    Returns one ``Rejection`` per refused member (absolute or ``..`` paths, symlinks, names
    with control characters or components over 255 bytes, encrypted, too large, compressed
    like a bomb, expanding beyond the declared size, a bad CRC, truncated data...): the rest
    of the archive is used. Raises ``UnsafeArchive`` only when the archive as a whole is
    refused (unreadable, too many members, too large in total). Never raises anything else.
    """
    dest = Path(dest).resolve()
    label = _clean(os.path.basename(str(archive)))
    refused: list[Rejection] = []

    def refuse(info, why, keep_place=True):
        parts, is_file = _safe_prefix(info) if keep_place else ((), False)
        refused.append(Rejection(f"{label}:{_clean(info.filename)}",
                                 f"zip member refused: {_show(_clean(info.filename))} {why}",
                                 parts=parts, file=is_file))
        if parts:  # keep the place in the layout (the student's folder) visible
            try:
                dest.joinpath(*(parts[:-1] if is_file else parts)).mkdir(parents=True, exist_ok=True)
            except OSError:
                pass

    try:
        zf = zipfile.ZipFile(archive)
        infos = zf.infolist()
    except Exception as exc:  # BadZipFile, OSError, bad names (UnicodeDecodeError), ...
        raise UnsafeArchive(f"{label} is not a readable zip file: "
                            f"{type(exc).__name__}: {str(exc)[:200]}") from None
    with zf:
        if len(infos) > limits.max_members:
            raise UnsafeArchive(f"{label} has {len(infos)} members (limit {limits.max_members})")
        problems = {id(i): _member_problem(i, limits) for i in infos}
        declared = sum(i.file_size for i in infos if not i.is_dir() and not problems[id(i)])
        if declared > limits.max_total_bytes:
            raise UnsafeArchive(
                f"{label} would expand to {declared / 2**20:.0f} MiB "
                f"(limit {limits.max_total_bytes / 2**20:.0f} MiB): refused as a possible zip bomb")
        total = 0
        for info in infos:
            problem = problems[id(info)]
            if problem:
                refuse(info, problem)
                continue
            parts = _member_parts(info)
            target = dest.joinpath(*parts)
            try:
                if os.path.commonpath([str(target.resolve()), str(dest)]) != str(dest):
                    refuse(info, "leaves the archive", keep_place=False)
                    continue
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                except (FileExistsError, NotADirectoryError):
                    refuse(info, "clashes with a file", keep_place=False)
                    continue
                if target.exists() or target.is_symlink():
                    refuse(info, "appears twice", keep_place=False)
                    continue
            except OSError as exc:
                refuse(info, f"cannot be extracted ({type(exc).__name__}: {exc.strerror or exc})",
                       keep_place=False)
                continue
            written = 0
            try:
                with zf.open(info) as src, open(target, "xb") as out:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        written += len(chunk)
                        if written > info.file_size or total + written > limits.max_total_bytes:
                            raise _Bomb()
                        out.write(chunk)
                total += written
            except _Bomb:
                target.unlink(missing_ok=True)
                refuse(info, "expands beyond its declared size: refused as a zip bomb")
            except Exception as exc:  # bad CRC, truncated data, unsupported compression...
                try:
                    target.unlink(missing_ok=True)
                except OSError:
                    pass
                refuse(info, f"is damaged or unreadable ({type(exc).__name__}: {str(exc)[:200]})")
    return refused


class _Bomb(Exception):
    pass


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


def parse_timestamp(text: str | None):
    """A submission time as a naive UTC ``datetime`` (nbgrader's convention), or None when
    ``text`` is not a time. Accepts nbgrader's format (``2025-03-01 10:00:00.000000 UTC``),
    ISO 8601 and Blackboard's ``2025-03-01-10-00-00``."""
    if not text or not isinstance(text, str) or len(text) > 100:
        return None
    text = text.strip()
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})", text)
    try:
        if m:  # Blackboard
            return _dt.datetime(*map(int, m.groups()))
        if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
            return None  # dateutil reads almost anything ("3", "May"): only dated times count
        from nbgrader.utils import parse_utc

        value = parse_utc(text)
        return value if isinstance(value, _dt.datetime) else None
    except Exception:
        return None


_parse_ts = parse_timestamp


@dataclass
class _Pos:
    """A submission's place in the input layout. Everything below it is this student's:
    the student comes from here, never from the names inside."""

    student: str
    display: str
    assignment: str | None  # given by the layout (nbgrader, exchange), else None
    rel: str
    stamps: list = field(default_factory=list)  # (where, text)
    notes: list = field(default_factory=list)
    rank: tuple = (False, 0)


@dataclass
class _File:
    path: Path | None  # on disk (None: a refused zip member)
    rel: str  # as shown to the instructor
    pos: _Pos
    assignment: str | None
    filename: str  # the notebook/file name the student gave (relative to the position)
    timestamp: str | None = None
    depth: int = 0
    refused: str | None = None

    @property
    def student(self) -> str:
        return self.pos.student

    @property
    def display(self) -> str:
        return self.pos.display

    @property
    def rank(self) -> tuple:
        return self.pos.rank


@dataclass
class _Ctx:
    root: Path
    prefix: str
    depth: int  # zip nesting


class _Scan:
    """Walks the input from the top. At each level above the submissions, LMS names
    (exchange, Moodle, Canvas, Blackboard) are submissions; otherwise, if any folder at
    the level holds an assignment folder or a notebook, every folder at that level is one
    student's submission; else the level's folders are enclosing folders, looked into."""

    def __init__(self, known, only, limits, tmp: Path, result: Intake):
        self.known, self.only, self.limits, self.tmp, self.result = known, only, limits, tmp, result
        self.files: list[_File] = []
        self.positions: list[_Pos] = []
        self.loose: list[str] = []  # non-notebook files outside any submission
        self.pseudo: dict = {}  # Path -> reason: refused zip members, placed in the layout
        self.owned_rejections: list = []  # (Rejection, _Pos)
        self._seen_bad: set = set()

    # -- the file system
    def rel(self, path: Path, ctx: _Ctx) -> str:
        try:
            parts = path.relative_to(ctx.root).parts
        except ValueError:
            parts = (path.name,)
        return _clean(ctx.prefix + "/".join(parts))

    def children(self, d: Path, ctx: _Ctx):
        dirs, files = [], []
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            self.bad(self.rel(d, ctx), f"cannot read this folder: {exc.strerror or exc}")
            entries = []
        for e in entries:
            p = Path(e.path)
            try:
                if e.is_symlink():
                    self.bad(self.rel(p, ctx), "symbolic link ignored")
                elif e.is_dir(follow_symlinks=False):
                    if e.name not in IGNORED_DIRS:
                        dirs.append(p)
                elif e.is_file(follow_symlinks=False):
                    if not e.name.startswith("._") and (e.name not in IGNORED_NAMES
                                                        or e.name == "timestamp.txt"):
                        files.append(p)
                else:
                    self.bad(self.rel(p, ctx), "not a regular file: ignored")
            except OSError as exc:
                self.bad(self.rel(p, ctx), f"cannot read: {exc.strerror or exc}")
        files += [p for p in self.pseudo if p.parent == d and not p.exists()]
        return dirs, sorted(files)

    def bad(self, rel: str, reason: str, pos: _Pos | None = None):
        if (rel, reason) in self._seen_bad:
            return
        self._seen_bad.add((rel, reason))
        r = Rejection(rel, reason, pos.student if pos else None, pos.assignment if pos else None)
        self.result.rejections.append(r)
        if pos is not None:
            self.owned_rejections.append((r, pos))

    def extract(self, path: Path, rel: str, pos: _Pos | None) -> Path | None:
        sub = self.tmp / f"z{len(list(self.tmp.iterdir()))}"
        sub.mkdir()
        try:
            refused = safe_extract(path, sub, self.limits)
        except UnsafeArchive as exc:
            self.bad(rel, str(exc), pos)
            return None
        except Exception as exc:  # never take the run down
            self.bad(rel, f"cannot open this zip: {type(exc).__name__}: {str(exc)[:200]}", pos)
            return None
        for r in refused:
            r.path = f"{rel}:{r.path.split(':', 1)[1]}"
            self.result.rejections.append(r)
            if pos is not None:
                r.student, r.assignment = pos.student, pos.assignment
                self.owned_rejections.append((r, pos))
            if r.parts and r.file:
                self.pseudo[sub.joinpath(*r.parts)] = r.reason
        return sub

    def stamp_file(self, path: Path, pos: _Pos, ctx: _Ctx):
        try:
            with open(path, "rb") as fh:
                raw = fh.read(1001)
        except OSError as exc:
            pos.notes.append(f"timestamp.txt at {self.rel(path, ctx)} cannot be read ({exc.strerror})")
            return
        lines = [line.strip() for line in raw[:1000].decode("utf-8", "replace").splitlines()
                 if line.strip()]
        where = self.rel(path, ctx)
        if not lines:
            pos.stamps.append((where, ""))
        for line in lines[:20]:
            pos.stamps.append((where, line[:100]))

    # -- levels above the submissions
    def level(self, d: Path, ctx: _Ctx):
        dirs, files = self.children(d, ctx)
        plain = []
        for c in dirs:
            name = _clean(c.name)
            m = _EXCHANGE.match(name)
            if m:
                pos = self.position(m["student"], m["student"], m["assignment"], c, ctx)
                pos.stamps.append((self.rel(c, ctx) + " (folder name)", m["ts"]))
                self.own(c, pos, ctx, top=c)
                continue
            m = _MOODLE.match(name)
            if m:
                pos = self.position(f"{m['name']}_{m['pid']}", m["name"], None, c, ctx)
                self.own(c, pos, ctx, top=c)
                continue
            if name == "submitted":
                self.level(c, ctx)
                continue
            plain.append(c)
        students_here = any(self.student_like(c, ctx) for c in plain)
        for c in plain:
            if students_here:
                self.student_folder(c, ctx)
            else:
                self.level(c, ctx)
        for f in files:
            self.level_file(f, ctx)

    def student_like(self, c: Path, ctx: _Ctx) -> bool:
        try:
            for e in os.scandir(c):
                if e.is_dir(follow_symlinks=False) and e.name in self.known:
                    return True
                if e.is_file(follow_symlinks=False) and e.name.lower().endswith(".ipynb"):
                    return True
        except OSError:
            return False
        return any(p.parent == c and p.name.lower().endswith(".ipynb") for p in self.pseudo)

    def position(self, student, display, assignment, where: Path, ctx: _Ctx, rank=(False, 0)):
        pos = _Pos(_clean(student), _clean(display), assignment, self.rel(where, ctx), rank=rank)
        self.positions.append(pos)
        return pos

    def student_folder(self, c: Path, ctx: _Ctx):
        name = _clean(c.name)
        dirs, files = self.children(c, ctx)
        generic = self.position(name, name, None, c, ctx)
        rest = []
        for x in dirs:
            if x.name in self.known:  # nbgrader: <student>/<assignment>/
                pos = self.position(name, name, x.name, x, ctx)
                self.own(x, pos, ctx, top=x)
            else:
                rest.append(x)
        self.own(c, generic, ctx, top=c, entries=(rest, files))

    def level_file(self, f: Path, ctx: _Ctx):
        rel = self.rel(f, ctx)
        name = _clean(f.name)
        low = name.lower()
        if name == "timestamp.txt":
            return
        pos, filename, stamp = None, None, None
        m = _MOODLE.match(name)
        b = _BLACKBOARD.match(name)
        c = _CANVAS.match(name)
        if m and m["rest"]:
            pos, filename = self.position(f"{m['name']}_{m['pid']}", m["name"], None, f, ctx), m["rest"]
        elif b and b["file"]:
            pos, filename, stamp = self.position(b["user"], b["user"], None, f, ctx), b["file"], b["ts"]
            pos.stamps.append((rel + " (file name)", stamp))
        elif c:
            pos = self.position(f"{c['name']}_{c['uid']}", c["name"], None, f, ctx,
                                rank=(bool(c["late"]), int(c["sid"])))
            filename = c["file"]
        if pos is not None:
            if filename.lower().endswith(".zip"):
                self.owned_zip(f, rel, pos, ctx)
            else:
                self.add(f, rel, pos, None, filename, 0, stamp)
            return
        if low.endswith(".zip"):  # a collection inside the input (several downloads)
            if ctx.depth + 1 > self.limits.max_depth:
                self.bad(rel, "zip inside a zip inside a zip: not opened")
                return
            sub = self.extract(f, rel, None)
            if sub is not None:
                self.level(sub, _Ctx(sub, rel + ":", ctx.depth + 1))
            return
        if low.endswith(".ipynb"):
            stem = PurePosixPath(name).stem
            if self.only and _norm_stem(stem) not in {
                    _norm_stem(n) for n in self.known[self.only].notebooks}:
                pos = self.position(stem, stem, None, f, ctx)
                self.add(f, rel, pos, None, name, 0)
            else:
                self.bad(rel, "cannot tell whose notebook this is: put it in a folder named after "
                              "the student, or use an LMS download layout")
            return
        self.loose.append(rel)

    # -- inside a submission: everything is the position's
    def own(self, d: Path, pos: _Pos, ctx: _Ctx, top: Path, entries=None, zip_root: Path | None = None,
            zdepth: int = 0):
        dirs, files = entries if entries is not None else self.children(d, ctx)
        for f in files:
            rel = self.rel(f, ctx)
            if f.name == "timestamp.txt":
                if f.parent == top and zip_root is None:
                    self.stamp_file(f, pos, ctx)
                else:
                    pos.notes.append(f"{rel} ignored: only {pos.rel}/timestamp.txt gives the "
                                     "submission time")
                continue
            if f.name.lower().endswith(".zip") and f.exists():
                self.owned_zip(f, rel, pos, ctx, zdepth)
                continue
            base = zip_root if zip_root is not None else top
            try:
                inner = f.relative_to(base).parts
            except ValueError:
                inner = (f.name,)
            assignment = pos.assignment
            if assignment is None and zip_root is not None:
                assignment = next((p for p in inner[:-1] if p in self.known), None)
            self.add(f, rel, pos, assignment, _clean("/".join(inner)), len(inner) + zdepth)
        for x in dirs:
            self.own(x, pos, ctx, top, zip_root=zip_root, zdepth=zdepth)

    def owned_zip(self, f: Path, rel: str, pos: _Pos, ctx: _Ctx, zdepth: int = 0):
        if ctx.depth + zdepth + 1 > self.limits.max_depth:
            self.bad(rel, "zip inside a zip inside a zip: not opened", pos)
            return
        sub = self.extract(f, rel, pos)
        if sub is not None:
            zctx = _Ctx(sub, rel + ":", ctx.depth)
            self.own(sub, pos, zctx, top=sub, zip_root=sub, zdepth=zdepth + 1)

    def add(self, f: Path, rel: str, pos: _Pos, assignment, filename: str, depth: int, stamp=None):
        refused = self.pseudo.get(f) if not f.exists() else None
        self.files.append(_File(None if refused else f, rel, pos, assignment, filename, stamp,
                                depth, refused))


def _latest_stamp(stamps):
    """(text of the latest parseable time or None, notes, problem or None)."""
    good, bad, notes = [], [], []
    for where, text in stamps:
        t = parse_timestamp(text)
        (good if t is not None else bad).append((t, text, where))
    for _, text, where in bad:
        notes.append(f"unreadable submission time {_show(text)} in {where} ignored")
    if good:
        best = max(good, key=lambda g: g[0])
        if len({g[0] for g in good}) > 1:
            notes.append(f"{len(good)} different submission times given; the latest, "
                         f"{best[1]} ({best[2]}), is used")
        return best[1], notes, None
    if bad:
        problem = (f"the submission time could not be read ({_show(bad[0][1])} in {bad[0][2]}): "
                   "lateness was NOT assessed; check it by hand")
        return None, notes, problem
    return None, notes, None


def collect(source: str | os.PathLike, assignments: Mapping[str, AssignmentSpec],
            only: str | None = None, limits: ZipLimits = ZipLimits(),
            workdir: str | os.PathLike | None = None,
            max_shipped_bytes: int = MAX_SHIPPED_BYTES) -> Intake:
    """Find every submission in ``source`` (a folder or a .zip).

    assignments: the gradable assignments by name. only: grade this assignment only
    (``None``: every assignment found). workdir: where zips are extracted (a temporary
    folder that is removed afterwards when None). max_shipped_bytes: the most bytes of
    other files (``helper.py``...) kept per submission.

    Raises ``FileNotFoundError`` or ``UnsafeArchive`` only for ``source`` itself (missing,
    not a folder, a notebook or a readable zip); whatever is inside it becomes submissions,
    rejections with a reason, or notes.
    """
    source = Path(source)
    result = Intake()
    own_tmp = workdir is None
    tmp = Path(tempfile.mkdtemp(prefix="normlab-intake-")) if own_tmp else Path(workdir)
    try:
        if not source.exists():
            raise FileNotFoundError(f"{source} does not exist")
        scan = _Scan(dict(assignments), only, limits, tmp, result)
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
                for r in safe_extract(source, root, limits):
                    result.rejections.append(r)
                    if r.parts and r.file:
                        scan.pseudo[root.joinpath(*r.parts)] = r.reason
        else:
            root = source
        scan.level(root, _Ctx(root, "", 0))
        _group(scan, scan.known, only, result, max_shipped_bytes)
    finally:
        if own_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


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


def _student_ids(raws) -> tuple[dict, list]:
    """raw student name -> id. Names that give the same id are told apart (the name that
    *is* the id keeps it, the others get a suffix from their own name): a collision is
    reported, never a merge, whatever the order."""
    by_sid: dict = {}
    for s in raws:
        by_sid.setdefault(safe_student_id(s), set()).add(s)
    ids, notes = {}, []
    for sid, names in sorted(by_sid.items()):
        if len(names) == 1:
            ids[next(iter(names))] = sid
            continue
        for s in names:
            ids[s] = sid if s == sid else f"{sid[:92]}_{hashlib.sha256(s.encode()).hexdigest()[:6]}"
        notes.append("student id collision: " + ", ".join(
            f"{_show(s)} graded as {ids[s]!r}" for s in sorted(names)))
    return ids, notes


def _group(scan: _Scan, known: Mapping[str, AssignmentSpec], only: str | None,
           result: Intake, max_shipped_bytes: int = MAX_SHIPPED_BYTES) -> None:
    files = scan.files
    groups: dict = {}
    places: dict = {}  # (student, assignment) -> positions

    def place(key, pos):
        lst = places.setdefault(key, [])
        if all(p is not pos for p in lst):
            lst.append(pos)

    for f in files:
        if not f.filename.lower().endswith(".ipynb"):
            continue
        raw = None
        if f.refused is None:
            try:
                raw = f.path.read_bytes() if f.path.stat().st_size <= MAX_NOTEBOOK_BYTES else None
            except OSError as exc:
                scan.bad(f.rel, f"cannot read: {exc.strerror or exc}", f.pos)
                continue
        text_guess = raw.decode("utf-8", "replace") if raw is not None else None
        a = _which_assignment(f, known, only, text_guess)
        if a is None:
            if f.refused is None:
                scan.bad(f.rel, "cannot tell which assignment this notebook is for (use --assignment)",
                         f.pos)
            continue
        if only and a != only:
            continue
        if a not in known:
            scan.bad(f.rel, f"unknown assignment {a!r}", f.pos)
            continue
        groups.setdefault((f.student, a), []).append((f, raw))
        place((f.student, a), f.pos)
    # a place the layout gives (submitted/<student>/<assignment>/, an exchange folder) is a
    # submission even with no notebook in it
    for pos in scan.positions:
        a = pos.assignment
        if a is None or (only and a != only):
            continue
        if a not in known:
            scan.bad(pos.rel, f"unknown assignment {a!r}", pos)
            continue
        groups.setdefault((pos.student, a), [])
        place((pos.student, a), pos)
    # every other student in the input appears too: in each assignment graded
    graded = [only] if only else sorted({a for _, a in groups})
    has_row = {s for s, _ in groups}
    for pos in scan.positions:
        if pos.student in has_row:
            continue
        if graded:
            for a in graded:
                groups.setdefault((pos.student, a), [])
                place((pos.student, a), pos)
        else:
            scan.bad(pos.rel, "no notebook found: cannot tell which assignment this is for "
                              "(use --assignment)", pos)
        has_row.add(pos.student)
    ids, collisions = _student_ids({s for s, _ in groups} | {p.student for p in scan.positions})
    result.notes += collisions
    for r, pos in scan.owned_rejections:
        r.student = ids.get(pos.student, safe_student_id(pos.student))
    others_by: dict = {}  # the student's non-notebook files
    for f in files:
        if not f.filename.lower().endswith(".ipynb"):
            others_by.setdefault(f.student, []).append(f)
    used_files: set = set()
    for (student, a), items in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        sid = ids[student]
        try:
            others = [f for f in others_by.get(student, []) if f.assignment in (None, a)]
            sub = _submission(student, sid, known[a], items, places.get((student, a), []),
                              others, max_shipped_bytes)
            used_files |= {id(f) for f in others if f.rel in sub.origin}
        except Exception as exc:  # never take the run down: this one submission says why
            sub = Submission(student=sid, assignment=a, display_name=student)
            for stem in known[a].notebooks:
                sub.notebooks[stem] = None
                sub.missing[stem] = (f"intake could not read this submission ({type(exc).__name__}: "
                                     f"{str(exc)[:200]})")
        for note in collisions:
            if _show(student) in note:
                sub.notes.append(note)
        result.submissions.append(sub)
    # non-notebook files no submission took (outside a notebook's folder, over the limits,
    # not in any student's submission): say so
    ignored = sorted({f.rel for f in files if not f.filename.lower().endswith(".ipynb")
                      and id(f) not in used_files} | set(scan.loose))
    if ignored:
        result.notes.append(f"{len(ignored)} non-notebook file(s) not given to the grader, e.g. "
                            + ", ".join(ignored[:5]))


def _shipped_files(sub: Submission, chosen: list, others: list, max_bytes: int) -> list:
    """Put the student's other files below the submitted notebooks' folder into
    ``sub.files`` (paths relative to that folder, as nbgrader's autograded folder holds
    them); return the relative paths of the files not taken."""
    from .kept_files import MAX_KEPT_NAME_BYTES
    from .sandbox import unsafe_relative_path

    dirs = {str(PurePosixPath(f.filename).parent) for f in chosen}
    base = dirs.pop() if len(dirs) == 1 else "."
    left = []
    total = 0
    for f in sorted(others, key=lambda f: (f.depth, f.rel)):
        name = PurePosixPath(f.filename)
        if f.refused or f.path is None or name.name.lower().endswith(NOT_SHIPPED_SUFFIXES) \
                or name.name in IGNORED_NAMES:
            continue
        rel = str(name) if base == "." else (str(name.relative_to(base))
                                             if name.is_relative_to(base) else None)
        why = None
        if rel is None:
            why = "outside the notebook's folder"
        elif unsafe_relative_path(rel):
            why = unsafe_relative_path(rel)
        elif any(len(p.encode("utf-8", "surrogateescape")) > MAX_KEPT_NAME_BYTES for p in rel.split("/")):
            why = f"a name longer than {MAX_KEPT_NAME_BYTES} bytes"  # could not be kept after grading
        elif rel in sub.files:
            why = "another copy was taken"
        elif len(sub.files) >= MAX_SHIPPED_FILES:
            why = f"more than {MAX_SHIPPED_FILES} files"
        else:
            try:
                size = f.path.stat().st_size
                if total + size > max_bytes:
                    why = f"over the {max_bytes // 2**20} MiB of files kept per submission"
                else:
                    data = f.path.read_bytes()
                    if total + len(data) > max_bytes:
                        why = f"over the {max_bytes // 2**20} MiB of files kept per submission"
                    else:
                        sub.files[rel] = data
                        total += len(data)
                        sub.origin.append(f.rel)
            except OSError as exc:
                why = f"cannot be read ({exc.strerror or exc})"
        if why:
            left.append(f"{f.rel} ({why})")
    return left


def _submission(student: str, sid: str, spec: AssignmentSpec, items, places, others=(),
                max_shipped_bytes: int = MAX_SHIPPED_BYTES) -> Submission:
    a = spec.name
    display = items[0][0].display if items else (places[0].display if places else student)
    sub = Submission(student=sid, assignment=a, display_name=display)
    if sid != student:
        sub.notes.append(f"student id {_show(student)} used as {sid!r}")
    for p in places:
        for n in p.notes:
            if n not in sub.notes:
                sub.notes.append(n)
    stamps = [s for p in places for s in p.stamps]
    sub.timestamp, tnotes, sub.timestamp_problem = _latest_stamp(stamps)
    sub.notes += tnotes
    if sub.timestamp_problem:
        sub.notes.append(sub.timestamp_problem)
    refused = [f for f, _ in items if f.refused]
    for f in refused:
        sub.notes.append(f"not graded: {f.refused}")
    items = [(f, raw) for f, raw in items if not f.refused]
    times = {}
    for f, _ in items:
        if id(f.pos) not in times:
            times[id(f.pos)] = max((t for t in (parse_timestamp(x) for _, x in f.pos.stamps) if t),
                                   default=_dt.datetime.min)
    # the newest file wins per notebook name (submission time, LMS order, re-upload suffix,
    # then the copy nearest the top of the submission)
    items.sort(key=lambda fr: (times[id(fr[0].pos)], fr[0].rank,
                               _reupload_rank(PurePosixPath(fr[0].filename).stem), -fr[0].depth,
                               fr[0].rel))
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
    used: set = set()
    picked: list = []
    for stem in spec.notebooks:
        chosen, how = _choose(stem, spec, candidates, used)
        if chosen is None:
            names = ", ".join(sorted(PurePosixPath(f.filename).name for f, _ in candidates)) or "none"
            sub.notebooks[stem] = None
            where = f" in {places[0].rel}" if places else ""
            reason = f"{stem}.ipynb was not submitted{where} (notebooks found: {names})"
            if refused:
                reason += "; refused: " + "; ".join(f.refused for f in refused)
            sub.missing[stem] = reason
            continue
        f, raw = chosen
        used.add(id(f))
        picked.append(f)
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
        except Exception as exc:  # a notebook that breaks nbformat: this notebook's reason
            sub.notebooks[stem] = None
            sub.missing[stem] = (f"{PurePosixPath(f.filename).name} cannot be read as a notebook "
                                 f"({type(exc).__name__})")
            continue
        sub.notes += notes
        sub.notebooks[stem] = text
    extra = [f.rel for f, _ in candidates if id(f) not in used]
    if extra:
        sub.notes.append("ignored notebooks: " + ", ".join(extra))
    left = _shipped_files(sub, picked, list(others), max_shipped_bytes) if picked else []
    if sub.files:
        shown = ", ".join(_show(r, 80) for r in sorted(sub.files)[:10])
        sub.notes.append(f"{len(sub.files)} file(s) shipped with the notebook, put beside it while "
                         f"grading (the assignment's own files replace copies of theirs): {shown}")
    if left:
        sub.notes.append("files not given to the grader: " + "; ".join(left[:10])
                         + (f" and {len(left) - 10} more" if len(left) > 10 else ""))
    return sub


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
