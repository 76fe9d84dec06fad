"""normlab.experiments.timing: interleaved timing and median ratios."""

import time

import numpy as np
import pytest

from normlab.experiments.timing import median_ratios, time_interleaved


def test_slower_function_measures_slower():
    times = time_interleaved(
        {"fast": lambda: None, "slow": lambda: time.sleep(0.002)}, repeats=5, number=2, warmup=1,
        clock="wall",
    )
    assert set(times) == {"fast", "slow"}
    assert times["slow"].shape == (5,)
    assert np.all(times["slow"] >= 0.0019)
    assert np.median(times["fast"]) < np.median(times["slow"])
    ratios = median_ratios(times, "fast")
    assert ratios["fast"] == 1.0 and ratios["slow"] > 10


def test_cpu_clock_ignores_sleeping_but_counts_work():
    def work():
        s = 0
        for i in range(20000):
            s += i * i
        return s

    times = time_interleaved({"sleep": lambda: time.sleep(0.003), "work": work}, repeats=5,
                             number=1, warmup=0)
    # Sleeping uses no CPU: far less than its 3 ms of wall time.
    assert np.median(times["sleep"]) < 0.001
    assert np.median(times["work"]) > 0


def test_every_function_is_called_warmup_plus_repeats_times_number():
    calls = {"a": 0, "b": 0}

    def make(k):
        def f():
            calls[k] += 1
        return f

    time_interleaved({"a": make("a"), "b": make("b")}, repeats=4, number=3, warmup=2)
    assert calls == {"a": 14, "b": 14}


def test_bad_arguments():
    with pytest.raises(ValueError):
        time_interleaved({"a": lambda: None}, repeats=0)
    with pytest.raises(ValueError):
        time_interleaved({"a": lambda: None}, clock="gpu")
    with pytest.raises(KeyError):
        median_ratios({"a": np.ones(3)}, "b")
