"""Every frame and REST payload the simulator produces, checked field by field (names and
JSON types: str vs int vs number vs bool) against the shapes documented in
kucoin-protocol.md. The documented samples are written out below as the expectations; the
payloads under test come from a running simulator over real HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import msgspec
import pytest

from liveopt.exchange.signing import Credentials, auth_headers
from liveopt.sim.config import SimConfig
from liveopt.sim.server import start_sim

START_NS = 1_700_000_000_000_000_000
CREDS = Credentials("sim-key", "sim-secret", "sim-passphrase")

# JSON type names: "str", "int" (no fraction part on the wire), "number" (int or float),
# "bool", "null", "list", "object", and "any" where the reference names a field but not
# its type. "a|b" accepts either.


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    return "object"


def type_matches(value: object, expected: str) -> bool:
    actual = json_type(value)
    for option in expected.split("|"):
        if option == "any" or option == actual or (
                option == "number" and actual in ("int", "float")):
            return True
    return False


def shape_of_sample(sample: dict) -> dict[str, str]:
    """The field -> JSON type expectation of a documented sample (ints stay ints, floats
    become numbers)."""
    return {name: ("number" if json_type(v) == "float" else json_type(v))
            for name, v in sample.items()}


def assert_shape(payload: dict, expected: dict[str, str], where: str,
                 extra_allowed: frozenset[str] = frozenset()) -> None:
    missing = sorted(set(expected) - set(payload))
    assert not missing, f"{where}: missing fields {missing}"
    unexpected = sorted(set(payload) - set(expected) - extra_allowed)
    assert not unexpected, f"{where}: undocumented fields {unexpected}"
    for name, kind in expected.items():
        assert type_matches(payload[name], kind), (
            f"{where}.{name}: expected {kind}, got {json_type(payload[name])} "
            f"({payload[name]!r})")


# --- documented samples and field tables (kucoin-protocol.md) ----------------------------------

# 2.1, the documented sample.
TICKER_V2_SAMPLE = {
    "topic": "/contractMarket/tickerV2:XBTUSDTM", "type": "message", "subject": "tickerV2",
    "sn": 1709284589209,
    "data": {"symbol": "XBTUSDTM", "sequence": 1709284589209, "bestBidSize": 713,
             "bestBidPrice": "88987.4", "bestAskPrice": "88987.5", "bestAskSize": 1037,
             "ts": 1731665526461000000},
}
# 2.1, the older ticker: tickerV2's fields plus side, size (int), price (str), tradeId (str).
TICKER_V1_DATA = {**shape_of_sample(TICKER_V2_SAMPLE["data"]), "side": "str", "size": "int",
                  "price": "str", "tradeId": "str"}
# 2.2 field list; `time` is the compatibility field the reference allows the simulator.
EXECUTION_DATA = {"symbol": "str", "sequence": "int", "side": "str", "size": "int",
                  "price": "str", "takerOrderId": "str", "makerOrderId": "str",
                  "tradeId": "str", "ts": "int"}
# 2.3 incremental level2.
LEVEL2_DATA = {"sequence": "int", "change": "str", "timestamp": "int"}
# 2.3 level2Depth5: bids/asks of [priceStr, sizeInt], sequence, timestamp and ts (ms).
DEPTH5_DATA = {"bids": "list", "asks": "list", "sequence": "int", "timestamp": "int",
               "ts": "int"}
# 2.4, the documented sample (no sn).
CANDLE_SAMPLE_DATA = {"symbol": "XBTUSDTM",
                      "candles": ["1731898200", "90638.6", "90638.6", "90638.6", "90638.6",
                                  "21.0", "21"],
                      "time": 1731898208357}
MESSAGE_FRAME = {"type": "str", "topic": "str", "subject": "str", "sn": "int",
                 "data": "object"}
# 1.2 - 1.4 control frames.
WELCOME = {"id": "str", "type": "str"}
PONG = {"id": "str", "type": "str"}
ACK = {"id": "str", "type": "str"}
ERROR_FRAME = {"id": "str", "type": "str", "code": "int", "data": "str"}
# 1.1 bullet response.
BULLET = {"token": "str", "instanceServers": "list"}
INSTANCE_SERVER = {"endpoint": "str", "encrypt": "bool", "protocol": "str",
                   "pingInterval": "int", "pingTimeout": "int"}
# 3.2 envelopes.
ERROR_ENVELOPE = {"code": "str", "msg": "str"}
# 3.4 / 3.5 documented samples.
ORDER_ACK_SAMPLE = {"orderId": "234125150956625920", "clientOid": "5c52e11203aa677f33e493fb"}
CANCEL_SAMPLE = {"cancelledOrderIds": ["235303670076489728"]}
CANCEL_BY_CLIENT_OID = {"clientOid": "str"}
# 3.6 order item (the same shape for GET /api/v1/orders and /api/v1/stopOrders).
ORDER_ITEM = {
    "id": "str", "symbol": "str", "type": "str", "side": "str", "price": "str", "size": "int",
    "value": "str", "dealValue": "str", "dealSize": "int", "filledSize": "int",
    "filledValue": "str", "stp": "str", "stop": "str", "stopPriceType": "str",
    "stopTriggered": "bool", "stopPrice": "str|null", "timeInForce": "str",
    "postOnly": "bool", "hidden": "bool", "iceberg": "bool", "visibleSize": "any",
    "leverage": "str", "forceHold": "bool", "closeOrder": "bool", "reduceOnly": "bool",
    "clientOid": "str", "remark": "str|null", "tags": "any", "isActive": "bool",
    "cancelExist": "bool", "createdAt": "int", "updatedAt": "int", "endAt": "int|null",
    "orderTime": "int", "settleCurrency": "str", "marginMode": "str", "avgDealPrice": "str",
    "status": "str",
}
PAGE = {"currentPage": "int", "pageSize": "int", "totalNum": "int", "totalPage": "int",
        "items": "list"}
# 3.7 contract table: numeric fields are JSON numbers.
CONTRACT = {
    "symbol": "str", "rootSymbol": "str", "type": "str", "baseCurrency": "str",
    "quoteCurrency": "str", "settleCurrency": "str", "firstOpenDate": "int",
    "expireDate": "null|int", "settleDate": "null|int", "maxOrderQty": "number",
    "maxPrice": "number", "lotSize": "int", "tickSize": "number",
    "indexPriceTickSize": "number", "multiplier": "number", "initialMargin": "number",
    "maintainMargin": "number", "maxRiskLimit": "number", "minRiskLimit": "number",
    "riskStep": "number", "makerFeeRate": "number", "takerFeeRate": "number",
    "takerFixFee": "number", "makerFixFee": "number", "settlementFee": "any",
    "isDeleverage": "bool", "isQuanto": "bool", "isInverse": "bool", "markMethod": "str",
    "fairMethod": "str", "fundingBaseSymbol": "str", "fundingQuoteSymbol": "str",
    "fundingRateSymbol": "str", "indexSymbol": "str", "settlementSymbol": "str",
    "status": "str", "fundingFeeRate": "number", "predictedFundingFeeRate": "number",
    "fundingRateGranularity": "int", "nextFundingRateTime": "int", "openInterest": "str",
    "turnoverOf24h": "number", "volumeOf24h": "number", "markPrice": "number",
    "indexPrice": "number", "lastTradePrice": "number", "maxLeverage": "int",
    "sourceExchanges": "list", "premiumsSymbol1M": "str", "premiumsSymbol8H": "str",
    "fundingBaseSymbol1M": "str", "fundingQuoteSymbol1M": "str", "lowPrice": "number",
    "highPrice": "number", "priceChgPct": "number", "priceChg": "number", "k": "number",
    "m": "number", "f": "number", "mmrLimit": "number", "mmrLevConstant": "number",
    "supportCross": "bool", "buyLimit": "number", "sellLimit": "number",
}
# 3.8 position table (the isolated-margin-only fields have no documented type).
POSITION = {
    "id": "str", "symbol": "str", "crossMode": "bool", "marginMode": "str",
    "positionSide": "str", "leverage": "number", "delevPercentage": "number",
    "openingTimestamp": "int", "currentTimestamp": "int", "currentQty": "int",
    "currentCost": "number", "currentComm": "number", "unrealisedCost": "number",
    "realisedGrossCost": "number", "realisedCost": "number", "isOpen": "bool",
    "markPrice": "number", "markValue": "number", "posCost": "number", "posInit": "number",
    "posMargin": "number", "posMaint": "number", "realisedGrossPnl": "number",
    "realisedPnl": "number", "unrealisedPnl": "number", "unrealisedPnlPcnt": "number",
    "unrealisedRoePcnt": "number", "avgEntryPrice": "number", "liquidationPrice": "number",
    "bankruptPrice": "number", "settleCurrency": "str", "isInverse": "bool",
    **dict.fromkeys(("autoDeposit", "maintMarginReq", "riskLimit", "realLeverage",
                     "posCross", "posCrossMargin", "posComm", "posCommCommon", "posLoss",
                     "posFunding", "maintMargin", "maintainMargin"), "any"),
}
# Fields the simulator adds beyond the reference's tables (named so that any other
# addition fails the check).
POSITION_EXTRA = frozenset({"riskLimitLevel"})
EXECUTION_EXTRA = frozenset({"time"})
# REST market data: ticker (SDK GetTickerResp field set) and the level2 snapshot.
TICKER = {"sequence": "int", "symbol": "str", "side": "str", "size": "int", "tradeId": "str",
          "price": "str", "bestBidPrice": "str", "bestBidSize": "int", "bestAskPrice": "str",
          "bestAskSize": "int", "ts": "int"}
LEVEL2_SNAPSHOT = {"sequence": "int", "symbol": "str", "bids": "list", "asks": "list",
                   "ts": "int"}
ACCOUNT_OVERVIEW = {
    "accountEquity": "number", "unrealisedPNL": "number", "marginBalance": "number",
    "positionMargin": "number", "orderMargin": "number", "frozenFunds": "number",
    "availableBalance": "number", "currency": "str", "riskRatio": "number",
    "maxWithdrawAmount": "number",
}


# --- collection ----------------------------------------------------------------------------

class Collected(msgspec.Struct):
    """Everything the simulator sent during one scripted session."""

    frames: list[dict]
    rest: dict[str, object]


TOPICS = ["/contractMarket/tickerV2:XBTUSDTM", "/contractMarket/ticker:XBTUSDTM",
          "/contractMarket/execution:XBTUSDTM", "/contractMarket/level2:XBTUSDTM",
          "/contractMarket/level2Depth5:XBTUSDTM", "/contractMarket/limitCandle:XBTUSDTM_1min"]


async def _collect() -> Collected:
    clock = [START_NS]
    sim = await start_sim(SimConfig(tick_ms=600_000, candle_interval_ms=200),
                          clock=lambda: clock[0])
    sim.server.tick()
    rest: dict[str, object] = {}
    frames: list[dict] = []
    try:
        async with aiohttp.ClientSession() as session:
            async def call(name, method, path, body=None, signed=False):
                text = msgspec.json.encode(body).decode() if body is not None else ""
                headers = {"Content-Type": "application/json"}
                if signed:
                    headers.update(auth_headers(CREDS, clock[0] // 1_000_000, method, path,
                                                text))
                async with session.request(method, sim.url + path, data=text or None,
                                           headers=headers) as resp:
                    rest[name] = await resp.json()

            await call("bullet", "POST", "/api/v1/bullet-public")
            bullet = rest["bullet"]["data"]
            ws = await session.ws_connect(
                f"{bullet['instanceServers'][0]['endpoint']}?token={bullet['token']}"
                "&connectId=shapes")
            frames.append(await ws.receive_json(timeout=2))
            for i, topic in enumerate(TOPICS):
                await ws.send_json({"id": i, "type": "subscribe", "topic": topic,
                                    "response": True})
            await ws.send_json({"id": "p", "type": "ping"})
            await ws.send_json({"id": "bad", "type": "subscribe", "topic": "/nope:X",
                                "response": True})
            for _ in range(20):
                clock[0] += 100_000_000
                sim.server.tick()
                await ws.send_json({"id": "sync", "type": "ping"})
                while (frame := await ws.receive_json(timeout=2)) != {"id": "sync",
                                                                     "type": "pong"}:
                    frames.append(frame)
            await ws.close()

            bid = sim.exchange.ticker("XBTUSDTM").best_bid_price
            await call("contracts_active", "GET", "/api/v1/contracts/active")
            await call("contract", "GET", "/api/v1/contracts/XBTUSDTM")
            await call("ticker", "GET", "/api/v1/ticker?symbol=XBTUSDTM")
            await call("snapshot", "GET", "/api/v1/level2/snapshot?symbol=XBTUSDTM")
            await call("depth20", "GET", "/api/v1/level2/depth20?symbol=XBTUSDTM")
            await call("klines", "GET", "/api/v1/kline/query?symbol=XBTUSDTM&granularity=1")
            await call("timestamp", "GET", "/api/v1/timestamp")
            await call("not_found", "GET", "/api/v1/missing")
            await call("market_order", "POST", "/api/v1/orders", {
                "clientOid": "m1", "side": "buy", "symbol": "XBTUSDTM", "leverage": 5,
                "type": "market", "size": 2}, signed=True)
            await call("limit_order", "POST", "/api/v1/orders", {
                "clientOid": "l1", "side": "buy", "symbol": "XBTUSDTM", "leverage": 5,
                "type": "limit", "price": bid, "size": 1}, signed=True)
            await call("stop_order", "POST", "/api/v1/orders", {
                "clientOid": "s1", "side": "sell", "symbol": "XBTUSDTM", "leverage": 5,
                "type": "market", "size": 2, "stop": "down", "stopPriceType": "TP",
                "stopPrice": "1000", "reduceOnly": True}, signed=True)
            await call("orders", "GET", "/api/v1/orders?status=active", signed=True)
            await call("stop_orders", "GET", "/api/v1/stopOrders", signed=True)
            order_id = rest["limit_order"]["data"]["orderId"]
            await call("order", "GET", f"/api/v1/orders/{order_id}", signed=True)
            await call("position", "GET", "/api/v1/position?symbol=XBTUSDTM", signed=True)
            await call("positions", "GET", "/api/v1/positions", signed=True)
            await call("account", "GET", "/api/v1/account-overview?currency=USDT",
                       signed=True)
            await call("cancel", "DELETE", f"/api/v1/orders/{order_id}", signed=True)
            await call("cancel_stops", "DELETE", "/api/v1/stopOrders?symbol=XBTUSDTM",
                       signed=True)
            await call("cancel_oid", "DELETE",
                       "/api/v1/orders/client-order/none?symbol=XBTUSDTM", signed=True)
    finally:
        await sim.stop()
    return Collected(frames, rest)


@pytest.fixture(scope="module")
def collected() -> Collected:
    return asyncio.run(_collect())


def _data(collected: Collected, name: str):
    reply = collected.rest[name]
    assert reply["code"] == "200000", f"{name}: {reply}"
    assert set(reply) == {"code", "data"}
    return reply["data"]


def _frames(collected: Collected, prefix: str) -> list[dict]:
    frames = [f for f in collected.frames if f.get("topic", "").startswith(prefix + ":")]
    assert frames, f"no {prefix} frames were produced"
    return frames


# --- WebSocket frames -------------------------------------------------------------------------

def test_control_frames_have_the_documented_shapes(collected):
    by_type: dict[str, list[dict]] = {}
    for frame in collected.frames:
        by_type.setdefault(frame["type"], []).append(frame)
    assert_shape(by_type["welcome"][0], WELCOME, "welcome")
    assert by_type["welcome"][0]["id"] == "shapes"
    for ack in by_type["ack"]:
        assert_shape(ack, ACK, "ack")
    assert {a["id"] for a in by_type["ack"]} == {str(i) for i in range(len(TOPICS))}
    assert_shape(by_type["pong"][0], PONG, "pong")
    assert_shape(by_type["error"][0], ERROR_FRAME, "error")


def test_ticker_v2_frames_match_the_documented_sample(collected):
    for frame in _frames(collected, "/contractMarket/tickerV2"):
        assert_shape(frame, shape_of_sample({**TICKER_V2_SAMPLE, "data": {}}) | {
            "data": "object"}, "tickerV2 frame")
        assert_shape(frame["data"], shape_of_sample(TICKER_V2_SAMPLE["data"]), "tickerV2")
        assert frame["subject"] == TICKER_V2_SAMPLE["subject"]
        assert frame["sn"] == frame["data"]["sequence"]
        assert frame["data"]["ts"] > 10**18  # nanoseconds


def test_ticker_v1_frames_have_the_documented_fields(collected):
    for frame in _frames(collected, "/contractMarket/ticker"):
        assert_shape(frame, MESSAGE_FRAME, "ticker frame")
        assert frame["subject"] == "ticker"
        assert_shape(frame["data"], TICKER_V1_DATA, "ticker")


def test_execution_frames_have_the_current_field_set(collected):
    for frame in _frames(collected, "/contractMarket/execution"):
        assert_shape(frame, MESSAGE_FRAME, "execution frame")
        assert frame["subject"] == "match"
        assert frame["sn"] == frame["data"]["sequence"]
        assert_shape(frame["data"], EXECUTION_DATA, "execution", EXECUTION_EXTRA)
        assert frame["data"]["side"] in ("buy", "sell")
        assert frame["data"]["ts"] > 10**18


def test_level2_frames_carry_a_price_side_size_change(collected):
    for frame in _frames(collected, "/contractMarket/level2"):
        assert_shape(frame, MESSAGE_FRAME, "level2 frame")
        assert frame["subject"] == "level2"
        assert frame["sn"] == frame["data"]["sequence"]
        assert_shape(frame["data"], LEVEL2_DATA, "level2")
        price, side, size = frame["data"]["change"].split(",")
        float(price)
        assert side in ("buy", "sell") and size.isdigit()
        assert frame["data"]["timestamp"] < 10**14  # milliseconds


def test_depth5_frames_have_string_prices_and_int_sizes(collected):
    for frame in _frames(collected, "/contractMarket/level2Depth5"):
        assert_shape(frame, MESSAGE_FRAME, "depth5 frame")
        assert frame["subject"] == "level2"
        data = frame["data"]
        assert_shape(data, DEPTH5_DATA, "depth5")
        assert frame["sn"] == data["timestamp"] == data["ts"]  # ms, as in the sample
        for level in data["bids"] + data["asks"]:
            assert [json_type(x) for x in level] == ["str", "int"]
        assert 0 < len(data["bids"]) <= 5 and 0 < len(data["asks"]) <= 5


def test_candle_frames_match_the_documented_sample(collected):
    expected = shape_of_sample(CANDLE_SAMPLE_DATA)
    for frame in _frames(collected, "/contractMarket/limitCandle"):
        assert_shape(frame, {k: v for k, v in MESSAGE_FRAME.items() if k != "sn"},
                     "candle frame")
        assert frame["subject"] == "candle.stick"
        assert_shape(frame["data"], expected, "candle")
        candles = frame["data"]["candles"]
        assert len(candles) == len(CANDLE_SAMPLE_DATA["candles"])
        assert all(isinstance(v, str) for v in candles)
        assert candles[0].isdigit() and int(candles[0]) < 10**11  # start in seconds


# --- REST payloads ----------------------------------------------------------------------------

def test_bullet_response_has_the_documented_shape(collected):
    data = _data(collected, "bullet")
    assert_shape(data, BULLET, "bullet")
    for server in data["instanceServers"]:
        assert_shape(server, INSTANCE_SERVER, "instanceServers[]")


def test_contracts_match_the_reference_table(collected):
    assert_shape(_data(collected, "contract"), CONTRACT, "contract")
    for contract in _data(collected, "contracts_active"):
        assert_shape(contract, CONTRACT, "contracts/active[]")


def test_ticker_and_order_books_have_string_or_numeric_prices_where_documented(collected):
    assert_shape(_data(collected, "ticker"), TICKER, "ticker")
    for name in ("snapshot", "depth20"):
        book = _data(collected, name)
        assert_shape(book, LEVEL2_SNAPSHOT, name)
        for level in book["bids"] + book["asks"]:
            assert len(level) == 2
            assert type_matches(level[0], "number") and type_matches(level[1], "int")


def test_klines_are_rows_of_seven_numbers(collected):
    rows = _data(collected, "klines")
    assert rows
    for row in rows:
        assert len(row) == 7
        assert json_type(row[0]) == "int"
        assert all(type_matches(v, "number") for v in row)


def test_server_time_is_an_integer_in_milliseconds(collected):
    assert json_type(_data(collected, "timestamp")) == "int"


def test_order_replies_match_the_documented_samples(collected):
    for name in ("market_order", "limit_order", "stop_order"):
        assert_shape(_data(collected, name), shape_of_sample(ORDER_ACK_SAMPLE), name)
    assert_shape(_data(collected, "cancel"), shape_of_sample(CANCEL_SAMPLE), "cancel")
    assert all(isinstance(i, str) for i in _data(collected, "cancel")["cancelledOrderIds"])
    assert_shape(_data(collected, "cancel_stops"), shape_of_sample(CANCEL_SAMPLE),
                 "cancel stops")


def test_order_lists_and_items_match_the_reference_item_shape(collected):
    for name in ("orders", "stop_orders"):
        page = _data(collected, name)
        assert_shape(page, PAGE, name)
        assert page["items"], name
        for item in page["items"]:
            assert_shape(item, ORDER_ITEM, f"{name}.items[]")
    assert_shape(_data(collected, "order"), ORDER_ITEM, "order")
    stop = _data(collected, "stop_orders")["items"][0]
    assert (stop["stop"], stop["stopPriceType"], stop["stopPrice"]) == ("down", "TP", "1000")


def test_positions_match_the_reference_table(collected):
    position = _data(collected, "position")
    assert_shape(position, POSITION, "position", POSITION_EXTRA)
    assert position["currentQty"] == 2
    for item in _data(collected, "positions"):
        assert_shape(item, POSITION, "positions[]", POSITION_EXTRA)


def test_account_overview_has_numeric_balances(collected):
    assert_shape(_data(collected, "account"), ACCOUNT_OVERVIEW, "account-overview")


def test_errors_use_the_code_and_msg_envelope(collected):
    for name in ("not_found", "cancel_oid"):
        reply = collected.rest[name]
        assert_shape(reply, ERROR_ENVELOPE, name)
        assert reply["code"] != "200000" and len(reply["code"]) >= 5
    assert collected.rest["not_found"]["code"] == "404000"


def test_every_frame_is_plain_json_text(collected):
    # Round-trip: what was received re-encodes to the same JSON (no NaN, no bytes).
    for frame in collected.frames:
        assert json.loads(json.dumps(frame, allow_nan=False)) == frame
