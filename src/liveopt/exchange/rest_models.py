"""Typed shapes of the KuCoin futures REST API (kucoin-protocol.md sections 3.4-3.9).

Attribute names are snake_case; on the wire they are the reference's camelCase names
(``rename="camel"``, plus explicit names where KuCoin's spelling is irregular, such as
``unrealisedPNL``). Prices stay strings where the wire has strings (exact decimal text, no
float noise) and numbers where it has numbers; sizes are integer lots. Timestamps keep the
wire's unit, named in the field (``_ms`` / ``_ns`` in docstrings). Unknown fields are
ignored so that a new field on the exchange never breaks decoding.

``OrderRequest`` is what liveopt sends; it is validated when constructed, and the error
names the wire field at fault (``OrderRequestError.field``).
"""

from decimal import Decimal, InvalidOperation
from typing import Generic, Literal, TypeVar

import msgspec

from liveopt.exchange.client_oid import is_valid_client_oid

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
StopDirection = Literal["up", "down"]
StopPriceType = Literal["TP", "MP", "IP"]
MarginMode = Literal["ISOLATED", "CROSS"]
TimeInForce = Literal["GTC", "IOC"]

SIDES = ("buy", "sell")
ORDER_TYPES = ("limit", "market")
STOP_DIRECTIONS = ("up", "down")
STOP_PRICE_TYPES = ("TP", "MP", "IP")
MARGIN_MODES = ("ISOLATED", "CROSS")
TIMES_IN_FORCE = ("GTC", "IOC")
MAX_REMARK_CHARS = 100


