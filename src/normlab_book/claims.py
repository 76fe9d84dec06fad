"""normlab_book.claims: tie the book's prose to the computation on the page.

Every number in a chapter's prose is glued from the cell that computed it
(:func:`glue_number`, :func:`glue_text`, :func:`glue_interval`, then the ``{glue:text}`` role in
the markdown), and every verdict sentence is backed by a :func:`claim` in a hidden cell that
raises, and so fails the build, as soon as the sentence stops being true on the computed data.
Intervals over seeds (or data splits) come from :func:`mean_interval` (Student t or percentile
bootstrap; the glued text names the method and the replicates), and :func:`effect_verdict`
turns an interval into "holds" / "does not hold" / "not detected".
The convention is written down in docs/book.md.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

VERDICTS = ("holds", "partly", "does not hold", "not detected")


class ClaimError(AssertionError):
    """A sentence of the book is no longer true on the data the page computed."""


def claim(condition, message: str) -> None:
    """Raise :class:`ClaimError` with ``message`` unless ``condition`` is true.

    ``condition`` must be a Python or numpy boolean (an array is refused: say ``np.all`` or
    ``np.any`` so that the sentence's quantifier is explicit). ``message`` should quote the
    sentence the check protects and the values that broke it.
    """
    if isinstance(condition, np.ndarray) and condition.shape != ():
        raise TypeError(f"claim() needs one boolean, got an array of shape {condition.shape}; "
                        "reduce it with np.all or np.any")
    if not isinstance(condition, (bool, np.bool_)):
        raise TypeError(f"claim() needs a boolean condition, got {type(condition).__name__}")
    if not isinstance(message, str) or not message:
        raise TypeError("claim() needs a non-empty message naming the sentence it protects")
    if not condition:
        raise ClaimError(message)


def _scalar(key: str, value):
    if isinstance(value, np.ndarray):
        if value.shape != ():
            raise TypeError(f"glue {key!r}: expected one number, got an array of shape {value.shape}")
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"glue {key!r}: expected a number, got a boolean (glue a verdict with glue_text)")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"glue {key!r}: the value is {value}, not a finite number")
        return value
    raise TypeError(f"glue {key!r}: expected a number, got {type(value).__name__}")


def _glue(key: str, value) -> None:
    if not isinstance(key, str) or not key or any(c in key for c in ": `"):
        raise ValueError(f"glue key {key!r}: use a non-empty name without ':', spaces or backticks")
    from myst_nb import glue  # imported here: the module's numeric helpers work without myst-nb

    glue(key, value, display=False)


def glue_number(key: str, value) -> int | float:
    """Glue one number under ``key`` (numpy scalars become Python int/float) and return it.

    In the prose: ``{glue:text}`key:.3f``` (the format spec is Python's, ending in its type
    character; ``,d`` gives 16,870, ``.0%`` gives 18%).
    """
    v = _scalar(key, value)
    _glue(key, v)
    return v


def glue_text(key: str, text: str) -> str:
    """Glue a word or phrase (a verdict, a formatted list) under ``key``; prose: ``{glue:text}`key```."""
    if not isinstance(text, str):
        raise TypeError(f"glue_text {key!r}: expected a str, got {type(text).__name__}")
    _glue(key, text)
    return text


_METHOD_NAMES = {"t": "t-interval", "bootstrap": "bootstrap interval"}


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` replicates and its two-sided confidence interval at ``level``.

    ``method`` is how the interval was computed (``"t"`` or ``"bootstrap"``) and ``unit`` what
    the replicates are (``"seeds"``, ``"splits"``, ...); both are named in :meth:`text`.
    """

    mean: float
    low: float
    high: float
    n: int
    level: float
    method: str
    unit: str = "seeds"

    def above(self, x: float) -> bool:
        """The whole interval lies above ``x``."""
        return bool(self.low > x)

    def below(self, x: float) -> bool:
        """The whole interval lies below ``x``."""
        return bool(self.high < x)

    def contains(self, x: float) -> bool:
        return bool(self.low <= x <= self.high)

    def text(self, fmt: str = ".3g") -> str:
        """``"0.912 (95 % t-interval 0.905 to 0.918, 5 seeds)"``: the mean, the method, the
        bounds and the number and kind of replicates."""
        return (f"{self.mean:{fmt}} ({round(100 * self.level)} % {_METHOD_NAMES[self.method]} "
                f"{self.low:{fmt}} to {self.high:{fmt}}, {self.n} {self.unit})")


def mean_interval(samples, level: float = 0.95, method: str = "t", n_boot: int = 4000,
                  seed: int = 0, unit: str = "seeds") -> Interval:
    """Confidence interval for the mean of ``samples`` (one value per replicate).

    ``method="t"``: Student t with n - 1 degrees of freedom. ``method="bootstrap"``: percentile
    bootstrap of the mean, ``n_boot`` resamples drawn with ``seed``. At least 2 finite samples.
    ``unit`` names the replicates in :meth:`Interval.text` (``"seeds"``; ``"splits"`` when each
    value comes from another data split).
    """
    if not isinstance(unit, str) or not unit.strip():
        raise ValueError(f"mean_interval: unit must name the replicates (e.g. 'seeds', 'splits'), "
                         f"got {unit!r}")
    x = np.asarray(samples, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"mean_interval needs at least 2 samples, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"mean_interval: samples must be finite, got {x}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"mean_interval: level must be in (0, 1), got {level}")
    m = float(x.mean())
    if method == "t":
        from scipy import stats

        half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
        lo, hi = m - half, m + half
    elif method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
        lo, hi = (float(q) for q in np.quantile(means, [0.5 - level / 2, 0.5 + level / 2]))
    else:
        raise ValueError(f"mean_interval: method must be 't' or 'bootstrap', got {method!r}")
    return Interval(m, lo, hi, int(x.size), float(level), method, unit)


def effect_verdict(diff: Interval, direction: str = "greater") -> str:
    """Verdict on "the effect is positive" (``direction="greater"``) or negative (``"less"``).

    ``diff`` is the interval of a difference (treated minus baseline, paired by seed): "holds"
    when it excludes 0 on the claimed side, "does not hold" when it excludes 0 on the other
    side, "not detected" when it contains 0.
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"effect_verdict: direction must be 'greater' or 'less', got {direction!r}")
    sign = 1.0 if direction == "greater" else -1.0
    lo, hi = sorted((sign * diff.low, sign * diff.high))
    if lo > 0:
        return "holds"
    if hi < 0:
        return "does not hold"
    return "not detected"


def glue_interval(key: str, iv: Interval, fmt: str = ".3g") -> Interval:
    """Glue ``key`` (the text :meth:`Interval.text`, e.g. ``mean (95 % t-interval low to high,
    n seeds)``, whose method and unit are ``iv``'s) and the numbers ``key_mean``, ``key_low``,
    ``key_high``; return ``iv``."""
    glue_text(key, iv.text(fmt))
    glue_number(f"{key}_mean", iv.mean)
    glue_number(f"{key}_low", iv.low)
    glue_number(f"{key}_high", iv.high)
    return iv
