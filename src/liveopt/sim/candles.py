"""Candles of the simulated exchange, built from its own public trades.

Owns the one-minute bars each symbol keeps (:func:`record_candle`, called for every
published trade), their aggregation into any granularity, the current candle of
``/contractMarket/limitCandle`` and the kline rows of ``GET /api/v1/kline/query``.
"""

from __future__ import annotations

from liveopt.sim.orders import param_error
from liveopt.sim.positions import mark
from liveopt.sim.state import SymbolState, num
from liveopt.sim.wire import CandleData
from liveopt.units import NS_PER_MINUTE, NS_PER_MS

__all__ = [
    "aggregate",
    "current_candle",
    "granularity_ns",
    "klines",
    "record_candle",
]

_MAX_KLINES = 500


def granularity_ns(granularity_min: int) -> int:
    """A granularity in minutes as nanoseconds; 400100 unless a positive int."""
    if isinstance(granularity_min, bool) or not isinstance(granularity_min, int) or (
            granularity_min < 1):
        raise param_error(f"granularity: must be a positive number of minutes, got "
                          f"{granularity_min!r}")
    return granularity_min * NS_PER_MINUTE


def record_candle(state: SymbolState, price_ticks: int, size: int, ts_ns: int) -> None:
    """Add a trade to its one-minute bar."""
    assert state.minutes is not None
    minute = (ts_ns // NS_PER_MINUTE) * NS_PER_MINUTE
    turnover = state.grid.to_float(price_ticks) * size * state.spec.multiplier
    bar = state.minutes.get(minute)
    if bar is None:
        state.minutes[minute] = [price_ticks, price_ticks, price_ticks, price_ticks,
                                 float(size), turnover]
        return
    bar[1] = max(bar[1], price_ticks)
    bar[2] = min(bar[2], price_ticks)
    bar[3] = price_ticks
    bar[4] += size
    bar[5] += turnover


def aggregate(state: SymbolState, start_ns: int, end_ns: int) -> list[float] | None:
    """``[open, high, low, close, volume, turnover]`` of the bars starting in the span, or
    ``None`` without trades (prices in ticks)."""
    # Combine the one-minute bars with start in [start_ns, end_ns).
    assert state.minutes is not None
    row: list[float] | None = None
    for minute in range(start_ns - start_ns % NS_PER_MINUTE, end_ns, NS_PER_MINUTE):
        if minute < start_ns:
            continue
        bar = state.minutes.get(minute)
        if bar is None:
            continue
        if row is None:
            row = list(bar)
        else:
            row[1] = max(row[1], bar[1])
            row[2] = min(row[2], bar[2])
            row[3] = bar[3]
            row[4] += bar[4]
            row[5] += bar[5]
    return row


def current_candle(symbol: str, state: SymbolState, granularity_min: int,
                   now_ns: int) -> CandleData:
    """The current candle of a granularity (``/contractMarket/limitCandle``)."""
    span = granularity_ns(granularity_min)
    start = (now_ns // span) * span
    row = aggregate(state, start, min(now_ns + 1, start + span))
    grid = state.grid
    if row is None:
        price = _last_or_mark_str(state)
        values = [price, price, price, price, "0", "0"]
    else:
        o, h, low, c, vol, turnover = row
        values = [grid.to_str(int(o)), grid.to_str(int(c)), grid.to_str(int(h)),
                  grid.to_str(int(low)), num(vol), num(turnover)]
    return CandleData(
        symbol=symbol, candles=[str(start // 1_000_000_000), *values],
        time=now_ns // NS_PER_MS)


def klines(
    state: SymbolState, granularity_min: int, from_ms: int, to_ms: int
) -> list[list[float]]:
    """Candles ``[time_ms, open, high, low, close, volume, turnover]`` whose start lies in
    ``[from_ms, to_ms]``; buckets without trades after the first trade repeat the
    previous close with zero volume; at most the last 500 rows."""
    span = granularity_ns(granularity_min)
    if from_ms > to_ms:
        raise param_error(f"from: {from_ms} is after to: {to_ms}")
    first = (from_ms * NS_PER_MS + span - 1) // span * span
    last = to_ms * NS_PER_MS
    assert state.minutes is not None
    if not state.minutes:
        return []
    first = max(first, (min(state.minutes) // span) * span)
    starts = range(first, last + 1, span)
    if len(starts) > _MAX_KLINES:
        starts = starts[-_MAX_KLINES:]
    rows: list[list[float]] = []
    previous_close: float | None = _close_before(state, starts[0]) if starts else None
    grid = state.grid
    for start in starts:
        row = aggregate(state, start, start + span)
        if row is None:
            if previous_close is None:
                continue
            rows.append([start // NS_PER_MS, previous_close, previous_close,
                         previous_close, previous_close, 0.0, 0.0])
            continue
        o, h, low, c, vol, turnover = row
        close = grid.to_float(int(c))
        rows.append([start // NS_PER_MS, grid.to_float(int(o)), grid.to_float(int(h)),
                     grid.to_float(int(low)), close, vol, turnover])
        previous_close = close
    return rows


def _close_before(state: SymbolState, start_ns: int) -> float | None:
    assert state.minutes is not None
    earlier = [m for m in state.minutes if m < start_ns]
    if not earlier:
        return None
    return state.grid.to_float(int(state.minutes[max(earlier)][3]))


def _last_or_mark_str(state: SymbolState) -> str:
    if state.last_price_ticks is not None:
        return state.grid.to_str(state.last_price_ticks)
    return num(mark(state))
