"""Replays of recorded market data: the indicators alone, or every variant on paper.

:func:`replay_trades` drives the indicator path the way a live feed does, one trade at a
time: the Cython ingestor updates the tick buffer and every timeframe's candle; when
candles close, they are drained in order into the indicator bank, one compiled call per
closed candle. :func:`replay_variants` runs ``liveopt.Engine`` (every variant, on paper)
over a trades or candles file, in chunks, timing only the processing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import msgspec
import numpy as np

from liveopt._core.ingest import TradeIngestor
from liveopt.data.candles import validate_trades
from liveopt.data.columns import Candles, Trades
from liveopt.engine import Engine, EngineConfig
from liveopt.indicators.bank import IndicatorBank
from liveopt.indicators.specs import DEFAULT_INDICATORS, IndicatorSpec
from liveopt.optimizer import VariantSet
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


# ---------------------------------------------------------------------------------------
# Variant replay: the all-variants engine over a file.


class VariantResult(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the leaderboard."""

    id: int
    config_hash: str
    net_pnl: float
    trades: int
    win_rate: float
    sharpe: float
    max_drawdown: float
    roi_pct: float


class VariantReplaySummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a variant replay did (``liveopt replay --json`` writes this).

    ``elapsed_s`` is the processing time only: reading the file and compiling or loading
    the kernels are excluded. ``ticks`` counts input events (trades, or bars for a
    candles file). ``sharpe`` in ``top`` is the per-trade Sharpe ratio.
    """

    source: str
    input: str
    ticks: int
    rejected: int
    variants: int
    timeframe: str
    seed: int
    mode: str
    trades: int
    elapsed_s: float
    variant_ticks_per_s: float
    first_ts: int
    last_ts: int
    top: tuple[VariantResult, ...]


def leaderboard(metrics: np.ndarray, count: int) -> tuple[VariantResult, ...]:
    """The ``count`` variants with the highest net PnL (ties: lower id first)."""
    order = np.lexsort((metrics["variant"], -metrics["net_pnl"]))[:count]
    return tuple(
        VariantResult(
            id=int(row["variant"]),
            config_hash=f"{int(row['config_hash']):016x}",
            net_pnl=float(row["net_pnl"]),
            trades=int(row["trades"]),
            win_rate=float(row["win_rate"]),
            sharpe=float(row["sharpe_per_trade"]),
            max_drawdown=float(row["max_drawdown"]),
            roi_pct=float(row["roi_pct"]),
        )
        for row in metrics[order]
    )


def replay_variants(
    data: Trades | Candles,
    variants: VariantSet,
    config: EngineConfig,
    *,
    seed: int = 0,
    mode: str = "",
    top: int = 10,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[VariantReplaySummary, np.ndarray]:
    """Run every variant over ``data`` (trades, or candles in candle mode).

    Returns the summary and the per-variant metrics (``liveopt.engine.METRICS_DTYPE``).
    ``progress(done, total)`` is called after each chunk of events.
    """
    is_candles = isinstance(data, Candles)
    n = len(data)
    # Warm up on a throw-away engine so compilation (or loading the kernel cache) is not
    # timed: the first call of a Numba kernel in a process compiles or loads it.
    warm = Engine(config, variants.take([0]), keep_records=False)
    _feed(warm, data, 0, min(n, 2), is_candles)
    engine = Engine(config, variants, keep_records=False)
    chunk = max(1, min(1 << 16, n // 100 or 1))
    elapsed = 0.0
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        began = clock()
        _feed(engine, data, start, stop, is_candles)
        elapsed += clock() - began
        if progress is not None:
            progress(stop, n)
    metrics = engine.metrics()
    timeframe = variants.config.timeframes[int(variants.timeframe[0])] if len(variants) else ""
    summary = VariantReplaySummary(
        source=data.source,
        input="candles" if is_candles else "trades",
        ticks=n,
        rejected=data.rejected,
        variants=len(variants),
        timeframe=timeframe,
        seed=seed,
        mode=mode,
        trades=int(metrics["trades"].sum()),
        elapsed_s=elapsed,
        variant_ticks_per_s=n * len(variants) / elapsed if elapsed > 0 else float("inf"),
        first_ts=int(data.ts[0]) if n else 0,
        last_ts=int(data.ts[-1]) if n else 0,
        top=leaderboard(metrics, top),
    )
    return summary, metrics


def _feed(engine: Engine, data, start: int, stop: int, is_candles: bool) -> None:
    if is_candles:
        engine.on_candles(data.ts[start:stop], data.open[start:stop], data.high[start:stop],
                          data.low[start:stop], data.close[start:stop],
                          data.volume[start:stop])
    else:
        engine.on_trades(data.ts[start:stop], data.price[start:stop], data.size[start:stop],
                         data.side[start:stop])
