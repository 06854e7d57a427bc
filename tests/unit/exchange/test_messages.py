import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.exchange.messages import (
    Ack,
    CandleUpdate,
    DepthTop5,
    ErrorFrame,
    FrameDecoder,
    FrameRejected,
    PingRequest,
    Pong,
    QuoteTick,
    SubscribeRequest,
    TradeTick,
    Welcome,
    split_topic,
)

DECODER = FrameDecoder()

# The documented samples (kucoin-protocol.md section 2, from the official WS spec).
TICKER_V2_SAMPLE = (
    '{"topic":"/contractMarket/tickerV2:XBTUSDTM","type":"message","subject":"tickerV2",'
    '"sn":1709284589209,"data":{"symbol":"XBTUSDTM","sequence":1709284589209,'
    '"bestBidSize":713,"bestBidPrice":"88987.4","bestAskPrice":"88987.5",'
    '"bestAskSize":1037,"ts":1731665526461000000}}'
)
EXECUTION_SAMPLE = (
    '{"topic":"/contractMarket/execution:XBTUSDTM","type":"message","subject":"match",'
    '"sn":1794100537695,"data":{"symbol":"XBTUSDTM","sequence":1794100537695,"side":"buy",'
    '"size":2,"price":"90503.9","takerOrderId":"247822202957807616",'
    '"makerOrderId":"247822167163555840","tradeId":"1794100537695",'
    '"ts":1731898619520000000}}'
)
DEPTH5_SAMPLE = (
    '{"topic":"/contractMarket/level2Depth5:XBTUSDTM","type":"message","subject":"level2",'
    '"sn":1731680019100,"data":{"bids":[["89720.9",513],["89720.8",12],["89718.6",113],'
    '["89718.4",19],["89718.3",7]],"sequence":1709294294670,"timestamp":1731680019100,'
    '"ts":1731680019100,"asks":[["89721",906],["89721.1",203],["89721.4",113],'
    '["89723.2",113],["89725.4",113]]}}'
)
CANDLE_SAMPLE = (
    '{"topic":"/contractMarket/limitCandle:XBTUSDTM_1min","type":"message","data":'
    '{"symbol":"XBTUSDTM","candles":["1731898200","90638.6","90638.6","90638.6","90638.6",'
    '"21.0","21"],"time":1731898208357},"subject":"candle.stick"}'
)


def message(topic: str, subject: str, data: object) -> str:
    return json.dumps({"type": "message", "topic": topic, "subject": subject, "data": data})


def execution(data: dict, symbol: str = "XBTUSDTM") -> str:
    return message(f"/contractMarket/execution:{symbol}", "match", data)


def candle(values: list[str], *, subject: str = "candle.stick", time: int = 1_000) -> str:
    return message(
        "/contractMarket/limitCandle:XBTUSDTM_1min",
        subject,
        {"symbol": "XBTUSDTM", "candles": values, "time": time},
    )


def test_ticker_v2_sample_decodes_to_a_quote_with_float_prices_and_lot_sizes():
    assert DECODER.decode(TICKER_V2_SAMPLE) == QuoteTick(
        symbol="XBTUSDTM",
        ts_ns=1731665526461000000,
        bid=88987.4,
        bid_size=713,
        ask=88987.5,
        ask_size=1037,
        sequence=1709284589209,
    )


def test_execution_sample_decodes_to_a_buy_trade():
    assert DECODER.decode(EXECUTION_SAMPLE) == TradeTick(
        symbol="XBTUSDTM",
        ts_ns=1731898619520000000,
        price=90503.9,
        size=2,
        side=1,
        sequence=1794100537695,
        trade_id="1794100537695",
    )


def test_depth5_sample_keeps_level_order_and_converts_the_ms_timestamp_to_ns():
    depth = DECODER.decode(DEPTH5_SAMPLE)
    assert depth == DepthTop5(
        symbol="XBTUSDTM",
        ts_ns=1731680019100 * 1_000_000,
        bid_prices=(89720.9, 89720.8, 89718.6, 89718.4, 89718.3),
        bid_sizes=(513, 12, 113, 19, 7),
        ask_prices=(89721.0, 89721.1, 89721.4, 89723.2, 89725.4),
        ask_sizes=(906, 203, 113, 113, 113),
        sequence=1709294294670,  # the book sequence, not the ms `sn`
    )


def test_candle_sample_decodes_seconds_start_and_ms_push_time():
    assert DECODER.decode(CANDLE_SAMPLE) == CandleUpdate(
        symbol="XBTUSDTM",
        timeframe="1min",
        start_ns=1731898200 * 1_000_000_000,
        open=90638.6,
        high=90638.6,
        low=90638.6,
        close=90638.6,
        volume=21.0,
        turnover=21.0,
        push_ts_ns=1731898208357 * 1_000_000,
    )


