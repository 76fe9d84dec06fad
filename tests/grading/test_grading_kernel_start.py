"""A kernel that never starts (nbclient's "Kernel didn't respond in 60 seconds" on a loaded
machine) is the machine's fault: ``pipeline._execute_started`` starts it once more, on an
untouched copy of the notebook, and says so in the notes. A run that failed in a cell, or was
stopped by a limit, is the student's and is not repeated.

The sandbox is replaced by a fake that records what it was given, so the tests decide which
run fails; the real sandbox's start-up failure is the ``internal`` kind with no cell, which
``sandbox.execute_notebook`` sets for any exception before the first cell.
"""

from __future__ import annotations

import nbformat
import pytest

from normlab_grading.grade import pipeline
from normlab_grading.grade.sandbox import ExecutionResult

NOT_STARTED = ExecutionResult(nb=None, records={}, failure="execution failed while starting: "
                              "RuntimeError: Kernel didn't respond in 60 seconds",
                              failure_kind="internal", stopped_at=None)


def _notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("assert x == 1")]
    return nb


class FakeSandbox:
    """Returns the given results in turn; each run marks the notebook it ran (as the real
    run fills in outputs in place) and records whether its result was cleaned up."""

    def __init__(self, *results):
        self.results = list(results)
        self.seen = []
        self.cleaned = []

    def __call__(self, nb, sb, limits, config=None, scratch_parent=None):
        self.seen.append(nbformat.writes(nb))
        nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="ran\n")]
        template = self.results.pop(0)
        result = ExecutionResult(**{f: getattr(template, f) for f in template.__dataclass_fields__})
        result.nb = nb
        n = len(self.cleaned)
        self.cleaned.append(False)
        result.cleanup = lambda: self.cleaned.__setitem__(n, True)
        return result


@pytest.fixture
def fake(monkeypatch):
    def install(*results):
        box = FakeSandbox(*results)
        monkeypatch.setattr(pipeline._sandbox, "execute_notebook", box)
        return box
    return install


def test_a_kernel_that_never_started_is_started_once_more_on_an_untouched_notebook(fake):
    ok = ExecutionResult(nb=None, records={}, executed={0, 1})
    box = fake(NOT_STARTED, ok)
    nb, notes = _notebook(), []
    untouched = nbformat.writes(nb)
    ex, ran = pipeline._execute_started(nb, None, None, None, notes)
    assert len(box.seen) == 2
    assert box.seen == [untouched, untouched]  # the second run did not get the first's outputs
    assert ex.failure is None and ex.executed == {0, 1}
    assert ran is ex.nb and ran is not nb
    assert box.cleaned == [True, False]  # the first run's scratch is removed, not the second's
    assert notes == ["the kernel did not start (execution failed while starting: RuntimeError: "
                     "Kernel didn't respond in 60 seconds); started it once more"]


def test_a_second_failure_to_start_is_recorded_as_it_is(fake):
    box = fake(NOT_STARTED, NOT_STARTED)
    notes = []
    ex, _ = pipeline._execute_started(_notebook(), None, None, None, notes)
    assert len(box.seen) == 2  # once more, not forever
    assert ex.failure == NOT_STARTED.failure and ex.failure_kind == "internal"
    assert len(notes) == 1


@pytest.mark.parametrize("result", [
    ExecutionResult(nb=None, records={}, failure="the kernel died in cell 2",
                    failure_kind="kernel_died", stopped_at=1, executed={0}),
    ExecutionResult(nb=None, records={}, failure="the notebook ran longer than the time limit",
                    failure_kind="timeout", stopped_at=None),
    ExecutionResult(nb=None, records={}, failure="the notebook ran out of memory while starting",
                    failure_kind="memory", stopped_at=None),
    ExecutionResult(nb=None, records={}, failure="execution failed in cell 2: RuntimeError: x",
                    failure_kind="internal", stopped_at=1, executed={0}),
    ExecutionResult(nb=None, records={}, executed={0, 1}),
], ids=["died in a cell", "time limit", "memory", "internal in a cell", "success"])
def test_a_run_that_started_is_never_repeated(fake, result):
    box = fake(result)
    notes = []
    nb = _notebook()
    ex, ran = pipeline._execute_started(nb, None, None, None, notes)
    assert len(box.seen) == 1 and notes == [] and ran is nb
    assert ex.failure == result.failure and box.cleaned == [False]
