"""The student side of the course's grading: ``check`` and what it needs, nothing more.

Modules: ``checking`` (``check``), ``spec`` (the checks as data), ``data`` (visible cases
with expected and mistake outputs; hidden cases in the sandbox), ``compare`` (the one
comparison), ``outputs``, ``records`` (record mode for the grader), ``casefile``,
``tripwire`` (a courtesy for students working locally; grading never depends on it) and
``protocols/chNN`` (how each check calls the student's code).
"""

from .checking import check
from .compare import Verdict

__all__ = ["check", "Verdict"]
