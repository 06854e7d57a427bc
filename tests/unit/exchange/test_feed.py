import asyncio
import logging
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.exchange.feed import (
    FeedConfig,
    MarketDataClient,
    SequenceGap,
    SequenceTracker,
    backoff_delay,
    connect_url,
    subscription_topics,
)
from liveopt.exchange.messages import CandleUpdate, QuoteTick, TradeTick
from tests.unit.exchange.fake_ws import FakeKucoinServer, TokenIssuer, ticker_frame, trade_frame

DEFAULT_TOPICS = 4
SAFETY_TIMEOUT_S = 5.0  # only reached when a test is broken; nothing asserts on durations
FAST = FeedConfig(
    backoff_base_s=0.001,
    backoff_cap_s=0.002,
    welcome_timeout_s=1.0,
    ack_timeout_s=1.0,
    close_timeout_s=0.1,
    use_system_proxy=False,
)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, SAFETY_TIMEOUT_S))


async def wait_until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.002)


class Feed:
    """A client plus its running task and everything it delivered."""

    def __init__(self, symbols, server, *, config=FAST, issuer=None, **kwargs):
        self.events = []
        self.issuer = issuer or TokenIssuer(server)
        self.client = MarketDataClient(
            symbols,
            token_provider=self.issuer,
            sink=self.events.append,
            config=config,
            **kwargs,
        )
        self.task = asyncio.create_task(self.client.run())

    def trades(self):
        return [event.sequence for event in self.events if isinstance(event, TradeTick)]

    async def stop(self):
        self.client.stop()
        await self.task


async def send_all(conn, frames):
    for frame in frames:
        await conn.send(frame)


# -- connection flow ----------------------------------------------------------------------


def test_client_waits_for_welcome_then_subscribes_every_topic_with_response_true():
    async def scenario():
        async with FakeKucoinServer() as server:
            feed = Feed(["XBTUSDTM"], server)
            (conn,) = await server.wait_connections(1)
            await conn.wait_subscribed(DEFAULT_TOPICS)
            await wait_until(lambda: feed.client.stats().connected)
            await feed.stop()
            return conn, feed

    conn, feed = run(scenario())
    assert conn.token == feed.issuer.issued[0]
    assert conn.connect_id
    subscribes = [r for r in conn.received if r["type"] == "subscribe"]
    assert [r["topic"] for r in subscribes] == [
        "/contractMarket/tickerV2:XBTUSDTM",
        "/contractMarket/execution:XBTUSDTM",
        "/contractMarket/level2Depth5:XBTUSDTM",
        "/contractMarket/limitCandle:XBTUSDTM_1min",
    ]
    assert all(r["response"] is True and r["privateChannel"] is False for r in subscribes)
    assert len({r["id"] for r in subscribes}) == len(subscribes)
    assert feed.client.stats().reconnects == 0


def test_several_symbols_share_one_comma_joined_topic_per_kind():
    async def scenario():
        async with FakeKucoinServer() as server:
            feed = Feed(["XBTUSDTM", "ETHUSDTM"], server)
            (conn,) = await server.wait_connections(1)
            await conn.wait_subscribed(DEFAULT_TOPICS)
            await conn.send(trade_frame("ETHUSDTM", 1))
            await conn.send(trade_frame("XBTUSDTM", 1))
            await wait_until(lambda: len(feed.events) == 2)
            await feed.stop()
            return conn, feed

    conn, feed = run(scenario())
    assert conn.subscribed == [
        "/contractMarket/tickerV2:XBTUSDTM,ETHUSDTM",
        "/contractMarket/execution:XBTUSDTM,ETHUSDTM",
        "/contractMarket/level2Depth5:XBTUSDTM,ETHUSDTM",
        "/contractMarket/limitCandle:XBTUSDTM_1min,ETHUSDTM_1min",
    ]
    # Sequences are tracked per symbol: both first trades are new.
    assert [event.symbol for event in feed.events] == ["ETHUSDTM", "XBTUSDTM"]


