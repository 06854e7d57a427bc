"""Slow, literal pure-Python twin of the paper-trading engine, written from
``docs/paper-execution.md`` and ``docs/signal-model.md`` alone.

One event at a time, one variant at a time, plain Python floats and ints, in the order the
specification gives:

1. the **cuts** between the previous event and this one: funding, equity samples, candle
   closes (gap candles included) and the decisions they trigger;
2. the **event**: eligible pending orders fill (trades and quotes), then exits are checked
   on trade events (max hold, stop incl. liquidation, take-profit, trailing).

Candle mode (``on_candles``) follows the six steps of the specification's "Candle mode".

Where the specification leaves a choice open, the reading taken here is written down at
that spot in a comment starting with ``READING``; those are the places where a
disagreement with the kernel may be the specification's fault rather than the kernel's.

Indicator values come from the streaming indicator classes (verified elsewhere) and the
signal sub-scores, score, confidence and class from ``tests.reference.signals``.
"""

from __future__ import annotations

import math
from fractions import Fraction

from liveopt._core.paper_math import lots_for_margin_nb
from liveopt.indicators import (
    EMA,
    KDJ,
    MACD,
    RSI,
    AwesomeOscillator,
    Bollinger,
    OBVSlope,
    Stochastic,
    WilliamsR,
)
from liveopt.timeframes import timeframe_ns
from liveopt.units import NS_PER_SECOND
from tests.reference.signals import score_variant, shared_subscores

FUNDING_PERIOD_NS = 8 * 3600 * NS_PER_SECOND  # 00:00, 08:00, 16:00 UTC: multiples from epoch
YEAR_NS = 365 * 24 * 3600 * NS_PER_SECOND
STRONG_BUY = 2
STRONG_SELL = -2

REASONS = ("stop_loss", "take_profit", "trailing_stop", "signal", "max_hold", "liquidation")


