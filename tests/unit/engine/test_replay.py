"""The replay pipeline: trades through the Cython ingestor into the indicator bank.

The live path (one trade at a time, candles drained into the bank as they close) must give
the same candles as the batch aggregation and the same indicator values as the batch
functions on those candles.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import liveopt.indicators as li
from liveopt.data import Trades, bundled_trades, candles_from_trades
from liveopt.indicators.batch import run_spec
from liveopt.replay import default_specs, replay_trades


@pytest.fixture(scope="module")
def trades() -> Trades:
    full = bundled_trades()
    n = 30_000
    return Trades.from_arrays(
        full.ts[:n], full.price[:n], full.size[:n], full.side[:n], source="bundled[:30000]"
    )


def test_replay_feeds_the_bank_the_same_candles_as_the_batch_aggregation(trades):
    summary = replay_trades(trades, default_specs(["1m", "5m", "1h"]))
    for tf in ("1m", "5m", "1h"):
        assert summary.candles[tf] == len(candles_from_trades(trades, tf))
    assert summary.trades == len(trades)
    assert summary.indicators == 36


def test_replay_ends_with_the_batch_indicator_values_of_the_aggregated_candles(trades):
    specs = default_specs(["1m", "15m"])
    summary = replay_trades(trades, specs)
    readings = {reading.label: reading.outputs for reading in summary.readings}
    for spec in specs:
        candles = candles_from_trades(trades, spec.timeframe)
        series = run_spec(
            spec, *(np.array(column) for column in
                    (candles.high, candles.low, candles.close, candles.volume))
        )
        expected = {name: s[-1] for name, s in zip(spec.outputs, series, strict=True)}
        actual = readings[spec.label()]
        assert actual.keys() == expected.keys()
        for name, value in expected.items():
            assert actual[name] == value or (np.isnan(value) and np.isnan(actual[name])), (
                spec.label(), name, actual[name], value
            )


def test_replay_times_itself_with_the_injected_clock(trades):
    ticks = itertools.count(start=100.0, step=2.5)
    summary = replay_trades(trades, [li.indicator("rsi")], clock=lambda: next(ticks))
    assert summary.wall_seconds == 2.5
    assert summary.trades_per_second == len(trades) / 2.5


def test_replay_rejects_trades_that_go_back_in_time():
    trades = Trades.from_arrays([2, 1], [1.0, 1.0], [1.0, 1.0], [1, -1])
    with pytest.raises(ValueError, match="non-decreasing"):
        replay_trades(trades, [li.indicator("rsi")])
