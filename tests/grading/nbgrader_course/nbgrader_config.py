"""nbgrader configuration of the parity test course (tests/grading/test_nbgrader_parity.py):
a plain nbgrader course, nothing of normlab's in it."""

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "parity"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
# students hand in their own helper.py in ps2: nbgrader must not put the source's stub over it
c.Autograde.exclude_overwriting = {"ps2": ["helper.py"]}
c.Execute.timeout = 20  # per cell (the tests pass a smaller one on the command line)
