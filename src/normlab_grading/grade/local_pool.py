"""Grade a handful of submissions without a Dask cluster: each one in a process forked from
the coordinator (trusted side, coordinator only).

A local Dask cluster costs seconds before its first task (worker processes start, import the
grading code and warm up); for one student's regrade that is most of the run. Here the
coordinator imports and warms up once (``pipeline.warm_up``), writes each assignment's bundle
(``pipeline.prepare``), and then forks one process per submission, at most ``workers`` at a
time: the child inherits everything warm, runs the same ``pipeline.grade_submission`` (same
sandbox, same judging, same result) and sends the result back through a pipe; the
coordinator saves results and writes the gradebook as they arrive, exactly as with Dask. A
child that dies (killed, out of memory) leaves a failed result with the reason, as a lost
Dask worker does; children die with the coordinator (``PR_SET_PDEATHSIG``), and each
sandbox dies with its child (bubblewrap's ``--die-with-parent``).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
from collections import deque
from typing import Callable, Iterable, Iterator

__all__ = ["graded"]


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the process that forked it ends."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(conn, parent_pid: int, task: dict, bundle, limits) -> None:
    from .pipeline import grade_submission

    _die_with_parent()
    if os.getppid() != parent_pid:  # the coordinator ended before the line above
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the coordinator stops the children
    try:
        conn.send(grade_submission(task, bundle, limits))
    finally:
        conn.close()


def graded(tasks: Iterable[dict], bundles: dict, limits, workers: int,
           while_waiting: Callable[[], None] | None = None) -> Iterator[tuple[dict, dict | None, str | None]]:
    """Grade ``tasks`` (in this order) in forked processes, at most ``workers`` at once;
    yield ``(task, result, None)`` as each finishes, or ``(task, None, reason)`` when its
    process died without a result. ``while_waiting`` runs once, in this process, after the
    first children started (work the coordinator needs later, overlapped with grading).
    Leaving the loop early (an exception, Ctrl-C) kills the children still running."""
    from . import pipeline

    pending = deque(tasks)
    pipeline.warm_up(render=False)
    for bundle in bundles.values():
        # with more than one submission, build the feedback exporter once, here, rather
        # than in each child; for one, the child builds it in a thread while its kernel
        # runs (pipeline._warm_exporter_during), off the critical path
        pipeline.prepare(bundle, render=len(pending) > 1)
    ctx = multiprocessing.get_context("fork")
    running: dict = {}  # connection -> (process, task)
    parent = os.getpid()
    try:
        while pending or running:
            while pending and len(running) < max(1, workers):
                task = pending.popleft()
                receive, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, name=f"normlab-grade {task['student']}",
                                   args=(send, parent, task, bundles[task["assignment"]], limits))
                proc.start()
                send.close()  # the child holds the only writing end: EOF when it dies
                running[receive] = (proc, task)
            if while_waiting is not None:
                work, while_waiting = while_waiting, None
                work()
            for receive in multiprocessing.connection.wait(list(running)):
                proc, task = running.pop(receive)
                try:
                    result, reason = receive.recv(), None
                except (EOFError, OSError):
                    result = None
                finally:
                    receive.close()
                proc.join()
                if result is None:
                    code = proc.exitcode
                    how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
                           and -code in signal.valid_signals() else f"exit status {code}")
                    reason = f"the grading process died while grading this submission ({how})"
                yield task, result, reason
    finally:
        for receive, (proc, _) in running.items():
            proc.kill()
        for receive, (proc, _) in running.items():
            proc.join()
            receive.close()
