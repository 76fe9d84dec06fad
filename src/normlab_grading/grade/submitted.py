"""nbgrader's collect layout in normlab-grade's output: ``OUT/submitted/<student>/<assignment>/``.

nbgrader's formgrader asks nbgrader's API (``NbGraderAPI.get_submission``) whether a student
submitted an assignment, and it looks in the course's ``submitted/`` folder: a submission is
there when ``submitted/<student>/<assignment>/`` exists, and it counts as autograded only when
that folder's ``timestamp.txt`` gives the same time as the gradebook (both absent counts as the
same). ``normlab-grade`` writes that folder for every submission it grades (also one that
failed: the student did submit), as ``nbgrader collect`` or ``nbgrader zip_collect`` would:

- the notebooks as graded (after intake's repairs: the exact text the grader ran), under the
  source's names (``<stem>.ipynb``; a notebook the student did not submit is absent);
- the files the student shipped with them (``Submission.files``), with the same path checks
  and renames as the autograded folder (``cli._save_files``: formgrader's server serves this
  folder too, so active content gets ``.txt``);
- ``timestamp.txt`` in nbgrader's exchange format (``2026-03-01 10:00:00.000000 UTC``, what
  ``nbgrader submit`` writes with its default ``timestamp_format`` and timezone), the
  submission time intake read (``timestamp.txt``, an exchange folder's or a Blackboard file's
  name), converted to UTC, which nbgrader's ``parse_utc`` reads back to the time the gradebook
  holds. With no submission time, there is no ``timestamp.txt`` (as ``zip_collect`` writes
  none): the time of intake there would differ from the gradebook's (none) and make nbgrader
  call the submission not autograded, and in the gradebook it would make every submission
  graded after a due date late.

The folder is built beside its place (a hidden ``.<assignment>.collect-*`` folder nbgrader does
not look at) and swapped in with one rename (``renameat2(RENAME_EXCHANGE)``; where the file
system has no exchange, two renames): a reader sees the old folder or the new one, never half
of one. A submission older than the one already there is not graded (``older_than_collected``),
as ``nbgrader collect --update`` replaces a submission only with a newer one. When the input
is that folder itself (``--out`` is the course, the input its ``submitted/``), nothing is
written there (``input_is_collected``).
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import errno
import os
import secrets
import shutil
from pathlib import Path

__all__ = ["SUBMITTED", "MARKER", "TIMESTAMP_FORMAT", "folder", "timestamp_text", "collected_timestamp",
           "older_than_collected", "input_is_collected", "write", "ensure"]

SUBMITTED = "submitted"
# in OUT/submitted: plain nbgrader autograde refuses what is below it
# (nbgrader_ext.RefuseNormlabGradeCollect)
MARKER = ".normlab-grade"
MARKER_TEXT = ("This collect folder was written by normlab-grade. Grade it again with "
               "normlab-grade, not nbgrader autograde: nbgrader would run the students' code "
               "unsandboxed and let it judge itself.\n")
# nbgrader's Exchange.timestamp_format, with Exchange.timezone's default (UTC)
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"
_TMP = ".{assignment}.collect-"


def _stamp(when: _dt.datetime) -> str:
    """``when`` in ``TIMESTAMP_FORMAT`` with a four-digit year: strftime's ``%Y`` writes year 26
    as ``26``, which nbgrader reads back as 2026 (a submission time intake accepted from a
    student's ``timestamp.txt`` would no longer match the gradebook's)."""
    return f"{when.year:04d}{when.strftime(TIMESTAMP_FORMAT[2:])}"


def folder(out: Path, student: str, assignment: str) -> Path:
    """``OUT/submitted/<student>/<assignment>``."""
    return Path(out) / SUBMITTED / student / assignment


def timestamp_text(timestamp: str | None) -> str | None:
    """The ``timestamp.txt`` text for intake's submission time (any form intake reads), or
    None when there is none or it cannot be read (then lateness is not assessed)."""
    from .intake import parse_timestamp

    when = parse_timestamp(timestamp) if timestamp else None
    return None if when is None else _stamp(when)


def collected_timestamp(out: Path, student: str, assignment: str) -> _dt.datetime | None:
    """The time in the written folder's ``timestamp.txt`` as nbgrader's API reads it (naive
    UTC), or None when there is none or nbgrader could not read it."""
    from nbgrader.utils import parse_utc

    try:
        text = (folder(out, student, assignment) / "timestamp.txt").read_text().strip()
        return parse_utc(text) if text else None
    except (OSError, ValueError, OverflowError, UnicodeDecodeError):
        return None


def older_than_collected(out: Path, student: str, assignment: str, timestamp: str | None) -> str | None:
    """Why a submission with this time must not replace the one already in the folder (it is
    older, and ``nbgrader collect --update`` keeps the newer one), or None. A submission with
    no readable time, or with the same time (a regrade), replaces it."""
    from .intake import parse_timestamp

    when = parse_timestamp(timestamp) if timestamp else None
    there = collected_timestamp(out, student, assignment)
    if when is None or there is None or when >= there:
        return None
    return (f"submitted at {_stamp(when)}, before the submission already graded "
            f"({_stamp(there)} in {SUBMITTED}/{student}/{assignment}/"
            "timestamp.txt): not graded, as nbgrader collect --update keeps the newer one; "
            f"remove that folder from the output to grade this one")


def input_is_collected(out: Path, source) -> bool:
    """Whether the submissions are read from ``OUT/submitted`` or a folder below it (``--out``
    is the course and the input its nbgrader ``submitted/``): then that folder is the
    instructor's collect folder already, and nothing is written over it (intake keeps less
    than a student handed in: other notebooks, files over the limits)."""
    collected = (Path(out) / SUBMITTED).resolve()
    here = Path(source).resolve()
    return here == collected or collected in here.parents


def write(out: Path, student: str, assignment: str, notebooks: dict, files: dict | None,
          timestamp: str | None) -> Path:
    """Write (or replace) the submission's folder: ``notebooks`` (stem -> JSON text, or None
    when not submitted), ``files`` (relative path -> bytes), ``timestamp`` (intake's).
    Returns the folder. Raises OSError when it cannot be written (nothing is left half-written:
    the old folder stays)."""
    from .cli import _save_files
    from .report import atomic_write

    dest = folder(out, student, assignment)
    dest.parent.mkdir(parents=True, exist_ok=True)
    marker = Path(out) / SUBMITTED / MARKER
    if not marker.is_file():
        atomic_write(marker, MARKER_TEXT)
    _remove_leftovers(dest)
    tmp = dest.parent / f"{_TMP.format(assignment=assignment)}{os.getpid()}-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        names = {f"{stem}.ipynb" for stem, text in notebooks.items() if text is not None}
        for stem, text in notebooks.items():
            if text is not None:
                atomic_write(tmp / f"{stem}.ipynb", text.encode("utf-8", "surrogateescape")
                             if isinstance(text, str) else text)
        _save_files(tmp, dict(files or {}), names, [])  # its notes are the autograded folder's
        stamp = timestamp_text(timestamp)
        if stamp is not None:
            atomic_write(tmp / "timestamp.txt", stamp)
        _swap_in(tmp, dest)
    finally:
        if tmp.exists() or tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def ensure(out: Path, sub) -> bool:
    """Write the folder of an intake ``Submission`` whose record is already saved when the
    folder is missing (output of an older normlab-grade, or a run stopped between the two);
    True when written."""
    if folder(out, sub.student, sub.assignment).is_dir():
        return False
    write(out, sub.student, sub.assignment, sub.notebooks, sub.files, sub.timestamp)
    return True


def _remove_leftovers(dest: Path) -> None:
    """Folders a stopped run left while building this one (the output is locked: no other
    normlab-grade is building them)."""
    for p in dest.parent.glob(f"{_TMP.format(assignment=dest.name)}*"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _swap_in(tmp: Path, dest: Path) -> None:
    """Put ``tmp`` at ``dest`` in one step; what was at ``dest`` ends at ``tmp``."""
    if not (dest.exists() or dest.is_symlink()):
        os.rename(tmp, dest)
        return
    if dest.is_symlink() or not dest.is_dir():  # not ours: never followed
        dest.unlink()
        os.rename(tmp, dest)
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.renameat2(_AT_FDCWD, os.fsencode(tmp), _AT_FDCWD, os.fsencode(dest),
                            _RENAME_EXCHANGE)
        err = ctypes.get_errno() if rc != 0 else 0
    except (AttributeError, OSError):
        rc, err = -1, errno.ENOSYS
    if rc == 0:
        return
    if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        raise OSError(err, os.strerror(err), str(dest))
    old = tmp.with_name(tmp.name + "-old")
    os.rename(dest, old)
    os.rename(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
