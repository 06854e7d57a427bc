"""Matching of the simulated account's orders: fills, stop triggers and liquidation.

Owns everything that moves an order or a position once the order is accepted: taking the
other traders' liquidity, resting and self-trade prevention, maker fills by market prints
and by ladders that move through a resting order, reduce-only trimming, cancels, stop
triggers, fees and isolated liquidation. :class:`Matcher` works on the state the
exchange shares with it (symbol states, open orders, the account) and publishes what it
does through a :class:`~liveopt.sim.publish.Publisher`.
"""

from __future__ import annotations

from collections.abc import Mapping

from liveopt.sim.book import Side
from liveopt.sim.events import SimFill
from liveopt.sim.market import MarketBook, MarketTrade
from liveopt.sim.orders import Order
from liveopt.sim.positions import (
    apply_to_position,
    liquidation_price,
    margin_check,
    mark,
    position_margin,
)
from liveopt.sim.publish import Publisher
from liveopt.sim.state import Account, Position, SymbolState

__all__ = ["Matcher"]


class Matcher:
    """Fills, cancels, triggers and liquidates against shared exchange state.

    Parameters
    ----------
    states : mapping of str to SymbolState
        The listed symbols.
    open_orders : dict of str to Order
        Open orders only (resting, untriggered stops), so matching never scans history;
        an order leaves it when done.
    account : Account
        Wallet, totals and fill log the fills change.
    publisher : Publisher
        Where trades, level changes and BBO changes go.
    """

    def __init__(self, states: Mapping[str, SymbolState], open_orders: dict[str, Order],
                 account: Account, publisher: Publisher) -> None:
        self._states = states
        self._open = open_orders
        self._account = account
        self._publisher = publisher

    # ------------------------------------------------------------------ margin
    def margin_check(self, state: SymbolState, order: Order) -> tuple[float, float]:
        """Margin the order's opening part needs and what is available (sets
        ``order.margin_lots``)."""
        return margin_check(state, order, self._account.wallet, self._states,
                            self._open.values())

    def _margin_available(self, state: SymbolState, order: Order) -> bool:
        required, available = self.margin_check(state, order)
        return required <= available + 1e-9

    # ------------------------------------------------------------------ matching
    def execute(self, state: SymbolState, order: Order, ts_ns: int) -> None:
        """Make an order active: take liquidity, then rest or cancel the remainder."""
        # An order that becomes active: take liquidity (market, or limit up to its price),
        # then rest the remainder (GTC limit) or cancel it.
        if order.reduce_only:
            self._trim_reduce_only(state, order, ts_ns)
            if order.status != "open":
                return
        opposite: Side = "sell" if order.side == "buy" else "buy"
        if order.type == "limit" and order.post_only:
            best = state.book.best_market_price(opposite)
            if best is not None and self._crosses(order, best):
                self.finish(order, ts_ns, cancelled=True)
                return
        publisher = self._publisher
        for price, size in state.book.market_levels(opposite):
            if order.remaining <= 0 or order.status != "open":
                break
            if order.type == "limit" and not self._crosses(order, price):
                break
            take = min(size, order.remaining)
            if order.reduce_only:
                take = min(take, self._reducible(state, order))
                if take <= 0:
                    break
            publisher.changes(order.symbol, state,
                              state.book.take_market(opposite, price, take), ts_ns)
            self._fill(state, order, price, take, "taker", ts_ns)
            publisher.trade(order.symbol, state, price, take, order.side, order.id,
                            publisher.next_market_order_id(), ts_ns)
        if order.status != "open" or order.remaining <= 0:
            return
        if order.reduce_only and self._reducible(state, order) == 0:
            self.finish(order, ts_ns, cancelled=True)
            return
        if order.type == "market" or order.time_in_force == "IOC":
            self.finish(order, ts_ns, cancelled=True)
            return
        assert order.price_ticks is not None
        own_opposite = [o for o in self._resting(order.symbol, opposite)
                        if self._crosses(order, o.price_ticks or 0)]
        if own_opposite:
            # Self-trade prevention, cancel newest: resting would cross the account's own
            # opposite order, which the simulator never matches against itself.
            self.finish(order, ts_ns, cancelled=True)
            return
        order.resting = order.remaining
        publisher.changes(order.symbol, state,
                          state.book.add_user(order.side, order.price_ticks, order.resting),
                          ts_ns)

    @staticmethod
    def _crosses(order: Order, price_ticks: int) -> bool:
        assert order.price_ticks is not None
        if order.side == "buy":
            return price_ticks <= order.price_ticks
        return price_ticks >= order.price_ticks

    @staticmethod
    def _reducible(state: SymbolState, order: Order) -> int:
        qty = state.position.qty
        if (order.side == "sell" and qty > 0) or (order.side == "buy" and qty < 0):
            return abs(qty)
        return 0

    def _trim_reduce_only(self, state: SymbolState, order: Order, ts_ns: int) -> None:
        reducible = self._reducible(state, order)
        if order.close_order:
            # closeOrder closes whatever the position is when the order becomes active.
            if reducible == 0:
                self.finish(order, ts_ns, cancelled=True)
                return
            order.size = order.filled + reducible
            return
        if reducible == 0:
            self.finish(order, ts_ns, cancelled=True)
        elif order.remaining > reducible:
            order.size = order.filled + reducible

    def _resting(self, symbol: str, side: Side) -> list[Order]:
        return sorted(
            (o for o in self._open.values()
             if o.symbol == symbol and o.side == side and o.resting > 0),
            key=lambda o: ((-(o.price_ticks or 0) if side == "buy" else (o.price_ticks or 0)),
                           o.priority),
        )

    def _fill_resting(self, state: SymbolState, order: Order, size: int, ts_ns: int) -> int:
        # A maker fill of a resting order at its own price; reduce-only orders are trimmed.
        assert order.price_ticks is not None
        if order.reduce_only:
            size = min(size, self._reducible(state, order))
        if size > 0:
            order.resting -= size
            self._publisher.changes(
                order.symbol, state, state.book.remove_user(order.side, order.price_ticks, size),
                ts_ns)
            self._fill(state, order, order.price_ticks, size, "maker", ts_ns)
        if order.status == "open" and order.reduce_only and self._reducible(state, order) == 0:
            self.cancel(order, ts_ns)
        return size

    def _fill(self, state: SymbolState, order: Order, price_ticks: int, size: int,
              liquidity: str, ts_ns: int) -> None:
        spec = state.spec
        account = self._account
        price = state.grid.to_float(price_ticks)
        notional = price * size * spec.multiplier
        rate = spec.maker_fee_rate if liquidity == "maker" else spec.taker_fee_rate
        fee = notional * rate
        realised = apply_to_position(state, order.side, price, size, order.leverage, ts_ns)
        pos = state.position
        pos.fees += fee
        account.wallet += realised - fee
        account.total_fees += fee
        account.total_realised += realised
        order.filled += size
        order.filled_value += notional
        order.updated_ns = ts_ns
        if order.remaining <= 0:
            self.finish(order, ts_ns, cancelled=False)
        account.fills.append(SimFill(
            symbol=order.symbol, order_id=order.id, side=order.side, price=price, size=size,
            liquidity=liquidity, fee=fee, realised_pnl=realised, ts_ns=ts_ns))

    def finish(self, order: Order, ts_ns: int, *, cancelled: bool) -> None:
        """Mark an order done (filled or cancelled); a done order is left alone."""
        if order.status == "done":
            return
        order.status = "done"
        self._open.pop(order.id, None)
        order.cancelled = cancelled
        order.updated_ns = ts_ns
        order.end_ns = ts_ns

    def cancel(self, order: Order, ts_ns: int) -> None:
        """Cancel an order, taking its resting lots out of the book."""
        if order.resting > 0 and order.price_ticks is not None:
            state = self._states[order.symbol]
            changes = state.book.remove_user(order.side, order.price_ticks, order.resting)
            order.resting = 0
            self._publisher.changes(order.symbol, state, changes, ts_ns)
        self.finish(order, ts_ns, cancelled=True)

    # ------------------------------------------------------------------ market events
    def on_market_trade(self, symbol: str, state: SymbolState, trade: MarketTrade) -> None:
        """A print of the other traders: publish it and fill the resting orders it crosses."""
        # Publish the print, then fill the account's resting orders it crosses: a sell
        # print at P fills resting buys priced >= P (a buy print: sells <= P), best price
        # then time first, up to the print's size, at each order's own price (maker).
        publisher = self._publisher
        publisher.trade(symbol, state, trade.price_ticks, trade.size, trade.side,
                        publisher.next_market_order_id(), publisher.next_market_order_id(),
                        trade.ts_ns)
        maker_side: Side = "buy" if trade.side == "sell" else "sell"
        left = trade.size
        for order in self._resting(symbol, maker_side):
            if left <= 0:
                break
            assert order.price_ticks is not None
            crossed = (order.price_ticks >= trade.price_ticks if maker_side == "buy"
                       else order.price_ticks <= trade.price_ticks)
            if not crossed:
                break
            left -= self._fill_resting(state, order, min(left, order.resting), trade.ts_ns)
        self.after_change(symbol, state, trade.ts_ns)

    def on_market_book(self, symbol: str, state: SymbolState, ladder: MarketBook) -> None:
        """A new ladder of the other traders: fill what it moves through, then publish it."""
        # Resting orders the new ladder moves through are filled completely first (the
        # other traders took them), so the published book is never crossed.
        ts_ns = ladder.ts_ns
        new_best_ask = ladder.asks[0][0] if ladder.asks else None
        new_best_bid = ladder.bids[0][0] if ladder.bids else None
        for order in self._resting(symbol, "buy"):
            if new_best_ask is None or (order.price_ticks or 0) < new_best_ask:
                break
            self._sweep(symbol, state, order, ts_ns)
        for order in self._resting(symbol, "sell"):
            if new_best_bid is None or (order.price_ticks or 0) > new_best_bid:
                break
            self._sweep(symbol, state, order, ts_ns)
        state.book_ts_ns = ts_ns
        self._publisher.changes(symbol, state,
                                state.book.replace_market(ladder.bids, ladder.asks), ts_ns)
        self.after_change(symbol, state, ts_ns)

    def _sweep(self, symbol: str, state: SymbolState, order: Order, ts_ns: int) -> None:
        assert order.price_ticks is not None
        size = self._fill_resting(state, order, order.resting, ts_ns)
        if size > 0:
            publisher = self._publisher
            taker: Side = "sell" if order.side == "buy" else "buy"
            publisher.trade(symbol, state, order.price_ticks, size, taker,
                            publisher.next_market_order_id(), order.id, ts_ns)

    def after_change(self, symbol: str, state: SymbolState, ts_ns: int) -> None:
        """Re-evaluate stops, liquidation, reduce-only orders and the BBO of a symbol."""
        # Stops, liquidation and the BBO are re-evaluated after every market event and
        # every account action; a triggered stop can move prices and trigger others.
        for _ in range(100):
            if not self.check_stops(symbol, state, ts_ns, publish=False):
                break
        self._check_liquidation(symbol, state, ts_ns)
        # A resting reduce-only order has nothing left to reduce once the position is
        # flat or on its side: it leaves the book instead of waiting for a print.
        for order in list(self._open.values()):
            if (order.symbol == symbol and order.reduce_only and order.resting > 0
                    and self._reducible(state, order) == 0):
                self.cancel(order, ts_ns)
        self._publisher.bbo(symbol, state, ts_ns)

    # ------------------------------------------------------------------ triggers
    def check_stops(self, symbol: str, state: SymbolState, ts_ns: int,
                    publish: bool = True) -> bool:
        """Trigger the symbol's stops whose condition holds; return whether any did."""
        mark_price = mark(state)
        last = (state.grid.to_float(state.last_price_ticks)
                if state.last_price_ticks is not None else mark_price)
        triggered = False
        stops = sorted((o for o in self._open.values()
                        if o.symbol == symbol and o.is_untriggered_stop),
                       key=lambda o: o.priority)
        for order in stops:
            if not order.is_untriggered_stop:
                continue
            assert order.stop_price_ticks is not None
            price = last if order.stop_price_type == "TP" else mark_price
            stop_price = state.grid.to_float(order.stop_price_ticks)
            hit = price >= stop_price if order.stop == "up" else price <= stop_price
            if not hit:
                continue
            triggered = True
            order.stop_triggered = True
            order.updated_ns = ts_ns
            if order.close_order and order.size == 0:
                qty = state.position.qty
                order.side = "sell" if qty > 0 else "buy"
                order.leverage = state.position.leverage
            if not order.reduce_only and not self._margin_available(state, order):
                # Stops freeze no margin while waiting; one that cannot pay when it fires
                # is cancelled, as an order placed then would be refused with 300003.
                self.finish(order, ts_ns, cancelled=True)
                continue
            self.execute(state, order, ts_ns)
        if publish and triggered:
            self.after_change(symbol, state, ts_ns)
        return triggered

    def _check_liquidation(self, symbol: str, state: SymbolState, ts_ns: int) -> None:
        # Isolated liquidation at entry*(1 - 1/lev + mmr) (long) or entry*(1 + 1/lev - mmr)
        # (short), tested on the mark price; the whole position margin is lost and the
        # position is taken over off-book (no public trade, no fee).
        pos = state.position
        if pos.qty == 0:
            return
        mark_price = mark(state)
        liq = liquidation_price(state)
        if (pos.qty > 0 and mark_price > liq) or (pos.qty < 0 and mark_price < liq):
            return
        lost = position_margin(state)
        side = "sell" if pos.qty > 0 else "buy"
        size = abs(pos.qty)
        account = self._account
        account.wallet -= lost
        account.total_realised -= lost
        account.fills.append(SimFill(
            symbol=symbol, order_id="", side=side, price=liq, size=size,
            liquidity="liquidation", fee=0.0, realised_pnl=-lost, ts_ns=ts_ns))
        state.position = Position(leverage=pos.leverage)
        for order in list(self._open.values()):
            if order.symbol == symbol and order.reduce_only and (
                    not order.is_untriggered_stop):
                self.cancel(order, ts_ns)
