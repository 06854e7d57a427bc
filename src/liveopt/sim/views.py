"""Wire views of the simulated exchange's state: the REST reply structs it returns.

Owns the translation of the records in :mod:`liveopt.sim.state` and
:mod:`liveopt.sim.orders` into :mod:`liveopt.sim.wire` structs: contract details with
their live market fields, orders and stop orders, paging of order lists, positions and
the account overview. Reads only; changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from liveopt.sim.candles import aggregate
from liveopt.sim.orders import Order, param_error
from liveopt.sim.positions import (
    bankrupt_price,
    liquidation_price,
    maint_margin,
    mark,
    order_margin,
    position_margin,
    unrealised,
)
from liveopt.sim.state import Account, SymbolState, num
from liveopt.sim.wire import (
    AccountOverviewData,
    ContractData,
    OrderData,
    Page,
    PositionData,
    StopOrderData,
)
from liveopt.units import NS_PER_DAY, NS_PER_MS

__all__ = [
    "account_overview",
    "contract_data",
    "order_data",
    "page",
    "position_data",
    "stop_order_data",
]

_FUNDING_INTERVAL_MS = 28_800_000
_MAX_PAGE_SIZE = 1000

T = TypeVar("T")


def contract_data(symbol: str, state: SymbolState, now_ns: int) -> ContractData:
    """Contract spec plus live market fields (kucoin-protocol.md 3.7) at ``now_ns``."""
    spec = state.spec
    now_ms = now_ns // NS_PER_MS
    day = aggregate(state, now_ns - NS_PER_DAY, now_ns + 1)
    mark_price = mark(state)
    last = (state.grid.to_float(state.last_price_ticks)
            if state.last_price_ticks is not None else mark_price)
    if day is None:
        low = high = open_ = last
        volume = turnover = 0.0
    else:
        open_ = state.grid.to_float(int(day[0]))
        high = state.grid.to_float(int(day[1]))
        low = state.grid.to_float(int(day[2]))
        volume, turnover = day[4], day[5]
    change = last - open_
    band = state.grid.nearest_ticks(mark_price * 0.05)
    mark_ticks = state.grid.nearest_ticks(mark_price)
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
        volume_of24h=volume * spec.multiplier, mark_price=mark_price, index_price=mark_price,
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


def order_data(order: Order, state: SymbolState, currency: str) -> OrderData:
    """An order as ``GET /api/v1/orders`` items show it."""
    return _order_fields(order, state, currency, OrderData)


def stop_order_data(order: Order, state: SymbolState, currency: str) -> StopOrderData:
    """A stop order as ``GET /api/v1/stopOrders`` items show it."""
    return _order_fields(order, state, currency, StopOrderData)


def _order_fields(order: Order, state: SymbolState, currency: str, cls: type[Any]) -> Any:
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
        size=order.size, value=num(value), deal_value=num(order.filled_value),
        deal_size=order.filled, stp="", stop=order.stop,
        stop_price_type=order.stop_price_type, stop_triggered=order.stop_triggered,
        stop_price=(grid.to_str(order.stop_price_ticks)
                    if order.stop_price_ticks is not None else None),
        time_in_force=order.time_in_force, post_only=order.post_only, hidden=False,
        iceberg=False, leverage=str(order.leverage), force_hold=False,
        close_order=order.close_order, visible_size=0, client_oid=order.client_oid,
        remark=order.remark, tags="", is_active=order.status == "open",
        cancel_exist=order.cancelled, created_at=order.created_ns // NS_PER_MS,
        updated_at=order.updated_ns // NS_PER_MS,
        end_at=order.end_ns // NS_PER_MS if order.end_ns is not None else None,
        order_time=order.created_ns, settle_currency=currency,
        margin_mode="ISOLATED", avg_deal_price=num(avg), filled_size=order.filled,
        filled_value=num(order.filled_value), status=order.status,
        reduce_only=order.reduce_only,
    )


def page(chosen: list[Order], current_page: int, page_size: int,
         build: Callable[[Order], T]) -> Page[T]:
    """One page of orders, newest first; 400100 for a bad page or page size."""
    if isinstance(current_page, bool) or not isinstance(current_page, int) or (
            current_page < 1):
        raise param_error(f"currentPage: must be >= 1, got {current_page!r}")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not (
            1 <= page_size <= _MAX_PAGE_SIZE):
        raise param_error(f"pageSize: must be 1..{_MAX_PAGE_SIZE}, got {page_size!r}")
    chosen = sorted(chosen, key=lambda o: o.priority, reverse=True)
    total = len(chosen)
    items = [build(o) for o in chosen[(current_page - 1) * page_size: current_page * page_size]]
    return Page(current_page=current_page, page_size=page_size, total_num=total,
                total_page=math.ceil(total / page_size), items=items)


def position_data(symbol: str, state: SymbolState, now_ns: int, currency: str) -> PositionData:
    """The account's position in a symbol (``isOpen`` false when flat)."""
    pos = state.position
    spec = state.spec
    mark_price = mark(state)
    cost = pos.qty * pos.entry * spec.multiplier
    margin = position_margin(state)
    pnl = unrealised(state)
    maint = maint_margin(state)
    liq = liquidation_price(state)
    bankrupt = bankrupt_price(state)
    realised = pos.realised_gross - pos.fees
    mark_value = pos.qty * mark_price * spec.multiplier
    return PositionData(
        id=f"{symbol}-position", symbol=symbol, auto_deposit=False, cross_mode=False,
        maint_margin_req=spec.maintain_margin, risk_limit=100_000,
        real_leverage=(abs(mark_value) / margin) if margin else 0.0,
        delev_percentage=0.0,
        opening_timestamp=pos.opening_ns // NS_PER_MS,
        current_timestamp=now_ns // NS_PER_MS, current_qty=pos.qty,
        current_cost=cost, current_comm=pos.fees, unrealised_cost=cost,
        realised_gross_cost=-pos.realised_gross, realised_cost=pos.fees - pos.realised_gross,
        is_open=pos.qty != 0, mark_price=mark_price, mark_value=mark_value, pos_cost=abs(cost),
        pos_cross=0.0, pos_cross_margin=0.0, pos_init=margin, pos_comm=0.0,
        pos_comm_common=0.0, pos_loss=0.0, pos_margin=margin, pos_funding=0.0,
        pos_maint=maint, maint_margin=margin + pnl,
        realised_gross_pnl=pos.realised_gross, realised_pnl=realised,
        unrealised_pnl=pnl,
        unrealised_pnl_pcnt=(pnl / abs(cost)) if cost else 0.0,
        unrealised_roe_pcnt=(pnl / margin) if margin else 0.0,
        avg_entry_price=pos.entry, liquidation_price=liq, bankrupt_price=bankrupt,
        settle_currency=currency, is_inverse=False,
        maintain_margin=spec.maintain_margin, risk_limit_level=1,
        margin_mode="ISOLATED", position_side="BOTH", leverage=float(pos.leverage),
    )


def account_overview(account: Account, states: Mapping[str, SymbolState],
                     open_orders: Iterable[Order], account_currency: str,
                     currency: str | None) -> AccountOverviewData:
    """Balances in ``currency`` (all zero for a currency other than the account's)."""
    if currency not in (None, account_currency):
        return AccountOverviewData(
            account_equity=0.0, unrealised_pnl=0.0, margin_balance=0.0,
            position_margin=0.0, order_margin=0.0, frozen_funds=0.0,
            available_balance=0.0, currency=str(currency), risk_ratio=0.0,
            max_withdraw_amount=0.0)
    wallet = account.wallet
    pnl = sum(unrealised(st) for st in states.values())
    held = sum(position_margin(st) for st in states.values())
    frozen = order_margin(open_orders, states)
    available = wallet - held - frozen
    maint = sum(maint_margin(st) for st in states.values())
    equity = wallet + pnl
    return AccountOverviewData(
        account_equity=equity, unrealised_pnl=pnl, margin_balance=wallet,
        position_margin=held, order_margin=frozen, frozen_funds=0.0,
        available_balance=available,
        currency=account_currency, risk_ratio=(maint / equity) if equity > 0 else 0.0,
        max_withdraw_amount=max(0.0, available),
    )
