"""Online trade statistics against a twin that keeps the whole history."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.metrics import SUMMARY_DTYPE, TradeStats
from tests.reference import metrics as ref

returns = st.lists(
    st.floats(-0.5, 0.5, allow_nan=False).map(lambda x: round(x, 6)), min_size=0, max_size=200
)


def feed(stats: TradeStats, variant: int, net_returns, capital: float):
    # Trades of margin 100: net PnL = return * 100, gross = net + fees; equity after each.
    equity, equities, pnls, grosses, fees = capital, [], [], [], []
    for r in net_returns:
        pnl, fee = r * 100.0, 0.06
        stats.record_trade(variant, r, pnl, pnl + fee, fee)
        equity += pnl
        stats.record_equity(variant, equity)
        equities.append(equity)
        pnls.append(pnl)
        grosses.append(pnl + fee)
        fees.append(fee)
    return ref.summary(net_returns, pnls, grosses, fees, equities, capital)


def assert_summary_matches(row, expected: dict) -> None:
    for name in SUMMARY_DTYPE.names:
        ours, theirs = float(row[name]), float(expected[name])
        if math.isnan(theirs):
            assert math.isnan(ours), (name, ours)
        else:
            assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-9), (name, ours, theirs)


@settings(max_examples=300, deadline=None)
@given(net_returns=returns)
def test_online_statistics_equal_the_full_history_twin(net_returns):
    stats = TradeStats(1, initial_capital=10_000.0)
    expected = feed(stats, 0, net_returns, 10_000.0)
    assert_summary_matches(stats.summary()[0], expected)


def test_variants_are_isolated_from_each_other():
    stats = TradeStats(3)
    a = feed(stats, 0, [0.1, -0.05, 0.2], 10_000.0)
    c = feed(stats, 2, [-0.3, -0.1], 10_000.0)
    summary = stats.summary()
    assert_summary_matches(summary[0], a)
    assert summary[1]["trades"] == 0 and math.isnan(summary[1]["win_rate"])
    assert_summary_matches(summary[2], c)


def test_drawdown_counts_losses_before_any_profit():
    # Origin defect C.5: drawdown was invisible until the cumulative PnL had been positive.
    stats = TradeStats(1, initial_capital=10_000.0)
    stats.record_equity(0, 9_000.0)
    stats.record_equity(0, 9_500.0)
    assert stats.summary()[0]["max_drawdown"] == pytest.approx(0.1)


def test_streaks_are_the_longest_runs_not_the_current_ones():
    stats = TradeStats(1)
    for pnl in (1, 1, 1, -1, 1, -1, -1, 0, -1):
        stats.record_trade(0, pnl / 100, float(pnl), float(pnl), 0.0)
    row = stats.summary()[0]
    assert (row["max_win_streak"], row["max_loss_streak"]) == (3, 2)
    assert (row["wins"], row["losses"], row["trades"]) == (4, 4, 9)


def test_moments_stay_accurate_for_returns_far_from_zero():
    # One pass with a large common offset: the naive sum-of-squares formula loses the
    # variance entirely here; the central-moment update keeps it.
    rng = np.random.default_rng(7)
    r = 1e4 + rng.normal(0.0, 1e-3, 10_000)
    stats = TradeStats(1)
    for x in r:
        stats.record_trade(0, float(x), 1.0, 1.0, 0.0)
    row = stats.summary()[0]
    assert row["variance"] == pytest.approx(np.var(r, ddof=1), rel=1e-6)


def test_constructor_rejects_bad_sizes_and_capital():
    with pytest.raises(ValueError, match="n_variants must be >= 1"):
        TradeStats(0)
    with pytest.raises(ValueError, match="initial_capital must be finite and > 0"):
        TradeStats(1, initial_capital=0.0)


def test_identical_returns_have_zero_variance_and_no_sharpe_or_skew():
    stats = TradeStats(1)
    for _ in range(3):
        stats.record_trade(0, 0.054688, 5.4688, 5.5288, 0.06)
    row = stats.summary()[0]
    assert row["variance"] == 0.0
    assert math.isnan(row["sharpe_per_trade"])
    assert math.isnan(row["skewness"]) and math.isnan(row["kurtosis"])
