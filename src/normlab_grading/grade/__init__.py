"""The trusted side of the course's autograding (nbgrader 0.9): it never runs in the
student's sandbox. The test cells import the student side instead::

    from normlab_grading import check
    _ = check("bn_forward", batchnorm_forward)               # visible test
    _ = check("bn_forward", batchnorm_forward, hidden=True)  # hidden test (graders only)

Modules, each named for what it holds:

- ``registry``: the ``Check``/``Cell``/``Assignment`` declarations and their lookup;
- ``assignments/<package>/``: one folder per assignment, discovered: its notebook source,
  its checks (case, reference, recognised mistakes; the calling protocols live in
  ``normlab_grading.check.protocols``), test cells with points, the "mistake -> expected
  score" table, its models of answers and the student code of each mistake (tests);
- ``cases``: deterministic inputs, visible and hidden seeds (``NORMLAB_GRADING_SEED``,
  derived per assignment);
- ``mistakes``: the ``Mistake`` type and helpers for declaring wrong variants;
- ``judge``: (check, case, outputs) -> ``Verdict``, computing the references;
- ``records``: reading and judging what record mode saved;
- ``student_lib``: what the sandbox may import (the student side and a stub normlab);
- ``nbgrader_ext``: nbgrader preprocessors (feedback without hidden tests, robust
  re-insertion of deleted test cells);
- ``intake``, ``sandbox``, ``pipeline``, ``course``, ``report``, ``cli``: ``normlab-grade``.

Repository scripts, not installed (``make exercises``): ``tools/authoring.py`` (solution
notebooks), ``tools/student_data.py`` (the student side's data), ``tools/release.py``
(exercises/). How to add an assignment, a check or a mistake: docs/grading.md.
"""
