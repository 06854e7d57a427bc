"""Per-trade ingestion: a tick ring buffer and OHLCV candle builders for several timeframes.

Python calls into this module once per trade, so it is Cython rather than Numba: a call
into a Numba dispatcher from Python costs hundreds of nanoseconds before any work is done,
while a ``cpdef`` method on a final ``cdef class`` costs tens (``benchmarks/bench_ingest.py``
measures both on the same trades).

Candle semantics
----------------
- Buckets are left-closed ``[start, start + tf)`` with ``start = floor(ts / tf) * tf``
  (floor also for negative timestamps). A candle's ``ts`` is its bucket start.
- The first trade of a bucket sets O=H=L=C=price and V=size; later trades in the bucket
  update H, L, C and add to V.
- A trade in a later bucket closes the open candle, then emits one candle per empty bucket
  in between (O=H=L=C=previous close, V=0), then opens its own bucket.

The step function :c:func:`candle_step` over a :c:type:`CandleBuilder` is the only code that
builds candles: :class:`TradeIngestor` (live, one trade at a time) and
:func:`aggregate_trades` (batch) both loop it, so the two paths cannot disagree.

Trades must arrive with non-decreasing timestamps. The kernels assume it; the Python entry
points of this module check it, because the output buffers are sized from it.
"""

cimport cython
from libc.stdint cimport INT64_MIN, int8_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free, realloc
from libc.string cimport memcpy

import numpy as np

MAX_TIMEFRAMES = 64


# ---------------------------------------------------------------------------------------
# Kernel: candle builder state and its step function (no Python objects, no GIL)
# ---------------------------------------------------------------------------------------

cdef struct CandleBuilder:
    int64_t tf        # bucket length in ns, > 0
    int64_t start     # start of the open bucket (meaningful only while is_open)
    int64_t end       # start + tf: the first timestamp that belongs to a later bucket
    double open       # open candle's first price
    double high       # open candle's highest price
    double low        # open candle's lowest price
    double close      # open candle's last price
    double volume     # open candle's summed size
    bint is_open      # a bucket is open: a trade arrived since init or the last finish


cdef struct CandleColumns:
    int64_t* ts       # bucket starts
    double* open
    double* high
    double* low
    double* close
    double* volume
    Py_ssize_t size      # candles written
    Py_ssize_t capacity  # candles the columns can hold; callers reserve before stepping


cdef inline void candle_builder_init(CandleBuilder* b, int64_t tf) noexcept nogil:
    b.tf = tf
    b.start = 0
    b.end = 0
    b.open = 0.0
    b.high = 0.0
    b.low = 0.0
    b.close = 0.0
    b.volume = 0.0
    b.is_open = False


cdef inline int64_t bucket_start(int64_t ts, int64_t tf) noexcept nogil:
    # Floor, not truncation: with cdivision the C remainder of a negative ts is <= 0, so a
    # negative ts that is not on a boundary steps one bucket down.
    cdef int64_t r = ts % tf
    if r < 0:
        r += tf
    return ts - r


