"""External oracle: liveopt's candle-mode paper trades equal backtesting.py's on real candles.

One variant trades a one-indicator rule on the 45,031 FTX BTC-PERP 1m candles: its only
non-zero weight is RSI, so its score is the RSI sub-score (``docs/signal-model.md``): +1
when RSI(14) < ``rsi_oversold`` (STRONG_BUY, confidence 1), -1 when RSI(14) >
``rsi_overbought`` (STRONG_SELL); the mild band's +-0.6 never reaches the +-0.65
thresholds. Longs only, no trailing stop, no slippage, taker fee 0.06 % on each side, zero
latency, a max hold that never triggers. The same rule is written as a
``backtesting.Strategy`` for kernc/backtesting.py 0.6.6, and both closed-trade lists must
be equal: trade count, entry and exit times, entry and exit prices (exactly), lots
(exactly), exit reasons, and net PnL to 1e-9 absolute.

The oracle checks EXECUTION (``docs/paper-execution.md``, "Candle mode"), not the
indicator: both sides read the same RSI, ``liveopt.indicators.rsi`` on the closes (the
engine's indicator bank runs the same compiled kernel; see ``docs/indicators.md``).

How backtesting.py is made to follow the specification (read in its source,
``backtesting/backtesting.py``, ``_Broker._process_orders``):

- **Decision at bar i's close, fill at bar i+1's open.** ``Strategy.next`` runs after the
  broker has processed bar i, on data up to bar i; a market order placed there fills at
  the next bar's open (``trade_on_close=False``). ``position.close()`` puts its order at
  the head of the queue, so an opposite-signal exit fills at the next open before any
  stop or take-profit of that bar is looked at (the spec's step 2 before step 3).
- **Stop and take-profit active from the fill bar.** Bracket (``sl=``, ``tp=``) orders of
  a filled market entry are re-processed on the same bar (``reprocess_orders``,
  backtesting.py issue 119).
- **Stop before take-profit.** Stop-loss orders are inserted at the head of the order
  queue and take-profit orders at its tail, so a bar that reaches both closes the trade
  on the stop, and the take-profit order is removed with the trade: the spec's "a bar
  that touches both counts the stop".
- **Fill prices.** A stop fills at ``min(open, stop)`` for a long (the stop price, or the
  open when the bar gaps through it), a take-profit at ``max(open, tp)``: the spec's
  gap-at-the-open rule and range-at-the-level rule.
- **Sizing at the real fill price.** Whole-unit sizes are fixed when the order is placed,
  at bar i's close, but the spec sizes at the fill price P (bar i+1's open) and places
  the stop and take-profit relative to P. The oracle may look ahead (it is an oracle,
  not a strategy): it reads ``open[i+1]`` from the full array to compute
  ``lots = floor(cash * position_size_pct / 100 * leverage / (P * multiplier))`` and the
  levels ``P * (1 -+ roi / leverage / 100)``. backtesting.py checks ``SL < close[i] < TP``
  when an order is placed; when the gap between ``close[i]`` and ``open[i+1]`` puts the
  close outside the levels, the order is placed without brackets and the levels are set
  on it with ``Order._replace`` (a private call, used only for that check).
- **Units.** backtesting.py trades whole units and its PnL is ``size * (exit - entry)``.
  Rather than scaling the prices by the multiplier (what ``lib.FractionalBacktest``
  does), the oracle keeps the prices exact and scales the money: one unit is one
  contract (0.001 BTC) priced in USD per BTC, so one unit of backtesting.py's cash is
  ``multiplier`` USD and the account starts with ``capital / multiplier`` units. Prices,
  and so every stop and take-profit comparison, are then bit-identical to the engine's
  inputs; only cash, PnL and fees are multiplied by ``multiplier`` on the way out.
- **Fees and margin.** ``commission=taker_fee`` is charged on each side's own notional
  (``size * price * rate`` at entry and at exit), and ``Trade.pl`` of a closed trade is
  gross PnL minus both commissions: liveopt's ``net_pnl`` (no funding in candle mode
  without funding rates). ``margin = 1 / leverage``; margin per trade is a small share
  of the cash, so backtesting.py never cancels an entry for lack of margin. When flat,
  backtesting.py's equity is its cash, which moves by ``gross - entry fee - exit fee``
  per trade, as the engine's cash does.

Convention differences (none of them is exercised by these cases, which the test
asserts):

- A bar that opens beyond the take-profit (a gap up) and then also falls to the stop:
  backtesting.py processes the stop order first and fills it at the stop; the spec
  checks the gaps at the open first and exits at the open as a take-profit.
- backtesting.py does not model liquidation; the cases keep the stop far inside the
  liquidation price.
- backtesting.py's last bar: an order placed on it never fills, as in the engine. Trades
  still open at the end are compared on neither side (``finalize_trades=False``).
- Lots: the engine's ``lots_for_margin_nb`` nudges the quotient up by 1e-15 relative
  before the floor (so an exact multiple computed a few ulps low keeps its lot); the
  oracle floors plainly. On these cases every quotient is at least 1e-4 away from a whole
  lot, so the two agree.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest, Strategy

from liveopt.data import Candles, read_candles
from liveopt.engine import REASON_NAMES, Engine, EngineConfig
from liveopt.indicators import rsi
from liveopt.optimizer import WEIGHT_NAMES, VariantParams, generate_variants
from tests.conftest import FTX_BTCPERP_1M

CAPITAL = 10_000.0
TAKER_FEE = 0.0006
MULTIPLIER = 0.001
LOT_SIZE = 1.0
RSI_PERIOD = 14
MAX_HOLD_S = 1e7  # 116 days: longer than the data, so max hold never triggers
NET_PNL_ATOL = 1e-9
REASONS = ("stop_loss", "take_profit", "signal")


@dataclass(frozen=True)
class Case:
    """One parameter set of the rule."""

    name: str
    rsi_oversold: float
    rsi_overbought: float
    stop_loss_roi: float
    take_profit_roi: float
    leverage: int
    position_size_pct: float
    exercises: tuple[str, ...]  # exit reasons and OracleRun counters this case must reach


# On the full month of 1m candles (closed trades: stop / take-profit / signal):
# - origin_defaults (1,432: 1,133 / 299 / 0): stops and take-profits on the fill bar, a
#   gap through the stop at the open, bars reaching both levels;
# - swing (569: 391 / 94 / 84) and wide (265: 179 / 52 / 34) hold long enough for RSI to
#   cross from oversold to overbought (signal exits); swing gaps through a take-profit;
# - tight (4,304: 3,309 / 995 / 0): levels a few dollars wide, so bars that reach both
#   levels are common, and the account loses 87 %, so lots fall from 86 to 13.
CASES = (
    Case(
        "origin_defaults", 30.0, 70.0, 0.5, 2.0, 10, 0.5,
        ("stop_loss", "take_profit", "gap_stops", "both_touched", "bracket_overrides"),
    ),
    Case("swing", 30.0, 70.0, 1.5, 4.0, 5, 1.0, (*REASONS, "gap_take_profits")),
    Case("wide", 25.0, 75.0, 2.0, 5.0, 5, 1.0, REASONS),
    Case(
        "tight", 35.0, 65.0, 0.3, 1.0, 20, 2.0,
        ("stop_loss", "take_profit", "both_touched", "bracket_overrides"),
    ),
)


@cache
def _candles() -> Candles:
    return read_candles(FTX_BTCPERP_1M)


@cache
def _rsi() -> np.ndarray:
    values = rsi(_candles().close, RSI_PERIOD)
    values.setflags(write=False)
    return values


# --------------------------------------------------------------------------- the oracle


class _RsiLongOracle(Strategy):
    """Long on RSI < oversold, exit on RSI > overbought, bracket stop and take-profit.

    Parameters are class attributes (backtesting.py sets them from ``Backtest.run``).
    ``opens`` and ``closes`` are the full arrays: the oracle looks one bar ahead, to size
    the entry and place its levels at the real fill price (see the module docstring).
    """

    rsi_values: np.ndarray = None
    opens: np.ndarray = None
    closes: np.ndarray = None
    rsi_oversold = 30.0
    rsi_overbought = 70.0
    stop_loss_roi = 0.5
    take_profit_roi = 2.0
    leverage = 10
    position_size_pct = 0.5

    def init(self):
        self.signal_exit_bars: set[int] = set()  # bars whose open fills a signal exit
        self.bracket_overrides = 0  # entries whose levels were set with Order._replace
        self.skipped = 0  # entries of zero lots

    def next(self):
        i = len(self.data) - 1
        if i + 1 >= len(self.opens):
            return  # an order placed on the last bar never fills, in the engine neither
        value = self.rsi_values[i]
        if self.position:
            if value > self.rsi_overbought:  # STRONG_SELL while long: exit at next open
                self.position.close()
                self.signal_exit_bars.add(i + 1)
            return
        if self.orders or not value < self.rsi_oversold:  # NaN while warming up: no signal
            return
        price = float(self.opens[i + 1])  # the fill price: a look-ahead only the oracle takes
        cash = self.equity * MULTIPLIER  # flat: equity is cash, in USD
        contracts = cash * self.position_size_pct / 100.0 * self.leverage / (price * MULTIPLIER)
        lots = math.floor(contracts / LOT_SIZE) * LOT_SIZE
        if lots <= 0:
            self.skipped += 1
            return
        stop = price * (1.0 - self.stop_loss_roi / self.leverage / 100.0)
        take = price * (1.0 + self.take_profit_roi / self.leverage / 100.0)
        if stop < self.closes[i] < take:
            self.buy(size=lots, sl=stop, tp=take)
        else:  # backtesting.py would reject levels that do not bracket bar i's close
            order = self.buy(size=lots)
            order._replace(sl_price=stop, tp_price=take)
            self.bracket_overrides += 1


@dataclass(frozen=True)
class TradeList:
    """Closed trades as plain arrays (USD, ns, exit reasons by name), oldest first."""

    entry_ts: np.ndarray
    exit_ts: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    lots: np.ndarray
    entry_fee: np.ndarray
    exit_fee: np.ndarray
    net_pnl: np.ndarray
    reason: np.ndarray

    def __len__(self) -> int:
        return len(self.lots)

    def row(self, k: int) -> dict[str, object]:
        return {name: getattr(self, name)[k].item() for name in self.__dataclass_fields__}

    def reason_counts(self) -> dict[str, int]:
        return {name: int(np.count_nonzero(self.reason == name)) for name in REASONS}


@dataclass(frozen=True)
class OracleRun:
    """backtesting.py's trades and what the run exercised."""

    trades: TradeList
    open_at_end: int  # trades still open after the last bar (compared on neither side)
    bracket_overrides: int  # entries whose levels were set with Order._replace
    skipped: int  # entries of zero lots
    gap_stops: int  # stops filled at a bar's open below the stop
    gap_take_profits: int  # take-profits filled at a bar's open above the level
    both_touched: int  # stops on a bar whose high also reached the take-profit
    gap_conflicts: int  # stops on a bar that opened at or above the take-profit


