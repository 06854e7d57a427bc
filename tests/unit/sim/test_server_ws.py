"""The simulator's WebSocket side on a real server (127.0.0.1, port 0): token check,
welcome, ping/pong, acks, error frames, limits, multi-symbol topics, sequences and the
slow-client policy. The market is driven by hand (``sim.server.tick()`` on a manual clock)."""

from __future__ import annotations

import asyncio
import itertools
import json

import aiohttp

from liveopt.sim.config import SimConfig
from liveopt.sim.server import start_sim

START_NS = 1_700_000_000_000_000_000
S = 1_000_000_000


class ManualClock:
    """A server clock the test moves by hand."""

    def __init__(self, now_ns: int = START_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * S)


def run_with_sim(scenario, clock: ManualClock | None = None, **overrides):
    """Start a simulator, run ``scenario(session, sim, clock)``, stop it."""
    clock = clock or ManualClock()

    async def main():
        config = SimConfig(tick_ms=600_000, **overrides)
        sim = await start_sim(config, clock=clock)
        sim.server.tick()
        try:
            async with aiohttp.ClientSession() as session:
                return await scenario(session, sim, clock)
        finally:
            await sim.stop()

    return asyncio.run(main())


async def bullet(session, sim) -> tuple[str, str]:
    async with session.post(sim.url + "/api/v1/bullet-public") as resp:
        data = (await resp.json())["data"]
    return data["instanceServers"][0]["endpoint"], data["token"]


async def connect(session, sim, query: str = "connectId=test-conn", **kwargs):
    endpoint, token = await bullet(session, sim)
    ws = await session.ws_connect(f"{endpoint}?token={token}&{query}", **kwargs)
    return ws


async def welcomed(session, sim, connect_id: str = "test-conn"):
    ws = await connect(session, sim, f"connectId={connect_id}")
    assert await ws.receive_json(timeout=2) == {"id": connect_id, "type": "welcome"}
    return ws


async def subscribe(ws, topic: str, request_id: int | str = 1) -> None:
    await ws.send_json({"id": request_id, "type": "subscribe", "topic": topic,
                        "privateChannel": False, "response": True})
    assert await ws.receive_json(timeout=2) == {"id": str(request_id), "type": "ack"}


async def drive(ws, sim, clock, seconds: float, step_s: float = 0.1) -> list[dict]:
    """Advance the market ``seconds`` in steps and collect the data frames."""
    frames: list[dict] = []
    for _ in range(round(seconds / step_s)):
        clock.advance(step_s)
        sim.server.tick()
        frames.extend(await drain(ws))
    return frames


async def drain(ws) -> list[dict]:
    """The frames queued for this client so far: the pong to a ping sent now is queued
    after all of them on the same connection, so no timeout is needed."""
    await ws.send_json({"id": "sync", "type": "ping"})
    frames = []
    while True:
        msg = await ws.receive(timeout=2)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return frames
        frame = json.loads(msg.data)
        if frame == {"id": "sync", "type": "pong"}:
            return frames
        frames.append(frame)


async def closed_after(ws) -> tuple[list[dict], aiohttp.WSMsgType]:
    """Frames received until the server closes the connection, and how it ended."""
    frames = []
    while True:
        msg = await ws.receive(timeout=2)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return frames, msg.type
        frames.append(json.loads(msg.data))


CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


# --- connection -------------------------------------------------------------------------------

def test_welcome_id_is_the_connect_id_and_extra_query_parameters_are_accepted():
    async def scenario(session, sim, clock):
        ws = await connect(session, sim, "connectId=abc-1&privateChannel=false&x=y")
        assert await ws.receive_json(timeout=2) == {"id": "abc-1", "type": "welcome"}
        await ws.close()

    run_with_sim(scenario)