def test_symbols_beyond_the_topic_limit_are_spread_over_connections():
    symbols = [f"S{i}USDTM" for i in range(30)]

    async def scenario():
        async with FakeKucoinServer() as server:
            feed = Feed(symbols, server)
            conns = await server.wait_connections(2)
            for conn in conns:
                await conn.wait_subscribed(DEFAULT_TOPICS)
            await wait_until(lambda: feed.client.stats().connected)
            await feed.stop()
            return conns, feed

    conns, feed = run(scenario())
    assert feed.client.connections == 2
    per_connection = []
    for conn in conns:
        topic_count = sum(len(t.partition(":")[2].split(",")) for t in conn.subscribed)
        assert topic_count <= 100
        per_connection.append(conn.subscribed[0].partition(":")[2].split(","))
    assert sorted(per_connection[0] + per_connection[1]) == sorted(symbols)
    assert len(set(feed.issuer.issued)) == 2  # one fresh token per connection


def test_missing_welcome_times_out_and_the_next_connection_is_used():
    config = FeedConfig(
        welcome_timeout_s=0.2, backoff_base_s=0.001, backoff_cap_s=0.001, use_system_proxy=False
    )

    async def scenario():
        async with FakeKucoinServer() as server:
            server.send_welcome = False
            feed = Feed(["XBTUSDTM"], server, config=config)
            await server.wait_connections(1)
            server.send_welcome = True
            conns = await server.wait_connections(2)
            await conns[1].wait_subscribed(DEFAULT_TOPICS)
            await feed.stop()
            return conns, feed

    conns, feed = run(scenario())
    assert conns[0].subscribed == []
    assert conns[1].token != conns[0].token
    stats = feed.client.stats()
    assert stats.reconnects >= 1
    assert stats.connect_failures >= 1


def test_refused_subscription_ends_the_connection_and_is_counted():
    async def scenario():
        async with FakeKucoinServer() as server:
            server.refuse_topics = {"/contractMarket/execution"}
            feed = Feed(["XBTUSDTM"], server)
            await server.wait_connections(2)
            await feed.stop()
            return feed

    feed = run(scenario())
    stats = feed.client.stats()
    assert stats.rejected["error_frame"] >= 1
    assert not stats.connected


# -- ping / pong ------------------------------------------------------------------------


def test_pings_are_sent_at_the_token_interval_and_answered_pongs_keep_the_link():
    async def scenario():
        async with FakeKucoinServer() as server:
            issuer = TokenIssuer(server, ping_interval_ms=10, ping_timeout_ms=1_000)
            feed = Feed(["XBTUSDTM"], server, issuer=issuer)
            (conn,) = await server.wait_connections(1)
            await wait_until(lambda: len(conn.pings) >= 3)
            await feed.stop()
            return conn, feed

    conn, feed = run(scenario())
    pings = [r for r in conn.received if r["type"] == "ping"]
    assert len({p["id"] for p in pings}) == len(pings)
    first_ping = conn.received.index(pings[0])
    assert all(r["type"] == "subscribe" for r in conn.received[:first_ping])
    stats = feed.client.stats()
    assert stats.ping_timeouts == 0
    assert stats.reconnects == 0
    assert "unmatched_reply" not in stats.rejected


def test_missing_pong_is_a_dead_link_and_reconnects_with_a_fresh_token():
    async def scenario():
        async with FakeKucoinServer() as server:
            server.answer_pings = False
            issuer = TokenIssuer(server, ping_interval_ms=10, ping_timeout_ms=20)
            feed = Feed(["XBTUSDTM"], server, issuer=issuer)
            conns = await server.wait_connections(2)
            await conns[1].wait_subscribed(DEFAULT_TOPICS)
            await feed.stop()
            return conns, feed

    conns, feed = run(scenario())
    assert conns[0].pings  # the first link was pinged and did not answer
    assert conns[1].token == feed.issuer.issued[1] != conns[0].token
    assert conns[1].subscribed == conns[0].subscribed
    assert feed.client.stats().ping_timeouts >= 1


# -- reconnects and de-duplication ------------------------------------------------------


