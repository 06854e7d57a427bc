"""Mutable per-symbol and per-account records of the simulated exchange.

Owns :class:`SymbolState` (a symbol's contract, market source, book, last trade, stream
sequences and one-minute candles), :class:`Position` (the account's isolated position in a
symbol) and :class:`Account` (wallet, totals and the fill log), plus the time constants and
the number formatting the other simulator modules share. Records only: the arithmetic on
them lives in :mod:`liveopt.sim.positions`, the changes in :mod:`liveopt.sim.matching`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from liveopt.sim.book import OrderBook
from liveopt.sim.contracts import ContractSpec, TickGrid
from liveopt.sim.events import SimFill
from liveopt.sim.market import MarketSource

__all__ = [
    "SEQUENCE_BASE",
    "Account",
    "Position",
    "SymbolState",
    "num",
]

SEQUENCE_BASE = 1_000_000


@dataclass(slots=True)
class Position:
    """The account's isolated position in one symbol (average-entry accounting)."""

    qty: int = 0
    entry: float = 0.0
    leverage: int = 1
    realised_gross: float = 0.0
    fees: float = 0.0
    opening_ns: int = 0


@dataclass(slots=True)
class SymbolState:
    """Everything the exchange tracks about one listed symbol."""

    spec: ContractSpec
    grid: TickGrid
    source: MarketSource
    book: OrderBook
    position: Position
    trade_sequence: int = SEQUENCE_BASE
    ticker_sequence: int = SEQUENCE_BASE
    bbo_sequence: int = SEQUENCE_BASE
    last_price_ticks: int | None = None
    last_side: str = "buy"
    last_size: int = 0
    last_trade_id: str = "0"
    last_ts_ns: int = 0
    book_ts_ns: int = 0
    bbo: tuple[int, int, int, int] | None = None
    # One-minute candles: minute start ns -> [open, high, low, close, volume lots, turnover]
    minutes: dict[int, list[float]] | None = None


@dataclass(slots=True)
class Account:
    """The account's wallet (initial balance + realised PnL - fees), totals and fills."""

    wallet: float
    total_fees: float = 0.0
    total_realised: float = 0.0
    fills: list[SimFill] = field(default_factory=list)


def num(x: float) -> str:
    """A float as KuCoin prints decimals: at most 8 places, no trailing zeros, no ``-0``."""
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
