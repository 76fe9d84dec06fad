"""One module per graded notebook, declaring its checks, cells and expected scores.

Listed in ``normlab_grading.grade.registry.ASSIGNMENT_MODULES``.
"""