def test_without_a_connect_id_the_welcome_id_is_random():
    async def scenario(session, sim, clock):
        ids = []
        for _ in range(2):
            ws = await connect(session, sim, "")
            welcome = await ws.receive_json(timeout=2)
            assert welcome["type"] == "welcome"
            ids.append(welcome["id"])
            await ws.close()
        assert all(ids) and ids[0] != ids[1]

    run_with_sim(scenario)


def test_an_unknown_token_gets_an_error_frame_and_is_closed():
    async def scenario(session, sim, clock):
        endpoint, _ = await bullet(session, sim)
        ws = await session.ws_connect(f"{endpoint}?token=forged&connectId=c9")
        frames, ended = await closed_after(ws)
        assert frames == [{"id": "c9", "type": "error", "code": 401,
                           "data": "token is invalid"}]
        assert ended in CLOSED
        assert sim.ws_counts().rejected_tokens == 1

    run_with_sim(scenario)


def test_an_expired_token_gets_token_is_expired():
    async def scenario(session, sim, clock):
        endpoint, token = await bullet(session, sim)
        clock.advance(11.0)
        ws = await session.ws_connect(f"{endpoint}?token={token}&connectId=c10")
        frames, ended = await closed_after(ws)
        assert frames[0]["data"] == "token is expired"
        assert frames[0]["code"] == 401
        assert ended in CLOSED

    run_with_sim(scenario, token_ttl_s=10.0)


def test_json_ping_gets_a_pong_with_the_same_id():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        await ws.send_json({"id": "1700000000123", "type": "ping"})
        assert await ws.receive_json(timeout=2) == {"id": "1700000000123", "type": "pong"}
        await ws.send_json({"id": 42, "type": "ping"})
        assert await ws.receive_json(timeout=2) == {"id": "42", "type": "pong"}
        await ws.close()

    run_with_sim(scenario)


def test_protocol_level_pings_are_answered():
    async def scenario(session, sim, clock):
        ws = await connect(session, sim, autoping=False)
        await ws.receive_json(timeout=2)
        await ws.ping(b"are-you-there")
        msg = await ws.receive(timeout=2)
        assert msg.type == aiohttp.WSMsgType.PONG
        assert msg.data == b"are-you-there"
        await ws.close()

    run_with_sim(scenario)


# --- subscriptions ----------------------------------------------------------------------------

def test_subscribe_is_acknowledged_only_when_a_response_is_asked_for():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        await ws.send_json({"id": "quiet", "type": "subscribe",
                            "topic": "/contractMarket/tickerV2:XBTUSDTM", "response": False})
        await ws.send_json({"id": "p1", "type": "ping"})
        assert await ws.receive_json(timeout=2) == {"id": "p1", "type": "pong"}
        await ws.send_json({"id": 7, "type": "unsubscribe",
                            "topic": "/contractMarket/tickerV2:XBTUSDTM", "response": True})
        assert await ws.receive_json(timeout=2) == {"id": "7", "type": "ack"}
        await ws.close()

    run_with_sim(scenario)


def test_bad_topics_and_types_get_error_frames_with_the_request_id():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        cases = [
            ({"id": "a", "type": "subscribe", "topic": "/contractMarket/nope:XBTUSDTM",
              "response": True}, 400),
            ({"id": "b", "type": "subscribe", "topic": "/contractMarket/tickerV2:DOGEUSDTM",
              "response": True}, 400),
            ({"id": "c", "type": "subscribe", "topic": "/contractMarket/limitCandle:XBTUSDTM_7min",
              "response": True}, 400),
            ({"id": "d", "type": "subscribe", "topic": "/contractMarket/tickerV2:XBTUSDTM",
              "privateChannel": True, "response": True}, 400),
            ({"id": "e", "type": "openTunnel"}, 415),
        ]
        for request, code in cases:
            await ws.send_json(request)
            reply = await ws.receive_json(timeout=2)
            assert (reply["id"], reply["type"], reply["code"]) == (request["id"], "error", code)
            assert isinstance(reply["data"], str) and reply["data"]
        await ws.send_str("not json")
        reply = await ws.receive_json(timeout=2)
        assert (reply["type"], reply["code"]) == ("error", 400)
        assert sim.ws_counts().bad_uplink_messages == len(cases) + 1
        await ws.close()

    run_with_sim(scenario)


