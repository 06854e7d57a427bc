"""Hand-computed scenarios for the engine's slow twin (``tests/reference/engine.py``).

Every expected number below is worked out from the formulas of docs/paper-execution.md,
not read off a run. The variant puts all its weight on RSI(14), so its decisions are easy
to steer: 15 one-minute closes that only fall give a Wilder RSI of 0 (below the oversold
level 30: sub-score +1, score 1 >= strong_buy 0.65, confidence 1: STRONG_BUY), 15 that only
rise give 100 (STRONG_SELL). The RSI's first value is at the 15th candle, so the first
decision is at the close of candle 14 (0-based), at T0 + 15 min.

Common numbers (multiplier 1, lot size 1, taker 0.1 %, maker 0.05 %, leverage 10,
position size 10 % of 10,000): an entry at 100 buys floor(10000 * 10/100 * 10 / 100) = 100
lots, margin 100 * 100 / 10 = 1000, entry fee 0.001 * 100 * 100 = 10; stop-loss 5 % ROI:
100 * (1 - 5/10/100) = 99.5; take-profit 10 % ROI: 101; liquidation 100 * (1 - 1/10 +
0.005) = 90.5; break-even 100 * 1.001 / 0.999, its ROI (1.001/0.999 - 1) * 1000.
"""

from __future__ import annotations

import math

import pytest

from liveopt.engine.config import EngineConfig
from liveopt.optimizer import VariantParams, generate_variants
from tests.reference.engine import ReferenceEngine

S = 1_000_000_000
M = 60 * S
EIGHT_UTC = 1_704_096_000 * S  # 2024-01-01 08:00:00 UTC, a funding time
T0 = EIGHT_UTC - 20 * M  # 07:40, a minute boundary

BASELINE = {
    "weights": (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "rsi_oversold": 30.0,
    "rsi_overbought": 70.0,
    "strong_buy": 0.65,
    "buy": 0.4,
    "sell": -0.4,
    "strong_sell": -0.65,
    "min_confidence": 0.6,
    "stop_loss_roi": 5.0,
    "take_profit_roi": 10.0,
    "break_even_buffer": 0.5,
    "trailing_step": 0.5,
    "trailing_move": 0.25,
    "leverage": 10,
    "position_size_pct": 10.0,
    "timeframe": "1m",
    "max_hold_s": 3600.0,
}
BREAK_EVEN = 100.0 * 1.001 / 0.999
BE_ROI = (BREAK_EVEN - 100.0) / 100.0 * 10 * 100


def engine(variant=None, **config) -> ReferenceEngine:
    settings = {
        "capital": 10_000.0, "taker_fee": 0.001, "maker_fee": 0.0005, "slippage_bps": 0.0,
        "multiplier": 1.0, "lot_size": 1.0, "maint_margin_rate": 0.005,
    }
    settings.update(config)
    params = VariantParams(**{**BASELINE, **(variant or {})})
    variants = generate_variants(1, "random", 0, baseline=params)
    return ReferenceEngine(EngineConfig(**settings), variants)


def warm_up(eng: ReferenceEngine, falling: bool = True) -> None:
    """One trade a minute at T0 + i min + 1 s, closes 115 ... 101 (or 85 ... 99)."""
    for i in range(15):
        eng.on_trade(T0 + i * M + S, 115.0 - i if falling else 85.0 + i, 1.0, 1)


def long_at_100(eng: ReferenceEngine) -> None:
    """Warm up, then a quote at T0 + 15 min + 1 s closes candle 14; the long fills at its ask."""
    warm_up(eng)
    eng.on_quote(T0 + 15 * M + S, 99.9, 5.0, 100.0, 5.0)


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-12)


# ------------------------------------------------------------------------------- entries


