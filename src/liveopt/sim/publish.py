"""Public market-data publishing of the simulated exchange.

Owns the queue of public events not yet returned by ``advance`` and the ids of the other
traders' orders: :class:`Publisher` turns a trade, a list of level changes or a moved BBO
into :mod:`liveopt.sim.events` records, advancing the per-symbol stream sequences and
the symbol's last-trade fields (and its one-minute candle) as it goes.
"""

from __future__ import annotations

from liveopt.sim.book import LevelChange
from liveopt.sim.candles import record_candle
from liveopt.sim.events import BboEvent, BookChangeEvent, SimEvent, TickerEvent, TradeEvent
from liveopt.sim.state import SymbolState
from liveopt.sim.wire import ExecutionData, Level2ChangeData, TickerV1Data, TickerV2Data
from liveopt.units import NS_PER_MS

__all__ = ["MARKET_ORDER_ID_BASE", "Publisher", "bbo"]

# The other traders' order ids; a range apart from the account's (orders.USER_ORDER_ID_BASE).
MARKET_ORDER_ID_BASE = 100_000_000_000_000_000


def bbo(state: SymbolState) -> tuple[int, int, int, int]:
    """Best bid price, size, best ask price, size of the published book (0 when empty)."""
    bid = state.book.best("buy")
    ask = state.book.best("sell")
    bid_px, bid_sz = bid if bid is not None else (0, 0)
    ask_px, ask_sz = ask if ask is not None else (0, 0)
    return bid_px, bid_sz, ask_px, ask_sz


class Publisher:
    """Collects the public events in the order they happen."""

    def __init__(self) -> None:
        self.pending: list[SimEvent] = []
        self._market_order_counter = 0

    def drain(self) -> list[SimEvent]:
        """The events since the last call."""
        events, self.pending = self.pending, []
        return events

    def next_market_order_id(self) -> str:
        """A fresh id for an order of the other traders."""
        self._market_order_counter += 1
        return str(MARKET_ORDER_ID_BASE + self._market_order_counter)

    def trade(self, symbol: str, state: SymbolState, price_ticks: int, size: int,
              taker_side: str, taker_id: str, maker_id: str, ts_ns: int) -> None:
        """Publish a trade (execution and v1 ticker) and make it the last trade."""
        state.trade_sequence += 1
        state.ticker_sequence += 1
        trade_id = str(state.trade_sequence)
        price = state.grid.to_str(price_ticks)
        state.last_price_ticks = price_ticks
        state.last_side = taker_side
        state.last_size = size
        state.last_trade_id = trade_id
        state.last_ts_ns = ts_ns
        record_candle(state, price_ticks, size, ts_ns)
        self.pending.append(TradeEvent(
            symbol=symbol, sequence=state.trade_sequence,
            data=ExecutionData(
                symbol=symbol, sequence=state.trade_sequence, side=taker_side, size=size,
                price=price, taker_order_id=taker_id, maker_order_id=maker_id,
                trade_id=trade_id, ts=ts_ns, time=ts_ns)))
        bid_px, bid_sz, ask_px, ask_sz = bbo(state)
        self.pending.append(TickerEvent(
            symbol=symbol, sequence=state.ticker_sequence,
            data=TickerV1Data(
                symbol=symbol, sequence=state.ticker_sequence, side=taker_side, size=size,
                price=price, best_bid_size=bid_sz, best_bid_price=state.grid.to_str(bid_px),
                best_ask_price=state.grid.to_str(ask_px), best_ask_size=ask_sz,
                trade_id=trade_id, ts=ts_ns)))

    def changes(self, symbol: str, state: SymbolState, changes: list[LevelChange],
                ts_ns: int) -> None:
        """Publish level2 changes of the book."""
        grid = state.grid
        ms = ts_ns // NS_PER_MS
        state.book_ts_ns = max(state.book_ts_ns, ts_ns)
        for change in changes:
            self.pending.append(BookChangeEvent(
                symbol=symbol, sequence=change.sequence,
                data=Level2ChangeData(
                    sequence=change.sequence,
                    change=f"{grid.to_str(change.price_ticks)},{change.side},{change.size}",
                    timestamp=ms)))

    def bbo(self, symbol: str, state: SymbolState, ts_ns: int) -> None:
        """Publish the BBO if it changed since last published."""
        current = bbo(state)
        if current == state.bbo:
            return
        state.bbo = current
        state.bbo_sequence += 1
        bid_px, bid_sz, ask_px, ask_sz = current
        self.pending.append(BboEvent(
            symbol=symbol, sequence=state.bbo_sequence,
            data=TickerV2Data(
                symbol=symbol, sequence=state.bbo_sequence, best_bid_size=bid_sz,
                best_bid_price=state.grid.to_str(bid_px), best_ask_price=state.grid.to_str(
                    ask_px), best_ask_size=ask_sz, ts=ts_ns)))