def test_more_topics_than_the_limit_get_an_error_and_nothing_is_subscribed():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        await subscribe(ws, "/contractMarket/limitCandle:XBTUSDTM_1min,XBTUSDTM_5min")
        await ws.send_json({"id": 2, "type": "subscribe", "response": True,
                            "topic": "/contractMarket/limitCandle:XBTUSDTM_15min,XBTUSDTM_30min"})
        reply = await ws.receive_json(timeout=2)
        assert (reply["id"], reply["type"], reply["code"]) == ("2", "error", 509)
        assert not sim.server.hub.subscribed(("/contractMarket/limitCandle", "XBTUSDTM_15min"))
        await ws.close()

    run_with_sim(scenario, max_topics=3)


def test_too_many_uplink_messages_get_an_error_and_the_connection_is_closed():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        for i in range(6):
            await ws.send_json({"id": str(i), "type": "ping"})
        frames, ended = await closed_after(ws)
        assert [f["type"] for f in frames] == ["pong"] * 5 + ["error"]
        assert frames[-1]["code"] == 509
        assert ended in CLOSED
        assert sim.ws_counts().uplink_limit_disconnects == 1

    run_with_sim(scenario, uplink_limit=5)


def test_an_idle_connection_gets_an_error_and_is_closed():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        frames, ended = await closed_after(ws)
        assert [(f["type"], f["code"]) for f in frames] == [("error", 408)]
        assert ended in CLOSED
        assert sim.ws_counts().idle_disconnects == 1

    run_with_sim(scenario, idle_timeout_s=0.2)


# --- data -------------------------------------------------------------------------------------

def test_a_multi_symbol_topic_delivers_each_symbol_under_its_own_topic():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        await subscribe(ws, "/contractMarket/tickerV2:XBTUSDTM,ETHUSDTM")
        frames = await drive(ws, sim, clock, 2.0)
        topics = {f["topic"] for f in frames}
        assert topics == {"/contractMarket/tickerV2:XBTUSDTM",
                          "/contractMarket/tickerV2:ETHUSDTM"}
        for frame in frames:
            assert frame["subject"] == "tickerV2"
            assert frame["topic"].endswith(frame["data"]["symbol"])
        await ws.close()

    run_with_sim(scenario, symbols=("XBTUSDTM", "ETHUSDTM"))


def test_sequences_are_contiguous_per_topic_and_symbol_and_sn_equals_sequence():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        await subscribe(ws, "/contractMarket/level2:XBTUSDTM,ETHUSDTM", 1)
        await subscribe(ws, "/contractMarket/execution:XBTUSDTM,ETHUSDTM", 2)
        await subscribe(ws, "/contractMarket/tickerV2:XBTUSDTM,ETHUSDTM", 3)
        frames = await drive(ws, sim, clock, 3.0)
        by_topic: dict[str, list[int]] = {}
        for frame in frames:
            assert frame["sn"] == frame["data"]["sequence"]
            by_topic.setdefault(frame["topic"], []).append(frame["sn"])
        level2 = [t for t in by_topic if t.startswith("/contractMarket/level2:")]
        assert len(level2) == 2
        for topic in level2 + [t for t in by_topic if "execution" in t]:
            sns = by_topic[topic]
            assert sns == list(range(sns[0], sns[0] + len(sns))), topic
        for topic in (t for t in by_topic if "tickerV2" in t):
            assert by_topic[topic] == sorted(set(by_topic[topic])), topic
        await ws.close()

    run_with_sim(scenario, symbols=("XBTUSDTM", "ETHUSDTM"))