def test_entry_decided_at_a_candle_close_fills_at_the_ask_of_the_next_trade_or_quote():
    eng = engine()
    warm_up(eng)
    assert eng.pending(0) is None  # candle 14 is still open
    # A depth event at T0 + 15 min closes candle 14: the decision is taken, but only a trade
    # or a quote can fill it.
    eng.on_depth(T0 + 15 * M, 3.0, 1.0)
    assert eng.pending(0) == {"kind": "entry", "side": 1, "eligible_ts": T0 + 15 * M}
    assert eng.fills == []
    eng.on_quote(T0 + 15 * M + S, 99.9, 5.0, 100.0, 5.0)
    assert eng.fills == [
        {"variant": 0, "ts": T0 + 15 * M + S, "side": 1, "price": 100.0, "lots": 100.0,
         "fee": approx(10.0), "entry": True, "maker": False}
    ]
    pos = eng.position(0)
    assert pos["margin"] == approx(1000.0)
    assert pos["stop"] == approx(99.5)
    assert pos["take_profit"] == approx(101.0)
    assert pos["liquidation"] == approx(90.5)
    assert pos["break_even"] == approx(BREAK_EVEN)
    assert pos["expiry"] == T0 + 15 * M + S + 3600 * S
    m = eng.metrics(0)
    assert m["cash"] == approx(9990.0)
    assert m["equity"] == approx(9990.0 + (101.0 - 100.0) * 100)  # last trade at 101
    assert m["side"] == 1


def test_without_quotes_the_entry_fills_at_the_trade_price_moved_by_the_slippage():
    eng = engine(slippage_bps=10.0)
    warm_up(eng)
    eng.on_trade(T0 + 15 * M + S, 100.0, 1.0, -1)
    # 100 * (1 + 10 / 10000) = 100.1; floor(10000 * 0.1 * 10 / 100.1) = floor(99.9) = 99.
    (fill,) = eng.fills
    assert fill["price"] == approx(100.1)
    assert fill["lots"] == 99.0
    assert fill["fee"] == approx(0.001 * 99 * 100.1)
    assert eng.metrics(0)["cash"] == approx(10_000.0 - 0.001 * 99 * 100.1)


def test_latency_delays_the_fill_to_the_first_event_at_or_after_close_plus_latency():
    eng = engine(latency_ns=5 * S)
    warm_up(eng)
    eng.on_quote(T0 + 15 * M + S, 99.9, 5.0, 100.0, 5.0)
    eng.on_trade(T0 + 15 * M + 4 * S, 100.0, 1.0, 1)
    assert eng.fills == []
    eng.on_quote(T0 + 15 * M + 5 * S, 99.95, 5.0, 100.05, 5.0)
    assert eng.fills[0]["ts"] == T0 + 15 * M + 5 * S
    assert eng.fills[0]["price"] == 100.05


def test_an_entry_whose_margin_buys_no_lot_is_skipped_and_counted():
    # 5 * 10 % * 10 / 100 = 0.05 lot: nothing to buy. The next close decides again.
    eng = engine(capital=5.0)
    long_at_100(eng)
    assert eng.fills == [] and eng.position(0) is None and eng.pending(0) is None
    assert eng.metrics(0)["entries_skipped"] == 1
    eng.on_quote(T0 + 16 * M + S, 99.9, 5.0, 100.0, 5.0)
    assert eng.metrics(0)["entries_skipped"] == 2


def test_long_only_never_opens_a_short():
    eng = engine(sides="long")
    warm_up(eng, falling=False)
    eng.on_quote(T0 + 15 * M + S, 99.9, 5.0, 100.0, 5.0)
    assert eng.pending(0) is None and eng.fills == []


# --------------------------------------------------------------------------------- exits


