"""Fault injection: the switches' validation, the injector's decisions, and each switch
observed through a real simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import json
import random

import aiohttp
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.exchange.signing import Credentials, auth_headers
from liveopt.sim.config import FaultConfig, SimConfig
from liveopt.sim.faults import FaultInjector, malformed
from liveopt.sim.server import start_sim

START_NS = 1_700_000_000_000_000_000
S = 1_000_000_000
CREDS = Credentials("sim-key", "sim-secret", "sim-passphrase")


class ManualClock:
    """A server clock the test moves by hand."""

    def __init__(self, now_ns: int = START_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * S)


async def _open(clock: ManualClock, faults: FaultConfig | None = None, **overrides):
    # A long tick keeps the background loop quiet: the tests drive the market with tick().
    config = SimConfig(tick_ms=600_000, faults=faults or FaultConfig(), **overrides)
    sim = await start_sim(config, clock=clock)
    sim.server.tick()
    return sim


async def _post_order(session, sim, clock, body: dict):
    text = msgspec.json.encode(body).decode()
    headers = auth_headers(CREDS, clock() // 1_000_000, "POST", "/api/v1/orders", text)
    headers["Content-Type"] = "application/json"
    async with session.post(sim.url + "/api/v1/orders", data=text, headers=headers) as resp:
        return resp.status, await resp.json()


async def _subscribe(session, sim, topic: str):
    async with session.post(sim.url + "/api/v1/bullet-public") as resp:
        bullet = (await resp.json())["data"]
    endpoint = bullet["instanceServers"][0]["endpoint"]
    ws = await session.ws_connect(f"{endpoint}?token={bullet['token']}&connectId=fault-test")
    welcome = await ws.receive_json(timeout=2)
    assert welcome == {"id": "fault-test", "type": "welcome"}
    await ws.send_json({"id": 1, "type": "subscribe", "topic": topic, "response": True})
    assert await ws.receive_json(timeout=2) == {"id": "1", "type": "ack"}
    return ws


async def _data_frames(ws, sim, clock, count: int, step_s: float = 0.5) -> list[str]:
    # Advance the market until `count` data frames arrived; returns their raw text. The pong
    # to a ping sent after each tick is queued behind that tick's frames.
    frames: list[str] = []
    for _ in range(50):
        if len(frames) >= count:
            break
        clock.advance(step_s)
        sim.server.tick()
        await ws.send_json({"id": "sync", "type": "ping"})
        while True:
            msg = await ws.receive(timeout=2)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return frames
            if msg.data == '{"id":"sync","type":"pong"}':
                break
            frames.append(msg.data)
    return frames


def _order_body(client_oid: str, price: str) -> dict:
    return {"clientOid": client_oid, "side": "buy", "symbol": "XBTUSDTM", "leverage": 3,
            "type": "limit", "price": price, "size": 1}


# --- configuration ------------------------------------------------------------------------

def test_every_fault_switch_is_off_by_default():
    assert not FaultConfig().any_enabled
    assert not SimConfig().faults.any_enabled


@pytest.mark.parametrize(("field", "value"), [
    ("malformed_frame_rate", 1.5), ("sequence_gap_rate", -0.1), ("order_failure_rate", 2.0),
    ("frame_delay_ms", -1.0), ("drop_connections_every_s", float("nan")),
    ("order_failure_status", 404),
])
def test_a_bad_fault_switch_is_rejected_with_its_field_name(field, value):
    with pytest.raises(ValueError, match=field):
        FaultConfig(**{field: value})


def test_a_429_burst_longer_than_its_period_is_rejected():
    with pytest.raises(ValueError, match="burst_429_duration_s"):
        FaultConfig(burst_429_every_s=1.0, burst_429_duration_s=2.0)


def test_sim_config_names_the_bad_field():
    with pytest.raises(ValueError, match="speed"):
        SimConfig(speed=0)
    with pytest.raises(ValueError, match="symbols"):
        SimConfig(symbols=("xbt-usdt",))
    with pytest.raises(ValueError, match="port"):
        SimConfig(port=70_000)


def test_sim_config_repr_never_shows_the_secret():
    config = SimConfig(credentials=Credentials("k", "very-secret-value", "pass-value"))
    assert "very-secret-value" not in repr(config)
    assert "pass-value" not in repr(config)


# --- the injector ---------------------------------------------------------------------------

def test_connections_are_dropped_once_per_period():
    injector = FaultInjector(FaultConfig(drop_connections_every_s=2.0), random.Random(1), 0)
    decisions = [injector.connections_to_drop(int(t * S)) for t in (0.5, 1.9, 2.0, 2.5, 4.1)]
    assert decisions == [False, False, True, False, True]


def test_429_bursts_start_after_each_period_and_last_their_duration():
    injector = FaultInjector(
        FaultConfig(burst_429_every_s=10.0, burst_429_duration_s=2.0), random.Random(1), 0)
    assert not injector.in_429_burst(5 * S)
    assert injector.in_429_burst(10 * S)
    assert injector.in_429_burst(11 * S)
    assert not injector.in_429_burst(12 * S)
    assert injector.in_429_burst(21 * S)
    assert injector.counts().rest_429_bursts == 2


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0), st.integers(min_value=0, max_value=2**32))
def test_the_same_seed_injects_the_same_faults(rate, seed):
    config = FaultConfig(malformed_frame_rate=rate, sequence_gap_rate=rate,
                         order_failure_rate=rate)
    runs = []
    for _ in range(2):
        injector = FaultInjector(config, random.Random(seed), 0)
        runs.append([(injector.corrupt_frame(), injector.skip_sequence(), injector.fail_order())
                     for _ in range(50)])
    assert runs[0] == runs[1]


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_rate_zero_never_injects_and_rate_one_always_does(seed):
    off = FaultInjector(FaultConfig(), random.Random(seed), 0)
    on = FaultInjector(FaultConfig(malformed_frame_rate=1.0, sequence_gap_rate=1.0,
                                   order_failure_rate=1.0, order_failure_status=503),
                       random.Random(seed), 0)
    for _ in range(20):
        assert (off.corrupt_frame(), off.skip_sequence(), off.fail_order()) == (
            False, False, None)
        assert (on.corrupt_frame(), on.skip_sequence(), on.fail_order()) == (True, True, 503)
    assert on.counts().order_failures == 20
    assert off.counts().order_failures == 0


def test_a_malformed_frame_is_not_valid_json():
    frame = b'{"type":"message","topic":"/contractMarket/tickerV2:XBTUSDTM","data":{}}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed(frame))


# --- each switch observed through a running simulator --------------------------------------

def test_failing_order_endpoints_answer_500000_or_503_and_can_be_switched_off_at_runtime():
    async def scenario():
        clock = ManualClock()
        sim = await _open(clock, FaultConfig(order_failure_rate=1.0))
        try:
            async with aiohttp.ClientSession() as session:
                price = sim.exchange.ticker("XBTUSDTM").best_bid_price
                status, body = await _post_order(session, sim, clock, _order_body("f-1", price))
                assert (status, body["code"]) == (500, "500000")
                sim.set_faults(FaultConfig(order_failure_rate=1.0, order_failure_status=503))
                status, body = await _post_order(session, sim, clock, _order_body("f-2", price))
                assert (status, body["code"]) == (503, "503000")
                sim.set_faults(FaultConfig())
                status, body = await _post_order(session, sim, clock, _order_body("f-3", price))
                assert (status, body["code"]) == (200, "200000")
                assert body["data"]["clientOid"] == "f-3"
                assert sim.fault_counts().order_failures == 2
        finally:
            await sim.stop()

    asyncio.run(scenario())


def test_429_burst_switch_rejects_every_request_during_the_burst_only():
    async def scenario():
        clock = ManualClock()
        sim = await _open(clock, FaultConfig(burst_429_every_s=5.0, burst_429_duration_s=1.0))
        try:
            async with aiohttp.ClientSession() as session:
                async def timestamp():
                    async with session.get(sim.url + "/api/v1/timestamp") as resp:
                        return resp.status, await resp.json(), resp.headers

                assert (await timestamp())[0] == 200
                clock.advance(5.5)
                status, body, headers = await timestamp()
                assert (status, body) == (429, {"code": "429000", "msg": "Too Many Requests"})
                assert headers["gw-ratelimit-remaining"] == "0"
                clock.advance(1.0)
                assert (await timestamp())[0] == 200
                assert sim.fault_counts().rest_429_bursts == 1
        finally:
            await sim.stop()

    asyncio.run(scenario())


def test_drop_switch_closes_websocket_connections_every_period():
    async def scenario():
        clock = ManualClock()
        sim = await _open(clock, FaultConfig(drop_connections_every_s=2.0))
        try:
            async with aiohttp.ClientSession() as session:
                ws = await _subscribe(session, sim, "/contractMarket/tickerV2:XBTUSDTM")
                clock.advance(2.5)
                sim.server.tick()
                while True:
                    msg = await ws.receive(timeout=2)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert sim.fault_counts().connections_dropped == 1
        finally:
            await sim.stop()

    asyncio.run(scenario())


def test_malformed_switch_sends_frames_that_are_not_json():
    async def scenario():
        clock = ManualClock()
        sim = await _open(clock, FaultConfig(malformed_frame_rate=1.0))
        try:
            async with aiohttp.ClientSession() as session:
                ws = await _subscribe(session, sim, "/contractMarket/level2:XBTUSDTM")
                frames = await _data_frames(ws, sim, clock, 3)
                assert len(frames) >= 3
                for text in frames:
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(text)
                assert sim.fault_counts().frames_malformed >= len(frames)
                await ws.close()
        finally:
            await sim.stop()

    asyncio.run(scenario())


def test_sequence_gap_switch_withholds_sequence_numbers():
    async def scenario():
        clock = ManualClock()
        sim = await _open(clock, FaultConfig(sequence_gap_rate=0.5), seed=7)
        try:
            async with aiohttp.ClientSession() as session:
                ws = await _subscribe(session, sim, "/contractMarket/level2:XBTUSDTM")
                frames = [json.loads(t) for t in await _data_frames(ws, sim, clock, 30)]
                sns = [f["sn"] for f in frames]
                assert sns == sorted(sns)
                gaps = sum(1 for a, b in itertools.pairwise(sns) if b != a + 1)
                assert gaps > 0
                assert sim.fault_counts().sequence_gaps >= gaps
                await ws.close()
        finally:
            await sim.stop()

    asyncio.run(scenario())


def test_frame_delay_switch_holds_frames_for_the_configured_time():
    requested: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        requested.append(seconds)
        await asyncio.sleep(min(seconds, 0.01))

    async def scenario():
        clock = ManualClock()
        config = SimConfig(tick_ms=600_000, faults=FaultConfig(frame_delay_ms=250.0))
        sim = await start_sim(config, clock=clock, sleep=recording_sleep)
        sim.server.tick()
        try:
            async with aiohttp.ClientSession() as session:
                ws = await _subscribe(session, sim, "/contractMarket/level2:XBTUSDTM")
                frames = await _data_frames(ws, sim, clock, 1, step_s=0.1)
                assert frames, "delayed frames must still arrive"
                assert 0.25 in requested
                assert sim.fault_counts().frames_delayed >= 1
                await ws.close()
        finally:
            await sim.stop()

    asyncio.run(scenario())


def test_a_failure_after_apply_places_the_order_and_loses_only_the_reply():
    async def scenario():
        clock = ManualClock()
        sim = await _open(clock, FaultConfig(order_failure_rate=1.0,
                                             order_failure_after_apply=True))
        try:
            async with aiohttp.ClientSession() as session:
                price = sim.exchange.ticker("XBTUSDTM").best_bid_price
                status, body = await _post_order(session, sim, clock, _order_body("lost", price))
                assert (status, body["code"]) == (500, "500000")
                assert sim.exchange.order_by_client_oid("lost").client_oid == "lost"
                sim.set_faults(FaultConfig())
                status, body = await _post_order(session, sim, clock, _order_body("lost", price))
                assert body["code"] == "300018"  # the retry with the same clientOid is refused
                assert sim.exchange.list_orders(None, None, 1, 50).total_num == 1
        finally:
            await sim.stop()

    asyncio.run(scenario())
