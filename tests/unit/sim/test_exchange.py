"""The simulated exchange: validation, matching, stops, positions, fees, liquidation,
public events and their sequences."""

from __future__ import annotations

import itertools

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.sim.contracts import DEFAULT_CONTRACTS
from liveopt.sim.exchange import (
    BboEvent,
    BookChangeEvent,
    SimError,
    SimExchange,
    SimFill,
    TickerEvent,
    TradeEvent,
)
from liveopt.sim.market import GeneratedMarket, MarketBook, MarketEvent, MarketTrade

START_NS = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
XBT = DEFAULT_CONTRACTS["XBTUSDTM"]
MULT = XBT.multiplier


class ScriptedMarket:
    """A market source that replays events the test pushes."""

    def __init__(self, *events: MarketEvent) -> None:
        self._queue: list[MarketEvent] = list(events)

    def start(self, start_ns: int) -> None:
        self.start_ns = start_ns

    def push(self, *events: MarketEvent) -> None:
        self._queue.extend(events)

    def events_until(self, now_ns: int) -> list[MarketEvent]:
        due = [e for e in self._queue if e.ts_ns <= now_ns]
        self._queue = [e for e in self._queue if e.ts_ns > now_ns]
        return due


def ladder(ts_ns: int, bid: int, ask: int, size: int = 10, levels: int = 3) -> MarketBook:
    return MarketBook(
        ts_ns=ts_ns,
        bids=tuple((bid - k, size) for k in range(levels)),
        asks=tuple((ask + k, size) for k in range(levels)),
    )


def make(balance: float = 100_000.0, bid: int = 600_000, ask: int = 600_001,
         size: int = 10, levels: int = 3) -> tuple[SimExchange, ScriptedMarket]:
    market = ScriptedMarket(ladder(START_NS, bid, ask, size, levels))
    exchange = SimExchange({"XBTUSDTM": XBT}, {"XBTUSDTM": market}, start_ns=START_NS,
                           balance=balance)
    return exchange, market


_oids = itertools.count(1)


def order(**fields: object) -> dict[str, object]:
    body: dict[str, object] = {"clientOid": f"t{next(_oids)}", "symbol": "XBTUSDTM",
                               "side": "buy", "type": "market", "size": 1, "leverage": 10}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def px(ticks: int) -> float:
    return ticks / 10


def published(exchange: SimExchange) -> tuple[list, list]:
    snap = exchange.level2_snapshot("XBTUSDTM")
    return snap.bids, snap.asks


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("fields", "code", "field_name"),
    [
        ({"clientOid": None}, "400100", "clientOid"),
        ({"clientOid": "has space"}, "400100", "clientOid"),
        ({"clientOid": "x" * 41}, "400100", "clientOid"),
        ({"symbol": "NOPEUSDTM"}, "400100", "NOPEUSDTM"),
        ({"side": "long"}, "400100", "side"),
        ({"type": "stop"}, "400100", "type"),
        ({"size": 0}, "400100", "size"),
        ({"size": 1.5}, "400100", "size"),
        ({"size": True}, "400100", "size"),
        ({"size": None}, "400100", "size"),
        ({"size": 2_000_000}, "400100", "maxOrderQty"),
        ({"type": "limit"}, "400100", "price"),
        ({"type": "limit", "price": "60000.05"}, "400100", "tickSize"),
        ({"type": "limit", "price": "-1"}, "400100", "price"),
        ({"type": "limit", "price": "abc"}, "400100", "price"),
        ({"leverage": 126}, "300016", "maxLeverage"),
        ({"leverage": 0}, "400100", "leverage"),
        ({"leverage": None}, "400100", "leverage"),
        ({"leverage": "ten"}, "400100", "leverage"),
        ({"stop": "down", "stopPriceType": "TP"}, "400100", "stopPrice"),
        ({"stop": "down", "stopPrice": "59000"}, "400100", "stopPriceType"),
        ({"stop": "sideways", "stopPrice": "59000", "stopPriceType": "TP"}, "400100", "stop"),
        ({"stop": "down", "stopPrice": "59000.01", "stopPriceType": "TP"}, "400100",
         "stopPrice"),
        ({"marginMode": "CROSS"}, "330005", "marginMode"),
        ({"timeInForce": "FOK"}, "400100", "timeInForce"),
        ({"postOnly": True}, "400100", "postOnly"),
        ({"reduceOnly": "yes"}, "400100", "reduceOnly"),
        ({"closeOrder": True}, "300009", "closeOrder"),
        ({"size": 10_000}, "300003", "balance"),
    ],
)
def test_invalid_orders_are_rejected_with_the_protocol_code_naming_the_field(
        fields: dict, code: str, field_name: str) -> None:
    exchange, _ = make(balance=1_000.0, size=100_000)
    with pytest.raises(SimError) as caught:
        exchange.place_order(order(**fields), START_NS)
    assert caught.value.code == code
    assert field_name in caught.value.message
    assert exchange.list_orders(None, None).total_num == 0


