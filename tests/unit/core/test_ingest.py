"""Tests of ``liveopt._core.ingest``: the candle step kernel, live and batch, and the tick ring."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt._core.ingest import MAX_TIMEFRAMES, TradeIngestor, aggregate_trades
from tests.reference.candles import candles_reference

MINUTE = 60_000_000_000
DAY = 1440 * MINUTE


def _columns(ts, price, size):
    return (
        np.asarray(ts, dtype=np.int64),
        np.asarray(price, dtype=np.float64),
        np.asarray(size, dtype=np.float64),
    )


def _rows(columns) -> list[tuple]:
    ts, o, h, l, c, v = columns
    return [
        (int(t), float(a), float(b), float(x), float(y), float(z))
        for t, a, b, x, y, z in zip(ts, o, h, l, c, v, strict=True)
    ]


def _stream(trades, timeframes, candle_capacity=1024, drain_every=None):
    # Push the trades one by one, flush, and return each timeframe's drained candles as rows.
    ts, price, size = trades
    ingestor = TradeIngestor(timeframes, candle_capacity=candle_capacity)
    rows: list[list[tuple]] = [[] for _ in timeframes]
    for i, (t, p, s) in enumerate(zip(ts.tolist(), price.tolist(), size.tolist(), strict=True)):
        ingestor.push(t, p, s, 1)
        if drain_every and i % drain_every == 0:
            for k in range(len(timeframes)):
                rows[k] += _rows(ingestor.drain(k))
    ingestor.flush()
    for k in range(len(timeframes)):
        rows[k] += _rows(ingestor.drain(k))
    return rows


# ---------------------------------------------------------------------------------------
# Hand-made cases against the reference twin
# ---------------------------------------------------------------------------------------

HAND_MADE = {
    "single_trade": ([5], [2.0], [1.5], 10),
    "one_bucket": ([0, 1, 2, 9], [2.0, 3.0, 1.0, 2.5], [1.0, 2.0, 3.0, 4.0], 10),
    "trade_on_boundary_opens_next_bucket": ([0, 9, 10], [1.0, 2.0, 3.0], [1.0, 1.0, 1.0], 10),
    "gap_of_three_buckets": ([1, 45], [1.0, 2.0], [1.0, 1.0], 10),
    "negative_ts_floor": ([-15, -10, -1, 0, 3], [1.0, 2.0, 3.0, 4.0, 5.0], [1, 1, 1, 1, 1], 10),
    "equal_timestamps": ([7, 7, 7], [3.0, 1.0, 2.0], [0.5, 0.25, 0.0], 10),
    "zero_size_trade": ([0, 11], [1.0, 1.5], [0.0, 0.0], 10),
    "minute_candles": (
        [0, 30 * 10**9, 61 * 10**9, 5 * MINUTE],
        [10.0, 11.0, 9.0, 12.0],
        [1.0, 2.0, 3.0, 4.0],
        MINUTE,
    ),
}


@pytest.mark.parametrize("include_last", [True, False])
@pytest.mark.parametrize("case", sorted(HAND_MADE))
def test_aggregate_trades_hand_made_case_equals_reference(case, include_last):
    # Arrange
    ts, price, size, tf = HAND_MADE[case]
    expected = candles_reference(ts, price, size, tf, include_last)

    # Act
    result = aggregate_trades(*_columns(ts, price, size), tf, include_last)

    # Assert
    assert _rows(result) == expected
    assert result[0].dtype == np.int64
    assert all(column.dtype == np.float64 for column in result[1:])


@pytest.mark.parametrize("case", sorted(HAND_MADE))
def test_trade_ingestor_hand_made_case_equals_reference(case):
    # Arrange
    ts, price, size, tf = HAND_MADE[case]
    expected = candles_reference(ts, price, size, tf)

    # Act
    (rows,) = _stream(_columns(ts, price, size), [tf])

    # Assert
    assert rows == expected


def test_aggregate_trades_with_gap_emits_gap_candles_at_previous_close():
    # Arrange
    trades = _columns([1, 45], [1.0, 2.0], [3.0, 4.0])

    # Act
    result = _rows(aggregate_trades(*trades, 10))

    # Assert
    assert result == [
        (0, 1.0, 1.0, 1.0, 1.0, 3.0),
        (10, 1.0, 1.0, 1.0, 1.0, 0.0),
        (20, 1.0, 1.0, 1.0, 1.0, 0.0),
        (30, 1.0, 1.0, 1.0, 1.0, 0.0),
        (40, 2.0, 2.0, 2.0, 2.0, 4.0),
    ]


def test_aggregate_trades_with_negative_ts_floors_to_bucket_start():
    # Arrange
    trades = _columns([-1], [1.0], [1.0])

    # Act
    ts = aggregate_trades(*trades, 10)[0]

    # Assert
    assert ts.tolist() == [-10]


def test_aggregate_trades_with_empty_input_returns_empty_typed_arrays():
    # Arrange
    trades = _columns([], [], [])

    # Act
    result = aggregate_trades(*trades, MINUTE)

    # Assert
    assert [len(column) for column in result] == [0] * 6
    assert result[0].dtype == np.int64
    assert result[5].dtype == np.float64


def test_aggregate_trades_without_last_and_one_bucket_returns_no_candles():
    # Arrange
    trades = _columns([1, 2], [1.0, 2.0], [1.0, 1.0])

    # Act
    result = aggregate_trades(*trades, 10, include_last=False)

    # Assert
    assert len(result[0]) == 0


def test_aggregate_trades_with_day_gap_on_1m_emits_every_minute():
    # Arrange
    trades = _columns([0, DAY], [1.0, 2.0], [1.0, 1.0])

    # Act
    ts = aggregate_trades(*trades, MINUTE)[0]

    # Assert
    assert len(ts) == 1441
    assert np.all(np.diff(ts) == MINUTE)


def test_aggregate_trades_with_decreasing_ts_raises_naming_index():
    # Arrange
    trades = _columns([0, 5, 3], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])

    # Act / Assert
    with pytest.raises(ValueError, match=r"ts\[2\]=3 < ts\[1\]=5"):
        aggregate_trades(*trades, 10)


def test_aggregate_trades_with_unequal_lengths_raises():
    # Arrange
    ts, price, size = _columns([0, 1], [1.0, 1.0], [1.0])

    # Act / Assert
    with pytest.raises(ValueError, match="equal length"):
        aggregate_trades(ts, price, size, 10)


@pytest.mark.parametrize("tf", [0, -MINUTE])
def test_aggregate_trades_with_non_positive_timeframe_raises(tf):
    # Arrange
    trades = _columns([0], [1.0], [1.0])

    # Act / Assert
    with pytest.raises(ValueError, match="timeframe_ns must be > 0"):
        aggregate_trades(*trades, tf)


# ---------------------------------------------------------------------------------------
# TradeIngestor behaviour
# ---------------------------------------------------------------------------------------


def test_push_returns_bitmask_of_timeframes_that_closed_a_candle():
    # Arrange
    ingestor = TradeIngestor([10, 30])
    ingestor.push(0, 1.0, 1.0, 1)

    # Act
    same_bucket = ingestor.push(5, 1.0, 1.0, 1)
    closes_first = ingestor.push(10, 1.0, 1.0, 1)
    closes_both = ingestor.push(30, 1.0, 1.0, -1)

    # Assert
    assert (same_bucket, closes_first, closes_both) == (0, 0b01, 0b11)
    assert ingestor.pending(0) == 3
    assert ingestor.pending(1) == 1


def test_push_with_all_64_timeframes_closing_returns_all_bits():
    # Arrange: all ones is also push's error sentinel, so this checks the sentinel path.
    ingestor = TradeIngestor([10] * MAX_TIMEFRAMES)
    ingestor.push(0, 1.0, 1.0, 1)

    # Act
    mask = ingestor.push(10, 2.0, 1.0, 1)

    # Assert
    assert mask == 2**64 - 1


def test_current_returns_open_partial_candle_then_none_after_flush():
    # Arrange
    ingestor = TradeIngestor([10])
    assert ingestor.current(0) is None
    for t, p, s in [(12, 2.0, 1.0), (13, 4.0, 0.5), (14, 1.0, 0.25), (15, 3.0, 2.0)]:
        ingestor.push(t, p, s, 1)

    # Act
    partial = ingestor.current(0)
    flushed = ingestor.flush()

    # Assert
    assert partial == (10, 2.0, 4.0, 1.0, 3.0, 3.75)
    assert flushed == 1
    assert ingestor.current(0) is None
    assert _rows(ingestor.drain(0)) == [partial]


def test_drain_clears_the_queue_and_returns_chronological_candles():
    # Arrange
    ingestor = TradeIngestor([10])
    for t in [0, 10, 20, 35]:
        ingestor.push(t, 1.0, 1.0, 1)

    # Act
    first = ingestor.drain(0)
    second = ingestor.drain(0)

    # Assert
    assert first[0].tolist() == [0, 10, 20]
    assert len(second[0]) == 0
    assert ingestor.pending(0) == 0


def test_flush_twice_returns_zero_the_second_time():
    # Arrange
    ingestor = TradeIngestor([10, 20])
    ingestor.push(0, 1.0, 1.0, 1)

    # Act
    masks = (ingestor.flush(), ingestor.flush())

    # Assert
    assert masks == (0b11, 0)
    assert ingestor.pending(0) == 1


def test_push_after_flush_raises_runtime_error():
    # Arrange
    ingestor = TradeIngestor([10])
    ingestor.push(0, 1.0, 1.0, 1)
    ingestor.flush()

    # Act / Assert
    with pytest.raises(RuntimeError, match="flushed"):
        ingestor.push(100, 1.0, 1.0, 1)


def test_push_with_backwards_ts_raises_and_leaves_state_unchanged():
    # Arrange
    ingestor = TradeIngestor([10])
    ingestor.push(15, 2.0, 1.0, 1)

    # Act
    with pytest.raises(ValueError, match="non-decreasing"):
        ingestor.push(14, 3.0, 1.0, 1)

    # Assert
    assert ingestor.tick_count == 1
    assert ingestor.last_ts == 15
    assert ingestor.current(0) == (10, 2.0, 2.0, 2.0, 2.0, 1.0)


def test_push_with_day_gap_emits_every_gap_candle_past_capacity():
    # Arrange
    ingestor = TradeIngestor([MINUTE], candle_capacity=4)
    ingestor.push(0, 1.0, 1.0, 1)

    # Act
    mask = ingestor.push(DAY, 2.0, 1.0, 1)
    ts, o, h, l, c, v = ingestor.drain(0)

    # Assert
    assert mask == 1
    assert len(ts) == 1440
    assert np.all(np.diff(ts) == MINUTE)
    assert all(np.all(column == 1.0) for column in (o, h, l, c))
    assert v[0] == 1.0
    assert np.all(v[1:] == 0.0)


def test_properties_before_and_after_first_trade():
    # Arrange: integral floats such as 60e9 are accepted as timeframes.
    ingestor = TradeIngestor([60e9, 5 * MINUTE], tick_capacity=8)
    before = (ingestor.tick_count, ingestor.last_price, ingestor.last_ts)

    # Act
    ingestor.push(123, 4.5, 1.0, -1)

    # Assert
    assert before == (0, None, None)
    assert (ingestor.tick_count, ingestor.last_price, ingestor.last_ts) == (1, 4.5, 123)
    assert ingestor.timeframes_ns == (MINUTE, 5 * MINUTE)
    assert ingestor.tick_capacity == 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeframes_ns": []}, "1 to 64 timeframes"),
        ({"timeframes_ns": [10] * 65}, "1 to 64 timeframes"),
        ({"timeframes_ns": [10, 0]}, r"timeframes_ns\[1\] must be a positive int64"),
        ({"timeframes_ns": [-10]}, r"timeframes_ns\[0\] must be a positive int64"),
        ({"timeframes_ns": [2**63]}, r"timeframes_ns\[0\] must be a positive int64"),
        ({"timeframes_ns": [1.5]}, r"timeframes_ns\[0\] must be a positive int64"),
        ({"timeframes_ns": [10], "tick_capacity": 0}, "tick_capacity must be >= 1"),
        ({"timeframes_ns": [10], "candle_capacity": 0}, "candle_capacity must be >= 1"),
    ],
)
def test_trade_ingestor_with_bad_arguments_raises(kwargs, message):
    # Act / Assert
    with pytest.raises(ValueError, match=message):
        TradeIngestor(**kwargs)


@pytest.mark.parametrize("method", ["pending", "drain", "current"])
@pytest.mark.parametrize("tf", [-1, 2])
def test_timeframe_index_out_of_range_raises_index_error(method, tf):
    # Arrange
    ingestor = TradeIngestor([10, 20])

    # Act / Assert
    with pytest.raises(IndexError, match="out of range"):
        getattr(ingestor, method)(tf)


# ---------------------------------------------------------------------------------------
# Tick ring buffer
# ---------------------------------------------------------------------------------------


def test_recent_ticks_after_wrap_keeps_the_newest_in_chronological_order():
    # Arrange
    ingestor = TradeIngestor([10], tick_capacity=4)
    for i in range(10):
        ingestor.push(i, 100.0 + i, 0.5 * i, 1 if i % 2 else -1)

    # Act
    ts, price, size, side = ingestor.recent_ticks(100)

    # Assert
    assert ts.tolist() == [6, 7, 8, 9]
    assert price.tolist() == [106.0, 107.0, 108.0, 109.0]
    assert size.tolist() == [3.0, 3.5, 4.0, 4.5]
    assert side.tolist() == [-1, 1, -1, 1]
    assert (ts.dtype, price.dtype, size.dtype, side.dtype) == (
        np.int64,
        np.float64,
        np.float64,
        np.int8,
    )
    assert ingestor.tick_count == 10


def test_recent_ticks_before_wrap_returns_only_stored_ticks():
    # Arrange
    ingestor = TradeIngestor([10], tick_capacity=8)
    for i in range(3):
        ingestor.push(i, 1.0, 1.0, 1)

    # Act
    last_two = ingestor.recent_ticks(2)[0]
    everything = ingestor.recent_ticks(50)[0]
    nothing = ingestor.recent_ticks(0)[0]

    # Assert
    assert last_two.tolist() == [1, 2]
    assert everything.tolist() == [0, 1, 2]
    assert nothing.tolist() == []


def test_recent_ticks_with_negative_n_raises():
    # Arrange
    ingestor = TradeIngestor([10])

    # Act / Assert
    with pytest.raises(ValueError, match="n must be >= 0"):
        ingestor.recent_ticks(-1)


@settings(max_examples=100, deadline=None)
@given(
    capacity=st.integers(1, 16),
    count=st.integers(0, 60),
    n=st.integers(0, 70),
)
def test_recent_ticks_equals_tail_of_all_pushed_ticks(capacity, count, n):
    # Arrange
    ingestor = TradeIngestor([10], tick_capacity=capacity)
    for i in range(count):
        ingestor.push(i, float(i) + 1.0, float(i), (-1) ** i)

    # Act
    ts = ingestor.recent_ticks(n)[0]

    # Assert
    expected = list(range(count))[-min(n, capacity, count) :] if min(n, capacity, count) else []
    assert ts.tolist() == expected


# ---------------------------------------------------------------------------------------
# Properties: streaming == batch == reference, and the candle invariants
# ---------------------------------------------------------------------------------------

TIMEFRAMES = st.sampled_from([1, 2, 3, 5, 7, 10, 60])


@st.composite
def trade_columns(draw, min_size=1, max_size=120):
    # Non-decreasing int64 ts (possibly negative, with repeats and gaps), positive prices,
    # dyadic sizes (so that sums of volumes are exact in any order).
    n = draw(st.integers(min_size, max_size))
    start = draw(st.integers(-(10**6), 10**6))
    steps = draw(
        st.lists(
            st.one_of(st.just(0), st.integers(0, 12), st.integers(0, 300)),
            min_size=n,
            max_size=n,
        )
    )
    ts = np.cumsum(steps, dtype=np.int64) + start
    price = draw(
        st.lists(
            st.floats(1e-3, 1e6, allow_nan=False, allow_infinity=False),
            min_size=n,
            max_size=n,
        )
    )
    size = [q / 8 for q in draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n))]
    return _columns(ts, price, size)


@settings(max_examples=200, deadline=None)
@given(trades=trade_columns(), tf=TIMEFRAMES, include_last=st.booleans())
def test_aggregate_trades_equals_reference(trades, tf, include_last):
    # Arrange
    expected = candles_reference(*trades, tf, include_last)

    # Act
    result = aggregate_trades(*trades, tf, include_last)

    # Assert
    assert _rows(result) == expected


@settings(max_examples=200, deadline=None)
@given(
    trades=trade_columns(),
    timeframes=st.lists(TIMEFRAMES, min_size=1, max_size=4),
    candle_capacity=st.integers(1, 4),
    drain_every=st.one_of(st.none(), st.integers(1, 50)),
)
def test_streaming_push_flush_drain_equals_batch_for_every_timeframe(
    trades, timeframes, candle_capacity, drain_every
):
    # Arrange
    expected = [_rows(aggregate_trades(*trades, tf)) for tf in timeframes]

    # Act
    streamed = _stream(trades, timeframes, candle_capacity, drain_every)

    # Assert
    assert streamed == expected


@settings(max_examples=100, deadline=None)
@given(trades=trade_columns(min_size=2), tf=TIMEFRAMES, candle_capacity=st.integers(1, 3))
def test_queue_growth_without_drain_loses_no_candle(trades, tf, candle_capacity):
    # Arrange
    ingestor = TradeIngestor([tf], candle_capacity=candle_capacity)
    expected = _rows(aggregate_trades(*trades, tf, include_last=False))

    # Act: nothing is drained until every trade is in, whatever the capacity.
    for t, p, s in zip(*(column.tolist() for column in trades), strict=True):
        ingestor.push(t, p, s, 1)
    pending = ingestor.pending(0)
    result = _rows(ingestor.drain(0))

    # Assert
    assert pending == len(expected)
    assert result == expected


@settings(max_examples=200, deadline=None)
@given(trades=trade_columns(), tf=TIMEFRAMES)
def test_candle_invariants(trades, tf):
    # Arrange
    ts, price, size = trades
    trade_buckets = set((ts // tf * tf).tolist())

    # Act
    c_ts, o, h, l, c, v = aggregate_trades(ts, price, size, tf)

    # Assert: volume is conserved (sizes are dyadic, so the sums are exact).
    assert v.sum() == size.sum()
    # Every candle is well formed.
    assert np.all(l <= np.minimum(o, c))
    assert np.all(np.maximum(o, c) <= h)
    # One candle per bucket, from the first trade's bucket to the last's.
    assert c_ts[0] == ts[0] // tf * tf
    assert c_ts[-1] == ts[-1] // tf * tf
    assert np.all(np.diff(c_ts) == tf)
    # Gap candles repeat the previous close with zero volume.
    for i in range(1, len(c_ts)):
        if int(c_ts[i]) not in trade_buckets:
            assert o[i] == h[i] == l[i] == c[i] == c[i - 1]
            assert v[i] == 0.0
