"""Build the instructor notebooks ``solutions/<a>/<a>.ipynb`` from each assignment's
``notebook.py`` (``src/normlab_grading/grade/assignments/<package>/notebook.py``).

The source is a "percent" script (as jupytext writes them), one ``# %%`` line per cell::

    # %% [markdown]
    # # Title            <- markdown: each line without its leading "# "
    # {{points_table}}   <- expanded from the assignment's declaration (registry)
    # {{mistakes_table}}
    # %%
    import numpy as np  <- an ordinary code cell
    # %% [solution] id=minmax_scaler
    ...### BEGIN SOLUTION ... ### END SOLUTION...   <- an nbgrader "autograded answer" cell
    # %% [tests] id=test_minmax_fit_transform
                        <- an nbgrader "autograder tests" cell: its code and points are
                           generated from the declared Cell (checks, points), so the
                           notebook cannot drift from the registry

Test cells get ``from normlab_grading import check``, one visible ``_ = check(...)`` per
check, and the hidden calls between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``.
Every test cell must directly follow its solution cell or another test cell (nbgrader
re-inserts a deleted test cell after the cell that preceded it in the source).

Usage: ``python tools/authoring.py [--check] [ASSIGNMENT ...]`` (a repository script, not
installed); ``--check`` only reports notebooks that differ from their source (exit status 1).
Cell ids are stable (the grade_id, or ``<kind>-<n>``), output is nbformat 4.5, so
rebuilding gives byte-identical files.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from normlab_grading.grade import assignments
from normlab_grading.grade.registry import Assignment, all_assignments, get_assignment, get_check

__all__ = ["build_notebook", "notebook_text", "main", "test_cell_source"]

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
_HEADER = re.compile(r"^# %%(?:\s+\[(?P<kind>\w+)\])?(?P<attrs>.*)$")


def _attrs(text: str) -> dict:
    out = {}
    for token in text.split():
        key, _, value = token.partition("=")
        out[key] = value if value else True
    return out


def _split(source: str):
    cells = []
    for line in source.splitlines():
        m = _HEADER.match(line)
        if m:
            cells.append({"kind": m.group("kind") or "code", "attrs": _attrs(m.group("attrs")),
                          "lines": []})
        elif cells:
            cells[-1]["lines"].append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError(f"text before the first '# %%' line: {line!r}")
    return cells


def _markdown(lines) -> str:
    out = []
    for line in lines:
        if line == "#":
            out.append("")
        elif line.startswith("# "):
            out.append(line[2:])
        elif not line.strip():
            out.append("")
        else:
            raise ValueError(f"markdown lines must start with '# ': {line!r}")
    return "\n".join(out).strip("\n")


def _code(lines) -> str:
    return "\n".join(lines).strip("\n")


def test_cell_source(assignment: Assignment, grade_id: str, preamble: str = "") -> str:
    """The code of a test cell, generated from its declaration."""
    cell = assignment.cell(grade_id)
    lines = [preamble] if preamble else []
    lines += [f"# {cell.what or 'Tests'} ({cell.points} points)",
              "from normlab_grading import check", ""]
    lines += [f'_ = check("{cid}", {cell.function})' for cid in cell.checks]
    lines.append("### BEGIN HIDDEN TESTS")
    lines += [f'_ = check("{cid}", {cell.function}, hidden=True)' for cid in cell.checks]
    lines.append("### END HIDDEN TESTS")
    return "\n".join(lines)


def _md(text: str) -> str:
    """Plain text for a markdown table cell: ``|`` would end the cell (``||G - G'||``), ``*``
    and ``<`` could start emphasis or an HTML tag (``||v||**2``, ``<G, G'>``)."""
    for ch in "\\|*<":
        text = text.replace(ch, "\\" + ch)
    return text


def points_table(assignment: Assignment) -> str:
    rows = ["| Test cell | What it checks | Points |", "|---|---|---|"]
    for c in assignment.cells:
        rows.append(f"| `{c.grade_id}` | {_md(c.what)} (`{c.function}`) | {c.points} |")
    rows.append(f"| | **Total** | **{assignment.total}** |")
    return "\n".join(rows)


def mistakes_table(assignment: Assignment) -> str:
    rows = [
        f"| If your code ... | the checker says | tests that fail | your score (of {assignment.total}) |",
        "|---|---|---|---|",
    ]
    for row in assignment.expected:
        chk = get_check(row.check)
        m = chk.mistake(row.mistake)
        fails = ", ".join(f"`{g}`" for g in row.fails)
        note = f" ({_md(row.note)})" if row.note else ""
        rows.append(
            f"| in `{chk.function}`: {row.mistake.replace('_', ' ')}{note} | "
            f"{_md(m.message)} | {fails} | {assignment.expected_score(row)} |"
        )
    return "\n".join(rows)


def _expand(text: str, assignment: Assignment) -> str:
    return (text.replace("{{points_table}}", points_table(assignment))
            .replace("{{mistakes_table}}", mistakes_table(assignment))
            .replace("{{total}}", str(assignment.total)))


def _nbgrader(grade_id, *, solution=False, grade=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def build_notebook(name: str, source: str | None = None) -> nbformat.NotebookNode:
    """The solution notebook of assignment ``name`` from its percent source."""
    assignment = get_assignment(name)
    if source is None:
        source = (assignments.folder(name) / "notebook.py").read_text(encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"},
    }
    counters: dict[str, int] = {}
    seen_tests = []
    previous_graded = None  # kind of the previous nbgrader cell
    for raw in _split(source):
        kind, attrs = raw["kind"], raw["attrs"]
        counters[kind] = counters.get(kind, 0) + 1
        cell_id = attrs.get("id") or f"{kind}-{counters[kind]}"
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(_expand(_markdown(raw["lines"]), assignment))
        elif kind == "code":
            cell = nbformat.v4.new_code_cell(_code(raw["lines"]))
        elif kind == "solution":
            cell = nbformat.v4.new_code_cell(_code(raw["lines"]))
            if "### BEGIN SOLUTION" not in cell.source:
                raise ValueError(f"{name}: solution cell {cell_id} has no ### BEGIN SOLUTION")
            cell.metadata["nbgrader"] = _nbgrader(cell_id, solution=True)
            previous_graded = kind
        elif kind == "tests":
            if previous_graded not in ("solution", "tests"):
                raise ValueError(f"{name}: test cell {cell_id} must follow a solution or test cell")
            decl = assignment.cell(cell_id)
            cell = nbformat.v4.new_code_cell(
                test_cell_source(assignment, cell_id, _code(raw["lines"])))
            cell.metadata["nbgrader"] = _nbgrader(cell_id, grade=True, locked=True,
                                                  points=decl.points)
            seen_tests.append(cell_id)
            previous_graded = kind
        else:
            raise ValueError(f"{name}: unknown cell kind [{kind}]")
        cell["id"] = cell_id
        nb.cells.append(cell)
    declared = [c.grade_id for c in assignment.cells]
    if seen_tests != declared:
        raise ValueError(f"{name}: test cells {seen_tests} differ from the declaration {declared}")
    nbformat.validate(nb)
    return nb


def notebook_text(nb) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="assignments (default: every one)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a notebook differs from its source")
    args = parser.parse_args(argv)
    known = list(all_assignments())
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown assignment {', '.join(unknown)}; known: {', '.join(known)}")
    names = args.names or known
    # a folder of solutions/ whose assignment folder was renamed or removed would still be
    # released and graded: say so (never delete an instructor's notebook silently)
    orphans = [] if args.names else sorted(
        str(d.relative_to(ROOT)) for d in SOLUTIONS.iterdir() if d.is_dir() and d.name not in known)
    if orphans:
        print("no assignment folder declares these (remove them, e.g. `git rm -r`, or restore "
              "the assignment's NAME):\n  " + "\n  ".join(orphans))
        return 1
    stale = []
    for name in names:
        text = notebook_text(build_notebook(name))
        path = SOLUTIONS / name / f"{name}.ipynb"
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("out of date (run `make exercises`):\n  " + "\n  ".join(stale))
        return 1
    if args.check:
        print("solutions/ is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
