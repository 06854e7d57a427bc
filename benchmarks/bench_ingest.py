"""Why the per-trade ingestion path is Cython: the same push step, called from a Python loop.

On the same seeded synthetic trades (two timeframes, 1m and 5m, plus the tick ring buffer),
this measures the cost per trade of:

(a) ``TradeIngestor.push`` (Cython ``cpdef`` on a final ``cdef class``);
(b) the rejected alternative: the same step as a Numba ``@njit`` function over state held in
    small numpy arrays, called once per trade from the same Python loop;
(c) the same step in pure Python;
(d) ``aggregate_trades`` in batch, once per timeframe, divided by the number of trades;

and two floors for context: a Python loop calling a no-op Python function with the same four
arguments, and the same loop calling a no-op ``@njit`` function (Numba's dispatch alone).

Run with::

    .venv/bin/pytest benchmarks/bench_ingest.py --benchmark-enable -p no:cacheprovider

The last test prints ns per trade and the ratio to (a), for the fastest and the median round.
"""

import numpy as np
import pytest

from liveopt._core._jit import njit
from liveopt._core.ingest import TradeIngestor, aggregate_trades

N_TRADES = 200_000
SEED = 20240601
MINUTE = 60_000_000_000
TIMEFRAMES_NS = (MINUTE, 5 * MINUTE)
TICK_CAPACITY = 65536
START_NS = 1_700_000_000 * 10**9

# benchmark name -> (min, median) seconds for all N_TRADES trades
_RESULTS: dict[str, tuple[float, float]] = {}


def _synthetic_trades():
    # Poisson arrivals (mean 250 ms, so ~14 h and ~830 one-minute candles), a multiplicative
    # random walk for the price, log-normal sizes and random sides.
    rng = np.random.default_rng(SEED)
    ts = START_NS + np.cumsum(rng.exponential(250e6, N_TRADES)).astype(np.int64)
    price = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-4, N_TRADES)))
    size = rng.lognormal(0.0, 1.0, N_TRADES)
    side = rng.choice(np.array([-1, 1], dtype=np.int8), N_TRADES)
    return ts, price, size, side


TRADES_ARRAYS = _synthetic_trades()
TRADES = tuple(column.tolist() for column in TRADES_ARRAYS)


# ---------------------------------------------------------------------------------------
# (b) The Numba alternative: the same step over state in small numpy arrays
# ---------------------------------------------------------------------------------------

# tf_i columns: bucket length, open bucket start, its end, open flag, queued candle count.
TF, START, END, IS_OPEN, QUEUED = range(5)
# tf_f columns: open, high, low, close, volume of the open candle.
# meta: ring head, trades pushed, last ts.


@njit(
    "uint64(int64[::1], int64[:, ::1], float64[:, ::1], int64[:, ::1], float64[:, :, ::1],"
    " int64[:, ::1], float64[:, ::1], int64, float64, float64, int64)"
)
def push_nb(meta, tf_i, tf_f, q_ts, q_f, ring_i, ring_f, ts, price, size, side):
    mask = np.uint64(0)
    for k in range(tf_i.shape[0]):
        tf = tf_i[k, TF]
        if tf_i[k, IS_OPEN]:
            if ts < tf_i[k, END]:
                if price > tf_f[k, 1]:
                    tf_f[k, 1] = price
                if price < tf_f[k, 2]:
                    tf_f[k, 2] = price
                tf_f[k, 3] = price
                tf_f[k, 4] += size
                continue
            # Close the open candle, then the empty buckets up to this trade's bucket.
            n = tf_i[k, QUEUED]
            q_ts[k, n] = tf_i[k, START]
            for j in range(5):
                q_f[k, n, j] = tf_f[k, j]
            n += 1
            start = ts - ts % tf  # ts > 0 here; the Cython kernel floors negatives too
            gap = tf_i[k, END]
            prev_close = tf_f[k, 3]
            while gap < start:
                q_ts[k, n] = gap
                for j in range(4):
                    q_f[k, n, j] = prev_close
                q_f[k, n, 4] = 0.0
                n += 1
                gap += tf
            tf_i[k, QUEUED] = n
            mask |= np.uint64(1) << np.uint64(k)
        else:
            start = ts - ts % tf
        tf_i[k, START] = start
        tf_i[k, END] = start + tf
        tf_i[k, IS_OPEN] = 1
        for j in range(4):
            tf_f[k, j] = price
        tf_f[k, 4] = size
    head = meta[0]
    ring_i[head, 0] = ts
    ring_i[head, 1] = side
    ring_f[head, 0] = price
    ring_f[head, 1] = size
    head += 1
    if head == ring_i.shape[0]:
        head = 0
    meta[0] = head
    meta[1] += 1
    meta[2] = ts
    return mask