def test_candle_values_are_read_as_open_close_high_low():
    update = DECODER.decode(candle(["60", "10", "12", "15", "9", "3.5", "40"]))
    assert isinstance(update, CandleUpdate)
    assert (update.open, update.close, update.high, update.low) == (10.0, 12.0, 15.0, 9.0)
    assert (update.volume, update.turnover, update.start_ns) == (3.5, 40.0, 60_000_000_000)


def test_candle_sent_in_ohlc_order_is_rejected_because_high_is_below_low():
    # open 10, high 15, low 9, close 12 in OHLC order reads as close 15, high 9, low 12.
    rejected = DECODER.decode(candle(["60", "10", "15", "9", "12", "3.5", "40"]))
    assert isinstance(rejected, FrameRejected)
    assert rejected.kind == "malformed_limitCandle"
    assert "high" in rejected.reason


def test_candle_with_the_older_subject_is_accepted():
    update = DECODER.decode(
        candle(["60", "1", "1", "1", "1", "0", "0"], subject="trade.candles.update")
    )
    assert isinstance(update, CandleUpdate)


def test_candle_with_six_values_is_rejected_naming_candles():
    rejected = DECODER.decode(candle(["60", "1", "1", "1", "1", "0"]))
    assert isinstance(rejected, FrameRejected)
    assert "candles" in rejected.reason


def test_execution_in_the_2023_shape_uses_match_size_and_time():
    old = {
        "symbol": "XBTUSDTM",
        "sequence": 36,
        "side": "sell",
        "matchSize": 7,
        "size": 93,  # the unfilled remainder, not the trade
        "price": 3200.5,
        "takerOrderId": "a",
        "makerOrderId": "b",
        "tradeId": "5ce24c16b210233c36ee321d",
        "time": 1545743136994000000,
    }
    assert DECODER.decode(execution(old)) == TradeTick(
        symbol="XBTUSDTM",
        ts_ns=1545743136994000000,
        price=3200.5,
        size=7,
        side=-1,
        sequence=36,
        trade_id="5ce24c16b210233c36ee321d",
    )


def test_execution_accepts_an_integer_price():
    data = {
        "symbol": "X",
        "sequence": 1,
        "side": "buy",
        "size": 1,
        "price": 3200,
        "tradeId": "t",
        "ts": 5,
    }
    trade = DECODER.decode(execution(data, symbol="X"))
    assert isinstance(trade, TradeTick)
    assert trade.price == 3200.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"side": "hold"}, "side"),
        ({"price": "abc"}, "price"),
        ({"price": "-1"}, "price"),
        ({"price": "nan"}, "price"),
        ({"size": 0}, "size"),
        ({"size": None}, "size"),
        ({"ts": None}, "ts"),
        ({"sequence": "7"}, "sequence"),
        ({"symbol": "ETHUSDTM"}, "symbol"),
    ],
)
def test_execution_with_a_bad_field_is_rejected_naming_the_field(change, field):
    data = {
        "symbol": "XBTUSDTM",
        "sequence": 1,
        "side": "buy",
        "size": 1,
        "price": "1",
        "tradeId": "t",
        "ts": 5,
    }
    data.update(change)
    data = {key: value for key, value in data.items() if value is not None}
    rejected = DECODER.decode(execution(data))
    assert isinstance(rejected, FrameRejected)
    assert rejected.kind == "malformed_execution"
    assert field in rejected.reason
    assert rejected.topic == "/contractMarket/execution:XBTUSDTM"


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ("not json", "malformed_frame"),
        ('{"id": "1"}', "malformed_frame"),
        ('{"type": "welcome"}', "malformed_frame"),
        ('{"type": "notice", "id": "1"}', "unknown_type"),
        ('{"type": "message", "subject": "x", "data": {}}', "malformed_frame"),
        (message("/contract/instrument:XBTUSDTM", "mark.index.price", {}), "unknown_topic"),
        (message("/contractMarket/tickerV2:XBTUSDTM", "ticker", {}), "unknown_subject"),
        (message("/contractMarket/tickerV2", "tickerV2", {}), "malformed_tickerV2"),
        (
            '{"type":"message","topic":"/contractMarket/tickerV2:X","subject":"tickerV2"}',
            "malformed_tickerV2",
        ),
        (
            message("/contractMarket/level2Depth5:X", "level2", {"bids": [["1"]]}),
            "malformed_level2Depth5",
        ),
        (
            message(
                "/contractMarket/level2Depth5:X,Y",
                "level2",
                {"bids": [], "asks": [], "sequence": 1, "timestamp": 1},
            ),
            "malformed_level2Depth5",
        ),
    ],
)
def test_unusable_frames_become_rejections_of_the_right_kind(frame, kind):
    rejected = DECODER.decode(frame)
    assert isinstance(rejected, FrameRejected)
    assert rejected.kind == kind
    assert rejected.reason