@cache
def backtesting_trades(case: Case) -> OracleRun:
    """Run the rule in backtesting.py on the FTX candles and return its closed trades
    (cached: both tests read the same run)."""
    candles = _candles()
    frame = pd.DataFrame(
        {
            "Open": candles.open,
            "High": candles.high,
            "Low": candles.low,
            "Close": candles.close,
            "Volume": candles.volume,
        },
        index=pd.DatetimeIndex(candles.ts.astype("datetime64[ns]")),
    )
    backtest = Backtest(
        frame,
        _RsiLongOracle,
        cash=CAPITAL / MULTIPLIER,  # one cash unit is MULTIPLIER USD (module docstring)
        commission=TAKER_FEE,
        margin=1.0 / case.leverage,
        trade_on_close=False,
        hedging=False,
        exclusive_orders=False,
        finalize_trades=False,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Some trades remain open")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*dayofweek")
        stats = backtest.run(
            rsi_values=_rsi(),
            opens=candles.open,
            closes=candles.close,
            rsi_oversold=case.rsi_oversold,
            rsi_overbought=case.rsi_overbought,
            stop_loss_roi=case.stop_loss_roi,
            take_profit_roi=case.take_profit_roi,
            leverage=case.leverage,
            position_size_pct=case.position_size_pct,
        )
    strategy = stats["_strategy"]
    closed = strategy.closed_trades
    entry_bar = np.array([t.entry_bar for t in closed], dtype=np.int64)
    exit_bar = np.array([t.exit_bar for t in closed], dtype=np.int64)
    lots = np.array([t.size for t in closed], dtype=np.float64)
    entry_price = np.array([t.entry_price for t in closed], dtype=np.float64)
    exit_price = np.array([t.exit_price for t in closed], dtype=np.float64)
    stop = np.array([t.sl for t in closed], dtype=np.float64)
    take = np.array([t.tp for t in closed], dtype=np.float64)
    # Trade.pl of a closed trade is size * (exit - entry) minus both commissions, and
    # Trade._commissions is the two commissions, each on its own side's notional.
    net_units = np.array([t.pl for t in closed], dtype=np.float64)
    commissions = np.array([t._commissions for t in closed], dtype=np.float64)
    entry_fee = TAKER_FEE * lots * MULTIPLIER * entry_price
    exit_fee = TAKER_FEE * lots * MULTIPLIER * exit_price
    np.testing.assert_allclose(commissions * MULTIPLIER, entry_fee + exit_fee, rtol=1e-12)
    gross = lots * MULTIPLIER * (exit_price - entry_price)
    np.testing.assert_allclose(
        net_units * MULTIPLIER, gross - entry_fee - exit_fee, rtol=0.0, atol=1e-9
    )

    # backtesting.py records no exit reason: a trade closed on a bar whose open fills a
    # position.close() order is a signal exit, otherwise the fill price tells the stop
    # (at or below its level) from the take-profit (at or above).
    signal = np.isin(exit_bar, np.fromiter(strategy.signal_exit_bars, dtype=np.int64))
    stopped = ~signal & (exit_price <= stop)
    took = ~signal & ~stopped
    assert np.all(exit_price[took] >= take[took])
    assert np.all(exit_price[signal] == candles.open[exit_bar[signal]])
    reason = np.where(signal, "signal", np.where(stopped, "stop_loss", "take_profit"))
    bar_open = candles.open[exit_bar]

    trades = TradeList(
        entry_ts=candles.ts[entry_bar],
        exit_ts=candles.ts[exit_bar],
        entry_price=entry_price,
        exit_price=exit_price,
        lots=lots,
        entry_fee=entry_fee,
        exit_fee=exit_fee,
        net_pnl=net_units * MULTIPLIER,
        reason=reason,
    )
    return OracleRun(
        trades=trades,
        open_at_end=len(strategy.trades),
        bracket_overrides=strategy.bracket_overrides,
        skipped=strategy.skipped,
        gap_stops=int(np.count_nonzero(stopped & (bar_open < stop))),
        gap_take_profits=int(np.count_nonzero(took & (bar_open > take))),
        both_touched=int(np.count_nonzero(stopped & (candles.high[exit_bar] >= take))),
        gap_conflicts=int(np.count_nonzero(stopped & (bar_open >= take))),
    )


