"""Replay trades through the live path: per-trade ingestion, candles, the indicator bank.

This is the same sequence a live feed drives, one trade at a time: the Cython ingestor
updates the tick buffer and every timeframe's candle; when candles close, they are drained
in order into the indicator bank, one compiled call per closed candle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import msgspec
import numpy as np

from liveopt._core.ingest import TradeIngestor
from liveopt.data.candles import validate_trades
from liveopt.data.columns import Trades
from liveopt.indicators.bank import IndicatorBank
from liveopt.indicators.specs import DEFAULT_INDICATORS, IndicatorSpec
from liveopt.timeframes import canonical_timeframe, timeframe_ns


class IndicatorReading(msgspec.Struct, frozen=True, kw_only=True):
    """The latest outputs of one indicator configuration."""

    label: str
    timeframe: str
    outputs: dict[str, float]


class ReplaySummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay did, for printing or for tests.

    Parameters
    ----------
    source : str
        Where the trades came from.
    trades : int
        Trades pushed through the ingestor.
    rejected : int
        Input rows rejected while reading the trades (never silently dropped).
    first_ts, last_ts : int
        Epoch nanoseconds of the first and last trade.
    candles : dict of str to int
        Closed candles per timeframe fed to the bank.
    indicators : int
        Unique indicator configurations in the bank.
    wall_seconds : float
        Wall time of the replay loop (ingestion plus bank updates).
    readings : tuple of IndicatorReading
        The bank's latest outputs at the end of the replay.
    """

    source: str
    trades: int
    rejected: int
    first_ts: int
    last_ts: int
    candles: dict[str, int]
    indicators: int
    wall_seconds: float
    readings: tuple[IndicatorReading, ...]

    @property
    def trades_per_second(self) -> float:
        return self.trades / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def default_specs(timeframes: Iterable[str]) -> list[IndicatorSpec]:
    """The twelve default indicators on each of ``timeframes``."""
    return [
        IndicatorSpec(kind=spec.kind, params=spec.params, timeframe=canonical_timeframe(tf))
        for tf in timeframes
        for spec in DEFAULT_INDICATORS
    ]


def replay_trades(
    trades: Trades,
    specs: Iterable[IndicatorSpec],
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> ReplaySummary:
    """Push ``trades`` one at a time through the ingestor and the indicator bank.

    Parameters
    ----------
    trades : Trades
        Validated trades (non-decreasing ts, finite positive prices, sizes >= 0).
    specs : iterable of IndicatorSpec
        Indicator configurations; their timeframes decide which candles are built.
    clock : callable
        Monotonic seconds, injected so tests can make the timing deterministic.
    """
    validate_trades(trades.ts, trades.price, trades.size)
    bank = IndicatorBank(specs)
    timeframes = bank.timeframes
    ingestor = TradeIngestor([timeframe_ns(tf) for tf in timeframes])
    closed = np.zeros(len(timeframes), dtype=np.uint8)
    candle = np.zeros((4, len(timeframes)))
    fed = dict.fromkeys(timeframes, 0)

    def drain(mask: int) -> None:
        # Feed every closed candle, in time order within each timeframe. Candles of
        # different timeframes that close on the same trade are independent rows.
        for index, tf in enumerate(timeframes):
            if not mask >> index & 1:
                continue
            _, _, high, low, close, volume = ingestor.drain(index)
            closed[:] = 0
            closed[index] = 1
            for k in range(len(close)):
                candle[:, index] = (high[k], low[k], close[k], volume[k])
                bank.update_closed(closed, candle)
            fed[tf] += len(close)

    ts, price, size, side = (
        trades.ts.tolist(), trades.price.tolist(), trades.size.tolist(), trades.side.tolist()
    )
    push = ingestor.push
    start = clock()
    for i in range(len(ts)):
        mask = push(ts[i], price[i], size[i], side[i])
        if mask:
            drain(mask)
    drain(ingestor.flush())
    wall = clock() - start

    readings = tuple(
        IndicatorReading(
            label=spec.label(),
            timeframe=spec.timeframe,
            outputs={name: bank.value(spec, name) for name in spec.outputs},
        )
        for spec in bank.specs
    )
    return ReplaySummary(
        source=trades.source,
        trades=len(ts),
        rejected=trades.rejected,
        first_ts=int(ts[0]) if ts else 0,
        last_ts=int(ts[-1]) if ts else 0,
        candles=fed,
        indicators=len(bank),
        wall_seconds=wall,
        readings=readings,
    )
