"""Safety limits: a variant past its loss or drawdown limit is stopped and its position
closed at the next price; a global halt stops everything; stopped variants keep their
metrics and can be resumed.

The variant puts all its weight on RSI(14): 15 one-minute closes that only fall give a
Wilder RSI of 0 and a long at the next event (see ``test_reference_engine.py``). Numbers:
capital 10,000, multiplier 1, 100 % of the cash as margin at 10x from 100 buys 1,000 lots,
so a 1 % price move is 10 % of the capital; stops and take-profits are far away.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from liveopt.engine import REASON_NAMES, STOP_REASON_NAMES, Engine, EngineConfig
from liveopt.optimizer import VariantParams, generate_variants

S = 1_000_000_000
M = 60 * S
T0 = 1_704_096_000 * S - 20 * M  # a minute boundary

BASELINE = {
    "weights": (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "rsi_oversold": 30.0, "rsi_overbought": 70.0, "strong_buy": 0.65, "buy": 0.4,
    "sell": -0.4, "strong_sell": -0.65, "min_confidence": 0.6,
    "stop_loss_roi": 90.0, "take_profit_roi": 500.0, "break_even_buffer": 400.0,
    "trailing_step": 0.5, "trailing_move": 0.25, "leverage": 10,
    "position_size_pct": 100.0, "timeframe": "1m", "max_hold_s": 36_000.0,
}


def engine(n: int = 1, **limits) -> Engine:
    config = {"capital": 10_000.0, "taker_fee": 0.0, "maker_fee": 0.0, "slippage_bps": 0.0,
              "multiplier": 1.0, "trailing": False, "max_loss_pct": 5.0,
              "max_drawdown_pct": 50.0, "halt_below_pct": None,
              "baseline_max_drawdown_pct": None}
    config.update(limits)
    variants = generate_variants(n, "random", 0, baseline=VariantParams(**BASELINE))
    return Engine(EngineConfig(**config), variants)


def warm_up_and_buy(eng: Engine) -> None:
    for i in range(15):
        eng.on_trade(T0 + i * M + S, 115.0 - i, 1.0, 1)
    eng.on_trade(T0 + 15 * M + S, 100.0, 1.0, 1)  # closes candle 14: the long fills here


def test_a_variant_past_its_loss_limit_is_stopped_and_closed_at_the_next_price():
    eng = engine()
    warm_up_and_buy(eng)
    assert eng.metrics()["side"][0] == 1
    eng.on_trade(T0 + 15 * M + 2 * S, 99.6, 1.0, -1)  # -4 %: within the 5 % limit
    assert eng.metrics()["active"][0]
    eng.on_trade(T0 + 15 * M + 3 * S, 99.4, 1.0, -1)  # -6 %: stopped here ...
    row = eng.metrics()[0]
    assert not row["active"] and STOP_REASON_NAMES[int(row["stop_reason"])] == "max_loss"
    assert row["side"] == 1  # ... and the position closes at the next price
    eng.on_trade(T0 + 15 * M + 4 * S, 99.3, 1.0, -1)
    (trade,) = eng.drain_fills().trades
    assert REASON_NAMES[int(trade["reason"])] == "variant_stopped"
    assert trade["exit_price"] == 99.3 and trade["exit_ts"] == T0 + 15 * M + 4 * S
    assert trade["gross_pnl"] == pytest.approx(-0.7 * 1000)
    # No more entries: the same falling-then-rising pattern would buy again.
    for i in range(16, 40):
        eng.on_trade(T0 + i * M + S, 99.0 - (i - 16) * 0.5, 1.0, 1)
    assert eng.drain_fills().trades.size == 0
    row = eng.metrics()[0]
    assert row["trades"] == 1 and row["net_pnl"] == pytest.approx(-700.0)  # kept


def test_a_variant_past_its_drawdown_limit_is_stopped_even_while_in_profit():
    eng = engine(max_loss_pct=None, max_drawdown_pct=8.0)
    warm_up_and_buy(eng)
    eng.on_trade(T0 + 15 * M + 2 * S, 102.0, 1.0, 1)  # equity 12,000: the peak
    eng.on_trade(T0 + 15 * M + 3 * S, 101.1, 1.0, -1)  # 11,100: 7.5 % below the peak
    assert eng.metrics()["active"][0]
    eng.on_trade(T0 + 15 * M + 4 * S, 101.0, 1.0, -1)  # 11,000: 8.33 %: stopped
    row = eng.metrics()[0]
    assert STOP_REASON_NAMES[int(row["stop_reason"])] == "max_drawdown"
    assert row["max_drawdown"] == pytest.approx(1000 / 12_000)
    eng.on_trade(T0 + 15 * M + 5 * S, 101.2, 1.0, 1)
    (trade,) = eng.drain_fills().trades
    assert trade["exit_price"] == 101.2 and trade["net_pnl"] == pytest.approx(1200.0)
    assert eng.metrics()["roi_pct"][0] == pytest.approx(12.0)


def test_a_stopped_variant_resumed_by_hand_trades_again_with_its_metrics():
    eng = engine()
    warm_up_and_buy(eng)
    eng.stop([0])
    assert STOP_REASON_NAMES[int(eng.metrics()["stop_reason"][0])] == "stopped"
    eng.on_trade(T0 + 15 * M + 2 * S, 100.5, 1.0, 1)
    (trade,) = eng.drain_fills().trades
    assert REASON_NAMES[int(trade["reason"])] == "variant_stopped"
    eng.resume([0])
    row = eng.metrics()[0]
    assert row["active"] and row["stop_reason"] == 0 and row["trades"] == 1
    eng.on_trade(T0 + 16 * M + S, 99.0, 1.0, 1)  # RSI still 0 at this close: a new long
    assert eng.metrics()["side"][0] == 1
    (fill,) = eng.drain_fills().fills
    assert fill["entry"] and fill["price"] == 99.0
    with pytest.raises(ValueError, match="no variant 3"):
        eng.stop([3])


def test_the_baseline_past_its_drawdown_limit_halts_every_variant():
    # The baseline's drawdown limit is 3 %; the per-variant limits are off.
    eng = engine(n=1, max_loss_pct=None, max_drawdown_pct=None,
                 baseline_max_drawdown_pct=3.0)
    warm_up_and_buy(eng)
    eng.on_trade(T0 + 15 * M + 30 * S, 99.6, 1.0, -1)  # baseline drawdown 4 %
    assert not eng.halted  # checked on the equity-sample clock (every minute)
    eng.on_trade(T0 + 16 * M + S, 99.6, 1.0, -1)
    assert eng.halted
    row = eng.metrics()[0]
    assert STOP_REASON_NAMES[int(row["stop_reason"])] == "global_halt"
    eng.on_trade(T0 + 16 * M + 2 * S, 99.7, 1.0, 1)
    (trade,) = eng.drain_fills().trades
    assert REASON_NAMES[int(trade["reason"])] == "variant_stopped"
    eng.resume([0])
    assert not eng.halted


def test_the_baseline_drawdown_halts_within_one_batch_of_events():
    # One on_trades call: the drawdown happens in a span where the position is only
    # marked (the kernel's working copy of the marks, not yet its row), and the next
    # sample, in the same call, must see it.
    eng = engine(n=1, max_loss_pct=None, max_drawdown_pct=None,
                 baseline_max_drawdown_pct=3.0)
    ts = [T0 + i * M + S for i in range(16)] + [T0 + 16 * M + S, T0 + 17 * M + S]
    prices = [115.0 - i for i in range(15)] + [100.0, 99.6, 99.6]  # long at 100, then -4 %
    eng.on_trades(np.array(ts, dtype=np.int64), np.array(prices), np.ones(len(ts)),
                  np.ones(len(ts), dtype=np.int8))
    assert eng.halted
    (trade,) = eng.drain_fills().trades
    assert REASON_NAMES[int(trade["reason"])] == "variant_stopped"
    assert trade["exit_ts"] == T0 + 17 * M + S  # the sample at 17 M halts: the next trade


def test_every_active_variant_below_the_halt_level_halts_all_of_them():
    eng = engine(max_loss_pct=None, max_drawdown_pct=None, halt_below_pct=2.0)
    warm_up_and_buy(eng)
    eng.on_trade(T0 + 15 * M + 30 * S, 99.9, 1.0, -1)  # -1 %: above the halt level
    eng.on_trade(T0 + 16 * M + S, 99.9, 1.0, -1)  # a sample: no halt
    assert not eng.halted
    eng.on_trade(T0 + 16 * M + 30 * S, 99.7, 1.0, -1)  # -3 %
    eng.on_trade(T0 + 17 * M + S, 99.7, 1.0, -1)  # the next sample halts
    assert eng.halted
    assert STOP_REASON_NAMES[int(eng.metrics()["stop_reason"][0])] == "global_halt"


def test_limits_are_validated_at_construction():
    with pytest.raises(ValueError, match="max_loss_pct"):
        EngineConfig(max_loss_pct=0.0)
    with pytest.raises(ValueError, match="halt_below_pct"):
        EngineConfig(halt_below_pct=math.inf)
    assert EngineConfig(max_drawdown_pct=None).max_drawdown_pct is None
