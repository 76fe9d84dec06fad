"""``normlab-grade export``: the scores of a normlab-grade run as a file an LMS gradebook imports.

Usage::

    normlab-grade export --to canvas|moodle|csv --roster ROSTER.csv [--out FILE]
                         [--assignment NAME] [--moodle-id email|idnumber|username]
                         [--allow-unmatched] GRADED_DIR

GRADED_DIR is the ``--out`` folder of a normlab-grade run. The scores come from its result
records, ``results/<assignment>/<student>.json`` (``student``, ``assignment``, ``status``,
``score``, ``max_score``, ``reason``, as ``cli._save_result`` writes them); only when it has
none, from its ``grades.csv``. Scores are the autograder's: no nbgrader late penalty (the
course configures none) and no manual grade from the gradebook. A record that cannot be read
is an error, never skipped. Every assignment found is exported (``--assignment``: one).

The roster (UTF-8 CSV, a byte order mark allowed; header names are matched without case
and surrounding spaces; other columns are ignored) maps the grader's student ids (the
submission folder names, column ``student_id``) to the LMS's:

- ``--to canvas``: ``name``, ``canvas_id`` (the Canvas user id, digits), ``sis_user_id``,
  ``sis_login_id``, ``section``. Required: ``student_id``, ``name`` and at least one of
  ``canvas_id``, ``sis_user_id``, ``sis_login_id``, each row having one of them. A column
  headed ``<assignment> (<digits>)`` (copy it from a Canvas gradebook export) gives that
  assignment's Canvas id; its cells are ignored.
- ``--to moodle``: ``email``, ``idnumber`` or ``username``; the identifier is the first of
  these the roster has (``--moodle-id`` chooses), and every row must have one.
- ``--to csv``: ``student_id`` only; the roster is optional.

A bad roster (not UTF-8, not CSV, a required column missing, a row without a student id or
an LMS id, the same student id or LMS id twice, a Canvas id that is not a number) is an error
naming the problem and the expected columns.

Matching. Students graded but not in the roster, roster students with no grade at all and
roster students with no grade in one of the exported assignments are reported on stderr. Then
nothing is written and the exit status is 1, unless ``--allow-unmatched``: the file is
written and the same lines are warnings. Failed submissions (a limit hit, a crash: the
score is what the tests passed before) are exported with their score and each one is warned
about. Every cell of the output (header included) goes through ``report._safe_cell``: a cell
a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first; numbers excepted)
gets a leading ``'``, and control characters are escaped. An LMS id changed that way no
longer matches in the LMS, so that is warned about too. The file is written to a temporary
file beside ``--out`` and renamed over it, complete or not at all (default
``GRADED_DIR/export-<to>.csv``; ``--out -``: standard output). CSV as RFC 4180 (the csv
module: comma, ``"`` quoting where needed, CRLF line ends), UTF-8 without a byte order
mark; numbers as in grades.csv (an integer, else two decimals).

Formats, and where they come from:

- **Canvas**, the Gradebook's "Import" (CSV). From Canvas's importer
  (``GradebookImporter`` in instructure/canvas-lms) and its Gradebook export: the header's
  first columns are ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``
  (with the SIS columns the student columns are five, the last ``Section``); each further
  column is an assignment, ``<title> (<assignment id>)`` matching the assignment of that
  id, a plain title matching an assignment of that exact title, else creating a new one. A
  row whose first cell contains ``Points Possible`` gives the points of each assignment
  (written second, with each assignment's ``max_score``). A student row is matched by
  ``ID`` (the Canvas user id), else by SIS User ID or SIS Login ID, else by the name. An
  empty cell changes nothing, so a roster student without a submission gets an empty
  cell. Rows in roster order; a name containing "Points Possible" is written empty (and
  warned about), or Canvas would take its row for the points row.
- **Moodle**, "Import grades from CSV file" (``gradeimport_csv``). From moodle/moodle's
  ``grade/import/csv`` (``load_data.php``) and ``grade_import_form.php``: the encoding and
  separator are chosen on upload (UTF-8, comma); then "Identify user by" maps one column
  ("Map from": the first column here, headed ``email``, ``idnumber`` or ``username``) to a
  user field ("Map to": Email address, ID number or Username, which you choose), and each
  other column (one per assignment, headed with its name, the score in points) is mapped
  by hand to a grade item (give it ``max_score`` as its maximum). A user that is not found
  aborts the whole import; a score over 100 aborts it too unless the site allows larger
  grades (warned about); and an empty cell (or ``-``) imports as "no grade", replacing a
  grade already there (``grade_import_commit``): so a roster student with no grade at all
  gets no row, and a student with no grade in one assignment an empty cell (both reported).
- **csv**: ``student_id,assignment,score,max_score,status,reason``, one row per result
  record (the grader's ids; students missing from a roster included), sorted.

Exit status: 0 written, 1 unmatched students (nothing written), 2 a usage, roster, input
or write error (nothing written).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .report import _fmt, _safe_cell, for_terminal

__all__ = ["ExportError", "Grade", "Roster", "read_roster", "load_grades", "canvas_csv",
           "moodle_csv", "plain_csv", "unmatched", "warnings", "write_atomic", "main"]

FORMATS = ("canvas", "moodle", "csv")
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_FIELDS = ("name", "canvas_id", "sis_user_id", "sis_login_id", "section")
CANVAS_IDS = ("canvas_id", "sis_user_id", "sis_login_id")
MOODLE_IDS = ("email", "idnumber", "username")
PLAIN_HEADER = ["student_id", "assignment", "score", "max_score", "status", "reason"]
_EXPECTED = {
    "canvas": "student_id, name, canvas_id, sis_user_id, sis_login_id, section (required: "
              "student_id, name and one of canvas_id, sis_user_id, sis_login_id; optional: a "
              "column headed '<assignment> (<Canvas assignment id>)' per assignment)",
    "moodle": "student_id and one of email, idnumber, username",
    "csv": "student_id",
}
_ASSIGNMENT_ID = re.compile(r"^(?P<name>.*\S)\s*\((?P<id>\d+)\)$")


class ExportError(Exception):
    """A problem that stops the export (bad roster, unreadable input, write failure)."""


@dataclass(frozen=True)
class Grade:
    student: str
    assignment: str
    score: float
    max_score: float
    status: str
    reason: str = ""


@dataclass
class Roster:
    path: str
    fmt: str
    rows: list = field(default_factory=list)  # dicts: student_id, the format's fields, _line
    id_field: str | None = None  # Moodle: the identifier column
    canvas_ids: dict = field(default_factory=dict)  # assignment -> Canvas assignment id

    def ids(self) -> list[str]:
        return [r["student_id"] for r in self.rows]


# ----------------------------------------------------------------------------- roster
def _show(text) -> str:
    return repr(for_terminal(text))


def read_roster(path, fmt: str, moodle_id: str | None = None) -> Roster:
    """Read and check the roster for ``fmt``; ``ExportError`` naming the problem."""
    path = Path(path)
    where = f"the roster {for_terminal(path)}"
    expected = f"expected columns: {_EXPECTED[fmt]}"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExportError(
            f"{where} is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}): save it "
            "as UTF-8 CSV (Excel: 'CSV UTF-8')") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        table = list(reader)
    except csv.Error as exc:
        raise ExportError(f"{where} is not a CSV file (line {reader.line_num}): {exc}") from None
    if not table or not any(c.strip() for c in table[0]):
        raise ExportError(f"{where} is empty or its first line is not a header; {expected}")
    header = [h.strip() for h in table[0]]
    keys = [h.lower() for h in header]
    seen: dict = {}
    for k in keys:
        if k and k in seen:
            raise ExportError(f"{where} has the column {_show(k)} twice; {expected}")
        seen[k] = True
    roster = Roster(str(path), fmt)
    wanted = ["student_id"]
    if fmt == "canvas":
        wanted += [f for f in CANVAS_FIELDS if f in seen]
        missing = [f for f in ("student_id", "name") if f not in seen]
        if not any(f in seen for f in CANVAS_IDS):
            missing.append("canvas_id (or sis_user_id or sis_login_id)")
    elif fmt == "moodle":
        if moodle_id is not None:
            roster.id_field = moodle_id if moodle_id in seen else None
            choice = moodle_id
        else:
            roster.id_field = next((f for f in MOODLE_IDS if f in seen), None)
            choice = "email, idnumber or username"
        missing = [f for f in ("student_id",) if f not in seen]
        if roster.id_field is None:
            missing.append(choice)
        else:
            wanted.append(roster.id_field)
    else:
        missing = [f for f in ("student_id",) if f not in seen]
    if missing:
        raise ExportError(f"{where} has no column {', '.join(missing)} (it has: "
                          f"{', '.join(h for h in header if h) or 'none'}); {expected}")
    if fmt == "canvas":
        for h in header:
            m = _ASSIGNMENT_ID.match(h)
            if m:
                name, aid = m["name"], m["id"]
                if roster.canvas_ids.get(name, aid) != aid:
                    raise ExportError(f"{where} gives two Canvas ids for the assignment "
                                      f"{_show(name)}: {roster.canvas_ids[name]} and {aid}")
                roster.canvas_ids[name] = aid
    if fmt != "canvas" and "name" in seen:
        wanted.append("name")  # for the messages only
    index = {k: i for i, k in enumerate(keys) if k}
    by_student: dict = {}
    by_lms: dict = {}
    # "row n": the n-th CSV record, the header being row 1
    for n, row in enumerate(table[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
            raise ExportError(f"{where}, row {n}: more cells than the header has columns")
        rec = {f: (row[index[f]].strip() if index[f] < len(row) else "") for f in wanted}
        rec["_line"] = n
        sid = rec["student_id"]
        if not sid:
            raise ExportError(f"{where}, row {n}: no student_id; {expected}")
        if sid in by_student:
            raise ExportError(f"{where}: the student_id {_show(sid)} is on rows "
                              f"{by_student[sid]} and {n}")
        by_student[sid] = n
        lms_fields = CANVAS_IDS if fmt == "canvas" else (roster.id_field,) if fmt == "moodle" else ()
        lms_fields = [f for f in lms_fields if f in rec]
        if lms_fields and not any(rec[f] for f in lms_fields):
            raise ExportError(f"{where}, row {n} (student_id {_show(sid)}): no "
                              f"{' or '.join(lms_fields)}: the LMS could not find this student")
        if fmt == "canvas" and rec.get("canvas_id") and not re.fullmatch(r"[0-9]+", rec["canvas_id"]):
            raise ExportError(f"{where}, row {n} (student_id {_show(sid)}): canvas_id "
                              f"{_show(rec['canvas_id'])} is not a Canvas user id (digits)")
        for f in lms_fields:
            v = rec[f]
            if not v:
                continue
            key = (f, v.lower() if f == "email" else v)
            if key in by_lms:
                raise ExportError(f"{where}: {f} {_show(v)} is on rows {by_lms[key]} and {n} "
                                  "(two students would get the same LMS user)")
            by_lms[key] = n
        roster.rows.append(rec)
    return roster


# ----------------------------------------------------------------------------- grades
def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} is not a number")
    x = float(value)
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"{what} is not a finite number")
    return x


def _from_records(results: Path) -> list[Grade]:
    grades = []
    for adir in sorted(results.iterdir()):
        if not adir.is_dir() or adir.name.startswith("."):
            continue
        for f in sorted(adir.glob("*.json")):
            if f.name.startswith("."):
                continue
            try:
                rec = json.loads(f.read_text(encoding="utf-8"))
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
                for k in ("student", "assignment", "status"):
                    if not isinstance(rec.get(k), str):
                        raise ValueError(f"no {k}")
                if (rec["assignment"], rec["student"]) != (adir.name, f.stem):
                    raise ValueError(f"it is the record of {rec['student']}/{rec['assignment']}")
                grades.append(Grade(rec["student"], rec["assignment"],
                                    _number(rec.get("score"), "score"),
                                    _number(rec.get("max_score"), "max_score"),
                                    rec["status"], str(rec.get("reason") or "")))
            except (OSError, ValueError) as exc:
                raise ExportError(f"{for_terminal(f)}: unreadable result record "
                                  f"({for_terminal(exc)}); run the same normlab-grade command "
                                  "again to rewrite it") from None
    return grades


def _from_grades_csv(path: Path) -> list[Grade]:
    grades = []
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            need = {"student_id", "assignment", "status", "score", "max_score"}
            if not need <= set(reader.fieldnames or ()):
                raise ExportError(f"{for_terminal(path)} is not a normlab-grade grades.csv (columns "
                                  f"{', '.join(sorted(need))} expected)")
            for row in reader:
                try:
                    grades.append(Grade(row["student_id"], row["assignment"],
                                        _number(row["score"] or "nan", "score"),
                                        _number(row["max_score"] or "nan", "max_score"),
                                        row["status"], row.get("reason") or ""))
                except ValueError as exc:
                    raise ExportError(f"{for_terminal(path)}, line {reader.line_num}: "
                                      f"{exc}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExportError(f"cannot read {for_terminal(path)}: {for_terminal(exc)}") from None
    return grades


def load_grades(graded_dir, assignment: str | None = None) -> list[Grade]:
    """The scores in a normlab-grade ``--out`` folder: its result records, else grades.csv."""
    graded_dir = Path(graded_dir)
    if not graded_dir.is_dir():
        raise ExportError(f"{for_terminal(graded_dir)} is not a folder")
    results = graded_dir / "results"
    grades = _from_records(results) if results.is_dir() else []
    if not grades and (graded_dir / "grades.csv").is_file():
        grades = _from_grades_csv(graded_dir / "grades.csv")
    if not grades:
        raise ExportError(f"{for_terminal(graded_dir)} holds no results/<assignment>/<student>.json "
                          "and no grades.csv: give the --out folder of a normlab-grade run")
    if assignment is not None:
        found = sorted({g.assignment for g in grades})
        grades = [g for g in grades if g.assignment == assignment]
        if not grades:
            raise ExportError(f"no grades for the assignment {_show(assignment)} in "
                              f"{for_terminal(graded_dir)} (it has: {', '.join(found)})")
    return grades


def _table(grades):
    table = {(g.student, g.assignment): g for g in grades}
    assignments = sorted({g.assignment for g in grades})
    points = {a: max(g.max_score for g in grades if g.assignment == a) for a in assignments}
    return table, assignments, points


# ----------------------------------------------------------------------------- formats
def _render(rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)  # RFC 4180: comma, minimal quoting, CRLF
    for row in rows:
        w.writerow([_safe_cell(c) for c in row])
    return buf.getvalue()


def _score(table, student: str, assignment: str) -> str:
    g = table.get((student, assignment))
    return "" if g is None else _fmt(g.score)


def _points_row_name(name: str) -> bool:
    return "points possible" in name.lower()


def canvas_csv(roster: Roster, grades: list[Grade]) -> str:
    """Canvas Gradebook import: the five student columns, one per assignment, Points Possible."""
    table, assignments, points = _table(grades)
    cols = [f"{a} ({roster.canvas_ids[a]})" if a in roster.canvas_ids else a for a in assignments]
    rows = [CANVAS_HEADER + cols,
            ["Points Possible", "", "", "", ""] + [_fmt(points[a]) for a in assignments]]
    for r in roster.rows:
        # Canvas reads any row whose first cell says "Points Possible" as the points row
        cells = {**r, "name": "" if _points_row_name(r.get("name", "")) else r.get("name", "")}
        rows.append([cells.get(f, "") for f in CANVAS_FIELDS]
                    + [_score(table, r["student_id"], a) for a in assignments])
    return _render(rows)


def moodle_csv(roster: Roster, grades: list[Grade]) -> str:
    """Moodle CSV grade import: the identifier column, one column per assignment (points)."""
    table, assignments, _ = _table(grades)
    rows = [[roster.id_field] + assignments]
    for r in roster.rows:
        cells = [_score(table, r["student_id"], a) for a in assignments]
        if any(cells):  # no row at all rather than cells that would clear Moodle's grades
            rows.append([r[roster.id_field]] + cells)
    return _render(rows)


def plain_csv(grades: list[Grade]) -> str:
    """``student_id,assignment,score,max_score,status,reason``, one row per result."""
    rows = [PLAIN_HEADER]
    for g in sorted(grades, key=lambda g: (g.student, g.assignment)):
        rows.append([g.student, g.assignment, _fmt(g.score), _fmt(g.max_score), g.status, g.reason])
    return _render(rows)


# ----------------------------------------------------------------------------- matching
def unmatched(roster: Roster | None, grades: list[Grade], fmt: str) -> list[str]:
    """One line per student the export cannot carry over whole (nothing is dropped silently)."""
    if roster is None:
        return []
    table, assignments, _ = _table(grades)
    on_roster = set(roster.ids())
    lines = []
    for s in sorted({g.student for g in grades} - on_roster):
        done = ", ".join(a for a in assignments if (s, a) in table)
        where = " (kept in the csv file)" if fmt == "csv" else " (not in the file)"
        lines.append(f"graded but not in the roster: {for_terminal(s)} ({for_terminal(done)})"
                     + where)
    for r in roster.rows:
        s = r["student_id"]
        name = f" ({for_terminal(r['name'])})" if r.get("name") else ""
        have = [a for a in assignments if (s, a) in table]
        if not have:
            how = {"canvas": "empty cells", "moodle": "no row: an empty cell would clear a grade in "
                   "Moodle", "csv": "no row"}[fmt]
            lines.append(f"in the roster but not graded: {for_terminal(s)}{name} ({how})")
        else:
            for a in assignments:
                if a not in have:
                    how = ("an empty cell, which Moodle imports as 'no grade', clearing a grade "
                           "already there" if fmt == "moodle" else
                           "an empty cell" if fmt == "canvas" else "no row")
                    lines.append(f"no grade for {for_terminal(s)}{name} in {for_terminal(a)} "
                                 f"({how})")
    return lines


def warnings(roster: Roster | None, grades: list[Grade], fmt: str) -> list[str]:
    """What the instructor should look at, not stopping the export."""
    lines = []
    _, assignments, points = _table(grades)
    for a in assignments:
        maxima = sorted({g.max_score for g in grades if g.assignment == a})
        if len(maxima) > 1:
            lines.append(f"{for_terminal(a)}: records disagree on the maximum score "
                         f"({', '.join(map(_fmt, maxima))}; graded with different versions?); "
                         f"{_fmt(points[a])} is used")
    for g in sorted(grades, key=lambda g: (g.assignment, g.student)):
        if g.status == "failed":
            lines.append(f"{for_terminal(g.student)} / {for_terminal(g.assignment)} failed and is "
                         f"exported with {_fmt(g.score)}/{_fmt(g.max_score)}: "
                         f"{for_terminal(g.reason)} (check it; `normlab-grade --retry-failed` "
                         "grades it again)")
    if roster is None:
        return lines
    fields = {"canvas": CANVAS_IDS, "moodle": (roster.id_field,)}.get(fmt, ())
    lms = {"canvas": "Canvas", "moodle": "Moodle"}.get(fmt)
    for r in roster.rows:
        for f in fields:
            v = r.get(f, "")
            if v and _safe_cell(v) != v:
                lines.append(f"{f} {_show(v)} of {for_terminal(r['student_id'])} is written "
                             f"{_show(_safe_cell(v))} (formula/control-character escaping): {lms} "
                             "will not match it")
    if fmt == "moodle":
        over = sorted({g.assignment for g in grades if g.score > 100})
        if over:
            lines.append(f"scores over 100 in {', '.join(map(for_terminal, over))}: Moodle refuses "
                         "them unless the site allows larger grades (unlimitedgrades, "
                         "gradepointmax)")
    if fmt == "canvas":
        for r in roster.rows:
            if _points_row_name(r.get("name", "")):
                lines.append(f"the name of {for_terminal(r['student_id'])} says 'Points Possible', "
                             "which Canvas would read as the points row: written empty (Canvas "
                             "matches the student by the ids)")
        for a in sorted(set(roster.canvas_ids) - set(assignments)):
            lines.append(f"the roster gives a Canvas id for {_show(a)}, which is not exported")
    return lines


# ----------------------------------------------------------------------------- writing
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename it over
    ``path``: the file is complete or untouched; the temporary file never stays."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ExportError(f"cannot write {for_terminal(path)}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), 0o666 & ~_umask())  # as open() would (mkstemp: 0600)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ExportError(f"cannot write {for_terminal(path)}: {exc.strerror or exc}") from None
        raise


# ----------------------------------------------------------------------------- command
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="normlab-grade export",
        description="Export the scores of a normlab-grade run for a Canvas or Moodle gradebook "
                    "import, or as a plain CSV.")
    p.add_argument("graded", type=Path, metavar="GRADED_DIR",
                   help="the --out folder of a normlab-grade run")
    p.add_argument("--to", required=True, choices=FORMATS, help="the file format")
    p.add_argument("--roster", type=Path, default=None,
                   help="CSV mapping student_id (the grader's ids) to the LMS's ids "
                        "(required for canvas and moodle)")
    p.add_argument("--out", "-o", default=None,
                   help="the file to write (default: GRADED_DIR/export-<to>.csv; - for stdout)")
    p.add_argument("--assignment", "-a", default=None, help="export this assignment only")
    p.add_argument("--moodle-id", choices=MOODLE_IDS, default=None,
                   help="the roster column identifying Moodle users (default: the first of "
                        "email, idnumber, username the roster has)")
    p.add_argument("--allow-unmatched", action="store_true",
                   help="write the file even if some students are graded but not in the roster, "
                        "or in the roster without a grade (they are still reported)")
    return p


def main(argv=None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.to != "csv" and args.roster is None:
        p.error(f"--to {args.to} needs --roster")
    if args.moodle_id is not None and args.to != "moodle":
        p.error("--moodle-id is for --to moodle")

    def log(msg):
        print(f"normlab-grade export: {msg}", file=sys.stderr, flush=True)

    try:
        roster = read_roster(args.roster, args.to, args.moodle_id) if args.roster else None
        grades = load_grades(args.graded, args.assignment)
        text = {"canvas": lambda: canvas_csv(roster, grades),
                "moodle": lambda: moodle_csv(roster, grades),
                "csv": lambda: plain_csv(grades)}[args.to]()
        for line in warnings(roster, grades, args.to):
            log(f"warning: {line}")
        problems = unmatched(roster, grades, args.to)
        for line in problems:
            log(("warning: " if args.allow_unmatched else "") + line)
        if problems and not args.allow_unmatched:
            log(f"{len(problems)} unmatched: nothing written (fix the roster, or pass "
                "--allow-unmatched to write the file anyway)")
            return 1
        if args.out == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
            return 0
        out = Path(args.out) if args.out else args.graded / f"export-{args.to}.csv"
        write_atomic(out, text)
    except ExportError as exc:
        log(f"error: {exc}")
        return 2
    rows = len(list(csv.reader(io.StringIO(text, newline="")))) - (2 if args.to == "canvas" else 1)
    what = "result(s)" if args.to == "csv" else "student(s)"
    log(f"wrote {for_terminal(out)} ({args.to}: {rows} {what}, "
        f"{len({g.assignment for g in grades})} assignment(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
