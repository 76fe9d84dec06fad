"""nbgrader preprocessors the course's ``nbgrader_config.py`` plugs in (nbgrader 0.9).

- ``FeedbackWithoutHiddenTests`` (``GenerateFeedback.preprocessors``): the feedback HTML is
  rendered from the autograded notebook, whose test cells hold the hidden tests in full.
  This removes the ``### BEGIN HIDDEN TESTS`` regions (nbgrader's ``ClearHiddenTests``) and
  also scrubs them from the outputs: IPython tracebacks quote the lines around the failing
  line, so a failing hidden test would otherwise show its own source. Error outputs of
  such cells keep the exception's message (the checker's explanation) and the frames of
  the student's own code, never the test cell's frame.
- ``RobustOverwriteCells`` (in ``Autograde.sanitize_preprocessors`` instead of
  ``OverwriteCells``): restores the metadata of graded cells from the gradebook (a
  student who flips ``grade`` off or changes ``points`` gains nothing) and re-inserts
  deleted test cells after the nearest preceding cell still present (nbgrader's own
  version raises KeyError when the cell before a deleted test cell is also gone). A locked
  cell handed in exactly as released is not reported as edited: the gradebook holds its
  source *with* the hidden tests (``### BEGIN HIDDEN TESTS``, or a task cell's mark scheme)
  and their checksum, the release holds it without them, so nbgrader's own version logs
  "Attribute 'checksum' ... has changed!" for every such cell of every submission, even an
  untouched one. Here the released form is rebuilt from the gradebook (the same clearing
  ``generate_assignment`` does) and a cell equal to it gets the full source back silently;
  a cell that differs from it is still reported by nbgrader, with nbgrader's words.
- ``RefuseNormlabGradeCollect`` (first in ``Autograde.sanitize_preprocessors``): plain
  ``nbgrader autograde``, and formgrader's autograde button, which runs it, refuse a
  submission in a collect folder ``normlab-grade`` wrote (``OUT/submitted/``, marked by
  ``submitted.MARKER``): nbgrader would run the student's code unsandboxed, as the
  instructor, and let the student's own kernel judge it. The refusal comes before any of the
  student's code runs; the gradebook's scores stay; nbgrader itself removes that student's
  autograded folder (as it does before any forced autograde), and a plain rerun of
  ``normlab-grade`` grades that submission again. ``normlab-grade`` leaves this preprocessor out of its own sanitizing.
"""

from __future__ import annotations

import copy
import re

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, NbGraderPreprocessor, OverwriteCells

__all__ = ["FeedbackWithoutHiddenTests", "RobustOverwriteCells"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _plain(text: str) -> str:
    return _ANSI.sub("", text)


class FeedbackWithoutHiddenTests(ClearHiddenTests):
    """ClearHiddenTests for feedback: also keeps hidden test source out of the outputs."""

    def _hidden_lines(self, source: str) -> list[str]:
        lines, inside = [], False
        for line in source.split("\n"):
            if self.begin_test_delimeter in line:
                inside = True
            elif self.end_test_delimeter in line:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
        return lines

    def preprocess_cell(self, cell, resources, cell_index):
        hidden = self._hidden_lines(cell.source) if cell.cell_type == "code" else []
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if hidden:
            own_frame = f"Cell In[{cell.get('execution_count')}]"
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    frames = [f for f in output.get("traceback", [])
                              if own_frame not in _plain(f)]
                    if any(h in _plain(f) for f in frames for h in hidden):
                        frames = []
                    output["traceback"] = frames or [f"{output.get('ename')}: {output.get('evalue')}"]
                elif output.get("output_type") == "stream":
                    text = output.get("text", "")
                    if any(h in _plain(text) for h in hidden):
                        output["text"] = "\n".join(
                            line for line in text.split("\n")
                            if not any(h in _plain(line) for h in hidden))
        return cell, resources


class RobustOverwriteCells(OverwriteCells):
    """OverwriteCells that restores graded cells' metadata and re-adds deleted test cells
    wherever their predecessor went."""

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            graded = {c.name: c for c in self._source_nb().grade_cells}
            solutions = {c.name for c in self._source_nb().solution_cells}
            meta = cell.metadata.nbgrader
            if grade_id in graded:
                meta["grade"] = True
                meta["points"] = float(graded[grade_id].max_score)
            elif meta.get("grade"):
                meta["grade"] = False
            meta["solution"] = grade_id in solutions
            self._restore_if_as_released(cell, grade_id)
        return super().preprocess_cell(cell, resources, cell_index)

    def _restore_if_as_released(self, cell, grade_id):
        """Give a locked cell that is exactly as released its source from the gradebook
        (hidden tests and mark scheme included), so nbgrader does not report it as edited."""
        source = next((c for c in self._source_nb().source_cells if c.name == grade_id), None)
        if (source is None or not source.locked or cell.cell_type != source.cell_type
                or cell.source == source.source):
            return
        released = copy.deepcopy(cell)
        released.source = source.source
        ClearHiddenTests(config=self.config)._remove_hidden_test_region(released)
        ClearMarkScheme(config=self.config)._remove_mark_scheme_region(released)
        if cell.source == released.source:
            cell.source = source.source

    def _source_nb(self):
        return self.gradebook.find_notebook(self.notebook_id, self.assignment_id)

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self._source_nb()
        source_cells = list(source_nb.source_cells)
        grade_cells = {c.name: c for c in source_nb.grade_cells}
        solution_ids = {c.name for c in source_nb.solution_cells}

        def index_of(name):
            for i, cell in enumerate(nb.cells):
                meta = cell.metadata.get("nbgrader", {})
                if meta.get("grade_id") == name and (utils.is_grade(cell) or utils.is_solution(cell)
                                                     or meta.get("locked")):
                    return i
            return None

        for pos, source_cell in enumerate(source_cells):
            if source_cell.name not in grade_cells or index_of(source_cell.name) is not None:
                continue
            self.log.warning("Missing grade cell %s encountered, adding to notebook",
                             source_cell.name)
            cell = self.missing_cell_transform(source_cell, grade_cells[source_cell.name].max_score,
                                               is_solution=source_cell.name in solution_ids)
            insert_at = 0
            for previous in reversed(source_cells[:pos]):
                i = index_of(previous.name)
                if i is not None:
                    insert_at = i + 1
                    break
            nb.cells.insert(insert_at, cell)
        return nb, resources


class RefuseNormlabGradeCollect(NbGraderPreprocessor):
    """Refuse to autograde a notebook in a collect folder written by ``normlab-grade``."""

    def preprocess(self, nb, resources):
        from pathlib import Path

        from .submitted import MARKER

        folder = (resources.get("metadata") or {}).get("path") or ""
        # OUT/submitted/<student>/<assignment>/<notebook>.ipynb: the marker is in OUT/submitted
        collect = Path(folder).resolve().parent.parent if folder else None
        if collect is not None and (collect / MARKER).exists():
            raise RuntimeError(
                f"refused: {collect} was written by normlab-grade, and plain nbgrader autograde "
                f"(or formgrader's autograde button) would run the students' code unsandboxed, "
                f"as you, and let their own kernel judge it. Nothing of the student's ran and no "
                f"score changed; run normlab-grade again (no --force needed): it regrades the "
                f"submissions whose autograded folder nbgrader removed, keeping manual grades.")
        return nb, resources
