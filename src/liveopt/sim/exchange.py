"""The simulated exchange: books, orders, matching, positions, margin and liquidation.

:class:`SimExchange` is pure and deterministic: it performs no I/O, never reads a clock and
never sleeps. The server passes the time (``now_ns``) of every call. Market sources are
run by :meth:`SimExchange.advance`, which returns the public events in order; events caused
by the account's own orders (its trades and the book changes they make) are returned by the
next :meth:`SimExchange.advance` call. See docs/simulator-exchange.md for the rules.

This module is the facade: it owns the account's order registry, order ids and the public
API, and delegates to the modules that own each concern:

* :mod:`liveopt.sim.orders`: the order record, body validation and :class:`SimError`;
* :mod:`liveopt.sim.matching`: fills, cancels, stop triggers and liquidation;
* :mod:`liveopt.sim.positions`: position, margin and liquidation arithmetic;
* :mod:`liveopt.sim.publish`: the public events and their sequences;
* :mod:`liveopt.sim.candles`: candles and klines;
* :mod:`liveopt.sim.views`: the wire structs of contracts, orders, positions, the account;
* :mod:`liveopt.sim.state` and :mod:`liveopt.sim.events`: the records they share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from liveopt.sim import candles, views
from liveopt.sim.book import OrderBook
from liveopt.sim.contracts import ContractSpec
from liveopt.sim.events import (
    BboEvent,
    BookChangeEvent,
    SimEvent,
    SimFill,
    TickerEvent,
    TradeEvent,
)
from liveopt.sim.market import MarketBook, MarketSource, MarketTrade
from liveopt.sim.matching import Matcher
from liveopt.sim.orders import Order, SimError, param_error, validate_order
from liveopt.sim.positions import mark
from liveopt.sim.publish import Publisher, bbo
from liveopt.sim.state import SEQUENCE_BASE, Account, Position, SymbolState, num
from liveopt.sim.wire import (
    AccountOverviewData,
    CandleData,
    ContractData,
    Depth5Data,
    Level2SnapshotData,
    OrderAckData,
    OrderData,
    Page,
    PositionData,
    StopOrderData,
    TickerData,
)
from liveopt.units import NS_PER_MS

__all__ = [
    "BboEvent",
    "BookChangeEvent",
    "SimError",
    "SimEvent",
    "SimExchange",
    "SimFill",
    "TickerEvent",
    "TradeEvent",
]


class SimExchange:
    """A deterministic KuCoin-futures-like exchange for one account (isolated margin).

    Parameters
    ----------
    contracts : dict of str to ContractSpec
        Contract specs of the listed symbols.
    markets : dict of str to MarketSource
        One market source per symbol; each is started at ``start_ns``.
    start_ns : int
        Simulator start time; the first ladders are published at it.
    balance : float
        Initial wallet balance of the account.
    currency : str
        Settle currency of the account.
    """

    def __init__(
        self,
        contracts: Mapping[str, ContractSpec],
        markets: Mapping[str, MarketSource],
        *,
        start_ns: int,
        balance: float = 100_000.0,
        currency: str = "USDT",
    ) -> None:
        missing = sorted(set(markets) - set(contracts))
        if missing:
            raise ValueError(f"markets: no contract spec for {', '.join(missing)}")
        if not balance >= 0:
            raise ValueError(f"balance: must be >= 0, got {balance!r}")
        self.symbols: tuple[str, ...] = tuple(markets)
        self.currency = currency
        self.initial_balance = float(balance)
        self._account = Account(wallet=float(balance))
        self._now_ns = start_ns
        self._states: dict[str, SymbolState] = {}
        for symbol in self.symbols:
            spec = contracts[symbol]
            source = markets[symbol]
            source.start(start_ns)
            self._states[symbol] = SymbolState(
                spec=spec, grid=spec.grid, source=source,
                book=OrderBook(symbol, SEQUENCE_BASE), position=Position(), minutes={},
                book_ts_ns=start_ns, last_ts_ns=start_ns,
            )
        self._orders: dict[str, Order] = {}
        # Open orders only (resting, untriggered stops), so matching never scans history.
        self._open: dict[str, Order] = {}
        self._by_client_oid: dict[str, Order] = {}
        self._order_counter = 0
        self._priority = 0
        self._publisher = Publisher()
        self._matcher = Matcher(self._states, self._open, self._account, self._publisher)
        self._run_markets(start_ns)

    # ------------------------------------------------------------------ time
    def advance(self, now_ns: int) -> list[SimEvent]:
        """Run the market up to ``now_ns`` and return the public events since the last call.

        Market trades fill the account's resting limits they cross, ladders that move
        through a resting order fill it, stop orders trigger on their price, fees are
        charged and positions past their liquidation price are liquidated.
        """
        self._run_markets(now_ns)
        return self._publisher.drain()

    def _run_markets(self, now_ns: int) -> None:
        self._now_ns = max(self._now_ns, now_ns)
        for symbol, state in self._states.items():
            for event in state.source.events_until(now_ns):
                if isinstance(event, MarketTrade):
                    self._matcher.on_market_trade(symbol, state, event)
                elif isinstance(event, MarketBook):
                    self._matcher.on_market_book(symbol, state, event)

    # ------------------------------------------------------------------ public market data
    def _state(self, symbol: str) -> SymbolState:
        state = self._states.get(symbol) if isinstance(symbol, str) else None
        if state is None:
            raise param_error(f"symbol: unknown contract {symbol!r}")
        return state

    def contract(self, symbol: str) -> ContractData:
        """Contract spec plus live market fields (kucoin-protocol.md 3.7)."""
        return views.contract_data(symbol, self._state(symbol), self._now_ns)

    def active_contracts(self) -> list[ContractData]:
        """All listed contracts."""
        return [views.contract_data(s, st, self._now_ns) for s, st in self._states.items()]

    def ticker(self, symbol: str) -> TickerData:
        """Last trade and BBO (``GET /api/v1/ticker``)."""
        state = self._state(symbol)
        bid_px, bid_sz, ask_px, ask_sz = bbo(state)
        grid = state.grid
        last = state.last_price_ticks
        return TickerData(
            sequence=state.ticker_sequence, symbol=symbol, side=state.last_side,
            size=state.last_size, trade_id=state.last_trade_id,
            price=grid.to_str(last) if last is not None else num(mark(state)),
            best_bid_price=grid.to_str(bid_px), best_bid_size=bid_sz,
            best_ask_price=grid.to_str(ask_px), best_ask_size=ask_sz,
            ts=max(state.last_ts_ns, state.book_ts_ns),
        )

    def level2_snapshot(self, symbol: str, depth: int | None = None) -> Level2SnapshotData:
        """Book snapshot whose ``sequence`` is that of the last level change applied."""
        state = self._state(symbol)
        if depth is not None and (isinstance(depth, bool) or depth < 1):
            raise param_error(f"depth: must be a positive int, got {depth!r}")
        grid = state.grid
        book = state.book
        return Level2SnapshotData(
            sequence=book.sequence, symbol=symbol,
            bids=[(grid.to_float(p), s) for p, s in book.levels("buy", depth)],
            asks=[(grid.to_float(p), s) for p, s in book.levels("sell", depth)],
            ts=state.book_ts_ns,
        )

    def depth5(self, symbol: str) -> Depth5Data:
        """Top five levels per side (``/contractMarket/level2Depth5``)."""
        state = self._state(symbol)
        grid = state.grid
        book = state.book
        ms = state.book_ts_ns // NS_PER_MS
        return Depth5Data(
            bids=[(grid.to_str(p), s) for p, s in book.levels("buy", 5)],
            asks=[(grid.to_str(p), s) for p, s in book.levels("sell", 5)],
            sequence=book.sequence, timestamp=ms, ts=ms,
        )

    def candle(self, symbol: str, granularity_min: int, now_ns: int) -> CandleData:
        """The current candle of a granularity (``/contractMarket/limitCandle``)."""
        return candles.current_candle(symbol, self._state(symbol), granularity_min, now_ns)

    def klines(
        self, symbol: str, granularity_min: int, from_ms: int, to_ms: int
    ) -> list[list[float]]:
        """Candles ``[time_ms, open, high, low, close, volume, turnover]`` whose start lies in
        ``[from_ms, to_ms]``; buckets without trades after the first trade repeat the
        previous close with zero volume; at most the last 500 rows."""
        return candles.klines(self._state(symbol), granularity_min, from_ms, to_ms)

    # ------------------------------------------------------------------ account
    def account_overview(self, currency: str | None = None) -> AccountOverviewData:
        """Balances: equity = wallet + unrealised PnL; available = wallet - position margin -
        order margin (isolated margin: unrealised losses stay inside the position)."""
        return views.account_overview(self._account, self._states, self._open.values(),
                                      self.currency, currency)

    @property
    def wallet_balance(self) -> float:
        """Initial balance plus realised PnL minus fees."""
        return self._account.wallet

    @property
    def total_fees(self) -> float:
        """Fees charged so far."""
        return self._account.total_fees

    @property
    def total_realised_pnl(self) -> float:
        """Gross PnL realised so far (liquidations included), before fees."""
        return self._account.total_realised

    def fills(self) -> list[SimFill]:
        """The account's fills (and liquidations) in order."""
        return list(self._account.fills)

    def position(self, symbol: str) -> PositionData:
        """The account's position in a symbol (``isOpen`` false when flat)."""
        return views.position_data(symbol, self._state(symbol), self._now_ns, self.currency)

    def positions(self) -> list[PositionData]:
        """The account's open positions."""
        return [views.position_data(s, st, self._now_ns, self.currency)
                for s, st in self._states.items() if st.position.qty != 0]

    # ------------------------------------------------------------------ orders
    def place_order(self, body: dict[str, Any], now_ns: int) -> OrderAckData:
        """Validate and place an order (``POST /api/v1/orders``); raise :class:`SimError`.

        Market and crossing limit orders execute at once against the other traders'
        liquidity; stop orders wait for their trigger (and trigger at once when the
        condition already holds).
        """
        order = self._validate(body, now_ns)
        self._order_counter += 1
        self._priority += 1
        self._now_ns = max(self._now_ns, now_ns)
        self._orders[order.id] = order
        self._open[order.id] = order
        self._by_client_oid[order.client_oid] = order
        state = self._states[order.symbol]
        if order.stop:
            self._matcher.check_stops(order.symbol, state, now_ns)
        else:
            self._matcher.execute(state, order, now_ns)
            self._matcher.after_change(order.symbol, state, now_ns)
        return OrderAckData(order_id=order.id, client_oid=order.client_oid)

    def test_order(self, body: dict[str, Any], now_ns: int) -> OrderAckData:
        """Validate an order exactly as :meth:`place_order` does, without placing it
        (``POST /api/v1/orders/test``); the returned id is the one it would have had.
        Nothing changes: no order id is consumed."""
        order = self._validate(body, now_ns)
        return OrderAckData(order_id=order.id, client_oid=order.client_oid)

    def _validate(self, body: dict[str, Any], now_ns: int) -> Order:
        # Body checks first (orders.validate_order), the margin check (300003) last.
        # Reads the counters without advancing them; place_order advances them.
        order, state = validate_order(
            body, now_ns, lookup=self._state, taken_client_oids=self._by_client_oid,
            order_number=self._order_counter + 1, priority=self._priority + 1)
        if not order.reduce_only and not order.stop:
            required, available = self._matcher.margin_check(state, order)
            if required > available + 1e-9:
                raise SimError(
                    "300003",
                    f"balance: {required:.4f} {self.currency} of margin needed, "
                    f"{available:.4f} available")
        return order

    def cancel_order(self, order_id: str, now_ns: int) -> dict[str, list[str]]:
        """Cancel an open order or untriggered stop by id; done orders give 100004."""
        order = self._orders.get(order_id)
        if order is None:
            raise SimError("20001", f"orderId: order {order_id!r} does not exist")
        self._cancel_checked(order, now_ns)
        return {"cancelledOrderIds": [order.id]}

    def cancel_by_client_oid(self, symbol: str, client_oid: str, now_ns: int) -> dict[str, str]:
        """Cancel by clientOid; ``symbol`` is required and must match the order's."""
        self._state(symbol)
        order = self._by_client_oid.get(client_oid)
        if order is None or order.symbol != symbol:
            raise SimError(
                "20001", f"clientOid: no order {client_oid!r} for symbol {symbol!r}")
        self._cancel_checked(order, now_ns)
        return {"clientOid": order.client_oid}

    def cancel_all(self, symbol: str, now_ns: int) -> dict[str, list[str]]:
        """Cancel every open non-stop order of a symbol (``DELETE /api/v3/orders``)."""
        state = self._state(symbol)
        cancelled = [
            o.id for o in self._open.values()
            if o.symbol == symbol and not o.is_untriggered_stop
        ]
        for order_id in cancelled:
            self._matcher.cancel(self._orders[order_id], now_ns)
        self._matcher.after_change(symbol, state, now_ns)
        return {"cancelledOrderIds": cancelled}

    def cancel_all_stops(self, symbol: str | None, now_ns: int) -> dict[str, list[str]]:
        """Cancel every untriggered stop order (of one symbol, or all when ``None``)."""
        if symbol is not None:
            self._state(symbol)
        cancelled = [
            o.id for o in self._open.values()
            if o.is_untriggered_stop and (symbol is None or o.symbol == symbol)
        ]
        for order_id in cancelled:
            self._matcher.cancel(self._orders[order_id], now_ns)
        return {"cancelledOrderIds": cancelled}

    def _cancel_checked(self, order: Order, now_ns: int) -> None:
        if order.status != "open":
            raise SimError("100004", f"orderId: order {order.id} is in not cancelable state")
        self._now_ns = max(self._now_ns, now_ns)
        self._matcher.cancel(order, now_ns)
        self._matcher.after_change(order.symbol, self._states[order.symbol], now_ns)

    def list_orders(
        self, symbol: str | None, status: str | None, page: int = 1, page_size: int = 50
    ) -> Page[OrderData]:
        """Orders newest first; ``status`` is ``"active"`` (open, untriggered stops
        excluded), ``"done"`` or ``None`` for both."""
        if symbol is not None:
            self._state(symbol)
        if status not in (None, "active", "done"):
            raise param_error(f"status: must be active or done, got {status!r}")
        chosen = [
            o for o in self._orders.values()
            if (symbol is None or o.symbol == symbol) and not o.is_untriggered_stop
            and (status is None or (status == "active") == (o.status == "open"))
        ]
        return views.page(chosen, page, page_size, self._order_data)

    def list_stop_orders(
        self, symbol: str | None, page: int = 1, page_size: int = 50
    ) -> Page[StopOrderData]:
        """Untriggered stop orders, newest first (``GET /api/v1/stopOrders``)."""
        if symbol is not None:
            self._state(symbol)
        chosen = [o for o in self._open.values()
                  if o.is_untriggered_stop and (symbol is None or o.symbol == symbol)]
        return views.page(chosen, page, page_size, self._stop_order_data)

    def order(self, order_id: str) -> OrderData:
        """One order by id."""
        order = self._orders.get(order_id)
        if order is None:
            raise SimError("20001", f"orderId: order {order_id!r} does not exist")
        return self._order_data(order)

    def order_by_client_oid(self, client_oid: str) -> OrderData:
        """One order by clientOid."""
        order = self._by_client_oid.get(client_oid)
        if order is None:
            raise SimError("20001", f"clientOid: order {client_oid!r} does not exist")
        return self._order_data(order)

    def _order_data(self, order: Order) -> OrderData:
        return views.order_data(order, self._states[order.symbol], self.currency)

    def _stop_order_data(self, order: Order) -> StopOrderData:
        return views.stop_order_data(order, self._states[order.symbol], self.currency)
