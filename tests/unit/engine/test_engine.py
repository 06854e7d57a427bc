"""``liveopt.Engine`` against its slow twin, and the properties the API promises.

The twin (``tests/reference/engine.py``) was written from docs/paper-execution.md alone, one
event and one variant at a time, with exact rational statistics; its own hand-computed
scenarios are in ``test_reference_engine.py``. Here both run the same streams of real and
synthetic market data and must agree: every closed trade and fill, and the metrics.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.data import Trades, bundled_trades, read_candles
from liveopt.engine import REASON_NAMES, STOP_REASON_NAMES, Engine, EngineConfig
from liveopt.optimizer import (
    OptimizerConfig,
    Range,
    VariantParams,
    VariantSet,
    generate_variants,
)
from tests.conftest import FTX_BTCPERP_1M
from tests.reference.engine import ReferenceEngine

S = 1_000_000_000
# Thresholds low enough that random variants trade often on a short stream.
ACTIVE_SPACE = OptimizerConfig(
    strong_buy=Range(0.2, 0.5, 0.05, 0.3),
    buy=Range(0.1, 0.2, 0.05, 0.15),
    sell=Range(-0.2, -0.1, 0.05, -0.15),
    strong_sell=Range(-0.5, -0.2, 0.05, -0.3),
    min_confidence=Range(0.3, 0.6, 0.05, 0.4),
    timeframes=("1m", "5m"),
    default_timeframe="1m",
)
TRADE_FIELDS = ("entry_price", "exit_price", "lots", "entry_fee", "exit_fee", "funding",
                "gross_pnl", "net_pnl", "net_return", "roi_pct")


# The twin has no safety limits (they are tested in test_safety_limits.py): off here.
NO_LIMITS = {"max_loss_pct": None, "max_drawdown_pct": None, "halt_below_pct": None,
             "baseline_max_drawdown_pct": None}


def unlimited(**settings) -> EngineConfig:
    return EngineConfig(**{**NO_LIMITS, **settings})


@pytest.fixture(scope="module")
def trades() -> Trades:
    full = bundled_trades()
    n = 12_000
    return Trades.from_arrays(full.ts[:n], full.price[:n], full.size[:n], full.side[:n])


@pytest.fixture(scope="module")
def ftx():
    return read_candles(FTX_BTCPERP_1M)


def mixed_events(trades: Trades) -> list[tuple]:
    """Trades with quotes around them, top-5 depth and a funding rate: every event kind."""
    events: list[tuple] = [("funding", int(trades.ts[0]), 0.0001)]
    for i in range(len(trades)):
        ts, price = int(trades.ts[i]), float(trades.price[i])
        if i % 3 == 0:
            half = price * 0.00005 * (1 + i % 5)
            events.append(("quote", ts, price - half, 1.5, price + half, 2.0))
        if i % 50 == 0:
            events.append(("depth", ts, 10.0 + i % 7, 12.0 - i % 5))
        if i == len(trades) // 2:
            events.append(("funding", ts, -0.0002))
        events.append(("trade", ts, price, float(trades.size[i]), int(trades.side[i])))
    return events


def feed(target, events) -> None:
    calls = {"trade": target.on_trade, "quote": target.on_quote, "depth": target.on_depth,
             "funding": target.on_funding_rate}
    for kind, *args in events:
        calls[kind](*args)


def assert_same_trades(engine_trades: np.ndarray, twin_trades: list[dict]) -> None:
    # Records are ordered by time, then variant (the twin lists them in processing order,
    # which differs only for exits at two events with the same timestamp).
    twin_trades = sorted(twin_trades, key=lambda t: (t["exit_ts"], t["variant"]))
    assert len(engine_trades) == len(twin_trades)
    for got, want in zip(engine_trades, twin_trades, strict=True):
        for name in ("variant", "side", "entry_ts", "exit_ts"):
            assert got[name] == want[name], (name, got, want)
        assert REASON_NAMES[int(got["reason"])] == want["reason"], (got, want)
        for name in TRADE_FIELDS:
            assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-9), (name, got, want)


def assert_same_metrics(engine: Engine, twin: ReferenceEngine) -> None:
    rows = engine.metrics()
    for v in range(len(rows)):
        row, want = rows[v], twin.metrics(v)
        for name in ("trades", "wins", "losses", "exposure_ns", "entries_skipped",
                     "max_win_streak", "max_loss_streak", "side"):
            assert row[name] == want[name], (v, name, row[name], want[name])
        for mine, theirs in (("net_pnl", "net_pnl"), ("gross_pnl", "gross_pnl"),
                             ("fees", "fees"), ("funding", "funding"), ("equity", "equity"),
                             ("max_drawdown", "max_drawdown"), ("mean_return", "mean_return"),
                             ("var_return", "var_return"),
                             ("sharpe_annualised", "sharpe_annual")):
            expected = want[theirs]
            if math.isnan(expected):
                assert math.isnan(row[mine]), (v, mine, row[mine])
            else:
                assert row[mine] == pytest.approx(expected, rel=1e-7, abs=1e-9), (v, mine)


def run_with_twin(variants, config, events):
    """The engine and the twin over the same events; returns the engine, its drained
    records and the twin."""
    engine, twin = Engine(config, variants), ReferenceEngine(config, variants)
    feed(engine, events)
    feed(twin, events)
    return engine, engine.drain_fills(), twin


def test_event_stream_matches_the_twin_trade_for_trade(trades):
    variants = generate_variants(24, "random", 11, ACTIVE_SPACE)
    config = unlimited(latency_ns=250_000_000, equity_sample_ns=30 * S)
    engine, batch, twin = run_with_twin(variants, config, mixed_events(trades))
    assert len(batch.trades) > 50  # a stream in which the variants really trade
    reasons = {REASON_NAMES[int(r)] for r in batch.trades["reason"]}
    assert {"stop_loss", "take_profit", "signal"} <= reasons
    assert_same_trades(batch.trades, twin.trades)
    assert len(batch.fills) == len(twin.fills)
    twin_fills = sorted(twin.fills, key=lambda f: (f["ts"], f["variant"], not f["entry"]))
    for got, want in zip(batch.fills, twin_fills, strict=True):
        assert (got["variant"], got["ts"], got["side"], bool(got["entry"])) == (
            want["variant"], want["ts"], want["side"], want["entry"])
        assert got["price"] == pytest.approx(want["price"], rel=1e-12)
        assert got["fee"] == pytest.approx(want["fee"], rel=1e-9, abs=1e-12)
    assert_same_metrics(engine, twin)


@pytest.mark.parametrize("take_profit_order", ["market", "limit"])
def test_candle_mode_matches_the_twin_bar_for_bar(ftx, take_profit_order):
    n = 4_000
    variants = generate_variants(16, "random", 5, ACTIVE_SPACE)
    config = unlimited(take_profit_order=take_profit_order, slippage_bps=1.0)
    columns = (ftx.ts[:n], ftx.open[:n], ftx.high[:n], ftx.low[:n], ftx.close[:n],
               ftx.volume[:n])
    engine, twin = Engine(config, variants), ReferenceEngine(config, variants)
    engine.on_candles(*columns)
    twin.on_candles(*columns)
    batch = engine.drain_fills()
    assert len(batch.trades) > 50
    assert_same_trades(batch.trades, twin.trades)
    assert_same_metrics(engine, twin)


def test_trailing_liquidation_and_max_hold_match_the_twin(ftx):
    # High leverage with wide stops: liquidations; short holds: max-hold exits; trailing
    # with small steps: trailing stops.
    n = 6_000
    base = generate_variants(12, "random", 3, ACTIVE_SPACE)
    columns = {name: np.array(array) for name, array in base.columns().items()}
    columns["leverage"][:] = 100
    columns["stop_loss_roi"][:] = 150.0
    columns["max_hold_s"][::2] = 240.0
    columns["take_profit_roi"][1::2] = 400.0  # far: these trail instead
    columns["break_even_buffer"][:] = 1.0
    columns["trailing_step"][:] = 0.5
    variants = type(base)(base.config, columns)
    config = unlimited(maint_margin_rate=0.004)
    cols = (ftx.ts[:n], ftx.open[:n], ftx.high[:n], ftx.low[:n], ftx.close[:n],
            ftx.volume[:n])
    engine, twin = Engine(config, variants), ReferenceEngine(config, variants)
    engine.on_candles(*cols)
    twin.on_candles(*cols)
    batch = engine.drain_fills()
    reasons = {REASON_NAMES[int(r)] for r in batch.trades["reason"]}
    assert {"liquidation", "max_hold", "trailing_stop"} <= reasons
    liquidated = batch.trades[batch.trades["reason"] == 6]
    np.testing.assert_allclose(liquidated["roi_pct"], -100.0)
    assert_same_trades(batch.trades, twin.trades)
    assert_same_metrics(engine, twin)


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(1, 11_999), max_size=6, unique=True),
       buffer_events=st.integers(1, 700))
def test_any_cutting_of_the_stream_gives_bit_identical_results(trades, cuts, buffer_events):
    variants = generate_variants(20, "random", 2, ACTIVE_SPACE)
    config = unlimited(buffer_events=buffer_events)
    whole = Engine(config, variants)
    whole.on_trades(trades.ts, trades.price, trades.size, trades.side)
    pieces = Engine(config, variants)
    bounds = [0, *sorted(cuts), len(trades)]
    for k, (start, stop) in enumerate(itertools.pairwise(bounds)):
        if k % 2:  # alternate array calls with single events through the buffer
            for i in range(start, stop):
                pieces.on_trade(int(trades.ts[i]), float(trades.price[i]),
                                float(trades.size[i]), int(trades.side[i]))
        else:
            sl = slice(start, stop)
            pieces.on_trades(trades.ts[sl], trades.price[sl], trades.size[sl],
                             trades.side[sl])
    a, b = whole.drain_fills(), pieces.drain_fills()
    assert a.trades.tobytes() == b.trades.tobytes()
    assert a.fills.tobytes() == b.fills.tobytes()
    assert whole.metrics().tobytes() == pieces.metrics().tobytes()


@pytest.mark.parametrize("buffer_events", [1, 97, 4096])
def test_cutting_the_stream_with_safety_limits_on_gives_bit_identical_results(trades,
                                                                               buffer_events):
    # Tight limits: variants are stopped one by one (loss, drawdown) and the baseline's
    # drawdown halts the rest, while the live variants' marks live in the kernel's slots;
    # every cut must see the same stops and the same halt.
    variants = generate_variants(40, "random", 3, ACTIVE_SPACE)
    config = EngineConfig(buffer_events=buffer_events, max_loss_pct=0.3,
                          max_drawdown_pct=0.2, halt_below_pct=0.5,
                          baseline_max_drawdown_pct=0.2)
    whole = Engine(config, variants)
    whole.on_trades(trades.ts, trades.price, trades.size, trades.side)
    pieces = Engine(config, variants)
    for i in range(len(trades)):
        pieces.on_trade(int(trades.ts[i]), float(trades.price[i]), float(trades.size[i]),
                        int(trades.side[i]))
    metrics = whole.metrics()
    reasons = {STOP_REASON_NAMES[int(r)] for r in metrics["stop_reason"]}
    assert whole.halted and {"max_drawdown", "global_halt"} <= reasons, reasons
    a, b = whole.drain_fills(), pieces.drain_fills()
    assert a.trades.tobytes() == b.trades.tobytes()
    assert a.fills.tobytes() == b.fills.tobytes()
    assert metrics.tobytes() == pieces.metrics().tobytes()
    assert whole.halted == pieces.halted


def test_snapshot_and_restore_continue_exactly(trades):
    variants = generate_variants(20, "random", 9, ACTIVE_SPACE)
    config = unlimited()
    half = len(trades) // 2
    straight = Engine(config, variants)
    straight.on_trades(trades.ts, trades.price, trades.size, trades.side)
    first = Engine(config, variants)
    first.on_trades(trades.ts[:half], trades.price[:half], trades.size[:half],
                    trades.side[:half])
    before = first.drain_fills()
    blob = first.snapshot()
    resumed = Engine(config, variants)
    resumed.restore(blob)
    resumed.on_trades(trades.ts[half:], trades.price[half:], trades.size[half:],
                      trades.side[half:])
    after = resumed.drain_fills()
    whole = straight.drain_fills()
    joined = np.concatenate([before.trades, after.trades])
    assert joined.tobytes() == whole.trades.tobytes()
    assert resumed.metrics().tobytes() == straight.metrics().tobytes()
    with pytest.raises(ValueError, match="other variants"):
        Engine(config, generate_variants(20, "random", 10, ACTIVE_SPACE)).restore(blob)
    with pytest.raises(ValueError, match="not an engine snapshot"):
        resumed.restore(b"\x00garbage")


def test_a_variant_trades_the_same_alone_or_among_thousands(trades):
    variants = generate_variants(300, "random", 4, ACTIVE_SPACE)
    crowd = Engine(unlimited(), variants)
    crowd.on_trades(trades.ts, trades.price, trades.size, trades.side)
    crowd_trades = crowd.drain_fills().trades
    for v in (0, 17, 299):
        alone = Engine(unlimited(), variants.take([v]))
        alone.on_trades(trades.ts, trades.price, trades.size, trades.side)
        mine = alone.drain_fills().trades
        theirs = crowd_trades[crowd_trades["variant"] == v].copy()
        theirs["variant"] = 0
        assert mine.tobytes() == theirs.tobytes()


SIGNAL_COLUMNS = ("weights", "weight_points", "rsi_oversold", "rsi_overbought", "strong_buy",
                  "buy", "sell", "strong_sell", "min_confidence", "timeframe")


def shared_signal_variants(n: int, n_signals: int, seed: int) -> VariantSet:
    # n variants with only n_signals distinct signal configurations (dealt out in turn,
    # so one configuration's variants are not neighbours by id) and their own stops,
    # targets, trailing, leverage, sizes and holding times.
    signals = generate_variants(n_signals, "random", seed, ACTIVE_SPACE).columns()
    columns = {name: np.array(c) for name, c in
               generate_variants(n, "random", seed + 1, ACTIVE_SPACE).columns().items()}
    for name in SIGNAL_COLUMNS:
        columns[name] = np.array(signals[name])[np.arange(n) % n_signals]
    return VariantSet(ACTIVE_SPACE, columns)


def test_variants_sharing_a_signal_configuration_match_the_twin_and_trade_as_alone(trades):
    # The engine scores each distinct signal configuration once and hands the result to
    # all its variants; each must still trade exactly as the twin (which scores every
    # variant itself) and as it would alone.
    variants = shared_signal_variants(40, 5, 21)
    config = unlimited(latency_ns=250_000_000, equity_sample_ns=30 * S)
    events = mixed_events(trades)
    engine, batch, twin = run_with_twin(variants, config, events)
    assert len(batch.trades) > 50
    assert len(np.unique(batch.trades["variant"])) > 20  # most variants really trade
    assert_same_trades(batch.trades, twin.trades)
    assert_same_metrics(engine, twin)
    for v in (3, 22, 39):
        alone = Engine(config, variants.take([v]))
        feed(alone, events)
        mine = alone.drain_fills().trades
        theirs = batch.trades[batch.trades["variant"] == v].copy()
        theirs["variant"] = 0
        assert mine.tobytes() == theirs.tobytes()


def test_accounts_reconcile_cash_fees_and_pnl(trades):
    variants = generate_variants(50, "random", 8, ACTIVE_SPACE)
    engine = Engine(unlimited(), variants)
    feed(engine, mixed_events(trades))
    batch = engine.drain_fills()
    rows = engine.metrics()
    for v in range(len(variants)):
        mine = batch.trades[batch.trades["variant"] == v]
        row = rows[v]
        assert row["trades"] == len(mine)
        assert row["net_pnl"] == pytest.approx(mine["net_pnl"].sum(), abs=1e-9)
        assert row["net_pnl"] == pytest.approx(
            row["gross_pnl"] - row["fees"] - row["funding"], abs=1e-9)
        # Equity = capital + closed net PnL + the open position (unrealised, less its
        # entry fee and funding so far, which are already out of cash).
        open_costs = 0.0
        if row["side"] != 0:
            opened = batch.fills[(batch.fills["variant"] == v) & batch.fills["entry"]][-1]
            open_costs = opened["fee"]
        assert row["equity"] == pytest.approx(
            10_000.0 + row["net_pnl"] + row["unrealised_pnl"] - open_costs, abs=1e-6)


def test_bad_events_are_rejected_with_the_field_named_and_nothing_is_lost(trades):
    engine = Engine(unlimited(), generate_variants(3, "random", 1))
    engine.on_trade(1_000 * S, 100.0, 1.0, 1)
    for args, message in (
        ((999 * S, 100.0, 1.0, 1), "before the previous event"),
        ((1_001 * S, math.nan, 1.0, 1), "price must be finite"),
        ((1_001 * S, -1.0, 1.0, 1), "price must be finite"),
        ((1_001 * S, 100.0, -2.0, 1), "size must be finite"),
        ((1_001 * S, 100.0, 1.0, 3), "side must be"),
    ):
        with pytest.raises(ValueError, match=message):
            engine.on_trade(*args)
    with pytest.raises(ValueError, match="crossed"):
        engine.on_quote(1_001 * S, 101.0, 1.0, 100.0, 1.0)
    with pytest.raises(ValueError, match="funding rate"):
        engine.on_funding_rate(1_001 * S, math.inf)
    with pytest.raises(ValueError, match="events"):
        engine.on_candles(np.array([2_000 * 60 * S]), *([np.array([1.0])] * 5))
    engine.on_trade(1_001 * S, 100.5, 1.0, -1)
    engine.flush()
    assert engine.events_processed == 2  # the good events, and only them


def test_bad_bars_are_rejected_before_anything_is_processed(ftx):
    engine = Engine(unlimited(), generate_variants(3, "random", 1))
    ts, o, h, lo, c, v = (np.array(x[:5]) for x in (ftx.ts, ftx.open, ftx.high, ftx.low,
                                                   ftx.close, ftx.volume))
    bad_high = h.copy()
    bad_high[2] = lo[2] - 1.0
    with pytest.raises(ValueError, match="bar 2 is inconsistent"):
        engine.on_candles(ts, o, bad_high, lo, c, v)
    with pytest.raises(ValueError, match="not a multiple of the bar length"):
        engine.on_candles(ts + 1, o, h, lo, c, v)
    one_minute = OptimizerConfig(timeframes=("1m",), default_timeframe="1m")
    five = Engine(unlimited(bar_timeframe="5m"),
                  generate_variants(3, "random", 1, one_minute))
    five_minute_bars = ts[0] - ts[0] % (300 * S) + np.arange(5) * 300 * S
    with pytest.raises(ValueError, match="not a multiple of the bar timeframe"):
        five.on_candles(five_minute_bars, o, h, lo, c, v)  # the variants trade 1m
    assert engine.events_processed == 0


def test_paper_accounts_start_isolated_with_their_own_capital():
    engine = Engine(unlimited(capital=2_500.0), generate_variants(4, "random", 1))
    rows = engine.metrics()
    assert rows["equity"].tolist() == [2_500.0] * 4
    assert rows["trades"].tolist() == [0] * 4
    assert np.isnan(rows["sharpe_annualised"]).all()


def test_the_baseline_alone_reproduces_its_parameters_on_each_fill(ftx):
    params = VariantParams(
        weights=(1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0), rsi_oversold=30.0, rsi_overbought=70.0,
        strong_buy=0.65, buy=0.4, sell=-0.4, strong_sell=-0.65, min_confidence=0.5,
        stop_loss_roi=0.5, take_profit_roi=2.0, break_even_buffer=0.1, trailing_step=0.15,
        trailing_move=0.05, leverage=10, position_size_pct=1.0, timeframe="1m",
        max_hold_s=1800.0,
    )
    variants = generate_variants(1, "random", 0, baseline=params)
    engine = Engine(unlimited(slippage_bps=0.0, trailing=False), variants)
    n = 5_000
    engine.on_candles(ftx.ts[:n], ftx.open[:n], ftx.high[:n], ftx.low[:n], ftx.close[:n],
                      ftx.volume[:n])
    trades = engine.drain_fills().trades
    assert len(trades) > 10
    # Lots from 1 % of the cash at 10x; the stop 0.5 % ROI = 0.05 % of price below entry.
    # A long's stop exit is at the stop price, or at the open when the bar opened below it.
    long_stops = trades[(trades["reason"] == 1) & (trades["side"] == 1)]
    assert len(long_stops) > 5
    bar_open = dict(zip(ftx.ts[:n].tolist(), ftx.open[:n].tolist(), strict=True))
    for trade in long_stops:
        stop = trade["entry_price"] * (1 - 0.5 / 10 / 100)
        opened = bar_open[int(trade["exit_ts"])]
        expected = opened if opened <= stop else stop
        assert trade["exit_price"] == pytest.approx(expected, rel=1e-12)
    first = trades[0]
    assert first["lots"] == math.floor(10_000.0 * 0.01 * 10 / (first["entry_price"] * 0.001))


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    jump_every=st.integers(50, 400),
    jump=st.floats(0.002, 0.08),
    leverage=st.sampled_from([3, 10, 50, 100]),
    latency_s=st.sampled_from([0, 1, 45]),
    take_profit_order=st.sampled_from(["market", "limit"]),
    with_quotes=st.booleans(),
)
def test_random_markets_with_gaps_match_the_twin(seed, jump_every, jump, leverage, latency_s,
                                                 take_profit_order, with_quotes):
    # A seeded random walk with occasional jumps (gaps through stops and liquidation
    # prices) and pauses (gap candles), traded by random variants at one leverage.
    rng = np.random.default_rng(seed)
    n = 2_500
    steps = rng.normal(0.0, 0.0008, n)
    steps[::jump_every] += rng.choice([-jump, jump], size=len(steps[::jump_every]))
    price = 30_000.0 * np.exp(np.cumsum(steps))
    gaps = rng.integers(1, 20, n) * S
    gaps[rng.random(n) < 0.01] = 600 * S  # quiet spells: empty candles
    ts = 1_700_000_000 * S + np.cumsum(gaps)
    base = generate_variants(10, "random", int(seed % 1000), ACTIVE_SPACE)
    columns = {name: np.array(array) for name, array in base.columns().items()}
    columns["leverage"][:] = leverage
    variants = type(base)(base.config, columns)
    config = unlimited(latency_ns=latency_s * S, take_profit_order=take_profit_order,
                          equity_sample_ns=120 * S, maint_margin_rate=0.01)
    events: list[tuple] = [("funding", int(ts[0]), 0.0003)]
    for i in range(n):
        if with_quotes and i % 2 == 0:
            events.append(("quote", int(ts[i]), price[i] * 0.9999, 1.0, price[i] * 1.0001, 1.0))
        events.append(("trade", int(ts[i]), float(price[i]), 0.5, 1 if i % 3 else -1))
    engine, twin = Engine(config, variants), ReferenceEngine(config, variants)
    feed(engine, events)
    feed(twin, events)
    assert_same_trades(engine.drain_fills().trades, twin.trades)
    assert_same_metrics(engine, twin)


def test_the_embedding_api_is_importable_from_the_package_root(trades):
    import liveopt

    assert liveopt.Engine is Engine and liveopt.EngineConfig is EngineConfig
    engine = liveopt.Engine(liveopt.EngineConfig(), generate_variants(30, "random", 6,
                                                                      ACTIVE_SPACE))
    engine.on_trades(trades.ts, trades.price, trades.size, trades.side)
    batch = engine.drain_fills()
    typed = list(batch.closed_trades())
    assert len(typed) == len(batch.trades) > 0
    first = typed[0]
    assert first.reason in REASON_NAMES.values()
    assert first.net_pnl == batch.trades[0]["net_pnl"]
    assert engine.drain_fills().trades.size == 0  # drained means forgotten