def test_control_frames_decode_with_string_ids():
    assert DECODER.decode('{"id":"c1","type":"welcome"}') == Welcome(id="c1")
    assert DECODER.decode('{"id":"p1","type":"pong","timestamp":17}') == Pong(id="p1")
    assert DECODER.decode('{"id":42,"type":"ack"}') == Ack(id="42")
    assert DECODER.decode(
        '{"id":"s1","type":"error","code":415,"data":"type is not supported"}'
    ) == ErrorFrame(id="s1", code=415, message="type is not supported")


def test_error_frame_without_id_or_code_still_decodes():
    decoded = DECODER.decode('{"type":"error","data":"token is expired"}')
    assert decoded == ErrorFrame(id=None, code=None, message="token is expired")


def test_requests_encode_to_the_documented_shapes():
    assert msgspec.json.decode(msgspec.json.encode(PingRequest(id="7"))) == {
        "id": "7",
        "type": "ping",
    }
    assert msgspec.json.decode(
        msgspec.json.encode(SubscribeRequest(id="8", topic="/contractMarket/tickerV2:X"))
    ) == {
        "id": "8",
        "type": "subscribe",
        "topic": "/contractMarket/tickerV2:X",
        "privateChannel": False,
        "response": True,
    }


def test_split_topic_separates_prefix_and_target():
    assert split_topic("/contractMarket/limitCandle:XBTUSDTM_1min") == (
        "/contractMarket/limitCandle",
        "XBTUSDTM_1min",
    )
    assert split_topic("/contractMarket/tickerV2") == ("/contractMarket/tickerV2", "")


@settings(deadline=None)  # a loaded machine must not fail a pure check
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_decoding_arbitrary_input_never_raises(frame):
    assert isinstance(
        DECODER.decode(frame),
        (
            Welcome,
            Pong,
            Ack,
            ErrorFrame,
            TradeTick,
            QuoteTick,
            DepthTop5,
            CandleUpdate,
            FrameRejected,
        ),
    )


@settings(deadline=None)  # a loaded machine must not fail a pure check
@given(
    st.dictionaries(
        st.sampled_from(
            ["symbol", "sequence", "side", "size", "price", "tradeId", "ts", "time", "matchSize"]
        ),
        st.none() | st.integers() | st.text(max_size=8) | st.floats(),
    )
)
def test_decoding_arbitrary_execution_data_never_raises(data):
    decoded = DECODER.decode(execution(data))
    assert isinstance(decoded, (TradeTick, FrameRejected))


@settings(deadline=None)  # a loaded machine must not fail a pure check
@given(
    sequence=st.integers(min_value=0, max_value=2**62),
    ticks=st.integers(min_value=1, max_value=10**9),
    size=st.integers(min_value=1, max_value=10**6),
    side=st.sampled_from(["buy", "sell"]),
    ts=st.integers(min_value=0, max_value=2**62),
)
def test_a_valid_execution_round_trips_its_values(sequence, ticks, size, side, ts):
    price = f"{ticks / 10:.1f}"
    data = {
        "symbol": "XBTUSDTM",
        "sequence": sequence,
        "side": side,
        "size": size,
        "price": price,
        "tradeId": str(sequence),
        "ts": ts,
    }
    trade = DECODER.decode(execution(data))
    assert trade == TradeTick(
        symbol="XBTUSDTM",
        ts_ns=ts,
        price=float(price),
        size=size,
        side=1 if side == "buy" else -1,
        sequence=sequence,
        trade_id=str(sequence),
    )


@settings(deadline=None)  # a loaded machine must not fail a pure check
@given(st.lists(st.integers(min_value=1, max_value=10**7), min_size=4, max_size=4, unique=True))
def test_any_consistent_candle_maps_its_values_by_the_documented_order(values):
    low, a, b, high = sorted(values)
    update = DECODER.decode(
        candle(["120", str(a), str(b), str(high), str(low), "1", "2"], time=120_500)
    )
    assert isinstance(update, CandleUpdate)
    assert (update.open, update.close, update.high, update.low) == (a, b, high, low)
    assert update.start_ns == 120 * 1_000_000_000
    assert update.push_ts_ns == 120_500 * 1_000_000


@pytest.mark.parametrize(
    ("bids", "asks", "field"),
    [
        ([["100.5", 3], ["nan", 1]], [["101", 2]], "bids[1][0]"),
        ([["100.5", 3]], [["101", 2], ["inf", 1]], "asks[1][0]"),
        ([["100.5", 3]], [["0", 2]], "asks[0][0]"),
        ([["100.5", -1]], [["101", 2]], "bids[0][1]"),
        ([["x", 1]], [["101", 2]], "bids[0][0]"),
    ],
)
def test_a_bad_depth_level_is_rejected_naming_its_field(bids, asks, field):
    frame = message("/contractMarket/level2Depth5:XBTUSDTM", "level2",
                    {"bids": bids, "asks": asks, "sequence": 1, "timestamp": 1, "ts": 1})
    rejected = DECODER.decode(frame)
    assert isinstance(rejected, FrameRejected)
    assert rejected.kind == "malformed_level2Depth5"
    assert field in rejected.reason
