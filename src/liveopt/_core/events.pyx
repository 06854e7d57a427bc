"""The engine's event buffer: single market events from Python, appended in well under a
microsecond, handed to the compiled variant pass in batches.

A call from Python into a Numba kernel costs about a microsecond before any work (argument
unboxing), so ``Engine.on_trade`` does not call the pass per event: it is bound directly to
:meth:`EventBuffer.push_trade` (a method of a final cdef class, tens of nanoseconds), which
validates the event, appends it to the columns and, when the buffer is full, calls the
owner's ``on_full`` callback, which runs the pass over the whole batch. Because the pass is
strictly sequential over events, batching gives exactly the results of one-at-a-time
processing.

Validation here is the boundary check of docs/paper-execution.md: a bad event raises
``ValueError`` naming the field, and nothing is appended.
"""

cimport cython
from libc.math cimport isfinite
from libc.stdint cimport INT64_MIN, int8_t, int64_t

import numpy as np

# Event kinds: the values of liveopt._core.variant_pass.TRADE, QUOTE, DEPTH, FUNDING_RATE.
cdef enum:
    KIND_TRADE = 0
    KIND_QUOTE = 1
    KIND_DEPTH = 2
    KIND_FUNDING_RATE = 3


@cython.final
cdef class EventBuffer:
    """Columns ``kind, ts, a, b, c, d`` of up to ``capacity`` events (see
    ``liveopt._core.variant_pass`` for what a..d hold per kind).

    Parameters
    ----------
    capacity : int
        Events held before ``on_full`` is called (>= 1).
    on_full : callable
        Called with no arguments when the buffer becomes full; it must consume the
        events (read :attr:`size` and the columns, then :meth:`clear`).
    """

    cdef readonly object kind, ts, a, b, c, d
    cdef int8_t[::1] _kind
    cdef int64_t[::1] _ts
    cdef double[::1] _a, _b, _c, _d
    cdef Py_ssize_t _size, _capacity
    cdef int64_t _last_ts
    cdef object _on_full

    def __cinit__(self, Py_ssize_t capacity, object on_full):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = capacity
        self.kind = np.zeros(capacity, dtype=np.int8)
        self.ts = np.zeros(capacity, dtype=np.int64)
        self.a = np.zeros(capacity)
        self.b = np.zeros(capacity)
        self.c = np.zeros(capacity)
        self.d = np.zeros(capacity)
        self._kind = self.kind
        self._ts = self.ts
        self._a = self.a
        self._b = self.b
        self._c = self.c
        self._d = self.d
        self._size = 0
        self._last_ts = INT64_MIN
        self._on_full = on_full

    @property
    def size(self):
        """Events currently buffered."""
        return self._size

    @property
    def capacity(self):
        return self._capacity

    @property
    def last_ts(self):
        """Timestamp of the last accepted event (buffered or already consumed), or None."""
        return None if self._last_ts == INT64_MIN else self._last_ts

    cpdef void set_last_ts(self, int64_t ts):
        """Set the time of the last event consumed elsewhere (batch calls, restore)."""
        self._last_ts = ts

    cpdef void clear(self):
        """Forget the buffered events (after the owner consumed them)."""
        self._size = 0

    cdef inline void _check_ts(self, int64_t ts) except *:
        if ts < self._last_ts:
            raise ValueError(
                f"event ts {ts} is before the previous event's {self._last_ts}: "
                "events must be in time order"
            )

    cdef inline void _append(self, int8_t kind, int64_t ts, double a, double b, double c,
                             double d) except *:
        cdef Py_ssize_t i = self._size
        self._kind[i] = kind
        self._ts[i] = ts
        self._a[i] = a
        self._b[i] = b
        self._c[i] = c
        self._d[i] = d
        self._size = i + 1
        self._last_ts = ts
        if self._size == self._capacity:
            self._on_full()

    cpdef void push_trade(self, int64_t ts, double price, double size, int side) except *:
        """Append a trade: ``price`` finite and > 0, ``size`` finite and >= 0, ``side`` +1
        (buyer aggressor), -1 (seller) or 0 (unknown)."""
        self._check_ts(ts)
        if not (isfinite(price) and price > 0.0):
            raise ValueError(f"trade price must be finite and > 0, got {price!r}")
        if not (isfinite(size) and size >= 0.0):
            raise ValueError(f"trade size must be finite and >= 0, got {size!r}")
        if side < -1 or side > 1:
            raise ValueError(f"trade side must be -1, 0 or 1, got {side}")
        self._append(KIND_TRADE, ts, price, size, side, 0.0)

    cpdef void push_quote(self, int64_t ts, double bid, double bid_size, double ask,
                          double ask_size) except *:
        """Append a best bid/ask: prices finite and > 0 with ``bid <= ask``, sizes finite
        and >= 0."""
        self._check_ts(ts)
        if not (isfinite(bid) and bid > 0.0 and isfinite(ask) and ask > 0.0):
            raise ValueError(f"quote prices must be finite and > 0, got bid={bid!r} ask={ask!r}")
        if bid > ask:
            raise ValueError(f"quote is crossed: bid {bid!r} > ask {ask!r}")
        if not (isfinite(bid_size) and bid_size >= 0.0 and isfinite(ask_size)
                and ask_size >= 0.0):
            raise ValueError(
                f"quote sizes must be finite and >= 0, got {bid_size!r}, {ask_size!r}"
            )
        self._append(KIND_QUOTE, ts, bid, bid_size, ask, ask_size)

    cpdef void push_depth(self, int64_t ts, double bid_size_5, double ask_size_5) except *:
        """Append the summed sizes of the top five bid and ask levels (finite, >= 0)."""
        self._check_ts(ts)
        if not (isfinite(bid_size_5) and bid_size_5 >= 0.0 and isfinite(ask_size_5)
                and ask_size_5 >= 0.0):
            raise ValueError(
                f"depth sizes must be finite and >= 0, got {bid_size_5!r}, {ask_size_5!r}"
            )
        self._append(KIND_DEPTH, ts, bid_size_5, ask_size_5, 0.0, 0.0)

    cpdef void push_funding_rate(self, int64_t ts, double rate) except *:
        """Append the funding rate charged at the next funding time (finite, |rate| < 1)."""
        self._check_ts(ts)
        if not (isfinite(rate) and -1.0 < rate < 1.0):
            raise ValueError(f"funding rate must be finite and in (-1, 1), got {rate!r}")
        self._append(KIND_FUNDING_RATE, ts, rate, 0.0, 0.0, 0.0)