def test_level2_deltas_after_the_rest_snapshot_rebuild_the_next_snapshot():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        await subscribe(ws, "/contractMarket/level2:XBTUSDTM")
        frames = await drive(ws, sim, clock, 0.5)
        async with session.get(sim.url + "/api/v1/level2/snapshot?symbol=XBTUSDTM") as resp:
            snapshot = (await resp.json())["data"]
        frames += await drive(ws, sim, clock, 1.5)
        async with session.get(sim.url + "/api/v1/level2/snapshot?symbol=XBTUSDTM") as resp:
            later = (await resp.json())["data"]
        book = {"buy": dict(snapshot["bids"]),
                "sell": dict(snapshot["asks"])}
        applied = [f for f in frames if f["sn"] > snapshot["sequence"]]
        assert applied and applied[0]["sn"] == snapshot["sequence"] + 1
        for frame in applied:
            price, side, size = frame["data"]["change"].split(",")
            if int(size) == 0:
                book[side].pop(float(price), None)
            else:
                book[side][float(price)] = int(size)
        assert applied[-1]["sn"] == later["sequence"]
        assert book["buy"] == dict(later["bids"])
        assert book["sell"] == dict(later["asks"])
        await ws.close()

    run_with_sim(scenario)


def test_depth5_is_pushed_only_when_it_changed_and_candles_without_sn():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        await subscribe(ws, "/contractMarket/level2Depth5:XBTUSDTM", 1)
        await subscribe(ws, "/contractMarket/limitCandle:XBTUSDTM_1min", 2)
        frames = await drive(ws, sim, clock, 1.5, step_s=0.02)
        depth = [f for f in frames if f["topic"] == "/contractMarket/level2Depth5:XBTUSDTM"]
        candles = [f for f in frames if f["topic"] == "/contractMarket/limitCandle:XBTUSDTM_1min"]
        assert 1 < len(depth) < round(1.5 / 0.02)  # fewer pushes than opportunities
        for before, after in itertools.pairwise(depth):
            assert (before["data"]["bids"], before["data"]["asks"]) != (
                after["data"]["bids"], after["data"]["asks"])
        assert all(f["subject"] == "level2" and f["sn"] == f["data"]["timestamp"]
                   for f in depth)
        assert len(candles) >= 2
        assert all(f["subject"] == "candle.stick" and "sn" not in f for f in candles)
        await ws.close()

    run_with_sim(scenario, depth5_interval_ms=10, candle_interval_ms=500)


def test_unsubscribe_stops_the_frames():
    async def scenario(session, sim, clock):
        ws = await welcomed(session, sim)
        await subscribe(ws, "/contractMarket/level2:XBTUSDTM")
        assert await drive(ws, sim, clock, 0.5)
        await ws.send_json({"id": 9, "type": "unsubscribe",
                            "topic": "/contractMarket/level2:XBTUSDTM", "response": True})
        assert (await drain(ws))[-1] == {"id": "9", "type": "ack"}
        assert await drive(ws, sim, clock, 0.5) == []
        await ws.close()

    run_with_sim(scenario)


def test_a_client_that_does_not_read_is_disconnected_without_blocking_the_market():
    async def scenario(session, sim, clock):
        slow = await welcomed(session, sim, "slow")
        await subscribe(slow, "/contractMarket/level2:XBTUSDTM")
        healthy = await welcomed(session, sim, "healthy")
        # One candle per push: this client's queue cannot fill within one tick.
        await subscribe(healthy, "/contractMarket/limitCandle:XBTUSDTM_1min")
        clock.advance(5.0)
        sim.server.tick()  # one tick queues far more level2 frames than the slow queue holds
        assert sim.ws_counts().slow_disconnects == 1
        _, ended = await closed_after(slow)
        assert ended in CLOSED
        assert await drive(healthy, sim, clock, 2.0, step_s=0.5)
        assert sim.ws_counts().connections_open == 1
        await healthy.close()

    run_with_sim(scenario, send_queue_size=4)