class OrderRequestError(ValueError):
    """An invalid order request; ``field`` is the wire name of the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"order request: {field} {problem}")


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True, rename="camel",
                   omit_defaults=True):
    """The body of ``POST /api/v1/orders`` (section 3.4).

    Encoded with ``msgspec.json.encode`` it is the exact compact JSON that is sent and
    signed; unset optional fields are left out (``type`` is always stated, never left to
    the exchange's default). ``price`` and ``stop_price`` are decimal
    strings (tick-rounded by the caller), ``size`` is whole lots.

    Rules checked here: clientOid 1-40 of ``[A-Za-z0-9_-]``; a limit order needs a price and
    a market order has none; ``size`` is a positive int unless ``close_order`` (which closes
    the whole position and may omit side, size and leverage); otherwise ``side`` and a
    positive ``leverage`` are required; ``stop`` needs ``stop_price`` and
    ``stop_price_type``, and those two need ``stop``; ``post_only`` only on a limit GTC
    order.
    """

    client_oid: str
    symbol: str
    type: OrderType
    side: Side | None = None
    leverage: int | None = None
    price: str | None = None
    size: int | None = None
    stop: StopDirection | None = None
    stop_price_type: StopPriceType | None = None
    stop_price: str | None = None
    reduce_only: bool = False
    close_order: bool = False
    margin_mode: MarginMode | None = None
    time_in_force: TimeInForce | None = None
    post_only: bool = False
    remark: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.client_oid, str) or not is_valid_client_oid(self.client_oid):
            raise OrderRequestError(
                "clientOid", f"must be 1-40 of letters, digits, '_' and '-', got "
                f"{self.client_oid!r}")
        if not isinstance(self.symbol, str) or not self.symbol.isalnum():
            raise OrderRequestError("symbol", f"must be letters and digits, got {self.symbol!r}")
        _check_choice("type", self.type, ORDER_TYPES)
        _check_choice("side", self.side, SIDES, optional=True)
        _check_choice("stop", self.stop, STOP_DIRECTIONS, optional=True)
        _check_choice("stopPriceType", self.stop_price_type, STOP_PRICE_TYPES, optional=True)
        _check_choice("marginMode", self.margin_mode, MARGIN_MODES, optional=True)
        _check_choice("timeInForce", self.time_in_force, TIMES_IN_FORCE, optional=True)
        self._check_price_and_type()
        self._check_size_side_leverage()
        self._check_stop()
        if self.post_only and (self.type != "limit" or self.time_in_force == "IOC"):
            raise OrderRequestError("postOnly", "is only allowed on a limit GTC order")
        if self.remark is not None and len(self.remark) > MAX_REMARK_CHARS:
            raise OrderRequestError("remark", f"must be at most {MAX_REMARK_CHARS} characters")

    def _check_price_and_type(self) -> None:
        if self.type == "limit":
            if self.price is None:
                raise OrderRequestError("price", "is required for a limit order")
            _check_decimal("price", self.price)
        elif self.price is not None:
            raise OrderRequestError("price", "must not be set on a market order")

    def _check_size_side_leverage(self) -> None:
        if self.size is not None and (
                isinstance(self.size, bool) or not isinstance(self.size, int) or self.size <= 0):
            raise OrderRequestError("size", f"must be a positive int of lots, got {self.size!r}")
        if self.leverage is not None and (
                isinstance(self.leverage, bool) or not isinstance(self.leverage, int)
                or self.leverage < 1):
            raise OrderRequestError("leverage", f"must be an int >= 1, got {self.leverage!r}")
        if self.close_order:
            return  # the exchange fills in side, size and leverage from the position
        if self.size is None:
            raise OrderRequestError("size", "is required (unless closeOrder)")
        if self.side is None:
            raise OrderRequestError("side", "is required (unless closeOrder)")
        if self.leverage is None:
            raise OrderRequestError("leverage", "is required (unless closeOrder)")

    def _check_stop(self) -> None:
        if self.stop is None:
            for field, value in (("stopPrice", self.stop_price),
                                 ("stopPriceType", self.stop_price_type)):
                if value is not None:
                    raise OrderRequestError(field, "is only allowed together with stop")
            return
        if self.stop_price is None:
            raise OrderRequestError("stopPrice", "is required when stop is set")
        if self.stop_price_type is None:
            raise OrderRequestError("stopPriceType", "is required when stop is set")
        _check_decimal("stopPrice", self.stop_price)

    @classmethod
    def limit(cls, client_oid: str, symbol: str, side: Side, size: int, price: str,
              leverage: int, **options: object) -> "OrderRequest":
        """A limit order (``options``: reduce_only, margin_mode, time_in_force, ...)."""
        return cls(client_oid=client_oid, symbol=symbol, side=side, type="limit", size=size,
                   price=price, leverage=leverage, **options)

    @classmethod
    def market(cls, client_oid: str, symbol: str, side: Side, size: int, leverage: int,
               **options: object) -> "OrderRequest":
        """A market order (``options``: reduce_only, margin_mode, ...)."""
        return cls(client_oid=client_oid, symbol=symbol, side=side, type="market", size=size,
                   leverage=leverage, **options)

    @classmethod
    def stop_market(cls, client_oid: str, symbol: str, side: Side, size: int,
                    stop: StopDirection, stop_price: str, leverage: int,
                    stop_price_type: StopPriceType = "MP", reduce_only: bool = True,
                    **options: object) -> "OrderRequest":
        """A stop market order, reduce-only by default (a protective stop)."""
        return cls(client_oid=client_oid, symbol=symbol, side=side, type="market", size=size,
                   stop=stop, stop_price=stop_price, stop_price_type=stop_price_type,
                   leverage=leverage, reduce_only=reduce_only, **options)


def _check_choice(field: str, value: object, choices: tuple[str, ...], *,
                  optional: bool = False) -> None:
    if value is None and optional:
        return
    if value not in choices:
        raise OrderRequestError(field, f"must be one of {choices}, got {value!r}")


def _check_decimal(field: str, text: object) -> None:
    if not isinstance(text, str):
        raise OrderRequestError(field, f"must be a decimal string, got {text!r}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise OrderRequestError(field, f"must be a decimal string, got {text!r}") from None
    if not value.is_finite() or value <= 0 or "e" in text.lower():
        raise OrderRequestError(field, f"must be a positive plain decimal, got {text!r}")


class OrderAck(msgspec.Struct, frozen=True, rename="camel"):
    """``data`` of ``POST /api/v1/orders``. ``existing`` is liveopt's own flag (never on
    the wire): True when the order was already there (a retry answered with 300018 and
    resolved by looking the clientOid up)."""

    order_id: str
    client_oid: str | None = None
    existing: bool = False


class Order(msgspec.Struct, frozen=True, rename="camel"):
    """An order as ``GET /api/v1/orders``, ``/orders/{id}`` and ``/orders/byClientOid``
    return it (section 3.6 lists the item fields). ``created_at``/``updated_at``/
    ``end_at`` are ms, ``order_time`` is ns; ``stop`` and ``stop_price_type`` are ``""``
    on a plain order."""

    id: str
    symbol: str
    type: str
    side: str
    size: int
    price: str | None = None
    value: str | None = None
    deal_value: str | None = None
    deal_size: int = 0
    filled_size: int = 0
    filled_value: str | None = None
    stp: str | None = None
    stop: str | None = None
    stop_price_type: str | None = None
    stop_triggered: bool = False
    stop_price: str | None = None
    time_in_force: str | None = None
    post_only: bool = False
    hidden: bool = False
    iceberg: bool = False
    visible_size: int | str | None = None
    leverage: str | float | None = None
    force_hold: bool = False
    close_order: bool = False
    reduce_only: bool = False
    client_oid: str | None = None
    remark: str | None = None
    tags: str | None = None
    is_active: bool = False
    cancel_exist: bool = False
    created_at: int | None = None
    updated_at: int | None = None
    end_at: int | None = None
    order_time: int | None = None
    settle_currency: str | None = None
    margin_mode: str | None = None
    avg_deal_price: str | None = None
    status: str | None = None


class StopOrder(Order, frozen=True):
    """An untriggered stop order from ``GET /api/v1/stopOrders`` (same item shape as
    ``Order``; ``stop``, ``stop_price`` and ``stop_price_type`` are set)."""


T = TypeVar("T")


class Page(msgspec.Struct, Generic[T], frozen=True, rename="camel"):
    """A paginated list (``currentPage`` starts at 1)."""

    current_page: int
    page_size: int
    total_num: int
    total_page: int
    items: list[T]


class CancelledOrders(msgspec.Struct, frozen=True, rename="camel"):
    """``data`` of the cancel-by-id and cancel-all endpoints."""

    cancelled_order_ids: list[str] = []


class CancelledClientOid(msgspec.Struct, frozen=True, rename="camel"):
    """``data`` of ``DELETE /api/v1/orders/client-order/{clientOid}``."""

    client_oid: str


class Position(msgspec.Struct, frozen=True, rename="camel"):
    """``GET /api/v1/position`` and each item of ``GET /api/v1/positions`` (section 3.8).

    ``current_qty`` is signed lots (negative = short); money fields are numbers;
    ``opening_timestamp``/``current_timestamp`` are ms. Fields that only exist for some
    margin modes default to None."""

    symbol: str
    id: str | None = None
    current_qty: int = 0
    is_open: bool = False
    cross_mode: bool | None = None
    margin_mode: str | None = None
    position_side: str | None = None
    leverage: float | None = None
    real_leverage: float | None = None
    deleverage_percentage: float | None = msgspec.field(default=None, name="delevPercentage")
    opening_timestamp: int | None = None
    current_timestamp: int | None = None
    current_cost: float | None = None
    current_comm: float | None = None
    unrealised_cost: float | None = None
    realised_gross_cost: float | None = None
    realised_cost: float | None = None
    mark_price: float | None = None
    mark_value: float | None = None
    pos_cost: float | None = None
    pos_init: float | None = None
    pos_margin: float | None = None
    pos_maint: float | None = None
    maint_margin: float | None = None
    realised_gross_pnl: float | None = None
    realised_pnl: float | None = None
    unrealised_pnl: float | None = None
    unrealised_pnl_pcnt: float | None = None
    unrealised_roe_pcnt: float | None = None
    avg_entry_price: float | None = None
    liquidation_price: float | None = None
    bankrupt_price: float | None = None
    settle_currency: str | None = None
    is_inverse: bool | None = None
    auto_deposit: bool | None = None
    maint_margin_req: float | None = None
    maintain_margin: float | None = None
    risk_limit: float | None = None


class Contract(msgspec.Struct, frozen=True, rename="camel"):
    """A contract spec, ``GET /api/v1/contracts/{symbol}`` or an item of
    ``/contracts/active`` (section 3.7). Numeric fields are JSON numbers; ``multiplier`` is
    negative for inverse contracts; ``first_open_date`` is ms."""

    symbol: str
    tick_size: float
    lot_size: int
    multiplier: float
    root_symbol: str | None = None
    type: str | None = None
    base_currency: str | None = None
    quote_currency: str | None = None
    settle_currency: str | None = None
    first_open_date: int | None = None
    expire_date: int | None = None
    max_order_qty: int | None = None
    max_price: float | None = None
    index_price_tick_size: float | None = None
    initial_margin: float | None = None
    maintain_margin: float | None = None
    max_risk_limit: float | None = None
    min_risk_limit: float | None = None
    risk_step: float | None = None
    maker_fee_rate: float | None = None
    taker_fee_rate: float | None = None
    taker_fix_fee: float | None = None
    maker_fix_fee: float | None = None
    is_inverse: bool = False
    is_quanto: bool | None = None
    mark_method: str | None = None
    fair_method: str | None = None
    index_symbol: str | None = None
    status: str | None = None
    funding_fee_rate: float | None = None
    predicted_funding_fee_rate: float | None = None
    funding_rate_granularity: int | None = None
    next_funding_rate_time: int | None = None
    open_interest: str | None = None
    mark_price: float | None = None
    index_price: float | None = None
    last_trade_price: float | None = None
    max_leverage: int | None = None
    support_cross: bool | None = None
    buy_limit: float | None = None
    sell_limit: float | None = None


class Ticker(msgspec.Struct, frozen=True, rename="camel"):
    """``GET /api/v1/ticker?symbol=``: last trade and best bid/ask; prices are strings,
    sizes int lots, ``ts`` is ns."""

    symbol: str
    sequence: int
    best_bid_price: str
    best_bid_size: int
    best_ask_price: str
    best_ask_size: int
    ts: int
    price: str | None = None
    size: int | None = None
    side: str | None = None
    trade_id: str | None = None


class Level2Snapshot(msgspec.Struct, frozen=True, rename="camel"):
    """``GET /api/v1/level2/snapshot?symbol=``: the full book at ``sequence``. Levels are
    ``(price, size_lots)``; the wire carries prices as numbers or strings, both decode.
    ``ts`` is ns. WebSocket deltas with ``sequence <=`` this one are already included."""

    symbol: str
    sequence: int
    bids: list[tuple[float, int]]
    asks: list[tuple[float, int]]
    ts: int | None = None


class Kline(msgspec.Struct, frozen=True, array_like=True):
    """One row of ``GET /api/v1/kline/query``: ``[time_ms, open, high, low, close, volume]``
    (REST order: high before low, unlike the WebSocket candle), with turnover when sent."""

    time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    turnover: float | None = None


class AccountOverview(msgspec.Struct, frozen=True, rename="camel"):
    """``GET /api/v1/account-overview?currency=``: money fields in ``currency``."""

    currency: str
    account_equity: float
    unrealised_pnl: float = msgspec.field(default=0.0, name="unrealisedPNL")
    margin_balance: float = 0.0
    position_margin: float = 0.0
    order_margin: float = 0.0
    frozen_funds: float = 0.0
    available_balance: float = 0.0
    risk_ratio: float | None = None
    max_withdraw_amount: float | None = None
