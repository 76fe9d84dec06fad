"""nbgrader 0.9 configuration of the course. Run nbgrader from the repository root.

The course directory is the repository: instructor notebooks in solutions/, the student
release in exercises/ (regenerate it with `make exercises`), and nbgrader's working files
gradebook.db, submitted/, autograded/ and feedback/ (all gitignored) at the top level.
How grading works and how to add an assignment: docs/grading.md.

Environment variables read by the checks in the notebooks (normlab_grading.check; the
seed by the trusted side, normlab_grading.grade, where it computes the hidden cases):
- NORMLAB_GRADING_SEED: the seed of the hidden tests' inputs; set it (any integer but 0)
  when autograding, and change it each term. Default: a fixed seed.
- NORMLAB_GRADING_RECORD: a directory; if set, checks save the student's outputs there
  instead of judging them (for grading outside the student's kernel).
"""

import os
import sys

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

# nbgrader runs the `alembic` script of its own environment from PATH: make
# `.venv/bin/nbgrader ...` work without activating the virtual environment.
_bin = os.path.dirname(sys.executable)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# Per-cell execution timeout (seconds). Solutions run each test cell in well under a
# second; a cell still running after this is interrupted and scores 0.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True

# Test cells that a student deleted are put back (with the original tests), and the
# metadata of graded cells is restored from the gradebook (normlab_grading.grade.nbgrader_ext).
c.OverwriteCells.add_missing_cells = True
# Plain nbgrader (and formgrader's autograde button) refuses normlab-grade's collect folder:
# it would run the students' code unsandboxed and let their own kernel judge it.
c.Autograde.sanitize_preprocessors = [
    "normlab_grading.grade.nbgrader_ext.RefuseNormlabGradeCollect",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "normlab_grading.grade.nbgrader_ext.RobustOverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback never shows hidden tests: the autograded notebook holds them in full, so they
# are removed from the cells' source and from tracebacks before rendering the HTML.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "normlab_grading.grade.nbgrader_ext.FeedbackWithoutHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# `nbgrader zip_collect <assignment>`: one zip per student named <student_id>.zip in
# downloaded/<assignment>/archive/, holding the notebook (at any depth).
c.ZipCollectApp.collector_plugin = "nbgrader.plugins.FileNameCollectorPlugin"
c.FileNameCollectorPlugin.named_regexp = (
    r".*/extracted/(?P<student_id>[^/]+)/(?:.*/)?(?P<file_id>[^/]+\.ipynb)$"
)
