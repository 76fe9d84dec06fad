"""Given with the assignment: the grader uses this copy."""

OFFSET = 7