def test_parameter_errors_use_http_400_and_business_errors_http_200() -> None:
    exchange, _ = make(balance=1.0)
    with pytest.raises(SimError) as bad_param:
        exchange.place_order(order(size=0), START_NS)
    with pytest.raises(SimError) as no_money:
        exchange.place_order(order(size=100), START_NS)
    assert (bad_param.value.http_status, no_money.value.http_status) == (400, 200)


def test_a_repeated_client_oid_is_rejected_with_300018() -> None:
    exchange, _ = make()
    exchange.place_order(order(clientOid="same"), START_NS)
    with pytest.raises(SimError) as caught:
        exchange.place_order(order(clientOid="same"), START_NS)
    assert caught.value.code == "300018"


def test_unknown_symbols_are_rejected_by_every_query_with_the_symbol_in_the_message() -> None:
    exchange, _ = make()
    for query in (exchange.contract, exchange.ticker, exchange.level2_snapshot,
                  exchange.depth5, exchange.position):
        with pytest.raises(SimError, match="BADUSDTM") as caught:
            query("BADUSDTM")
        assert caught.value.code == "400100"


def test_test_order_validates_without_placing_anything() -> None:
    exchange, _ = make()
    ack = exchange.test_order(order(clientOid="probe"), START_NS)
    assert ack.client_oid == "probe"
    assert exchange.list_orders(None, None).total_num == 0
    placed = exchange.place_order(order(clientOid="probe"), START_NS)
    assert placed.order_id == ack.order_id


# ----------------------------------------------------------------------------- matching


def test_market_order_walks_the_book_best_price_first() -> None:
    exchange, _ = make(size=5)
    exchange.advance(START_NS)
    exchange.place_order(order(size=12), START_NS)
    events = exchange.advance(START_NS)
    trades = [e.data for e in events if isinstance(e, TradeEvent)]
    assert [(t.price, t.size, t.side) for t in trades] == [
        ("60000.1", 5, "buy"), ("60000.2", 5, "buy"), ("60000.3", 2, "buy")]
    position = exchange.position("XBTUSDTM")
    assert position.current_qty == 12
    assert position.avg_entry_price == pytest.approx((5 * 60000.1 + 5 * 60000.2
                                                      + 2 * 60000.3) / 12)
    _, asks = published(exchange)
    assert asks == [(60000.3, 3)]


def test_market_order_larger_than_the_book_cancels_its_remainder() -> None:
    exchange, _ = make(size=2, levels=2)
    ack = exchange.place_order(order(size=10), START_NS)
    data = exchange.order(ack.order_id)
    assert (data.filled_size, data.status, data.cancel_exist) == (4, "done", True)
    assert exchange.position("XBTUSDTM").current_qty == 4


def test_taker_fee_is_charged_on_each_fills_own_notional() -> None:
    exchange, _ = make(size=1)
    exchange.place_order(order(size=2), START_NS)
    fills = exchange.fills()
    expected = [60000.1 * MULT * XBT.taker_fee_rate, 60000.2 * MULT * XBT.taker_fee_rate]
    assert [f.fee for f in fills] == pytest.approx(expected)
    assert exchange.wallet_balance == pytest.approx(100_000.0 - sum(expected))


def test_resting_limit_joins_the_published_book_and_freezes_margin() -> None:
    exchange, _ = make()
    exchange.advance(START_NS)
    exchange.place_order(order(type="limit", price="59999.5", size=4), START_NS)
    events = exchange.advance(START_NS)
    bids, _ = published(exchange)
    assert (59999.5, 4) in bids
    changes = [e.data.change for e in events if isinstance(e, BookChangeEvent)]
    assert changes == ["59999.5,buy,4"]
    overview = exchange.account_overview("USDT")
    assert overview.order_margin == pytest.approx(4 * 59999.5 * MULT / 10)
    assert overview.available_balance == pytest.approx(100_000.0 - overview.order_margin)


def test_a_print_through_a_resting_limit_fills_it_as_maker_up_to_the_print_size() -> None:
    exchange, market = make()
    ack = exchange.place_order(order(type="limit", price="59999.5", size=4), START_NS)
    market.push(MarketTrade(ts_ns=START_NS + SECOND, price_ticks=599_990, size=3,
                            side="sell"))
    exchange.advance(START_NS + SECOND)
    data = exchange.order(ack.order_id)
    assert (data.filled_size, data.status) == (3, "open")
    fill = exchange.fills()[-1]
    assert (fill.liquidity, fill.price, fill.size) == ("maker", 59999.5, 3)
    assert fill.fee == pytest.approx(3 * 59999.5 * MULT * XBT.maker_fee_rate)
    bids, _ = published(exchange)
    assert (59999.5, 1) in bids


