"""Wire payloads of the simulated exchange: frozen structs whose JSON encoding is the
KuCoin futures shape (kucoin-protocol.md sections 2 and 3).

Fields are written in snake_case and encoded in camelCase (``rename="camel"``); the few
names camelCase cannot produce (``unrealisedPNL``, ``premiumsSymbol1M``) are spelled out.
Types follow the reference: prices are strings where it says str and numbers where it says
number, sizes are integer lots, ``ts`` is nanoseconds and ``time``/``timestamp`` are
milliseconds unless noted. ``msgspec.json.encode(struct)`` gives the exact ``data`` object
of a REST reply or a WebSocket frame.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

__all__ = [
    "AccountOverviewData",
    "CancelledIdsData",
    "CandleData",
    "ContractData",
    "Depth5Data",
    "ExecutionData",
    "KlineRow",
    "Level2ChangeData",
    "Level2SnapshotData",
    "OrderAckData",
    "OrderData",
    "Page",
    "PositionData",
    "StopOrderData",
    "TickerData",
    "TickerV1Data",
    "TickerV2Data",
]

ItemT = TypeVar("ItemT")


class _Wire(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of every wire payload: frozen, keyword-only, camelCase on the wire."""


# ----------------------------------------------------------------------------- REST market


class ContractData(_Wire):
    """``GET /api/v1/contracts/{symbol}`` data (kucoin-protocol.md 3.7); numbers are numbers."""

    symbol: str
    root_symbol: str
    type: str
    first_open_date: int
    expire_date: int | None
    settle_date: int | None
    base_currency: str
    quote_currency: str
    settle_currency: str
    max_order_qty: int
    max_price: float
    lot_size: int
    tick_size: float
    index_price_tick_size: float
    multiplier: float
    initial_margin: float
    maintain_margin: float
    max_risk_limit: int
    min_risk_limit: int
    risk_step: int
    maker_fee_rate: float
    taker_fee_rate: float
    taker_fix_fee: float
    maker_fix_fee: float
    settlement_fee: float | None
    is_deleverage: bool
    is_quanto: bool
    is_inverse: bool
    mark_method: str
    fair_method: str
    funding_base_symbol: str
    funding_quote_symbol: str
    funding_rate_symbol: str
    index_symbol: str
    settlement_symbol: str
    status: str
    funding_fee_rate: float
    predicted_funding_fee_rate: float
    funding_rate_granularity: int
    open_interest: str
    turnover_of24h: float = msgspec.field(name="turnoverOf24h")
    volume_of24h: float = msgspec.field(name="volumeOf24h")
    mark_price: float
    index_price: float
    last_trade_price: float
    next_funding_rate_time: int
    max_leverage: int
    source_exchanges: list[str]
    premiums_symbol_1m: str = msgspec.field(name="premiumsSymbol1M")
    premiums_symbol_8h: str = msgspec.field(name="premiumsSymbol8H")
    funding_base_symbol_1m: str = msgspec.field(name="fundingBaseSymbol1M")
    funding_quote_symbol_1m: str = msgspec.field(name="fundingQuoteSymbol1M")
    low_price: float
    high_price: float
    price_chg_pct: float
    price_chg: float
    k: float
    m: float
    f: float
    mmr_limit: float
    mmr_lev_constant: float
    support_cross: bool
    buy_limit: float
    sell_limit: float


class TickerData(_Wire):
    """``GET /api/v1/ticker`` data: last trade and BBO; prices are strings, ``ts`` in ns."""

    sequence: int
    symbol: str
    side: str
    size: int
    trade_id: str
    price: str
    best_bid_price: str
    best_bid_size: int
    best_ask_price: str
    best_ask_size: int
    ts: int


class Level2SnapshotData(_Wire):
    """``GET /api/v1/level2/snapshot`` (and depth20/100) data: ``[price, size]`` pairs as
    numbers (the reference SDK's sample), best first; ``ts`` in ns."""

    sequence: int
    symbol: str
    bids: list[tuple[float, int]]
    asks: list[tuple[float, int]]
    ts: int


class KlineRow(msgspec.Struct, frozen=True, array_like=True):
    """One ``GET /api/v1/kline/query`` row, encoded as the list
    ``[time_ms, open, high, low, close, volume, turnover]`` of numbers."""

    time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    turnover: float


# ----------------------------------------------------------------------------- REST account


class AccountOverviewData(_Wire):
    """``GET /api/v1/account-overview`` data."""

    account_equity: float
    unrealised_pnl: float = msgspec.field(name="unrealisedPNL")
    margin_balance: float
    position_margin: float
    order_margin: float
    frozen_funds: float
    available_balance: float
    currency: str
    risk_ratio: float
    max_withdraw_amount: float


class OrderAckData(_Wire):
    """``POST /api/v1/orders`` data."""

    order_id: str
    client_oid: str


