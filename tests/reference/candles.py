"""Slow, obvious pure-Python reference twin of candle aggregation (``liveopt._core.ingest``).

It follows the documented semantics literally with Python ints and floats, bucket by bucket:

- a bucket is ``[start, start + tf)`` with ``start = (ts // tf) * tf`` (Python's ``//``
  floors, also for negative ``ts``); a candle's ``ts`` is its bucket start;
- the first trade of a bucket sets O=H=L=C=price and V=size, later ones update H, L, C and
  add their size to V, in arrival order;
- every empty bucket between two trades is a candle with O=H=L=C=the previous close and V=0;
- ``include_last=False`` leaves out the last trade's bucket.
"""

from collections.abc import Sequence

Candle = tuple[int, float, float, float, float, float]  # ts, open, high, low, close, volume


def candles_reference(
    ts: Sequence[int],
    price: Sequence[float],
    size: Sequence[float],
    timeframe_ns: int,
    include_last: bool = True,
) -> list[Candle]:
    """Return the candles of the trades, one per bucket from the first trade's to the last."""
    # Group the trades by bucket, keeping arrival order within each bucket.
    buckets: dict[int, list[tuple[float, float]]] = {}
    for t, p, s in zip(ts, price, size, strict=True):
        start = (int(t) // timeframe_ns) * timeframe_ns
        buckets.setdefault(start, []).append((float(p), float(s)))
    if not buckets:
        return []

    first = min(buckets)
    last = max(buckets)
    candles: list[Candle] = []
    previous_close = 0.0
    for start in range(first, last + timeframe_ns, timeframe_ns):
        if start == last and not include_last:
            break
        trades = buckets.get(start)
        if trades is None:
            c = previous_close
            candles.append((start, c, c, c, c, 0.0))
            continue
        open_ = trades[0][0]
        high = max(p for p, _ in trades)
        low = min(p for p, _ in trades)
        close = trades[-1][0]
        volume = trades[0][1]
        for _, s in trades[1:]:
            volume += s
        candles.append((start, open_, high, low, close, volume))
        previous_close = close
    return candles