def test_a_print_that_does_not_reach_the_limit_price_leaves_it_alone() -> None:
    exchange, market = make()
    ack = exchange.place_order(order(type="limit", price="59999.5", size=4), START_NS)
    market.push(MarketTrade(ts_ns=START_NS + SECOND, price_ticks=599_996, size=50,
                            side="sell"))
    exchange.advance(START_NS + SECOND)
    assert exchange.order(ack.order_id).filled_size == 0


def test_a_ladder_moving_through_a_resting_order_fills_it_and_never_crosses_the_book() -> None:
    exchange, market = make()
    ack = exchange.place_order(order(type="limit", price="59999.5", size=4), START_NS)
    market.push(ladder(START_NS + SECOND, 599_990, 599_994))
    events = exchange.advance(START_NS + SECOND)
    assert exchange.order(ack.order_id).status == "done"
    assert exchange.position("XBTUSDTM").current_qty == 4
    trades = [e.data for e in events if isinstance(e, TradeEvent)]
    assert [(t.price, t.size, t.side) for t in trades] == [("59999.5", 4, "sell")]
    bids, asks = published(exchange)
    assert bids[0][0] < asks[0][0]


def test_crossing_limit_takes_up_to_its_price_and_rests_the_remainder() -> None:
    exchange, _ = make(size=3)
    ack = exchange.place_order(order(type="limit", price="60000.2", size=10), START_NS)
    data = exchange.order(ack.order_id)
    assert (data.filled_size, data.status) == (6, "open")
    bids, asks = published(exchange)
    assert bids[0] == (60000.2, 4)
    assert asks[0] == (60000.3, 3)


def test_post_only_order_that_would_take_is_cancelled_without_a_fill() -> None:
    exchange, _ = make()
    ack = exchange.place_order(order(type="limit", price="60000.1", postOnly=True), START_NS)
    data = exchange.order(ack.order_id)
    assert (data.status, data.cancel_exist, data.filled_size) == ("done", True, 0)


def test_ioc_limit_cancels_what_it_cannot_take_at_once() -> None:
    exchange, _ = make(size=2, levels=1)
    ack = exchange.place_order(order(type="limit", price="60000.5", size=5,
                                     timeInForce="IOC"), START_NS)
    data = exchange.order(ack.order_id)
    assert (data.filled_size, data.status, data.cancel_exist) == (2, "done", True)
    assert exchange.level2_snapshot("XBTUSDTM").bids == [(60000.0, 2)]


# ----------------------------------------------------------------------------- stops


def test_take_profit_priced_stop_triggers_on_a_trade_at_its_price() -> None:
    exchange, market = make()
    exchange.place_order(order(size=2), START_NS)
    stop = exchange.place_order(order(side="sell", size=2, stop="down", stopPrice="59990",
                                      stopPriceType="TP", reduceOnly=True), START_NS)
    assert exchange.list_stop_orders("XBTUSDTM").total_num == 1
    market.push(MarketTrade(ts_ns=START_NS + SECOND, price_ticks=599_901, size=1,
                            side="sell"))
    exchange.advance(START_NS + SECOND)
    assert exchange.order(stop.order_id).stop_triggered is False
    market.push(MarketTrade(ts_ns=START_NS + 2 * SECOND, price_ticks=599_900, size=1,
                            side="sell"))
    exchange.advance(START_NS + 2 * SECOND)
    data = exchange.order(stop.order_id)
    assert (data.stop_triggered, data.status, data.filled_size) == (True, "done", 2)
    assert exchange.position("XBTUSDTM").current_qty == 0
    assert exchange.list_stop_orders("XBTUSDTM").total_num == 0


def test_mark_priced_stop_triggers_on_the_mid_not_on_trades() -> None:
    exchange, market = make()
    stop = exchange.place_order(order(size=1, stop="up", stopPrice="60010",
                                      stopPriceType="MP"), START_NS)
    market.push(MarketTrade(ts_ns=START_NS + SECOND, price_ticks=600_200, size=1, side="buy"))
    exchange.advance(START_NS + SECOND)
    assert exchange.order(stop.order_id).stop_triggered is False
    market.push(ladder(START_NS + 2 * SECOND, 600_099, 600_101))
    exchange.advance(START_NS + 2 * SECOND)
    data = exchange.order(stop.order_id)
    assert (data.stop_triggered, data.filled_size) == (True, 1)
    assert exchange.fills()[-1].price == pytest.approx(60010.1)


def test_stop_whose_condition_already_holds_triggers_when_placed() -> None:
    exchange, _ = make()
    stop = exchange.place_order(order(size=1, stop="up", stopPrice="59000",
                                      stopPriceType="MP"), START_NS)
    assert exchange.order(stop.order_id).filled_size == 1


def test_triggered_stop_limit_rests_at_its_limit_price() -> None:
    exchange, market = make()
    stop = exchange.place_order(order(type="limit", price="59000", size=1, stop="down",
                                      stopPrice="59990", stopPriceType="MP"), START_NS)
    market.push(ladder(START_NS + SECOND, 599_800, 599_801))
    exchange.advance(START_NS + SECOND)
    data = exchange.order(stop.order_id)
    assert (data.stop_triggered, data.status, data.filled_size) == (True, "open", 0)
    assert (59000.0, 1) in exchange.level2_snapshot("XBTUSDTM").bids


