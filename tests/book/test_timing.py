"""normlab_book.timing: interleaved timing and median ratios."""

import time

import numpy as np
import pytest

from normlab_book.timing import median_ratios, time_interleaved


class FakeClock:
    """A clock that only the timed functions advance: timing is exact and load cannot enter."""

    def __init__(self):
        self.t = 0.0
        self.order = []

    def __call__(self):
        return self.t

    def costing(self, name, seconds):
        def f():
            self.order.append(name)
            self.t += seconds
        return f


def test_times_are_per_call_means_and_ratios_of_medians():
    clock = FakeClock()
    times = time_interleaved({"fast": clock.costing("fast", 0.001), "slow": clock.costing("slow", 0.004)},
                             repeats=5, number=2, warmup=1, clock=clock)
    assert set(times) == {"fast", "slow"} and times["slow"].shape == (5,)
    np.testing.assert_allclose(times["fast"], 0.001, rtol=1e-9)
    np.testing.assert_allclose(times["slow"], 0.004, rtol=1e-9)
    ratios = median_ratios(times, "fast")
    assert ratios["fast"] == 1.0 and abs(ratios["slow"] - 4.0) < 1e-9


def test_rounds_rotate_the_order():
    clock = FakeClock()
    time_interleaved({n: clock.costing(n, 1.0) for n in "abc"}, repeats=3, number=1, warmup=0,
                     clock=clock)
    assert clock.order == list("abc" "bca" "cab")


def test_named_clocks_are_process_time_and_perf_counter(monkeypatch):
    for name, attr in (("cpu", "process_time"), ("wall", "perf_counter")):
        clock = FakeClock()
        monkeypatch.setattr(time, attr, clock)
        times = time_interleaved({"f": clock.costing("f", 0.5)}, repeats=2, number=1, warmup=0,
                                 clock=name)
        np.testing.assert_allclose(times["f"], 0.5)
        monkeypatch.undo()


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
