"""Candles from trades: validation at the boundary, aggregation in ``liveopt._core.ingest``."""

from __future__ import annotations

import numpy as np

from liveopt._core.ingest import aggregate_trades
from liveopt.data.columns import Candles, Trades
from liveopt.timeframes import canonical_timeframe, timeframe_ns

__all__ = ["candles_from_trades", "validate_trades"]


def _first(mask: np.ndarray) -> int | None:
    # Index of the first True in mask, or None.
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def validate_trades(ts: np.ndarray, price: np.ndarray, size: np.ndarray) -> None:
    """Check trade columns before aggregation.

    Raises
    ------
    ValueError
        Naming the first offending index if ``ts`` decreases, a price is not finite and
        > 0, or a size is not finite and >= 0.
    """
    i = _first(ts[1:] < ts[:-1])
    if i is not None:
        raise ValueError(
            f"trade ts must be non-decreasing: ts[{i + 1}]={ts[i + 1]} < ts[{i}]={ts[i]}"
        )
    i = _first(~(np.isfinite(price) & (price > 0)))
    if i is not None:
        raise ValueError(f"trade price must be finite and > 0: price[{i}]={price[i]!r}")
    i = _first(~(np.isfinite(size) & (size >= 0)))
    if i is not None:
        raise ValueError(f"trade size must be finite and >= 0: size[{i}]={size[i]!r}")


def candles_from_trades(trades: Trades, timeframe: str, include_last: bool = True) -> Candles:
    """Aggregate trades into OHLCV candles, one per bucket from the first trade's to the last.

    Buckets are left-closed ``[start, start + tf)`` with ``start = floor(ts / tf) * tf``; a
    candle's ``ts`` is its bucket start. Empty buckets between trades become candles with
    O=H=L=C=previous close and zero volume. Equivalent to feeding the trades one by one into
    ``liveopt._core.ingest.TradeIngestor`` (the same kernel), then flushing.

    Parameters
    ----------
    trades : Trades
        The trades, with non-decreasing ts.
    timeframe : str
        One of ``1m, 5m, 15m, 30m, 1h, 4h`` (or an alias such as ``5min``).
    include_last : bool
        Also emit the last trade's bucket, which may be incomplete.

    Raises
    ------
    ValueError
        If the timeframe is unknown or the trades are invalid (the message names the first
        offending index).
    """
    name = canonical_timeframe(timeframe)
    ts = np.ascontiguousarray(trades.ts, dtype=np.int64)
    price = np.ascontiguousarray(trades.price, dtype=np.float64)
    size = np.ascontiguousarray(trades.size, dtype=np.float64)
    validate_trades(ts, price, size)
    columns = aggregate_trades(ts, price, size, timeframe_ns(name), include_last)
    source = f"{name} candles from trades"
    if trades.source:
        source += f" ({trades.source})"
    return Candles.from_arrays(*columns, source=source)
