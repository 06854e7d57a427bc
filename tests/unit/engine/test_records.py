"""``liveopt.engine.records.RecordLog``: the kernel's output columns in, ordered records out.

The kernel is played by ``write``: it appends columns at the log's count, as
``variant_pass`` does, and the log takes them after each "call".

The reference here is plain Python: every record built one at a time from the columns and
sorted with ``sorted`` on the documented key.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt._core import variant_pass as vp
from liveopt.engine.records import RecordLog, _time_order

N_VARIANTS = 6


def write(log: RecordLog, open_i, open_f, trade_i, trade_f, user_ids) -> tuple[int, int]:
    """Append one kernel call's output columns at ``log.count``, then take them."""
    for (ints, floats), (out_i, out_f), slot in (
        ((open_i, open_f), (log.open_i, log.open_f), 0),
        ((trade_i, trade_f), (log.trade_i, log.trade_f), 1),
    ):
        start, n = int(log.count[slot]), ints.shape[1]
        out_i[:, start:start + n] = ints
        out_f[:, start:start + n] = floats
        log.count[slot] = start + n
    return log.take(user_ids)


@st.composite
def kernel_calls(draw):
    """Output columns of a few kernel calls, with many ties in time and variant."""
    calls = []
    for _ in range(draw(st.integers(0, 4))):
        n_open, n_trade = draw(st.integers(0, 7)), draw(st.integers(0, 7))
        ts = st.integers(0, 5)
        variant = st.integers(0, N_VARIANTS - 1)
        side = st.sampled_from([-1, 1])
        open_i = np.array([[draw(variant) for _ in range(n_open)],
                           [draw(ts) for _ in range(n_open)],
                           [draw(side) for _ in range(n_open)]], dtype=np.int64)
        open_i = open_i.reshape(vp.N_OPEN_I, n_open)
        trade_i = np.array([[draw(variant), draw(side), draw(ts), draw(ts), draw(st.integers(1, 7)),
                             draw(st.integers(0, 1))] for _ in range(n_trade)], dtype=np.int64)
        trade_i = trade_i.reshape(n_trade, vp.N_TRADE_I).T.copy()
        # Distinct floats, so that a record built from the wrong column shows.
        open_f = np.arange(vp.N_OPEN_F * n_open, dtype=np.float64).reshape(vp.N_OPEN_F, n_open)
        trade_f = -np.arange(vp.N_TRADE_F * n_trade, dtype=np.float64)
        trade_f = trade_f.reshape(vp.N_TRADE_F, n_trade) - 0.5
        calls.append((open_i, open_f, trade_i, trade_f))
    return calls


@settings(max_examples=200, deadline=None)
@given(kernel_calls(), st.permutations(range(N_VARIANTS)))
def test_drained_records_are_ordered_by_time_then_variant_with_the_entry_first(calls, ids):
    user_ids = np.array(ids, dtype=np.int64)
    log = RecordLog(N_VARIANTS, keep=True)
    want_trades, want_fills = [], []
    for open_i, open_f, trade_i, trade_f in calls:
        assert write(log, open_i, open_f, trade_i, trade_f, user_ids) == (
            open_i.shape[1], trade_i.shape[1])
        for k in range(open_i.shape[1]):
            variant = int(user_ids[open_i[0, k]])
            want_fills.append((int(open_i[1, k]), variant, 0, int(open_i[2, k]),
                               *open_f[:, k].tolist(), True, False))
        for k in range(trade_i.shape[1]):
            variant = int(user_ids[trade_i[0, k]])
            side, entry_ts, exit_ts, reason, maker = trade_i[1:, k].tolist()
            floats = trade_f[:, k].tolist()
            want_trades.append((exit_ts, variant, side, entry_ts, reason, bool(maker), *floats))
            want_fills.append((exit_ts, variant, 1, -side, floats[1], floats[2], floats[4],
                               False, bool(maker)))
    # Python's sort is stable, so records equal on the key keep their arrival order.
    want_trades.sort(key=lambda t: (t[0], t[1]))
    want_fills.sort(key=lambda f: (f[0], f[1], f[2]))

    batch = log.drain()

    got_trades = [(t["exit_ts"], t["variant"], t["side"], t["entry_ts"], t["reason"],
                   bool(t["maker"]), t["entry_price"], t["exit_price"], t["lots"],
                   t["entry_fee"], t["exit_fee"], t["funding"], t["gross_pnl"], t["net_pnl"],
                   t["net_return"], t["roi_pct"]) for t in batch.trades]
    assert got_trades == want_trades
    got_fills = [(f["ts"], f["variant"], 0 if f["entry"] else 1, f["side"], f["price"],
                  f["lots"], f["fee"], bool(f["entry"]), bool(f["maker"])) for f in batch.fills]
    assert got_fills == want_fills
    # Drained means forgotten.
    again = log.drain()
    assert again.fills.size == 0 and again.trades.size == 0


def test_records_keep_the_variant_ids_of_the_moment_they_were_taken():
    log = RecordLog(2, keep=True)
    ids = np.array([10, 11], dtype=np.int64)
    trade_i = np.array([[1], [1], [0], [5], [1], [0]], dtype=np.int64)
    write(log, np.zeros((vp.N_OPEN_I, 0), dtype=np.int64), np.zeros((vp.N_OPEN_F, 0)),
          trade_i, np.zeros((vp.N_TRADE_F, 1)), ids)
    ids[:] = [20, 21]  # the engine's variants replaced before the drain

    assert log.drain().trades["variant"].tolist() == [11]


def test_kept_records_survive_the_columns_growing_and_unkept_ones_are_only_counted():
    n_variants = 3
    kept, counted = RecordLog(n_variants, keep=True), RecordLog(n_variants, keep=False)
    capacity = kept.trade_i.shape[1]
    ids = np.arange(n_variants, dtype=np.int64)
    exit_ts = np.arange(3 * capacity, dtype=np.int64)
    for first in range(0, len(exit_ts), 100):  # calls of 100 trades, past the capacity
        ts = exit_ts[first:first + 100]
        trade_i = np.zeros((vp.N_TRADE_I, len(ts)), dtype=np.int64)
        trade_i[0] = ts % n_variants
        trade_i[3] = ts
        trade_f = np.tile(ts.astype(np.float64), (vp.N_TRADE_F, 1))
        empty = np.zeros((vp.N_OPEN_I, 0), dtype=np.int64), np.zeros((vp.N_OPEN_F, 0))
        for log in (kept, counted):
            assert write(log, *empty, trade_i, trade_f, ids) == (0, len(ts))
        assert kept.trade_i.shape[1] - int(kept.count[1]) >= n_variants  # room for a span
        assert counted.count.tolist() == [0, 0]

    trades = kept.drain().trades

    assert kept.trade_i.shape[1] > capacity
    assert trades["exit_ts"].tolist() == exit_ts.tolist()
    assert trades["net_pnl"].tolist() == exit_ts.astype(np.float64).tolist()
    assert counted.drain().trades.size == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**62, 2**62), st.integers(0, 2**62)), max_size=40)
       | st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=40))
def test_the_time_order_is_a_stable_sort_on_time_then_tiebreak(keys):
    # Wide tiebreaks take the guarded path for keys that would overflow one int64.
    ts = np.array([t for t, _ in keys], dtype=np.int64)
    tiebreak = np.array([b for _, b in keys], dtype=np.int64)

    order = _time_order(ts, tiebreak)

    assert order.tolist() == sorted(range(len(keys)), key=lambda i: keys[i])
