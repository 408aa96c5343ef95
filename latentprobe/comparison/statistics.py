"""Statistics over seeds: mean with a t-distribution confidence interval, and the paired t-test.

Imports no TensorFlow (``compare`` uses it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
#: A paired difference is called significant below this p-value.
ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with a confidence interval; ``half_width`` is None for a single value."""

    n: int
    mean: float
    half_width: float | None
    std: float | None

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean and t-distribution confidence interval (sample std, n - 1 degrees of freedom).

    Identical values give a zero-width interval; a single value gives no interval (``half_width`` None).
    """
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(x.mean())
    if len(x) == 1:
        return Interval(1, mean, None, None)
    std = float(x.std(ddof=1))
    if std == 0.0 or not math.isfinite(std):
        return Interval(len(x), mean, 0.0 if std == 0.0 else float("nan"), std)
    t = float(stats.t.ppf(0.5 + confidence / 2, df=len(x) - 1))
    return Interval(len(x), mean, t * std / math.sqrt(len(x)), std)


@dataclass(frozen=True)
class PairedTest:
    """A paired t-test of ``b - a`` over matched pairs.

    Attributes:
        n: pairs.
        difference: mean of ``b - a`` with its confidence interval.
        t: the t statistic (None where undefined: one pair, or every difference equal).
        p_value: two-sided; 1.0 when every difference is 0 (no evidence of any difference), None where
            the test is undefined (one pair, or equal non-zero differences: no variance to test against).
        significant: ``p_value < ALPHA``.
    """

    n: int
    difference: Interval
    t: float | None
    p_value: float | None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Paired two-sided t-test of ``b`` against ``a`` (same length, matched by position)."""
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_.shape != b_.shape or len(a_) == 0:
        raise ValueError(
            f"paired_test needs two equally long, non-empty samples, got {len(a_)} and {len(b_)}"
        )
    d = b_ - a_
    interval = mean_ci(d)
    if len(d) < 2:
        return PairedTest(len(d), interval, None, None)
    if np.all(d == 0):
        return PairedTest(len(d), interval, None, 1.0)
    if np.all(d == d[0]):
        return PairedTest(len(d), interval, None, None)
    result = stats.ttest_rel(b_, a_)
    return PairedTest(len(d), interval, float(result.statistic), float(result.pvalue))
