"""The student side of the course's grading: ``check`` and what it needs, nothing more.

Modules: ``checking`` (``check``), ``spec`` (the checks as data), ``data`` (visible cases
with expected and mistake outputs; hidden cases in the sandbox), ``compare`` (the one
comparison), ``outputs``, ``records`` (record mode for the grader), ``casefile``,
``tripwire`` (a courtesy for students working locally; grading never depends on it) and
``protocols/chNN`` (how each check calls the student's code).

This package is callable: ``check(check_id, student, hidden=False)`` calls
``checking.check`` (the notebooks' test cells do ``from normlab_grading import check`` then
``check("bn_forward", batchnorm_forward)``; it raises AssertionError naming the mistake
when the answer is wrong). So ``normlab_grading.check`` is always this package, and
``import normlab_grading.check.compare`` works; the function itself is
``normlab_grading.check.check``.
"""

import sys
import types

from .checking import check
from .compare import Verdict

__all__ = ["check", "Verdict"]


class _CallablePackage(types.ModuleType):
    """The type of this package: a module that, called, is ``checking.check``."""

    __call__ = staticmethod(check)


sys.modules[__name__].__class__ = _CallablePackage