def test_close_order_stop_placed_before_the_position_closes_it_when_it_fires() -> None:
    exchange, market = make()
    stop = exchange.place_order(order(closeOrder=True, side=None, size=None, leverage=None,
                                      stop="down", stopPrice="59990", stopPriceType="MP"),
                                START_NS)
    exchange.place_order(order(size=6), START_NS)
    market.push(ladder(START_NS + SECOND, 599_800, 599_801))
    exchange.advance(START_NS + SECOND)
    data = exchange.order(stop.order_id)
    assert (data.stop_triggered, data.side, data.filled_size) == (True, "sell", 6)
    assert exchange.position("XBTUSDTM").current_qty == 0


def test_stop_that_cannot_pay_its_margin_when_it_fires_is_cancelled() -> None:
    exchange, market = make(balance=10.0)
    stop = exchange.place_order(order(size=5, leverage=1, stop="up", stopPrice="60010",
                                      stopPriceType="MP"), START_NS)
    assert exchange.account_overview("USDT").order_margin == 0.0
    market.push(ladder(START_NS + SECOND, 600_200, 600_201))
    exchange.advance(START_NS + SECOND)
    data = exchange.order(stop.order_id)
    assert (data.stop_triggered, data.status, data.cancel_exist, data.filled_size) == (
        True, "done", True, 0)


def test_cancel_all_stops_cancels_only_untriggered_stops() -> None:
    exchange, _ = make()
    limit = exchange.place_order(order(type="limit", price="59000"), START_NS)
    stop = exchange.place_order(order(stop="up", stopPrice="61000", stopPriceType="TP"),
                                START_NS)
    assert exchange.cancel_all_stops(None, START_NS) == {"cancelledOrderIds": [stop.order_id]}
    assert exchange.order(limit.order_id).status == "open"
    assert exchange.order(stop.order_id).status == "done"


# ----------------------------------------------------------------------------- reduce-only


def test_reduce_only_order_trims_to_the_position_and_never_flips_it() -> None:
    exchange, _ = make()
    exchange.place_order(order(size=5), START_NS)
    ack = exchange.place_order(order(side="sell", size=8, reduceOnly=True), START_NS)
    assert exchange.position("XBTUSDTM").current_qty == 0
    data = exchange.order(ack.order_id)
    assert data.filled_size == 5 and data.status == "done"


def test_reduce_only_order_without_a_position_is_cancelled_unfilled() -> None:
    exchange, _ = make()
    ack = exchange.place_order(order(side="sell", size=3, reduceOnly=True), START_NS)
    data = exchange.order(ack.order_id)
    assert (data.filled_size, data.cancel_exist) == (0, True)
    assert exchange.position("XBTUSDTM").current_qty == 0


def test_close_order_closes_the_whole_position_whatever_side_and_size_say() -> None:
    exchange, _ = make()
    exchange.place_order(order(side="sell", size=7), START_NS)
    exchange.place_order(order(closeOrder=True, side=None, size=None, leverage=None),
                         START_NS)
    assert exchange.position("XBTUSDTM").current_qty == 0


def test_resting_reduce_only_limit_is_cancelled_when_the_position_is_gone() -> None:
    exchange, market = make()
    exchange.place_order(order(size=2), START_NS)
    tp = exchange.place_order(order(type="limit", side="sell", price="60005", size=2,
                                    reduceOnly=True), START_NS)
    exchange.place_order(order(side="sell", size=2), START_NS)
    assert exchange.order(tp.order_id).status == "done"
    assert all(price != 60005.0 for price, _ in published(exchange)[1])
    market.push(MarketTrade(ts_ns=START_NS + SECOND, price_ticks=600_050, size=5, side="buy"))
    exchange.advance(START_NS + SECOND)
    data = exchange.order(tp.order_id)
    assert data.filled_size == 0 and data.status == "done"
    assert exchange.position("XBTUSDTM").current_qty == 0


# ----------------------------------------------------------------------------- cancels


def test_cancelling_a_done_order_gives_100004_and_an_unknown_one_20001() -> None:
    exchange, _ = make()
    done = exchange.place_order(order(), START_NS)
    with pytest.raises(SimError) as not_cancelable:
        exchange.cancel_order(done.order_id, START_NS)
    with pytest.raises(SimError) as unknown:
        exchange.cancel_order("123", START_NS)
    assert (not_cancelable.value.code, unknown.value.code) == ("100004", "20001")


def test_cancel_by_client_oid_removes_the_order_from_the_book() -> None:
    exchange, _ = make()
    exchange.place_order(order(clientOid="mine", type="limit", price="59990", size=3),
                         START_NS)
    with pytest.raises(SimError):
        exchange.cancel_by_client_oid("ETHUSDTM", "mine", START_NS)
    assert exchange.cancel_by_client_oid("XBTUSDTM", "mine", START_NS) == {"clientOid": "mine"}
    assert exchange.order_by_client_oid("mine").cancel_exist is True
    bids, _ = published(exchange)
    assert all(price != 59990.0 for price, _ in bids)
    assert exchange.account_overview("USDT").order_margin == 0.0