class CancelledIdsData(_Wire):
    """Data of the cancel endpoints that return ``cancelledOrderIds``."""

    cancelled_order_ids: list[str]


class OrderData(_Wire):
    """One order as ``GET /api/v1/orders`` and ``/api/v1/orders/{id}`` return it
    (kucoin-protocol.md 3.6 item shape): price, value and stopPrice are strings, sizes int
    lots, ``leverage`` a string, ``createdAt``/``updatedAt``/``endAt`` ms, ``orderTime`` ns."""

    id: str
    symbol: str
    type: str
    side: str
    price: str
    size: int
    value: str
    deal_value: str
    deal_size: int
    stp: str
    stop: str
    stop_price_type: str
    stop_triggered: bool
    stop_price: str | None
    time_in_force: str
    post_only: bool
    hidden: bool
    iceberg: bool
    leverage: str
    force_hold: bool
    close_order: bool
    visible_size: int
    client_oid: str
    remark: str | None
    tags: str
    is_active: bool
    cancel_exist: bool
    created_at: int
    updated_at: int
    end_at: int | None
    order_time: int
    settle_currency: str
    margin_mode: str
    avg_deal_price: str
    filled_size: int
    filled_value: str
    status: str
    reduce_only: bool


class StopOrderData(OrderData, frozen=True, kw_only=True, rename="camel"):
    """An untriggered stop order as ``GET /api/v1/stopOrders`` lists it (same shape)."""


class Page(_Wire, Generic[ItemT]):
    """A paginated list: ``{currentPage, pageSize, totalNum, totalPage, items}``."""

    current_page: int
    page_size: int
    total_num: int
    total_page: int
    items: list[ItemT]


class PositionData(_Wire):
    """``GET /api/v1/position`` data (kucoin-protocol.md 3.8), isolated margin."""

    id: str
    symbol: str
    auto_deposit: bool
    cross_mode: bool
    maint_margin_req: float
    risk_limit: int
    real_leverage: float
    delev_percentage: float
    opening_timestamp: int
    current_timestamp: int
    current_qty: int
    current_cost: float
    current_comm: float
    unrealised_cost: float
    realised_gross_cost: float
    realised_cost: float
    is_open: bool
    mark_price: float
    mark_value: float
    pos_cost: float
    pos_cross: float
    pos_cross_margin: float
    pos_init: float
    pos_comm: float
    pos_comm_common: float
    pos_loss: float
    pos_margin: float
    pos_funding: float
    pos_maint: float
    maint_margin: float
    realised_gross_pnl: float
    realised_pnl: float
    unrealised_pnl: float
    unrealised_pnl_pcnt: float
    unrealised_roe_pcnt: float
    avg_entry_price: float
    liquidation_price: float
    bankrupt_price: float
    settle_currency: str
    is_inverse: bool
    maintain_margin: float
    risk_limit_level: int
    margin_mode: str
    position_side: str
    leverage: float


# ----------------------------------------------------------------------------- WebSocket data


class TickerV2Data(_Wire):
    """``/contractMarket/tickerV2`` data: the BBO; prices strings, ``ts`` ns."""

    symbol: str
    sequence: int
    best_bid_size: int
    best_bid_price: str
    best_ask_price: str
    best_ask_size: int
    ts: int


class TickerV1Data(_Wire):
    """``/contractMarket/ticker`` data: last trade plus BBO; prices strings, ``ts`` ns."""

    symbol: str
    sequence: int
    side: str
    size: int
    price: str
    best_bid_size: int
    best_bid_price: str
    best_ask_price: str
    best_ask_size: int
    trade_id: str
    ts: int


class ExecutionData(_Wire):
    """``/contractMarket/execution`` data (subject ``match``): ``side`` is the taker side,
    ``ts`` ns; ``time`` repeats ``ts`` for clients of the older shape (2.2)."""

    symbol: str
    sequence: int
    side: str
    size: int
    price: str
    taker_order_id: str
    maker_order_id: str
    trade_id: str
    ts: int
    time: int


class Level2ChangeData(_Wire):
    """``/contractMarket/level2`` data: ``change`` is ``"price,side,size"`` with the new
    absolute size (0 deletes the level); ``timestamp`` ms."""

    sequence: int
    change: str
    timestamp: int


class Depth5Data(_Wire):
    """``/contractMarket/level2Depth5`` data: top five ``[priceStr, sizeInt]`` per side;
    ``timestamp`` and ``ts`` both ms, as in the documented sample."""

    bids: list[tuple[str, int]]
    asks: list[tuple[str, int]]
    sequence: int
    timestamp: int
    ts: int


class CandleData(_Wire):
    """``/contractMarket/limitCandle`` data: ``candles`` is seven strings ``[start_s, open,
    close, high, low, volume, turnover]``; ``time`` ms (push time)."""

    symbol: str
    candles: list[str]
    time: int
