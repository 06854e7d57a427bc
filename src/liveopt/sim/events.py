"""What the simulated exchange reports: its public events and the account's fills.

Owns the event records :class:`SimExchange <liveopt.sim.exchange.SimExchange>` returns from
``advance`` (trades, BBO changes, v1 tickers, level2 changes) and :class:`SimFill`, the
record of one fill (or liquidation) of the account. Records only: no behaviour.
"""

from __future__ import annotations

import msgspec

from liveopt.sim.wire import ExecutionData, Level2ChangeData, TickerV1Data, TickerV2Data

__all__ = [
    "BboEvent",
    "BookChangeEvent",
    "SimEvent",
    "SimFill",
    "TickerEvent",
    "TradeEvent",
]


class TradeEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A public trade (``/contractMarket/execution``); ``sequence`` equals ``data.sequence``."""

    symbol: str
    sequence: int
    data: ExecutionData


class BboEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A change of the best bid or offer (``/contractMarket/tickerV2``)."""

    symbol: str
    sequence: int
    data: TickerV2Data


class TickerEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A trade with the BBO after it (``/contractMarket/ticker``, v1)."""

    symbol: str
    sequence: int
    data: TickerV1Data


class BookChangeEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One level change (``/contractMarket/level2``); sequences contiguous +1 per symbol."""

    symbol: str
    sequence: int
    data: Level2ChangeData


SimEvent = TradeEvent | BboEvent | TickerEvent | BookChangeEvent


class SimFill(msgspec.Struct, frozen=True, kw_only=True):
    """A fill of the account (or the liquidation of a position).

    Parameters
    ----------
    symbol, order_id, side : str
        What filled; ``side`` is the account's side.
    price : float
        Fill price (the liquidation price for a liquidation).
    size : int
        Lots.
    liquidity : str
        ``"maker"``, ``"taker"`` or ``"liquidation"``.
    fee : float
        Fee charged (0 for a liquidation).
    realised_pnl : float
        Gross PnL realised by the fill (before the fee); a liquidation realises minus the
        position margin.
    ts_ns : int
        When it happened.
    """

    symbol: str
    order_id: str
    side: str
    price: float
    size: int
    liquidity: str
    fee: float
    realised_pnl: float
    ts_ns: int