# --------------------------------------------------------------------------- liveopt


def liveopt_trades(case: Case) -> TradeList:
    """Run the same rule through ``liveopt.engine.Engine`` in candle mode."""
    params = VariantParams(
        weights=(1.0,) + (0.0,) * (len(WEIGHT_NAMES) - 1),  # RSI only
        rsi_oversold=case.rsi_oversold,
        rsi_overbought=case.rsi_overbought,
        strong_buy=0.65,
        buy=0.4,
        sell=-0.4,
        strong_sell=-0.65,
        min_confidence=0.6,
        stop_loss_roi=case.stop_loss_roi,
        take_profit_roi=case.take_profit_roi,
        break_even_buffer=0.1,
        trailing_step=0.15,
        trailing_move=0.05,
        leverage=case.leverage,
        position_size_pct=case.position_size_pct,
        timeframe="1m",
        max_hold_s=MAX_HOLD_S,
    )
    variants = generate_variants(1, "random", 0, baseline=params)
    assert len(variants) == 1 and variants[0] == params
    config = EngineConfig(
        capital=CAPITAL,
        taker_fee=TAKER_FEE,
        slippage_bps=0.0,
        latency_ns=0,
        multiplier=MULTIPLIER,
        lot_size=LOT_SIZE,
        sides="long",
        take_profit_order="market",
        trailing=False,
        bar_timeframe="1m",
        # backtesting.py has no safety limits: the accounts trade on whatever they lose.
        max_loss_pct=None,
        max_drawdown_pct=None,
        halt_below_pct=None,
        baseline_max_drawdown_pct=None,
    )
    engine = Engine(config, variants)
    candles = _candles()
    engine.on_candles(
        candles.ts, candles.open, candles.high, candles.low, candles.close, candles.volume
    )
    records = engine.drain_fills().trades
    assert np.all(records["variant"] == 0)
    assert np.all(records["side"] == 1)
    assert np.all(records["funding"] == 0.0)
    return TradeList(
        entry_ts=np.asarray(records["entry_ts"], dtype=np.int64),
        exit_ts=np.asarray(records["exit_ts"], dtype=np.int64),
        entry_price=np.asarray(records["entry_price"], dtype=np.float64),
        exit_price=np.asarray(records["exit_price"], dtype=np.float64),
        lots=np.asarray(records["lots"], dtype=np.float64),
        entry_fee=np.asarray(records["entry_fee"], dtype=np.float64),
        exit_fee=np.asarray(records["exit_fee"], dtype=np.float64),
        net_pnl=np.asarray(records["net_pnl"], dtype=np.float64),
        reason=np.array([REASON_NAMES[int(code)] for code in records["reason"]]),
    )


