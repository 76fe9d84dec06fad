"""Case files live with the student side: ``normlab_grading.check.casefile``."""

from normlab_grading.check.casefile import *  # noqa: F401,F403
from normlab_grading.check.casefile import case_path, load_case, same_case, save_case  # noqa: F401