@njit("int64(int64, float64, float64, int64)")
def noop_nb(ts, price, size, side):
    return 0


def _numba_state():
    n_tf = len(TIMEFRAMES_NS)
    # Queues sized for the whole run: the Numba version skips the growth logic (in its favour).
    capacity = int((TRADES_ARRAYS[0][-1] - TRADES_ARRAYS[0][0]) // min(TIMEFRAMES_NS)) + 2
    tf_i = np.zeros((n_tf, 5), dtype=np.int64)
    tf_i[:, TF] = TIMEFRAMES_NS
    return (
        np.zeros(3, dtype=np.int64),
        tf_i,
        np.zeros((n_tf, 5), dtype=np.float64),
        np.zeros((n_tf, capacity), dtype=np.int64),
        np.zeros((n_tf, capacity, 5), dtype=np.float64),
        np.zeros((TICK_CAPACITY, 2), dtype=np.int64),
        np.zeros((TICK_CAPACITY, 2), dtype=np.float64),
    )


# ---------------------------------------------------------------------------------------
# (c) The pure-Python step
# ---------------------------------------------------------------------------------------


class PyCandleBuilder:
    __slots__ = ("close", "end", "high", "is_open", "low", "open", "queue", "start", "tf", "volume")

    def __init__(self, tf):
        self.tf = tf
        self.start = self.end = 0
        self.open = self.high = self.low = self.close = self.volume = 0.0
        self.is_open = False
        self.queue = []


class PyIngestor:
    __slots__ = ("builders", "count", "head", "last_ts", "ring")

    def __init__(self, timeframes_ns, tick_capacity=TICK_CAPACITY):
        self.builders = [PyCandleBuilder(tf) for tf in timeframes_ns]
        self.ring = [None] * tick_capacity
        self.head = 0
        self.count = 0
        self.last_ts = None

    def push(self, ts, price, size, side):
        mask = 0
        for k, b in enumerate(self.builders):
            if b.is_open:
                if ts < b.end:
                    if price > b.high:
                        b.high = price
                    if price < b.low:
                        b.low = price
                    b.close = price
                    b.volume += size
                    continue
                b.queue.append((b.start, b.open, b.high, b.low, b.close, b.volume))
                start = ts // b.tf * b.tf
                c = b.close
                for gap in range(b.end, start, b.tf):
                    b.queue.append((gap, c, c, c, c, 0.0))
                mask |= 1 << k
            else:
                start = ts // b.tf * b.tf
            b.start = start
            b.end = start + b.tf
            b.open = b.high = b.low = b.close = price
            b.volume = size
            b.is_open = True
        self.ring[self.head] = (ts, price, size, side)
        self.head = (self.head + 1) % len(self.ring)
        self.count += 1
        self.last_ts = ts
        return mask


# ---------------------------------------------------------------------------------------
# Runners: the same Python loop over the same Python-object trades for (a), (b), (c)
# ---------------------------------------------------------------------------------------


def _run_cython(ingestor):
    push = ingestor.push
    for ts, price, size, side in zip(*TRADES, strict=True):
        push(ts, price, size, side)
    return ingestor


def _run_numba(state):
    meta, tf_i, tf_f, q_ts, q_f, ring_i, ring_f = state
    for ts, price, size, side in zip(*TRADES, strict=True):
        push_nb(meta, tf_i, tf_f, q_ts, q_f, ring_i, ring_f, ts, price, size, side)
    return state


def _run_python(ingestor):
    push = ingestor.push
    for ts, price, size, side in zip(*TRADES, strict=True):
        push(ts, price, size, side)
    return ingestor


def _noop(ts, price, size, side):
    return 0


def _run_call(function):
    for ts, price, size, side in zip(*TRADES, strict=True):
        function(ts, price, size, side)


def _run_batch():
    ts, price, size, _ = TRADES_ARRAYS
    return [aggregate_trades(ts, price, size, tf) for tf in TIMEFRAMES_NS]


def _record(name, benchmark):
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None when run with --benchmark-disable
        _RESULTS[name] = (stats.stats.min, stats.stats.median)


def _fresh(factory):
    # pedantic setup: a new state per round, so every round pushes into an empty ingestor.
    return lambda: ((factory(),), {})


# ---------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------


def test_alternatives_build_the_same_candles():
    # Arrange
    ingestor = _run_cython(TradeIngestor(TIMEFRAMES_NS))
    meta, tf_i, _, q_ts, q_f, _, _ = _run_numba(_numba_state())
    python = _run_python(PyIngestor(TIMEFRAMES_NS))

    # Act
    cython_candles = [ingestor.drain(k) for k in range(len(TIMEFRAMES_NS))]

    # Assert: closed candles agree exactly (the last, open bucket is still open everywhere).
    for k in range(len(TIMEFRAMES_NS)):
        n = tf_i[k, QUEUED]
        assert np.array_equal(cython_candles[k][0], q_ts[k, :n])
        assert np.array_equal(np.column_stack(cython_candles[k][1:]), q_f[k, :n])
        assert [tuple(row) for row in zip(*cython_candles[k], strict=True)] == python.builders[
            k
        ].queue
    assert meta[1] == ingestor.tick_count == python.count == N_TRADES


def test_a_cython_push(benchmark):
    benchmark.pedantic(
        _run_cython, setup=_fresh(lambda: TradeIngestor(TIMEFRAMES_NS)), rounds=15, warmup_rounds=1
    )
    _record("a_cython_push", benchmark)


def test_b_numba_push(benchmark):
    benchmark.pedantic(_run_numba, setup=_fresh(_numba_state), rounds=7, warmup_rounds=1)
    _record("b_numba_push", benchmark)


def test_c_python_push(benchmark):
    benchmark.pedantic(
        _run_python, setup=_fresh(lambda: PyIngestor(TIMEFRAMES_NS)), rounds=5, warmup_rounds=1
    )
    _record("c_python_push", benchmark)


def test_d_batch_aggregate_trades(benchmark):
    benchmark.pedantic(_run_batch, rounds=30, warmup_rounds=2)
    _record("d_batch_aggregate", benchmark)


def test_floor_python_noop_call(benchmark):
    benchmark.pedantic(_run_call, args=(_noop,), rounds=10, warmup_rounds=1)
    _record("floor_python_noop_call", benchmark)


def test_floor_numba_noop_call(benchmark):
    benchmark.pedantic(_run_call, args=(noop_nb,), rounds=7, warmup_rounds=1)
    _record("floor_numba_noop_call", benchmark)


def test_report_ns_per_trade(capsys):
    if "a_cython_push" not in _RESULTS:
        pytest.skip("benchmarks disabled; run with --benchmark-enable")
    # The minimum is the least disturbed round (other processes only add time); the median
    # shows how much a busy machine adds.
    base_min, base_median = _RESULTS["a_cython_push"]
    lines = [
        "",
        f"ingestion cost per trade, {N_TRADES:,} trades, timeframes 1m+5m:",
        f"{'benchmark':<26}{'min ns':>9}{'vs (a)':>9}{'median ns':>12}{'vs (a)':>9}",
    ]
    for name, (low, median) in _RESULTS.items():
        lines.append(
            f"{name:<26}{low / N_TRADES * 1e9:>9.1f}{low / base_min:>8.2f}x"
            f"{median / N_TRADES * 1e9:>12.1f}{median / base_median:>8.2f}x"
        )
    with capsys.disabled():
        print("\n".join(lines))
