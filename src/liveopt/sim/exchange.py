"""The simulated exchange: books, orders, matching, positions, margin and liquidation.

:class:`SimExchange` is pure and deterministic: it performs no I/O, never reads a clock and
never sleeps. The server passes the time (``now_ns``) of every call. Market sources are
run by :meth:`SimExchange.advance`, which returns the public events in order; events caused
by the account's own orders (its trades and the book changes they make) are returned by the
next :meth:`SimExchange.advance` call. See docs/simulator-exchange.md for the rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from liveopt.sim.book import LevelChange, OrderBook, Side
from liveopt.sim.contracts import ContractSpec, TickGrid
from liveopt.sim.market import MarketBook, MarketSource, MarketTrade
from liveopt.sim.wire import (
    AccountOverviewData,
    CandleData,
    ContractData,
    Depth5Data,
    ExecutionData,
    Level2ChangeData,
    Level2SnapshotData,
    OrderAckData,
    OrderData,
    Page,
    PositionData,
    StopOrderData,
    TickerData,
    TickerV1Data,
    TickerV2Data,
)

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

_NS_PER_MS = 1_000_000
_NS_PER_MIN = 60_000_000_000
_NS_PER_DAY = 86_400_000_000_000
_FUNDING_INTERVAL_MS = 28_800_000
_MAX_KLINES = 500
_MAX_PAGE_SIZE = 1000
_CLIENT_OID_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")
# Ids look like KuCoin's numeric ids; the account's orders and the other traders' orders
# draw from separate ranges so they never collide.
_USER_ORDER_ID_BASE = 500_000_000_000_000_000
_MARKET_ORDER_ID_BASE = 100_000_000_000_000_000
_SEQUENCE_BASE = 1_000_000


class SimError(Exception):
    """An error reply of the simulated exchange.

    Parameters
    ----------
    code : str
        KuCoin error code, e.g. ``"300018"``.
    message : str
        Human-readable message (``msg`` of the reply); names the offending field.
    http_status : int
        HTTP status the server should use (KuCoin often says 200 with an error code).
    """

    def __init__(self, code: str, message: str, http_status: int = 200) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


def _param_error(message: str) -> SimError:
    return SimError("400100", message, 400)


# ----------------------------------------------------------------------------- events


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


# ----------------------------------------------------------------------------- state


@dataclass(slots=True)
class _Order:
    id: str
    client_oid: str
    symbol: str
    side: Side
    type: str
    price_ticks: int | None
    size: int
    leverage: int
    time_in_force: str
    post_only: bool
    reduce_only: bool
    close_order: bool
    stop: str
    stop_price_ticks: int | None
    stop_price_type: str
    remark: str | None
    created_ns: int
    updated_ns: int
    priority: int
    margin_lots: int = 0  # lots of the order that open exposure and so freeze margin
    filled: int = 0
    filled_value: float = 0.0
    stop_triggered: bool = False
    status: str = "open"
    resting: int = 0  # lots currently in the book
    cancelled: bool = False
    end_ns: int | None = None

    @property
    def remaining(self) -> int:
        return self.size - self.filled

    @property
    def is_untriggered_stop(self) -> bool:
        return bool(self.stop) and not self.stop_triggered and self.status == "open"


@dataclass(slots=True)
class _Position:
    qty: int = 0
    entry: float = 0.0
    leverage: int = 1
    realised_gross: float = 0.0
    fees: float = 0.0
    opening_ns: int = 0


@dataclass(slots=True)
class _SymbolState:
    spec: ContractSpec
    grid: TickGrid
    source: MarketSource
    book: OrderBook
    position: _Position
    trade_sequence: int = _SEQUENCE_BASE
    ticker_sequence: int = _SEQUENCE_BASE
    bbo_sequence: int = _SEQUENCE_BASE
    last_price_ticks: int | None = None
    last_side: str = "buy"
    last_size: int = 0
    last_trade_id: str = "0"
    last_ts_ns: int = 0
    book_ts_ns: int = 0
    bbo: tuple[int, int, int, int] | None = None
    # One-minute candles: minute start ns -> [open, high, low, close, volume lots, turnover]
    minutes: dict[int, list[float]] | None = None


def _num(x: float) -> str:
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


# ----------------------------------------------------------------------------- exchange


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
        self._wallet = float(balance)
        self._now_ns = start_ns
        self._states: dict[str, _SymbolState] = {}
        for symbol in self.symbols:
            spec = contracts[symbol]
            source = markets[symbol]
            source.start(start_ns)
            self._states[symbol] = _SymbolState(
                spec=spec, grid=spec.grid, source=source,
                book=OrderBook(symbol, _SEQUENCE_BASE), position=_Position(), minutes={},
                book_ts_ns=start_ns, last_ts_ns=start_ns,
            )
        self._orders: dict[str, _Order] = {}
        # Open orders only (resting, untriggered stops), so matching never scans history.
        self._open: dict[str, _Order] = {}
        self._by_client_oid: dict[str, _Order] = {}
        self._order_counter = 0
        self._market_order_counter = 0
        self._priority = 0
        self._pending: list[SimEvent] = []
        self._fills: list[SimFill] = []
        self._total_fees = 0.0
        self._total_realised = 0.0
        self._run_markets(start_ns)

    # ------------------------------------------------------------------ time
    def advance(self, now_ns: int) -> list[SimEvent]:
        """Run the market up to ``now_ns`` and return the public events since the last call.

        Market trades fill the account's resting limits they cross, ladders that move
        through a resting order fill it, stop orders trigger on their price, fees are
        charged and positions past their liquidation price are liquidated.
        """
        self._run_markets(now_ns)
        events, self._pending = self._pending, []
        return events

    def _run_markets(self, now_ns: int) -> None:
        self._now_ns = max(self._now_ns, now_ns)
        for symbol, state in self._states.items():
            for event in state.source.events_until(now_ns):
                if isinstance(event, MarketTrade):
                    self._on_market_trade(symbol, state, event)
                elif isinstance(event, MarketBook):
                    self._on_market_book(symbol, state, event)

    # ------------------------------------------------------------------ public market data
    def _state(self, symbol: str) -> _SymbolState:
        state = self._states.get(symbol) if isinstance(symbol, str) else None
        if state is None:
            raise _param_error(f"symbol: unknown contract {symbol!r}")
        return state

    def contract(self, symbol: str) -> ContractData:
        """Contract spec plus live market fields (kucoin-protocol.md 3.7)."""
        return self._contract_data(symbol, self._state(symbol))

    def active_contracts(self) -> list[ContractData]:
        """All listed contracts."""
        return [self._contract_data(s, st) for s, st in self._states.items()]

    def ticker(self, symbol: str) -> TickerData:
        """Last trade and BBO (``GET /api/v1/ticker``)."""
        state = self._state(symbol)
        bid_px, bid_sz, ask_px, ask_sz = self._bbo(state)
        grid = state.grid
        last = state.last_price_ticks
        return TickerData(
            sequence=state.ticker_sequence, symbol=symbol, side=state.last_side,
            size=state.last_size, trade_id=state.last_trade_id,
            price=grid.to_str(last) if last is not None else _num(self._mark(state)),
            best_bid_price=grid.to_str(bid_px), best_bid_size=bid_sz,
            best_ask_price=grid.to_str(ask_px), best_ask_size=ask_sz,
            ts=max(state.last_ts_ns, state.book_ts_ns),
        )

    def level2_snapshot(self, symbol: str, depth: int | None = None) -> Level2SnapshotData:
        """Book snapshot whose ``sequence`` is that of the last level change applied."""
        state = self._state(symbol)
        if depth is not None and (isinstance(depth, bool) or depth < 1):
            raise _param_error(f"depth: must be a positive int, got {depth!r}")
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
        ms = state.book_ts_ns // _NS_PER_MS
        return Depth5Data(
            bids=[(grid.to_str(p), s) for p, s in book.levels("buy", 5)],
            asks=[(grid.to_str(p), s) for p, s in book.levels("sell", 5)],
            sequence=book.sequence, timestamp=ms, ts=ms,
        )

    def candle(self, symbol: str, granularity_min: int, now_ns: int) -> CandleData:
        """The current candle of a granularity (``/contractMarket/limitCandle``)."""
        state = self._state(symbol)
        span = self._granularity_ns(granularity_min)
        start = (now_ns // span) * span
        row = self._aggregate(state, start, min(now_ns + 1, start + span))
        grid = state.grid
        if row is None:
            price = self._last_or_mark_str(state)
            values = [price, price, price, price, "0", "0"]
        else:
            o, h, low, c, vol, turnover = row
            values = [grid.to_str(int(o)), grid.to_str(int(c)), grid.to_str(int(h)),
                      grid.to_str(int(low)), _num(vol), _num(turnover)]
        return CandleData(
            symbol=symbol, candles=[str(start // 1_000_000_000), *values],
            time=now_ns // _NS_PER_MS)

    def klines(
        self, symbol: str, granularity_min: int, from_ms: int, to_ms: int
    ) -> list[list[float]]:
        """Candles ``[time_ms, open, high, low, close, volume, turnover]`` whose start lies in
        ``[from_ms, to_ms]``; buckets without trades after the first trade repeat the
        previous close with zero volume; at most the last 500 rows."""
        state = self._state(symbol)
        span = self._granularity_ns(granularity_min)
        if from_ms > to_ms:
            raise _param_error(f"from: {from_ms} is after to: {to_ms}")
        first = (from_ms * _NS_PER_MS + span - 1) // span * span
        last = to_ms * _NS_PER_MS
        assert state.minutes is not None
        if not state.minutes:
            return []
        first = max(first, (min(state.minutes) // span) * span)
        starts = range(first, last + 1, span)
        if len(starts) > _MAX_KLINES:
            starts = starts[-_MAX_KLINES:]
        rows: list[list[float]] = []
        previous_close: float | None = self._close_before(state, starts[0]) if starts else None
        grid = state.grid
        for start in starts:
            row = self._aggregate(state, start, start + span)
            if row is None:
                if previous_close is None:
                    continue
                rows.append([start // _NS_PER_MS, previous_close, previous_close,
                             previous_close, previous_close, 0.0, 0.0])
                continue
            o, h, low, c, vol, turnover = row
            close = grid.to_float(int(c))
            rows.append([start // _NS_PER_MS, grid.to_float(int(o)), grid.to_float(int(h)),
                         grid.to_float(int(low)), close, vol, turnover])
            previous_close = close
        return rows

    # ------------------------------------------------------------------ account
    def account_overview(self, currency: str | None = None) -> AccountOverviewData:
        """Balances: equity = wallet + unrealised PnL; available = wallet - position margin -
        order margin (isolated margin: unrealised losses stay inside the position)."""
        if currency not in (None, self.currency):
            return AccountOverviewData(
                account_equity=0.0, unrealised_pnl=0.0, margin_balance=0.0,
                position_margin=0.0, order_margin=0.0, frozen_funds=0.0,
                available_balance=0.0, currency=str(currency), risk_ratio=0.0,
                max_withdraw_amount=0.0)
        unrealised = sum(self._unrealised(st) for st in self._states.values())
        position_margin = sum(self._position_margin(st) for st in self._states.values())
        order_margin = self._order_margin()
        available = self._wallet - position_margin - order_margin
        maint = sum(self._maint_margin(st) for st in self._states.values())
        equity = self._wallet + unrealised
        return AccountOverviewData(
            account_equity=equity, unrealised_pnl=unrealised, margin_balance=self._wallet,
            position_margin=position_margin, order_margin=order_margin, frozen_funds=0.0,
            available_balance=available,
            currency=self.currency, risk_ratio=(maint / equity) if equity > 0 else 0.0,
            max_withdraw_amount=max(0.0, available),
        )

    @property
    def wallet_balance(self) -> float:
        """Initial balance plus realised PnL minus fees."""
        return self._wallet

    @property
    def total_fees(self) -> float:
        """Fees charged so far."""
        return self._total_fees

    @property
    def total_realised_pnl(self) -> float:
        """Gross PnL realised so far (liquidations included), before fees."""
        return self._total_realised

    def fills(self) -> list[SimFill]:
        """The account's fills (and liquidations) in order."""
        return list(self._fills)

    def position(self, symbol: str) -> PositionData:
        """The account's position in a symbol (``isOpen`` false when flat)."""
        return self._position_data(symbol, self._state(symbol))

    def positions(self) -> list[PositionData]:
        """The account's open positions."""
        return [self._position_data(s, st) for s, st in self._states.items()
                if st.position.qty != 0]

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
            self._check_stops(order.symbol, state, now_ns)
        else:
            self._execute(state, order, now_ns)
            self._after_change(order.symbol, state, now_ns)
        return OrderAckData(order_id=order.id, client_oid=order.client_oid)

    def test_order(self, body: dict[str, Any], now_ns: int) -> OrderAckData:
        """Validate an order exactly as :meth:`place_order` does, without placing it
        (``POST /api/v1/orders/test``); the returned id is the one it would have had."""
        order = self._validate(body, now_ns)
        return OrderAckData(order_id=order.id, client_oid=order.client_oid)

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
            self._cancel(self._orders[order_id], now_ns)
        self._after_change(symbol, state, now_ns)
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
            self._cancel(self._orders[order_id], now_ns)
        return {"cancelledOrderIds": cancelled}

    def list_orders(
        self, symbol: str | None, status: str | None, page: int = 1, page_size: int = 50
    ) -> Page[OrderData]:
        """Orders newest first; ``status`` is ``"active"`` (open, untriggered stops
        excluded), ``"done"`` or ``None`` for both."""
        if symbol is not None:
            self._state(symbol)
        if status not in (None, "active", "done"):
            raise _param_error(f"status: must be active or done, got {status!r}")
        chosen = [
            o for o in self._orders.values()
            if (symbol is None or o.symbol == symbol) and not o.is_untriggered_stop
            and (status is None or (status == "active") == (o.status == "open"))
        ]
        return self._page(chosen, page, page_size, self._order_data)

    def list_stop_orders(
        self, symbol: str | None, page: int = 1, page_size: int = 50
    ) -> Page[StopOrderData]:
        """Untriggered stop orders, newest first (``GET /api/v1/stopOrders``)."""
        if symbol is not None:
            self._state(symbol)
        chosen = [o for o in self._open.values()
                  if o.is_untriggered_stop and (symbol is None or o.symbol == symbol)]
        return self._page(chosen, page, page_size, self._stop_order_data)

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

    # ------------------------------------------------------------------ validation
    def _validate(self, body: dict[str, Any], now_ns: int) -> _Order:
        if not isinstance(body, dict):
            raise _param_error("body: must be a JSON object")
        client_oid = body.get("clientOid")
        if not isinstance(client_oid, str) or not _CLIENT_OID_RE.fullmatch(client_oid):
            raise _param_error(
                "clientOid: required, 1-40 letters, digits, '_' or '-'")
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise _param_error("symbol: required")
        state = self._state(symbol)
        spec = state.spec
        if client_oid in self._by_client_oid:
            raise SimError("300018", f"clientOid: {client_oid!r} repeated")
        close_order = _bool_field(body, "closeOrder")
        reduce_only = _bool_field(body, "reduceOnly")
        post_only = _bool_field(body, "postOnly")
        for name in ("hidden", "iceberg", "forceHold"):
            _bool_field(body, name)
        margin_mode = body.get("marginMode", "ISOLATED")
        if margin_mode not in ("ISOLATED", "CROSS"):
            raise _param_error(f"marginMode: must be ISOLATED or CROSS, got {margin_mode!r}")
        if margin_mode == "CROSS":
            raise SimError(
                "330005", f"marginMode: {symbol} is in ISOLATED mode, the order says CROSS")
        order_type = body.get("type", "limit")
        if order_type not in ("limit", "market"):
            raise _param_error(f"type: must be limit or market, got {order_type!r}")
        tif = body.get("timeInForce", "GTC")
        if tif not in ("GTC", "IOC"):
            raise _param_error(f"timeInForce: must be GTC or IOC, got {tif!r}")
        if post_only and (order_type == "market" or tif == "IOC"):
            raise _param_error("postOnly: not allowed with a market or IOC order")
        remark = body.get("remark")
        if remark is not None and (not isinstance(remark, str) or len(remark) > 100):
            raise _param_error("remark: must be a string of at most 100 characters")
        stop = body.get("stop") or ""
        stop_price_ticks: int | None = None
        stop_price_type = ""
        if stop:
            if stop not in ("up", "down"):
                raise _param_error(f"stop: must be up or down, got {stop!r}")
            stop_price_type = body.get("stopPriceType") or ""
            if stop_price_type not in ("TP", "MP", "IP"):
                raise _param_error("stopPriceType: required with stop, one of TP, MP, IP")
            if body.get("stopPrice") in (None, ""):
                raise _param_error("stopPrice: required with stop")
            stop_price_ticks = self._price_field(state, body, "stopPrice")
        price_ticks: int | None = None
        if order_type == "limit":
            if body.get("price") in (None, ""):
                raise _param_error("price: required for a limit order")
            price_ticks = self._price_field(state, body, "price")
        side = body.get("side")
        size: int | None = None
        leverage: int | None = None
        position = state.position
        if close_order:
            reduce_only = True
            if not stop and position.qty == 0:
                raise SimError("300009", f"closeOrder: no position in {symbol} to close")
            if position.qty != 0:
                side = "sell" if position.qty > 0 else "buy"
                size = abs(position.qty)
            elif side not in ("buy", "sell"):
                side = "sell"  # a closeOrder stop without a position is sided when it fires
            leverage = position.leverage if position.qty != 0 else 1
        if side not in ("buy", "sell"):
            raise _param_error(f"side: must be buy or sell, got {side!r}")
        if not close_order or "size" in body:
            if "size" not in body and ("qty" in body or "valueQty" in body):
                raise _param_error("size: the simulator takes size in lots (qty and valueQty "
                                   "are not supported)")
            size_value = body.get("size")
            if isinstance(size_value, str) and size_value.isdigit():
                size_value = int(size_value)
            if not isinstance(size_value, int) or isinstance(size_value, bool) or (
                    size_value <= 0):
                raise _param_error(f"size: must be a positive integer of lots, got "
                                   f"{body.get('size')!r}")
            if size_value % spec.lot_size:
                raise _param_error(f"size: must be a multiple of lotSize {spec.lot_size}")
            if size_value > spec.max_order_qty:
                raise _param_error(f"size: above maxOrderQty {spec.max_order_qty}")
            if not close_order:
                size = size_value
        if size is None:
            size = 0  # a closeOrder stop without a position; sized when it triggers
        if not close_order:
            leverage = _leverage_field(body, spec)
        assert leverage is not None
        order = _Order(
            id=str(_USER_ORDER_ID_BASE + self._order_counter + 1), client_oid=client_oid,
            symbol=symbol, side=side, type=order_type, price_ticks=price_ticks, size=size,
            leverage=leverage, time_in_force=tif, post_only=post_only,
            reduce_only=reduce_only, close_order=close_order, stop=stop,
            stop_price_ticks=stop_price_ticks, stop_price_type=stop_price_type,
            remark=remark, created_ns=now_ns, updated_ns=now_ns, priority=self._priority + 1,
        )
        if not order.reduce_only and not order.stop:
            required, available = self._margin_check(state, order)
            if required > available + 1e-9:
                raise SimError(
                    "300003",
                    f"balance: {required:.4f} {self.currency} of margin needed, "
                    f"{available:.4f} available")
        return order

    def _margin_check(self, state: _SymbolState, order: _Order) -> tuple[float, float]:
        # Margin the order's opening part needs, and what the account has available; sets
        # the order's margin_lots (the lots that open exposure).
        order.margin_lots = self._opening_lots(state, order)
        required = order.margin_lots * self._margin_per_lot(state, order)
        available = self._wallet - self._total_position_margin() - self._order_margin()
        return required, available

    def _margin_available(self, state: _SymbolState, order: _Order) -> bool:
        required, available = self._margin_check(state, order)
        return required <= available + 1e-9

    def _price_field(self, state: _SymbolState, body: dict[str, Any], name: str) -> int:
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _param_error(f"{name}: must be a decimal string, got {value!r}")
        ticks = state.grid.exact_ticks(value)
        if ticks is None:
            raise _param_error(
                f"{name}: {value!r} is not a multiple of tickSize {state.spec.tick_size}")
        if ticks <= 0:
            raise _param_error(f"{name}: must be > 0, got {value!r}")
        if state.grid.to_float(ticks) > state.spec.max_price:
            raise SimError("300011", f"{name}: {value!r} above maxPrice {state.spec.max_price}")
        return ticks

    # ------------------------------------------------------------------ margin helpers
    def _opening_lots(self, state: _SymbolState, order: _Order) -> int:
        qty = state.position.qty
        direction = 1 if order.side == "buy" else -1
        if qty * direction < 0:
            return max(0, order.size - abs(qty))
        return order.size

    def _margin_per_lot(self, state: _SymbolState, order: _Order) -> float:
        if order.price_ticks is not None:
            price = state.grid.to_float(order.price_ticks)
        else:
            opposite: Side = "sell" if order.side == "buy" else "buy"
            best = state.book.best_market_price(opposite)
            price = state.grid.to_float(best) if best is not None else self._mark(state)
        return price * state.spec.multiplier / order.leverage

    def _order_margin(self) -> float:
        total = 0.0
        for order in self._open.values():
            if order.resting and order.margin_lots and order.price_ticks is not None:
                state = self._states[order.symbol]
                lots = min(order.remaining, order.margin_lots)
                total += lots * state.grid.to_float(order.price_ticks) * (
                    state.spec.multiplier / order.leverage)
        return total

    def _position_margin(self, state: _SymbolState) -> float:
        pos = state.position
        return abs(pos.qty) * pos.entry * state.spec.multiplier / pos.leverage

    def _total_position_margin(self) -> float:
        return sum(self._position_margin(st) for st in self._states.values())

    def _maint_margin(self, state: _SymbolState) -> float:
        pos = state.position
        return abs(pos.qty) * pos.entry * state.spec.multiplier * state.spec.maintain_margin

    def _unrealised(self, state: _SymbolState) -> float:
        pos = state.position
        if pos.qty == 0:
            return 0.0
        return (self._mark(state) - pos.entry) * pos.qty * state.spec.multiplier

    def _liquidation_price(self, state: _SymbolState) -> float:
        pos = state.position
        if pos.qty == 0:
            return 0.0
        mmr = state.spec.maintain_margin
        if pos.qty > 0:
            return pos.entry * (1.0 - 1.0 / pos.leverage + mmr)
        return pos.entry * (1.0 + 1.0 / pos.leverage - mmr)

    def _mark(self, state: _SymbolState) -> float:
        # Mark price = mid of the other traders' best bid and ask; the last trade when a
        # side is empty; the contract's start price before anything happened.
        bid = state.book.best_market_price("buy")
        ask = state.book.best_market_price("sell")
        if bid is not None and ask is not None:
            return state.grid.to_float(bid + ask) / 2.0
        if state.last_price_ticks is not None:
            return state.grid.to_float(state.last_price_ticks)
        return state.spec.start_price

    # ------------------------------------------------------------------ matching
    def _execute(self, state: _SymbolState, order: _Order, ts_ns: int) -> None:
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
                self._finish(order, ts_ns, cancelled=True)
                return
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
            self._emit_changes(order.symbol, state, state.book.take_market(opposite, price, take),
                               ts_ns)
            self._fill(state, order, price, take, "taker", ts_ns)
            self._publish_trade(order.symbol, state, price, take, order.side, order.id,
                                self._next_market_order_id(), ts_ns)
        if order.status != "open" or order.remaining <= 0:
            return
        if order.reduce_only and self._reducible(state, order) == 0:
            self._finish(order, ts_ns, cancelled=True)
            return
        if order.type == "market" or order.time_in_force == "IOC":
            self._finish(order, ts_ns, cancelled=True)
            return
        assert order.price_ticks is not None
        own_opposite = [o for o in self._resting(order.symbol, opposite)
                        if self._crosses(order, o.price_ticks or 0)]
        if own_opposite:
            # Self-trade prevention, cancel newest: resting would cross the account's own
            # opposite order, which the simulator never matches against itself.
            self._finish(order, ts_ns, cancelled=True)
            return
        order.resting = order.remaining
        self._emit_changes(order.symbol, state,
                           state.book.add_user(order.side, order.price_ticks, order.resting),
                           ts_ns)

    @staticmethod
    def _crosses(order: _Order, price_ticks: int) -> bool:
        assert order.price_ticks is not None
        if order.side == "buy":
            return price_ticks <= order.price_ticks
        return price_ticks >= order.price_ticks

    def _reducible(self, state: _SymbolState, order: _Order) -> int:
        qty = state.position.qty
        if (order.side == "sell" and qty > 0) or (order.side == "buy" and qty < 0):
            return abs(qty)
        return 0

    def _trim_reduce_only(self, state: _SymbolState, order: _Order, ts_ns: int) -> None:
        reducible = self._reducible(state, order)
        if order.close_order:
            # closeOrder closes whatever the position is when the order becomes active.
            if reducible == 0:
                self._finish(order, ts_ns, cancelled=True)
                return
            order.size = order.filled + reducible
            return
        if reducible == 0:
            self._finish(order, ts_ns, cancelled=True)
        elif order.remaining > reducible:
            order.size = order.filled + reducible

    def _resting(self, symbol: str, side: Side) -> list[_Order]:
        return sorted(
            (o for o in self._open.values()
             if o.symbol == symbol and o.side == side and o.resting > 0),
            key=lambda o: ((-(o.price_ticks or 0) if side == "buy" else (o.price_ticks or 0)),
                           o.priority),
        )

    def _fill_resting(self, state: _SymbolState, order: _Order, size: int, ts_ns: int) -> int:
        # A maker fill of a resting order at its own price; reduce-only orders are trimmed.
        assert order.price_ticks is not None
        if order.reduce_only:
            size = min(size, self._reducible(state, order))
        if size > 0:
            order.resting -= size
            self._emit_changes(order.symbol, state,
                               state.book.remove_user(order.side, order.price_ticks, size), ts_ns)
            self._fill(state, order, order.price_ticks, size, "maker", ts_ns)
        if order.status == "open" and order.reduce_only and self._reducible(state, order) == 0:
            self._cancel(order, ts_ns)
        return size

    def _fill(self, state: _SymbolState, order: _Order, price_ticks: int, size: int,
              liquidity: str, ts_ns: int) -> None:
        spec = state.spec
        price = state.grid.to_float(price_ticks)
        notional = price * size * spec.multiplier
        rate = spec.maker_fee_rate if liquidity == "maker" else spec.taker_fee_rate
        fee = notional * rate
        realised = self._apply_to_position(state, order.side, price, size, order.leverage, ts_ns)
        pos = state.position
        pos.fees += fee
        self._wallet += realised - fee
        self._total_fees += fee
        self._total_realised += realised
        order.filled += size
        order.filled_value += notional
        order.updated_ns = ts_ns
        if order.remaining <= 0:
            self._finish(order, ts_ns, cancelled=False)
        self._fills.append(SimFill(
            symbol=order.symbol, order_id=order.id, side=order.side, price=price, size=size,
            liquidity=liquidity, fee=fee, realised_pnl=realised, ts_ns=ts_ns))

    def _apply_to_position(self, state: _SymbolState, side: str, price: float, size: int,
                           leverage: int, ts_ns: int) -> float:
        # Average-entry accounting; returns the gross PnL realised by the closing part.
        pos = state.position
        direction = 1 if side == "buy" else -1
        multiplier = state.spec.multiplier
        realised = 0.0
        remaining = size
        if pos.qty * direction < 0:
            closing = min(remaining, abs(pos.qty))
            realised = (price - pos.entry) * closing * multiplier * (1 if pos.qty > 0 else -1)
            pos.qty += closing * direction
            pos.realised_gross += realised
            remaining -= closing
            if pos.qty == 0:
                pos.entry = 0.0
        if remaining > 0:
            if pos.qty == 0:
                pos.entry = price
                pos.leverage = leverage
                pos.opening_ns = ts_ns
                pos.realised_gross = 0.0
                pos.fees = 0.0
            else:
                old = abs(pos.qty)
                pos.entry = (pos.entry * old + price * remaining) / (old + remaining)
            pos.qty += remaining * direction
        return realised

    def _finish(self, order: _Order, ts_ns: int, *, cancelled: bool) -> None:
        if order.status == "done":
            return
        order.status = "done"
        self._open.pop(order.id, None)
        order.cancelled = cancelled
        order.updated_ns = ts_ns
        order.end_ns = ts_ns

    def _cancel(self, order: _Order, ts_ns: int) -> None:
        if order.resting > 0 and order.price_ticks is not None:
            state = self._states[order.symbol]
            changes = state.book.remove_user(order.side, order.price_ticks, order.resting)
            order.resting = 0
            self._emit_changes(order.symbol, state, changes, ts_ns)
        self._finish(order, ts_ns, cancelled=True)

    def _cancel_checked(self, order: _Order, now_ns: int) -> None:
        if order.status != "open":
            raise SimError("100004", f"orderId: order {order.id} is in not cancelable state")
        self._now_ns = max(self._now_ns, now_ns)
        self._cancel(order, now_ns)
        self._after_change(order.symbol, self._states[order.symbol], now_ns)

    # ------------------------------------------------------------------ market events
    def _on_market_trade(self, symbol: str, state: _SymbolState, trade: MarketTrade) -> None:
        # Publish the print, then fill the account's resting orders it crosses: a sell
        # print at P fills resting buys priced >= P (a buy print: sells <= P), best price
        # then time first, up to the print's size, at each order's own price (maker).
        self._publish_trade(symbol, state, trade.price_ticks, trade.size, trade.side,
                            self._next_market_order_id(), self._next_market_order_id(),
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
        self._after_change(symbol, state, trade.ts_ns)

    def _on_market_book(self, symbol: str, state: _SymbolState, ladder: MarketBook) -> None:
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
        self._emit_changes(symbol, state, state.book.replace_market(ladder.bids, ladder.asks),
                           ts_ns)
        self._after_change(symbol, state, ts_ns)

    def _sweep(self, symbol: str, state: _SymbolState, order: _Order, ts_ns: int) -> None:
        assert order.price_ticks is not None
        size = self._fill_resting(state, order, order.resting, ts_ns)
        if size > 0:
            taker: Side = "sell" if order.side == "buy" else "buy"
            self._publish_trade(symbol, state, order.price_ticks, size, taker,
                                self._next_market_order_id(), order.id, ts_ns)

    def _after_change(self, symbol: str, state: _SymbolState, ts_ns: int) -> None:
        # Stops, liquidation and the BBO are re-evaluated after every market event and
        # every account action; a triggered stop can move prices and trigger others.
        for _ in range(100):
            if not self._check_stops(symbol, state, ts_ns, publish=False):
                break
        self._check_liquidation(symbol, state, ts_ns)
        # A resting reduce-only order has nothing left to reduce once the position is
        # flat or on its side: it leaves the book instead of waiting for a print.
        for order in list(self._open.values()):
            if (order.symbol == symbol and order.reduce_only and order.resting > 0
                    and self._reducible(state, order) == 0):
                self._cancel(order, ts_ns)
        self._publish_bbo(symbol, state, ts_ns)

    def _check_stops(self, symbol: str, state: _SymbolState, ts_ns: int,
                     publish: bool = True) -> bool:
        mark = self._mark(state)
        last = (state.grid.to_float(state.last_price_ticks)
                if state.last_price_ticks is not None else mark)
        triggered = False
        stops = sorted((o for o in self._open.values()
                        if o.symbol == symbol and o.is_untriggered_stop),
                       key=lambda o: o.priority)
        for order in stops:
            if not order.is_untriggered_stop:
                continue
            assert order.stop_price_ticks is not None
            price = last if order.stop_price_type == "TP" else mark
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
                self._finish(order, ts_ns, cancelled=True)
                continue
            self._execute(state, order, ts_ns)
        if publish and triggered:
            self._after_change(symbol, state, ts_ns)
        return triggered

    def _check_liquidation(self, symbol: str, state: _SymbolState, ts_ns: int) -> None:
        # Isolated liquidation at entry*(1 - 1/lev + mmr) (long) or entry*(1 + 1/lev - mmr)
        # (short), tested on the mark price; the whole position margin is lost and the
        # position is taken over off-book (no public trade, no fee).
        pos = state.position
        if pos.qty == 0:
            return
        mark = self._mark(state)
        liq = self._liquidation_price(state)
        if (pos.qty > 0 and mark > liq) or (pos.qty < 0 and mark < liq):
            return
        lost = self._position_margin(state)
        side = "sell" if pos.qty > 0 else "buy"
        size = abs(pos.qty)
        self._wallet -= lost
        self._total_realised -= lost
        self._fills.append(SimFill(
            symbol=symbol, order_id="", side=side, price=liq, size=size,
            liquidity="liquidation", fee=0.0, realised_pnl=-lost, ts_ns=ts_ns))
        state.position = _Position(leverage=pos.leverage)
        for order in list(self._open.values()):
            if order.symbol == symbol and order.reduce_only and (
                    not order.is_untriggered_stop):
                self._cancel(order, ts_ns)

    # ------------------------------------------------------------------ publishing
    def _next_market_order_id(self) -> str:
        self._market_order_counter += 1
        return str(_MARKET_ORDER_ID_BASE + self._market_order_counter)

    def _publish_trade(self, symbol: str, state: _SymbolState, price_ticks: int, size: int,
                       taker_side: str, taker_id: str, maker_id: str, ts_ns: int) -> None:
        state.trade_sequence += 1
        state.ticker_sequence += 1
        trade_id = str(state.trade_sequence)
        price = state.grid.to_str(price_ticks)
        state.last_price_ticks = price_ticks
        state.last_side = taker_side
        state.last_size = size
        state.last_trade_id = trade_id
        state.last_ts_ns = ts_ns
        self._record_candle(state, price_ticks, size, ts_ns)
        self._pending.append(TradeEvent(
            symbol=symbol, sequence=state.trade_sequence,
            data=ExecutionData(
                symbol=symbol, sequence=state.trade_sequence, side=taker_side, size=size,
                price=price, taker_order_id=taker_id, maker_order_id=maker_id,
                trade_id=trade_id, ts=ts_ns, time=ts_ns)))
        bid_px, bid_sz, ask_px, ask_sz = self._bbo(state)
        self._pending.append(TickerEvent(
            symbol=symbol, sequence=state.ticker_sequence,
            data=TickerV1Data(
                symbol=symbol, sequence=state.ticker_sequence, side=taker_side, size=size,
                price=price, best_bid_size=bid_sz, best_bid_price=state.grid.to_str(bid_px),
                best_ask_price=state.grid.to_str(ask_px), best_ask_size=ask_sz,
                trade_id=trade_id, ts=ts_ns)))

    def _emit_changes(self, symbol: str, state: _SymbolState, changes: list[LevelChange],
                      ts_ns: int) -> None:
        grid = state.grid
        ms = ts_ns // _NS_PER_MS
        state.book_ts_ns = max(state.book_ts_ns, ts_ns)
        for change in changes:
            self._pending.append(BookChangeEvent(
                symbol=symbol, sequence=change.sequence,
                data=Level2ChangeData(
                    sequence=change.sequence,
                    change=f"{grid.to_str(change.price_ticks)},{change.side},{change.size}",
                    timestamp=ms)))

    def _bbo(self, state: _SymbolState) -> tuple[int, int, int, int]:
        bid = state.book.best("buy")
        ask = state.book.best("sell")
        bid_px, bid_sz = bid if bid is not None else (0, 0)
        ask_px, ask_sz = ask if ask is not None else (0, 0)
        return bid_px, bid_sz, ask_px, ask_sz

    def _publish_bbo(self, symbol: str, state: _SymbolState, ts_ns: int) -> None:
        bbo = self._bbo(state)
        if bbo == state.bbo:
            return
        state.bbo = bbo
        state.bbo_sequence += 1
        bid_px, bid_sz, ask_px, ask_sz = bbo
        self._pending.append(BboEvent(
            symbol=symbol, sequence=state.bbo_sequence,
            data=TickerV2Data(
                symbol=symbol, sequence=state.bbo_sequence, best_bid_size=bid_sz,
                best_bid_price=state.grid.to_str(bid_px), best_ask_price=state.grid.to_str(
                    ask_px), best_ask_size=ask_sz, ts=ts_ns)))

    # ------------------------------------------------------------------ candles
    @staticmethod
    def _granularity_ns(granularity_min: int) -> int:
        if isinstance(granularity_min, bool) or not isinstance(granularity_min, int) or (
                granularity_min < 1):
            raise _param_error(f"granularity: must be a positive number of minutes, got "
                               f"{granularity_min!r}")
        return granularity_min * _NS_PER_MIN

    def _record_candle(self, state: _SymbolState, price_ticks: int, size: int,
                       ts_ns: int) -> None:
        assert state.minutes is not None
        minute = (ts_ns // _NS_PER_MIN) * _NS_PER_MIN
        turnover = state.grid.to_float(price_ticks) * size * state.spec.multiplier
        bar = state.minutes.get(minute)
        if bar is None:
            state.minutes[minute] = [price_ticks, price_ticks, price_ticks, price_ticks,
                                     float(size), turnover]
            return
        bar[1] = max(bar[1], price_ticks)
        bar[2] = min(bar[2], price_ticks)
        bar[3] = price_ticks
        bar[4] += size
        bar[5] += turnover

    def _aggregate(self, state: _SymbolState, start_ns: int, end_ns: int) -> list[float] | None:
        # Combine the one-minute bars with start in [start_ns, end_ns).
        assert state.minutes is not None
        row: list[float] | None = None
        for minute in range(start_ns - start_ns % _NS_PER_MIN, end_ns, _NS_PER_MIN):
            if minute < start_ns:
                continue
            bar = state.minutes.get(minute)
            if bar is None:
                continue
            if row is None:
                row = list(bar)
            else:
                row[1] = max(row[1], bar[1])
                row[2] = min(row[2], bar[2])
                row[3] = bar[3]
                row[4] += bar[4]
                row[5] += bar[5]
        return row

    def _close_before(self, state: _SymbolState, start_ns: int) -> float | None:
        assert state.minutes is not None
        earlier = [m for m in state.minutes if m < start_ns]
        if not earlier:
            return None
        return state.grid.to_float(int(state.minutes[max(earlier)][3]))

    def _last_or_mark_str(self, state: _SymbolState) -> str:
        if state.last_price_ticks is not None:
            return state.grid.to_str(state.last_price_ticks)
        return _num(self._mark(state))

    # ------------------------------------------------------------------ wire builders
    def _contract_data(self, symbol: str, state: _SymbolState) -> ContractData:
        spec = state.spec
        now_ms = self._now_ns // _NS_PER_MS
        day = self._aggregate(state, self._now_ns - _NS_PER_DAY, self._now_ns + 1)
        mark = self._mark(state)
        last = (state.grid.to_float(state.last_price_ticks)
                if state.last_price_ticks is not None else mark)
        if day is None:
            low = high = open_ = last
            volume = turnover = 0.0
        else:
            open_ = state.grid.to_float(int(day[0]))
            high = state.grid.to_float(int(day[1]))
            low = state.grid.to_float(int(day[2]))
            volume, turnover = day[4], day[5]
        change = last - open_
        band = state.grid.nearest_ticks(mark * 0.05)
        mark_ticks = state.grid.nearest_ticks(mark)
        return ContractData(
            symbol=symbol, root_symbol=spec.quote_currency, type="FFWCSX",
            first_open_date=spec.first_open_date_ms, expire_date=None, settle_date=None,
            base_currency=spec.base_currency, quote_currency=spec.quote_currency,
            settle_currency=spec.quote_currency, max_order_qty=spec.max_order_qty,
            max_price=spec.max_price, lot_size=spec.lot_size, tick_size=spec.tick_size,
            index_price_tick_size=spec.index_price_tick_size, multiplier=spec.multiplier,
            initial_margin=spec.initial_margin, maintain_margin=spec.maintain_margin,
            max_risk_limit=100_000, min_risk_limit=100_000, risk_step=50_000,
            maker_fee_rate=spec.maker_fee_rate, taker_fee_rate=spec.taker_fee_rate,
            taker_fix_fee=0.0, maker_fix_fee=0.0, settlement_fee=None, is_deleverage=True,
            is_quanto=False, is_inverse=False, mark_method="FairPrice",
            fair_method="FundingRate", funding_base_symbol=f".{spec.base_currency}INT8H",
            funding_quote_symbol=f".{spec.quote_currency}INT8H",
            funding_rate_symbol=f".{symbol}FPI8H", index_symbol=f".K{spec.base_currency}"
            f"{spec.quote_currency}", settlement_symbol="", status="Open",
            funding_fee_rate=spec.funding_fee_rate,
            predicted_funding_fee_rate=spec.funding_fee_rate,
            funding_rate_granularity=_FUNDING_INTERVAL_MS,
            open_interest=str(abs(state.position.qty)), turnover_of24h=turnover,
            volume_of24h=volume * spec.multiplier, mark_price=mark, index_price=mark,
            last_trade_price=last,
            next_funding_rate_time=_FUNDING_INTERVAL_MS - now_ms % _FUNDING_INTERVAL_MS,
            max_leverage=spec.max_leverage, source_exchanges=["sim"],
            premiums_symbol_1m=f".{symbol}PI", premiums_symbol_8h=f".{symbol}PI8H",
            funding_base_symbol_1m=f".{spec.base_currency}INT",
            funding_quote_symbol_1m=f".{spec.quote_currency}INT", low_price=low,
            high_price=high, price_chg_pct=(change / open_) if open_ else 0.0,
            price_chg=change, k=490.0, m=300.0, f=1.3, mmr_limit=0.3,
            mmr_lev_constant=float(spec.max_leverage), support_cross=False,
            buy_limit=state.grid.to_float(mark_ticks + band),
            sell_limit=state.grid.to_float(max(1, mark_ticks - band)),
        )

    def _order_data(self, order: _Order) -> OrderData:
        return self._order_fields(order, OrderData)

    def _stop_order_data(self, order: _Order) -> StopOrderData:
        return self._order_fields(order, StopOrderData)

    def _order_fields(self, order: _Order, cls: type[Any]) -> Any:
        state = self._states[order.symbol]
        grid = state.grid
        multiplier = state.spec.multiplier
        price = grid.to_str(order.price_ticks) if order.price_ticks is not None else "0"
        if order.price_ticks is not None:
            value = grid.to_float(order.price_ticks) * order.size * multiplier
        else:
            value = order.filled_value
        avg = order.filled_value / (order.filled * multiplier) if order.filled else 0.0
        return cls(
            id=order.id, symbol=order.symbol, type=order.type, side=order.side, price=price,
            size=order.size, value=_num(value), deal_value=_num(order.filled_value),
            deal_size=order.filled, stp="", stop=order.stop,
            stop_price_type=order.stop_price_type, stop_triggered=order.stop_triggered,
            stop_price=(grid.to_str(order.stop_price_ticks)
                        if order.stop_price_ticks is not None else None),
            time_in_force=order.time_in_force, post_only=order.post_only, hidden=False,
            iceberg=False, leverage=str(order.leverage), force_hold=False,
            close_order=order.close_order, visible_size=0, client_oid=order.client_oid,
            remark=order.remark, tags="", is_active=order.status == "open",
            cancel_exist=order.cancelled, created_at=order.created_ns // _NS_PER_MS,
            updated_at=order.updated_ns // _NS_PER_MS,
            end_at=order.end_ns // _NS_PER_MS if order.end_ns is not None else None,
            order_time=order.created_ns, settle_currency=self.currency,
            margin_mode="ISOLATED", avg_deal_price=_num(avg), filled_size=order.filled,
            filled_value=_num(order.filled_value), status=order.status,
            reduce_only=order.reduce_only,
        )

    def _page(self, chosen: list[_Order], page: int, page_size: int, build: Any) -> Any:
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise _param_error(f"currentPage: must be >= 1, got {page!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not (
                1 <= page_size <= _MAX_PAGE_SIZE):
            raise _param_error(f"pageSize: must be 1..{_MAX_PAGE_SIZE}, got {page_size!r}")
        chosen = sorted(chosen, key=lambda o: o.priority, reverse=True)
        total = len(chosen)
        items = [build(o) for o in chosen[(page - 1) * page_size: page * page_size]]
        return Page(current_page=page, page_size=page_size, total_num=total,
                    total_page=math.ceil(total / page_size), items=items)

    def _position_data(self, symbol: str, state: _SymbolState) -> PositionData:
        pos = state.position
        spec = state.spec
        mark = self._mark(state)
        cost = pos.qty * pos.entry * spec.multiplier
        margin = self._position_margin(state)
        unrealised = self._unrealised(state)
        maint = self._maint_margin(state)
        liq = self._liquidation_price(state)
        if pos.qty > 0:
            bankrupt = pos.entry * (1.0 - 1.0 / pos.leverage)
        elif pos.qty < 0:
            bankrupt = pos.entry * (1.0 + 1.0 / pos.leverage)
        else:
            bankrupt = 0.0
        realised = pos.realised_gross - pos.fees
        mark_value = pos.qty * mark * spec.multiplier
        return PositionData(
            id=f"{symbol}-position", symbol=symbol, auto_deposit=False, cross_mode=False,
            maint_margin_req=spec.maintain_margin, risk_limit=100_000,
            real_leverage=(abs(mark_value) / margin) if margin else 0.0,
            delev_percentage=0.0,
            opening_timestamp=pos.opening_ns // _NS_PER_MS,
            current_timestamp=self._now_ns // _NS_PER_MS, current_qty=pos.qty,
            current_cost=cost, current_comm=pos.fees, unrealised_cost=cost,
            realised_gross_cost=-pos.realised_gross, realised_cost=pos.fees - pos.realised_gross,
            is_open=pos.qty != 0, mark_price=mark, mark_value=mark_value, pos_cost=abs(cost),
            pos_cross=0.0, pos_cross_margin=0.0, pos_init=margin, pos_comm=0.0,
            pos_comm_common=0.0, pos_loss=0.0, pos_margin=margin, pos_funding=0.0,
            pos_maint=maint, maint_margin=margin + unrealised,
            realised_gross_pnl=pos.realised_gross, realised_pnl=realised,
            unrealised_pnl=unrealised,
            unrealised_pnl_pcnt=(unrealised / abs(cost)) if cost else 0.0,
            unrealised_roe_pcnt=(unrealised / margin) if margin else 0.0,
            avg_entry_price=pos.entry, liquidation_price=liq, bankrupt_price=bankrupt,
            settle_currency=self.currency, is_inverse=False,
            maintain_margin=spec.maintain_margin, risk_limit_level=1,
            margin_mode="ISOLATED", position_side="BOTH", leverage=float(pos.leverage),
        )


def _bool_field(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _param_error(f"{name}: must be true or false, got {value!r}")
    return value


def _leverage_field(body: dict[str, Any], spec: ContractSpec) -> int:
    value = body.get("leverage")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _param_error(f"leverage: not a number: {body.get('leverage')!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _param_error(f"leverage: required, a positive integer, got {body.get('leverage')!r}")
    if value < 1:
        raise _param_error(f"leverage: must be >= 1, got {value!r}")
    if value > spec.max_leverage:
        raise SimError(
            "300016", f"leverage: {value} above maxLeverage {spec.max_leverage} of {spec.symbol}")
    return value
