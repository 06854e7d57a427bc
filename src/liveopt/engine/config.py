"""The engine's execution settings: one frozen, validated struct, checked once at the boundary."""

from __future__ import annotations

import math

import msgspec

from liveopt.timeframes import canonical_timeframe
from liveopt.units import NS_PER_SECOND

SIDES: tuple[str, ...] = ("both", "long", "short")
TAKE_PROFIT_ORDERS: tuple[str, ...] = ("market", "limit")


class EngineConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How variants trade on paper; ``docs/paper-execution.md`` is the specification.

    Defaults are the origin's paper settings for KuCoin's XBTUSDTM (origin-system.md B.1.4,
    B.3.5): 10,000 USDT per variant, taker 0.06 %, maker 0.02 %, slippage 0.02 % (2 bps),
    contract multiplier 0.001 with 1-contract lots, maintenance margin 0.5 %.

    Parameters
    ----------
    capital : float
        Paper capital of each variant, in quote currency (> 0).
    taker_fee, maker_fee : float
        Fee rates as fractions of notional, charged on each side's own notional.
    slippage_bps : float
        Adverse move applied to market fills when no quote is known, in basis points.
    latency_ns : int
        Delay between a decision (a candle close) and the earliest event it can fill on.
    multiplier : float
        Contract multiplier: base currency per contract.
    lot_size : float
        Orders are whole multiples of this many contracts.
    maint_margin_rate : float
        Maintenance margin rate, as a fraction (isolated liquidation price).
    sides : {"both", "long", "short"}
        Which entries are allowed.
    take_profit_order : {"market", "limit"}
        ``"market"``: the take-profit triggers a taker exit at the market; ``"limit"``: it
        fills exactly at the take-profit price with the maker fee.
    trailing : bool
        Whether the trailing-stop staircase runs.
    equity_sample_ns : int
        Period of the equity samples behind the annualised Sharpe ratio.
    bar_timeframe : str
        Timeframe of the bars given to ``Engine.on_candles`` (candle mode).
    buffer_events : int
        Events buffered by the single-event calls before the kernel runs on them.
    max_loss_pct : float or None
        A variant whose equity falls more than this below its capital is stopped: no more
        entries, and its position closes at the next price. None turns it off.
    max_drawdown_pct : float or None
        Likewise for a drawdown (from the equity peak, unrealised PnL included).
    halt_below_pct : float or None
        Every variant is stopped (a global halt) when all active variants are more than
        this below their capital (checked on the equity-sample clock).
    baseline_max_drawdown_pct : float or None
        Global halt when the baseline's (variant 0's) drawdown exceeds this.

    Raises
    ------
    ValueError
        Naming the field, on a value outside its meaning (a negative fee, zero capital...).
    """

    capital: float = 10_000.0
    taker_fee: float = 0.0006
    maker_fee: float = 0.0002
    slippage_bps: float = 2.0
    latency_ns: int = 0
    multiplier: float = 0.001
    lot_size: float = 1.0
    maint_margin_rate: float = 0.005
    sides: str = "both"
    take_profit_order: str = "market"
    trailing: bool = True
    equity_sample_ns: int = 60 * NS_PER_SECOND
    bar_timeframe: str = "1m"
    buffer_events: int = 4096
    max_loss_pct: float | None = 5.0
    max_drawdown_pct: float | None = 10.0
    halt_below_pct: float | None = 2.0
    baseline_max_drawdown_pct: float | None = 10.0

    def __post_init__(self) -> None:
        positive = ("capital", "multiplier", "lot_size")
        fractions = ("taker_fee", "maker_fee", "maint_margin_rate")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name}: {value!r} must be a finite number > 0")
        for name in fractions:
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value < 1.0):
                raise ValueError(f"{name}: {value!r} must be a fraction in [0, 1)")
        if not (math.isfinite(self.slippage_bps) and 0.0 <= self.slippage_bps < 10_000.0):
            raise ValueError(f"slippage_bps: {self.slippage_bps!r} must be in [0, 10000)")
        if self.latency_ns < 0:
            raise ValueError(f"latency_ns: {self.latency_ns} must be >= 0")
        if self.equity_sample_ns <= 0:
            raise ValueError(f"equity_sample_ns: {self.equity_sample_ns} must be > 0")
        if self.buffer_events < 1:
            raise ValueError(f"buffer_events: {self.buffer_events} must be >= 1")
        for name in ("max_loss_pct", "max_drawdown_pct", "halt_below_pct",
                     "baseline_max_drawdown_pct"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 < value <= 100.0):
                raise ValueError(f"{name}: {value!r} must be in (0, 100] or None (off)")
        if self.sides not in SIDES:
            raise ValueError(f"sides: {self.sides!r} is not one of {', '.join(SIDES)}")
        if self.take_profit_order not in TAKE_PROFIT_ORDERS:
            raise ValueError(
                f"take_profit_order: {self.take_profit_order!r} is not one of "
                f"{', '.join(TAKE_PROFIT_ORDERS)}"
            )
        if canonical_timeframe(self.bar_timeframe) != self.bar_timeframe:
            raise ValueError(
                f"bar_timeframe: {self.bar_timeframe!r} must be given by its canonical name "
                f"{canonical_timeframe(self.bar_timeframe)!r}"
            )
