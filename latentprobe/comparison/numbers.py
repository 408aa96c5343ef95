"""How ``compare`` prints a metric's numbers for reading: a fixed number of decimals per metric.

Every number of one metric gets the same decimals, so a row's or a column's values line up and read as
the same quantity: accuracies (and the other fractions of the test set) 4 decimals; counts as integers
(their means and differences 2 decimals); every other metric (losses, timings) 4 significant digits of its
largest value across the runs, never in scientific notation (``21.92``, ``0.3073``, ``21441``). The
``json`` and ``csv`` formats keep full precision and do not use this.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

MISSING = "n/a"

#: Decimals of a fraction (accuracy, NMI, an accuracy gap): 0.9065 reads as 90.65%.
FRACTION_DECIMALS = 4
#: Decimals of a mean or a difference of counts (2.67 of 8 active units on average).
COUNT_STAT_DECIMALS = 2
#: Significant digits of any other metric's largest value, and the most decimals it may get.
SIGNIFICANT = 4
MAX_DECIMALS = 8

#: Last parts of metric names that count things (``eval/active_units``).
COUNTS = ("active_units",)
#: Last parts of metric names that are fractions in [0, 1] (or differences of them).
FRACTIONS = ("nmi", "online_offline_gap", "near_zero_share")


def metric_kind(name: str) -> str:
    """``fraction``, ``count`` or ``magnitude`` for a metric name such as ``eval/pca/knn@100``.

    Accuracies end in ``accuracy``; the offline probes' scores are named ``<probe>@<budget>``.
    """
    last = name.rsplit("/", 1)[-1]
    if last in COUNTS:
        return "count"
    if last.endswith("accuracy") or "@" in last or last in FRACTIONS:
        return "fraction"
    return "magnitude"


@dataclass(frozen=True)
class NumberFormat:
    """Decimals for one metric: ``value`` for a run's value, ``stat`` for means, CIs and differences."""

    value_decimals: int
    stat_decimals: int

    def value(self, number: float | None, signed: bool = False) -> str:
        """A run's value (``signed``: with a + for positive numbers, as for a difference)."""
        return fixed(number, self.value_decimals, signed)

    def stat(self, number: float | None, signed: bool = False) -> str:
        """A mean, a CI half-width or a difference."""
        return fixed(number, self.stat_decimals, signed)


def number_format(name: str, values: Iterable[float | None]) -> NumberFormat:
    """The format of metric ``name`` given every value it takes across the runs compared."""
    kind = metric_kind(name)
    if kind == "fraction":
        return NumberFormat(FRACTION_DECIMALS, FRACTION_DECIMALS)
    if kind == "count":
        return NumberFormat(0, COUNT_STAT_DECIMALS)
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    largest = max(finite, default=0.0)
    if largest == 0.0:
        return NumberFormat(FRACTION_DECIMALS, FRACTION_DECIMALS)
    decimals = SIGNIFICANT - 1 - math.floor(math.log10(largest))
    decimals = min(max(decimals, 0), MAX_DECIMALS)
    return NumberFormat(decimals, decimals)


def fixed(number: float | None, decimals: int, signed: bool = False) -> str:
    """``number`` with ``decimals`` decimals; ``n/a`` for None, ``nan``/``inf`` as Python writes them.

    A value that rounds to zero prints as ``0.0000`` (``+0.0000`` when signed), never ``-0.0000``.
    """
    if number is None:
        return MISSING
    if not math.isfinite(number):
        return str(number)
    rounded = round(number, decimals)
    if rounded == 0:
        rounded = 0.0
    return f"{rounded:{'+' if signed else ''}.{decimals}f}"


def format_p(p: float | None) -> str:
    """A p-value with 4 significant digits; below 0.0001 as ``<0.0001``."""
    if p is None:
        return MISSING
    return "<0.0001" if p < 1e-4 else f"{p:.4g}"
