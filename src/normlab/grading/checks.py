"""``check`` lives with the student side: ``normlab_grading.check.checking``."""

from normlab_grading.check.checking import StudentRun, check, run_student  # noqa: F401

__all__ = ["check", "run_student", "StudentRun"]
