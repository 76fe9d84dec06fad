"""Wall-clock timing of several functions, interleaved so that they share the same machine load.

Used by chapter 3 (staged vs closed-form backward) and chapter 4 (inference with BN, with BN
folded into the previous layer, and without BN). On a shared machine the load changes while a
benchmark runs; timing the candidates round-robin (A, B, C, A, B, C, ...) exposes all of them
to the same conditions, and the RATIO of their medians is far more stable than either time.

By default the clock is the CPU time of this process (``time.process_time``), not wall time:
when other processes compete for the cores, wall time counts the periods in which this process
was waiting for a core, CPU time does not. (Run torch with ``torch.set_num_threads(1)`` so
that CPU time is the time of one thread doing the work.) ``clock="wall"`` uses
``time.perf_counter``.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

__all__ = ["time_interleaved", "median_ratios"]


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int = 30,
    number: int = 5,
    warmup: int = 2,
    clock: str | Callable[[], float] = "cpu",
) -> dict[str, np.ndarray]:
    """Time each zero-argument callable in ``fns``, round-robin.

    Each of ``repeats`` rounds calls every function ``number`` times in a row and records the
    mean seconds per call; the order of the functions is rotated every round. ``warmup``
    untimed calls of each function come first. ``clock``: "cpu" (``time.process_time``, the
    default), "wall" (``time.perf_counter``) or any zero-argument callable returning seconds.
    Returns ``{name: array of shape (repeats,)}``.
    """
    if repeats < 1 or number < 1 or warmup < 0:
        raise ValueError("repeats and number must be >= 1, warmup >= 0")
    clocks = {"cpu": time.process_time, "wall": time.perf_counter}
    if callable(clock):
        now = clock
    elif clock in clocks:
        now = clocks[clock]
    else:
        raise ValueError(f"clock must be 'cpu', 'wall' or a callable, got {clock!r}")
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times = {name: np.empty(repeats) for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn = fns[name]
            t0 = now()
            for _ in range(number):
                fn()
            times[name][r] = (now() - t0) / number
    return times


def median_ratios(times: dict[str, np.ndarray], reference: str) -> dict[str, float]:
    """``median(times[name]) / median(times[reference])`` for every name."""
    if reference not in times:
        raise KeyError(f"reference {reference!r} is not one of {list(times)}")
    ref = float(np.median(times[reference]))
    return {name: float(np.median(t)) / ref for name, t in times.items()}
