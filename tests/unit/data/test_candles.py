"""Tests of ``liveopt.data.candles.candles_from_trades`` against the reference twin."""

import gzip
import json
from functools import cache

import numpy as np
import pytest

from liveopt._core.ingest import TradeIngestor
from liveopt.data.candles import candles_from_trades
from liveopt.data.columns import Candles, Trades
from liveopt.timeframes import TIMEFRAMES
from liveopt.units import NS_PER_MS
from tests.conftest import DATA_DIR
from tests.reference.candles import candles_reference

XRP_ETH_TRADES = DATA_DIR / "freqtrade_binance_xrpeth" / "XRP_ETH-trades.json.gz"


@cache
def _xrp_eth_trades() -> Trades:
    # 12,477 Binance XRP/ETH trades [timestamp_ms, id, type, side, price, amount, cost].
    # No skip when the file is missing: the real data is part of the test contract
    # (it sits at ../shared/data beside the checkout, in CI too), so its absence must fail.
    with gzip.open(XRP_ETH_TRADES, "rt") as handle:
        rows = json.load(handle)
    return Trades.from_arrays(
        ts=[int(row[0]) * NS_PER_MS for row in rows],
        price=[float(row[4]) for row in rows],
        size=[float(row[5]) for row in rows],
        side=[1 if row[3] == "buy" else -1 for row in rows],
        source=str(XRP_ETH_TRADES),
    )


def _trades(ts, price, size) -> Trades:
    return Trades.from_arrays(ts=ts, price=price, size=size, side=[1] * len(ts))


def _rows(candles: Candles) -> list[tuple]:
    columns = (candles.ts, candles.open, candles.high, candles.low, candles.close, candles.volume)
    return [
        (int(t), float(a), float(b), float(x), float(y), float(z))
        for t, a, b, x, y, z in zip(*columns, strict=True)
    ]


@pytest.mark.parametrize("include_last", [True, False])
@pytest.mark.parametrize("timeframe", list(TIMEFRAMES))
def test_candles_from_real_trades_equal_reference(timeframe, include_last):
    # Arrange
    trades = _xrp_eth_trades()
    expected = candles_reference(
        trades.ts.tolist(),
        trades.price.tolist(),
        trades.size.tolist(),
        TIMEFRAMES[timeframe],
        include_last,
    )

    # Act
    candles = candles_from_trades(trades, timeframe, include_last=include_last)

    # Assert
    assert len(trades) == 12_477
    assert _rows(candles) == expected


def test_streaming_real_trades_on_all_timeframes_equals_candles_from_trades():
    # Arrange
    trades = _xrp_eth_trades()
    names = list(TIMEFRAMES)
    ingestor = TradeIngestor([TIMEFRAMES[name] for name in names], candle_capacity=8)

    # Act
    for t, p, s, side in zip(
        trades.ts.tolist(),
        trades.price.tolist(),
        trades.size.tolist(),
        trades.side.tolist(),
        strict=True,
    ):
        ingestor.push(t, p, s, side)
    ingestor.flush()
    drained = {name: ingestor.drain(k) for k, name in enumerate(names)}

    # Assert
    for name in names:
        expected = candles_from_trades(trades, name)
        ts, o, h, l, c, v = drained[name]
        assert ts.tolist() == expected.ts.tolist(), name
        for got, want in zip(
            (o, h, l, c, v),
            (expected.open, expected.high, expected.low, expected.close, expected.volume),
            strict=True,
        ):
            assert got.tolist() == want.tolist(), name


def test_candles_from_trades_accepts_alias_and_returns_frozen_candles():
    # Arrange
    trades = _trades([0, 61 * 10**9], [1.0, 2.0], [3.0, 4.0])

    # Act
    candles = candles_from_trades(trades, "1min")

    # Assert
    assert isinstance(candles, Candles)
    assert _rows(candles) == [(0, 1.0, 1.0, 1.0, 1.0, 3.0), (60 * 10**9, 2.0, 2.0, 2.0, 2.0, 4.0)]
    assert not candles.ts.flags.writeable
    assert candles.source.startswith("1m candles from trades")


def test_candles_from_trades_without_last_drops_the_partial_bucket():
    # Arrange
    trades = _trades([0, 61 * 10**9], [1.0, 2.0], [3.0, 4.0])

    # Act
    candles = candles_from_trades(trades, "1m", include_last=False)

    # Assert
    assert candles.ts.tolist() == [0]


def test_candles_from_empty_trades_returns_empty_candles():
    # Arrange
    trades = _trades([], [], [])

    # Act
    candles = candles_from_trades(trades, "5m")

    # Assert
    assert len(candles) == 0
    assert candles.ts.dtype == np.int64


def test_candles_from_trades_with_unknown_timeframe_raises():
    # Arrange
    trades = _trades([0], [1.0], [1.0])

    # Act / Assert
    with pytest.raises(ValueError, match="unknown timeframe '2m'"):
        candles_from_trades(trades, "2m")


def test_candles_from_trades_with_backwards_ts_raises_naming_first_index():
    # Arrange
    trades = _trades([0, 5, 5, 4, 3], [1.0] * 5, [1.0] * 5)

    # Act / Assert
    with pytest.raises(ValueError, match=r"non-decreasing: ts\[3\]=4 < ts\[2\]=5"):
        candles_from_trades(trades, "1m")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 0.0, -1.0])
def test_candles_from_trades_with_bad_price_raises_naming_index(bad):
    # Arrange
    trades = _trades([0, 1, 2], [1.0, bad, 1.0], [1.0, 1.0, 1.0])

    # Act / Assert
    with pytest.raises(ValueError, match=r"price must be finite and > 0: price\[1\]"):
        candles_from_trades(trades, "1m")


@pytest.mark.parametrize("bad", [-1.0, -1e-300, np.nan, np.inf])
def test_candles_from_trades_with_bad_size_raises_naming_index(bad):
    # Arrange
    trades = _trades([0, 1, 2], [1.0, 1.0, 1.0], [1.0, 0.0, bad])

    # Act / Assert
    with pytest.raises(ValueError, match=r"size must be finite and >= 0: size\[2\]"):
        candles_from_trades(trades, "1m")
