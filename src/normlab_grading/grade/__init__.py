"""The trusted side of the course's autograding (nbgrader 0.9): it never runs in the
student's sandbox. The test cells import the student side instead::

    from normlab_grading import check
    _ = check("bn_forward", batchnorm_forward)               # visible test
    _ = check("bn_forward", batchnorm_forward, hidden=True)  # hidden test (graders only)

Modules, each named for what it holds:

- ``registry``: the ``Check``/``Cell``/``Assignment`` declarations and their lookup;
- ``assignments/chNN_*``: one module per assignment, declaring its checks (case,
  reference, recognised mistakes; the calling protocols live in
  ``normlab_grading.check.protocols``), its test cells with points, and the
  "mistake -> expected score" table;
- ``cases``: deterministic inputs, visible and hidden seeds (``NORMLAB_GRADING_SEED``,
  derived per assignment);
- ``mistakes``: the ``Mistake`` type and helpers for declaring wrong variants;
- ``judge``: (check, case, outputs) -> ``Verdict``, computing the references;
- ``records``: reading and judging what record mode saved;
- ``student_data``: writes the student side's data (visible cases, expected and mistake outputs);
- ``student_lib``: what the sandbox may import (the student side and a stub normlab);
- ``authoring``: builds ``solutions/<a>/<a>.ipynb`` from ``tools/assignments/<a>.py``;
- ``release``: ``make exercises`` (nbgrader generate_assignment in a temporary course);
- ``nbgrader_ext``: nbgrader preprocessors (feedback without hidden tests, robust
  re-insertion of deleted test cells);
- ``intake``, ``sandbox``, ``pipeline``, ``course``, ``report``, ``cli``: ``normlab-grade``.

How to add an assignment, a check or a mistake: docs/grading.md.
"""