def test_cancel_all_cancels_open_orders_and_lists_them_newest_first() -> None:
    exchange, _ = make()
    ids = [exchange.place_order(order(type="limit", price=p), START_NS).order_id
           for p in ("59990", "59991", "59992")]
    assert exchange.list_orders("XBTUSDTM", "active", 1, 2).items[0].id == ids[2]
    result = exchange.cancel_all("XBTUSDTM", START_NS)
    assert sorted(result["cancelledOrderIds"]) == sorted(ids)
    page = exchange.list_orders("XBTUSDTM", "done", 2, 2)
    assert (page.total_num, page.total_page, [o.id for o in page.items]) == (3, 2, [ids[0]])


# ----------------------------------------------------------------------------- PnL


def test_round_trip_pnl_and_fees_match_a_hand_computation() -> None:
    exchange, market = make()
    exchange.place_order(order(size=10), START_NS)  # buys 10 at 60000.1
    market.push(ladder(START_NS + SECOND, 601_000, 601_001))
    exchange.advance(START_NS + SECOND)
    position = exchange.position("XBTUSDTM")
    # Mark is the mid 60100.05: (60100.05 - 60000.1) * 10 lots * 0.001.
    assert position.unrealised_pnl == pytest.approx(0.9995)
    exchange.place_order(order(side="sell", size=10), START_NS + SECOND)  # sells at 60100.0
    entry_fee = 60000.1 * 10 * 0.001 * 0.0006
    exit_fee = 60100.0 * 10 * 0.001 * 0.0006
    realised = (60100.0 - 60000.1) * 10 * 0.001
    assert exchange.total_realised_pnl == pytest.approx(realised)
    assert exchange.total_fees == pytest.approx(entry_fee + exit_fee)
    assert exchange.wallet_balance == pytest.approx(100_000.0 + realised - entry_fee - exit_fee)
    assert exchange.account_overview("USDT").account_equity == pytest.approx(
        exchange.wallet_balance)


def test_adding_to_a_position_averages_the_entry_and_flipping_restarts_it() -> None:
    exchange, market = make(size=100)
    exchange.place_order(order(size=10), START_NS)  # 10 @ 60000.1
    market.push(ladder(START_NS + SECOND, 602_000, 602_001, size=100))
    exchange.advance(START_NS + SECOND)
    exchange.place_order(order(size=30), START_NS + SECOND)  # 30 @ 60200.1
    assert exchange.position("XBTUSDTM").avg_entry_price == pytest.approx(
        (10 * 60000.1 + 30 * 60200.1) / 40)
    exchange.place_order(order(side="sell", size=50), START_NS + SECOND)  # 50 @ 60200.0
    position = exchange.position("XBTUSDTM")
    assert (position.current_qty, position.avg_entry_price) == (-10, 60200.0)
    assert exchange.fills()[-1].realised_pnl == pytest.approx(
        (60200.0 - (10 * 60000.1 + 30 * 60200.1) / 40) * 40 * MULT)


def test_position_reports_margin_and_liquidation_price_of_isolated_margin() -> None:
    exchange, _ = make(bid=599_999, ask=600_000)
    exchange.place_order(order(size=10, leverage=10), START_NS)  # 10 @ 60000.0
    position = exchange.position("XBTUSDTM")
    assert position.pos_margin == pytest.approx(10 * 60000.0 * MULT / 10)
    assert position.liquidation_price == pytest.approx(60000.0 * (1 - 0.1 + 0.004))
    assert position.is_open and position.margin_mode == "ISOLATED"
    overview = exchange.account_overview("USDT")
    assert overview.available_balance + overview.position_margin + overview.order_margin == (
        pytest.approx(overview.margin_balance))


def test_long_is_liquidated_at_its_liquidation_price_and_loses_its_margin() -> None:
    exchange, market = make(bid=599_999, ask=600_000)
    exchange.place_order(order(size=10, leverage=10), START_NS)  # 10 @ 60000.0
    wallet = exchange.wallet_balance
    liquidation = 60000.0 * (1 - 0.1 + 0.004)  # 54240.0, a mid of 542399.5 / 542400.5 ticks
    market.push(ladder(START_NS + SECOND, 542_401, 542_402))
    exchange.advance(START_NS + SECOND)
    assert exchange.position("XBTUSDTM").current_qty == 10
    market.push(ladder(START_NS + 2 * SECOND, 542_399, 542_401))
    exchange.advance(START_NS + 2 * SECOND)
    assert exchange.position("XBTUSDTM").current_qty == 0
    last = exchange.fills()[-1]
    assert (last.liquidity, last.price) == ("liquidation", pytest.approx(liquidation))
    assert exchange.wallet_balance == pytest.approx(wallet - 60.0)