def _boundaries(after: int, upto: int, period: int) -> list[int]:
    """Every multiple of ``period`` in ``(after, upto]``, in time order."""
    out = []
    b = (after // period + 1) * period
    while b <= upto:
        out.append(b)
        b += period
    return out


class _CandleBuilder:
    """Candles of one timeframe: buckets ``[k * tf, (k + 1) * tf)`` of the epoch, a bucket
    with no data repeats the previous close with zero volume."""

    def __init__(self, tf: int) -> None:
        self.tf = tf
        self.start: int | None = None  # bucket start of the candle being built
        self.ohlcv: list[float] | None = None  # its data so far; None while it has none
        self.last_close: float | None = None

    def close_until(self, t: int) -> list[tuple[int, float, float, float, float, float]]:
        """Close every candle that ends at or before ``t``, in time order."""
        closed = []
        while self.start is not None and self.start + self.tf <= t:
            if self.ohlcv is None:
                c = self.last_close
                candle = (self.start, c, c, c, c, 0.0)
            else:
                o, h, l, c, v = self.ohlcv
                candle = (self.start, o, h, l, c, v)
            self.last_close = candle[4]
            closed.append(candle)
            self.start += self.tf
            self.ohlcv = None
        return closed

    def add(self, ts: int, o: float, h: float, l: float, c: float, v: float) -> None:
        """Add a trade (o = h = l = c = price) or a bar to the candle of ``ts``'s bucket;
        every earlier candle must have been closed (``close_until(ts)``)."""
        if self.start is None:
            self.start = (ts // self.tf) * self.tf
        assert self.start <= ts < self.start + self.tf
        if self.ohlcv is None:
            self.ohlcv = [o, h, l, c, v]
        else:
            self.ohlcv[1] = max(self.ohlcv[1], h)
            self.ohlcv[2] = min(self.ohlcv[2], l)
            self.ohlcv[3] = c
            self.ohlcv[4] = self.ohlcv[4] + v


class _SignalInputs:
    """The signal model's indicators on one timeframe (docs/signal-model.md table)."""

    def __init__(self) -> None:
        self.rsi = RSI(14)
        self.williams_r = WilliamsR(14)
        self.macd = MACD(12, 26, 9)
        self.ao = AwesomeOscillator(5, 34)
        self.ema50 = EMA(50)
        self.ema200 = EMA(200)
        self.stochastic = Stochastic(14, 3, 3)
        self.bollinger = Bollinger(20, 2.0)
        self.kdj = KDJ(9, 3, 3)
        self.obv_slope = OBVSlope(14)

    def close(self, h: float, l: float, c: float, v: float, book: float):
        """Advance on one closed candle; return (rsi, the shared sub-scores)."""
        rsi = self.rsi.update(c)
        williams_r = self.williams_r.update(h, l, c)
        macd_line, _signal, macd_hist = self.macd.update(c)
        ao = self.ao.update(h, l)
        ema_fast = self.ema50.update(c)
        ema_slow = self.ema200.update(c)
        stoch_k, stoch_d = self.stochastic.update(h, l, c)
        bb_upper, _middle, bb_lower = self.bollinger.update(c)
        _k, _d, kdj_j = self.kdj.update(h, l, c)
        obv_slope = self.obv_slope.update(c, v)
        subs = shared_subscores(
            williams_r, macd_line, macd_hist, ao, ema_fast, ema_slow, stoch_k, stoch_d, c,
            bb_upper, bb_lower, kdj_j, obv_slope, book,
        )
        return rsi, subs


class _Position:
    def __init__(self) -> None:
        self.side = 0
        self.entry_ts = 0
        self.entry_price = 0.0
        self.lots = 0.0
        self.margin = 0.0
        self.entry_fee = 0.0
        self.funding = 0.0
        self.stop = 0.0
        self.take_profit = 0.0
        self.liquidation = 0.0
        self.break_even = 0.0
        self.be_roi = 0.0
        self.armed = False  # the trailing stop has moved the stop
        self.anchor = 0.0
        self.stop_roi = 0.0
        self.expiry = 0


class _Pending:
    def __init__(self, kind: str, side: int, eligible_ts: int) -> None:
        self.kind = kind  # "entry" or "exit"
        self.side = side  # entry: the position's side; exit: the position being closed
        self.eligible_ts = eligible_ts


class _Account:
    def __init__(self, capital: float) -> None:
        self.cash = capital
        self.position: _Position | None = None
        self.pending: _Pending | None = None
        self.closed: list[dict] = []
        self.peak = capital
        self.max_drawdown = 0.0
        self.samples: list[float] = []
        self.entries_skipped = 0
        self.exposure_closed = 0


class ReferenceEngine:
    """N isolated paper accounts on one market stream, per the specification, slowly.

    Parameters
    ----------
    config : EngineConfig
    variants : VariantSet
    """

    def __init__(self, config, variants) -> None:
        self.config = config
        self.n = len(variants)
        self.trades: list[dict] = []
        self.fills: list[dict] = []
        # Plain Python copies of every variant's parameters.
        self.weights = [[float(w) for w in variants.weights[v]] for v in range(self.n)]
        names = (
            "rsi_oversold", "rsi_overbought", "strong_buy", "buy", "sell", "strong_sell",
            "min_confidence", "stop_loss_roi", "take_profit_roi", "break_even_buffer",
            "trailing_step", "trailing_move", "position_size_pct", "max_hold_s",
        )
        self.params = [
            {name: float(getattr(variants, name)[v]) for name in names} for v in range(self.n)
        ]
        for v in range(self.n):
            self.params[v]["leverage"] = float(int(variants.leverage[v]))
        self.tf_of = [
            timeframe_ns(variants.config.timeframes[int(variants.timeframe[v])])
            for v in range(self.n)
        ]
        # Timeframes some variant trades on, shortest first.
        self.timeframes = sorted(set(self.tf_of))
        self.builders = {tf: _CandleBuilder(tf) for tf in self.timeframes}
        self.signals = {tf: _SignalInputs() for tf in self.timeframes}
        self.accounts = [_Account(config.capital) for _ in range(self.n)]

        self.mode: str | None = None
        self.prev_ts: int | None = None
        self.last_bar_ts: int | None = None  # candle mode: the last bar's start
        self.last_price: float | None = None  # last trade price (candle mode: last close)
        self.bid: float | None = None
        self.ask: float | None = None
        self.book = 0.0  # order-book sub-score input: last depth imbalance, else 0
        self.funding_rate: float | None = None
        self.bar_ns = timeframe_ns(config.bar_timeframe)

    # ----------------------------------------------------------------------- event calls

    def on_trade(self, ts_ns: int, price: float, size: float, side: int) -> None:
        ts, price, size = int(ts_ns), float(price), float(size)
        self._start_event("events", ts)
        self.last_price = price
        for tf in self.timeframes:
            self.builders[tf].add(ts, price, price, price, price, size)
        for v in range(self.n):
            acc = self.accounts[v]
            self._fill_pending(v, ts, price)
            if acc.position is not None:
                self._exits_on_trade(v, ts, price)
        # Drawdown: equity is marked on every trade event, after the event.
        # READING: the mark is taken after the event's fills and exits, at the trade price.
        for v in range(self.n):
            self._mark(v, price)
        self.prev_ts = ts

    def on_quote(self, ts_ns: int, bid: float, bid_size: float, ask: float,
                 ask_size: float) -> None:
        ts = int(ts_ns)
        self._start_event("events", ts)
        # "A pending order that becomes eligible on a quote event fills at that quote."
        self.bid, self.ask = float(bid), float(ask)
        for v in range(self.n):
            self._fill_pending(v, ts, None)
        # Quotes move no stop: no exits are checked on a quote event.
        self.prev_ts = ts

    def on_depth(self, ts_ns: int, bid_size_5: float, ask_size_5: float) -> None:
        ts = int(ts_ns)
        self._start_event("events", ts)
        b, a = float(bid_size_5), float(ask_size_5)
        # READING: an empty book (b + a == 0) has no opinion (sub-score 0) rather than NaN.
        self.book = (b - a) / (b + a) if b + a > 0 else 0.0
        self.prev_ts = ts

    def on_funding_rate(self, ts_ns: int, rate: float) -> None:
        ts = int(ts_ns)
        self._start_event("events", ts)
        # READING: the rate stays in force for every later funding time until a new rate
        # is supplied (the spec says "charged at the next funding time" and does not say
        # whether it is consumed by it).
        self.funding_rate = float(rate)
        self.prev_ts = ts

    # ------------------------------------------------------------------------ candle mode

    def on_candles(self, ts, open, high, low, close, volume) -> None:
        for bar_ts, o, h, l, c, vol in zip(ts, open, high, low, close, volume, strict=True):
            self._bar(int(bar_ts), float(o), float(h), float(l), float(c), float(vol))

    def _bar(self, ts: int, o: float, h: float, l: float, c: float, vol: float) -> None:
        if self.mode is None:
            for tf in self.timeframes:
                if tf % self.bar_ns != 0:
                    raise ValueError(
                        f"variant timeframe of {tf} ns is not a multiple of the bar timeframe "
                        f"{self.config.bar_timeframe}"
                    )
        # 1. Cuts at the bar's start: funding and samples at the previous bar's close
        #    (self.last_price), and the candles that ended at or before the bar's start and
        #    are still open (only when bars are missing: gap candles).
        # READING: the decisions of candles closed at this cut (missing bars) have T = the
        # candle's end and may fill at this bar's open (step 2), like event mode.
        self._start_event("candles", ts)
        for tf in self.timeframes:
            self.builders[tf].add(ts, o, h, l, c, vol)
        slip = self.config.slippage_bps / 10_000.0
        for v in range(self.n):
            acc = self.accounts[v]
            # 2. Eligible pending orders fill at the bar's open, with slippage.
            pending = acc.pending
            if pending is not None and ts >= pending.eligible_ts:
                acc.pending = None
                if pending.kind == "entry":
                    self._open(v, ts, pending.side, o * (1.0 + pending.side * slip))
                elif acc.position is not None:
                    side = acc.position.side
                    self._close(v, ts, o * (1.0 - side * slip), "signal")
            # 3. Exits.
            if acc.position is not None:
                self._exits_on_bar(v, ts, o, h, l)
            # 4. Trailing from the bar's favourable extreme, effective from the next bar.
            pos = acc.position
            if pos is not None and self.config.trailing:
                self._trail(v, h if pos.side > 0 else l)
        # 5. Equity marked along the path open, adverse extreme, favourable extreme, close.
        # READING: a position closed in step 3 is flat here, so its marks are its cash; a
        # position entered at this bar's open is marked from the open.
        for v in range(self.n):
            pos = self.accounts[v].position
            short = pos is not None and pos.side < 0
            path = (o, h, l, c) if short else (o, l, h, c)
            for price in path:
                self._mark(v, price)
        self.last_price = c
        # 6. The bar is complete: everything due by its end happens now (funding and
        #    samples at its close, candles of every timeframe that ends with it); the next
        #    bar's own cut then only covers missing bars.
        self._cuts(ts, ts + self.bar_ns)
        self.prev_ts = ts + self.bar_ns
        self.last_bar_ts = ts

    def _exits_on_bar(self, v: int, ts: int, o: float, h: float, l: float) -> None:
        cfg = self.config
        pos = self.accounts[v].position
        s = pos.side
        slip = cfg.slippage_bps / 10_000.0
        # Max hold, at the open (market: slippage as for a trade event).
        if ts >= pos.expiry:
            self._close(v, ts, o * (1.0 - s * slip), "max_hold")
            return
        trigger, liq_first = self._stop_trigger(pos)
        reason = "trailing_stop" if pos.armed else "stop_loss"
        # A gap through the stop at the open exits at the open.
        # READING: "at the open" is a market exit, with slippage; the stop trigger includes
        # the liquidation price as in event mode (max(stop, liquidation) for a long).
        if (s > 0 and o <= trigger) or (s < 0 and o >= trigger):
            self._close(v, ts, o * (1.0 - s * slip), reason, liquidated=liq_first)
            return
        tp = pos.take_profit
        # A gap through the take-profit exits at the open.
        # A resting limit take-profit that the open gaps through fills at the (better)
        # open, with the maker fee; a market one exits at the open with slippage.
        if (s > 0 and o >= tp) or (s < 0 and o <= tp):
            if self.config.take_profit_order == "limit":
                self._close(v, ts, o, "take_profit", maker=True)
            else:
                self._take_profit(v, ts, o * (1.0 - s * slip))
            return
        # A bar whose range reaches the stop exits at the stop price, with slippage; the
        # stop wins when the bar also reaches the take-profit.
        if (s > 0 and l <= trigger) or (s < 0 and h >= trigger):
            # READING: when the liquidation price is the trigger, the position is liquidated
            # (exit recorded at the liquidation price); otherwise the fill is the stop price
            # with slippage, which is itself liquidated if at or beyond the liquidation price.
            self._close(v, ts, pos.stop * (1.0 - s * slip), reason, liquidated=liq_first)
            return
        # Only then a bar that reaches the take-profit exits at the take-profit price.
        # READING: with "market" the take-profit is a taker market exit triggered at the
        # take-profit price, so it gets the adverse slippage like the stop does (the spec
        # writes "(with slippage)" only for the stop); with "limit": exactly the price, maker.
        if (s > 0 and h >= tp) or (s < 0 and l <= tp):
            self._take_profit(v, ts, tp * (1.0 - s * slip))
            return

    # ------------------------------------------------------------------------------- cuts

    def _start_event(self, mode: str, ts: int) -> None:
        if self.mode is None:
            self.mode = mode
        elif self.mode != mode:
            raise ValueError("an engine is fed either events or candles, not both")
        if self.prev_ts is not None:
            if ts < self.prev_ts:
                raise ValueError(f"timestamps must not decrease: {ts} < {self.prev_ts}")
            self._cuts(self.prev_ts, ts)

    def _cuts(self, prev: int, ts: int) -> None:
        # READING: the first event has no predecessor, so no cut happens before it (no
        # sample, funding or candle boundary before the first event is ever crossed).
        # 1. Funding, once per funding time crossed, when a rate has been supplied.
        if self.funding_rate is not None:
            for _ in _boundaries(prev, ts, FUNDING_PERIOD_NS):
                self._funding(self.funding_rate)
        # 2. Equity samples, once per sample boundary crossed; all of them see the equity
        #    after the last event before ts (and, READING, after the funding of this same
        #    cut, since funding comes first in the spec's order, even for a funding time
        #    that lies after a sample boundary inside a gap).
        for _ in _boundaries(prev, ts, self.config.equity_sample_ns):
            for v in range(self.n):
                self.accounts[v].samples.append(self._equity(v))
        # 3. Candle closes, timeframe by timeframe, shortest first.
        self._close_candles(ts)

    def _funding(self, rate: float) -> None:
        for v in range(self.n):
            pos = self.accounts[v].position
            if pos is None:
                continue
            mult = self.config.multiplier
            payment = pos.side * rate * pos.lots * mult * self.last_price
            self.accounts[v].cash -= payment
            pos.funding += payment

    def _close_candles(self, t: int) -> None:
        book = self.book if self.mode == "events" else 0.0
        for tf in self.timeframes:
            for start, _o, h, l, c, vol in self.builders[tf].close_until(t):
                rsi, subs = self.signals[tf].close(h, l, c, vol, book)
                end = start + tf
                for v in range(self.n):
                    if self.tf_of[v] == tf:
                        self._decide(v, end, rsi, subs)

    def _decide(self, v: int, t_end: int, rsi: float, subs: list[float]) -> None:
        acc = self.accounts[v]
        if acc.pending is not None:
            return  # a variant with a pending order decides nothing
        p = self.params[v]
        _score, confidence, signal = score_variant(
            subs, rsi, self.weights[v], p["rsi_oversold"], p["rsi_overbought"],
            p["strong_buy"], p["buy"], p["sell"], p["strong_sell"],
        )
        if confidence < p["min_confidence"] - 1e-9:  # the tolerance of docs/signal-model.md
            return
        eligible = t_end + self.config.latency_ns
        longs = self.config.sides in ("both", "long")
        shorts = self.config.sides in ("both", "short")
        pos = acc.position
        if pos is None:
            if signal == STRONG_BUY and longs:
                acc.pending = _Pending("entry", 1, eligible)
            elif signal == STRONG_SELL and shorts:
                acc.pending = _Pending("entry", -1, eligible)
        elif (pos.side > 0 and signal == STRONG_SELL) or (pos.side < 0 and signal == STRONG_BUY):
            acc.pending = _Pending("exit", pos.side, eligible)

    # ------------------------------------------------------------------- event processing

    def _market_price(self, order_side: int, trade_price: float | None) -> float:
        """A market order's fill: at the best ask (buy) or bid (sell) once a quote has been
        seen, else at the trade price moved against the order by the slippage."""
        if self.bid is not None:
            return self.ask if order_side > 0 else self.bid
        bps = self.config.slippage_bps
        if order_side > 0:
            return trade_price * (1.0 + bps / 10_000.0)
        return trade_price * (1.0 - bps / 10_000.0)

    def _fill_pending(self, v: int, ts: int, trade_price: float | None) -> None:
        acc = self.accounts[v]
        pending = acc.pending
        if pending is None or ts < pending.eligible_ts:
            return
        acc.pending = None
        if pending.kind == "entry":
            self._open(v, ts, pending.side, self._market_price(pending.side, trade_price))
        elif acc.position is not None:
            side = acc.position.side
            self._close(v, ts, self._market_price(-side, trade_price), "signal")

    def _exits_on_trade(self, v: int, ts: int, p: float) -> None:
        pos = self.accounts[v].position
        s = pos.side
        # 1. Max hold.
        if ts >= pos.expiry:
            self._close(v, ts, self._market_price(-s, p), "max_hold")
            return
        # 2. Stop, including liquidation.
        trigger, liq_first = self._stop_trigger(pos)
        if (s > 0 and p <= trigger) or (s < 0 and p >= trigger):
            reason = "trailing_stop" if pos.armed else "stop_loss"
            self._close(v, ts, self._market_price(-s, p), reason, liquidated=liq_first)
            return
        # 3. Take-profit.
        tp = pos.take_profit
        if (s > 0 and p >= tp) or (s < 0 and p <= tp):
            self._take_profit(v, ts, self._market_price(-s, p))
            return
        # 4. Trailing; the stop check is not repeated on this event.
        if self.config.trailing:
            self._trail(v, p)

    @staticmethod
    def _stop_trigger(pos: _Position) -> tuple[float, bool]:
        """The stop's trigger price and whether it is the liquidation price.

        READING: "the liquidation price is reached before the stop (it is the tighter
        trigger)" is taken as: liquidation at or inside the stop (a long's liquidation
        >= its stop); on a tie the liquidation wins (``max(stop, liquidation)`` is then
        the liquidation price as much as the stop)."""
        if pos.side > 0:
            return max(pos.stop, pos.liquidation), pos.liquidation >= pos.stop
        return min(pos.stop, pos.liquidation), pos.liquidation <= pos.stop

    def _take_profit(self, v: int, ts: int, market_fill: float) -> None:
        pos = self.accounts[v].position
        if self.config.take_profit_order == "limit":
            self._close(v, ts, pos.take_profit, "take_profit", maker=True)
        else:
            self._close(v, ts, market_fill, "take_profit")

    def _trail(self, v: int, price: float) -> None:
        p = self.params[v]
        pos = self.accounts[v].position
        s = pos.side
        lev = p["leverage"]
        step = p["trailing_step"]
        roi = s * (price - pos.entry_price) / pos.entry_price * lev * 100.0
        if not pos.armed:
            first = pos.be_roi + p["break_even_buffer"]
            if roi < first:
                return
            pos.armed = True
            pos.anchor = first
            pos.stop_roi = pos.be_roi
            self._tighten(pos, pos.break_even)
        # READING: on the event that arms the stop, the further steps the same ROI already
        # covers are taken at once as well ("k steps at once").
        if roi >= pos.anchor + step:
            k = math.floor((roi - pos.anchor) / step)
            # READING: k is computed literally in floats; a quotient that rounds below the
            # next integer (roi exactly on a level) moves one step less.
            if k >= 1:
                pos.anchor += k * step
                pos.stop_roi += k * p["trailing_move"]
                self._tighten(pos, pos.entry_price * (1.0 + s * pos.stop_roi / lev / 100.0))

    @staticmethod
    def _tighten(pos: _Position, new_stop: float) -> None:
        # The stop only ever tightens: a long's never goes down, a short's never up.
        pos.stop = max(pos.stop, new_stop) if pos.side > 0 else min(pos.stop, new_stop)

    # ---------------------------------------------------------------- opening and closing

    def _open(self, v: int, ts: int, s: int, price: float) -> None:
        cfg = self.config
        p = self.params[v]
        acc = self.accounts[v]
        lev = p["leverage"]
        if acc.cash <= 0.0:
            acc.entries_skipped += 1
            return
        lots = float(
            lots_for_margin_nb(
                acc.cash, p["position_size_pct"], lev, price, cfg.multiplier, cfg.lot_size
            )
        )
        if lots <= 0.0:
            acc.entries_skipped += 1
            return
        notional = lots * cfg.multiplier * price
        pos = _Position()
        pos.side = s
        pos.entry_ts = ts
        pos.entry_price = price
        pos.lots = lots
        pos.margin = lots * cfg.multiplier * price / lev
        pos.entry_fee = cfg.taker_fee * notional
        acc.cash -= pos.entry_fee
        pos.stop = price * (1.0 - s * p["stop_loss_roi"] / lev / 100.0)
        pos.take_profit = price * (1.0 + s * p["take_profit_roi"] / lev / 100.0)
        pos.liquidation = price * (1.0 - s / lev + s * cfg.maint_margin_rate)
        taker = cfg.taker_fee
        if s > 0:
            pos.break_even = price * (1.0 + taker) / (1.0 - taker)
        else:
            pos.break_even = price * (1.0 - taker) / (1.0 + taker)
        pos.be_roi = s * (pos.break_even - price) / price * lev * 100.0
        # READING: the expiry is computed in exact integer nanoseconds
        # (ts + round(max_hold_s * 1e9)), not in float64, which cannot hold an epoch
        # timestamp in nanoseconds exactly.
        pos.expiry = ts + round(p["max_hold_s"] * 1e9)
        acc.position = pos
        self.fills.append(
            {"variant": v, "ts": ts, "side": s, "price": price, "lots": lots,
             "fee": pos.entry_fee, "entry": True, "maker": False}
        )

    def _close(self, v: int, ts: int, fill_price: float, reason: str, maker: bool = False,
               liquidated: bool = False) -> None:
        cfg = self.config
        acc = self.accounts[v]
        pos = acc.position
        s = pos.side
        qty = pos.lots * cfg.multiplier
        # Liquidation: the liquidation price is the trigger, or the exit's fill is at or
        # beyond it. READING: this applies to every exit (max hold and signal exits too).
        beyond = fill_price <= pos.liquidation if s > 0 else fill_price >= pos.liquidation
        if liquidated or beyond:
            exit_price = pos.liquidation
            gross = -pos.margin
            exit_fee = 0.0
            reason = "liquidation"
            maker = False
        else:
            exit_price = fill_price
            gross = s * (exit_price - pos.entry_price) * qty
            exit_fee = (cfg.maker_fee if maker else cfg.taker_fee) * qty * exit_price
        acc.cash += gross - exit_fee
        net = gross - pos.entry_fee - exit_fee - pos.funding
        # roi_pct is gross PnL over margin in percent: -100 % for a liquidation.
        roi = gross / pos.margin * 100.0
        record = {
            "variant": v, "side": s, "entry_ts": pos.entry_ts, "exit_ts": ts,
            "entry_price": pos.entry_price, "exit_price": exit_price, "lots": pos.lots,
            "entry_fee": pos.entry_fee, "exit_fee": exit_fee, "funding": pos.funding,
            "gross_pnl": gross, "net_pnl": net, "net_return": net / pos.margin,
            "roi_pct": roi, "reason": reason,
        }
        self.trades.append(record)
        acc.closed.append(record)
        acc.exposure_closed += ts - pos.entry_ts
        self.fills.append(
            {"variant": v, "ts": ts, "side": -s, "price": exit_price, "lots": pos.lots,
             "fee": exit_fee, "entry": False, "maker": maker}
        )
        acc.position = None
        # If the position was closed by another exit first, a pending exit is cancelled.
        if acc.pending is not None and acc.pending.kind == "exit":
            acc.pending = None

    # ---------------------------------------------------------------------------- metrics

    def _unrealised(self, v: int, price: float | None) -> float:
        pos = self.accounts[v].position
        if pos is None or price is None:
            return 0.0
        return pos.side * (price - pos.entry_price) * pos.lots * self.config.multiplier

    def _equity(self, v: int) -> float:
        return self.accounts[v].cash + self._unrealised(v, self.last_price)

    def _mark(self, v: int, price: float) -> None:
        acc = self.accounts[v]
        equity = acc.cash + self._unrealised(v, price)
        acc.peak = max(acc.peak, equity)
        acc.max_drawdown = max(acc.max_drawdown, (acc.peak - equity) / acc.peak)

    def position(self, v: int) -> dict | None:
        """A snapshot of variant ``v``'s open position (None when flat), for tests."""
        pos = self.accounts[v].position
        if pos is None:
            return None
        return dict(vars(pos))

    def pending(self, v: int) -> dict | None:
        """A snapshot of variant ``v``'s pending order (None when there is none)."""
        pending = self.accounts[v].pending
        return None if pending is None else dict(vars(pending))

    def metrics(self, v: int) -> dict:
        acc = self.accounts[v]
        closed = acc.closed
        n = len(closed)
        net = [t["net_pnl"] for t in closed]

        def longest(flags):
            best = run = 0
            for flag in flags:
                run = run + 1 if flag else 0
                best = max(best, run)
            return best

        returns = [Fraction(t["net_return"]) for t in closed]
        mean = sum(returns, Fraction(0)) / n if n else None
        var = (
            sum(((r - mean) ** 2 for r in returns), Fraction(0)) / (n - 1) if n > 1 else None
        )
        pos = acc.position
        exposure = acc.exposure_closed
        if pos is not None:
            # READING: an open position counts up to the last event's time (in candle mode
            # the last bar's start, not its end).
            now = self.last_bar_ts if self.mode == "candles" else self.prev_ts
            exposure += now - pos.entry_ts
        return {
            "trades": n,
            "wins": sum(1 for x in net if x > 0),
            "losses": sum(1 for x in net if x < 0),
            "net_pnl": math.fsum(net),
            "gross_pnl": math.fsum(t["gross_pnl"] for t in closed),
            # READING: fees and funding of closed trades only (so that net_pnl = gross_pnl
            # - fees - funding); an open position's entry fee and funding are in cash.
            "fees": math.fsum(t["entry_fee"] + t["exit_fee"] for t in closed),
            "funding": math.fsum(t["funding"] for t in closed),
            "cash": acc.cash,
            "equity": self._equity(v),
            "max_drawdown": acc.max_drawdown,
            "mean_return": float(mean) if n else math.nan,
            "var_return": float(var) if n > 1 else math.nan,
            "sharpe_annual": self._sharpe(acc.samples),
            "exposure_ns": exposure,
            "entries_skipped": acc.entries_skipped,
            "max_win_streak": longest(x > 0 for x in net),
            "max_loss_streak": longest(x < 0 for x in net),
            "side": 0 if pos is None else pos.side,
        }

    def _sharpe(self, samples: list[float]) -> float:
        # Simple returns between consecutive samples; mean over sample standard deviation
        # (READING: ddof = 1), times sqrt(year / equity_sample_ns).
        # The starting capital is sample 0, so n samples give n returns.
        samples = [self.config.capital, *samples]
        # Two-pass with correctly rounded sums (math.fsum): exact Fractions of thousands of
        # samples grow denominators without bound and take minutes.
        returns = [samples[i] / samples[i - 1] - 1.0 for i in range(1, len(samples))]
        m = len(returns)
        if m < 2:
            return math.nan
        mean = math.fsum(returns) / m
        var = math.fsum((r - mean) ** 2 for r in returns) / (m - 1)
        if var == 0:
            return math.nan
        annual = math.sqrt(YEAR_NS / self.config.equity_sample_ns)
        return mean / math.sqrt(var) * annual