def test_stop_loss_exits_at_the_bid_with_the_taker_fee():
    eng = engine()
    long_at_100(eng)
    eng.on_quote(T0 + 15 * M + 2 * S, 99.4, 5.0, 99.5, 5.0)
    assert eng.position(0) is not None  # quotes move no stop
    eng.on_trade(T0 + 15 * M + 3 * S, 99.45, 1.0, -1)  # 99.45 <= 99.5
    (trade,) = eng.trades
    # gross (99.4 - 100) * 100 = -60; exit fee 0.001 * 100 * 99.4 = 9.94.
    assert trade["reason"] == "stop_loss"
    assert trade["exit_price"] == 99.4
    assert trade["gross_pnl"] == approx(-60.0)
    assert trade["exit_fee"] == approx(9.94)
    assert trade["net_pnl"] == approx(-60.0 - 10.0 - 9.94)
    assert trade["net_return"] == approx(-79.94 / 1000.0)
    assert trade["roi_pct"] == approx(-6.0)
    assert eng.fills[-1] == {
        "variant": 0, "ts": T0 + 15 * M + 3 * S, "side": -1, "price": 99.4, "lots": 100.0,
        "fee": approx(9.94), "entry": False, "maker": False,
    }
    m = eng.metrics(0)
    assert m["cash"] == approx(10_000.0 - 79.94)
    assert m["max_drawdown"] == approx(79.94 / 10_000.0)
    assert (m["trades"], m["wins"], m["losses"], m["max_loss_streak"]) == (1, 0, 1, 1)
    assert m["fees"] == approx(19.94)
    assert m["exposure_ns"] == 2 * S
    assert m["side"] == 0


@pytest.mark.parametrize(
    ("order", "exit_price", "fee", "maker"),
    [("market", 101.0, 0.001 * 100 * 101.0, False), ("limit", 101.0, 0.0005 * 100 * 101.0, True)],
)
def test_take_profit_at_market_or_as_a_maker_limit(order, exit_price, fee, maker):
    eng = engine(take_profit_order=order)
    long_at_100(eng)
    # Market: at the bid 101.0; limit: exactly at the take-profit price 101.
    eng.on_quote(T0 + 15 * M + 2 * S, 101.0, 5.0, 101.1, 5.0)
    eng.on_trade(T0 + 15 * M + 3 * S, 101.05, 1.0, 1)
    (trade,) = eng.trades
    assert trade["reason"] == "take_profit"
    assert trade["exit_price"] == exit_price
    assert trade["gross_pnl"] == approx(100.0)
    assert trade["exit_fee"] == approx(fee)
    assert trade["net_pnl"] == approx(100.0 - 10.0 - fee)
    assert eng.fills[-1]["maker"] is maker
    assert eng.metrics(0)["wins"] == 1


@pytest.mark.parametrize(
    ("stop_loss_roi", "bid", "trade_price"),
    [
        (5.0, 90.0, 90.05),  # stop 99.5 triggers, but the fill at the bid 90 is below 90.5
        (99.0, 90.45, 90.4),  # stop 90.1 lies beyond 90.5: the liquidation triggers first
    ],
)
def test_liquidation_loses_exactly_the_margin_and_pays_no_exit_fee(
    stop_loss_roi, bid, trade_price
):
    eng = engine({"stop_loss_roi": stop_loss_roi})
    long_at_100(eng)
    eng.on_quote(T0 + 15 * M + 2 * S, bid, 5.0, bid + 0.1, 5.0)
    eng.on_trade(T0 + 15 * M + 3 * S, trade_price, 1.0, -1)
    (trade,) = eng.trades
    assert trade["reason"] == "liquidation"
    assert trade["exit_price"] == approx(90.5)
    assert trade["gross_pnl"] == approx(-1000.0)
    assert trade["exit_fee"] == 0.0
    assert trade["net_pnl"] == approx(-1010.0)
    assert trade["net_return"] == approx(-1.01)
    assert eng.fills[-1]["fee"] == 0.0
    assert eng.metrics(0)["cash"] == approx(10_000.0 - 10.0 - 1000.0)