def test_short_is_liquidated_when_the_mark_reaches_its_liquidation_price() -> None:
    exchange, market = make(bid=600_000, ask=600_001)
    exchange.place_order(order(side="sell", size=4, leverage=20), START_NS)  # 4 @ 60000.0
    liquidation = 60000.0 * (1 + 0.05 - 0.004)  # 62760.0
    assert exchange.position("XBTUSDTM").liquidation_price == pytest.approx(liquidation)
    market.push(ladder(START_NS + SECOND, 627_598, 627_600))
    exchange.advance(START_NS + SECOND)
    assert exchange.position("XBTUSDTM").current_qty == -4
    market.push(ladder(START_NS + 2 * SECOND, 627_599, 627_601))
    exchange.advance(START_NS + 2 * SECOND)
    assert exchange.position("XBTUSDTM").current_qty == 0
    assert exchange.fills()[-1].realised_pnl == pytest.approx(-4 * 60000.0 * MULT / 20)


# ----------------------------------------------------------------------------- market data


def test_candles_and_klines_follow_the_trades() -> None:
    exchange, market = make()
    minute = 60 * SECOND
    base = (START_NS // minute + 1) * minute
    for offset, price in ((0, 600_010), (10, 600_050), (20, 599_990), (30, 600_020)):
        market.push(MarketTrade(ts_ns=base + offset * SECOND, price_ticks=price, size=2,
                                side="buy"))
    market.push(MarketTrade(ts_ns=base + 2 * minute, price_ticks=600_100, size=1, side="buy"))
    exchange.advance(base + 3 * minute)
    candle = exchange.candle("XBTUSDTM", 1, base + 59 * SECOND)
    assert candle.candles == [str(base // SECOND), "60001", "60002", "60005", "59999", "8",
                              candle.candles[6]]
    assert float(candle.candles[6]) == pytest.approx(
        2 * MULT * (60001 + 60005 + 59999 + 60002))
    rows = exchange.klines("XBTUSDTM", 1, base // 1_000_000, (base + 2 * minute) // 1_000_000)
    assert [row[:6] for row in rows] == [
        [base // 1_000_000, 60001.0, 60005.0, 59999.0, 60002.0, 8.0],
        [(base + minute) // 1_000_000, 60002.0, 60002.0, 60002.0, 60002.0, 0.0],
        [(base + 2 * minute) // 1_000_000, 60010.0, 60010.0, 60010.0, 60010.0, 1.0],
    ]


def test_contract_data_carries_the_spec_and_live_market_fields() -> None:
    exchange, market = make()
    market.push(MarketTrade(ts_ns=START_NS + SECOND, price_ticks=600_003, size=1, side="buy"))
    exchange.advance(START_NS + SECOND)
    data = exchange.contract("XBTUSDTM")
    assert (data.tick_size, data.lot_size, data.multiplier, data.max_leverage) == (
        0.1, 1, 0.001, 125)
    assert (data.maker_fee_rate, data.taker_fee_rate, data.maintain_margin) == (
        0.0002, 0.0006, 0.004)
    assert data.last_trade_price == 60000.3
    assert data.mark_price == pytest.approx(60000.05)
    encoded = msgspec.json.decode(msgspec.json.encode(data))
    for name in ("rootSymbol", "firstOpenDate", "indexPriceTickSize", "fundingFeeRate",
                 "turnoverOf24h", "premiumsSymbol1M", "mmrLevConstant", "buyLimit",
                 "nextFundingRateTime", "openInterest"):
        assert name in encoded
    assert isinstance(encoded["openInterest"], str)
    assert [c.symbol for c in exchange.active_contracts()] == ["XBTUSDTM"]


def test_ticker_and_depth5_show_the_last_trade_and_top_of_book() -> None:
    exchange, market = make()
    market.push(MarketTrade(ts_ns=START_NS + SECOND, price_ticks=600_001, size=3, side="buy"))
    exchange.advance(START_NS + SECOND)
    ticker = exchange.ticker("XBTUSDTM")
    assert (ticker.price, ticker.size, ticker.side) == ("60000.1", 3, "buy")
    assert (ticker.best_bid_price, ticker.best_ask_price) == ("60000", "60000.1")
    depth = exchange.depth5("XBTUSDTM")
    assert depth.bids == [("60000", 10), ("59999.9", 10), ("59999.8", 10)]
    assert depth.sequence == exchange.level2_snapshot("XBTUSDTM").sequence


def _generated_exchange(seed: int) -> SimExchange:
    markets = {s: GeneratedMarket(s, seed + i, spec.start_price, spec.tick_size)
               for i, (s, spec) in enumerate(DEFAULT_CONTRACTS.items())}
    return SimExchange(dict(DEFAULT_CONTRACTS), markets, start_ns=START_NS)


def _script(exchange: SimExchange) -> list:
    events = list(exchange.advance(START_NS))
    for k in range(1, 101):
        now = START_NS + k * 200_000_000
        events.extend(exchange.advance(now))
        if k % 10 == 0:
            side = "buy" if k % 20 else "sell"
            exchange.place_order(order(clientOid=f"d{k}", symbol="ETHUSDTM", side=side,
                                       size=3), now)
            ticks = exchange.level2_snapshot("XBTUSDTM").bids[0][0]
            exchange.place_order(order(clientOid=f"l{k}", type="limit",
                                       price=f"{ticks - 0.5:.1f}", size=2), now)
    return events


def test_same_seed_and_same_orders_give_identical_events() -> None:
    encode = msgspec.json.Encoder().encode
    assert encode(_script(_generated_exchange(5))) == encode(_script(_generated_exchange(5)))


def test_sequences_are_contiguous_per_symbol_and_topic() -> None:
    events = _script(_generated_exchange(9))
    last: dict[tuple[str, type], int] = {}
    counts: dict[type, int] = {}
    for event in events:
        key = (event.symbol, type(event))
        if key in last:
            assert event.sequence == last[key] + 1
        last[key] = event.sequence
        assert event.sequence == event.data.sequence
        counts[type(event)] = counts.get(type(event), 0) + 1
    assert all(counts.get(kind, 0) > 10 for kind in (TradeEvent, TickerEvent, BboEvent,
                                                     BookChangeEvent))


def test_snapshot_plus_later_changes_equals_a_later_snapshot() -> None:
    exchange = _generated_exchange(13)
    exchange.advance(START_NS + SECOND)
    before = exchange.level2_snapshot("SOLUSDTM")
    levels = {("buy", p): s for p, s in before.bids} | {("sell", p): s for p, s in before.asks}
    events = []
    for k in range(2, 30):
        events.extend(exchange.advance(START_NS + k * SECOND // 2))
        if k == 10:
            exchange.place_order(order(symbol="SOLUSDTM", size=40), START_NS + 5 * SECOND)
    changes = [e.data for e in events if isinstance(e, BookChangeEvent)
               and e.symbol == "SOLUSDTM"]
    assert changes[0].sequence == before.sequence + 1
    for change in changes:
        price, side, size = change.change.split(",")
        if int(size) == 0:
            levels.pop((side, float(price)), None)
        else:
            levels[(side, float(price))] = int(size)
    after = exchange.level2_snapshot("SOLUSDTM")
    assert after.sequence == changes[-1].sequence
    assert levels == {("buy", p): s for p, s in after.bids} | {
        ("sell", p): s for p, s in after.asks}


# ----------------------------------------------------------------------------- property


def _replay_fills(fills: list[SimFill]) -> tuple[int, float, list[float]]:
    # Reference twin of position accounting: signed lots, average entry, realised PnL.
    qty, entry, realised = 0, 0.0, []
    for fill in fills:
        if fill.liquidity == "liquidation":
            realised.append(fill.realised_pnl)
            qty, entry = 0, 0.0
            continue
        signed = fill.size if fill.side == "buy" else -fill.size
        pnl = 0.0
        if qty and (qty > 0) != (signed > 0):
            closing = min(abs(signed), abs(qty))
            pnl = (fill.price - entry) * closing * MULT * (1 if qty > 0 else -1)
            qty += closing if signed > 0 else -closing
            signed += -closing if signed > 0 else closing
            if qty == 0:
                entry = 0.0
        if signed:
            entry = fill.price if qty == 0 else (
                (entry * abs(qty) + fill.price * abs(signed)) / (abs(qty) + abs(signed)))
            qty += signed
        realised.append(pnl)
    return qty, entry, realised


_market_action = st.tuples(st.just("market"), st.sampled_from(["buy", "sell"]),
                           st.integers(1, 30), st.integers(1, 125),
                           st.sampled_from([False, False, True]))
_limit_action = st.tuples(st.just("limit"), st.sampled_from(["buy", "sell"]),
                          st.integers(1, 30), st.integers(-20, 20), st.booleans())
_move_action = st.tuples(st.just("move"), st.one_of(st.integers(-30, 30),
                                                    st.integers(-40_000, 40_000)),
                         st.integers(1, 5), st.integers(1, 40))
_print_action = st.tuples(st.just("print"), st.sampled_from(["buy", "sell"]),
                          st.integers(1, 60))
# Orders, moves and prints are drawn more often than cancels and closes.
_action = st.one_of(
    _market_action, _market_action, _limit_action, _limit_action, _limit_action,
    _move_action, _move_action, _move_action, _print_action, _print_action,
    st.tuples(st.just("stop"), st.sampled_from(["buy", "sell"]), st.integers(1, 30),
              st.integers(-300, 300), st.sampled_from(["TP", "MP"])),
    st.tuples(st.just("cancel"), st.integers(0, 1000)),
    st.tuples(st.just("close"),),
)


@settings(max_examples=80, deadline=None)
@given(actions=st.lists(_action, min_size=15, max_size=50))
def test_money_is_conserved_and_positions_stay_whole_whatever_happens(actions: list) -> None:
    exchange, market = make(balance=2_000.0, size=10, levels=5)
    mid = 600_000
    now = START_NS
    for n, action in enumerate(actions):
        now += SECOND
        kind = action[0]
        try:
            if kind == "market":
                exchange.place_order(order(side=action[1], size=action[2], leverage=action[3],
                                           reduceOnly=action[4]), now)
            elif kind == "limit":
                exchange.place_order(order(type="limit", side=action[1], size=action[2],
                                           price=str(px(mid + action[3])), leverage=20,
                                           reduceOnly=action[4]), now)
            elif kind == "stop":
                exchange.place_order(order(side=action[1], size=action[2], stop="up" if
                                           action[3] > 0 else "down",
                                           stopPrice=str(px(mid + action[3])),
                                           stopPriceType=action[4], reduceOnly=True), now)
            elif kind == "move":
                mid = max(1000, mid + action[1])
                market.push(ladder(now, mid - action[2], mid + action[2], action[3], 5))
            elif kind == "print":
                bids, asks = published(exchange)
                top = asks if action[1] == "buy" else bids
                if top:
                    market.push(MarketTrade(ts_ns=now, price_ticks=round(top[0][0] * 10),
                                            size=action[2], side=action[1]))
            elif kind == "cancel":
                active = exchange.list_orders(None, "active", 1, 1000).items
                if active:
                    exchange.cancel_order(active[action[1] % len(active)].id, now)
            elif kind == "close":
                exchange.place_order(order(closeOrder=True, side=None, size=None,
                                           leverage=None), now)
        except SimError as error:
            assert error.code in {"300003", "300009", "400100"}, (n, error)
        exchange.advance(now)

        fills = exchange.fills()
        qty, entry, realised = _replay_fills(fills)
        position = exchange.position("XBTUSDTM")
        assert isinstance(position.current_qty, int)
        assert position.current_qty == qty
        assert position.avg_entry_price == pytest.approx(entry)
        assert [f.realised_pnl for f in fills] == pytest.approx(realised)
        # wallet = initial + realised PnL - fees, and every unit of it is either available
        # or frozen as position or order margin; equity adds the unrealised PnL.
        assert exchange.wallet_balance == pytest.approx(
            2_000.0 + sum(realised) - sum(f.fee for f in fills), abs=1e-6)
        overview = exchange.account_overview("USDT")
        assert overview.available_balance + overview.position_margin + (
            overview.order_margin) == pytest.approx(overview.margin_balance, abs=1e-6)
        assert overview.account_equity == pytest.approx(
            overview.margin_balance + overview.unrealised_pnl, abs=1e-6)
        bids, asks = published(exchange)
        if bids and asks:
            assert bids[0][0] < asks[0][0]


# ----------------------------------------------------------------------------- wire shapes


def test_event_payloads_encode_with_the_reference_field_names_and_types() -> None:
    exchange, market = make()
    exchange.advance(START_NS)
    market.push(MarketTrade(ts_ns=START_NS + SECOND, price_ticks=600_001, size=2, side="buy"),
                ladder(START_NS + SECOND, 600_001, 600_003))
    events = exchange.advance(START_NS + SECOND)
    decoded = {type(e): msgspec.json.decode(msgspec.json.encode(e.data)) for e in events}
    assert set(decoded[BboEvent]) == {"symbol", "sequence", "bestBidSize", "bestBidPrice",
                                      "bestAskPrice", "bestAskSize", "ts"}
    assert set(decoded[TradeEvent]) >= {"symbol", "sequence", "side", "size", "price",
                                        "takerOrderId", "makerOrderId", "tradeId", "ts"}
    assert set(decoded[BookChangeEvent]) == {"sequence", "change", "timestamp"}
    assert set(decoded[TickerEvent]) >= {"side", "size", "price", "tradeId", "bestBidPrice"}
    trade = decoded[TradeEvent]
    assert (trade["price"], trade["size"], trade["ts"]) == ("60000.1", 2, START_NS + SECOND)
    depth = msgspec.json.decode(msgspec.json.encode(exchange.depth5("XBTUSDTM")))
    assert depth["bids"][0] == ["60000.1", 10]
    assert depth["ts"] == depth["timestamp"] == (START_NS + SECOND) // 1_000_000
    account = msgspec.json.decode(msgspec.json.encode(exchange.account_overview("USDT")))
    assert "unrealisedPNL" in account and "availableBalance" in account


def test_tick_grid_converts_prices_exactly() -> None:
    grid = XBT.grid
    assert grid.exact_ticks("0.3") == 3
    assert grid.exact_ticks(60000.1) == 600_001
    assert grid.exact_ticks("60000.05") is None
    assert grid.exact_ticks("nan") is None
    assert [grid.to_str(t) for t in (600_000, 600_001, 3)] == ["60000", "60000.1", "0.3"]
    assert grid.nearest_ticks(60000.06) == 600_001
