"""``normlab_grading.check`` is the student-side package, always, and it is callable as the
``check`` function, so that the notebooks' ``from normlab_grading import check`` then
``check("zscore_basic", zscore)`` works. Before, the package's attribute ``check`` was the
function, which hid the subpackage: ``import normlab_grading.check.checking as C`` failed
with "cannot import name 'checking' from 'check'" (three sandbox attack tests died at that
import instead of meeting the defence)."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

from normlab_grading.check.checking import check as check_function

# a fresh interpreter: the import order of a notebook's kernel or a jail, nothing preloaded
FRESH = """
import sys, types
import normlab_grading.check.checking as C, normlab_grading.check.compare as J
import normlab_grading
assert isinstance(normlab_grading.check, types.ModuleType), normlab_grading.check
assert normlab_grading.check is sys.modules["normlab_grading.check"]
assert normlab_grading.check.checking is C and normlab_grading.check.compare is J
from normlab_grading import check
assert check is normlab_grading.check and callable(check)
print("ok")
"""


def test_the_package_is_the_package_in_a_fresh_interpreter():
    proc = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def _zscore(X, ddof=0, eps=0.0):
    X = np.asarray(X, dtype=float)
    return (X - X.mean(axis=0)) / np.sqrt(X.var(axis=0, ddof=ddof) + eps)


def _zscore_unbiased(X, ddof=0, eps=0.0):
    return _zscore(X, ddof=1, eps=eps)


def test_calling_the_package_is_calling_check(capsys):
    from normlab_grading import check

    assert check("zscore_basic", _zscore) == check_function("zscore_basic", _zscore)
    assert check("zscore_basic", _zscore).passed
    with pytest.raises(AssertionError) as got:
        check("zscore_basic", _zscore_unbiased)
    with pytest.raises(AssertionError) as want:
        check_function("zscore_basic", _zscore_unbiased)
    assert str(got.value) == str(want.value) and "ddof" in str(got.value)
    with pytest.raises(TypeError):
        check("zscore_basic")  # the function's own signature, not a looser one


def test_help_on_check_says_how_to_call_it():
    from normlab_grading import check

    assert "check(check_id, student" in (check.__doc__ or "")