def test_trailing_arms_at_break_even_plus_buffer_and_the_stop_never_loosens():
    eng = engine({"take_profit_roi": 50.0})  # take-profit at 105, out of the way
    warm_up(eng)
    eng.on_trade(T0 + 15 * M + S, 100.0, 1.0, 1)  # no quote, no slippage: long at 100
    first_level = BE_ROI + 0.5  # 2.502002... % ROI, the price 100.2502...
    eng.on_trade(T0 + 15 * M + 2 * S, 100.25, 1.0, 1)  # ROI 2.5 < first level
    assert not eng.position(0)["armed"]
    assert eng.position(0)["stop"] == approx(99.5)
    eng.on_trade(T0 + 15 * M + 3 * S, 100.26, 1.0, 1)  # ROI 2.6: armed at break-even
    pos = eng.position(0)
    assert pos["armed"]
    assert pos["stop"] == approx(BREAK_EVEN)
    assert pos["anchor"] == approx(first_level)
    # ROI 4.0: k = floor((4.0 - 2.502) / 0.5) = 2 steps; stop ROI 2.002 + 2 * 0.25.
    eng.on_trade(T0 + 15 * M + 4 * S, 100.40, 1.0, 1)
    pos = eng.position(0)
    assert pos["anchor"] == approx(first_level + 1.0)
    assert pos["stop_roi"] == approx(BE_ROI + 0.5)
    stop = 100.0 * (1.0 + (BE_ROI + 0.5) / 10 / 100)  # 100.2502...
    assert pos["stop"] == approx(stop)
    eng.on_trade(T0 + 15 * M + 5 * S, 100.30, 1.0, 1)  # falls back: the stop stays
    assert eng.position(0)["stop"] == approx(stop)
    assert eng.trades == []
    eng.on_trade(T0 + 15 * M + 6 * S, 100.25, 1.0, 1)  # 100.25 <= 100.2502...
    (trade,) = eng.trades
    assert trade["reason"] == "trailing_stop"
    assert trade["exit_price"] == 100.25
    assert trade["net_pnl"] == approx(25.0 - 10.0 - 0.001 * 100 * 100.25)


def test_max_hold_exits_at_market_once_the_expiry_is_reached():
    eng = engine({"max_hold_s": 600.0})
    warm_up(eng)
    entry_ts = T0 + 15 * M + S
    eng.on_trade(entry_ts, 100.0, 1.0, 1)
    # Small gains after a run of losses keep the RSI far below 70: no signal exit.
    for minute in range(16, 25):
        eng.on_trade(T0 + minute * M + S, 100.1, 1.0, 1)
    eng.on_trade(entry_ts + 600 * S - 1, 100.1, 1.0, 1)
    assert eng.trades == []
    eng.on_trade(entry_ts + 600 * S, 100.1, 1.0, 1)
    (trade,) = eng.trades
    assert trade["reason"] == "max_hold"
    assert trade["exit_ts"] - trade["entry_ts"] == 600 * S
    assert trade["net_pnl"] == approx(10.0 - 10.0 - 0.001 * 100 * 100.1)
    assert eng.metrics(0)["exposure_ns"] == 600 * S


def test_an_opposite_signal_exits_and_does_not_reverse():
    # Closes 101 (candle 14), 100, 110, 120, 130: Wilder averages (gain, loss) go from
    # (0, 1) to (0, 1), (10/14, 13/14), (1.3776, 0.8622), (1.9934, 0.8006): RSI 0, 43.5,
    # 61.5, 71.3. At the close of candle 18 (71.3 > 70) the long sees STRONG_SELL.
    eng = engine({"take_profit_roi": 1000.0, "stop_loss_roi": 50.0}, trailing=False)
    warm_up(eng)
    for minute, price in ((15, 100.0), (16, 110.0), (17, 120.0), (18, 130.0)):
        eng.on_trade(T0 + minute * M + S, price, 1.0, 1)
    assert eng.trades == [] and eng.pending(0) is None
    eng.on_trade(T0 + 19 * M + S, 130.0, 1.0, 1)
    (trade,) = eng.trades
    assert trade["reason"] == "signal"
    assert trade["exit_price"] == 130.0
    assert trade["gross_pnl"] == approx(3000.0)
    assert trade["net_pnl"] == approx(3000.0 - 10.0 - 13.0)
    assert trade["roi_pct"] == approx(300.0)
    assert eng.position(0) is None and eng.pending(0) is None  # no reversal
    # Candle 19 (flat close 130) keeps both averages' ratio: RSI 71.3 again, and the flat
    # variant now goes short, on the event after the exit's span.
    eng.on_trade(T0 + 20 * M + S, 130.0, 1.0, 1)
    fill = eng.fills[-1]
    assert (fill["ts"], fill["side"], fill["price"]) == (T0 + 20 * M + S, -1, 130.0)
    # Cash 10000 - 10 + 3000 - 13 = 12977: floor(12977 * 0.1 * 10 / 130) = 99 lots.
    assert fill["lots"] == 99.0


