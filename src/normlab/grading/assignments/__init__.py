"""One module per graded notebook, declaring its checks, cells and expected scores.

Listed in ``normlab.grading.registry.ASSIGNMENT_MODULES``.
"""
