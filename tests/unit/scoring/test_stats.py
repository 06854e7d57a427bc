"""The gate's statistics against independent twins: scipy, brute-force sums, simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from liveopt.scoring import stats

p_values = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=60).map(
    np.array
)


def holm_twin(p):
    # Holm (1979) as written: step down the sorted p-values with levels alpha/(m - j + 1);
    # the adjusted p-value is the smallest alpha at which the hypothesis is rejected.
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    running = 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (m - j) * p[i]))
        out[i] = running
    return np.array(out)


def bh_twin(p):
    # Benjamini-Hochberg (1995): hypothesis i is rejected at level q when some
    # p_(k) <= k q / m with p_(k) >= p_i; its adjusted p-value is the smallest such q.
    m = len(p)
    ps = sorted(p)
    return np.array([
        min(min(1.0, m * ps[k] / (k + 1)) for k in range(m) if ps[k] >= p[i]) for i in range(m)
    ])


@settings(max_examples=200, deadline=None)
@given(p=p_values)
def test_holm_adjustment_equals_the_step_down_twin(p):
    np.testing.assert_allclose(stats.adjust_p_values(p, "holm"), holm_twin(p), rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(p=p_values)
def test_bh_adjustment_equals_the_step_up_twin_and_scipy(p):
    adjusted = stats.adjust_p_values(p, "bh")
    np.testing.assert_allclose(adjusted, bh_twin(p), rtol=1e-12)
    np.testing.assert_allclose(adjusted, sps.false_discovery_control(p), rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(p=p_values, method=st.sampled_from(stats.CORRECTIONS))
def test_adjusted_p_values_are_at_least_raw_at_most_one_and_keep_the_order(p, method):
    adjusted = stats.adjust_p_values(p, method)
    assert np.all(adjusted >= p) and np.all(adjusted <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= 0.0)


@settings(max_examples=200, deadline=None)
@given(p=p_values)
def test_holm_adjusted_p_values_are_never_below_bh(p):
    # So at the same confidence Holm never rejects more than Benjamini-Hochberg.
    assert np.all(stats.adjust_p_values(p, "holm") >= stats.adjust_p_values(p, "bh"))


def test_unknown_correction_is_rejected_by_name():
    with pytest.raises(ValueError, match="correction"):
        stats.adjust_p_values(np.array([0.5]), "bonferroni")


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 80), n_b=st.integers(2, 80),
       shift=st.floats(-1.0, 1.0), scale=st.floats(0.1, 5.0))
def test_welch_p_value_equals_scipy_one_sided_welch(seed, n, n_b, shift, scale):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(shift, scale, n), rng.normal(0.0, 1.0, n_b)
    t, df, p = stats.welch_t_test(np.array([n]), np.array([x.mean()]),
                                  np.array([x.var(ddof=1)]), n_b, y.mean(), y.var(ddof=1))
    ref = sps.ttest_ind(x, y, equal_var=False, alternative="greater")
    assert t[0] == pytest.approx(ref.statistic, rel=1e-9)
    assert df[0] == pytest.approx(ref.df, rel=1e-9)
    assert p[0] == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-300)


def test_welch_without_spread_is_exact():
    t, _, p = stats.welch_t_test(np.array([5, 5, 5]), np.array([2.0, 1.0, 0.5]),
                                 np.zeros(3), 5, 1.0, 0.0)
    assert p.tolist() == [0.0, 1.0, 1.0]
    assert t[0] == np.inf


def test_sample_moments_match_scipy_population_skewness_and_kurtosis():
    x = np.random.default_rng(3).gamma(2.0, size=500)
    mom = stats.sample_moments([x, np.array([1.0]), np.array([])])
    assert mom["trades"].tolist() == [500, 1, 0]
    assert mom["var_return"][0] == pytest.approx(x.var(ddof=1), rel=1e-12)
    assert mom["skewness"][0] == pytest.approx(sps.skew(x), rel=1e-10)
    assert mom["kurtosis"][0] == pytest.approx(sps.kurtosis(x, fisher=False), rel=1e-10)
    assert math.isnan(mom["var_return"][1]) and math.isnan(mom["skewness"][1])
    assert math.isnan(mom["mean_return"][2])


def test_expected_max_sharpe_matches_the_simulated_best_of_n_trials():
    # SR0 approximates E[max of N draws] of N(0, V); simulate the maximum directly.
    rng = np.random.default_rng(11)
    for n_trials in (10, 100, 1000):
        maxima = rng.normal(0.0, 0.3, size=(4000, n_trials)).max(axis=1)
        assert stats.expected_max_sharpe(n_trials, 0.09) == pytest.approx(maxima.mean(),
                                                                          rel=0.03)
    assert stats.expected_max_sharpe(1, 0.09) == 0.0
    assert stats.expected_max_sharpe(50, 0.0) == 0.0


def test_probabilistic_sharpe_reduces_to_the_normal_formula_for_normal_moments():
    sr, n, bench = np.array([0.3]), np.array([101]), 0.1
    psr = stats.probabilistic_sharpe(sr, n, np.array([0.0]), np.array([3.0]), bench)
    expected = sps.norm.cdf((0.3 - 0.1) * math.sqrt(100) / math.sqrt(1 + 0.3**2 / 2))
    assert psr[0] == pytest.approx(expected, rel=1e-12)


def test_negative_skew_and_fat_tails_lower_the_probabilistic_sharpe():
    sr, n = np.array([0.2, 0.2, 0.2]), np.array([100, 100, 100])
    psr = stats.probabilistic_sharpe(sr, n, np.array([0.0, -2.0, 0.0]),
                                     np.array([3.0, 3.0, 12.0]), 0.0)
    assert psr[1] < psr[0] and psr[2] < psr[0]


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 40))
def test_deflated_sharpe_is_a_probability_and_undefined_only_without_a_sharpe(seed, m):
    rng = np.random.default_rng(seed)
    sharpe = rng.normal(0.0, 1.0, m) * rng.choice([0.1, 10.0])
    sharpe[rng.random(m) < 0.2] = np.nan
    n = rng.integers(0, 300, m)
    skew = rng.normal(0.0, 3.0, m)
    # Any real sample has kurtosis >= 1 + skewness^2.
    kurt = 1.0 + skew**2 + rng.exponential(5.0, m)
    dsr = stats.deflated_sharpe(sharpe, n, skew, kurt, n_trials=m)
    defined = np.isfinite(sharpe) & (n >= 2)
    assert np.all((dsr[defined] >= 0.0) & (dsr[defined] <= 1.0))
    assert np.all(np.isnan(dsr[~defined]))


def test_deflated_sharpe_falls_as_more_trials_are_run():
    sharpe = np.array([0.3, 0.1, 0.0, -0.1, 0.2])
    args = (np.full(5, 200), np.zeros(5), np.full(5, 3.0))
    few = stats.deflated_sharpe(sharpe, *args, n_trials=5)
    many = stats.deflated_sharpe(sharpe, *args, n_trials=5000)
    assert np.all(many < few)


@pytest.mark.parametrize("dist", ["student_t3", "lognormal"])
def test_bootstrap_t_false_positive_rate_is_controlled_on_heavy_tails(dist):
    # 400 independent null comparisons (same distribution on both sides, 40 and 60
    # trades): rejections at 5 % must be consistent with a rate of at most 5 %.
    from tests.unit.scoring.simulate import draw

    rng = np.random.default_rng(20261130)
    rejections = 0
    runs = 400
    for _ in range(runs):
        x, y = draw(rng, dist, (40,)), draw(rng, dist, (60,))
        p = stats.bootstrap_t_test([x], y, resamples=499, rng=rng, tested=np.array([True]))
        rejections += bool(p[0] <= 0.05)
    assert sps.binomtest(rejections, runs, 0.05, alternative="greater").pvalue > 0.01


def test_bootstrap_t_detects_a_real_shift_and_is_reproducible():
    rng = np.random.default_rng(5)
    x, y = rng.standard_t(3, 100) + 0.8, rng.standard_t(3, 100)
    p1 = stats.bootstrap_t_test([x], y, resamples=999, rng=np.random.default_rng(1),
                                tested=np.array([True]))
    p2 = stats.bootstrap_t_test([x], y, resamples=999, rng=np.random.default_rng(1),
                                tested=np.array([True]))
    assert p1[0] == p2[0] <= 0.01
    assert p1[0] >= 1.0 / 1000
