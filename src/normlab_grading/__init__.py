"""The course's autograding, in two halves (as otter-grader and nbgrader name theirs).

- ``normlab_grading.check``: the **student side**, what a notebook's test cells import
  (``from normlab_grading import check``: the package, callable as its ``check`` function,
  so ``check("bn_forward", batchnorm_forward)``; see ``check/__init__.py``). It holds the
  calling protocols, the visible cases with their expected outputs and the outputs of each
  recognised mistake, as *data* (``check/data/``), and no reference implementation or
  mistake model: it is the only grading code mounted in the grader's sandbox.
- ``normlab_grading.grade``: the **trusted side** (references, mistake models, hidden cases,
  judging, the sandbox, ``normlab-grade``). It never runs in the student's jail.
"""

from . import check  # the subpackage, callable as the check function

__all__ = ["check"]