# --------------------------------------------------------------------------- the tests


def _first_difference(expected: TradeList, actual: TradeList) -> str | None:
    """Describe the first trade where the two lists differ, or None if they are equal:
    times, prices, lots and reasons exactly, fees and net PnL to ``NET_PNL_ATOL``."""
    money = {"entry_fee", "exit_fee", "net_pnl"}
    for k in range(min(len(expected), len(actual))):
        want, got = expected.row(k), actual.row(k)
        differs = [
            name
            for name in want
            if (abs(want[name] - got[name]) > NET_PNL_ATOL if name in money
                else want[name] != got[name])
        ]
        if differs:
            return f"trade {k} differs in {differs}:\n  backtesting.py {want}\n  liveopt {got}"
    k = min(len(expected), len(actual))
    if len(expected) == len(actual):
        return None
    side, extra = ("backtesting.py", expected) if len(expected) > k else ("liveopt", actual)
    return f"the first {k} trades are equal; then only {side} has {extra.row(k)}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_oracle_backtesting_exercises_every_exit_path(case):
    # Act
    run = backtesting_trades(case)

    # Assert: enough trades, of the kinds this case is there for, and no bar where the
    # two libraries' conventions differ (module docstring)
    counts = run.trades.reason_counts()
    assert len(run.trades) >= 24, counts
    assert run.skipped == 0
    assert run.gap_conflicts == 0
    for name in case.exercises:
        value = counts[name] if name in counts else getattr(run, name)
        assert value >= 1, (name, counts, run)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_liveopt_closed_trades_equal_backtesting_py(case):
    # Arrange
    expected = backtesting_trades(case).trades

    # Act
    actual = liveopt_trades(case)

    # Assert
    print(f"{case.name}: {len(actual)} trades, exits {actual.reason_counts()}")
    assert _first_difference(expected, actual) is None, _first_difference(expected, actual)
    assert len(actual) == len(expected)
    assert actual.reason_counts() == expected.reason_counts()