def test_reconnect_replaying_the_last_frames_never_delivers_a_trade_twice():
    async def first(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await send_all(conn, [trade_frame("XBTUSDTM", n) for n in range(1, 6)])
        await send_all(conn, [ticker_frame("XBTUSDTM", n) for n in (10, 11)])
        await conn.ws.close()

    async def second(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await send_all(conn, [trade_frame("XBTUSDTM", n) for n in range(3, 8)])
        await send_all(conn, [ticker_frame("XBTUSDTM", n) for n in (10, 11, 12)])

    async def scenario():
        async with FakeKucoinServer([first, second]) as server:
            feed = Feed(["XBTUSDTM"], server)
            await wait_until(lambda: len(feed.trades()) == 7 and len(feed.events) == 10)
            await feed.stop()
            assert not server.script_errors
            return feed

    feed = run(scenario())
    assert feed.trades() == [1, 2, 3, 4, 5, 6, 7]
    quotes = [e.sequence for e in feed.events if isinstance(e, QuoteTick)]
    assert quotes == [10, 11, 12]
    stats = feed.client.stats()
    assert stats.duplicates + stats.stale == 5  # trades 3, 4, 5 and tickers 10, 11
    assert stats.events == {"TradeTick": 7, "QuoteTick": 3}
    assert stats.reconnects == 1
    assert stats.gaps == 0
    assert len(set(feed.issuer.issued)) == 2


def test_sequence_restarting_lower_after_a_reconnect_is_accepted_as_a_reset():
    base = 1_800_000_000_000_000_000

    async def first(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await send_all(conn, [trade_frame("XBTUSDTM", n, ts=base + n) for n in (100, 101)])
        await conn.ws.close()

    async def second(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        later = base + 1_000
        await send_all(conn, [trade_frame("XBTUSDTM", n, ts=later + n) for n in (1, 2)])

    async def scenario():
        async with FakeKucoinServer([first, second]) as server:
            feed = Feed(["XBTUSDTM"], server)
            await wait_until(lambda: len(feed.trades()) == 4)
            await feed.stop()
            return feed

    feed = run(scenario())
    assert feed.trades() == [100, 101, 1, 2]
    stats = feed.client.stats()
    assert stats.sequence_resets == 1
    assert stats.gaps == 0


def test_gap_in_trade_sequences_is_counted_and_reported_before_the_trade():
    async def script(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await send_all(conn, [trade_frame("XBTUSDTM", n) for n in (1, 2, 5, 6, 9)])

    async def scenario():
        async with FakeKucoinServer([script]) as server:
            feed = Feed(["XBTUSDTM"], server, clock_ns=lambda: 42)
            await wait_until(lambda: len(feed.trades()) == 5)
            await feed.stop()
            return feed

    feed = run(scenario())
    gaps = [e for e in feed.events if isinstance(e, SequenceGap)]
    assert [(g.expected, g.received, g.missing) for g in gaps] == [(3, 5, 2), (7, 9, 2)]
    position = feed.events.index(gaps[0])
    assert feed.events[position + 1].sequence == 5
    stats = feed.client.stats()
    assert (stats.gaps, stats.missing) == (2, 4)
    assert stats.last_frame_ns == 42  # the injected clock


def test_ticker_sequence_jumps_are_not_gaps():
    async def script(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await send_all(conn, [ticker_frame("XBTUSDTM", n) for n in (10, 25, 90)])

    async def scenario():
        async with FakeKucoinServer([script]) as server:
            feed = Feed(["XBTUSDTM"], server)
            await wait_until(lambda: len(feed.events) == 3)
            await feed.stop()
            return feed

    feed = run(scenario())
    assert feed.client.stats().gaps == 0
    assert all(isinstance(e, QuoteTick) for e in feed.events)


# -- bad input --------------------------------------------------------------------------


def test_malformed_and_unknown_frames_are_counted_logged_once_and_the_feed_continues(caplog):
    bad = [
        "not json",
        '{"type": "notice", "id": "1"}',
        '{"type":"message","topic":"/contract/instrument:XBTUSDTM","subject":"x","data":{}}',
        '{"type":"message","topic":"/contractMarket/execution:XBTUSDTM","subject":"match",'
        '"data":{"symbol":"XBTUSDTM"}}',
        '{"type":"error","code":500,"data":"internal"}',
        '{"type":"pong","id":"nobody-asked"}',
    ]

    async def script(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await send_all(conn, bad + bad)
        await conn.send(trade_frame("XBTUSDTM", 1))

    async def scenario():
        async with FakeKucoinServer([script]) as server:
            feed = Feed(["XBTUSDTM"], server)
            await wait_until(lambda: feed.trades() == [1])
            await feed.stop()
            return feed

    with caplog.at_level(logging.WARNING, logger="liveopt.exchange.feed"):
        feed = run(scenario())
    stats = feed.client.stats()
    assert stats.rejected == {
        "malformed_frame": 2,
        "unknown_type": 2,
        "unknown_topic": 2,
        "malformed_execution": 2,
        "error_frame": 2,
        "unmatched_reply": 2,
    }
    assert stats.reconnects == 0
    for kind in stats.rejected:
        assert sum(f"({kind})" in r.getMessage() for r in caplog.records) == 1


def test_token_expired_error_reconnects_with_a_fresh_token():
    async def first(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await conn.send({"type": "error", "code": 401, "data": "token is expired"})

    async def scenario():
        async with FakeKucoinServer([first]) as server:
            feed = Feed(["XBTUSDTM"], server)
            conns = await server.wait_connections(2)
            await conns[1].wait_subscribed(DEFAULT_TOPICS)
            await feed.stop()
            return conns

    conns = run(scenario())
    assert conns[0].token != conns[1].token


def test_old_execution_spelling_is_delivered_with_its_match_size():
    old = trade_frame("XBTUSDTM", 3)
    data = old["data"]
    data["matchSize"], data["size"], data["time"], data["price"] = 4, 96, data.pop("ts"), 101.5

    async def script(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await send_all(conn, [trade_frame("XBTUSDTM", 2, size=1), old])

    async def scenario():
        async with FakeKucoinServer([script]) as server:
            feed = Feed(["XBTUSDTM"], server)
            await wait_until(lambda: len(feed.trades()) == 2)
            await feed.stop()
            return feed

    feed = run(scenario())
    assert [(e.size, e.price) for e in feed.events] == [(1, 100.5), (4, 101.5)]


def test_a_raising_sink_is_counted_and_does_not_stop_the_feed():
    delivered = []

    def sink(event):
        delivered.append(event)
        if len(delivered) == 1:
            raise RuntimeError("consumer bug")

    async def script(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await send_all(conn, [trade_frame("XBTUSDTM", n) for n in (1, 2)])

    async def scenario():
        async with FakeKucoinServer([script]) as server:
            client = MarketDataClient(
                ["XBTUSDTM"], token_provider=TokenIssuer(server), sink=sink, config=FAST
            )
            task = asyncio.create_task(client.run())
            await wait_until(lambda: len(delivered) == 2)
            client.stop()
            await task
            return client

    client = run(scenario())
    assert client.stats().sink_errors == 1
    assert client.stats().reconnects == 0


def test_the_token_never_reaches_the_logs(caplog):
    secret = "SECRET-bullet-token-value"

    class SecretIssuer(TokenIssuer):
        async def __call__(self):
            token = await super().__call__()
            return type(token)(token=secret, instance_servers=token.instance_servers)

    async def first(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await conn.send({"type": "error", "code": 401, "data": f"token {secret} is expired"})

    async def scenario():
        async with FakeKucoinServer([first]) as server:
            feed = Feed(["XBTUSDTM"], server, issuer=SecretIssuer(server))
            conns = await server.wait_connections(2)
            await conns[1].wait_subscribed(DEFAULT_TOPICS)
            await feed.stop()
            return conns

    with caplog.at_level(logging.DEBUG):
        conns = run(scenario())
    assert conns[0].token == secret
    # The fake server's own log shows the request line; everything on the client side
    # (liveopt and the websockets client it drives) must not.
    client_side = [r.getMessage() for r in caplog.records if r.name != "websockets.server"]
    assert any("GET /endpoint?token=<token>" in message for message in client_side)
    assert not any(secret in message for message in client_side)


# -- backoff and stop -------------------------------------------------------------------


def test_backoff_grows_per_failure_and_resets_after_a_healthy_connection():
    now = [0]
    delays = []
    config = FeedConfig(
        backoff_base_s=1.0, backoff_cap_s=8.0, healthy_after_s=60.0, use_system_proxy=False
    )

    async def record(seconds):
        delays.append(seconds)
        await asyncio.sleep(0)

    async def close_at_once(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await conn.ws.close()

    feeds = []

    async def healthy_then_close(conn):
        await wait_until(lambda: feeds[0].client.stats().connected)
        now[0] += 61 * 1_000_000_000
        await conn.ws.close()

    scripts = [close_at_once] * 5 + [healthy_then_close]

    async def scenario():
        async with FakeKucoinServer(scripts) as server:
            feed = Feed(["XBTUSDTM"], server, config=config, clock_ns=lambda: now[0], sleep=record)
            feeds.append(feed)
            await server.wait_connections(7)
            await feed.stop()

    run(scenario())
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 1.0]  # the sixth connection was healthy
    for delay, ceiling in zip(delays, ceilings, strict=False):
        assert ceiling / 2 <= delay <= ceiling
    assert len(delays) >= len(ceilings)


def test_stop_ends_run_during_a_long_backoff():
    config = FeedConfig(backoff_base_s=60.0, backoff_cap_s=60.0, use_system_proxy=False)

    async def close_at_once(conn):
        await conn.wait_subscribed(DEFAULT_TOPICS)
        await conn.ws.close()

    waits = []

    async def real_sleep(seconds):
        waits.append(seconds)
        await asyncio.sleep(seconds)

    async def scenario():
        async with FakeKucoinServer([close_at_once]) as server:
            feed = Feed(["XBTUSDTM"], server, config=config, sleep=real_sleep)
            await wait_until(lambda: waits)  # the client is now in its backoff wait
            await feed.stop()
            return feed

    feed = run(scenario())  # would hit the safety timeout if stop waited for the backoff
    assert feed.task.done()
    assert waits[0] >= 30.0
    assert feed.client.stats().reconnects == 0


def test_stop_ends_run_while_the_token_request_hangs():
    asked = []

    async def hanging_provider():
        asked.append(1)
        await asyncio.Event().wait()

    async def scenario():
        client = MarketDataClient(
            ["XBTUSDTM"], token_provider=hanging_provider, sink=lambda e: None, config=FAST
        )
        task = asyncio.create_task(client.run())
        await wait_until(lambda: asked)
        client.stop()
        await task  # would hit the safety timeout if stop waited for the provider
        return task

    assert run(scenario()).done()


def test_token_provider_failure_is_counted_and_retried():
    calls = []

    async def scenario():
        async with FakeKucoinServer() as server:
            issuer = TokenIssuer(server)

            async def flaky():
                calls.append(1)
                if len(calls) == 1:
                    raise ConnectionError("bullet endpoint down")
                return await issuer()

            client = MarketDataClient(
                ["XBTUSDTM"], token_provider=flaky, sink=lambda e: None, config=FAST
            )
            task = asyncio.create_task(client.run())
            (conn,) = await server.wait_connections(1)
            await conn.wait_subscribed(DEFAULT_TOPICS)
            client.stop()
            await task
            return client

    client = run(scenario())
    assert client.stats().connect_failures == 1
    assert len(calls) == 2


# -- pure parts -------------------------------------------------------------------------


@settings(deadline=None)  # a loaded machine must not fail a pure check
@given(
    attempt=st.integers(min_value=0, max_value=200),
    base=st.floats(min_value=1e-3, max_value=10.0),
    extra=st.floats(min_value=0.0, max_value=100.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_delay_stays_within_half_and_all_of_its_capped_ceiling(attempt, base, extra, seed):
    cap = base + extra
    delay = backoff_delay(attempt, base_s=base, cap_s=cap, rng=random.Random(seed))
    ceiling = min(cap, base * 2.0 ** min(attempt, 64))
    assert ceiling / 2 <= delay <= ceiling


def test_connect_url_keeps_the_endpoint_and_escapes_the_token():
    url = connect_url("ws://127.0.0.1:9/endpoint?x=1", "a+b/c==", "c1")
    assert url == "ws://127.0.0.1:9/endpoint?x=1&token=a%2Bb%2Fc%3D%3D&connectId=c1"


def test_subscription_topics_follow_the_configured_topics_and_candle_type():
    config = FeedConfig(
        topics=("/contractMarket/limitCandle", "/contractMarket/execution"), candle_type="5min"
    )
    assert subscription_topics(["A", "B"], config) == [
        "/contractMarket/limitCandle:A_5min,B_5min",
        "/contractMarket/execution:A,B",
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"topics": ()}, "topics"),
        ({"topics": ("/contractMarket/level2",)}, "topics"),
        ({"gap_checked_topics": ("/market/match",)}, "gap_checked_topics"),
        ({"candle_type": "1 min"}, "candle_type"),
        ({"ack_timeout_s": 0.0}, "ack_timeout_s"),
        ({"backoff_base_s": 2.0, "backoff_cap_s": 1.0}, "backoff_cap_s"),
        ({"max_topics_per_connection": 3}, "max_topics_per_connection"),
    ],
)
def test_invalid_config_is_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        FeedConfig(**kwargs)


@pytest.mark.parametrize("symbols", [[], ["XBTUSDTM", "XBTUSDTM"], ["A,B"], [""]])
def test_invalid_symbols_are_refused(symbols):
    async def provider():
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="symbols"):
        MarketDataClient(symbols, token_provider=provider, sink=lambda e: None)


def trade(sequence, ts, trade_id=None):
    return TradeTick(
        symbol="X",
        ts_ns=ts,
        price=1.0,
        size=1,
        side=1,
        sequence=sequence,
        trade_id=str(sequence) if trade_id is None else trade_id,
    )


@settings(deadline=None)  # a loaded machine must not fail a pure check
@given(
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=80),
)
def test_tracker_delivers_each_trade_once_in_increasing_order(arrivals):
    # Replays and reordering of one stream (ts grows with the sequence).
    tracker = SequenceTracker(gap_checked_topics=["/contractMarket/execution"], trade_id_memory=64)
    delivered = [s for s in arrivals if tracker.admit(trade(s, 1_000 + s))[0]]
    assert delivered == sorted(set(delivered))
    assert len(delivered) + tracker.duplicates + tracker.stale == len(arrivals)
    assert tracker.resets == 0
    expected_missing = delivered[-1] - delivered[0] + 1 - len(delivered)
    assert tracker.missing == expected_missing


def test_tracker_refuses_a_remembered_trade_id_even_with_a_new_sequence():
    tracker = SequenceTracker(gap_checked_topics=(), trade_id_memory=8)
    assert tracker.admit(trade(1, 10, "t-1"))[0]
    assert not tracker.admit(trade(2, 11, "t-1"))[0]
    assert tracker.duplicates == 1


def test_tracker_accepts_reused_trade_ids_after_a_sequence_reset():
    tracker = SequenceTracker(gap_checked_topics=["/contractMarket/execution"], trade_id_memory=8)
    assert [tracker.admit(trade(s, 100 + s))[0] for s in (1, 2, 3)] == [True] * 3
    # Numbering restarts (newer timestamps): ids 1 and 2 are new trades, then replayed.
    restarted = [trade(1, 500), trade(2, 501), trade(2, 501), trade(1, 500)]
    assert [tracker.admit(t)[0] for t in restarted] == [True, True, False, False]
    assert (tracker.resets, tracker.gaps, tracker.duplicates + tracker.stale) == (1, 0, 2)


def test_tracker_drops_a_replayed_candle_but_keeps_a_changed_one_at_the_same_push_time():
    def update(close, push):
        return CandleUpdate(
            symbol="X",
            timeframe="1min",
            start_ns=0,
            open=1.0,
            high=9.0,
            low=1.0,
            close=close,
            volume=1.0,
            turnover=1.0,
            push_ts_ns=push,
        )

    tracker = SequenceTracker(gap_checked_topics=(), trade_id_memory=8)
    verdicts = [
        tracker.admit(candle)[0]
        for candle in (
            update(2.0, 5),
            update(3.0, 5),
            update(2.0, 5),
            update(2.0, 4),
            update(4.0, 6),
        )
    ]
    assert verdicts == [True, True, False, False, True]
    assert (tracker.duplicates, tracker.stale) == (1, 1)