# ------------------------------------------------------------------------------- funding


@pytest.mark.parametrize(
    ("falling", "bid", "ask", "price", "payment"),
    [
        (True, 99.9, 100.0, 100.2, 0.0001 * 100 * 100.2),  # a long pays a positive rate
        (False, 100.0, 100.1, 99.8, -0.0001 * 100 * 99.8),  # a short receives it
    ],
)
def test_funding_at_0800_utc_is_charged_once_at_the_last_trade_price(
    falling, bid, ask, price, payment
):
    eng = engine()
    warm_up(eng, falling=falling)
    eng.on_quote(T0 + 15 * M + S, bid, 5.0, ask, 5.0)  # entry at 100 either way
    eng.on_trade(T0 + 15 * M + 2 * S, price, 1.0, 1)
    eng.on_funding_rate(T0 + 16 * M, 0.0001)
    eng.on_trade(EIGHT_UTC - S, price, 1.0, 1)
    assert eng.metrics(0)["cash"] == approx(9990.0)
    eng.on_trade(EIGHT_UTC + S, price, 1.0, 1)
    assert eng.metrics(0)["cash"] == approx(9990.0 - payment)
    assert eng.position(0)["funding"] == approx(payment)
    eng.on_trade(EIGHT_UTC + 30 * M, price, 1.0, 1)  # no funding time crossed
    assert eng.metrics(0)["cash"] == approx(9990.0 - payment)


def test_funding_ends_in_the_closed_trade_net_pnl():
    eng = engine()
    long_at_100(eng)
    eng.on_trade(T0 + 15 * M + 2 * S, 100.2, 1.0, 1)
    eng.on_funding_rate(T0 + 16 * M, 0.0001)
    eng.on_trade(EIGHT_UTC + S, 100.2, 1.0, 1)  # pays 0.0001 * 100 * 100.2 = 1.002
    eng.on_quote(EIGHT_UTC + 2 * S, 101.2, 5.0, 101.3, 5.0)
    eng.on_trade(EIGHT_UTC + 3 * S, 101.25, 1.0, 1)  # take-profit at the bid 101.2
    (trade,) = eng.trades
    assert trade["funding"] == approx(1.002)
    assert trade["net_pnl"] == approx(120.0 - 10.0 - 10.12 - 1.002)
    assert eng.metrics(0)["funding"] == approx(1.002)
    assert eng.metrics(0)["cash"] == approx(10_000.0 + trade["net_pnl"])


# ------------------------------------------------------------------------------- metrics


def test_annual_sharpe_from_one_minute_equity_samples():
    # Samples at T0 + 1 ... 15 min are 10,000 (flat, or the entry fee not yet paid at
    # T0 + 15 min: the sample comes before the event), at T0 + 16 min 9920.06 after the
    # stop. With the starting capital as sample 0 that is 16 returns, 15 zeros and one r:
    # mean r/16, sample variance (15 (r/16)^2 + (15 r/16)^2) / 15 = r^2/16, so the Sharpe
    # is -1/4 per sample, times sqrt(525,600 one-minute samples a year).
    eng = engine()
    long_at_100(eng)
    eng.on_quote(T0 + 15 * M + 2 * S, 99.4, 5.0, 99.5, 5.0)
    eng.on_trade(T0 + 15 * M + 3 * S, 99.45, 1.0, -1)
    eng.on_trade(T0 + 16 * M + S, 99.45, 1.0, -1)
    assert eng.metrics(0)["sharpe_annual"] == approx(-math.sqrt(525_600 / 16))


def test_a_flat_account_has_no_sharpe_and_no_drawdown():
    eng = engine(sides="short")
    warm_up(eng)
    eng.on_trade(T0 + 30 * M, 100.0, 1.0, 1)
    m = eng.metrics(0)
    assert math.isnan(m["sharpe_annual"]) and math.isnan(m["mean_return"])
    assert m["max_drawdown"] == 0.0 and m["equity"] == 10_000.0


