"""normlab_book.claims: verdict checks, glued values and intervals over seeds."""

import math

import numpy as np
import pytest

from normlab_book.claims import (ClaimError, claim, effect_verdict, glue_interval, glue_number,
                                 glue_text, mean_interval)


def test_claim_raises_with_the_message_only_when_false():
    claim(True, "fine")
    claim(np.bool_(True), "fine")
    with pytest.raises(ClaimError, match="BN ahead in every seed"):
        claim(bool(np.all(np.array([1.0, -1.0]) > 0)), "BN ahead in every seed")


def test_claim_refuses_arrays_and_non_booleans():
    with pytest.raises(TypeError, match="np.all or np.any"):
        claim(np.array([True, True]), "x")
    with pytest.raises(TypeError, match="boolean"):
        claim(1, "x")
    with pytest.raises(TypeError, match="message"):
        claim(True, "")


def test_glue_number_gives_python_scalars_that_myst_nb_can_format(capsys):
    v = glue_number("k_float", np.float64(0.1834))
    assert type(v) is float and format(v, ".0%") == "18%"
    i = glue_number("k_int", np.int64(16870))
    assert type(i) is int and format(i, ",d") == "16,870"
    assert glue_text("k_text", "holds") == "holds"


@pytest.mark.parametrize("bad, err", [(np.array([1.0, 2.0]), TypeError), (np.nan, ValueError),
                                      (np.inf, ValueError), (True, TypeError), ("3", TypeError)])
def test_glue_number_refuses_what_is_not_one_finite_number(bad, err):
    with pytest.raises(err, match="k_bad"):
        glue_number("k_bad", bad)


def test_glue_key_must_not_contain_the_format_separator():
    with pytest.raises(ValueError, match="':'"):
        glue_number("a:b", 1.0)


def test_t_interval_matches_the_textbook_quantile():
    # five values 1..5: mean 3, sample sd sqrt(2.5), t(0.975, 4) = 2.7764 (statistical tables)
    iv = mean_interval([1, 2, 3, 4, 5])
    half = 2.7764 * math.sqrt(2.5) / math.sqrt(5)
    assert iv.mean == 3.0 and iv.n == 5
    assert abs(iv.low - (3 - half)) < 1e-3 and abs(iv.high - (3 + half)) < 1e-3


def test_bootstrap_interval_lies_within_the_sample_range_and_is_reproducible():
    x = np.random.default_rng(3).normal(size=8)
    a, b = mean_interval(x, method="bootstrap"), mean_interval(x, method="bootstrap")
    assert a == b
    assert x.min() <= a.low <= a.mean <= a.high <= x.max()


def test_t_interval_coverage_is_near_nominal():
    rng = np.random.default_rng(0)
    hits = sum(mean_interval(rng.normal(2.0, 1.0, size=5)).contains(2.0) for _ in range(2000))
    assert 0.93 < hits / 2000 < 0.97


@pytest.mark.parametrize("samples, direction, expected", [
    ([1.0, 1.2, 0.9, 1.1, 1.05], "greater", "holds"),
    ([1.0, 1.2, 0.9, 1.1, 1.05], "less", "does not hold"),
    ([-1.0, -1.2, -0.9, -1.1, -1.05], "less", "holds"),
    ([0.5, -0.4, 0.3, -0.6, 0.1], "greater", "not detected"),
])
def test_effect_verdict(samples, direction, expected):
    assert effect_verdict(mean_interval(samples), direction) == expected


def test_mean_interval_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        mean_interval([1.0])
    with pytest.raises(ValueError, match="finite"):
        mean_interval([1.0, np.nan])
    with pytest.raises(ValueError, match="method"):
        mean_interval([1.0, 2.0], method="jackknife")


def test_interval_text_names_the_method_and_the_replicates():
    # 1..5: mean 3, t half-width 2.7764 * sqrt(2.5) / sqrt(5) = 1.963 (statistical tables)
    t = mean_interval([1, 2, 3, 4, 5])
    assert t.text(".2f") == "3.00 (95 % t-interval 1.04 to 4.96, 5 seeds)"
    s = mean_interval([1, 2, 3, 4, 5], unit="splits")
    assert s.text(".2f") == "3.00 (95 % t-interval 1.04 to 4.96, 5 splits)"
    b = mean_interval([1, 2, 3, 4, 5], method="bootstrap", level=0.9)
    assert b.text(".1f").startswith("3.0 (90 % bootstrap interval ") and b.text().endswith(", 5 seeds)")


def test_glue_interval_glues_the_text_with_its_unit(monkeypatch):
    glued = {}
    import myst_nb
    monkeypatch.setattr(myst_nb, "glue", lambda k, v, display=False: glued.__setitem__(k, v))
    iv = glue_interval("k_iv", mean_interval([1, 2, 3, 4, 5], unit="splits"), ".2f")
    assert glued["k_iv"] == "3.00 (95 % t-interval 1.04 to 4.96, 5 splits)"
    assert glued["k_iv_low"] == iv.low and glued["k_iv_high"] == iv.high and glued["k_iv_mean"] == 3.0


@pytest.mark.parametrize("unit", ["", "  ", 5])
def test_mean_interval_refuses_a_unit_that_names_nothing(unit):
    with pytest.raises(ValueError, match="unit"):
        mean_interval([1.0, 2.0], unit=unit)
