"""Autograding the course's notebooks against normlab (nbgrader 0.9).

Students and notebooks use one function::

    from normlab.grading import check
    _ = check("bn_forward", batchnorm_forward)               # visible test
    _ = check("bn_forward", batchnorm_forward, hidden=True)  # hidden test (graders only)

Modules, each named for what it holds:

- ``registry``: the ``Check``/``Cell``/``Assignment`` declarations and their lookup;
- ``assignments/chNN_*``: one module per assignment, declaring its checks (case, calling
  protocol, reference, recognised mistakes), its test cells with points, and the
  "mistake -> expected score" table;
- ``cases``: deterministic inputs, visible and hidden seeds (``NORMLAB_GRADING_SEED``);
- ``mistakes``: the ``Mistake`` type and helpers for declaring wrong variants;
- ``tripwire``: catches calls to normlab or library routines that do the graded job;
- ``judge``: pure (check, case, outputs) -> ``Verdict``;
- ``records``: record mode (``NORMLAB_GRADING_RECORD``) and judging records elsewhere;
- ``checks``: ``check`` itself, what the test cells call;
- ``authoring``: builds ``solutions/<a>/<a>.ipynb`` from ``tools/assignments/<a>.py``;
- ``release``: ``make exercises`` (nbgrader generate_assignment in a temporary course);
- ``nbgrader_ext``: nbgrader preprocessors (feedback without hidden tests, robust
  re-insertion of deleted test cells).

How to add an assignment, a check or a mistake: docs/grading.md.
"""

from .checks import check

__all__ = ["check"]