cdef inline Py_ssize_t candle_closes(const CandleBuilder* b, int64_t ts) noexcept nogil:
    # How many candles a trade at ts appends: the open candle plus every empty bucket
    # between it and the trade's bucket. Zero on the common path (same bucket).
    if not b.is_open or ts < b.end:
        return 0
    return <Py_ssize_t>((bucket_start(ts, b.tf) - b.start) // b.tf)


cdef inline void candle_emit(
    CandleColumns* out, int64_t ts, double o, double h, double l, double c, double v
) noexcept nogil:
    cdef Py_ssize_t i = out.size
    out.ts[i] = ts
    out.open[i] = o
    out.high[i] = h
    out.low[i] = l
    out.close[i] = c
    out.volume[i] = v
    out.size = i + 1


cdef inline void candle_step(
    CandleBuilder* b, int64_t ts, double price, double size, CandleColumns* out
) noexcept nogil:
    # Feed one trade. Appends the candle_closes(b, ts) candles it closes to out, whose
    # capacity the caller has reserved. Assumes ts >= every earlier ts.
    cdef int64_t start
    cdef int64_t gap
    cdef double prev_close
    if b.is_open:
        if ts < b.end:
            # Same bucket: the common case; a compare against end avoids a division.
            if price > b.high:
                b.high = price
            if price < b.low:
                b.low = price
            b.close = price
            b.volume += size
            return
        candle_emit(out, b.start, b.open, b.high, b.low, b.close, b.volume)
        start = bucket_start(ts, b.tf)
        prev_close = b.close
        gap = b.end
        while gap < start:
            candle_emit(out, gap, prev_close, prev_close, prev_close, prev_close, 0.0)
            gap += b.tf
    else:
        start = bucket_start(ts, b.tf)
    b.start = start
    b.end = start + b.tf
    b.open = price
    b.high = price
    b.low = price
    b.close = price
    b.volume = size
    b.is_open = True


cdef inline bint candle_finish(CandleBuilder* b, CandleColumns* out) noexcept nogil:
    # Close the open (partial) candle, if any, into out (one slot reserved by the caller).
    if not b.is_open:
        return False
    candle_emit(out, b.start, b.open, b.high, b.low, b.close, b.volume)
    b.is_open = False
    return True


cdef inline Py_ssize_t first_decrease(const int64_t* ts, Py_ssize_t n) noexcept nogil:
    # Index of the first ts[i] < ts[i - 1], or -1 if ts is non-decreasing.
    cdef Py_ssize_t i
    for i in range(1, n):
        if ts[i] < ts[i - 1]:
            return i
    return -1


# ---------------------------------------------------------------------------------------
# Growable column storage (the closed-candle queues never drop a candle)
# ---------------------------------------------------------------------------------------

cdef void* _grow(void* p, size_t nbytes) except NULL:
    cdef void* q = realloc(p, nbytes)
    if q == NULL:
        raise MemoryError(f"cannot allocate {nbytes} bytes for the candle queue")
    return q


cdef int columns_reserve(CandleColumns* c, Py_ssize_t needed) except -1:
    # Grow c (doubling) so it holds at least `needed` candles. On failure the columns
    # already regrown stay valid and capacity is unchanged, so c stays consistent.
    cdef Py_ssize_t capacity = c.capacity if c.capacity > 0 else 1
    while capacity < needed:
        capacity *= 2
    if capacity == c.capacity:
        return 0
    c.ts = <int64_t*>_grow(c.ts, <size_t>capacity * sizeof(int64_t))
    c.open = <double*>_grow(c.open, <size_t>capacity * sizeof(double))
    c.high = <double*>_grow(c.high, <size_t>capacity * sizeof(double))
    c.low = <double*>_grow(c.low, <size_t>capacity * sizeof(double))
    c.close = <double*>_grow(c.close, <size_t>capacity * sizeof(double))
    c.volume = <double*>_grow(c.volume, <size_t>capacity * sizeof(double))
    c.capacity = capacity
    return 0


cdef void columns_free(CandleColumns* c) noexcept nogil:
    free(c.ts)
    free(c.open)
    free(c.high)
    free(c.low)
    free(c.close)
    free(c.volume)
    c.ts = NULL
    c.open = NULL
    c.high = NULL
    c.low = NULL
    c.close = NULL
    c.volume = NULL
    c.size = 0
    c.capacity = 0


cdef tuple columns_to_arrays(const CandleColumns* c, Py_ssize_t offset, Py_ssize_t n):
    # Copy n candles from offset into new numpy arrays (ts, open, high, low, close, volume).
    ts = np.empty(n, dtype=np.int64)
    columns = tuple([np.empty(n, dtype=np.float64) for _ in range(5)])
    cdef int64_t[::1] ts_view = ts
    cdef double[::1] o = columns[0]
    cdef double[::1] h = columns[1]
    cdef double[::1] l = columns[2]
    cdef double[::1] cl = columns[3]
    cdef double[::1] v = columns[4]
    if n > 0:
        memcpy(&ts_view[0], c.ts + offset, n * sizeof(int64_t))
        memcpy(&o[0], c.open + offset, n * sizeof(double))
        memcpy(&h[0], c.high + offset, n * sizeof(double))
        memcpy(&l[0], c.low + offset, n * sizeof(double))
        memcpy(&cl[0], c.close + offset, n * sizeof(double))
        memcpy(&v[0], c.volume + offset, n * sizeof(double))
    return (ts,) + columns


# ---------------------------------------------------------------------------------------
# Live path
# ---------------------------------------------------------------------------------------

@cython.final
cdef class TradeIngestor:
    """Feed trades one at a time into a tick ring buffer and candle builders.

    Parameters
    ----------
    timeframes_ns : sequence of int
        Candle lengths in nanoseconds, each > 0; at most 64. Timeframe ``k`` is the
        ``k``-th entry and bit ``k`` of the masks returned by :meth:`push` and :meth:`flush`.
    tick_capacity : int
        Size of the tick ring buffer (the newest ticks overwrite the oldest), >= 1.
    candle_capacity : int
        Initial size of each timeframe's closed-candle queue, >= 1. A full queue doubles;
        it never drops a candle.

    Notes
    -----
    :meth:`flush` ends the stream: it closes the partial candles, and a later :meth:`push`
    raises ``RuntimeError`` (a trade after it could reopen a bucket already emitted).
    """

    cdef CandleBuilder* _builders   # one per timeframe
    cdef CandleColumns* _queues     # closed candles not yet drained, one queue per timeframe
    cdef Py_ssize_t _n_tf
    cdef int64_t* _tick_ts          # tick ring buffer columns
    cdef double* _tick_price
    cdef double* _tick_size
    cdef int8_t* _tick_side
    cdef Py_ssize_t _tick_capacity
    cdef Py_ssize_t _tick_head      # slot the next tick is written to
    cdef int64_t _tick_count        # trades pushed since construction
    cdef int64_t _last_ts           # INT64_MIN before the first trade
    cdef double _last_price
    cdef bint _finished             # flush() was called

    def __init__(
        self, timeframes_ns, Py_ssize_t tick_capacity=65536, Py_ssize_t candle_capacity=1024
    ):
        raw = list(timeframes_ns)
        if not 1 <= len(raw) <= MAX_TIMEFRAMES:
            raise ValueError(
                f"timeframes_ns must hold 1 to {MAX_TIMEFRAMES} timeframes, got {len(raw)}"
            )
        tfs = []
        for k, value in enumerate(raw):
            # Accepts ints and integral floats such as 60e9; rejects 1.5 or 0.
            tf = int(value)
            if tf != value or not 0 < tf < 2**63:
                raise ValueError(
                    f"timeframes_ns[{k}] must be a positive int64 (ns), got {value!r}"
                )
            tfs.append(tf)
        if tick_capacity < 1:
            raise ValueError(f"tick_capacity must be >= 1, got {tick_capacity}")
        if candle_capacity < 1:
            raise ValueError(f"candle_capacity must be >= 1, got {candle_capacity}")

        self._release()
        cdef Py_ssize_t n_tf = len(tfs)
        cdef Py_ssize_t k_
        self._builders = <CandleBuilder*>calloc(n_tf, sizeof(CandleBuilder))
        self._queues = <CandleColumns*>calloc(n_tf, sizeof(CandleColumns))
        self._tick_ts = <int64_t*>calloc(tick_capacity, sizeof(int64_t))
        self._tick_price = <double*>calloc(tick_capacity, sizeof(double))
        self._tick_size = <double*>calloc(tick_capacity, sizeof(double))
        self._tick_side = <int8_t*>calloc(tick_capacity, sizeof(int8_t))
        if (
            self._builders == NULL or self._queues == NULL or self._tick_ts == NULL
            or self._tick_price == NULL or self._tick_size == NULL or self._tick_side == NULL
        ):
            self._release()
            raise MemoryError("cannot allocate the TradeIngestor buffers")
        self._n_tf = n_tf
        for k_ in range(n_tf):
            candle_builder_init(&self._builders[k_], tfs[k_])
            columns_reserve(&self._queues[k_], candle_capacity)
        self._tick_capacity = tick_capacity
        self._tick_head = 0
        self._tick_count = 0
        self._last_ts = INT64_MIN
        self._last_price = 0.0
        self._finished = False

    def __dealloc__(self):
        self._release()

    cdef void _release(self) noexcept:
        cdef Py_ssize_t k
        if self._queues != NULL:
            for k in range(self._n_tf):
                columns_free(&self._queues[k])
        free(self._queues)
        free(self._builders)
        free(self._tick_ts)
        free(self._tick_price)
        free(self._tick_size)
        free(self._tick_side)
        self._queues = NULL
        self._builders = NULL
        self._tick_ts = NULL
        self._tick_price = NULL
        self._tick_size = NULL
        self._tick_side = NULL
        self._n_tf = 0
        self._tick_capacity = 0

    cdef int _reject(self, int64_t ts) except -1:
        if self._builders == NULL:
            raise RuntimeError("TradeIngestor is not initialised")
        if self._finished:
            raise RuntimeError("TradeIngestor was flushed; create a new one to push more trades")
        raise ValueError(
            f"trade ts {ts} is before the previous trade ts {self._last_ts}; "
            "trades must arrive with non-decreasing timestamps"
        )

    cdef Py_ssize_t _check_tf(self, int tf) except -1:
        if not 0 <= tf < self._n_tf:
            raise IndexError(f"timeframe index {tf} out of range for {self._n_tf} timeframes")
        return tf

    # The error sentinel is all ones, which only 64 timeframes closing at once return.
    cpdef uint64_t push(
        self, int64_t ts, double price, double size, int side
    ) except? 0xFFFFFFFFFFFFFFFF:
        """Feed one trade; return a bitmask with bit ``k`` set if timeframe ``k`` closed
        at least one candle (drain them with :meth:`drain`).

        ``ts`` must be >= the previous trade's ts; price and size are not checked here.
        """
        cdef Py_ssize_t k
        cdef Py_ssize_t n
        cdef Py_ssize_t i
        cdef uint64_t mask = 0
        cdef CandleColumns* q
        # The unlikely branch also catches a flushed or uninitialised ingestor (see _reject).
        if ts < self._last_ts or self._finished or self._builders == NULL:
            self._reject(ts)
        # Reserve queue space for every timeframe first, so a MemoryError leaves no trace.
        for k in range(self._n_tf):
            n = candle_closes(&self._builders[k], ts)
            if n > 0:
                q = &self._queues[k]
                if q.size + n > q.capacity:
                    columns_reserve(q, q.size + n)
                mask |= (<uint64_t>1) << k
        for k in range(self._n_tf):
            candle_step(&self._builders[k], ts, price, size, &self._queues[k])
        # The tick ring buffer: overwrite the oldest slot.
        i = self._tick_head
        self._tick_ts[i] = ts
        self._tick_price[i] = price
        self._tick_size[i] = size
        self._tick_side[i] = <int8_t>side
        i += 1
        if i == self._tick_capacity:
            i = 0
        self._tick_head = i
        self._tick_count += 1
        self._last_ts = ts
        self._last_price = price
        return mask

    def flush(self):
        """Close every timeframe's open (partial) candle, as at the end of a replay.

        Returns the bitmask of timeframes that closed a candle. Ends the stream: later
        pushes raise ``RuntimeError``. Calling it again returns 0.
        """
        cdef Py_ssize_t k
        cdef uint64_t mask = 0
        cdef CandleColumns* q
        for k in range(self._n_tf):
            q = &self._queues[k]
            if q.size + 1 > q.capacity:
                columns_reserve(q, q.size + 1)
        for k in range(self._n_tf):
            if candle_finish(&self._builders[k], &self._queues[k]):
                mask |= (<uint64_t>1) << k
        self._finished = True
        return mask

    def pending(self, int tf):
        """Return the number of closed candles of timeframe ``tf`` not yet drained."""
        return self._queues[self._check_tf(tf)].size

    def drain(self, int tf):
        """Return and clear the closed candles of timeframe ``tf``, oldest first.

        Returns ``(ts, open, high, low, close, volume)`` as new numpy arrays (int64, then
        float64).
        """
        cdef CandleColumns* q = &self._queues[self._check_tf(tf)]
        result = columns_to_arrays(q, 0, q.size)
        q.size = 0
        return result

    def current(self, int tf):
        """Return the open candle of timeframe ``tf`` as ``(ts, o, h, l, c, v)``, or None."""
        cdef CandleBuilder* b = &self._builders[self._check_tf(tf)]
        if not b.is_open:
            return None
        return (b.start, b.open, b.high, b.low, b.close, b.volume)

    def recent_ticks(self, Py_ssize_t n):
        """Return the last ``min(n, stored)`` ticks as ``(ts, price, size, side)`` arrays,
        oldest first (int64, float64, float64, int8)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        cdef Py_ssize_t stored = <Py_ssize_t>min(self._tick_count, <int64_t>self._tick_capacity)
        cdef Py_ssize_t m = n if n < stored else stored
        # The oldest wanted tick, then the part up to the end of the buffer, then the rest.
        cdef Py_ssize_t first = self._tick_head - m
        if first < 0:
            first += self._tick_capacity
        cdef Py_ssize_t head_part = min(m, self._tick_capacity - first)
        cdef Py_ssize_t tail_part = m - head_part
        ts = np.empty(m, dtype=np.int64)
        price = np.empty(m, dtype=np.float64)
        size = np.empty(m, dtype=np.float64)
        side = np.empty(m, dtype=np.int8)
        cdef int64_t[::1] ts_view = ts
        cdef double[::1] price_view = price
        cdef double[::1] size_view = size
        cdef int8_t[::1] side_view = side
        if head_part > 0:
            memcpy(&ts_view[0], self._tick_ts + first, head_part * sizeof(int64_t))
            memcpy(&price_view[0], self._tick_price + first, head_part * sizeof(double))
            memcpy(&size_view[0], self._tick_size + first, head_part * sizeof(double))
            memcpy(&side_view[0], self._tick_side + first, head_part * sizeof(int8_t))
        if tail_part > 0:
            memcpy(&ts_view[head_part], self._tick_ts, tail_part * sizeof(int64_t))
            memcpy(&price_view[head_part], self._tick_price, tail_part * sizeof(double))
            memcpy(&size_view[head_part], self._tick_size, tail_part * sizeof(double))
            memcpy(&side_view[head_part], self._tick_side, tail_part * sizeof(int8_t))
        return ts, price, size, side

    @property
    def timeframes_ns(self):
        """The candle lengths in nanoseconds, in timeframe-index order."""
        return tuple([self._builders[k].tf for k in range(self._n_tf)])

    @property
    def tick_count(self):
        """Total number of trades pushed."""
        return self._tick_count

    @property
    def tick_capacity(self):
        """Size of the tick ring buffer."""
        return self._tick_capacity

    @property
    def last_price(self):
        """Price of the last trade pushed, or None before the first."""
        return self._last_price if self._tick_count > 0 else None

    @property
    def last_ts(self):
        """Timestamp (ns) of the last trade pushed, or None before the first."""
        return self._last_ts if self._tick_count > 0 else None


# ---------------------------------------------------------------------------------------
# Batch path
# ---------------------------------------------------------------------------------------

def aggregate_trades(
    const int64_t[::1] ts,
    const double[::1] price,
    const double[::1] size,
    int64_t timeframe_ns,
    bint include_last=True,
):
    """Aggregate trades into OHLCV candles of ``timeframe_ns``, filling empty buckets.

    Equivalent to pushing every trade into a one-timeframe :class:`TradeIngestor`, then
    ``flush()`` (if ``include_last``) and ``drain(0)``. ``include_last=False`` leaves out
    the last trade's bucket, which may be incomplete.

    Returns ``(ts, open, high, low, close, volume)`` numpy arrays (int64, then float64).
    """
    cdef Py_ssize_t n = ts.shape[0]
    if price.shape[0] != n or size.shape[0] != n:
        raise ValueError(
            f"ts, price and size must have equal length, got {n}, {price.shape[0]}, "
            f"{size.shape[0]}"
        )
    if timeframe_ns <= 0:
        raise ValueError(f"timeframe_ns must be > 0, got {timeframe_ns}")
    cdef CandleColumns out
    if n == 0:
        out.size = 0
        return columns_to_arrays(&out, 0, 0)
    # The output is sized from the first and last ts, so unsorted input would write past
    # it: this pass (well under 1 ns per trade) keeps that impossible.
    cdef Py_ssize_t bad
    with nogil:
        bad = first_decrease(&ts[0], n)
    if bad >= 0:
        raise ValueError(
            f"ts must be non-decreasing: ts[{bad}]={ts[bad]} < ts[{bad - 1}]={ts[bad - 1]}"
        )

    cdef Py_ssize_t count = <Py_ssize_t>(
        (bucket_start(ts[n - 1], timeframe_ns) - bucket_start(ts[0], timeframe_ns))
        // timeframe_ns
    ) + (1 if include_last else 0)
    out_ts = np.empty(count, dtype=np.int64)
    columns = tuple([np.empty(count, dtype=np.float64) for _ in range(5)])
    cdef int64_t[::1] ts_view = out_ts
    cdef double[::1] o = columns[0]
    cdef double[::1] h = columns[1]
    cdef double[::1] l = columns[2]
    cdef double[::1] c = columns[3]
    cdef double[::1] v = columns[4]
    cdef CandleBuilder builder
    cdef Py_ssize_t i
    out.size = 0
    out.capacity = count
    if count > 0:
        out.ts = &ts_view[0]
        out.open = &o[0]
        out.high = &h[0]
        out.low = &l[0]
        out.close = &c[0]
        out.volume = &v[0]
    with nogil:
        candle_builder_init(&builder, timeframe_ns)
        for i in range(n):
            candle_step(&builder, ts[i], price[i], size[i], &out)
        if include_last:
            candle_finish(&builder, &out)
    if out.size != count:  # pragma: no cover - a broken invariant, not an input error
        raise AssertionError(f"aggregate_trades wrote {out.size} candles, expected {count}")
    return (out_ts,) + columns
