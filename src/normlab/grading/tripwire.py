"""The tripwire lives with the student-side checker: ``normlab_grading.check.tripwire``."""

from normlab_grading.check.tripwire import *  # noqa: F401,F403
from normlab_grading.check.tripwire import Tripwire, forbidden_c, forbidden_python, tripwire_message  # noqa: F401
