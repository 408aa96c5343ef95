"""Known answers for the confidence intervals and the paired test."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from latentprobe.comparison.statistics import mean_ci, paired_test


def test_ci_of_identical_seeds_has_zero_width():
    interval = mean_ci([0.9, 0.9, 0.9])
    assert interval.mean == pytest.approx(0.9)
    assert interval.half_width == 0.0
    assert interval.low == interval.high == pytest.approx(0.9)


def test_ci_of_one_value_is_absent():
    interval = mean_ci([0.7])
    assert (interval.n, interval.mean, interval.half_width) == (1, 0.7, None)


def test_ci_uses_the_t_distribution():
    interval = mean_ci([1.0, 2.0, 3.0])
    # t(0.975, df=2) = 4.3027; sample std 1; n 3
    assert interval.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)


def test_paired_test_on_identical_groups_is_not_significant():
    test = paired_test([0.8, 0.85, 0.9], [0.8, 0.85, 0.9])
    assert test.p_value == 1.0
    assert not test.significant
    assert test.difference.mean == 0.0 and test.difference.half_width == 0.0


def test_paired_test_matches_scipy_and_finds_a_consistent_gain():
    a = [0.80, 0.82, 0.78, 0.81, 0.79]
    b = [0.85, 0.88, 0.82, 0.86, 0.85]
    test = paired_test(a, b)
    assert test.p_value == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert test.significant and test.difference.mean == pytest.approx(0.052)


def test_paired_test_without_variance_says_so():
    assert paired_test([1.0], [2.0]).p_value is None  # one pair
    constant = paired_test([1.0, 2.0], [2.0, 3.0])  # every difference 1: nothing to test against
    assert constant.p_value is None and not constant.significant