# --------------------------------------------------------------------------- candle mode


def bars(eng: ReferenceEngine, rows, first_minute: int) -> None:
    ts = [T0 + (first_minute + i) * M for i in range(len(rows))]
    cols = list(zip(*rows, strict=True))
    eng.on_candles(ts, *cols, [1.0] * len(rows))


def candle_warm_up(eng: ReferenceEngine) -> None:
    """Bars 0..14 with O=H=L=C = 115 ... 101; bar 14's close decides a long."""
    bars(eng, [(115.0 - i,) * 4 for i in range(15)], 0)


def test_a_bar_touching_both_stop_and_target_counts_the_stop_at_the_stop_price():
    eng = engine(slippage_bps=10.0)
    candle_warm_up(eng)
    assert eng.pending(0)["eligible_ts"] == T0 + 15 * M
    bars(eng, [(100.0, 102.0, 99.0, 100.5)], 15)
    entry = 100.0 * 1.001  # the open, with 10 bps slippage
    lots = 99.0  # floor(10000 * 0.1 * 10 / 100.1)
    stop = entry * (1 - 5 / 10 / 100)  # 99.5995; take-profit entry * 1.01 = 101.101
    exit_price = stop * (1 - 0.001)
    (trade,) = eng.trades
    assert trade["reason"] == "stop_loss"
    assert trade["entry_price"] == approx(entry)
    assert trade["exit_price"] == approx(exit_price)
    assert trade["lots"] == lots
    gross = (exit_price - entry) * lots
    fees = 0.001 * lots * entry + 0.001 * lots * exit_price
    assert trade["gross_pnl"] == approx(gross)
    assert trade["net_pnl"] == approx(gross - fees)


def test_a_bar_reaching_only_the_target_fills_a_limit_exactly_at_it():
    eng = engine(take_profit_order="limit")
    candle_warm_up(eng)
    bars(eng, [(100.0, 101.5, 99.8, 101.2)], 15)
    (trade,) = eng.trades
    assert trade["reason"] == "take_profit"
    assert trade["exit_price"] == approx(101.0)
    assert trade["exit_fee"] == approx(0.0005 * 100 * 101.0)


def test_candle_trailing_moves_from_the_high_and_takes_effect_on_the_next_bar():
    eng = engine()
    candle_warm_up(eng)
    # Long at 100; the high 100.6 is ROI 6: armed, k = floor((6 - 2.502) / 0.5) = 6 steps,
    # stop ROI 2.002 + 6 * 0.25 = 3.502: stop 100.3502... The low 99.9 is above the old
    # stop 99.5 and the new stop only counts from the next bar.
    bars(eng, [(100.0, 100.6, 99.9, 100.1)], 15)
    assert eng.trades == []
    stop = 100.0 * (1 + (BE_ROI + 1.5) / 10 / 100)
    assert eng.position(0)["stop"] == approx(stop)
    # The next bar opens below the stop: out at the open.
    bars(eng, [(100.2, 100.3, 100.0, 100.1)], 16)
    (trade,) = eng.trades
    assert trade["reason"] == "trailing_stop"
    assert trade["exit_price"] == 100.2
    assert trade["net_pnl"] == approx(20.0 - 10.0 - 0.001 * 100 * 100.2)


def test_candle_equity_is_marked_at_the_adverse_extreme():
    eng = engine()
    candle_warm_up(eng)
    # Long 100 lots at 100 (fee 10), low 99.6: equity 9990 - 40 = 9950 at the worst.
    bars(eng, [(100.0, 100.2, 99.6, 100.1)], 15)
    m = eng.metrics(0)
    assert m["max_drawdown"] == approx(50.0 / 10_000.0)
    assert m["equity"] == approx(9990.0 + 10.0)


def test_candle_and_event_feeds_do_not_mix():
    eng = engine()
    eng.on_trade(T0, 100.0, 1.0, 1)
    with pytest.raises(ValueError, match="not both"):
        bars(eng, [(100.0,) * 4], 1)
